/**
 * `async -C`: runs a continuous session and renders it: one line per propagated change
 * (stdout; the session's log until the logger lands), a summary line per pass that found
 * something, problems on stderr, and on a terminal a live status line (pending, in flight,
 * done, rate) redrawn only when a counter changes, so an idle session costs no CPU.
 * `-q` keeps only error lines, for services.
 */
import { formatBytes, formatRate } from '../core/units.js';
import type { ContinuousStatus } from '../engine/continuous.js';
import type { SessionConfig } from '../engine/session.js';
import { runContinuousSession } from '../engine/session.js';
import type { Io } from './async.js';
import { EXIT } from './exit-codes.js';
import type { SessionLog } from './log.js';
import type { AsyncOptions, ContinuousSettings } from './options.js';
import { detailLines, summaryLine } from './output.js';

const VERBS = {
  send: 'sent',
  mkdir: 'created dir',
  delete: 'deleted',
  rename: 'renamed',
  attrs: 'updated attributes of',
} as const;

interface TtyStream {
  write(s: string): void;
  isTTY?: boolean;
}

export async function runContinuousCommand(
  o: AsyncOptions,
  c: ContinuousSettings,
  cfg: SessionConfig,
  io: Io,
  log?: SessionLog,
): Promise<number> {
  const prog = `async: ${o.name} ${o.direction}`;
  const tty = !o.quiet && (io.stderr as TtyStream).isTTY === true;
  let statusShown = false;
  let lastDraw = 0;
  let lastConnection: string | undefined;
  const rateWindow: { t: number; bytes: number }[] = [];
  const clearStatus = (): void => {
    if (statusShown) io.stderr.write('\r\x1b[K');
    statusShown = false;
  };
  const out = (s: string): void => {
    clearStatus();
    io.stdout.write(`${s}\n`);
  };
  const err = (s: string): void => {
    clearStatus();
    io.stderr.write(`${s}\n`);
  };
  const draw = (s: Readonly<ContinuousStatus>): void => {
    const t = Date.now();
    rateWindow.push({ t, bytes: s.bytes });
    while (rateWindow.length > 2 && t - rateWindow[0]!.t > 5000) rateWindow.shift();
    // Perf: at most 5 redraws a second, however fast files arrive; a change of the
    // connection's state is always shown (it may then stay put for a long backoff).
    if (t - lastDraw < 200 && s.connection === lastConnection) return;
    lastConnection = s.connection;
    lastDraw = t;
    const first = rateWindow[0]!;
    const secs = (t - first.t) / 1000;
    const rate = secs > 0 ? ((s.bytes - first.bytes) * 8) / secs : 0;
    io.stderr.write(
      `\r\x1b[K${prog}: ${s.connection ?? `${s.pending} pending, ${s.inFlight} in flight`}, ${s.done} done (${formatBytes(s.bytes)}), ${formatRate(rate)}`,
    );
    statusShown = true;
  };
  const summary = await runContinuousSession(
    {
      ...cfg,
      events: {
        ...cfg.events,
        // The log (-L) and -v get every change from cfg.events; stdout gets one line each.
        change: (kind, path, detail) => {
          cfg.events?.change?.(kind, path, detail);
          if (!o.quiet && !o.verbose)
            out(
              `${prog}: ${VERBS[kind]} ${path}${kind === 'rename' && detail !== undefined ? ` (from ${detail})` : ''}`,
            );
        },
      },
    },
    {
      cooloffMs: c.cooloffMs,
      cooloffMaxMs: c.cooloffMaxMs,
      pendingMax: c.pendingMax,
      ...(c.scanIntervalMs !== undefined ? { scanIntervalMs: c.scanIntervalMs } : {}),
      ...(c.remoteScanIntervalMs !== undefined
        ? { remoteScanIntervalMs: c.remoteScanIntervalMs }
        : {}),
      events: {
        pass: (s) => {
          if (!o.quiet) out(summaryLine(o.name, s));
          for (const line of detailLines(s)) {
            if (line.startsWith('error:')) err(`async: ${line}`);
            else if (!o.quiet) err(`async: ${line}`);
          }
        },
        unsettled: (side, problems) => {
          for (const p of problems)
            err(`async: error: ${p.path}: ${p.message}${side === 'remote' ? ' (peer)' : ''}`);
        },
        notice: (message, hint) => {
          log?.logger.warn({ ...(hint ? { hint } : {}) }, message);
          if (o.quiet) return;
          // One write: a reader never sees the warning without its hint.
          err(`async: warning: ${message}${hint ? `\nasync: hint: ${hint}` : ''}`);
        },
        ...(tty ? { status: draw } : {}),
      },
    },
  );
  clearStatus();
  if (!o.quiet) {
    io.stdout.write(
      `${prog}: stopped after ${summary.passes} passes: ${summary.done} changes propagated (${formatBytes(summary.bytes)}), ${summary.problems} errors\n`,
    );
  }
  return EXIT.OK;
}
