/**
 * The `async` command: parse, run one session, print, exit with a code from exit-codes.ts.
 * Never a stack trace for a user's mistake: every AsyncError prints its message and hint.
 */
import type { SessionConfig } from '../engine/session.js';
import { runLocalPeerSession } from '../engine/session.js';
import { runContinuousCommand } from './continuous.js';
import { AsyncError } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { parseAsyncArgs } from './options.js';
import { conflictLines, detailLines, summaryLine } from './output.js';

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
      ...(o.targetRate !== undefined ? { targetRate: o.targetRate } : {}),
      ...(o.localDbDir !== undefined ? { localDbDir: o.localDbDir } : {}),
      ...(o.remoteDbDir !== undefined ? { remoteDbDir: o.remoteDbDir } : {}),
      ...(signal ? { signal } : {}),
    };
    // -C: runs until a signal; a signal then ends it cleanly (exit 0), not as an interruption.
    if (o.continuous) return await runContinuousCommand(o, o.continuous, cfg, io);
    const summary = await runLocalPeerSession(cfg);
    if (!o.quiet) io.stdout.write(`${summaryLine(o.name, summary)}\n`);
    for (const line of detailLines(summary)) {
      if (line.startsWith('error:')) io.stderr.write(`async: ${line}\n`);
      else if (!o.quiet) io.stderr.write(`async: ${line}\n`);
    }
    // Conflicts are listed last, on stdout, one per line, so a script can read them.
    for (const line of conflictLines(summary)) io.stdout.write(`${line}\n`);
    if (summary.problems.length > 0) return EXIT.PARTIAL;
    return summary.conflicts.length > 0 ? EXIT.CONFLICTS : EXIT.OK;
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
