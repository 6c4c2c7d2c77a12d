/**
 * A thread that writes `entries` rows into a snapshot database on a connection of its own,
 * so that a big run's rows are written while the main thread goes on (SnapshotStore hands
 * it the rows of each committed write() while its table fills from empty: a reset, an
 * initial sync). Perf: a reset of two identical 1M-file trees spent ~4 of its 15 s on the
 * main thread writing both snapshots' rows one after the other while the second core idled.
 *
 * The protocol is one-way: batches go in by postMessage (a packed RowPacker batch each, its
 * numbers' buffer transferred), and the thread counts each batch it committed in shared
 * memory, so the store can wait for them synchronously (Atomics.wait) before it touches the
 * database itself. Each batch is one transaction. A batch that fails (a full disk) stops
 * the thread: it writes nothing more, and the store reports the error on its next use,
 * every time after (its later rows are lost, never half-written: only missing records,
 * which the next run redoes).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import type { Packed } from '../core/packing.js';
import { SessionError } from '../errors.js';
import type { DriverName, SqliteDriver } from './driver.js';
import type { RowValue } from './rows.js';
import {
  PUT_COLUMNS,
  PUT_ROWS,
  UPSERT,
  UPSERT_ROW,
  WAL_CHECKPOINT_PAGES,
  unpackRows,
} from './rows.js';
import { snapshotDriver, useDrivers } from './select-driver.js';

interface WriterJob {
  readonly task: 'snapshot-writer';
  readonly path: string;
  readonly driver: DriverName;
  /**
   * Int32 [0] batches committed, [1] 1 once failed, [2] the message's bytes, [3] 1 once the
   * database is open; the message from byte 16.
   */
  readonly state: SharedArrayBuffer;
}

/**
 * Per-directory records packed: `text` the directories and their names strings (NUL
 * between them), `attrs` every record's attributes one after the other, `ends` where each
 * record's attributes end in `attrs`.
 */
export interface PackedRecords {
  readonly text: string;
  readonly attrs: Uint8Array;
  readonly ends: Uint32Array;
}

/** The records of a table filled from empty, written after the rows handed over before. */
export interface RecordsBatch {
  readonly records: PackedRecords;
  /** Every record goes first (the store's records were all to be rebuilt). */
  readonly clear: boolean;
  /** No directory lacks its record afterwards: meta dir_records says 'complete'. */
  readonly complete: boolean;
}

type WriterMessage = { readonly rows: Packed } | RecordsBatch | { readonly close: true };

const DONE = 0;
const FAILED = 1;
const MESSAGE_BYTES = 2;
const OPENED = 3;
/** How long the store waits for the thread to open the database before it writes alone. */
const OPEN_TIMEOUT_MS = 30_000;
const MESSAGE_AT = 16;
const STATE_BYTES = 4096;
/** Batches handed over and not yet committed, at most (see send()). */
const IN_FLIGHT = 8;
/** Seconds without a committed batch after which wait() gives up on the thread. */
const STALL_S = 300;

/** True where this module is its own file (not inlined into the native-free bundle). */
export function writerThreadAvailable(): boolean {
  return /\/snapshot\/writer-thread\.js$/.test(import.meta.url);
}

/**
 * A failure of the writer thread (a full disk, a database gone or damaged), as the store
 * reports it: the session stops; rows the thread did not write are missing records, which
 * the next run redoes.
 */
export class WriterError extends SessionError {
  constructor(message: string) {
    super(
      'ERR_IO',
      `Writing the snapshot database failed (in its writer thread): ${message}.`,
      'Check the free space and permissions of the snapshot directory (-b/-B), then run the session again.',
    );
  }
}

/** The main thread's handle on one writer thread (one per store that uses it). */
export class RowWriter {
  private readonly worker: Worker;
  private readonly state: Int32Array;
  private readonly bytes: Uint8Array;
  private sent = 0;
  private closed = false;
  /** committed() calls waiting (the worker is ref'd while there are any). */
  private waiting = 0;

