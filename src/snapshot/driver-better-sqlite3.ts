/**
 * The better-sqlite3 adapter: the default driver. Loaded with require at first use, not with
 * a static import, so a missing or mis-built addon (another Node ABI) can fall back to
 * node:sqlite instead of failing every command at start-up.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { DriverFactory, DriverOpenOptions, SqliteDriver, Statement } from './driver.js';

class BetterSqliteDriver implements SqliteDriver {
  readonly name = 'better-sqlite3' as const;

  constructor(private readonly db: BetterSqlite3.Database) {}

  get open(): boolean {
    return this.db.open;
  }

  prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Statement<P, R> {
    // better-sqlite3's Statement already has run/get/all/iterate with these shapes.
    return this.db.prepare(sql) as unknown as Statement<P, R>;
  }

  prepareArrays<P extends unknown[] = unknown[], R extends unknown[] = unknown[]>(
    sql: string,
  ): Statement<P, R> {
    return this.db.prepare(sql).raw(true) as unknown as Statement<P, R>;
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  pragma(text: string): unknown {
    return this.db.pragma(text, { simple: true });
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/**
 * Loads better-sqlite3 and proves its addon works on this Node (the addon itself is loaded
 * only when a first database is opened). Throws what the loader threw.
 */
export function loadBetterSqlite3(): DriverFactory {
  const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  new Database(':memory:').close();
  return {
    name: 'better-sqlite3',
    open(path: string, opts: DriverOpenOptions): SqliteDriver {
      return new BetterSqliteDriver(
        new Database(path, { fileMustExist: opts.fileMustExist, readonly: opts.readonly }),
      );
    },
  };
}
