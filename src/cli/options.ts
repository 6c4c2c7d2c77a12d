/**
 * The option table of `async`: every option of Aspera's command line, short and long forms,
 * in one declarative list. An option whose feature is not built yet is still parsed, so
 * that using it fails with "not supported yet" and a usage exit code, never silently.
 *
 * parseAsyncArgs() turns argv into validated AsyncOptions, naming the option in every
 * error. It does no I/O.
 */
import { Command, CommanderError, Option } from 'commander';
import type { Direction } from '../endpoint/endpoint.js';
import { sessionNameProblem } from '../core/session-name.js';
import { parseCount, parseRate, parseSeconds } from '../core/units.js';
import { UnsupportedOptionError, UsageError } from '../errors.js';

export interface RemoteSpec {
  readonly user?: string;
  readonly host?: string;
  readonly path: string;
}

/** How to reach and log in to a peer daemon (set when -r names a host). */
export interface DaemonSpec {
  readonly port: number;
  /** -i files, in order. */
  readonly keyFiles: readonly string[];
  /** -w: ask for the password on the terminal. */
  readonly passwordPrompt: boolean;
  /** -W; ASPERA_SCP_TOKEN and ASPERA_SCP_PASS are read by the command, not here. */
  readonly token: string | undefined;
  readonly remoteLogDir: string | undefined;
  readonly knownHosts: string | undefined;
  readonly acceptNewHostKey: boolean;
  readonly plaintext: boolean;
}

/** The daemon's default port (Aspera's SSH port for sync, so firewall rules carry over). */
export const DEFAULT_PORT = 33001;

export interface AsyncOptions {
  readonly name: string;
  readonly localDir: string;
  readonly remote: RemoteSpec;
  readonly direction: Direction;
  readonly reset: boolean;
  readonly overwrite: 'always' | 'older' | 'conflict';
  readonly createDir: boolean;
  readonly preserveMtime: boolean;
  readonly preserveUid: boolean;
  readonly preserveGid: boolean;
  /** Bits per second; undefined for no limit. */
  readonly targetRate: number | undefined;
  /** --transfer-threads: batches of file data in flight at once (pump lanes). */
  readonly transferThreads: number;
  /** --scan-threads: scans at once in worker threads; 0 scans on the main thread. */
  readonly scanThreads: number;
  /**
   * --local-checksum-threads: worker threads of this host's pool, which hashes, reads,
   * writes and places file data; undefined: one per core.
   */
  readonly checksumThreads: number | undefined;
  readonly quiet: boolean;
  readonly localDbDir: string | undefined;
  readonly remoteDbDir: string | undefined;
  readonly checksum: string;
  /** Set when the peer is a daemon (-r user@host:path or --host). */
  readonly daemon: DaemonSpec | undefined;
  readonly continuous: ContinuousSettings | undefined;
  /**
   * Bidi: what a path changed differently on both sides becomes. From --conflict-resolve,
   * else from -o: conflict (default) leaves both copies, older = newer, always = local.
   */
  readonly conflictResolve: 'conflict' | 'newer' | 'older' | 'local' | 'remote' | 'keep-both';
  /** Filter options in command-line order (rule files are read by the CLI, not here). */
  readonly filters: readonly FilterSource[];
  readonly cleanExcluded: boolean;
  readonly symlinks: 'copy' | 'skip' | 'follow';
  readonly preserveAtime: boolean;
  readonly preserveXattrs: boolean;
  readonly preserveAcls: boolean;
  readonly ignoreMode: boolean;
  readonly mirror: boolean;
  readonly dryRun: boolean;
  readonly ignoreDelete: boolean;
  readonly deleteDelay: boolean;
  readonly keepDirLocal: string | undefined;
  readonly keepDirRemote: string | undefined;
  readonly localMountSignature: string | undefined;
  readonly remoteMountSignature: string | undefined;
  readonly removeAfterTransfer: boolean;
  readonly verbose: boolean;
  readonly json: boolean;
  /** -L dir[:sizeMB]. */
  readonly logDir: string | undefined;
  readonly logSizeMB: number;
  /** -D, -DD, -DDD: 0 to 3. */
  readonly debug: number;
}

export interface FilterSource {
  readonly kind: 'include' | 'exclude' | 'include-from' | 'exclude-from';
  readonly value: string;
}

