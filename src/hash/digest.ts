/**
 * The content digest. A file is cut into CHUNK_SIZE pieces; each piece gets an xxh64 digest
 * and the file's digest is the xxh64 of its pieces' digests (8 bytes each, big-endian).
 * Pieces can so be read, sent, verified and resumed independently and on several threads,
 * and the whole-file digest needs no second pass. An empty file has no pieces.
 *
 * The numbers are xxhash-wasm's; where the pool's addon loads (src/native/fsio.c), it
 * computes the same ones. Perf: xxhash-wasm copies each piece into its memory first, and
 * hashed the 5 GB of a mixed push in ~0.7 s of each worker's time (bench/RESULTS.md).
 */
import xxhash from 'xxhash-wasm';
import type { XXHashAPI } from 'xxhash-wasm';
import { nativeIo } from './native-io.js';

export const CHUNK_SIZE = 4 * 1024 * 1024;

let api: XXHashAPI | undefined;

export async function loadHasher(): Promise<XXHashAPI> {
  api ??= await xxhash();
  return api;
}

export function chunkCount(size: number): number {
  return Math.ceil(size / CHUNK_SIZE);
}

/** XXH64 (seed 0) of the bytes: the addon's where it loads, else xxhash-wasm's. */
function h64(h: XXHashAPI, data: Uint8Array): bigint {
  const io = nativeIo();
  return io ? io.xxh64(data) : h.h64Raw(data, 0n);
}

/** xxh64 of `data` (one piece) as a bigint. */
export function pieceDigest(h: XXHashAPI, data: Uint8Array): bigint {
  return h64(h, data);
}

/** Combines piece digests (in order) into the file digest, as 16 hex digits. */
export function combineDigests(h: XXHashAPI, pieces: readonly bigint[]): string {
  const buf = new Uint8Array(pieces.length * 8);
  const view = new DataView(buf.buffer);
  pieces.forEach((d, i) => view.setBigUint64(i * 8, d, false));
  return h64(h, buf).toString(16).padStart(16, '0');
}

export function pieceHex(d: bigint): string {
  return d.toString(16).padStart(16, '0');
}
