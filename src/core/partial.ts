/**
 * Resuming big files: the pure part. A receiver keeps each unfinished big file as a data
 * file plus a manifest (endpoint/partial-store.ts holds the I/O). The manifest is a small
 * append-only text file:
 *
 *   line 1:  {"v":1,"path":...,"size":...,"mtimeMs":...,"ino":...,"pieceSize":...,"count":...}
 *   then:    {"i":INDEX,"d":"DIGEST"}   one line per piece, appended once it is written
 *
 * Append-only keeps the cost of marking a piece constant (one short write, never a rewrite
 * of the whole list), and a crash can only leave a torn or lost tail, which parsing drops:
 * it stops at the first line that is not whole, and the pieces after it are not held.
 * Nothing is fsynced: every held piece is re-read and checked before it is offered.
 *
 * "Same source version" is the sender's size, mtime and inode (the scanner's own notion of
 * an unchanged file, core/entry.ts) plus, per piece, the sender's digest of that piece
 * compared before the piece is skipped (transfer/resume.ts): a file rewritten in place with
 * its mtime put back still has every changed piece sent again.
 */
import type { Entry } from './entry.js';

export const MANIFEST_VERSION = 1;

/** The sender's file a partial copy belongs to. */
export interface PartialIdentity {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly pieceSize: number;
  readonly count: number;
}

export interface PartialManifest extends PartialIdentity {
  /** Piece index -> digest (hex) of the pieces whose data is durable in the data file. */
  readonly pieces: ReadonlyMap<number, string>;
}

export function identityOf(e: Entry, pieceSize: number): PartialIdentity {
  return {
    path: e.path,
    size: e.size,
    mtimeMs: e.mtimeMs,
    ino: e.ino,
    pieceSize,
    count: Math.ceil(e.size / pieceSize),
  };
}

export function sameIdentity(a: PartialIdentity, b: PartialIdentity): boolean {
  return (
    a.path === b.path &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ino === b.ino &&
    a.pieceSize === b.pieceSize &&
    a.count === b.count
  );
}

export function manifestHeader(id: PartialIdentity): string {
  return `${JSON.stringify({
    v: MANIFEST_VERSION,
    path: id.path,
    size: id.size,
    mtimeMs: id.mtimeMs,
    ino: id.ino,
    pieceSize: id.pieceSize,
    count: id.count,
  })}\n`;
}

export function manifestPieceLines(pieces: readonly { index: number; digest: string }[]): string {
  return pieces.map((p) => `${JSON.stringify({ i: p.index, d: p.digest })}\n`).join('');
}

const HEX16 = /^[0-9a-f]{16}$/;

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Parses a manifest. Undefined when the header is missing or not of this version (the
 * partial is then discarded); piece lines stop at the first line that is not complete and
 * well formed (a torn append), and a piece index outside the file is ignored.
 */
export function parseManifest(text: string): PartialManifest | undefined {
  const lines = text.split('\n');
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (
    typeof h !== 'object' ||
    h === null ||
    h['v'] !== MANIFEST_VERSION ||
    typeof h['path'] !== 'string' ||
    !isCount(h['size']) ||
    typeof h['mtimeMs'] !== 'number' ||
    !isCount(h['ino']) ||
    !isCount(h['pieceSize']) ||
    h['pieceSize'] === 0 ||
    !isCount(h['count']) ||
    h['count'] !== Math.ceil(h['size'] / h['pieceSize']) ||
    // The header line itself must be complete: a torn header is no manifest.
    lines.length < 2
  )
    return undefined;
  const count = h['count'];
  const pieces = new Map<number, string>();
  // The last element is what follows the final '\n': empty, or a torn line.
  for (const line of lines.slice(1, -1)) {
    let p: { i?: unknown; d?: unknown };
    try {
      p = JSON.parse(line) as typeof p;
    } catch {
      break;
    }
    if (!isCount(p.i) || typeof p.d !== 'string' || !HEX16.test(p.d)) break;
    if (p.i < count) pieces.set(p.i, p.d);
  }
  return {
    path: h['path'],
    size: h['size'],
    mtimeMs: h['mtimeMs'],
    ino: h['ino'],
    pieceSize: h['pieceSize'],
    count,
    pieces,
  };
}

/**
 * The pieces a sender may skip: those the receiver holds whose digest equals the sender's
 * digest of the same piece now. Never all of them: the last piece the receiver would
 * otherwise not hear about travels anyway, so every resumed file still gets one write that
 * completes and places it.
 */
export function piecesToSkip(
  held: readonly { readonly index: number; readonly digest: string }[],
  senderDigests: readonly (string | undefined)[],
  count: number,
): number[] {
  const skip: number[] = [];
  held.forEach((h, k) => {
    if (h.index >= 0 && h.index < count && senderDigests[k] === h.digest) skip.push(h.index);
  });
  const unique = [...new Set(skip)].sort((a, b) => a - b);
  if (unique.length >= count) unique.pop();
  return unique;
}