/** -C and its timing options (all in milliseconds). */
export interface ContinuousSettings {
  readonly cooloffMs: number;
  readonly cooloffMaxMs: number;
  readonly pendingMax: number;
  readonly scanIntervalMs: number | undefined;
  readonly remoteScanIntervalMs: number | undefined;
}

type Status = 'supported' | 'unsupported';

interface OptionSpec {
  /** Commander flags: '-N, --name <name>'. */
  readonly flags: string;
  readonly help: string;
  readonly status: Status;
  readonly choices?: readonly string[];
  readonly repeatable?: boolean;
  /** A flag that may be given several times to raise a level (-D, -DD, -DDD). */
  readonly counter?: boolean;
  readonly group: string;
}

const S: Status = 'supported';
const U: Status = 'unsupported';

export const OPTION_TABLE: readonly OptionSpec[] = [
  // Identity and endpoints
  {
    group: 'Session',
    flags: '-N, --name <name>',
    help: 'session name (A-Z a-z 0-9 _ -); required',
    status: S,
  },
  {
    group: 'Session',
    flags: '-d, --local-dir <dir>',
    help: 'local directory to sync; required',
    status: S,
  },
  {
    group: 'Session',
    flags: '-r, --remote-dir <[user@host:]dir>',
    help: 'peer directory; a plain path syncs with a local directory',
    status: S,
  },
  { group: 'Session', flags: '--user <user>', help: 'user on the peer host', status: S },
  { group: 'Session', flags: '--host <host>', help: 'peer host (async-server)', status: S },
  {
    group: 'Session',
    flags: '-P, --tcp-port <port>',
    help: 'peer daemon port (default 33001)',
    status: S,
  },
  {
    group: 'Authentication',
    flags: '-i, --private-key-path <file>',
    help: 'SSH private key (repeatable)',
    status: S,
    repeatable: true,
  },
  {
    group: 'Authentication',
    flags: '-w, --password-prompt',
    help: 'ask for the password (else ASPERA_SCP_PASS)',
    status: S,
  },
  {
    group: 'Authentication',
    flags: '-W, --token <token>',
    help: 'Basic token (else ASPERA_SCP_TOKEN)',
    status: S,
  },
  {
    group: 'Authentication',
    flags: '--known-hosts <file>',
    help: 'pinned daemon fingerprints (default ~/.config/open-async/known_hosts)',
    status: S,
  },
  {
    group: 'Authentication',
    flags: '--accept-new-host-key',
    help: 'trust a peer seen for the first time (batch mode)',
    status: S,
  },
  {
    group: 'Authentication',
    flags: '--plaintext',
    help: 'h2c without TLS, loopback peers only (tests)',
    status: S,
  },
  // Mode
  {
    group: 'Mode',
    flags: '-K, --direction <dir>',
    help: 'push (default), pull or bidi',
    status: S,
    choices: ['push', 'pull', 'bidi'],
  },
  {
    group: 'Mode',
    flags: '-C, --continuous',
    help: 'keep running and sync changes as they happen',
    status: S,
  },
  {
    group: 'Mode',
    flags: '-x, --reset',
    help: 'rebuild both snapshots from a scan of both trees',
    status: S,
  },
  {
    group: 'Mode',
    flags: '-o, --overwrite <policy>',
    help: 'always (push/pull default), older, conflict (bidi default)',
    status: S,
    choices: ['always', 'older', 'conflict'],
  },
  {
    group: 'Mode',
    flags: '--conflict-resolve <policy>',
    help: 'bidi: settle conflicts automatically: newer, older, local, remote or keep-both',
    status: S,
    choices: ['newer', 'older', 'local', 'remote', 'keep-both'],
  },
  {
    group: 'Mode',
    flags: '--mirror',
    help: 'make the receiver an exact copy (removes its extra files)',
    status: S,
  },
  {
    group: 'Mode',
    flags: '--create-dir',
    help: 'create the local and peer directories if missing',
    status: S,
  },
  {
    group: 'Mode',
    flags: '-k, --checksum <kind>',
    help: 'how a reset or first run compares files both sides hold: none (default) trusts equal size and mtime, the others compare content (xxh64); sent data is always verified',
    status: S,
    choices: ['sha1', 'md5', 'sha1_sparse', 'md5_sparse', 'none'],
  },
  { group: 'Mode', flags: '--dry-run', help: 'print the plan and change nothing', status: S },
  // Scan and timing
  {
    group: 'Scan',
    flags: '--scan-threads <n>',
    help: 'worker threads that scan at once: one per tree, or all for a big tree alone (default 2; 0: on the main thread)',
    status: S,
  },
  {
    group: 'Scan',
    flags: '--local-checksum-threads <n>',
    help: 'worker threads that hash, read and write file data (default: one per core)',
    status: S,
  },
  {
    group: 'Scan',
    flags: '--scan-interval <seconds>',
    help: 'seconds between full local rescans in continuous mode (default: none)',
    status: S,
  },
  {
    group: 'Scan',
    flags: '--remote-scan-interval <seconds>',
    help: 'seconds between full peer rescans in continuous mode (default: none)',
    status: S,
  },
  {
    group: 'Scan',
    flags: '--scan-file-rename',
    help: 'detect renamed files (always on)',
    status: U,
  },
  {
    group: 'Scan',
    flags: '--scan-dir-rename',
    help: 'detect renamed directories (always on)',
    status: U,
  },
  {
    group: 'Scan',
    flags: '--exclude-dirs-older-than <time>',
    help: 'skip directories not modified since',
    status: U,
  },
  {
    group: 'Scan',
    flags: '--cooloff <seconds>',
    help: 'seconds a file must stay unchanged before it is sent (continuous; default 3)',
    status: S,
  },
  {
    group: 'Scan',
    flags: '--cooloff-max <seconds>',
    help: 'report a file still changing after this many seconds as an error (default 60)',
    status: S,
  },
  {
    group: 'Scan',
    flags: '--pending-max <n>',
    help: 'most changed paths tracked one by one; beyond, a full rescan (default 100000)',
    status: S,
  },
  // Deletes and safety
  { group: 'Deletes', flags: '--ignore-delete', help: 'do not propagate deletes', status: S },
  { group: 'Deletes', flags: '--delete-delay', help: 'delete after transfers', status: S },
  { group: 'Deletes', flags: '--delete-before', help: 'delete before transfers', status: S },
  {
    group: 'Deletes',
    flags: '--keep-dir-local <dir>',
    help: 'move local deletes there',
    status: S,
  },
  {
    group: 'Deletes',
    flags: '--keep-dir-remote <dir>',
    help: 'move peer deletes there',
    status: S,
  },
  {
    group: 'Deletes',
    flags: '--local-mount-signature <file>',
    help: 'sync only if this file exists locally',
    status: S,
  },
  {
    group: 'Deletes',
    flags: '--remote-mount-signature <file>',
    help: 'sync only if this file exists at the peer',
    status: S,
  },
  {
    group: 'Deletes',
    flags: '--remove-after-transfer',
    help: 'remove source files once sent',
    status: S,
  },
  // Filters
  {
    group: 'Filters',
    flags: '--include <pattern>',
    help: 'include rule (repeatable, in order)',
    status: S,
    repeatable: true,
  },
  {
    group: 'Filters',
    flags: '--exclude <pattern>',
    help: 'exclude rule (repeatable, in order)',
    status: S,
    repeatable: true,
  },
  {
    group: 'Filters',
    flags: '--include-from <file>',
    help: 'include rules from a file (- for stdin)',
    status: S,
    repeatable: true,
  },
  {
    group: 'Filters',
    flags: '--exclude-from <file>',
    help: 'exclude rules from a file (- for stdin)',
    status: S,
    repeatable: true,
  },
  {
    group: 'Filters',
    flags: '--clean-excluded',
    help: 'drop records of excluded paths',
    status: S,
  },
  // Metadata
  {
    group: 'Metadata',
    flags: '-t, --preserve-time',
    help: 'preserve modification times',
    status: S,
  },
  {
    group: 'Metadata',
    flags: '--preserve-modification-time',
    help: 'preserve modification times',
    status: S,
  },
  { group: 'Metadata', flags: '--preserve-access-time', help: 'preserve access times', status: S },
  {
    group: 'Metadata',
    flags: '-u, --preserve-uid',
    help: 'preserve the owner (when permitted)',
    status: S,
  },
  {
    group: 'Metadata',
    flags: '-j, --preserve-gid',
    help: 'preserve the group (when permitted)',
    status: S,
  },
  {
    group: 'Metadata',
    flags: '--preserve-xattrs',
    help: 'preserve extended attributes',
    status: S,
  },
  { group: 'Metadata', flags: '--preserve-acls', help: 'preserve POSIX ACLs', status: S },
  { group: 'Metadata', flags: '--ignore-mode', help: 'do not sync permission bits', status: S },
  {
    group: 'Metadata',
    flags: '-n, --symbolic-links <mode>',
    help: 'copy (default), skip or follow',
    status: S,
    choices: ['copy', 'skip', 'follow'],
  },
  // Transfer
  {
    group: 'Transfer',
    flags: '-l, --target-rate <rate>',
    help: 'target rate in bits/s, suffixes k/m/g (-l 500m)',
    status: S,
  },
  {
    group: 'Transfer',
    flags: '-m, --min-rate <rate>',
    help: 'minimum rate (steers FASP over UDP; no meaning over TCP, see README)',
    status: U,
  },
  {
    group: 'Transfer',
    flags: '-a, --rate-policy <policy>',
    help: 'fair, fixed, high or low (FASP only, see README)',
    status: U,
    choices: ['fair', 'fixed', 'high', 'low'],
  },
  {
    group: 'Transfer',
    flags: '--compression <kind>',
    help: 'none or zlib',
    status: U,
    choices: ['none', 'zlib'],
  },
  {
    group: 'Transfer',
    flags: '--transfer-threads <n>',
    help: 'batches of file data in flight at once (default 4)',
    status: S,
  },
  // Logs and databases
  {
    group: 'Logs',
    flags: '-L, --alt-logdir <dir[:sizeMB]>',
    help: 'local log directory and rotation size',
    status: S,
  },
  {
    group: 'Logs',
    flags: '-R, --remote-logdir <dir>',
    help: 'peer log directory (inside its docroot)',
    status: S,
  },
  {
    group: 'Logs',
    flags: '-D, --debug',
    help: 'raise the log level (-D, -DD, -DDD)',
    status: S,
    counter: true,
  },
  { group: 'Logs', flags: '-q, --quiet', help: 'print no summary or progress', status: S },
  {
    group: 'Logs',
    flags: '-v, --verbose',
    help: 'print each change, itemized (>f sent, cd mkdir, .m metadata, *deleting, >R renamed)',
    status: S,
  },
  { group: 'Logs', flags: '--json', help: 'print the summary as JSON', status: S },
  {
    group: 'Logs',
    flags: '-b, --local-db-dir <dir>',
    help: 'local snapshot database directory',
    status: S,
  },
  {
    group: 'Logs',
    flags: '-B, --remote-db-dir <dir>',
    help: 'peer snapshot database directory',
    status: S,
  },
];

