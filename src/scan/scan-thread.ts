/**
 * Runs scanTree in worker threads, each with its own read-only connection to the snapshot
 * database. Perf: the scan is synchronous (batched lstatSync is about 2.5 times faster than
 * a promise per file), so the two endpoints of a local session would otherwise scan one
 * after the other on the main thread; in threads both sides scan at once, one core each,
 * and the main thread stays free. SQLite in WAL mode lets the thread read while the
 * endpoint's own connection stays open (nothing writes during a scan).
 *
 * --scan-threads N bounds how many scan threads run at once in this process (ScanThreads
 * below); 0 scans on the calling thread. A big tree that is alone in asking for threads (a
 * first push, whose receiver is empty; each side of a remote session) is split across the
 * free ones (scanner.ts splitTree: its directories taken in turn by the threads, the parts
 * joined here); two big trees at once get one thread each. A thread costs its start-up
 * (loading the scanner and SQLite into a fresh isolate: ~50-100 ms on a quiet machine, ten
 * times that under load), so a tree whose snapshot holds fewer than THREAD_MIN_ENTRIES
 * entries is scanned on the calling thread; when the snapshot is empty (a first scan),
 * splitTree, which lists the tree until it has seen that many names, decides.
 *
 * Only plain data crosses the thread boundary: the scan's inputs (root, database path,
 * scope, filter rules, link mode, what decorates an entry) in, progress and the ScanResult
 * out, its changes packed (change-codec.ts: a first scan of a million files hands over a
 * million changes, which a structured clone would copy at the cost of the scan itself).
 *
 * The same threads rebuild a snapshot's per-directory records when a run changed many
 * (rebuildRecords): that job opens the database for writing while the endpoint's own
 * connection waits, and the two sides of a local session rebuild theirs at once.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { compileFilter } from '../core/filter.js';
import type { FilterRule } from '../core/filter.js';
import type { ErrorCode } from '../errors.js';
import { AsyncError, SessionError } from '../errors.js';
import type { DriverName } from '../snapshot/driver.js';
import { useDrivers } from '../snapshot/select-driver.js';
import type { RecordWork } from '../snapshot/store.js';
import { SnapshotStore } from '../snapshot/store.js';
import type { DecorateSpec } from './decorate.js';
import type { Packed } from '../core/packing.js';
import { packChanges, unpackChanges } from './change-codec.js';
import { decorator } from './decorate.js';
import type { Filter } from '../core/filter.js';
import type { ScanPart, ScanProgress, ScanResult, SplitItem, SymlinkMode } from './scanner.js';
import { joinParts, scanTree, splitTree } from './scanner.js';

/** Everything a scan needs, as plain data. */
export interface ScanJob {
  readonly root: string;
  readonly dbPath: string;
  /** The driver the endpoint's own connection uses, so both read the file alike. */
  readonly driver: DriverName;
  readonly scope?: readonly string[];
  readonly filters?: readonly FilterRule[];
  readonly symlinks?: SymlinkMode;
  readonly decorate: DecorateSpec;
}

/** A snapshot's records to rebuild on a connection of the thread's own. */
export interface RecordJob {
  readonly dbPath: string;
  readonly driver: DriverName;
  readonly work: RecordWork;
}

type WorkerJob =
  | (ScanJob & {
      readonly task: 'scan';
      /** Post progress messages (only when the caller listens). */
      readonly progress: boolean;
      /** One part of a split tree: the items, and the shared index of the next one. */
      readonly split?: { readonly items: readonly SplitItem[]; readonly next: SharedArrayBuffer };
    })
  | (RecordJob & { readonly task: 'records' });

type Reply =
  | { ok: true; result: Omit<ScanResult, 'changes'>; changes: Packed }
  | { ok: 'records' }
  | { ok: 'progress'; progress: ScanProgress }
  | { ok: false; message: string; code?: string; hint?: string; coded: boolean };

/** The default of --scan-threads: both sides of a local session at once. */
export const DEFAULT_SCAN_THREADS = 2;

