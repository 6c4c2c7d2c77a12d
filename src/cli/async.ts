/**
 * The `async` command: parse, run one session, print, exit with a code from exit-codes.ts.
 * Never a stack trace for a user's mistake: every AsyncError prints its message and hint.
 *
 * What goes where: the summary line (or, with --json, one JSON object; with -v, one line
 * per change first) on stdout; errors, warnings and notes on stderr; the live progress
 * display on stderr when it is a terminal; the -L log in its own directory.
 */
import { userInfo } from 'node:os';
import { defaultKnownHostsFile } from '../endpoint/known-hosts.js';
import { loadPrivateKey } from '../endpoint/ssh-key.js';
import { assertXattrSupport } from '../endpoint/xattrs.js';
import type { RunEvents } from '../engine/run.js';
import { runSession } from '../engine/session.js';
import type { SessionConfig } from '../engine/session.js';
import { AsyncError, SessionError, UsageError } from '../errors.js';
import { runContinuousCommand } from './continuous.js';
import { loadFilterRules } from '../scan/filter-rules.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import type { SessionLog } from './log.js';
import { checkLogDir, openSessionLog } from './log.js';
import { parseAsyncArgs } from './options.js';
import type { AsyncOptions } from './options.js';
import {
  conflictLines,
  detailLines,
  dryRunLine,
  itemize,
  jsonError,
  jsonSummary,
  planLines,
  summaryLine,
} from './output.js';
import type { ProgressStream } from './progress.js';
import { Progress } from './progress.js';
import { askPassword, askYesNo, haveTty } from './prompt.js';

export interface Io {
  readonly stdout: { write(s: string): void };
  readonly stderr: { write(s: string): void };
}

