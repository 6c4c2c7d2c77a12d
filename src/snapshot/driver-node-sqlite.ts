/**
 * The node:sqlite adapter: Node's built-in SQLite (DatabaseSync), no native addon. Used by
 * the native-free distribution, and by the npm package when better-sqlite3 cannot load.
 *
 * It needs Node >= 22.13 (node:sqlite without a flag, and StatementSync.iterate). The types
 * are declared here because the project builds against @types/node 20, which lacks them.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { DriverFactory, DriverOpenOptions, SqliteDriver, Statement } from './driver.js';

/** The oldest Node that has what this adapter uses. */
export const NODE_SQLITE_MIN_VERSION = '22.13.0';

/** The part of node:sqlite's StatementSync this adapter uses. */
export interface StatementSync {
  run(...params: unknown[]): { changes: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
  /** Node >= 22.16 / 24.0. */
  setReturnArrays?(enabled: boolean): void;
}

interface DatabaseSync {
  prepare(sql: string): StatementSync;
  exec(sql: string): void;
  close(): void;
}

interface NodeSqliteModule {
  DatabaseSync: new (
    path: string,
    options?: { readOnly?: boolean; timeout?: number },
  ) => DatabaseSync;
  StatementSync: { prototype: object };
}

class NodeStatement<P extends unknown[], R> implements Statement<P, R> {
  constructor(protected readonly stmt: StatementSync) {}

  run(...params: P): { changes: number } {
    return { changes: Number(this.stmt.run(...params).changes) };
  }

  get(...params: P): R | undefined {
    return this.stmt.get(...params) as R | undefined;
  }

  all(...params: P): R[] {
    return this.stmt.all(...params) as R[];
  }

  iterate(...params: P): IterableIterator<R> {
    return this.stmt.iterate(...params) as IterableIterator<R>;
  }
}

/**
 * Rows as arrays where this Node's StatementSync cannot return them so itself (Node 22.13
 * to 22.15, before setReturnArrays). Exported for its test.
 */
export class NodeArrayStatement<P extends unknown[], R extends unknown[]> extends NodeStatement<
  P,
  R
> {
  override get(...params: P): R | undefined {
    const row = this.stmt.get(...params) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : (Object.values(row) as R);
  }

  override all(...params: P): R[] {
    return this.stmt.all(...params).map((row) => Object.values(row as object) as R);
  }

  override *iterate(...params: P): IterableIterator<R> {
    for (const row of this.stmt.iterate(...params)) yield Object.values(row as object) as R;
  }
}

class NodeSqliteDriver implements SqliteDriver {
  readonly name = 'node:sqlite' as const;
  private isOpen = true;
  private depth = 0;

  constructor(private readonly db: DatabaseSync) {}

  get open(): boolean {
    return this.isOpen;
  }

  prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Statement<P, R> {
    return new NodeStatement<P, R>(this.db.prepare(sql));
  }

  prepareArrays<P extends unknown[] = unknown[], R extends unknown[] = unknown[]>(
    sql: string,
  ): Statement<P, R> {
    const stmt = this.db.prepare(sql);
    if (stmt.setReturnArrays === undefined) return new NodeArrayStatement<P, R>(stmt);
    stmt.setReturnArrays(true);
    return new NodeStatement<P, R>(stmt);
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  pragma(text: string): unknown {
    const row = this.db.prepare(`PRAGMA ${text}`).get() as Record<string, unknown> | undefined;
    return row === undefined ? undefined : Object.values(row)[0];
  }

  /** Like better-sqlite3's db.transaction(): BEGIN at the outside, savepoints inside. */
  transaction<T>(fn: () => T): T {
    const sp = `tx${this.depth}`;
    const outer = this.depth === 0;
    this.db.exec(outer ? 'BEGIN' : `SAVEPOINT ${sp}`);
    this.depth++;
    try {
      const result = fn();
      this.db.exec(outer ? 'COMMIT' : `RELEASE ${sp}`);
      return result;
    } catch (e) {
      try {
        this.db.exec(outer ? 'ROLLBACK' : `ROLLBACK TO ${sp}; RELEASE ${sp}`);
      } catch {
        // SQLite already rolled back (SQLITE_FULL, SQLITE_IOERR): the first error is the news.
      }
      throw e;
    } finally {
      this.depth--;
    }
  }

  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.db.close();
  }
}

/** Loads node:sqlite; throws when this Node has none (or one too old to use). */
export function loadNodeSqlite(): DriverFactory {
  const mod = createRequire(import.meta.url)('node:sqlite') as NodeSqliteModule;
  if (typeof (mod.StatementSync?.prototype as { iterate?: unknown })?.iterate !== 'function') {
    throw new Error(`node:sqlite of Node ${process.version} lacks StatementSync.iterate`);
  }
  return {
    name: 'node:sqlite',
    open(path: string, opts: DriverOpenOptions): SqliteDriver {
      // node:sqlite has no fileMustExist; report what better-sqlite3 reports.
      if (opts.fileMustExist && !existsSync(path)) {
        throw Object.assign(new Error('unable to open database file'), {
          code: 'SQLITE_CANTOPEN',
        });
      }
      return new NodeSqliteDriver(new mod.DatabaseSync(path, { readOnly: opts.readonly }));
    },
  };
}