/**
 * Below this many snapshot entries a scan stays on the calling thread (see above). The
 * environment variable ASYNC_SCAN_THREAD_MIN_ENTRIES overrides it (tests, tuning).
 */
export function threadMinEntries(): number {
  const v = Number(process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES']);
  return Number.isSafeInteger(v) && v >= 0 ? v : 20_000;
}

/**
 * From this many directories whose records must be rebuilt (~50 files each: ~1.5 s of
 * reading rows back on the calling thread), the rebuild at the end of a run goes to a
 * thread (ScanThreads.rebuildRecords). ASYNC_RECORD_THREAD_MIN_DIRS overrides it.
 */
export function recordThreadMinDirs(): number {
  const v = Number(process.env['ASYNC_RECORD_THREAD_MIN_DIRS']);
  return Number.isSafeInteger(v) && v >= 0 ? v : 2_000;
}

/**
 * True where this module is its own file: the native-free bundle inlines it into a CLI
 * bundle, where a Worker on import.meta.url would start the CLI again; there scans run on
 * the calling thread.
 */
function threadScriptAvailable(): boolean {
  return /\/scan\/scan-thread\.js$/.test(import.meta.url);
}

/**
 * The scan threads of one process: at most `limit` scans run in threads at once, the
 * others wait for a free slot; a limit of 0 scans on the calling thread.
 */
export class ScanThreads {
  private running = 0;
  /** Scans that asked for threads and have not ended (how the threads are shared). */
  private wanting = 0;
  private readonly waiting: (() => void)[] = [];
  /** The most threads that ran at once (for tests and debugging). */
  peak = 0;
  /** Scans split across several threads (for tests and debugging). */
  splits = 0;

  constructor(readonly limit: number = DEFAULT_SCAN_THREADS) {}

  /**
   * Scans as the job says; `onProgress` hears progress on the calling thread. `entries` is
   * the size of the snapshot the scan compares with. A big tree is split (splitTree) across
   * the threads free when its scan starts, so one tree uses both cores where the other side
   * has little to scan (a first push, a remote peer). Whether a thread pays is decided by
   * `entries`, or, when the snapshot is empty (a first scan), by the names splitTree lists
   * before it stops: a small tree is listed in full and scanned on the calling thread.
   */
  async scan(
    job: ScanJob,
    entries: number,
    here: SnapshotStore,
    onProgress?: (p: ScanProgress) => void,
  ): Promise<ScanResult> {
    if (this.limit === 0 || !threadScriptAvailable()) return scanWith(here, job, onProgress);
    const min = threadMinEntries();
    // Only an empty snapshot (a first scan) says nothing of the tree's size: a small one
    // is scanned here without listing the tree first.
    if (entries > 0 && entries < min) return scanWith(here, job, onProgress);
    // A scoped scan lists chosen directories; -n follow crawls through links, which no
    // split can see ahead of the crawl.
    const split =
      job.scope === undefined && job.symlinks !== 'follow'
        ? splitTree(job.root, {
            items: SPLIT_ITEMS_PER_THREAD * this.limit,
            minNames: entries >= min ? 0 : min,
            ...filterOf(job),
          })
        : undefined;
    if (entries < min && (split === undefined || split.names < min))
      return scanWith(here, job, onProgress);
    this.wanting++;
    try {
      // The other side of a local session asks in the same turn of the event loop: once
      // that turn is over, two big trees get a thread each (their scans at once, as
      // without splits), and a big tree alone gets every thread.
      await new Promise<void>((r) => setImmediate(r));
      const share = Math.max(1, Math.floor(this.limit / this.wanting));
      return await this.inSlots(split && split.items.length > 1 ? share : 1, (n) => {
        if (n === 1 || !split) return scanInThread(job, onProgress);
        this.splits++;
        return scanSplit(job, split.items, n, here, onProgress);
      });
    } finally {
      this.wanting--;
    }
  }

  /**
   * Rebuilds the per-directory records `here` waits for (SnapshotStore.flushDirRecords):
   * many of them in a thread with a connection of its own, while `here` stays idle, so the
   * two sides of a local session rebuild theirs at once, one core each; few of them (or no
   * thread to be had) on the calling thread. A failed thread leaves the work to this one.
   */
  async rebuildRecords(here: SnapshotStore): Promise<void> {
    const work = here.pendingRecords();
    if (work === undefined) return;
    // Every record (a new or reset database) counts by its rows, ~50 per directory.
    const min = recordThreadMinDirs();
    const many = work.all ? here.sizeUpTo(min * 50) >= min * 50 : work.dirs.length >= min;
    if (this.limit === 0 || !many || !threadScriptAvailable()) {
      here.flushDirRecords();
      return;
    }
    try {
      await this.inSlots(1, () =>
        runInThread({ task: 'records', dbPath: here.path, driver: here.driver, work }),
      );
      here.recordsRebuilt();
    } catch {
      here.flushDirRecords();
    }
  }

  /** Runs `fn` with 1 to `want` slots: as many as are free, after waiting for one. */
  private async inSlots<T>(want: number, fn: (slots: number) => Promise<T>): Promise<T> {
    while (this.running >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    const n = Math.max(1, Math.min(want, this.limit - this.running));
    this.running += n;
    this.peak = Math.max(this.peak, this.running);
    try {
      return await fn(n);
    } finally {
      this.running -= n;
      // Every waiter looks again (one slot freed may not be enough for the first).
      for (const wake of this.waiting.splice(0)) wake();
    }
  }
}

/**
 * Items a split tree is cut into per thread: enough that a thread which drew big
 * subtrees does not leave the others idle long.
 */
const SPLIT_ITEMS_PER_THREAD = 8;

function filterOf(job: ScanJob): { filter?: Filter } {
  const filter = compileFilter(job.filters ?? []);
  return filter ? { filter } : {};
}

/**
 * One tree scanned by `n` threads that take its items in turn (an index shared through a
 * SharedArrayBuffer), joined on the calling thread (joinParts: merged in path order,
 * renames detected across the parts against `here`). Progress is the sum of the parts'.
 */
async function scanSplit(
  job: ScanJob,
  items: readonly SplitItem[],
  n: number,
  here: SnapshotStore,
  onProgress?: (p: ScanProgress) => void,
): Promise<ScanResult> {
  const next = new SharedArrayBuffer(4);
  const seen: ScanProgress[] = Array.from({ length: n }, () => ({ dirs: 0, files: 0, bytes: 0 }));
  // Every thread ends before the slots are given back, even when one of them failed.
  const settled = await Promise.allSettled(
    seen.map(async (_, i) => {
      const r = await runInThread(
        { ...job, task: 'scan', progress: onProgress !== undefined, split: { items, next } },
        onProgress &&
          ((p) => {
            seen[i] = p;
            onProgress({
              dirs: seen.reduce((a, s) => a + s.dirs, 0),
              files: seen.reduce((a, s) => a + s.files, 0),
              bytes: seen.reduce((a, s) => a + s.bytes, 0),
            });
          }),
      );
      if (r.ok !== true) throw new Error('the scan thread answered a scan with something else');
      return { ...r.result, changes: unpackChanges(r.changes) };
    }),
  );
  const parts: ScanResult[] = [];
  for (const s of settled) {
    if (s.status === 'rejected') throw s.reason;
    parts.push(s.value);
  }
  return joinParts(parts, (p) => here.descendants(p));
}

/** The process's scan threads where no session set a limit (the daemon's connections). */
export const defaultScanThreads = new ScanThreads();

/** Scans in a thread of its own. */
export async function scanInThread(
  job: ScanJob,
  onProgress?: (p: ScanProgress) => void,
): Promise<ScanResult> {
  const r = await runInThread(
    { ...job, task: 'scan', progress: onProgress !== undefined },
    onProgress,
  );
  if (r.ok !== true) throw new Error('the scan thread answered a scan with something else');
  return { ...r.result, changes: unpackChanges(r.changes) };
}

/** Runs one job in a thread of its own; resolves with its final reply. */
function runInThread(
  data: WorkerJob,
  onProgress?: (p: ScanProgress) => void,
): Promise<Extract<Reply, { ok: true | 'records' }>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: data });
    let settled = false;
    worker.on('message', (r: Reply) => {
      if (r.ok === 'progress') {
        onProgress?.(r.progress);
        return;
      }
      settled = true;
      if (r.ok !== false) resolve(r);
      else if (r.coded) reject(new SessionError(r.code as ErrorCode, r.message, r.hint));
      else reject(Object.assign(new Error(r.message), r.code ? { code: r.code } : {}));
    });
    worker.once('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the scan thread stopped with code ${code}`));
    });
  });
}

