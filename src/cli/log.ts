/**
 * -L dir[:sizeMB]: the session log. pino writes one JSON line per event (fast, structured,
 * easy to grep or ship); pino-roll rotates the file when it reaches the size (default 10 MB)
 * and keeps the last ten files: `async.1.log`, `async.2.log`, ...
 *
 * Levels: by default each change applied (with its path) and each error and warning, plus
 * the start and end of the run; -D adds the options and the plan's counts; -DD and -DDD add
 * per-transfer detail (trace).
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { isWithin } from '../core/paths.js';
import { SessionError, describeIoError } from '../errors.js';

export interface SessionLog {
  readonly logger: Logger;
  /**
   * Reopens the current log file by name (SIGHUP, after logrotate renamed it): what is
   * buffered goes to the renamed file, later lines to a new file of the old name.
   */
  reopen(): void;
  close(): Promise<void>;
}

const LEVELS = ['info', 'debug', 'trace', 'trace'] as const;

/** The log directory must not be inside a synced directory (it would sync, or be deleted). */
export function checkLogDir(dir: string, synced: readonly string[]): string {
  let abs = resolve(dir);
  try {
    mkdirSync(abs, { recursive: true });
    abs = realpathSync(abs);
  } catch (e) {
    throw new SessionError(
      'ERR_LOG_DIR',
      `Cannot use -L/--alt-logdir ${dir}: ${describeIoError(e)}.`,
      'Give a writable directory outside the synced directories.',
    );
  }
  for (const s of synced) {
    let real: string;
    try {
      real = realpathSync(s);
    } catch {
      real = resolve(s);
    }
    if (abs === real || isWithin(abs.slice(1), real.slice(1))) {
      throw new SessionError(
        'ERR_LOG_DIR',
        `-L/--alt-logdir ${dir} is inside the synced directory ${s}.`,
        'Give a log directory outside the synced directories.',
      );
    }
  }
  return abs;
}

export async function openSessionLog(
  dir: string,
  sizeMB: number,
  debug: number,
  name: string,
): Promise<SessionLog> {
  // Perf: loaded only for a session with -L (pino-roll alone took ~70 ms of every start).
  const [{ pino }, { default: roll }] = await Promise.all([import('pino'), import('pino-roll')]);
  const stream = await roll({
    file: join(dir, 'async'),
    extension: '.log',
    size: `${sizeMB}m`,
    mkdir: true,
    limit: { count: 10 },
    // Perf: lines are written in 4 KB blocks, synchronously. Synchronous writes let the
    // size check rotate at the right moment while the engine is busy (the asynchronous
    // mode only rotates on 'drain', which a busy run may never give); a kill -9 loses at
    // most the last block, and every exit path closes the log.
    sync: true,
    minLength: 4096,
  });
  const logger = pino(
    { level: LEVELS[Math.max(0, Math.min(3, debug))], base: { session: name, pid: process.pid } },
    stream,
  );
  return {
    logger,
    reopen: () => {
      try {
        stream.flushSync();
      } catch {
        // Nothing buffered, or the renamed file is gone: the reopen still helps.
      }
      stream.reopen();
    },
    close: async () => {
      // A size rotation in flight waits for an fsync before it reopens the next file, and
      // is dropped if the stream ends first: flush once more (our fsync is issued after
      // the rotation's, so it completes after it), then end.
      await new Promise<void>((done) => stream.flush(() => done()));
      await new Promise((done) => setImmediate(done));
      await new Promise<void>((done) => {
        stream.once('close', () => done());
        stream.once('error', () => done());
        stream.end();
      });
    },
  };
}
