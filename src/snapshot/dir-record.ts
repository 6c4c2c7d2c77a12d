/**
 * The compact per-directory snapshot record (schema/004-dir-records.sql): the children of
 * one directory as one string of names and one buffer of fixed-width attributes. The scan
 * compares lstat results with it in place, so an unchanged file costs no SQLite row and no
 * JavaScript object (Perf: reading one row and building one record object per file cost
 * more than the lstat itself; see bench/RESULTS.md).
 *
 * Encoding and reading only; when records are written and invalidated is store.ts's
 * business. No node:* imports: the scan thread and the store share it.
 */

/** Bytes per child in `attrs`. */
export const ATTR_WIDTH = 36;

/** Set in a child's flags when its entries row must be read to compare it. */
export const FLAG_READ_ROW = 1;

/** One child as the store encodes it. */
export interface RecordChild {
  readonly name: string;
  /** 0 never synced, 1 file, 2 dir, 3 symlink (the entries table's codes). */
  readonly kind: number;
  readonly size: number;
  readonly mtime: number;
  readonly mode: number;
  readonly ino: number;
  readonly uid: number;
  readonly gid: number;
  readonly flags: number;
}

export interface EncodedRecord {
  readonly names: string;
  readonly attrs: Uint8Array;
}

/** JavaScript's default string order (UTF-16 code units), which the scan sorts listings by. */
function byName(a: RecordChild, b: RecordChild): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Encodes children (in any order) as a record. Of two children of one name, the later in
 * `children` is kept (as a row keeps the last write).
 */
export function encodeDirRecord(children: RecordChild[]): EncodedRecord {
  // Stable: of equal names the later stays later. Perf: children already in order (rows
  // put in path order) are confirmed in one pass.
  children.sort(byName);
  const b = new DirRecordBuilder();
  children.forEach((c, i) => {
    if (children[i + 1]?.name !== c.name) b.add(c);
  });
  return b.finish();
}

/**
 * A record built one child at a time, in the record's own layout (36 bytes per child and
 * the name: about half the memory of an object per child). Children added out of name
 * order, or a name added twice, are sorted out by finish().
 */
export class DirRecordBuilder {
  private readonly names: string[] = [];
  private attrs = new Uint8Array(ATTR_WIDTH * 8);
  private view = new DataView(this.attrs.buffer);
  private inOrder = true;

  add(c: RecordChild): void {
    const n = this.names.length;
    if (n > 0 && !(this.names[n - 1]! < c.name)) this.inOrder = false;
    if ((n + 1) * ATTR_WIDTH > this.attrs.byteLength) {
      const grown = new Uint8Array(this.attrs.byteLength * 2);
      grown.set(this.attrs);
      this.attrs = grown;
      this.view = new DataView(grown.buffer);
    }
    const v = this.view;
    const o = n * ATTR_WIDTH;
    v.setFloat64(o, c.size, true);
    v.setFloat64(o + 8, c.mtime, true);
    v.setFloat64(o + 16, c.ino, true);
    v.setUint32(o + 24, c.uid >>> 0, true);
    v.setUint32(o + 28, c.gid >>> 0, true);
    v.setUint16(o + 32, c.mode & 0xffff, true);
    v.setUint8(o + 34, c.kind);
    v.setUint8(o + 35, c.flags);
    this.names.push(c.name);
  }

  finish(): EncodedRecord {
    if (!this.inOrder) return encodeDirRecord(this.names.map((name, i) => this.child(name, i)));
    return {
      names: this.names.join('/'),
      attrs: this.attrs.slice(0, this.names.length * ATTR_WIDTH),
    };
  }

  private child(name: string, i: number): RecordChild {
    const v = this.view;
    const o = i * ATTR_WIDTH;
    return {
      name,
      size: v.getFloat64(o, true),
      mtime: v.getFloat64(o + 8, true),
      ino: v.getFloat64(o + 16, true),
      uid: v.getUint32(o + 24, true),
      gid: v.getUint32(o + 28, true),
      mode: v.getUint16(o + 32, true),
      kind: v.getUint8(o + 34),
      flags: v.getUint8(o + 35),
    };
  }
}

/** Compares a name with the record's name at [pos, end) in UTF-16 code-unit order. */
function compareAt(names: string, pos: number, end: number, name: string): number {
  const n = Math.min(end - pos, name.length);
  for (let i = 0; i < n; i++) {
    const d = names.charCodeAt(pos + i) - name.charCodeAt(i);
    if (d !== 0) return d;
  }
  return end - pos - name.length;
}

/**
 * Walks a record alongside a directory listing sorted in the same order. seek() finds a
 * listed name; every record name passed over on the way is not in the listing, and is
 * handed to `gone` (the only place a name becomes a string of its own).
 */
export class DirRecordReader {
  readonly count: number;
  private readonly view: DataView;
  private index = 0;
  private pos = 0;

  constructor(
    private readonly names: string,
    attrs: Uint8Array,
  ) {
    this.count = attrs.byteLength / ATTR_WIDTH;
    this.view = new DataView(attrs.buffer, attrs.byteOffset, attrs.byteLength);
  }

  private end(): number {
    const e = this.names.indexOf('/', this.pos);
    return e < 0 ? this.names.length : e;
  }

  /**
   * The index of `name`, or -1. Names must be asked for in ascending order; the record
   * names before it that were not asked for go to `gone`.
   */
  seek(name: string, gone: (name: string) => void): number {
    while (this.index < this.count) {
      const end = this.end();
      const d = compareAt(this.names, this.pos, end, name);
      if (d > 0) return -1;
      const i = this.index++;
      const at = this.pos;
      this.pos = end + 1;
      if (d === 0) return i;
      gone(this.names.slice(at, end));
    }
    return -1;
  }

  /** Hands every record name not reached yet to `gone`. */
  rest(gone: (name: string) => void): void {
    while (this.index < this.count) {
      const end = this.end();
      gone(this.names.slice(this.pos, end));
      this.pos = end + 1;
      this.index++;
    }
  }

  /**
   * True when child `i` is synced, needs no row to compare, and has exactly these
   * attributes (the fields sameLocalState compares; size is 0 for all but files).
   */
  same(
    i: number,
    kind: number,
    size: number,
    mtime: number,
    mode: number,
    ino: number,
    uid: number,
    gid: number,
  ): boolean {
    const v = this.view;
    const o = i * ATTR_WIDTH;
    return (
      v.getUint8(o + 35) === 0 &&
      v.getUint8(o + 34) === kind &&
      v.getFloat64(o, true) === size &&
      v.getFloat64(o + 8, true) === mtime &&
      v.getFloat64(o + 16, true) === ino &&
      v.getUint32(o + 24, true) === uid >>> 0 &&
      v.getUint32(o + 28, true) === gid >>> 0 &&
      v.getUint16(o + 32, true) === (mode & 0xffff)
    );
  }
}