/** The scan itself, in a thread: it opens the database read-only for its own use. */
function runScanJob(
  job: ScanJob,
  onProgress?: (p: ScanProgress) => void,
  part?: ScanPart,
): ScanResult {
  const store = SnapshotStore.open(job.dbPath, { create: false, readonly: true });
  try {
    return scanWith(store, job, onProgress, part);
  } finally {
    store.close();
  }
}

/**
 * The scan against an open store. On the calling thread that is the endpoint's own
 * connection, which still reads a database file deleted meanwhile (the endpoint then
 * reports the deletion, not a failure to open).
 */
function scanWith(
  store: SnapshotStore,
  job: ScanJob,
  onProgress?: (p: ScanProgress) => void,
  part?: ScanPart,
): ScanResult {
  const filter = compileFilter(job.filters ?? []);
  const decorate = decorator(job.decorate);
  return scanTree({
    root: job.root,
    snapshot: {
      children: (d) => store.children(d),
      descendants: (p) => store.descendants(p),
      dirRecord: (d) => store.dirRecord(d),
      get: (p) => store.get(p),
    },
    ...(job.scope ? { scope: job.scope } : {}),
    ...(filter ? { filter } : {}),
    ...(job.symlinks ? { symlinks: job.symlinks } : {}),
    ...(decorate ? { decorate } : {}),
    ...(onProgress ? { onProgress } : {}),
    ...(part ? { part } : {}),
  });
}

