/**
 * The snapshot store: one SQLite file per endpoint and session, `snap.db`, in WAL mode, on
 * the driver select-driver.ts picks (better-sqlite3, or node:sqlite where the addon cannot
 * load). Statements are prepared once; writes are grouped into transactions by the caller
 * (write()).
 *
 * Durability: WAL with synchronous=NORMAL. A committed transaction survives the process
 * being killed (SIGKILL) at any moment; after a power loss the last transactions may be
 * rolled back, which only makes the next run redo work: a path is recorded as synced only
 * after its data is in place, so a lost record means a resend, never a lost file.
 *
 * Per-directory records (schema 004, dir-record.ts) are a cache of the entries rows that the
 * scan reads instead of the rows. Every write path below deletes the record of each
 * directory whose children it changes, in the same transaction as the rows (touchDir), and
 * remembers the directory; flushDirRecords() rebuilds the remembered records in one
 * transaction (LocalEndpoint calls it before each scan, close() at the end). A record that
 * exists therefore always matches its rows; one that is missing costs a slower scan of that
 * directory. Meta `dir_records` is 'complete' only while no directory lacks its record, so
 * records lost to a kill -9 between a write and the flush are all rebuilt after the next
 * open for writing.
 *
 * A table that was seen empty (a new or reset database, an initial sync) is filled by
 * puts: then each directory's record is built from the puts themselves (`built`), and only
 * a directory that another kind of write touched is read back from its rows. Once such a
 * table has taken many puts, their rows are written by a thread of the store's own
 * (writer-thread.ts, "thread mode"): each committed write()'s rows are handed over after
 * its commit, in order, and this connection waits for the thread (sync()) before any other
 * statement, so nothing here reads or writes around rows still in flight.
 */
import type { Change, PathState, SnapshotRecord } from '../core/change.js';
import type { Entry, EntryKind } from '../core/entry.js';
import { baseName, joinRel, parentOf } from '../core/paths.js';
import type { Keep } from '../core/reconcile-bidi.js';
import { SessionError } from '../errors.js';
import type { RecordChild } from './dir-record.js';
import { DirRecordBuilder, FLAG_READ_ROW, encodeDirRecord } from './dir-record.js';
import type { DriverName, SqliteDriver } from './driver.js';
import { sqliteErrorCode } from './driver.js';
import {
  PUT_COLUMNS,
  PUT_ROWS,
  RowPacker,
  UPSERT,
  UPSERT_ROW,
  WAL_CHECKPOINT_PAGES,
  unpackRows,
} from './rows.js';
import { latestSchemaVersion, migrations } from './schema.js';
import { debug, snapshotDriver } from './select-driver.js';
import type { PackedRecords } from './writer-thread.js';
import { RowWriter, writerThreadAvailable } from './writer-thread.js';

const KIND_CODE: Record<EntryKind, number> = { file: 1, dir: 2, symlink: 3 };
const KIND_NAME: Record<number, EntryKind> = { 1: 'file', 2: 'dir', 3: 'symlink' };
const STATE_CODE: Record<PathState, number> = { synced: 0, pending: 1, conflict: 2, error: 3 };
const STATE_NAME: Record<number, PathState> = {
  0: 'synced',
  1: 'pending',
  2: 'conflict',
  3: 'error',
};

/**
 * Thread mode: children added to the records being built between two looks for quiet
 * directories (handOverQuiet()), and how many must follow a directory's last change for it
 * to count as quiet (more than the pump has in flight, whose results come out of order).
 */
const HAND_OVER_EVERY = 16_384;
const QUIET_ADDS = 16_384;

interface Row {
  dir: string;
  name: string;
  kind: number | null;
  size: number | null;
  mtime: number | null;
  mode: number | null;
  ino: number | null;
  uid: number | null;
  gid: number | null;
  target: string | null;
  digest: string | null;
  /** Absent in a database still at schema 1 opened read-only. */
  xattrs?: string | null;
  state: number;
  message: string | null;
}

export type StateCounts = Record<PathState, number>;

/**
 * The columns of a row that go into its directory's record, as an array in RECORD_COLUMNS
 * order (Perf: read as arrays, a rebuild reads every row of the directories written).
 * `extra` is 1 when the row has a link target or xattrs, which the record does not carry.
 */
type RecordRow = [
  name: string,
  kind: number | null,
  size: number | null,
  mtime: number | null,
  mode: number | null,
  ino: number | null,
  uid: number | null,
  gid: number | null,
  extra: number,
  state: number,
];

const RECORD_COLUMNS =
  'name, kind, size, mtime, mode, ino, uid, gid, (target IS NOT NULL OR xattrs IS NOT NULL) AS extra, state';

function recordChild(r: RecordRow): RecordChild {
  const [name, kind, size, mtime, mode, ino, uid, gid, extra, state] = r;
  return {
    name,
    kind: kind ?? 0,
    // sameLocalState compares the stored size; the scan's lstat gives 0 for non-files.
    size: size ?? 0,
    mtime: mtime ?? 0,
    mode: mode ?? 0,
    ino: ino ?? 0,
    uid: uid ?? 0,
    gid: gid ?? 0,
    flags: kind === null || state !== 0 || extra !== 0 ? FLAG_READ_ROW : 0,
  };
}

