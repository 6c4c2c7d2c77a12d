/**
 * Continuous mode (-C): one session kept open, a pass per burst of changes.
 *
 *   open the session -> watch both sides -> a full pass -> loop:
 *     wait for a path to settle (--cooloff), a rescan to be due, or a signal
 *     -> a pass scoped to the directories that changed (run.ts syncPass) -> settle the queue
 *
 * Watches start before the first scan, so nothing changed between the two is missed. A
 * pass holds back every change of a path that is still hot (changed less than --cooloff
 * ago), and a move while either of its ends is hot; such a path is reported once it kept
 * changing for --cooloff-max. Events that may have been lost (a burst as big as the
 * kernel's queue, more pending paths than --pending-max) turn into a full rescan of that
 * side; a side that cannot be watched (the kernel's watch limit) is rescanned periodically.
 *
 * The loop knows nothing of local or remote: it talks to the Endpoint contract. Errors
 * that stop a one-time run stop the loop too (a safety halt, a deleted database); an error
 * an endpoint marks as a lost connection is retried with backoff, the session reopened and
 * both sides rescanned in full, so nothing is resent that is already in place.
 */
import type { Change } from '../core/change.js';
import type { Problem } from '../core/problem.js';
import { errnoCode } from '../errors.js';
import type { ChangeHint, Endpoint, WatchHandle } from '../endpoint/endpoint.js';
import { PendingPaths } from '../watch/pending.js';
import { parentOf } from '../core/paths.js';
import type { PassOptions, RunOptions, RunSummary } from './run.js';
import { closeSession, openSession, syncPass } from './run.js';

type Side = 'local' | 'remote';

export interface ContinuousOptions {
  readonly cooloffMs: number;
  readonly cooloffMaxMs: number;
  readonly pendingMax: number;
  /** Periodic full rescans of each side; undefined for none (while watching works). */
  readonly scanIntervalMs?: number;
  readonly remoteScanIntervalMs?: number;
  /** Full rescans of a side that cannot be watched, when no interval was given. */
  readonly fallbackScanIntervalMs?: number;
  readonly events?: ContinuousEvents;
  readonly now?: () => number;
  /** Backoff between reconnection attempts: doubles from min up to max (0.5 s, 30 s). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

export interface ContinuousStatus {
  pending: number;
  inFlight: number;
  /** Changes propagated since the start. */
  done: number;
  bytes: number;
  passes: number;
  /** Set while the peer is unreachable: what the session is doing about it. */
  connection?: string;
}

export interface ContinuousEvents {
  /** After each pass that did or found something. */
  pass?(summary: RunSummary, full: boolean): void;
  /** Paths that keep changing past --cooloff-max. */
  unsettled?(side: Side, problems: readonly Problem[]): void;
  /** Something the user should know (watching degraded, a retry). */
  notice?(message: string, hint?: string): void;
  /** The counters changed (for a live status line). */
  status?(s: Readonly<ContinuousStatus>): void;
}

export interface ContinuousSummary {
  passes: number;
  done: number;
  bytes: number;
  problems: number;
}

/**
 * While reconnecting, the daemon may still be ending the session of the connection that was
 * lost (it releases the session lock once that connection's calls settled): a busy session
 * is waited for then, not a reason to stop.
 */
function isBusyWhileReconnecting(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'ERR_SESSION_BUSY';
}

/** Errors an endpoint marks as a lost connection, or plain socket errors. */
export function isConnectionError(e: unknown): boolean {
  if (e !== null && typeof e === 'object' && (e as { retryable?: unknown }).retryable === true)
    return true;
  const code = errnoCode(e);
  return (
    code !== undefined &&
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ECONNABORTED',
      'EPIPE',
      'ETIMEDOUT',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'ERR_HTTP2_STREAM_ERROR',
      'ERR_HTTP2_SESSION_ERROR',
      'ERR_HTTP2_GOAWAY_SESSION',
      'ERR_HTTP2_INVALID_SESSION',
    ].includes(code)
  );
}

/** Wakes the loop early: a hint arrived or the session is stopping. */
class Bell {
  private ring: (() => void) | undefined;
  private rung = false;

  notify(): void {
    this.rung = true;
    this.ring?.();
  }