export function reportError(e: unknown, io: Io, prog: string): number {
  if (e instanceof AsyncError) {
    io.stderr.write(`${prog}: ${e.message}\n`);
    if (e.hint) io.stderr.write(`${prog}: hint: ${e.hint}\n`);
    return exitCodeFor(e.code);
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.stderr.write(
    `${prog}: internal error: ${msg}\n${prog}: please report this, with the command you ran.\n`,
  );
  if (process.env.ASYNC_DEBUG_STACK && e instanceof Error && e.stack)
    io.stderr.write(`${e.stack}\n`);
  return EXIT.INTERNAL;
}

/** Joins the listeners of progress, -v and the log into the engine's one set of events. */
function events(o: AsyncOptions, io: Io, progress?: Progress, log?: SessionLog): RunEvents {
  const p = progress?.events();
  const logger = log?.logger;
  return {
    planned: (files, bytes) => {
      p?.planned(files, bytes);
      logger?.debug({ files, bytes }, 'transfer planned');
    },
    bytes: (n) => {
      p?.bytes(n);
      logger?.trace({ bytes: n }, 'bytes placed');
    },
    change: (kind, path, detail) => {
      p?.change?.(kind, path, detail);
      if (o.verbose) io.stdout.write(`${itemize(kind, path, detail)}\n`);
      logger?.info({ change: kind, path, ...(detail ? { from: detail } : {}) }, kind);
    },
  };
}

export async function asyncMain(
  argv: readonly string[],
  io: Io,
  signal?: AbortSignal,
): Promise<number> {
  // Known before parsing, so that even a usage error comes back as JSON.
  let json = argv.includes('--json');
  let log: SessionLog | undefined;
  let progress: Progress | undefined;
  try {
    const parsed = parseAsyncArgs(argv, io.stdout);
    if (parsed.kind === 'exit') return parsed.code;
    const o = parsed.options;
    json = o.json;
    if (o.preserveXattrs) assertXattrSupport('--preserve-xattrs');
    if (o.preserveAcls) assertXattrSupport('--preserve-acls');
    const filters = loadFilterRules(o.filters);
    if (o.logDir !== undefined) {
      // A daemon's directory is on another host: only a local peer's can contain the log.
      const dir = checkLogDir(o.logDir, [o.localDir, ...(o.daemon ? [] : [o.remote.path])]);
      log = await openSessionLog(dir, o.logSizeMB, o.debug, o.name);
      log.logger.info(
        { local: o.localDir, remote: o.remote.path, direction: o.direction, dryRun: o.dryRun },
        'run started',
      );
      log.logger.debug({ options: { ...o, filters } }, 'options');
    }
    const err = io.stderr as ProgressStream;
    if (Progress.wanted(err, o)) progress = new Progress(err);
    const cfg: SessionConfig = {
      name: o.name,
      localDir: o.localDir,
      remoteDir: o.remote.path,
      direction: o.direction,
      reset: o.reset,
      createDir: o.createDir,
      overwrite: o.overwrite === 'older' ? 'older' : 'always',
      conflictPolicy: o.conflictResolve,
      preserveMtime: o.preserveMtime,
      preserveUid: o.preserveUid,
      preserveGid: o.preserveGid,
      transferThreads: o.transferThreads,
      scanThreads: o.scanThreads,
      ...(progress ? { onScanProgress: progress.scanning.bind(progress) } : {}),
      ...(o.checksumThreads !== undefined ? { checksumThreads: o.checksumThreads } : {}),
      ...(o.targetRate !== undefined ? { targetRate: o.targetRate } : {}),
      ...(o.localDbDir !== undefined ? { localDbDir: o.localDbDir } : {}),
      ...(o.remoteDbDir !== undefined ? { remoteDbDir: o.remoteDbDir } : {}),
      ...(signal ? { signal } : {}),
      events: events(o, io, progress, log),
      placement: {
        preserveAtime: o.preserveAtime,
        preserveXattrs: o.preserveXattrs,
        preserveAcls: o.preserveAcls,
        ignoreMode: o.ignoreMode,
      },
      run: {
        filters,
        cleanExcluded: o.cleanExcluded,
        symlinks: o.symlinks,
        ...(o.keepDirLocal !== undefined ? { keepDirLocal: o.keepDirLocal } : {}),
        ...(o.keepDirRemote !== undefined ? { keepDirRemote: o.keepDirRemote } : {}),
        ...(o.localMountSignature !== undefined
          ? { mountSignatureLocal: o.localMountSignature }
          : {}),
        ...(o.remoteMountSignature !== undefined
          ? { mountSignatureRemote: o.remoteMountSignature }
          : {}),
        dryRun: o.dryRun,
        ignoreDelete: o.ignoreDelete,
        deleteDelay: o.deleteDelay,
        mirror: o.mirror,
        removeAfterTransfer: o.removeAfterTransfer,
        compareContent: o.checksum !== 'none',
      },
    };
    // -C: runs until a signal; a signal then ends it cleanly (exit 0), not as an interruption.
    if (o.continuous) {
      if (o.dryRun)
        throw new UsageError('--dry-run cannot be used with -C/--continuous: it shows one pass.');
      progress?.stop();
      const remote = o.daemon ? await daemonPeer(o) : undefined;
      // SIGHUP (bin/async.js): reopen the log file, for logrotate's rename-then-signal.
      const reopenLog = (): void => log?.reopen();
      process.on('async:reopen-log' as never, reopenLog);
      try {
        return await runContinuousCommand(
          o,
          o.continuous,
          { ...cfg, events: events(o, io, undefined, log), ...(remote ? { remote } : {}) },
          io,
          log,
        );
      } finally {
        process.off('async:reopen-log' as never, reopenLog);
      }
    }
    const remote = o.daemon ? await daemonPeer(o) : undefined;
    let summary;
    try {
      summary = await runSession({ ...cfg, ...(remote ? { remote } : {}) });
    } finally {
      progress?.stop();
    }
    const code =
      summary.problems.length > 0
        ? EXIT.PARTIAL
        : summary.conflicts.length > 0
          ? EXIT.CONFLICTS
          : EXIT.OK;
    if (o.json) io.stdout.write(`${jsonSummary(o.name, summary, code)}\n`);
    else if (summary.plan !== undefined) {
      for (const line of planLines(summary.plan)) io.stdout.write(`${line}\n`);
      if (!o.quiet) io.stdout.write(`${dryRunLine(o.name, summary)}\n`);
    } else if (!o.quiet) io.stdout.write(`${summaryLine(o.name, summary)}\n`);
    for (const line of detailLines(summary)) {
      if (line.startsWith('error:')) io.stderr.write(`async: ${line}\n`);
      else if (!o.quiet) io.stderr.write(`async: ${line}\n`);
    }
    // Conflicts are listed last, on stdout, one per line, so a script can read them.
    if (!o.json) for (const line of conflictLines(summary)) io.stdout.write(`${line}\n`);
    if (log) {
      // Every path's trouble, the scan's included, with its path and side.
      for (const p of summary.problems) log.logger.error({ path: p.path, side: p.side }, p.message);
      for (const w of summary.warnings) log.logger.warn({ path: w.path }, w.message);
      for (const n of summary.notes) log.logger.info({ path: n.path }, n.message);
      for (const c of summary.conflicts) log.logger.warn({ path: c.path }, 'conflict');
    }
    log?.logger.info(
      {
        exitCode: code,
        filesSent: summary.filesSent,
        bytesSent: summary.bytesSent,
        deleted: summary.deleted,
        renamed: summary.renamed,
        errors: summary.problems.length,
        conflicts: summary.conflicts.length,
        elapsedMs: Math.round(summary.elapsedMs),
      },
      'run finished',
    );
    return code;
  } catch (e) {
    let code: number;
    if (signal?.aborted) {
      io.stderr.write(
        'async: interrupted; what was placed is recorded, the rest will sync on the next run.\n',
      );
      code = EXIT.INTERRUPTED;
      log?.logger.warn('interrupted');
    } else {
      code = reportError(e, io, 'async');
      if (e instanceof AsyncError) log?.logger.error({ code: e.code, hint: e.hint }, e.message);
      else log?.logger.fatal({ err: e }, 'internal error');
    }
    if (json) {
      const ae = e instanceof AsyncError ? e : undefined;
      io.stdout.write(
        `${jsonError(ae?.code ?? (code === EXIT.INTERRUPTED ? 'ERR_INTERRUPTED' : 'ERR_INTERNAL'), ae?.message ?? String(e), ae?.hint, code)}\n`,
      );
    }
    return code;
  } finally {
    await log?.close();
  }
}

/** Reaching and logging in to a peer daemon: credentials from options, environment, a TTY. */
async function daemonPeer(o: AsyncOptions): Promise<NonNullable<SessionConfig['remote']>> {
  const d = o.daemon!;
  const keys = d.keyFiles.map(loadPrivateKey);
  let password = process.env.ASPERA_SCP_PASS || undefined;
  if (d.passwordPrompt) {
    if (!haveTty())
      throw new UsageError(
        '-w asks for the password on a terminal, and there is none.',
        'In batch mode put the password in ASPERA_SCP_PASS instead.',
      );
    password = await askPassword(`Password for ${o.remote.user ?? ''}@${o.remote.host}: `);
  }
  const token = d.token ?? (process.env.ASPERA_SCP_TOKEN || undefined);
  // Like ssh: without a user, a key or password logs in as the local user name; a token
  // alone names its user itself.
  const user =
    o.remote.user ?? (keys.length > 0 || password !== undefined ? userInfo().username : undefined);
  if (user === undefined && token === undefined)
    throw new SessionError(
      'ERR_AUTH',
      `No credentials for peer ${o.remote.host}.`,
      'Give a key with -i, a password in ASPERA_SCP_PASS (or -w to be asked), or a token with -W or ASPERA_SCP_TOKEN.',
    );
  return {
    target: {
      host: o.remote.host!,
      port: d.port,
      user,
      plaintext: d.plaintext,
      hostKeys: {
        file: d.knownHosts ?? defaultKnownHostsFile(),
        acceptNew: d.acceptNewHostKey,
        ...(haveTty() ? { ask: askYesNo } : {}),
      },
      ...(d.remoteLogDir !== undefined ? { logDir: d.remoteLogDir } : {}),
      ...stallFromEnv(),
    },
    credentials: {
      keys,
      ...(password !== undefined ? { password } : {}),
      ...(token !== undefined ? { token } : {}),
    },
  };
}

/** ASYNC_PEER_STALL_SECONDS: how long a silent peer is waited for (default 300 s). */
function stallFromEnv(): { stallMs?: number } {
  const v = process.env.ASYNC_PEER_STALL_SECONDS;
  if (v === undefined || v === '') return {};
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`Invalid ASYNC_PEER_STALL_SECONDS '${v}': give a number of seconds.`);
  return { stallMs: n * 1000 };
}
