/**
 * Runs scanTree in worker threads, each with its own read-only connection to the snapshot
 * database. Perf: the scan is synchronous (batched lstatSync is about 2.5 times faster than
 * a promise per file), so the two endpoints of a local session would otherwise scan one
 * after the other on the main thread; in threads both sides scan at once, one core each,
 * and the main thread stays free. SQLite in WAL mode lets the thread read while the
 * endpoint's own connection stays open (nothing writes during a scan).
 *
 * --scan-threads N bounds how many scans run in threads at once in this process (ScanThreads
 * below); 0 scans on the calling thread. One tree is always scanned by one thread. A thread
 * costs its start-up (loading the scanner and SQLite into a fresh isolate: ~50-100 ms on a
 * quiet machine, ten times that under load), so a tree whose snapshot holds fewer than
 * THREAD_MIN_ENTRIES entries (a small tree, or a first scan, whose size is unknown) is
 * scanned on the calling thread.
 *
 * Only plain data crosses the thread boundary: the scan's inputs (root, database path,
 * scope, filter rules, link mode, what decorates an entry) in, progress and the ScanResult
 * out (structured clone).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { compileFilter } from '../core/filter.js';
import type { FilterRule } from '../core/filter.js';
import type { ErrorCode } from '../errors.js';
import { AsyncError, SessionError } from '../errors.js';
import type { DriverName } from '../snapshot/driver.js';
import { useDrivers } from '../snapshot/select-driver.js';
import { SnapshotStore } from '../snapshot/store.js';
import type { DecorateSpec } from './decorate.js';
import { decorator } from './decorate.js';
import type { ScanProgress, ScanResult, SymlinkMode } from './scanner.js';
import { scanTree } from './scanner.js';

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

interface WorkerJob extends ScanJob {
  /** Post progress messages (only when the caller listens). */
  readonly progress: boolean;
}

type Reply =
  | { ok: true; result: ScanResult }
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
  private readonly waiting: (() => void)[] = [];
  /** The most scans that ran in threads at once (for tests and debugging). */
  peak = 0;

  constructor(readonly limit: number = DEFAULT_SCAN_THREADS) {}

  /**
   * Scans as the job says; `onProgress` hears progress on the calling thread. `entries` is
   * the size of the snapshot the scan compares with (it decides whether a thread pays).
   */
  async scan(
    job: ScanJob,
    entries: number,
    here: SnapshotStore,
    onProgress?: (p: ScanProgress) => void,
  ): Promise<ScanResult> {
    if (this.limit === 0 || entries < threadMinEntries() || !threadScriptAvailable())
      return scanWith(here, job, onProgress);
    if (this.running >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    try {
      return await scanInThread(job, onProgress);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

/** The process's scan threads where no session set a limit (the daemon's connections). */
export const defaultScanThreads = new ScanThreads();

/** Scans in a thread of its own. */
export function scanInThread(
  job: ScanJob,
  onProgress?: (p: ScanProgress) => void,
): Promise<ScanResult> {
  return new Promise((resolve, reject) => {
    const data: WorkerJob = { ...job, progress: onProgress !== undefined };
    const worker = new Worker(new URL(import.meta.url), { workerData: data });
    let settled = false;
    worker.on('message', (r: Reply) => {
      if (r.ok === 'progress') {
        onProgress?.(r.progress);
        return;
      }
      settled = true;
      if (r.ok) resolve(r.result);
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
function runJob(job: ScanJob, onProgress?: (p: ScanProgress) => void): ScanResult {
  const store = SnapshotStore.open(job.dbPath, { create: false, readonly: true });
  try {
    return scanWith(store, job, onProgress);
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
  });
}

if (!isMainThread && parentPort && (workerData as WorkerJob | undefined)?.dbPath !== undefined) {
  const job = workerData as WorkerJob;
  let reply: Reply;
  try {
    useDrivers([job.driver]);
    reply = {
      ok: true,
      result: runJob(
        job,
        job.progress
          ? (progress) => parentPort?.postMessage({ ok: 'progress', progress } satisfies Reply)
          : undefined,
      ),
    };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    reply = {
      ok: false,
      message: e instanceof Error ? e.message : String(e),
      ...(typeof code === 'string' ? { code } : {}),
      ...(e instanceof AsyncError && e.hint !== undefined ? { hint: e.hint } : {}),
      coded: e instanceof AsyncError,
    };
  }
  parentPort.postMessage(reply);
}
