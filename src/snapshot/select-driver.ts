/**
 * Which SQLite driver the snapshot store uses: better-sqlite3 when it loads, else node:sqlite
 * where this Node has it, else a clear error. The choice is made once per process, at the
 * first database opened.
 *
 * ASYNC_SNAPSHOT_DRIVER=better-sqlite3|node:sqlite forces one (tests, benchmarks). The
 * native-free bundle calls useDrivers(['node:sqlite']): it carries no addon to try.
 */
import { SessionError } from '../errors.js';
import type { DriverFactory, DriverName } from './driver.js';
import { loadBetterSqlite3 } from './driver-better-sqlite3.js';
import { NODE_SQLITE_MIN_VERSION, loadNodeSqlite } from './driver-node-sqlite.js';

const LOADERS: Record<DriverName, () => DriverFactory> = {
  'better-sqlite3': loadBetterSqlite3,
  'node:sqlite': loadNodeSqlite,
};

let order: readonly DriverName[] = ['better-sqlite3', 'node:sqlite'];
let chosen: DriverFactory | undefined;

/** Restricts and orders the drivers to try (before the first database is opened). */
export function useDrivers(names: readonly DriverName[]): void {
  order = names;
  chosen = undefined;
}

function isDriverName(s: string): s is DriverName {
  return Object.hasOwn(LOADERS, s);
}

/** An error's message on one line (the addon loader's messages span several). */
function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * A one-line notice for debugging. Printed only when ASYNC_DEBUG is set, until the project
 * has a logger (then this becomes a debug-level log line).
 */
export function debug(line: string): void {
  if (process.env['ASYNC_DEBUG']) process.stderr.write(`async: debug: ${line}\n`);
}

/** The driver for this process; throws SessionError ERR_SQLITE_UNAVAILABLE when none loads. */
export function snapshotDriver(): DriverFactory {
  if (chosen) return chosen;
  const forced = process.env['ASYNC_SNAPSHOT_DRIVER'];
  if (forced !== undefined && forced !== '' && !isDriverName(forced)) {
    throw new SessionError(
      'ERR_SQLITE_UNAVAILABLE',
      `ASYNC_SNAPSHOT_DRIVER=${forced} is not a snapshot driver.`,
      "Use 'better-sqlite3' or 'node:sqlite', or unset it.",
    );
  }
  const names = forced ? [forced] : order;
  const failures: string[] = [];
  for (const name of names) {
    try {
      chosen = LOADERS[name]();
      if (failures.length > 0) debug(`${failures.join('; ')}; using ${name}`);
      return chosen;
    } catch (e) {
      failures.push(`${name} unavailable (${oneLine(e)})`);
    }
  }
  throw unavailable(names, failures);
}

function unavailable(names: readonly DriverName[], failures: readonly string[]): SessionError {
  const why = failures.join('; ');
  if (!names.includes('better-sqlite3')) {
    // The native-free bundle (or ASYNC_SNAPSHOT_DRIVER=node:sqlite): only Node can help.
    return new SessionError(
      'ERR_SQLITE_UNAVAILABLE',
      `This build needs Node.js ${NODE_SQLITE_MIN_VERSION} or later (for node:sqlite); this is Node.js ${process.version}.`,
      `Run it with Node.js >= ${NODE_SQLITE_MIN_VERSION}, or install the npm package, which brings the better-sqlite3 addon: npm install -g open-async (${why}).`,
    );
  }
  return new SessionError(
    'ERR_SQLITE_UNAVAILABLE',
    `No SQLite driver for the snapshot database: ${why}.`,
    `Rebuild the addon for this Node (npm rebuild better-sqlite3), or use Node.js >= ${NODE_SQLITE_MIN_VERSION}, which has node:sqlite built in.`,
  );
}
