/**
 * The one table of exit codes, documented in the README. Aspera documents none; cron jobs
 * and scripts can rely on these.
 */
import type { ErrorCode } from '../errors.js';

export const EXIT = {
  /** Everything synced. */
  OK: 0,
  /** The run finished, but some paths failed (listed, and recorded as Error). */
  PARTIAL: 1,
  /** The command line is wrong; nothing was done. */
  USAGE: 2,
  /** The session could not run: directories, databases, locks, a safety halt. */
  SESSION: 3,
  /** The run finished with conflicts left for the user (bidirectional sessions). */
  CONFLICTS: 4,
  /** A bug: an unexpected internal error. Please report it. */
  INTERNAL: 70,
  /** Interrupted by SIGINT or SIGTERM. */
  INTERRUPTED: 130,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'ERR_USAGE':
    case 'ERR_UNSUPPORTED_OPTION':
    case 'ERR_SESSION_NAME':
    case 'ERR_DIRS_OVERLAP':
    case 'ERR_FILTER':
    case 'ERR_KEEP_DIR':
    case 'ERR_LOG_DIR':
      return EXIT.USAGE;
    case 'ERR_INTERRUPTED':
      return EXIT.INTERRUPTED;
    case 'ERR_LOCAL_DIR':
    case 'ERR_REMOTE_DIR':
    case 'ERR_DB_ONE_SIDE':
    case 'ERR_DB_CORRUPT':
    case 'ERR_DB_IDENTITY':
    case 'ERR_DB_DIRECTION':
    case 'ERR_DB_SCHEMA':
    case 'ERR_DB_LOCATION':
    case 'ERR_DB_VANISHED':
    case 'ERR_SQLITE_UNAVAILABLE':
    case 'ERR_SESSION_BUSY':
    case 'ERR_SAFETY':
    case 'ERR_MOUNT_SIGNATURE':
    case 'ERR_IO':
      return EXIT.SESSION;
  }
}
