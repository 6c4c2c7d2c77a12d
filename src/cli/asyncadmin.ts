/**
 * `asyncadmin`: reads a session's snapshot database. Opens it read-only, so it never blocks
 * a running session (WAL: readers do not block the writer).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { PRIVATE_DIR } from '../core/paths.js';
import { sessionNameProblem } from '../core/session-name.js';
import { SessionError, UsageError } from '../errors.js';
import { SessionLock } from '../snapshot/lock.js';
import { SnapshotStore } from '../snapshot/store.js';
import type { Io } from './async.js';
import { reportError } from './async.js';
import { EXIT } from './exit-codes.js';
import { VERSION } from './options.js';

const STATE_LABEL = {
  synced: 'Synchronized',
  pending: 'Pending',
  conflict: 'Conflict',
  error: 'Error',
} as const;

function sessionsIn(dbRoot: string): string[] {
  const dir = join(dbRoot, PRIVATE_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'snap.db')))
    .map((d) => d.name)
    .sort();
}

export async function asyncadminMain(argv: readonly string[], io: Io): Promise<number> {
  const cmd = new Command('asyncadmin')
    .description("Inspect an async session's snapshot database.")
    .version(`asyncadmin ${VERSION}`, '-A, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .option('-d, --local-dir <dir>', 'the synced directory of the session')
    .option('-b, --local-db-dir <dir>', 'the database directory, when the session used -b')
    .option('-N, --name <name>', 'the session name (needed when several sessions exist)')
    .option('-m, --meta', 'print the session metadata')
    .option('-s, --stats', 'print the number of paths in each state')
    .option('-f, --files', 'print every path with its state')
    .option('-l, --list', 'list the sessions in the directory')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: () => undefined });
  try {
    try {
      cmd.parse(argv as string[], { from: 'user' });
    } catch (e) {
      if (e instanceof CommanderError) {
        if (e.exitCode === 0) return 0;
        throw new UsageError(
          e.message.replace(/^error: /, ''),
          "Run 'asyncadmin --help' for the list of options.",
        );
      }
      throw e;
    }
    const o = cmd.opts<{
      localDir?: string;
      localDbDir?: string;
      name?: string;
      meta?: boolean;
      stats?: boolean;
      files?: boolean;
      list?: boolean;
    }>();
    const base = o.localDbDir ?? o.localDir;
    if (base === undefined)
      throw new UsageError(
        'Missing the directory: pass -d/--local-dir <dir> (or -b/--local-db-dir <dir>).',
      );
    const dbRoot = resolve(base);
    const sessions = sessionsIn(dbRoot);
    if (o.list) {
      for (const s of sessions) io.stdout.write(`${s}\n`);
      return EXIT.OK;
    }
    let name = o.name;
    if (name !== undefined) {
      const bad = sessionNameProblem(name);
      if (bad) throw new UsageError(`Invalid -N/--name: ${bad}.`);
    } else {
      if (sessions.length === 0)
        throw new SessionError(
          'ERR_DB_LOCATION',
          `No session database found in ${dbRoot}.`,
          'Check -d (and -b if the session used one).',
        );
      if (sessions.length > 1) {
        throw new UsageError(
          `Several sessions exist in ${dbRoot} (${sessions.join(', ')}): choose one with -N.`,
          'Use -l to list them.',
        );
      }
      name = sessions[0]!;
    }
    const dbPath = join(dbRoot, PRIVATE_DIR, name, 'snap.db');
    if (!existsSync(dbPath)) {
      throw new SessionError(
        'ERR_DB_LOCATION',
        `Session '${name}' has no database at ${dbPath}.`,
        'Use -l to list the sessions that exist.',
      );
    }
    const store = SnapshotStore.open(dbPath, { create: false, readonly: true });
    try {
      const showAll = !o.meta && !o.stats && !o.files;
      if (o.meta || showAll) {
        const m = store.allMeta();
        const running = SessionLock.isHeld(join(dbRoot, PRIVATE_DIR, name, 'lock'));
        const rows: [string, string | undefined][] = [
          ['Session name', m.name],
          ['Local directory', m.local_dir],
          ['Remote directory', m.remote_dir],
          ['Remote host', m.remote_host || '(local peer)'],
          ['Direction', m.direction],
          ['This endpoint', m.role],
          ['Condition', running ? 'running' : 'stopped'],
          ['Checksum', m.checksum],
          ['Created', m.created],
          ['Last start', m.last_start],
          ['Last stop', running ? undefined : m.last_stop],
          ['Last status', running ? undefined : m.last_status],
        ];
        for (const [k, v] of rows) if (v !== undefined) io.stdout.write(`${k}: ${v}\n`);
      }
      if (o.stats || showAll) {
        const c = store.counts();
        for (const k of ['synced', 'pending', 'conflict', 'error'] as const)
          io.stdout.write(`${STATE_LABEL[k]}: ${c[k]}\n`);
      }
      if (o.files) {
        for (const r of store.iterate()) {
          const msg = r.message ? ` (${r.message})` : '';
          io.stdout.write(`${r.path}\t${STATE_LABEL[r.state]}${msg}\n`);
        }
      }
    } finally {
      store.close();
    }
    return EXIT.OK;
  } catch (e) {
    return reportError(e, io, 'asyncadmin');
  }
}
