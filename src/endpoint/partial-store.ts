/**
 * The receiver's partial big files, kept across runs so an interrupted transfer resumes:
 * `<dir>/.private-asp/<name>/partial/<key>.data` (the bytes, written at their offsets) and
 * `<key>.manifest` (which sender file they belong to and which pieces are held, see
 * core/partial.ts). `key` is a digest of the relative path, so names stay short and safe.
 *
 * Durability rule: a piece is appended to the manifest only after the worker that wrote it
 * verified it against the sender's digest and wrote it, and nothing here is fsynced: a
 * killed process loses nothing (the bytes are in the page cache), and what a power loss
 * loses is caught where it matters. Every held piece is re-read and checked against its
 * digest before it is offered (offer()), so a piece whose bytes never reached the disk, or
 * were damaged there, is sent again; a torn manifest line ends the list of held pieces
 * (core/partial.ts), a torn header drops the partial; and a resumed file is hashed whole
 * before it is placed (checkWhole()). Perf: an fdatasync per 4 MiB piece made a push write
 * every byte to the disk during the run: 8-10 % of a 5 GB push on a disk that absorbed the
 * writes quickly, 35 s against 20 s in the benchmark (bench/RESULTS.md).
 *
 * The small-file transfer cache (`cache/`) is separate and still emptied at every open.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Entry } from '../core/entry.js';
import type { PartialIdentity, PartialManifest } from '../core/partial.js';
import {
  identityOf,
  manifestHeader,
  manifestPieceLines,
  parseManifest,
  sameIdentity,
} from '../core/partial.js';
import { describeIoError, errnoCode } from '../errors.js';
import { CHUNK_SIZE } from '../hash/digest.js';
import type { WorkPool } from '../hash/pool.js';
import { isChunked } from '../transfer/batches.js';
import type { ResumeOffer } from './endpoint.js';

/** Partials nobody resumed for this long are removed at open, whatever happened since. */
export const PARTIAL_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

