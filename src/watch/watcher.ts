/**
 * Change notification for one tree on this host: @parcel/watcher's inotify backend.
 *
 * Why this watcher (figures in bench/RESULTS.md, "Continuous mode"): it watches directories
 * only, from a reader thread of its own, so the kernel queue is drained even while the
 * event loop is busy with a scan; Node 20's fs.watch({recursive: true}) puts one inotify
 * watch on every file and directory and hits the kernel's limit on a 200k-file tree.
 *
 * Neither reports the kernel's IN_Q_OVERFLOW (both drop it), so an overflow cannot be seen
 * directly. A batch with as many distinct paths as half the kernel's queue is treated as a
 * possible overflow and turned into a full rescan; periodic rescans (--scan-interval) cover
 * the rest. When the kernel's watch limit is reached the watch is given up with a message
 * naming the sysctl to raise, and the session falls back to periodic full scans.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type * as ParcelWatcher from '@parcel/watcher';
import { PRIVATE_DIR } from '../core/paths.js';
import type { ChangeHint, WatchHandle } from '../endpoint/endpoint.js';

/** Reads a /proc/sys/fs/inotify value, or undefined off Linux. */
function inotifyLimit(name: string): number | undefined {
  try {
    const n = Number(readFileSync(`/proc/sys/fs/inotify/${name}`, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The degraded hint for a failure to watch, naming the limit to raise where one applies. */
export function degradedHint(message: string): ChangeHint & { kind: 'degraded' } {
  if (/No space left on device|ENOSPC/i.test(message)) {
    const cur = inotifyLimit('max_user_watches');
    return {
      kind: 'degraded',
      message: `the kernel's limit of inotify watches is reached (fs.inotify.max_user_watches = ${cur ?? '?'}): changes are found by periodic full scans instead`,
      hint: 'Raise it as root: sysctl -w fs.inotify.max_user_watches=1048576 (and add fs.inotify.max_user_watches=1048576 to /etc/sysctl.d/90-async.conf to keep it).',
    };
  }
  if (/Too many open files|EMFILE/i.test(message)) {
    const cur = inotifyLimit('max_user_instances');
    return {
      kind: 'degraded',
      message: `the kernel's limit of inotify instances is reached (fs.inotify.max_user_instances = ${cur ?? '?'}): changes are found by periodic full scans instead`,
      hint: 'Raise it as root: sysctl -w fs.inotify.max_user_instances=1024 (and keep it in /etc/sysctl.d/).',
    };
  }
  return {
    kind: 'degraded',
    message: `watching failed (${message}): changes are found by periodic full scans instead`,
    hint: 'Check that the directory is on a local file system that supports inotify.',
  };
}

/**
 * Loads the watcher's native addon on first use only: one-time runs never need it, and the
 * native-free bundle (which carries no addon) must start without it; there -C falls back
 * to periodic full scans with a message.
 */
async function loadParcel(): Promise<typeof ParcelWatcher> {
  const m = (await import('@parcel/watcher')) as typeof ParcelWatcher & {
    default?: typeof ParcelWatcher;
  };
  return m.default ?? m;
}

export interface WatchTreeOptions {
  /** Distinct paths in one batch from which events may have been lost; see above. */
  readonly overflowPaths?: number;
}

/**
 * Watches `root` (absolute, resolved) and reports relative paths. Resolves once every
 * directory is watched. A failure to start is reported as a 'degraded' hint, not thrown:
 * the session goes on with periodic scans.
 */
export async function watchTree(
  root: string,
  onHints: (hints: readonly ChangeHint[]) => void,
  opts: WatchTreeOptions = {},
): Promise<WatchHandle> {
  const overflowPaths =
    opts.overflowPaths ??
    Math.max(1024, Math.floor((inotifyLimit('max_queued_events') ?? 16384) / 2));
  const prefix = root.endsWith('/') ? root : `${root}/`;
  let closed = false;
  const onEvents = (err: Error | null, events: ParcelWatcher.Event[]): void => {
    if (closed) return;
    if (err) {
      onHints([degradedHint(err.message)]);
      return;
    }
    const paths: string[] = [];
    for (const e of events) {
      const rel =
        e.path === root ? '' : e.path.startsWith(prefix) ? e.path.slice(prefix.length) : undefined;
      if (rel === undefined || rel === PRIVATE_DIR || rel.startsWith(`${PRIVATE_DIR}/`)) continue;
      paths.push(rel);
    }
    if (paths.length >= overflowPaths) {
      onHints([
        {
          kind: 'rescan',
          reason: `a burst of ${paths.length} changed paths (the kernel may have dropped events)`,
        },
      ]);
    } else if (paths.length > 0) onHints([{ kind: 'paths', paths }]);
  };
  let sub: ParcelWatcher.AsyncSubscription;
  try {
    const parcel = await loadParcel();
    sub = await parcel.subscribe(root, onEvents, { ignore: [PRIVATE_DIR] });
  } catch (e) {
    onHints([degradedHint(e instanceof Error ? e.message : String(e))]);
    return { close: async () => undefined };
  }
  return {
    close: async () => {
      closed = true;
      await sub.unsubscribe();
    },
  };
}

/** Calls `onDeleted` when the file `path` is deleted (its directory is watched, not below). */
export async function watchFileDeletion(path: string, onDeleted: () => void): Promise<WatchHandle> {
  let closed = false;
  try {
    const parcel = await loadParcel();
    const sub = await parcel.subscribe(
      dirname(path),
      (err, events) => {
        if (closed || err) return;
        if (events.some((e) => e.path === path && e.type === 'delete')) onDeleted();
      },
      // Perf: the transfer cache beside the database sees every received file.
      { ignore: ['cache'] },
    );
    return {
      close: async () => {
        closed = true;
        await sub.unsubscribe();
      },
    };
  } catch {
    // Not fatal: the next pass checks the database anyway.
    return { close: async () => undefined };
  }
}