/** Records waiting to be rebuilt: every one, or those of `dirs`. */
export interface RecordWork {
  readonly all: boolean;
  readonly dirs: readonly string[];
}

/** A directory's record as stored: see dir-record.ts for the layout. */
export interface StoredDirRecord {
  readonly names: string;
  readonly attrs: Uint8Array;
}

/** The oldest schema a read-only open can read: 004 only added the dirs cache. */
const MIN_READABLE_SCHEMA = 3;

function rowToRecord(r: Row): SnapshotRecord {
  const path = joinRel(r.dir, r.name);
  const entry: Entry | null =
    r.kind === null
      ? null
      : {
          path,
          kind: KIND_NAME[r.kind]!,
          size: r.size ?? 0,
          mtimeMs: r.mtime ?? 0,
          mode: r.mode ?? 0,
          ino: r.ino ?? 0,
          uid: r.uid ?? 0,
          gid: r.gid ?? 0,
          ...(r.target !== null ? { target: r.target } : {}),
          ...(r.digest !== null ? { digest: r.digest } : {}),
          ...(r.xattrs != null ? { xattrs: r.xattrs } : {}),
        };
  const state = STATE_NAME[r.state] ?? 'error';
  return r.message !== null ? { path, entry, state, message: r.message } : { path, entry, state };
}

/** The upper bound of the key range of every dir value at or below `dir`: 'a/b' -> 'a/b0'. */
function rangeEnd(dir: string): string {
  return `${dir}0`; // '0' is the code point right after '/'
}

export interface OpenOptions {
  /** Create the file and schema when missing. */
  readonly create: boolean;
  readonly readonly?: boolean;
}

export class SnapshotStore {
  readonly path: string;
  private readonly db: SqliteDriver;
  private readonly prepared: ReturnType<SnapshotStore['prepare']>;
  /**
   * Perf: rows put inside a transaction wait here, PUT_ROWS at a time, for one multi-row
   * upsert (about 40 % less per row than one statement each: a reset writes a row per file
   * on each side). Flat: PUT_COLUMNS values per row. Any other statement on the tables
   * first writes them (the `stmts` getter), and so does the end of every write(), so
   * nothing reads around them and they commit or roll back with their transaction.
   */
  private pendingPuts: (string | number | null)[] = [];
  private readonly records: ReturnType<SnapshotStore['prepareRecords']> | undefined;
  /** Directories whose record was deleted and not rebuilt yet. */
  private readonly dirty = new Set<string>();
  /** Every record must be rebuilt (an older schema, or a kill -9 before a flush). */
  private allDirty = false;
  /**
   * Directories whose record was already deleted in the current outermost transaction
   * (Perf: one DELETE per directory and batch, not per put). Cleared at the end of every
   * transaction and on any rollback, after which deleting again is merely redundant.
   */
  private readonly deletedInTx = new Set<string>();
  private depth = 0;
  /** Meta dir_records is known to say 'partial' (set before the first record is dropped). */
  private markedPartial = false;
  /**
   * Perf: once the table was seen empty (size() of an initial sync or a reset, clear()),
   * the directories written since; a directory not in it holds no rows, so get() needs no
   * query there (an initial push asks the receiver's snapshot about every file it places).
   * Undefined when unknown (never seen empty, or a subtree moved since).
   */
  private writtenSinceEmpty: Set<string> | undefined;
  /**
   * Perf: once the table was seen empty, the children put in each directory since, as its
   * record will hold them; null for a directory that another write touched (its rows are
   * read back). Its records are written from these by the next flush, not read back from
   * a million rows (3-4 s per side at 1M files). Undefined when unknown, and after a flush.
   */
  private built: Map<string, DirRecordBuilder | null> | undefined;
  /**
   * Thread mode: the directories of `built` changed since their record was last handed to
   * the thread, each with the count of `adds` at its last change (see handOverQuiet()).
   */
  private readonly touched = new Map<string, number>();
  /** Children added to `built` since it was started. */
  private adds = 0;
  /** `adds` at which handOverQuiet() looks for quiet directories next. */
  private nextHandOver = HAND_OVER_EVERY;
  /** Some records of `built` were handed to the thread already. */
  private handedOver = false;
  private readonly readonly_: boolean;
  /**
   * Thread mode (see the head of this file): the thread writing the rows, and the rows put
   * in the current outermost write() that wait for its commit to be handed over. Both
   * undefined until the table took THREAD_MIN_PUTS puts since it was seen empty.
   */
  private writer: RowWriter | undefined;
  private threadRows: RowPacker | undefined;
  /** Bumped each time sync() moves threadRows to this connection (marks before it are void). */
  private threadRowsEpoch = 0;
  /** Puts since the table was seen empty (when thread mode starts). */
  private builtPuts = 0;
  /** The puts after which thread mode starts (Infinity where there is no thread). */
  private threadMin = writerThreadAvailable() ? threadMinPuts() : Infinity;

  private constructor(path: string, db: SqliteDriver, readonly_: boolean) {
    this.path = path;
    this.db = db;
    this.readonly_ = readonly_;
    this.prepared = this.prepare();
    this.records = this.hasTable('dirs') ? this.prepareRecords() : undefined;
    if (!readonly_ && this.records && this.getMeta('dir_records') !== 'complete') {
      this.allDirty = true;
      this.markedPartial = this.getMeta('dir_records') === 'partial';
    }
  }

