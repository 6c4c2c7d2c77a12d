/**
 * Packed lists for handing many records between threads: the strings joined into one
 * string, the numbers in one Float64Array. Perf: a structured clone (postMessage) costs
 * about a microsecond per object on each side, and a batch of small files or a first scan
 * holds millions of them; packed, the clone copies one string and the array's buffer moves
 * (transfer it). The layouts (which strings and numbers, in which order) belong to the
 * codecs built on this: scan/change-codec.ts and hash/task-codec.ts.
 */

export interface Packed {
  readonly text: string;
  /** Transfer its buffer. */
  readonly nums: Float64Array;
}

/** The six numbers of a file's stat that the codecs carry (an Entry, a StagedStat). */
export interface StatNumbers {
  readonly size: number;
  readonly mtimeMs: number;
  readonly mode: number;
  readonly ino: number;
  readonly uid: number;
  readonly gid: number;
}

/** A position in a PackWriter (mark(), truncate()). */
export interface PackMark {
  readonly strings: number;
  readonly nums: number;
}

/** Appends strings and numbers; done() gives them packed. */
export class PackWriter {
  private readonly strings: string[] = [];
  private nums: Float64Array;
  private n = 0;

  /** `numbers`: a guess of how many numbers will come (the array grows as needed). */
  constructor(numbers = 64) {
    this.nums = new Float64Array(Math.max(16, numbers));
  }

  /** No NUL (the separator): no path, link target, digest or JSON text holds one. */
  str(s: string): void {
    if (s.includes('\0')) throw new Error('a packed string may not hold a NUL character');
    this.strings.push(s);
  }

  num(x: number): void {
    if (this.n === this.nums.length) {
      const bigger = new Float64Array(this.nums.length * 2);
      bigger.set(this.nums);
      this.nums = bigger;
    }
    this.nums[this.n++] = x;
  }

  /** A stat's six numbers, in the one order every codec reads them back: size, mtimeMs, mode, ino, uid, gid. */
  stat(s: StatNumbers): void {
    this.num(s.size);
    this.num(s.mtimeMs);
    this.num(s.mode);
    this.num(s.ino);
    this.num(s.uid);
    this.num(s.gid);
  }

  /** Where the writer stands, for truncate(). */
  mark(): PackMark {
    return { strings: this.strings.length, nums: this.n };
  }

  /** Drops everything appended after `m` (from mark()). */
  truncate(m: PackMark): void {
    this.strings.length = m.strings;
    this.n = m.nums;
  }

  done(): Packed {
    // A marker string first, so that a list whose first string is '' still joins to text
    // that splits back into the same strings.
    const text = this.strings.length === 0 ? '' : `\0${this.strings.join('\0')}`;
    return { text, nums: this.nums.slice(0, this.n) };
  }
}

/** Reads back what a PackWriter wrote, in the same order; end() checks nothing is left. */
export class PackReader {
  private readonly strings: string[];
  private s = 1;
  private n = 0;

  constructor(private readonly p: Packed) {
    this.strings = p.text.split('\0');
    if (this.strings[0] !== '') throw new Error('packed list: not made by PackWriter');
  }

  str(): string {
    const v = this.strings[this.s++];
    if (v === undefined) throw new Error('packed list: fewer strings than its layout says');
    return v;
  }

  num(): number {
    const v = this.p.nums[this.n++];
    if (v === undefined) throw new Error('packed list: fewer numbers than its layout says');
    return v;
  }

  /** True while numbers are left to read (a layout that starts each item with a number). */
  more(): boolean {
    return this.n < this.p.nums.length;
  }

  end(): void {
    if (this.s !== this.strings.length || this.n !== this.p.nums.length)
      throw new Error('packed list: more strings or numbers than its layout says');
  }
}
