/**
 * The snapshot's `entries` rows as the store writes them: the upsert statement, and a batch
 * of rows packed (one string, one Float64Array) so a writer thread (writer-thread.ts) gets
 * it without a structured clone of every value.
 */
import type { Entry } from '../core/entry.js';
import type { PackMark, Packed } from '../core/packing.js';
import { PackReader, PackWriter } from '../core/packing.js';

export const UPSERT = `INSERT OR REPLACE INTO entries (dir, name, kind, size, mtime, mode, ino, uid, gid, target, digest, xattrs, state, message) VALUES`;
export const UPSERT_ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
/** Values per row, in UPSERT's column order. */
export const PUT_COLUMNS = 14;
/** Rows per multi-row upsert (64: 896 parameters; 16 measured barely better than one). */
export const PUT_ROWS = 64;
/** WAL pages (4 KiB) between automatic checkpoints (every connection that writes). */
export const WAL_CHECKPOINT_PAGES = 16_384;

/** One row's values in UPSERT's column order. */
export type RowValue = string | number | null;

// The four optional text columns, by their bit in a packed row's `present` number.
const TARGET = 1;
const DIGEST = 2;
const XATTRS = 4;
const MESSAGE = 8;
/** The row's directory is the previous row's (not packed again: rows come in path order). */
const SAME_DIR = 16;

/** A position in a RowPacker. */
export interface RowMark {
  readonly at: PackMark;
  readonly rows: number;
}

/** Rows packed one after the other, as put() hands them over. */
export class RowPacker {
  private w = new PackWriter(8192);
  /** Rows packed since the last take(). */
  rows = 0;
  private lastDir: string | undefined;

  /** The row put() writes for `entry` (at `dir`/`name`, with its kind and state codes). */
  add(
    dir: string,
    name: string,
    kind: number,
    entry: Entry,
    state: number,
    message: string | undefined,
  ): void {
    const { target, digest, xattrs } = entry;
    const w = this.w;
    const sameDir = this.rows > 0 && dir === this.lastDir;
    if (!sameDir) w.str(dir);
    this.lastDir = dir;
    w.str(name);
    const present =
      (sameDir ? SAME_DIR : 0) |
      (target !== undefined ? TARGET : 0) |
      (digest !== undefined ? DIGEST : 0) |
      (xattrs !== undefined ? XATTRS : 0) |
      (message !== undefined ? MESSAGE : 0);
    if (target !== undefined) w.str(target);
    if (digest !== undefined) w.str(digest);
    if (xattrs !== undefined) w.str(xattrs);
    if (message !== undefined) w.str(message);
    w.num(present);
    w.num(kind);
    w.stat(entry);
    w.num(state);
    this.rows++;
  }

  /** Where the packer stands, for truncate() (a savepoint rolled back). */
  mark(): RowMark {
    return { at: this.w.mark(), rows: this.rows };
  }

  /** Drops every row packed after `m` (from mark()). */
  truncate(m: RowMark): void {
    this.w.truncate(m.at);
    this.rows = m.rows;
    // The next row packs its directory whatever the last one kept was.
    this.lastDir = undefined;
  }

  /** The rows packed so far; the packer starts empty again. */
  take(): Packed {
    const p = this.w.done();
    this.w = new PackWriter(8192);
    this.rows = 0;
    return p;
  }
}

/** Calls `each` with the values of every packed row, in UPSERT's column order. */
export function unpackRows(p: Packed, each: (row: RowValue[]) => void): void {
  const r = new PackReader(p);
  // Perf: one array reused for every row (each() copies what it keeps).
  const row: RowValue[] = new Array<RowValue>(PUT_COLUMNS).fill(null);
  while (r.more()) {
    const present = r.num();
    if (!(present & SAME_DIR)) row[0] = r.str();
    row[1] = r.str();
    row[9] = present & TARGET ? r.str() : null;
    row[10] = present & DIGEST ? r.str() : null;
    row[11] = present & XATTRS ? r.str() : null;
    row[13] = present & MESSAGE ? r.str() : null;
    row[2] = r.num();
    row[3] = r.num();
    row[4] = r.num();
    row[5] = r.num();
    row[6] = r.num();
    row[7] = r.num();
    row[8] = r.num();
    row[12] = r.num();
    each(row);
  }
  r.end();
}
