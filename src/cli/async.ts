/**
 * The `async` command: parse, run one session, print, exit with a code from exit-codes.ts.
 * Never a stack trace for a user's mistake: every AsyncError prints its message and hint.
 */
import { runSession } from '../engine/session.js';
import type { SessionConfig } from '../engine/session.js';
import { defaultKnownHostsFile } from '../endpoint/known-hosts.js';
import { loadPrivateKey } from '../endpoint/ssh-key.js';
import { AsyncError, SessionError, UsageError } from '../errors.js';
import { userInfo } from 'node:os';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { parseAsyncArgs } from './options.js';
import type { AsyncOptions } from './options.js';
import { askPassword, askYesNo, haveTty } from './prompt.js';
import { detailLines, summaryLine } from './output.js';

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

export async function asyncMain(
  argv: readonly string[],
  io: Io,
  signal?: AbortSignal,
): Promise<number> {
  try {
    const parsed = parseAsyncArgs(argv, io.stdout);
    if (parsed.kind === 'exit') return parsed.code;
    const o = parsed.options;
    const remote = o.daemon ? await daemonPeer(o) : undefined;
    const summary = await runSession({
      ...(remote ? { remote } : {}),
      name: o.name,
      localDir: o.localDir,
      remoteDir: o.remote.path,
      direction: o.direction,
      reset: o.reset,
      createDir: o.createDir,
      overwrite: o.overwrite === 'older' ? 'older' : 'always',
      preserveMtime: o.preserveMtime,
      preserveUid: o.preserveUid,
      preserveGid: o.preserveGid,
      transferThreads: o.transferThreads,
      ...(o.targetRate !== undefined ? { targetRate: o.targetRate } : {}),
      ...(o.localDbDir !== undefined ? { localDbDir: o.localDbDir } : {}),
      ...(o.remoteDbDir !== undefined ? { remoteDbDir: o.remoteDbDir } : {}),
      ...(signal ? { signal } : {}),
    });
    if (!o.quiet) io.stdout.write(`${summaryLine(o.name, summary)}\n`);
    for (const line of detailLines(summary)) {
      if (line.startsWith('error:')) io.stderr.write(`async: ${line}\n`);
      else if (!o.quiet) io.stderr.write(`async: ${line}\n`);
    }
    return summary.problems.length > 0 ? EXIT.PARTIAL : EXIT.OK;
  } catch (e) {
    if (signal?.aborted) {
      io.stderr.write(
        'async: interrupted; what was placed is recorded, the rest will sync on the next run.\n',
      );
      return EXIT.INTERRUPTED;
    }
    return reportError(e, io, 'async');
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
