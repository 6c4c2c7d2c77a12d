/**
 * The worker pool. One per process; its size follows --transfer-threads or the number of
 * cores. Callers batch their work (see transfer/) so a task carries many small files.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { Packed } from './task-codec.js';
import {
  packReadSegments,
  packWriteItems,
  unpackReadOutcomes,
  unpackWriteOutcomes,
} from './task-codec.js';
import type {
  Expect,
  HashOutcome,
  PackedReadReply,
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

export class WorkPool {
  private readonly pool: Piscina;

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
    const reply = (await this.pool.run(
      { packed },
      { name: 'read', transferList: [packed.nums.buffer as ArrayBuffer] },
    )) as PackedReadReply;
    return { data: reply.data, outcomes: unpackReadOutcomes(reply.outcomes) };
  }

  async write(data: Uint8Array, items: WriteItem[]): Promise<WriteOutcome[]> {
    // Perf: the bytes move to the worker; the caller must not touch `data` afterwards.
    const packed = packWriteItems(items);
    const transferList = [packed.nums.buffer as ArrayBuffer];
    if (data.byteLength > 0) transferList.push(data.buffer as ArrayBuffer);
    const reply = (await this.pool.run(
      { data, packed },
      { name: 'write', transferList },
    )) as Packed;
    return unpackWriteOutcomes(reply);
  }

  hash(files: { abs: string; expect: Expect }[]): Promise<HashOutcome[]> {
    return this.pool.run({ files }, { name: 'hash' }) as Promise<HashOutcome[]>;
  }

  pieces(files: PieceTask[]): Promise<PieceOutcome[]> {
    return this.pool.run({ files }, { name: 'pieces' }) as Promise<PieceOutcome[]>;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