/** Rebuilds records in a thread: a connection of its own, then a checkpoint of the WAL. */
function runRecordJob(job: RecordJob): void {
  const store = SnapshotStore.open(job.dbPath, { create: false });
  try {
    store.rebuildRecordsOf(job.work);
    store.checkpoint();
  } finally {
    store.close();
  }
}

function runWorkerJob(job: WorkerJob): { reply: Reply; transfer: ArrayBuffer[] } {
  useDrivers([job.driver]);
  if (job.task === 'records') {
    runRecordJob(job);
    return { reply: { ok: 'records' }, transfer: [] };
  }
  let part: ScanPart | undefined;
  if (job.split) {
    const next = new Int32Array(job.split.next);
    part = { items: job.split.items, take: () => Atomics.add(next, 0, 1) };
  }
  const { changes, ...result } = runScanJob(
    job,
    job.progress
      ? (progress) => parentPort?.postMessage({ ok: 'progress', progress } satisfies Reply)
      : undefined,
    part,
  );
  const packed = packChanges(changes);
  return {
    reply: { ok: true, result, changes: packed },
    transfer: [packed.nums.buffer as ArrayBuffer],
  };
}

if (!isMainThread && parentPort && (workerData as WorkerJob | undefined)?.task !== undefined) {
  let out: { reply: Reply; transfer: ArrayBuffer[] };
  try {
    out = runWorkerJob(workerData as WorkerJob);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    out = {
      reply: {
        ok: false,
        message: e instanceof Error ? e.message : String(e),
        ...(typeof code === 'string' ? { code } : {}),
        ...(e instanceof AsyncError && e.hint !== undefined ? { hint: e.hint } : {}),
        coded: e instanceof AsyncError,
      },
      transfer: [],
    };
  }
  parentPort.postMessage(out.reply, out.transfer);
}
