/**
 * Moves file data from a sender to a receiver: reads batches of segments, waits on the
 * session's one rate limiter, hands each batch to the receiver. Several lanes run at once so
 * reading, the wire and writing overlap, and pieces of one big file travel in parallel.
 * At most `lanes` batches are in memory at any time (backpressure by construction), and the
 * items are read from an iterable as batches are cut, so the engine can hand over a whole
 * plan without building per-item arrays or maps of it (memory flat in the number of files).
 */
import type { Entry } from '../core/entry.js';
import type { DataBatch, Endpoint, PlaceResult } from '../endpoint/endpoint.js';
import type { RateLimiter } from './rate-limiter.js';
import { unlimited } from './rate-limiter.js';
import type { Segment } from './batches.js';
import { planBatches } from './batches.js';

export interface SendItem {
  readonly entry: Entry;
  readonly expect?: Entry | null;
  readonly force?: boolean;
}

export interface PumpOptions {
  readonly limiter: RateLimiter;
  readonly lanes: number;
  readonly signal?: AbortSignal;
  /** Called as bytes are handed to the receiver (as they go on the wire, with a target rate). */
  readonly onBytes?: (bytes: number) => void;
  /**
   * Called with each batch's results before the lane goes on (to record them); `entryOf`
   * gives the sent entry of each result's path.
   */
  readonly onResults?: (
    r: readonly PlaceResult[],
    entryOf: (path: string) => Entry | undefined,
  ) => Promise<void>;
  /**
   * Awaited (when it returns a promise) before a batch read goes to the receiver: the
   * engine holds a batch until the directories its files land in are made.
   */
  readonly placeable?: (segments: readonly Segment[]) => Promise<void> | undefined;
  /** Resume: per path, the pieces the receiver holds and the sender skips (resume.ts). */
  readonly skip?: ReadonlyMap<string, readonly number[]>;
}

export interface PumpResult {
  readonly bytes: number;
}

export async function pump(
  sender: Endpoint,
  receiver: Endpoint,
  items: Iterable<SendItem>,
  opts: PumpOptions,
): Promise<PumpResult> {
  // Only the items that carry an expectation or a force are looked up again, and only
  // while they are in flight. Perf: an initial push of 1M files has none, and a map of all
  // of them costs ~100 MB.
  const intent = new Map<string, SendItem>();
  function* entries(): Generator<Entry> {
    for (const it of items) {
      if (it.expect !== undefined || it.force) intent.set(it.entry.path, it);
      yield it.entry;
    }
  }
  const skip = opts.skip ?? new Map<string, readonly number[]>();
  const batches = planBatches(entries(), undefined, skip);
  let bytes = 0;
  const limited = opts.limiter !== unlimited;

  const lane = async (): Promise<void> => {
    for (;;) {
      opts.signal?.throwIfAborted();
      const next = batches.next();
      if (next.done) return;
      // With a target rate, bytes are charged where they cross a wire (Endpoint.read and
      // .write): a remote sender's reply as it is consumed, a remote receiver's request
      // body as it is sent, each byte once. Perf: without one, nothing is paced.
      let paced = 0;
      const pace = limited
        ? async (n: number): Promise<void> => {
            await opts.limiter.take(n, opts.signal);
            paced += n;
            opts.onBytes?.(n);
          }
        : undefined;
      const read = await sender.read(next.value, pace);
      const batch: DataBatch = {
        data: read.data,
        segments: read.segments.map((s) => {
          const it = intent.get(s.entry.path);
          // Perf: most segments (all of an initial push) carry nothing more: no copy.
          if (it === undefined && !skip.has(s.entry.path)) return s;
          return {
            ...s,
            ...(it?.expect !== undefined ? { expect: it.expect } : {}),
            ...(it?.force ? { force: true } : {}),
            ...(skip.has(s.entry.path) ? { skip: skip.get(s.entry.path) } : {}),
          };
        }),
      };
      const size = batch.data.byteLength;
      // Bytes the read already paced are not charged again by the write.
      const payWrite = pace
        ? async (n: number): Promise<void> => {
            const due = Math.min(n, size - paced);
            if (due > 0) await pace(due);
          }
        : undefined;
      const wait = opts.placeable?.(batch.segments);
      if (wait) await wait;
      const placed = await receiver.write(batch, payWrite);
      // Bytes a receiver did not pace are charged now, so the long-run rate stays exact.
      if (paced < size) {
        if (limited) await opts.limiter.take(size - paced, opts.signal);
        opts.onBytes?.(size - paced);
      }
      bytes += size;
      for (const r of placed) intent.delete(r.path);
      await opts.onResults?.(placed, entryLookup(batch.segments));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.lanes) }, lane));
  return { bytes };
}

/**
 * The sent entry of a result's path. Results come in the order of the batch's segments
 * (a file's last segment), so each is looked for at the segment after the one found
 * last; a map of the batch is made only when one is not there. Perf: no map and no
 * pair per file of a small-file push.
 */
function entryLookup(segments: readonly Segment[]): (path: string) => Entry | undefined {
  let at = 0;
  let byPath: Map<string, Entry> | undefined;
  return (path) => {
    for (let k = at; k < segments.length && k < at + 2; k++) {
      // A big file's earlier pieces in this batch come before its last one.
      const e = segments[k]!.entry;
      if (e.path === path) {
        at = k + 1;
        return e;
      }
    }
    byPath ??= new Map(segments.map((s) => [s.entry.path, s.entry]));
    return byPath.get(path);
  };
}
