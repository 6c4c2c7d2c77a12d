/**
 * Cuts the files to send into read batches: many small files per batch (so per-file round
 * trips never dominate a small-file tree), and big files into CHUNK_SIZE pieces that travel
 * in batches of their own and can be in flight in parallel.
 */
import type { Entry } from '../core/entry.js';
import { CHUNK_SIZE } from '../hash/digest.js';
import { READ_BUFFER_BYTES } from '../hash/pool.js';

export interface Segment {
  readonly entry: Entry;
  readonly offset: number;
  readonly length: number;
  readonly index: number;
  /** How many segments the file has in all (at least 1, even when empty). */
  readonly count: number;
}

export interface BatchLimits {
  readonly maxFiles: number;
  readonly maxBytes: number;
}

// A full batch fits the pool's reused read buffers.
export const DEFAULT_LIMITS: BatchLimits = { maxFiles: 1024, maxBytes: READ_BUFFER_BYTES };

/** True for a file that travels in several pieces (and can resume, see core/partial.ts). */
export function isChunked(e: Entry): boolean {
  return e.kind === 'file' && e.size > CHUNK_SIZE;
}

/**
 * Yields batches of segments; each file's segments are yielded in order. `skip` names, per
 * path, the pieces of a big file the receiver already holds (resume): they are left out,
 * and the segments sent keep their index and the file's full count.
 */
export function* planBatches(
  files: Iterable<Entry>,
  limits: BatchLimits = DEFAULT_LIMITS,
  skip: ReadonlyMap<string, readonly number[]> = new Map(),
): Generator<Segment[]> {
  let batch: Segment[] = [];
  let bytes = 0;
  for (const e of files) {
    if (e.kind !== 'file' || e.size <= CHUNK_SIZE) {
      const len = e.kind === 'file' ? e.size : 0;
      if (batch.length > 0 && (batch.length >= limits.maxFiles || bytes + len > limits.maxBytes)) {
        yield batch;
        batch = [];
        bytes = 0;
      }
      batch.push({ entry: e, offset: 0, length: len, index: 0, count: 1 });
      bytes += len;
      continue;
    }
    const count = Math.ceil(e.size / CHUNK_SIZE);
    const held = new Set(skip.get(e.path) ?? []);
    for (let i = 0; i < count; i++) {
      if (held.has(i)) continue;
      const offset = i * CHUNK_SIZE;
      const seg: Segment = {
        entry: e,
        offset,
        length: Math.min(CHUNK_SIZE, e.size - offset),
        index: i,
        count,
      };
      if (batch.length > 0 && bytes + seg.length > limits.maxBytes) {
        yield batch;
        batch = [];
        bytes = 0;
      }
      batch.push(seg);
      bytes += seg.length;
    }
  }
  if (batch.length > 0) yield batch;
}
