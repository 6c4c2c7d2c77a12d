/**
 * The small SQLite seam under SnapshotStore. Two adapters implement it: better-sqlite3 (the
 * default, a native addon) and Node's built-in node:sqlite (no addon, Node >= 22.13), so a
 * host that cannot load the addon still runs. Both open the same file format with the same
 * schema files; a database written through one is read through the other.
 */

export type DriverName = 'better-sqlite3' | 'node:sqlite';

export interface RunResult {
  readonly changes: number;
}

/** A prepared statement. Parameters are positional, or one object for `@name` parameters. */
export interface Statement<P extends unknown[] = unknown[], R = unknown> {
  run(...params: P): RunResult;
  get(...params: P): R | undefined;
  all(...params: P): R[];
  iterate(...params: P): IterableIterator<R>;
}

export interface SqliteDriver {
  readonly name: DriverName;
  readonly open: boolean;
  prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Statement<P, R>;
  /**
   * Like prepare(), but each row comes as an array of its columns in SELECT order. Perf:
   * about twice as fast to read as row objects (no property per column).
   */
  prepareArrays<P extends unknown[] = unknown[], R extends unknown[] = unknown[]>(
    sql: string,
  ): Statement<P, R>;
  /** Runs one or more statements without results (schema files). */
  exec(sql: string): void;
  /** Runs `PRAGMA <text>` and returns the first column of the first row, if any. */
  pragma(text: string): unknown;
  /** Runs `fn` in a transaction; nested calls become savepoints. Rolls back when fn throws. */
  transaction<T>(fn: () => T): T;
  close(): void;
}

export interface DriverOpenOptions {
  /** Refuse to create the file when it does not exist (SQLITE_CANTOPEN). */
  readonly fileMustExist: boolean;
  readonly readonly: boolean;
}

export interface DriverFactory {
  readonly name: DriverName;
  open(path: string, opts: DriverOpenOptions): SqliteDriver;
}

/**
 * Primary SQLite result codes by number, for the adapters that report numbers (node:sqlite
 * gives `errcode`; better-sqlite3 gives the name in `code`).
 */
const RESULT_NAMES: Record<number, string> = {
  1: 'SQLITE_ERROR',
  5: 'SQLITE_BUSY',
  8: 'SQLITE_READONLY',
  10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT',
  13: 'SQLITE_FULL',
  14: 'SQLITE_CANTOPEN',
  26: 'SQLITE_NOTADB',
};

/** The SQLite result code name of an error from either adapter ('SQLITE_NOTADB'), if any. */
export function sqliteErrorCode(e: unknown): string | undefined {
  if (e === null || typeof e !== 'object') return undefined;
  const { code, errcode } = e as { code?: unknown; errcode?: unknown };
  if (typeof code === 'string' && code.startsWith('SQLITE_')) return code;
  if (typeof errcode === 'number') return RESULT_NAMES[errcode & 0xff] ?? `SQLITE_${errcode}`;
  return undefined;
}