  /**
   * Opens (or creates) a snapshot database. A file that is not SQLite, is damaged, or was
   * written by a newer version is refused with SessionError and never modified.
   */
  static open(path: string, opts: OpenOptions): SnapshotStore {
    const driver = snapshotDriver();
    let db: SqliteDriver;
    try {
      db = driver.open(path, { fileMustExist: !opts.create, readonly: opts.readonly ?? false });
    } catch (e) {
      throw corrupt(path, e);
    }
    try {
      const version = Number(db.pragma('user_version'));
      const latest = latestSchemaVersion();
      if (version > latest) {
        throw new SessionError(
          'ERR_DB_SCHEMA',
          `Snapshot database ${path} has schema version ${version}, newer than this program knows (${latest}).`,
          'Use the newer version of async that wrote it, or run with -x/--reset to rebuild it.',
        );
      }
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        // Perf: the WAL is copied into the file (with an fsync) every 64 MiB rather than every
        // 4 MiB (SQLite's default): a reset or an initial sync of 1M files writes ~150 MB per
        // side, and a page written many times between two checkpoints is copied once.
        // finish() truncates the WAL at the end of every run.
        db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
      }
      db.pragma('busy_timeout = 5000');
      if (version === 0 && !opts.readonly) {
        const tables = db
          .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")
          .get() as { n: number };
        if (tables.n > 0) throw new Error('tables present but no schema version');
      }
      if (version < latest && !opts.readonly) {
        db.transaction(() => {
          for (const m of migrations().slice(version)) db.exec(m.sql);
          // Whatever an upgraded file says of its records, they are rebuilt (the flag may
          // come from a copy whose records table was dropped by hand).
          db.prepare("DELETE FROM meta WHERE key = 'dir_records'").run();
          db.pragma(`user_version = ${latest}`);
        });
      }
      if (version === 0 && opts.readonly) throw new Error('empty database');
      if (version < MIN_READABLE_SCHEMA && opts.readonly) {
        // A read-only reader (asyncadmin) cannot upgrade the file, and the statements of
        // this version name columns the older schema lacks.
        throw new SessionError(
          'ERR_DB_SCHEMA',
          `Snapshot database ${path} has schema version ${version}, older than this program can read (${MIN_READABLE_SCHEMA}); it was last used by an older async.`,
          'Run the session once with this version of async (it upgrades the database), then read it again.',
        );
      }
      // Touch the table so a damaged file fails here, not in the middle of a run.
      db.prepare('SELECT count(*) FROM meta').get();
      return new SnapshotStore(path, db, opts.readonly ?? false);
    } catch (e) {
      db.close();
      if (e instanceof SessionError) throw e;
      throw corrupt(path, e);
    }
  }

  private prepare() {
    const db = this.db;
    return {
      metaGet: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      metaAll: db.prepare<[], { key: string; value: string }>(
        'SELECT key, value FROM meta ORDER BY key',
      ),
      metaSet: db.prepare<[string, string]>(
        'INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)',
      ),
      children: db.prepare<[string], Row>('SELECT * FROM entries WHERE dir = ?'),
      get: db.prepare<[string, string], Row>('SELECT * FROM entries WHERE dir = ? AND name = ?'),
      below: db.prepare<[string, string, string], Row>(
        'SELECT * FROM entries WHERE dir = ? OR (dir >= ? AND dir < ?) ORDER BY dir, name',
      ),
      all: db.prepare<[], Row>('SELECT * FROM entries ORDER BY dir, name'),
      // Positional parameters: binding by name from an object costs ~30 % more per row,
      // and an initial push writes one row per file on each side.
      upsert: db.prepare<(string | number | null)[]>(`${UPSERT} ${UPSERT_ROW}`),
      upsertMany: db.prepare<(string | number | null)[]>(
        `${UPSERT} ${Array<string>(PUT_ROWS).fill(UPSERT_ROW).join(', ')}`,
      ),
      setState: db.prepare<[number, string | null, string, string]>(
        'UPDATE entries SET state = ?, message = ? WHERE dir = ? AND name = ?',
      ),
      insertStateOnly: db.prepare<[string, string, number, string | null]>(
        'INSERT OR IGNORE INTO entries (dir, name, state, message) VALUES (?, ?, ?, ?)',
      ),
      deleteOne: db.prepare<[string, string]>('DELETE FROM entries WHERE dir = ? AND name = ?'),
      deleteBelow: db.prepare<[string, string, string]>(
        'DELETE FROM entries WHERE dir = ? OR (dir >= ? AND dir < ?)',
      ),
      moveOne: db.prepare<[string, string, string, string]>(
        'UPDATE entries SET dir = ?, name = ? WHERE dir = ? AND name = ?',
      ),
      moveBelow: db.prepare<[string, number, string, string, string]>(
        'UPDATE entries SET dir = ? || substr(dir, ?) WHERE dir = ? OR (dir >= ? AND dir < ?)',
      ),
      counts: db.prepare<[], { state: number; n: number }>(
        'SELECT state, count(*) AS n FROM entries GROUP BY state',
      ),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM entries'),
      countUpTo: db.prepare<[number], { n: number }>(
        'SELECT count(*) AS n FROM (SELECT 1 FROM entries LIMIT ?)',
      ),
      clear: db.prepare<[]>('DELETE FROM entries'),
      deleteByState: db.prepare<[number]>('DELETE FROM entries WHERE state = ?'),
    };
  }

  private prepareRecords() {
    const db = this.db;
    return {
      get: db.prepare<[string], StoredDirRecord>('SELECT names, attrs FROM dirs WHERE dir = ?'),
      put: db.prepare<[string, string, Uint8Array]>(
        'INSERT OR REPLACE INTO dirs (dir, names, attrs) VALUES (?, ?, ?)',
      ),
      drop: db.prepare<[string]>('DELETE FROM dirs WHERE dir = ?'),
      dropBelow: db.prepare<[string, string, string]>(
        'DELETE FROM dirs WHERE dir = ? OR (dir >= ? AND dir < ?)',
      ),
      moveBelow: db.prepare<[string, number, string, string, string]>(
        'UPDATE dirs SET dir = ? || substr(dir, ?) WHERE dir = ? OR (dir >= ? AND dir < ?)',
      ),
      clear: db.prepare<[]>('DELETE FROM dirs'),
      rows: db.prepareArrays<[string], RecordRow>(
        `SELECT ${RECORD_COLUMNS} FROM entries WHERE dir = ?`,
      ),
      allDirs: db.prepare<[], { dir: string }>('SELECT DISTINCT dir FROM entries'),
    };
  }

  /**
   * The prepared statements, once the writer thread is done and the rows waiting in
   * pendingPuts are written.
   */
  private get stmts(): ReturnType<SnapshotStore['prepare']> {
    if (this.writer) this.sync();
    if (this.pendingPuts.length > 0) this.writePuts();
    return this.prepared;
  }

  /**
   * Thread mode: waits until the writer thread committed every batch handed to it (throws
   * its failure), then writes the rows still waiting for this transaction's commit here,
   * in it: whatever this connection does next sees them, and follows them.
   */
  private sync(): void {
    const w = this.writer;
    if (!w) return;
    w.wait();
    const t = this.threadRows;
    if (!t || t.rows === 0) return;
    this.threadRowsEpoch++;
    unpackRows(t.take(), (row) => {
      for (let i = 0; i < PUT_COLUMNS; i++) this.pendingPuts.push(row[i]!);
      if (this.pendingPuts.length === PUT_ROWS * PUT_COLUMNS) this.writePuts();
    });
  }

  /**
   * Starts thread mode (inside a write()). No per-directory record exists while the table
   * fills from empty (a record holds rows), so puts drop none from here on: the table is
   * cleared once to be certain, and the meta flag says 'partial' before any row is written
   * by the thread (a kill -9 then leaves records to rebuild, never a stale one).
   */
  private startWriter(): boolean {
    let writer: RowWriter;
    try {
      writer = new RowWriter(this.path, this.db.name);
    } catch (e) {
      // The thread could not open the file (deleted meanwhile, say): this connection
      // writes alone, as without a thread.
      this.threadMin = Infinity;
      debug(`${this.path}: no writer thread (${e instanceof Error ? e.message : String(e)})`);
      return false;
    }
    debug(`${this.path}: rows written by a writer thread from now on`);
    const r = this.records!;
    r.clear.run();
    if (!this.markedPartial) {
      this.prepared.metaSet.run('dir_records', 'partial');
      this.markedPartial = true;
    }
    this.writer = writer;
    this.threadRows = new RowPacker();
    return true;
  }

  /**
   * Resolves once the rows of every write() so far are committed (at once unless a writer
   * thread still writes some); rejects with the thread's failure. A receiver awaits it
   * before confirming what it placed, so a sender never records what the receiver's
   * snapshot could still lose to a kill -9.
   */
  committed(): Promise<void> {
    return this.writer ? this.writer.committed() : Promise.resolve();
  }

  private writePuts(): void {
    const rows = this.pendingPuts;
    this.pendingPuts = [];
    const one = this.prepared.upsert;
    if (rows.length === PUT_ROWS * PUT_COLUMNS) {
      this.prepared.upsertMany.run(...rows);
      return;
    }
    for (let at = 0; at < rows.length; at += PUT_COLUMNS)
      one.run(...rows.slice(at, at + PUT_COLUMNS));
  }

  /** True once this store's rows go through a writer thread (thread mode; tests, debugging). */
  get threadMode(): boolean {
    return this.writer !== undefined;
  }

  /** The SQLite driver of this connection (a scan thread opens the file with the same). */
  get driver(): DriverName {
    return this.db.name;
  }

  // --- metadata ---------------------------------------------------------------------------

  getMeta(key: string): string | undefined {
    return this.stmts.metaGet.get(key)?.value;
  }

  allMeta(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const r of this.stmts.metaAll.all()) out[r.key] = r.value;
    return out;
  }

  setMeta(values: Record<string, string>): void {
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(values)) this.stmts.metaSet.run(k, v);
    });
  }

  // --- reads ------------------------------------------------------------------------------

  /** The records of the direct children of `dir` ('' for the root), in no particular order. */
  children(dir: string): SnapshotRecord[] {
    return this.stmts.children.all(dir).map(rowToRecord);
  }

  get(path: string): SnapshotRecord | undefined {
    const dir = parentOf(path);
    if (this.writtenSinceEmpty !== undefined && !this.writtenSinceEmpty.has(dir)) return undefined;
    const r = this.stmts.get.get(dir, baseName(path));
    return r ? rowToRecord(r) : undefined;
  }

  /** Records strictly below `path` (all of them for ''), ordered by directory then name. */
  below(path: string): SnapshotRecord[] {
    if (path === '') return this.stmts.all.all().map(rowToRecord);
    return this.stmts.below.all(path, `${path}/`, rangeEnd(path)).map(rowToRecord);
  }

  /** Synced entries strictly below `path`. */
  descendants(path: string): Entry[] {
    const out: Entry[] = [];
    for (const r of this.below(path)) if (r.entry && r.state === 'synced') out.push(r.entry);
    return out;
  }

  /**
   * The compact record of `dir`'s children, or undefined when there is none (not rebuilt
   * since a write, or a database older than schema 004): then read children() instead.
   */
  dirRecord(dir: string): StoredDirRecord | undefined {
    this.sync();
    return this.records?.get.get(dir);
  }

  *iterate(): IterableIterator<SnapshotRecord> {
    for (const r of this.stmts.all.iterate()) yield rowToRecord(r);
  }

  counts(): StateCounts {
    const out: StateCounts = { synced: 0, pending: 0, conflict: 0, error: 0 };
    for (const r of this.stmts.counts.all()) out[STATE_NAME[r.state] ?? 'error'] += r.n;
    return out;
  }

  /** min(size(), limit), without reading more than `limit` rows. */
  sizeUpTo(limit: number): number {
    return this.stmts.countUpTo.get(limit)!.n;
  }

  size(): number {
    const n = this.stmts.count.get()!.n;
    if (n === 0) {
      this.builtPuts = 0;
      this.writtenSinceEmpty = new Set();
      if (this.records && !this.readonly_) this.startBuilding();
    }
    return n;
  }

  // --- writes (call inside write() to batch) -----------------------------------------------

  /** Runs `fn` in one transaction (a savepoint when nested). */
  write<T>(fn: () => T): T {
    // Rows put before a nested write() belong to the enclosing level: written now, so a
    // rollback of the inner one drops only its own. Thread mode: the rows the thread will
    // get from here on are marked, and a rollback drops them.
    if (this.pendingPuts.length > 0) this.writePuts();
    const mark = this.threadRows?.mark();
    const epoch = this.threadRowsEpoch;
    this.depth++;
    let out: T;
    try {
      out = this.db.transaction(() => {
        const out = fn();
        if (this.pendingPuts.length > 0) this.writePuts();
        return out;
      });
    } catch (e) {
      this.pendingPuts = [];
      // Rows moved to this connection by sync() since the mark were rolled back with it;
      // all rows packed after such a move, or since thread mode started inside this level
      // (no mark), are this level's.
      if (this.threadRows)
        if (!mark || this.depth === 1 || epoch !== this.threadRowsEpoch) this.threadRows.take();
        else this.threadRows.truncate(mark);
      // Rolled back: records deleted inside may be back, so none is known deleted now, and
      // the meta flag set inside may be undone.
      this.deletedInTx.clear();
      this.markedPartial = false;
      // A rolled-back clear() leaves its rows: emptiness is no longer known.
      this.writtenSinceEmpty = undefined;
      this.stopBuilding();
      throw e;
    } finally {
      if (--this.depth === 0) this.deletedInTx.clear();
    }
    // Committed: the thread gets the rows now, after what this connection wrote.
    if (this.depth === 0 && this.threadRows && this.threadRows.rows > 0) {
      this.writer!.send(this.threadRows.take());
      this.handOverQuiet();
    }
    return out;
  }

  /**
   * The children of `dir` are about to change: its record goes, in the same transaction,
   * and is rebuilt by the next flushDirRecords(). `put` is the child a put writes.
   */
  private touchDir(dir: string, put?: RecordChild): void {
    this.writtenSinceEmpty?.add(dir);
    this.addBuilt(dir, put);
    const r = this.records;
    if (!r) return;
    if (!this.markedPartial) {
      this.stmts.metaSet.run('dir_records', 'partial');
      // Outside a transaction the write above is durable at once; inside, it is part of
      // the transaction that drops the record.
      this.markedPartial = true;
    }
    this.dirty.add(dir);
    if (this.depth > 0 && this.deletedInTx.has(dir)) return;
    r.drop.run(dir);
    if (this.depth > 0) this.deletedInTx.add(dir);
  }

  /**
   * The record being built for `dir` (see `built`) gets `child`; with none (a write other
   * than a put), the directory's record is read back from its rows instead.
   */
  private addBuilt(dir: string, child: RecordChild | undefined): void {
    if (!this.built) return;
    this.touched.set(dir, ++this.adds);
    let b = this.built.get(dir);
    if (child === undefined) this.built.set(dir, null);
    else if (b !== null) {
      if (b === undefined) this.built.set(dir, (b = new DirRecordBuilder()));
      b.add(child);
    }
  }

  /** A table seen empty: its records are built from the puts from here on (see `built`). */
  private startBuilding(): void {
    this.built = new Map();
    this.touched.clear();
    this.adds = 0;
    this.nextHandOver = HAND_OVER_EVERY;
    this.handedOver = false;
  }

  /** The records are no longer built from puts (written, or read back from rows instead). */
  private stopBuilding(): void {
    this.built = undefined;
    this.touched.clear();
  }

  /**
   * Thread mode, after a commit: hands the thread the records of the directories no put
   * reached for QUIET_ADDS children (Perf: an initial push's puts come in path order, so
   * those are done, and their records are written during the run instead of all after its
   * last file: 1.1-1.5 s per side of a 1M-file push). A directory put to again afterwards
   * is handed over again with the rest (writeBuiltRecords()); until then its record may
   * lack children, which is safe: meta dir_records says 'partial' all the while (so a
   * kill -9 rebuilds every record), and the thread writes the record after the rows it
   * was built from.
   */
  private handOverQuiet(): void {
    const built = this.built;
    if (!built || !this.writer || this.adds < this.nextHandOver) return;
    this.nextHandOver = this.adds + HAND_OVER_EVERY;
    const quiet = new Map<string, DirRecordBuilder | null>();
    for (const [dir, at] of this.touched) {
      if (this.adds - at < QUIET_ADDS) continue;
      quiet.set(dir, built.get(dir)!);
      this.touched.delete(dir);
    }
    if (quiet.size === 0) return;
    this.writer.sendRecords({ records: packRecords(quiet), clear: false, complete: false });
    this.handedOver = true;
  }

  /**
   * Rebuilds the records of the directories changed since the last flush (all of them
   * after an upgrade from an older schema or a kill -9), in one transaction.
   */
  flushDirRecords(): void {
    this.writeBuiltRecords();
    // Thread mode: the records are current (a scan thread reads them) once the thread is done.
    this.sync();
    const r = this.records;
    if (!r || (!this.allDirty && this.dirty.size === 0 && this.markedPartial === false)) return;
    this.write(() => {
      if (this.allDirty) {
        r.clear.run();
        // The directories first: SQLite cannot write while a statement still iterates.
        for (const { dir } of r.allDirs.all()) this.rebuildRecord(dir);
      } else {
        for (const dir of this.dirty) this.rebuildRecord(dir);
      }
      this.stmts.metaSet.run('dir_records', 'complete');
    });
    this.recordsRebuilt();
  }

  /**
   * Writes the records built from puts since the table was seen empty (see `built`), and
   * leaves only the directories whose rows must be read back to the rebuild.
   */
  private writeBuiltRecords(): void {
    const built = this.built;
    const r = this.records;
    if (!built || !r || built.size === 0) return;
    // Every directory with rows is in `built`: all of them were written since the table
    // was empty. So "rebuild every record" comes down to the ones not built here.
    const dirty = new Set(this.allDirty ? [] : this.dirty);
    for (const [dir, b] of built) {
      if (b === null) dirty.add(dir);
      else dirty.delete(dir);
    }
    if (this.writer && this.depth === 0) {
      // Thread mode: the thread writes them after the rows, while this thread goes on (a
      // local session's other side writes its own at the same time). A failure there is
      // reported by the next statement here, as any of its failures. Those handed over
      // during the run (handOverQuiet()) and not changed since are written already.
      const rest = this.handedOver
        ? new Map([...this.touched.keys()].map((d) => [d, built.get(d)!]))
        : built;
      this.writer.sendRecords({
        records: packRecords(rest),
        clear: this.allDirty && !this.handedOver,
        complete: dirty.size === 0,
      });
    } else {
      // After the records handed over so far, which this writes again.
      this.sync();
      this.write(() => {
        if (this.allDirty) r.clear.run();
        for (const [dir, b] of built) {
          if (b === null) continue;
          const enc = b.finish();
          r.put.run(dir, enc.names, enc.attrs);
        }
        if (dirty.size === 0) this.stmts.metaSet.run('dir_records', 'complete');
      });
    }
    // Written (a failed write leaves the state as it was, and `built` undefined: the rows
    // are read back). The records are no longer an empty table's: later puts would miss
    // its rows.
    this.stopBuilding();
    this.allDirty = false;
    this.dirty.clear();
    for (const d of dirty) this.dirty.add(d);
    if (dirty.size === 0) this.markedPartial = false;
  }

  /**
   * The records flushDirRecords() would rebuild now (undefined when none), so that another
   * connection to the same file (a thread's: ScanThreads.rebuildRecords) can rebuild
   * them with rebuildRecordsOf() while this one waits. This store still counts them as
   * pending until recordsRebuilt() says they are done. Records built from puts (see
   * `built`) are written first, here: they need no rows read.
   */
  pendingRecords(): RecordWork | undefined {
    this.writeBuiltRecords();
    if (!this.records || (!this.allDirty && this.dirty.size === 0 && !this.markedPartial))
      return undefined;
    // Another connection reads the rows: every row handed to the thread must be in. (With
    // nothing to rebuild, the caller's next statement waits instead, so a local session's
    // two writer threads finish their records at the same time.)
    this.sync();
    return { all: this.allDirty, dirs: this.allDirty ? [] : [...this.dirty] };
  }

  /** Rebuilds the records `work` names, as the store that handed them over would have. */
  rebuildRecordsOf(work: RecordWork): void {
    this.allDirty = work.all;
    this.dirty.clear();
    for (const d of work.dirs) this.dirty.add(d);
    this.markedPartial = true;
    this.flushDirRecords();
  }

  /** Another connection rebuilt the pending records (see pendingRecords()). */
  recordsRebuilt(): void {
    this.allDirty = false;
    this.dirty.clear();
    this.markedPartial = false;
  }

  /** Writes the record of `dir` from its rows (none when it has no rows). */
  private rebuildRecord(dir: string): void {
    const r = this.records!;
    const kids = r.rows.all(dir).map(recordChild);
    if (kids.length === 0) {
      r.drop.run(dir);
      return;
    }
    const enc = encodeDirRecord(kids);
    r.put.run(dir, enc.names, enc.attrs);
  }

  put(entry: Entry, state: PathState = 'synced', message?: string): void {
    const dir = parentOf(entry.path);
    const name = baseName(entry.path);
    const kind = KIND_CODE[entry.kind];
    if (this.built && this.depth > 0) {
      if (this.threadRows) {
        this.putInThreadMode(entry, dir, name, kind, state, message);
        return;
      }
      if (++this.builtPuts >= this.threadMin && this.records && this.startWriter()) {
        this.putInThreadMode(entry, dir, name, kind, state, message);
        return;
      }
    }
    if (this.writer) this.sync();
    this.touchDir(dir, this.built && childOf(entry, name, kind, state));
    const rows = this.depth > 0 ? this.pendingPuts : [];
    rows.push(
      dir,
      name,
      kind,
      entry.size,
      entry.mtimeMs,
      entry.mode,
      entry.ino,
      entry.uid,
      entry.gid,
      entry.target ?? null,
      entry.digest ?? null,
      entry.xattrs ?? null,
      STATE_CODE[state],
      message ?? null,
    );
    // Outside a transaction a put is written at once, as any other statement.
    if (this.depth === 0) this.prepared.upsert.run(...rows);
    else if (rows.length === PUT_ROWS * PUT_COLUMNS) this.writePuts();
  }

  /**
   * put() in thread mode: the record to build and the row for the thread, no statement
   * here (no record to drop: see startWriter()).
   */
  private putInThreadMode(
    entry: Entry,
    dir: string,
    name: string,
    kind: number,
    state: PathState,
    message: string | undefined,
  ): void {
    if (!this.markedPartial) {
      // The records were written since thread mode started (and the table cleared since):
      // the flag says 'partial' again before the thread writes rows without records.
      this.sync();
      this.prepared.metaSet.run('dir_records', 'partial');
      this.markedPartial = true;
    }
    this.writtenSinceEmpty?.add(dir);
    this.dirty.add(dir);
    this.addBuilt(dir, childOf(entry, name, kind, state));
    this.threadRows!.add(dir, name, kind, entry, STATE_CODE[state], message);
  }

  /** Marks a path with a state, keeping its last synced entry; adds a bare row if none. */
  mark(path: string, state: PathState, message?: string): void {
    this.sync();
    const dir = parentOf(path);
    const name = baseName(path);
    this.touchDir(dir);
    const res = this.stmts.setState.run(STATE_CODE[state], message ?? null, dir, name);
    if (res.changes === 0)
      this.stmts.insertStateOnly.run(dir, name, STATE_CODE[state], message ?? null);
  }

  /** Removes the record of `path` and of everything below it. */
  remove(path: string): void {
    this.sync();
    if (path === '') {
      this.clear();
      return;
    }
    this.touchDir(parentOf(path));
    // Rows below go too: the children put there are no longer what those rows hold.
    this.stopBuilding();
    this.records?.dropBelow.run(path, `${path}/`, rangeEnd(path));
    this.stmts.deleteOne.run(parentOf(path), baseName(path));
    this.stmts.deleteBelow.run(path, `${path}/`, rangeEnd(path));
  }

  /** Moves the records of `from` and everything below it to `to`. */
  move(from: string, to: string): void {
    this.sync();
    this.remove(to);
    this.touchDir(parentOf(from));
    this.touchDir(parentOf(to));
    this.stmts.moveOne.run(parentOf(to), baseName(to), parentOf(from), baseName(from));
    // dir values at or below `from` become `to` + their remainder (directories get() no
    // longer knows to be empty).
    this.writtenSinceEmpty = undefined;
    this.stopBuilding();
    this.stmts.moveBelow.run(to, from.length + 1, from, `${from}/`, rangeEnd(from));
    // A record holds names and attributes only, so the records below move unchanged; the
    // directories below that still await a rebuild await it under their new path.
    this.records?.moveBelow.run(to, from.length + 1, from, `${from}/`, rangeEnd(from));
    for (const d of [...this.dirty]) {
      if (d === from || d.startsWith(`${from}/`)) {
        this.dirty.delete(d);
        this.dirty.add(to + d.slice(from.length));
      }
    }
    this.deletedInTx.clear();
  }

  /** Applies one side's changes as the new snapshot (all synced). Used for adopt and tests. */
  applyChanges(changes: readonly Change[]): void {
    this.write(() => {
      for (const c of changes) {
        if (c.from !== undefined) this.move(c.from, c.path);
        if (c.new === null) this.remove(c.path);
        else this.put(c.new);
      }
    });
  }

  clear(): void {
    this.sync();
    this.records?.clear.run();
    this.dirty.clear();
    this.stmts.clear.run();
    this.writtenSinceEmpty = new Set();
    this.builtPuts = 0;
    if (this.records) this.startBuilding();
  }

  deleteByState(state: PathState): number {
    this.sync();
    // Rows of any directory may go: drop every record and rebuild them all.
    this.stopBuilding();
    if (this.records) {
      this.touchDir('');
      this.records.clear.run();
      this.allDirty = true;
    }
    return this.stmts.deleteByState.run(STATE_CODE[state]).changes;
  }

  // --- bidi resolutions (schema 002) -------------------------------------------------------

  /** Stored decisions for paths in conflict (asyncadmin --resolve), by path. */
  resolutions(): { path: string; keep: Keep }[] {
    if (!this.hasTable('resolutions')) return [];
    return this.db
      .prepare<[], { path: string; keep: Keep }>('SELECT path, keep FROM resolutions ORDER BY path')
      .all();
  }

  setResolution(path: string, keep: Keep): void {
    this.sync();
    this.db
      .prepare<[string, string, string]>(
        'INSERT OR REPLACE INTO resolutions (path, keep, created) VALUES (?, ?, ?)',
      )
      .run(path, keep, new Date().toISOString());
  }

  clearResolution(path: string): void {
    this.sync();
    if (this.hasTable('resolutions'))
      this.db.prepare<[string]>('DELETE FROM resolutions WHERE path = ?').run(path);
  }

  /** Removes the record of exactly `path` (asyncadmin -E); true when there was one. */
  eraseOne(path: string): boolean {
    this.sync();
    this.touchDir(parentOf(path));
    return this.stmts.deleteOne.run(parentOf(path), baseName(path)).changes > 0;
  }

  private hasTable(name: string): boolean {
    // A database of schema 1 opened read-only (asyncadmin) has no resolutions table yet.
    return (
      this.db
        .prepare<[string], { n: number }>(
          "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .get(name)!.n > 0
    );
  }

  checkpoint(): void {
    this.sync();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** Rebuilds the records changed by this connection (when it may write), then closes. */
  close(): void {
    if (!this.db.open) return;
    try {
      this.flushDirRecords();
    } catch {
      // A read-only connection, or a full disk: the records stay missing, the meta flag
      // says so, and the next open for writing rebuilds them.
    }
    try {
      this.writer?.close();
    } catch {
      // Its failure was reported by the statement that waited for it; rows it did not
      // write are missing records, which the next run redoes.
    }
    this.writer = undefined;
    this.threadRows = undefined;
    this.db.close();
  }
}

/**
 * Puts into a table seen empty after which its rows go to a writer thread (thread mode):
 * starting the thread and loading SQLite into it costs ~50 ms, worth it only for big runs.
 * ASYNC_WRITER_THREAD_MIN_PUTS overrides it (tests: 0 sends every row through it).
 */
export function threadMinPuts(): number {
  const v = Number(process.env['ASYNC_WRITER_THREAD_MIN_PUTS']);
  return process.env['ASYNC_WRITER_THREAD_MIN_PUTS'] !== undefined &&
    Number.isSafeInteger(v) &&
    v >= 0
    ? v
    : 20_000;
}

/** The record child a put writes, as recordChild() reads its row back. */
function childOf(entry: Entry, name: string, kind: number, state: PathState): RecordChild {
  return {
    name,
    kind,
    size: entry.size,
    mtime: entry.mtimeMs,
    mode: entry.mode,
    ino: entry.ino,
    uid: entry.uid,
    gid: entry.gid,
    flags:
      state !== 'synced' || entry.target !== undefined || entry.xattrs !== undefined
        ? FLAG_READ_ROW
        : 0,
  };
}

/** The records built from puts, packed for the writer thread (see PackedRecords). */
function packRecords(built: Map<string, DirRecordBuilder | null>): PackedRecords {
  const strings: string[] = [];
  const parts: Uint8Array[] = [];
  let bytes = 0;
  for (const [dir, b] of built) {
    if (b === null) continue;
    const enc = b.finish();
    strings.push(dir, enc.names);
    parts.push(enc.attrs);
    bytes += enc.attrs.byteLength;
  }
  const attrs = new Uint8Array(bytes);
  const ends = new Uint32Array(parts.length);
  let at = 0;
  parts.forEach((p, i) => {
    attrs.set(p, at);
    ends[i] = at += p.byteLength;
  });
  return { text: strings.join('\0'), attrs, ends };
}

function corrupt(path: string, cause: unknown): SessionError {
  const code = sqliteErrorCode(cause);
  if (code === 'SQLITE_NOTADB') {
    return new SessionError(
      'ERR_DB_CORRUPT',
      `Snapshot database ${path}: file is encrypted or is not a database.`,
      'Move the file away, or run with -x/--reset to rebuild both snapshots from a scan.',
      { cause },
    );
  }
  if (code === 'SQLITE_CANTOPEN') {
    return new SessionError(
      'ERR_DB_LOCATION',
      `Cannot open snapshot database ${path}.`,
      'Check that its directory exists and is writable by this user.',
      { cause },
    );
  }
  return new SessionError(
    'ERR_DB_CORRUPT',
    `Corrupt database ${path}: ${cause instanceof Error ? cause.message : String(cause)}.`,
    'Move the file away, or run with -x/--reset to rebuild both snapshots from a scan.',
    { cause },
  );
}