  /** Waits until notified or `ms` passed (forever when undefined). */
  async wait(ms: number | undefined): Promise<void> {
    if (this.rung) {
      this.rung = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, Math.max(0, ms));
      function done(): void {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      }
      this.ring = done;
    });
    this.ring = undefined;
    this.rung = false;
  }
}

/** What the loop tracks for one side. */
class SideState {
  readonly pending: PendingPaths;
  /** A full scan is wanted (start, overflow, too many pending); at or after this time. */
  fullAt: number | undefined;
  nextPeriodic: number | undefined;
  watch: WatchHandle | undefined;
  /** The watch stopped working: periodic full scans. */
  degraded = false;

  constructor(
    readonly side: Side,
    readonly endpoint: Endpoint,
    readonly intervalMs: number | undefined,
    opts: ContinuousOptions,
  ) {
    this.pending = new PendingPaths(opts.cooloffMs, opts.cooloffMaxMs);
  }
}

/**
 * Runs a continuous session until `run.signal` aborts (resolves: a clean stop) or an error
 * stops it (rejects: a safety halt, a deleted database, an unrecoverable failure).
 */
export async function runContinuous(
  run: RunOptions,
  local: Endpoint,
  peer: Endpoint,
  opts: ContinuousOptions,
): Promise<ContinuousSummary> {
  const now = opts.now ?? Date.now;
  const ev = opts.events;
  const signal = run.signal;
  const bell = new Bell();
  const onAbort = (): void => bell.notify();
  signal?.addEventListener('abort', onAbort);
  const status: ContinuousStatus = { pending: 0, inFlight: 0, done: 0, bytes: 0, passes: 0 };
  let problems = 0;
  const sides: Record<Side, SideState> = {
    local: new SideState('local', local, opts.scanIntervalMs, opts),
    remote: new SideState('remote', peer, opts.remoteScanIntervalMs, opts),
  };
  const fallback = opts.fallbackScanIntervalMs ?? 30_000;
  const periodOf = (s: SideState): number | undefined =>
    s.intervalMs ?? (s.degraded || !s.endpoint.watch ? fallback : undefined);
  const schedulePeriodic = (s: SideState, from: number): void => {
    const p = periodOf(s);
    s.nextPeriodic = p === undefined ? undefined : from + p;
  };
  const pendingCount = (): number => sides.local.pending.size + sides.remote.pending.size;
  const setStatus = (): void => {
    status.pending = pendingCount();
    ev?.status?.(status);
  };

  const onHints = (s: SideState, hints: readonly ChangeHint[]): void => {
    const t = now();
    for (const h of hints) {
      if (h.kind === 'paths') {
        // While a full scan is wanted anyway, events only push it back (the burst settles).
        if (s.fullAt !== undefined) {
          s.fullAt = Math.max(s.fullAt, t + opts.cooloffMs);
          continue;
        }
        for (const p of h.paths) s.pending.note(p, t);
        if (s.pending.size > opts.pendingMax) {
          s.pending.clear();
          s.fullAt = t + opts.cooloffMs;
          ev?.notice?.(
            `more than ${opts.pendingMax} paths changed on the ${s.endpoint.label} side: rescanning it in full once they settle`,
            'Raise --pending-max to track bigger bursts path by path.',
          );
        }
      } else if (h.kind === 'rescan') {
        s.pending.clear();
        // Said once per rescan: the placements of a big first sync come back from the
        // peer's watcher as one such burst after another (seen at 1M files: hundreds of
        // lines), and they all lead to the same one rescan.
        if (s.fullAt === undefined)
          ev?.notice?.(`${h.reason} on the ${s.endpoint.label} side: rescanning it in full`);
        s.fullAt = Math.max(s.fullAt ?? 0, t + opts.cooloffMs);
      } else {
        if (!s.degraded) ev?.notice?.(`${s.endpoint.label} side: ${h.message}`, h.hint);
        s.degraded = true;
        schedulePeriodic(s, t);
        s.fullAt = t;
      }
    }
    setStatus();
    bell.notify();
  };

  const startWatches = async (): Promise<void> => {
    for (const s of Object.values(sides)) {
      await s.watch?.close();
      s.watch = undefined;
      s.degraded = false;
      if (s.endpoint.watch) s.watch = await s.endpoint.watch((h) => onHints(s, h));
      schedulePeriodic(s, now());
    }
  };
  const stopWatches = async (): Promise<void> => {
    await Promise.allSettled(Object.values(sides).map((s) => s.watch?.close()));
    for (const s of Object.values(sides)) s.watch = undefined;
  };

  /** Holds back what is still being written; see PassOptions.defer. */
  const defer = (side: Side, c: Change): boolean => {
    const s = sides[side];
    const t = now();
    if (s.pending.isHot(c.path, t) || (c.from !== undefined && s.pending.isHot(c.from, t)))
      return true;
    // A file written just before a full scan (or while events could not be followed) has
    // no event to wait on: its modification time tells that it is still fresh.
    const m = c.new?.kind === 'file' ? c.new.mtimeMs : undefined;
    if (m !== undefined && t - m >= 0 && t - m < opts.cooloffMs) {
      s.pending.note(c.path, m);
      return true;
    }
    return false;
  };

  const passRun: RunOptions = {
    ...run,
    events: {
      ...run.events,
      planned: (files, bytes) => {
        status.inFlight += files;
        setStatus();
        run.events?.planned?.(files, bytes);
      },
      change: (kind, path, detail) => {
        status.done++;
        if (kind === 'send' && status.inFlight > 0) status.inFlight--;
        setStatus();
        run.events?.change?.(kind, path, detail);
      },
      bytes: (n) => {
        status.bytes += n;
        run.events?.bytes?.(n);
      },
    },
  };

  const onePass = async (): Promise<void> => {
    const started = now();
    const scope: { local?: { dirs: string[] }; remote?: { dirs: string[] } } = {};
    let full = false;
    for (const s of Object.values(sides)) {
      const wantFull =
        (s.fullAt !== undefined && s.fullAt <= started) ||
        (s.nextPeriodic !== undefined && s.nextPeriodic <= started);
      if (wantFull) {
        full = true;
        s.fullAt = undefined;
        schedulePeriodic(s, started);
      } else scope[s.side] = { dirs: s.pending.dirs() };
    }
    const pass: PassOptions = {
      scope,
      defer,
      observe: (side, kept, held) => {
        const s = sides[side];
        const t = now();
        // A fresh file that no event announced was made in a directory the watcher did
        // not watch yet (it adds a new directory's watch only once it saw the directory,
        // which under load lags seconds behind a burst): more may have come there unseen,
        // so that directory is listed again in a later pass, as long as such files turn
        // up. Only fresh ones: an old file found again (one that keeps failing) must not
        // make every pass list its directory.
        if (scope[side] !== undefined)
          for (const c of [...kept, ...held]) {
            const m = c.old === null && c.new?.kind === 'file' ? c.new.mtimeMs : undefined;
            if (m !== undefined && t - m < 2 * opts.cooloffMs && !s.pending.has(c.path))
              s.pending.note(parentOf(c.path), t);
          }
        // A held-back change is looked at again: its path (and a move's source) stay
        // pending past this pass, even where only a parent was hot, and are due when
        // what held them settles (see PendingPaths.hold). A move's two ends are held
        // together, so they are listed in the same later pass.
        // Twice: a change held because a held move put it where it is takes its time
        // from the move's destination, which the first round may have only just set.
        for (let round = 0; round < 2; round++)
          for (const c of held)
            s.pending.hold(c.from === undefined ? [c.path] : [c.path, c.from], t);
        // A directory that appeared between two events may have been filled before the
        // watcher watched it (inotify watches a new directory only once it saw it): it
        // is listed once more in a later pass. Full passes need not: the watch of every
        // directory they list was in place before they started.
        if (scope[side] !== undefined)
          for (const c of kept)
            if (c.old === null && c.new?.kind === 'dir') s.pending.note(c.path, t);
      },
    };
    const summary = await syncPass(passRun, local, peer, pass);
    status.passes++;
    status.inFlight = 0;
    problems += summary.problems.length;
    for (const s of Object.values(sides)) s.pending.settle(started);
    setStatus();
    if (!summary.unchanged || summary.problems.length > 0 || summary.warnings.length > 0)
      ev?.pass?.(summary, full);
  };

  /** Is a pass due now, and if not, when? */
  const due = (t: number): { now: boolean; wake: number | undefined } => {
    let wake: number | undefined;
    const at = (x: number | undefined): void => {
      if (x !== undefined && (wake === undefined || x < wake)) wake = x;
    };
    let go = false;
    for (const s of Object.values(sides)) {
      if (s.fullAt !== undefined) {
        if (s.fullAt <= t) go = true;
        at(s.fullAt);
      }
      if (s.nextPeriodic !== undefined) {
        if (s.nextPeriodic <= t) go = true;
        at(s.nextPeriodic);
      }
      if (s.pending.hasDue(t)) go = true;
      at(s.pending.nextWake());
    }
    return { now: go, wake };
  };

  const reportUnsettled = async (t: number): Promise<void> => {
    for (const s of Object.values(sides)) {
      const late = s.pending.overdue(t);
      if (late.length === 0) continue;
      const secs = opts.cooloffMaxMs / 1000;
      const list: Problem[] = late.map((path) => ({
        path,
        message: `still changing after --cooloff-max ${secs} s; not sent until it stays unchanged for --cooloff`,
      }));
      problems += list.length;
      await s.endpoint.recordProblems(list);
      ev?.unsettled?.(s.side, list);
    }
  };

  /** Waits `ms`, or less if the session is stopped (other bells do not cut it short). */
  const pause = async (ms: number): Promise<void> => {
    const until = now() + ms;
    while (!signal?.aborted && now() < until) await bell.wait(until - now());
  };

  /**
   * The peer went away: close what is left of the session, then reopen it (connect, log in,
   * lock) with a backoff that doubles up to retryMaxMs, until it works, the session is
   * stopped (false) or an error that waiting does not cure stops it (thrown: a refused
   * login, a directory outside the docroot, sync disabled for the user).
   */
  // Kept across reconnections until a pass succeeds: a peer that accepts the session and
  // drops it at once is retried ever more slowly, not every 0.5 s.
  let backoff = 0;
  const reconnect = async (cause: unknown): Promise<boolean> => {
    const min = opts.retryMinMs ?? 500;
    const max = opts.retryMaxMs ?? 30_000;
    for (let attempt = 1; ; attempt++) {
      await stopWatches();
      await closeSession(local, peer, 'partial');
      backoff = Math.min(max, backoff === 0 ? min : backoff * 2);
      const why = cause instanceof Error ? cause.message : String(cause);
      ev?.notice?.(
        `${attempt === 1 ? 'lost the connection to the peer' : `reconnection attempt ${attempt - 1} failed`} (${why}); retrying in ${(backoff / 1000).toFixed(1)} s`,
      );
      status.connection = `peer unreachable, retry ${attempt} in ${(backoff / 1000).toFixed(1)} s`;
      setStatus();
      await pause(backoff);
      if (signal?.aborted) return false;
      try {
        await openSession(run, local, peer);
        await startWatches();
      } catch (e) {
        if (signal?.aborted) return false;
        if (!isConnectionError(e) && !isBusyWhileReconnecting(e)) throw e;
        cause = e;
        continue;
      }
      delete status.connection;
      setStatus();
      ev?.notice?.('reconnected to the peer: catching up with a full scan of both sides');
      return true;
    }
  };

  let status_: 'ok' | 'partial' | 'failed' = 'failed';
  await openSession(run, local, peer);
  try {
    await startWatches();
    // The first pass is a full one on both sides (nothing is pending yet).
    sides.local.fullAt = sides.remote.fullAt = now();
    while (!signal?.aborted) {
      try {
        const t = now();
        await reportUnsettled(t);
        const d = due(t);
        if (!d.now) {
          await bell.wait(d.wake === undefined ? undefined : d.wake - t);
          continue;
        }
        await onePass();
        backoff = 0;
      } catch (e) {
        if (signal?.aborted) break;
        if (!isConnectionError(e)) throw e;
        if (!(await reconnect(e))) break;
        // Catch up: both sides in full against their snapshots. What was placed before
        // the loss is recorded on both sides, so only what changed since is sent.
        for (const s of Object.values(sides)) {
          s.pending.clear();
          s.fullAt = now();
        }
      }
    }
    status_ = problems > 0 ? 'partial' : 'ok';
  } catch (e) {
    // A signal during a pass aborts its transfers: what was placed is recorded, what was
    // in flight is dropped with the transfer cache; that is a clean stop.
    if (!signal?.aborted) throw e;
    status_ = problems > 0 ? 'partial' : 'ok';
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await stopWatches();
    await closeSession(local, peer, status_);
  }
  return { passes: status.passes, done: status.done, bytes: status.bytes, problems };
}
