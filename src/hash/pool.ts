/**
 * The worker pool. One per process; its size follows --transfer-threads or the number of
 * cores. Callers batch their work (see transfer/) so a task carries many small files.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import {
  packReadSegments,
  packWriteItems,
  unpackReadOutcomes,
  unpackWriteOutcomes,
} from './task-codec.js';
import { READ_BUFFER_BYTES } from './worker.js';
import type {
  Expect,
  HashOutcome,
  PackedReadReply,
  PackedWriteReply,
  PieceOutcome,
  PieceTask,
  ReadReply,
  ReadSegment,
  WriteItem,
  WriteOutcome,
} from './worker.js';

export type {
  CreateMeta,
  Expect,
  HashOutcome,
  PieceOutcome,
  PieceTask,
  ReadReply,
  ReadOutcome,
  ReadSegment,
  StagedStat,
  WriteItem,
  WriteOutcome,
} from './worker.js';

/**
 * The worker script. The compiled tree finds it beside this file; the native-free bundle,
 * where this file is inlined into a CLI bundle, points it at its own bundled worker.
 */
// The CommonJS entry that loads worker.js (see worker-entry.cts).
let workerScript = new URL('./worker-entry.cjs', import.meta.url).href;

/** Sets the worker script (a file: URL) for pools created after this call. */
export function setWorkerScript(href: string): void {
  workerScript = href;
}

export { READ_BUFFER_BYTES } from './worker.js';

/** Spare read buffers kept at most (one per lane in flight is what a transfer reuses). */
const MAX_SPARE = 8;

export class WorkPool {
  private readonly pool: Piscina;
  /**
   * The buffers this pool's read tasks filled and hashed: a write of one of them, in this
   * process, need not hash its bytes again to check them against the digests that came
   * with them (the same bytes, never copied through a wire).
   */
  private readonly hashedHere = new WeakSet<ArrayBuffer>();
  /**
   * Buffers handed back by write tasks, for the next reads (a local peer's transfer: one
   * per lane in flight). Perf: a fresh buffer per batch costs a page fault per 4 KiB page
   * the read fills (0.6 s of CPU in a 5 GB push).
   */
  private readonly spare: ArrayBuffer[] = [];
  /**
   * A write task handed a read buffer back: this pool writes what it reads (a local peer),
   * so reads make buffers that can go round (worker.ts, SMALL_READ_BYTES). Elsewhere (a
   * daemon, a client sending to one) each read's buffer leaves on a wire and is dropped,
   * and one of the batch's own size is the least to drop.
   */
  private buffersReturn = false;

  constructor(threads?: number) {
    const n = threads ?? Math.max(1, availableParallelism());
    this.pool = new Piscina({
      filename: workerScript,
      // The handler a thread loads when it starts (piscina's default, `default`, is none).
      name: 'read',
      minThreads: 1,
      maxThreads: n,
      idleTimeout: 30_000,
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  /** Reads and hashes segments (tasks and answers travel packed: task-codec.ts). */
  async read(segments: ReadSegment[]): Promise<ReadReply> {
    const packed = packReadSegments(segments);
    const total = segments.reduce((n, s) => n + s.length, 0);
    const at = this.spare.findIndex((b) => b.byteLength >= total);
    const buf = total > 0 && at >= 0 ? this.spare.splice(at, 1)[0] : undefined;
    const transferList = [packed.nums.buffer as ArrayBuffer];
    if (buf) transferList.push(buf);
    const reply = (await this.pool.run(
      { packed, buf, reuse: this.buffersReturn },
      { name: 'read', transferList },
    )) as PackedReadReply;
    this.hashedHere.add(reply.data.buffer as ArrayBuffer);
    return { data: reply.data, outcomes: unpackReadOutcomes(reply.outcomes) };
  }

  async write(data: Uint8Array, items: WriteItem[]): Promise<WriteOutcome[]> {
    // Perf: the bytes move to the worker; the caller must not touch `data` afterwards.
    const packed = packWriteItems(items);
    const transferList = [packed.nums.buffer as ArrayBuffer];
    const buffer = data.buffer as ArrayBuffer;
    if (data.byteLength > 0) transferList.push(buffer);
    const ours = this.hashedHere.has(buffer);
    const reply = (await this.pool.run(
      { data, packed, trusted: ours },
      { name: 'write', transferList },
    )) as PackedWriteReply;
    // Only this pool's own read buffers come back (a local peer's; worker.ts): one off a
    // wire is let go, so a daemon keeps no spare memory after a client's push.
    if (reply.buf) {
      this.buffersReturn = true;
      if (reply.buf.byteLength >= READ_BUFFER_BYTES && this.spare.length < MAX_SPARE)
        this.spare.push(reply.buf);
    }
    return unpackWriteOutcomes(reply.outcomes);
  }

  hash(files: { abs: string; expect: Expect }[]): Promise<HashOutcome[]> {
    return this.pool.run({ files }, { name: 'hash' }) as Promise<HashOutcome[]>;
  }

  pieces(files: PieceTask[]): Promise<PieceOutcome[]> {
    return this.pool.run({ files }, { name: 'pieces' }) as Promise<PieceOutcome[]>;
  }

  async close(): Promise<void> {
    this.spare.length = 0;
    await this.pool.destroy();
  }
}