export const VERSION = '0.1.0';

function attrName(flags: string): string {
  const long = /--([a-z0-9-]+)/.exec(flags)![1]!;
  return long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function longFlag(flags: string): string {
  return /--[a-z0-9-]+/.exec(flags)![0];
}

/** Builds the commander program from the table. Errors throw instead of exiting. */
export function buildAsyncCommand(
  out: { write(s: string): void },
  filterSink: FilterSource[] = [],
): Command {
  const cmd = new Command('async')
    .description('Sync a local directory with a peer directory (a drop-in for IBM Aspera Sync).')
    .version(`async ${VERSION}`, '-A, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: () => undefined })
    .showSuggestionAfterError(true);
  for (const spec of OPTION_TABLE) {
    const help = spec.status === 'unsupported' ? `${spec.help} [not supported yet]` : spec.help;
    const opt = new Option(spec.flags, help).helpGroup(`${spec.group}:`);
    if (spec.choices) opt.choices(spec.choices as string[]);
    // Filter rules keep their order across the four options: first match wins.
    const kind = spec.group === 'Filters' && spec.repeatable ? longFlag(spec.flags).slice(2) : '';
    if (spec.repeatable)
      opt.argParser((v: string, prev: string[] | undefined) => {
        if (kind !== '') filterSink.push({ kind: kind as FilterSource['kind'], value: v });
        return [...(prev ?? []), v];
      });
    if (spec.counter) opt.argParser((_v: string, prev: number | undefined) => (prev ?? 0) + 1);
    cmd.addOption(opt);
  }
  return cmd;
}

const REMOTE_RE = /^(?:([^@/:]+)@)?([^@/:]+):(.*)$/;

export function parseRemote(text: string): RemoteSpec {
  const m = REMOTE_RE.exec(text);
  if (!m) return { path: text };
  const [, user, host, path] = m;
  return { ...(user !== undefined ? { user } : {}), host: host!, path: path === '' ? '.' : path! };
}

export type ParseOutcome =
  | { readonly kind: 'run'; readonly options: AsyncOptions }
  | { readonly kind: 'exit'; readonly code: number };

/**
 * Parses argv (without node and script). Help and version print to `out` and return an
 * exit outcome; every usage problem throws UsageError or UnsupportedOptionError.
 */
export function parseAsyncArgs(
  argv: readonly string[],
  out: { write(s: string): void },
): ParseOutcome {
  const filters: FilterSource[] = [];
  const cmd = buildAsyncCommand(out, filters);
  try {
    cmd.parse(argv as string[], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      ) {
        return { kind: 'exit', code: 0 };
      }
      throw new UsageError(e.message.replace(/^error: /, ''));
    }
    throw e;
  }
  const o = cmd.opts<Record<string, unknown>>();
  for (const spec of OPTION_TABLE) {
    if (spec.status !== 'unsupported') continue;
    if (cmd.getOptionValueSource(attrName(spec.flags)) === 'cli')
      throw new UnsupportedOptionError(longFlag(spec.flags));
  }
  const str = (k: string): string | undefined =>
    typeof o[k] === 'string' ? (o[k] as string) : undefined;

  const name = str('name');
  if (name === undefined) throw new UsageError('Missing the session name: pass -N/--name <name>.');
  const nameProblem = sessionNameProblem(name);
  if (nameProblem) throw new UsageError(`Invalid -N/--name: ${nameProblem}.`);
  const localDir = str('localDir');
  if (localDir === undefined || localDir === '')
    throw new UsageError('Missing the local directory: pass -d/--local-dir <dir>.');
  const remoteText = str('remoteDir');
  if (remoteText === undefined || remoteText === '') {
    throw new UsageError('Missing the peer directory: pass -r/--remote-dir <[user@host:]dir>.');
  }
  const remote = withHostOptions(parseRemote(remoteText), str('user'), str('host'));
  const daemon = daemonSpec(remote, o);
  const direction = (str('direction') ?? 'push') as Direction;
  const overwrite = (str('overwrite') ??
    (direction === 'bidi' ? 'conflict' : 'always')) as AsyncOptions['overwrite'];
  if (overwrite === 'conflict' && direction !== 'bidi') {
    throw new UsageError(
      '-o/--overwrite conflict applies to -K bidi only; use always or older with push and pull.',
    );
  }
  const resolveText = str('conflictResolve') as AsyncOptions['conflictResolve'] | undefined;
  if (resolveText !== undefined && direction !== 'bidi') {
    throw new UsageError(
      '--conflict-resolve applies to -K bidi only: push and pull have no conflicts.',
    );
  }
  if (resolveText !== undefined && str('overwrite') !== undefined && overwrite !== 'conflict') {
    throw new UsageError(
      `-o/--overwrite ${overwrite} and --conflict-resolve ${resolveText} both say how to settle bidi conflicts: give only one.`,
    );
  }
  // For bidi, -o says who overwrites whom in a conflict: "older" copies are overwritten
  // (the newer wins), "always" means the local side's copy always wins (as a push would).
  const conflictResolve: AsyncOptions['conflictResolve'] =
    resolveText ??
    (direction !== 'bidi' || overwrite === 'conflict'
      ? 'conflict'
      : overwrite === 'older'
        ? 'newer'
        : 'local');
  let targetRate: number | undefined;
  const rate = str('targetRate');
  if (rate !== undefined) {
    targetRate = parseRate(rate);
    if (targetRate === undefined) {
      throw new UsageError(
        `Invalid -l/--target-rate '${rate}': give bits per second with an optional k, m or g suffix, e.g. -l 500m.`,
      );
    }
  }
  const transferThreads = countOption(str('transferThreads'), '--transfer-threads', 1, 64) ?? 4;
  // Both sides of a local session at once (scan/scan-thread.ts).
  const scanThreads =
    countOption(
      str('scanThreads'),
      '--scan-threads',
      0,
      64,
      '0 scans on the main thread; 2 (the default) scans both sides of a local session at once.',
    ) ?? 2;
  const checksumThreads = countOption(
    str('localChecksumThreads'),
    '--local-checksum-threads',
    1,
    64,
  );
  const continuous = parseContinuous(o, str);
  if (o.mirror === true && direction === 'bidi') {
    throw new UsageError(
      '--mirror cannot be used with -K bidi: a mirror has one sender and one receiver.',
      'Use --mirror with -K push or -K pull.',
    );
  }
  if (o.mirror === true && o.ignoreDelete === true) {
    throw new UsageError('--mirror and --ignore-delete contradict each other; give one of them.');
  }
  if (o.deleteBefore === true && o.deleteDelay === true) {
    throw new UsageError('--delete-before and --delete-delay contradict each other; give one.');
  }
  if (o.json === true && o.verbose === true) {
    throw new UsageError('--json and -v/--verbose both write to stdout; give one of them.');
  }
  let logDir: string | undefined;
  let logSizeMB = 10;
  const lt = str('altLogdir');
  if (lt !== undefined) {
    const m = /^(.*?)(?::(\d+))?$/.exec(lt)!;
    logDir = m[1]!;
    if (logDir === '')
      throw new UsageError(
        `Invalid -L/--alt-logdir '${lt}': give a directory, e.g. -L /var/log/async:50.`,
      );
    if (m[2] !== undefined) {
      logSizeMB = Number(m[2]);
      if (logSizeMB < 1 || logSizeMB > 100_000)
        throw new UsageError(
          `Invalid -L/--alt-logdir size '${m[2]}': give megabytes from 1 to 100000.`,
        );
    }
  }
  return {
    kind: 'run',
    options: {
      name,
      localDir,
      remote,
      direction,
      reset: o.reset === true,
      overwrite,
      createDir: o.createDir === true,
      preserveMtime: o.preserveTime === true || o.preserveModificationTime === true,
      preserveUid: o.preserveUid === true,
      preserveGid: o.preserveGid === true,
      targetRate,
      transferThreads,
      scanThreads,
      checksumThreads,
      quiet: o.quiet === true,
      localDbDir: str('localDbDir'),
      remoteDbDir: str('remoteDbDir'),
      checksum: str('checksum') ?? 'none',
      daemon,
      continuous,
      conflictResolve,
      filters,
      cleanExcluded: o.cleanExcluded === true,
      symlinks: (str('symbolicLinks') ?? 'copy') as AsyncOptions['symlinks'],
      preserveAtime: o.preserveAccessTime === true,
      preserveXattrs: o.preserveXattrs === true,
      preserveAcls: o.preserveAcls === true,
      ignoreMode: o.ignoreMode === true,
      mirror: o.mirror === true,
      dryRun: o.dryRun === true,
      ignoreDelete: o.ignoreDelete === true,
      deleteDelay: o.deleteDelay === true,
      keepDirLocal: str('keepDirLocal'),
      keepDirRemote: str('keepDirRemote'),
      localMountSignature: str('localMountSignature'),
      remoteMountSignature: str('remoteMountSignature'),
      removeAfterTransfer: o.removeAfterTransfer === true,
      verbose: o.verbose === true,
      json: o.json === true,
      logDir,
      logSizeMB,
      debug: typeof o.debug === 'number' ? Math.min(o.debug, 3) : 0,
    },
  };
}

/**
 * A whole-number option from `min` to `max` (no upper bound without one); undefined when
 * absent, a UsageError naming the option and the range otherwise.
 */
function countOption(
  value: string | undefined,
  flag: string,
  min: number,
  max?: number,
  hint?: string,
): number | undefined {
  if (value === undefined) return undefined;
  const n = parseCount(value);
  if (n === undefined || n < min || (max !== undefined && n > max)) {
    const range = max !== undefined ? `from ${min} to ${max}` : `of at least ${min}`;
    throw new UsageError(`Invalid ${flag} '${value}': give a whole number ${range}.`, hint);
  }
  return n;
}

/** --user and --host complete -r; they may not contradict it. */
function withHostOptions(
  r: RemoteSpec,
  user: string | undefined,
  host: string | undefined,
): RemoteSpec {
  if (host !== undefined && r.host !== undefined && host !== r.host)
    throw new UsageError(`--host ${host} contradicts -r ${r.host}:${r.path}; give the host once.`);
  if (user !== undefined && r.user !== undefined && user !== r.user)
    throw new UsageError(`--user ${user} contradicts -r ${r.user}@...; give the user once.`);
  const h = r.host ?? host;
  const u = r.user ?? user;
  if (u !== undefined && h === undefined)
    throw new UsageError('--user needs a peer host: -r user@host:dir or --host.');
  return {
    ...(u !== undefined ? { user: u } : {}),
    ...(h !== undefined ? { host: h } : {}),
    path: r.path,
  };
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|::1)$/;

function daemonSpec(remote: RemoteSpec, o: Record<string, unknown>): DaemonSpec | undefined {
  const str = (k: string): string | undefined =>
    typeof o[k] === 'string' ? (o[k] as string) : undefined;
  const list = (k: string): string[] => (Array.isArray(o[k]) ? (o[k] as string[]) : []);
  const peerOnly = (flag: string, present: boolean): void => {
    if (present && remote.host === undefined)
      throw new UsageError(
        `${flag} applies to a peer daemon only: name one with -r user@host:dir.`,
      );
  };
  peerOnly('-P/--tcp-port', str('tcpPort') !== undefined);
  peerOnly('-i/--private-key-path', list('privateKeyPath').length > 0);
  peerOnly('-w/--password-prompt', o.passwordPrompt === true);
  peerOnly('-W/--token', str('token') !== undefined);
  peerOnly('-R/--remote-logdir', str('remoteLogdir') !== undefined);
  peerOnly('--plaintext', o.plaintext === true);
  peerOnly('--accept-new-host-key', o.acceptNewHostKey === true);
  peerOnly('--known-hosts', str('knownHosts') !== undefined);
  if (remote.host === undefined) return undefined;
  let port = DEFAULT_PORT;
  const pt = str('tcpPort');
  if (pt !== undefined) {
    const n = parseCount(pt);
    if (n === undefined || n < 1 || n > 65535)
      throw new UsageError(`Invalid -P/--tcp-port '${pt}': give a port from 1 to 65535.`);
    port = n;
  }
  if (o.plaintext === true && !LOOPBACK.test(remote.host)) {
    throw new UsageError(
      `--plaintext is allowed with a loopback peer only (127.0.0.1, ::1, localhost), not ${remote.host}.`,
      'It exists for tests; leave it out to use TLS.',
    );
  }
  return {
    port,
    keyFiles: list('privateKeyPath'),
    passwordPrompt: o.passwordPrompt === true,
    token: str('token'),
    remoteLogDir: str('remoteLogdir'),
    knownHosts: str('knownHosts'),
    acceptNewHostKey: o.acceptNewHostKey === true,
    plaintext: o.plaintext === true,
  };
}

function parseContinuous(
  o: Record<string, unknown>,
  str: (k: string) => string | undefined,
): ContinuousSettings | undefined {
  const seconds = (key: string, flag: string, min: number): number | undefined => {
    const t = str(key);
    if (t === undefined) return undefined;
    const v = parseSeconds(t);
    if (v === undefined || v < min)
      throw new UsageError(
        `Invalid ${flag} '${t}': give seconds (a number${min > 0 ? ` of at least ${min}` : ''}), e.g. ${flag} 3.`,
      );
    return Math.round(v * 1000);
  };
  const cooloffMs = seconds('cooloff', '--cooloff', 0) ?? 3000;
  const cooloffMaxMs = seconds('cooloffMax', '--cooloff-max', 0) ?? Math.max(60_000, cooloffMs * 2);
  const scanIntervalMs = seconds('scanInterval', '--scan-interval', 0.1);
  const remoteScanIntervalMs = seconds('remoteScanInterval', '--remote-scan-interval', 0.1);
  const pendingMax = countOption(str('pendingMax'), '--pending-max', 1) ?? 100_000;
  if (o.continuous !== true) {
    for (const [k, flag] of [
      ['cooloff', '--cooloff'],
      ['cooloffMax', '--cooloff-max'],
      ['pendingMax', '--pending-max'],
      ['scanInterval', '--scan-interval'],
      ['remoteScanInterval', '--remote-scan-interval'],
    ] as const) {
      if (str(k) !== undefined)
        throw new UsageError(`${flag} applies to continuous mode only: add -C/--continuous.`);
    }
    return undefined;
  }
  if (cooloffMaxMs < cooloffMs) throw new UsageError('--cooloff-max must be at least --cooloff.');
  return { cooloffMs, cooloffMaxMs, pendingMax, scanIntervalMs, remoteScanIntervalMs };
}
