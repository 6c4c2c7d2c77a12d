/**
 * The content digest. A file is cut into CHUNK_SIZE pieces; each piece gets an xxh64 digest
 * and the file's digest is the xxh64 of its pieces' digests (8 bytes each, big-endian).
 * Pieces can so be read, sent, verified and resumed independently and on several threads,
 * and the whole-file digest needs no second pass. An empty file has no pieces.
 */
import xxhash from 'xxhash-wasm';
import type { XXHashAPI } from 'xxhash-wasm';

export const CHUNK_SIZE = 4 * 1024 * 1024;

let api: XXHashAPI | undefined;

export async function loadHasher(): Promise<XXHashAPI> {
  api ??= await xxhash();
  return api;
}

export function chunkCount(size: number): number {
  return Math.ceil(size / CHUNK_SIZE);
}

/** xxh64 of `data` (one piece) as a bigint. */
export function pieceDigest(h: XXHashAPI, data: Uint8Array): bigint {
  return h.h64Raw(data, 0n);
}

/** Combines piece digests (in order) into the file digest, as 16 hex digits. */
export function combineDigests(h: XXHashAPI, pieces: readonly bigint[]): string {
  const buf = new Uint8Array(pieces.length * 8);
  const view = new DataView(buf.buffer);
  pieces.forEach((d, i) => view.setBigUint64(i * 8, d, false));
  return h.h64Raw(buf, 0n).toString(16).padStart(16, '0');
}

export function pieceHex(d: bigint): string {
  return d.toString(16).padStart(16, '0');
}
