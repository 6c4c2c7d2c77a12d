/**
 * `asyncadmin`: reads a session's snapshot database, and with -C, -E or --resolve changes it.
 *
 * Reading opens the database read-only, so it never blocks a running session (WAL: readers
 * do not block the writer). Writing is refused while a run of the session holds its lock,
 * unless -F/--force says the user accepts it (SQLite still serializes the writes).
 *
 * -E takes the path of one record, as -f prints it: Aspera documents `-E n` without saying
 * what n is, and a row number would shift under a running session.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { Keep } from '../core/reconcile-bidi.js';
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
    .option('--conflicts', 'print the paths in conflict')
    .option('--json', 'print machine-readable JSON instead of text')
    .option('-C, --clean', 'delete the conflict and error records')
    .option('-E, --erase <path>', 'erase the record of one path (as -f prints it)')
    .option(
      '--resolve <path>',
      'bidi: store a decision for a path in conflict; the next run applies it (needs --keep)',
    )
    .addOption(
      new Option('--keep <side>', 'with --resolve: the copy to keep').choices([
        'local',
        'remote',
        'both',
      ]),
    )
    .option('-F, --force', 'allow -C, -E and --resolve while a session is running')
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
      conflicts?: boolean;
      json?: boolean;
      clean?: boolean;
      erase?: string;
      resolve?: string;
      keep?: Keep;
      force?: boolean;
    }>();
    if (o.resolve !== undefined && o.keep === undefined)
      throw new UsageError(
        '--resolve needs --keep local|remote|both.',
        "Run 'asyncadmin --help' for the list of options.",
      );
    if (o.keep !== undefined && o.resolve === undefined)
      throw new UsageError(
        '--keep goes with --resolve PATH.',
        "Run 'asyncadmin --help' for the list of options.",
      );
    const json: Record<string, unknown> = {};
    const print = (key: string, value: unknown, text: () => string[]): void => {
      if (o.json) json[key] = value;
      else for (const line of text()) io.stdout.write(`${line}\n`);
    };
    const base = o.localDbDir ?? o.localDir;
    if (base === undefined)
      throw new UsageError(
        'Missing the directory: pass -d/--local-dir <dir> (or -b/--local-db-dir <dir>).',
      );
    const dbRoot = resolve(base);
    const sessions = sessionsIn(dbRoot);
    if (o.list) {
      print('sessions', sessions, () => sessions);
      if (o.json) io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
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
    const running = SessionLock.isHeld(join(dbRoot, PRIVATE_DIR, name, 'lock'));
    const writes = o.clean === true || o.erase !== undefined || o.resolve !== undefined;
    if (writes && running && !o.force) {
      throw new SessionError(
        'ERR_SESSION_BUSY',
        `Session '${name}' is running (pid ${SessionLock.owner(join(dbRoot, PRIVATE_DIR, name, 'lock'))}): its database ${dbPath} was not changed.`,
        'Wait for the run to end, or add -F/--force to change the database while it runs.',
      );
    }
    const store = SnapshotStore.open(dbPath, { create: false, readonly: !writes });
    try {
      if (writes) writeChanges(store, o, print);
      const showAll = !o.meta && !o.stats && !o.files && !o.conflicts && !writes;
      if (o.meta || showAll) {
        const m = store.allMeta();
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
        print('meta', { ...m, condition: running ? 'running' : 'stopped' }, () =>
          rows.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}`),
        );
      }
      if (o.stats || showAll) {
        const c = store.counts();
        print('counts', c, () =>
          (['synced', 'pending', 'conflict', 'error'] as const).map(
            (k) => `${STATE_LABEL[k]}: ${c[k]}`,
          ),
        );
      }
      if (o.files) {
        const rows = [...store.iterate()];
        print(
          'files',
          rows.map((r) => ({
            path: r.path,
            state: r.state,
            ...(r.message ? { message: r.message } : {}),
          })),
          () =>
            rows.map(
              (r) => `${r.path}\t${STATE_LABEL[r.state]}${r.message ? ` (${r.message})` : ''}`,
            ),
        );
      }
      if (o.conflicts) {
        const keep = new Map(store.resolutions().map((r) => [r.path, r.keep]));
        const rows = [...store.iterate()].filter((r) => r.state === 'conflict');
        print(
          'conflicts',
          rows.map((r) => ({
            path: r.path,
            ...(r.message ? { message: r.message } : {}),
            ...(keep.has(r.path) ? { resolve: keep.get(r.path) } : {}),
          })),
          () =>
            rows.map(
              (r) =>
                `/${r.path}   CONFLICT${r.message ? `   ${r.message}` : ''}${keep.has(r.path) ? `   (next run keeps ${keep.get(r.path)})` : ''}`,
            ),
        );
      }
    } finally {
      store.close();
    }
    if (o.json) io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return EXIT.OK;
  } catch (e) {
    return reportError(e, io, 'asyncadmin');
  }
}

/** -C, -E and --resolve: the only changes asyncadmin makes, each in one transaction. */
function writeChanges(
  store: SnapshotStore,
  o: { clean?: boolean; erase?: string; resolve?: string; keep?: Keep },
  print: (key: string, value: unknown, text: () => string[]) => void,
): void {
  if (o.clean) {
    const n = store.write(() => ({
      conflict: store.deleteByState('conflict'),
      error: store.deleteByState('error'),
    }));
    print('cleaned', n, () => [`Deleted ${n.conflict} conflict and ${n.error} error records.`]);
  }
  if (o.erase !== undefined) {
    const path = normalizePath(o.erase);
    if (!store.eraseOne(path)) {
      throw new UsageError(
        `-E/--erase: no record for '${path}' in ${store.path}.`,
        "Give the path as 'asyncadmin -f' prints it.",
      );
    }
    print('erased', path, () => [`Erased the record of ${path}.`]);
  }
  if (o.resolve !== undefined) {
    const path = normalizePath(o.resolve);
    const r = store.get(path);
    if (r?.state !== 'conflict') {
      throw new UsageError(
        `--resolve: '${path}' is not in conflict in ${store.path}.`,
        "Run 'asyncadmin --conflicts' for the paths in conflict.",
      );
    }
    store.setResolution(path, o.keep!);
    print('resolved', { path, keep: o.keep }, () => [
      `The next run keeps the ${o.keep === 'both' ? 'two copies' : `${o.keep} copy`} of ${path}.`,
    ]);
  }
}

/** Accepts a path as printed by -f or by a CONFLICT line ('/a/b'). */
function normalizePath(p: string): string {
  return p.replace(/^\/+/, '').replace(/\/+$/, '');
}