  constructor(path: string, driver: DriverName) {
    const sab = new SharedArrayBuffer(STATE_BYTES);
    this.state = new Int32Array(sab, 0, 4);
    this.bytes = new Uint8Array(sab);
    const job: WriterJob = { task: 'snapshot-writer', path, driver, state: sab };
    this.worker = new Worker(new URL(import.meta.url), { workerData: job });
    // Never what keeps the process alive: close() is awaited synchronously by the store.
    this.worker.unref();
    // A thread that fails to start says so in shared memory (see the worker below); an
    // 'error' event with no listener would end the process instead.
    this.worker.on('error', () => undefined);
    // Opened, or not: the store writes alone when the thread cannot open the file (it was
    // deleted meanwhile, say), as it did before there was a thread. Perf: ~40 ms, once.
    Atomics.wait(this.state, OPENED, 0, OPEN_TIMEOUT_MS);
    if (Atomics.load(this.state, OPENED) !== 1) {
      void this.worker.terminate();
      this.closed = true;
      throw Atomics.load(this.state, FAILED) !== 0
        ? this.failure()
        : new WriterError('the thread did not start');
    }
  }

  /**
   * Hands over one committed write()'s rows. Backpressure: with IN_FLIGHT batches not yet
   * committed it first waits for one, so the rows queued for the thread stay bounded
   * however far ahead this thread runs.
   */
  send(rows: Packed): void {
    this.post({ rows }, [rows.nums.buffer as ArrayBuffer]);
  }

  /** Hands over per-directory records (see RecordsBatch), after the rows sent before. */
  sendRecords(batch: RecordsBatch): void {
    const { attrs, ends } = batch.records;
    this.post(batch, [attrs.buffer as ArrayBuffer, ends.buffer as ArrayBuffer]);
  }

  private post(message: WriterMessage, transfer: ArrayBuffer[]): void {
    if (this.closed) throw new Error('snapshot writer used after close');
    this.waitFor(this.sent - IN_FLIGHT + 1);
    this.sent++;
    this.worker.postMessage(message, transfer);
  }

  /**
   * Resolves once every batch sent so far is committed (without blocking this thread);
   * rejects with the thread's failure.
   */
  async committed(): Promise<void> {
    const n = this.sent;
    // An asynchronous wait does not keep the event loop alive by itself: the thread does,
    // while someone waits for it.
    if (this.waiting++ === 0) this.worker.ref();
    try {
      for (;;) {
        if (Atomics.load(this.state, FAILED) !== 0) throw this.failure();
        const done = Atomics.load(this.state, DONE);
        if (done >= n) return;
        const w = Atomics.waitAsync(this.state, DONE, done, 1000);
        if (w.async) await w.value;
      }
    } finally {
      if (--this.waiting === 0) this.worker.unref();
    }
  }

  /** Waits until every batch sent is committed; throws the thread's failure, every time. */
  wait(): void {
    this.waitFor(this.sent);
  }

  /** Waits until `n` batches are committed (throws the thread's failure). */
  private waitFor(n: number): void {
    let still = 0;
    for (;;) {
      if (Atomics.load(this.state, FAILED) !== 0) throw this.failure();
      const done = Atomics.load(this.state, DONE);
      if (done >= n) return;
      // A thread that died without a word (it cannot be heard while this thread blocks):
      // no batch takes minutes, so a long silence is reported rather than waited out.
      if (Atomics.wait(this.state, DONE, done, 1000) === 'timed-out' && ++still >= STALL_S)
        throw new WriterError('the thread stopped answering');
      if (Atomics.load(this.state, DONE) !== done) still = 0;
    }
  }

