/**
 * Coded errors. Only failures that stop a whole session are thrown; trouble with one path is
 * recorded as a problem (see core/problem.ts). Every class carries a stable `code` and, where
 * a user can act on it, a `hint`. cli/exit-codes.ts maps codes to exit codes in one table.
 */
export type ErrorCode =
  | 'ERR_USAGE'
  | 'ERR_UNSUPPORTED_OPTION'
  | 'ERR_SESSION_NAME'
  | 'ERR_LOCAL_DIR'
  | 'ERR_REMOTE_DIR'
  | 'ERR_DIRS_OVERLAP'
  | 'ERR_DB_ONE_SIDE'
  | 'ERR_DB_CORRUPT'
  | 'ERR_DB_IDENTITY'
  | 'ERR_DB_DIRECTION'
  | 'ERR_DB_SCHEMA'
  | 'ERR_DB_LOCATION'
  | 'ERR_DB_VANISHED'
  | 'ERR_SQLITE_UNAVAILABLE'
  | 'ERR_SESSION_BUSY'
  | 'ERR_SAFETY'
  | 'ERR_INTERRUPTED'
  | 'ERR_IO'
  | 'ERR_FILTER'
  | 'ERR_MOUNT_SIGNATURE'
  | 'ERR_KEEP_DIR'
  | 'ERR_LOG_DIR'
  // The peer daemon (src/server, src/endpoint/remote.ts).
  | 'ERR_CONFIG'
  | 'ERR_LISTEN'
  | 'ERR_AUTH'
  | 'ERR_HOST_KEY'
  | 'ERR_PEER';

export class AsyncError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AsyncError';
    this.code = code;
    this.hint = hint;
  }
}

export class UsageError extends AsyncError {
  constructor(message: string, hint?: string) {
    super('ERR_USAGE', message, hint ?? "Run 'async --help' for the list of options.");
    this.name = 'UsageError';
  }
}

export class UnsupportedOptionError extends AsyncError {
  constructor(option: string) {
    super(
      'ERR_UNSUPPORTED_OPTION',
      `Option ${option} is not supported yet.`,
      'Remove it from the command line; see the README for the options that work today.',
    );
    this.name = 'UnsupportedOptionError';
  }
}

export class SessionError extends AsyncError {
  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(code, message, hint, options);
    this.name = 'SessionError';
  }
}

/**
 * The connection to the peer daemon was lost or could not be made (refused, reset, closed,
 * stalled). A one-time run stops on it like any session error; a continuous session
 * (engine/continuous.ts) retries with backoff, because the daemon may come back.
 */
export class PeerLostError extends SessionError {
  readonly retryable = true;

  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super('ERR_PEER', message, hint, options);
    this.name = 'PeerLostError';
  }
}

export function isAsyncError(e: unknown): e is AsyncError {
  return e instanceof AsyncError;
}

/** The errno-style code of a Node system error, or undefined. */
export function errnoCode(e: unknown): string | undefined {
  if (e !== null && typeof e === 'object' && 'code' in e) {
    const code = (e as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** A short human message for a system error: "permission denied (EACCES)". */
export function describeIoError(e: unknown): string {
  const code = errnoCode(e);
  const known: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'a parent is not a directory',
    EISDIR: 'is a directory',
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    EEXIST: 'already exists',
    ENOTEMPTY: 'directory not empty',
    ELOOP: 'too many levels of symbolic links',
    ENAMETOOLONG: 'file name too long',
    EXDEV: 'cross-device link',
    EIO: 'input/output error',
  };
  if (code && known[code]) return `${known[code]} (${code})`;
  if (e instanceof Error) return e.message;
  return String(e);
}