export class PartialStore {
  /** Keys resumed or written in this run; finish() drops the others (see pruneUntouched). */
  private readonly touched = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly pool: WorkPool,
  ) {}

  key(path: string): string {
    return createHash('sha256').update(path).digest('hex').slice(0, 40);
  }

  dataPath(path: string): string {
    return join(this.dir, `${this.key(path)}.data`);
  }

  private manifestPath(path: string): string {
    return join(this.dir, `${this.key(path)}.manifest`);
  }

  /** Creates the directory; drops partials that are malformed, orphaned or too old. */
  open(now: number): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const names = readdirSync(this.dir);
    const manifests = new Set(
      names.filter((n) => n.endsWith('.manifest')).map((n) => n.slice(0, -9)),
    );
    for (const n of names) {
      const key = n.replace(/\.(data|manifest)$/, '');
      const abs = join(this.dir, n);
      if (key === n || !manifests.has(key)) {
        rmSync(abs, { recursive: true, force: true });
        continue;
      }
      if (!n.endsWith('.manifest')) continue;
      const m = readManifest(abs);
      const data = join(this.dir, `${key}.data`);
      let stale = m === undefined || !names.includes(`${key}.data`) || this.key(m.path) !== key;
      try {
        stale ||= now - statSync(abs).mtimeMs > PARTIAL_MAX_AGE_MS;
      } catch {
        stale = true;
      }
      if (stale) {
        rmSync(abs, { force: true });
        rmSync(data, { force: true });
      }
    }
  }

  /** Removes every partial (a reset). */
  clear(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The manifest of `path`'s partial, if there is a readable one. */
  load(path: string): PartialManifest | undefined {
    const m = readManifest(this.manifestPath(path));
    return m?.path === path ? m : undefined;
  }

  discard(path: string): void {
    rmSync(this.manifestPath(path), { force: true });
    rmSync(this.dataPath(path), { force: true });
  }

  /** Marks `path` as used by this run, so finish() keeps its partial. */
  touch(path: string): void {
    this.touched.add(this.key(path));
  }

  /**
   * Starts a fresh partial for the sender's file `id`: an empty data file and a manifest
   * holding only the header.
   */
  start(id: PartialIdentity): string {
    this.discard(id.path);
    this.touch(id.path);
    const data = this.dataPath(id.path);
    closeSync(openSync(data, 'wx', 0o600));
    const fd = openSync(this.manifestPath(id.path), 'wx', 0o600);
    try {
      writeSync(fd, manifestHeader(id));
    } finally {
      closeSync(fd);
    }
    return data;
  }

  /**
   * What this side holds of the sender's file `e` (the answer to Endpoint.resumable): the
   * pieces marked in the manifest that still match their digest when read back now (a piece
   * damaged on disk is not offered, so it is sent again). A partial of another version of
   * the file (size, mtime or inode differ) is discarded.
   */
  async offer(e: Entry): Promise<ResumeOffer> {
    const none = { path: e.path, pieces: [] };
    if (!isChunked(e)) return none;
    this.touch(e.path);
    const m = this.load(e.path);
    if (!m) return none;
    if (!sameIdentity(m, identityOf(e, CHUNK_SIZE))) {
      this.discard(e.path);
      return none;
    }
    const indices = [...m.pieces.keys()].sort((a, b) => a - b);
    if (indices.length === 0) return none;
    const [r] = await this.pool.pieces([{ abs: this.dataPath(e.path), indices }]);
    if (!r?.ok) {
      this.discard(e.path);
      return none;
    }
    return {
      path: e.path,
      pieces: indices
        .filter((index, k) => r.digests[k] === m.pieces.get(index))
        .map((index) => ({ index, digest: m.pieces.get(index)! })),
    };
  }

  /**
   * The first segment of a big file arrived in this run. Without `skip` a fresh partial is
   * started (replacing any older one). With it, every skipped piece must be held for this
   * very source version; `held` then gives their digests. Otherwise the file fails (it is
   * sent in full next run) rather than be placed with holes.
   */
  begin(
    entry: Entry,
    count: number,
    skip: readonly number[],
  ): { cache: string; held: Map<number, string>; failed?: string } {
    const id = identityOf(entry, CHUNK_SIZE);
    if (skip.length === 0) return { cache: this.start(id), held: new Map() };
    const m = this.load(entry.path);
    const unique = new Set(skip);
    if (
      m === undefined ||
      !sameIdentity(m, id) ||
      id.count !== count ||
      [...unique].some((i) => !m.pieces.has(i))
    ) {
      this.discard(entry.path);
      return {
        cache: this.dataPath(entry.path),
        held: new Map(),
        failed:
          'the pieces kept from an earlier run are gone at the receiver; it is sent in full next run',
      };
    }
    this.touch(entry.path);
    return {
      cache: this.dataPath(entry.path),
      held: new Map([...unique].map((i) => [i, m.pieces.get(i)!])),
    };
  }

  /**
   * A resumed file is assembled from pieces of two runs: before it is placed, the whole data
   * file as it is on disk must have the sender's size and hash to `digest`, the digest its
   * verified pieces combine to. Undefined when it does, else why not.
   */
  async checkWhole(cache: string, size: number, digest: string): Promise<string | undefined> {
    let st;
    try {
      st = statSync(cache);
    } catch (e) {
      return `the resumed file is gone from the receiver's partial store: ${describeIoError(e)}`;
    }
    if (st.size !== size)
      return 'the resumed file has the wrong size at the receiver; it is sent in full next run';
    const [r] = await this.pool.hash([
      { abs: cache, expect: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } },
    ]);
    return r?.ok && r.digest === digest
      ? undefined
      : 'the resumed file did not match the sender digest at the receiver; it is sent in full next run';
  }

  /** Appends pieces to the manifest (their data must already be written and verified). */
  mark(path: string, pieces: readonly { index: number; digest: string }[]): void {
    if (pieces.length === 0) return;
    const fd = openSync(this.manifestPath(path), 'a');
    try {
      writeSync(fd, manifestPieceLines(pieces));
    } finally {
      closeSync(fd);
    }
  }

  /** Called once the data file was renamed into place: only the manifest is left. */
  placed(path: string): void {
    rmSync(this.manifestPath(path), { force: true });
  }

  /**
   * End of a run that went through its plan: a partial this run neither resumed nor wrote
   * belongs to a file that is no longer to be sent (deleted, or already equal at the
   * receiver), so it is dropped. A failed run keeps them all for the next one.
   */
  pruneUntouched(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
    }
    for (const n of names) {
      const key = n.replace(/\.(data|manifest)$/, '');
      if (!this.touched.has(key)) rmSync(join(this.dir, n), { recursive: true, force: true });
    }
  }
}

function readManifest(abs: string): PartialManifest | undefined {
  try {
    return parseManifest(readFileSync(abs, 'utf8'));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * How many pieces the manifests in a partial directory mark as held (a torn last line
 * aside): what a rerun may skip sending. For tests, benchmarks and inspection.
 */
export function heldPieceCount(dir: string): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const f of names) {
    if (!f.endsWith('.manifest')) continue;
    try {
      n += parseManifest(readFileSync(join(dir, f), 'utf8'))?.pieces.size ?? 0;
    } catch {
      // Gone since the listing: it holds nothing.
    }
  }
  return n;
}