  /** Waits for the batches sent, then stops the thread (its connection closed). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.wait();
      this.sent++;
      this.worker.postMessage({ close: true } satisfies WriterMessage);
      this.wait();
    } finally {
      void this.worker.terminate();
    }
  }

  private failure(): WriterError {
    const n = Atomics.load(this.state, MESSAGE_BYTES);
    return new WriterError(
      Buffer.from(this.bytes.slice(MESSAGE_AT, MESSAGE_AT + n)).toString('utf8'),
    );
  }
}

// --- the thread ----------------------------------------------------------------------------

function runWriter(job: WriterJob): void {
  const state = new Int32Array(job.state, 0, 4);
  const bytes = new Uint8Array(job.state);
  const fail = (e: unknown): void => {
    if (Atomics.load(state, FAILED) !== 0) return;
    const text = e instanceof Error ? e.message : String(e);
    const enc = Buffer.from(text, 'utf8').subarray(0, STATE_BYTES - MESSAGE_AT);
    bytes.set(enc, MESSAGE_AT);
    Atomics.store(state, MESSAGE_BYTES, enc.length);
    Atomics.store(state, FAILED, 1);
    Atomics.notify(state, DONE);
    Atomics.notify(state, OPENED);
    parentPort?.close();
  };
  let db: SqliteDriver;
  try {
    useDrivers([job.driver]);
    db = snapshotDriver().open(job.path, { fileMustExist: true, readonly: false });
    db.pragma('synchronous = NORMAL');
    db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    db.pragma('busy_timeout = 5000');
  } catch (e) {
    fail(e);
    return;
  }
  Atomics.store(state, OPENED, 1);
  Atomics.notify(state, OPENED);
  const many = db.prepare<RowValue[]>(
    `${UPSERT} ${Array<string>(PUT_ROWS).fill(UPSERT_ROW).join(', ')}`,
  );
  const one = db.prepare<RowValue[]>(`${UPSERT} ${UPSERT_ROW}`);
  const putRecord = db.prepare<[string, string, Uint8Array]>(
    'INSERT OR REPLACE INTO dirs (dir, names, attrs) VALUES (?, ?, ?)',
  );
  const clearRecords = db.prepare<[]>('DELETE FROM dirs');
  const metaSet = db.prepare<[string, string]>(
    'INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)',
  );
  const writeRecords = (b: RecordsBatch): void => {
    const text = b.records.text.split('\0');
    db.transaction(() => {
      if (b.clear) clearRecords.run();
      let at = 0;
      b.records.ends.forEach((end, i) => {
        putRecord.run(text[2 * i]!, text[2 * i + 1]!, b.records.attrs.slice(at, end));
        at = end;
      });
      if (b.complete) metaSet.run('dir_records', 'complete');
    });
  };
  const write = (rows: Packed): void => {
    db.transaction(() => {
      let values: RowValue[] = [];
      unpackRows(rows, (row) => {
        for (let i = 0; i < PUT_COLUMNS; i++) values.push(row[i]!);
        if (values.length === PUT_ROWS * PUT_COLUMNS) {
          many.run(...values);
          values = [];
        }
      });
      for (let at = 0; at < values.length; at += PUT_COLUMNS)
        one.run(...values.slice(at, at + PUT_COLUMNS));
    });
  };
  parentPort?.on('message', (m: WriterMessage) => {
    if (Atomics.load(state, FAILED) !== 0) return;
    try {
      if ('close' in m) {
        db.close();
        Atomics.add(state, DONE, 1);
        Atomics.notify(state, DONE);
        parentPort?.close();
        return;
      }
      if ('rows' in m) write(m.rows);
      else writeRecords(m);
      Atomics.add(state, DONE, 1);
      Atomics.notify(state, DONE);
    } catch (e) {
      fail(e);
      try {
        db.close();
      } catch {
        // Already failing: the first error is the one reported.
      }
    }
  });
}

if (
  !isMainThread &&
  parentPort &&
  (workerData as WriterJob | undefined)?.task === 'snapshot-writer'
) {
  runWriter(workerData as WriterJob);
}
