/**
 * The pool's read and write tasks and their answers in packed form: the strings of a batch
 * joined into one string, its numbers in one Float64Array (transferred). Perf: piscina
 * posts a task by structured clone, which for a batch of small files cost ~7 us per file
 * on the main thread (300k-file push: 2.2 s of its ~16 s), about as much again in the
 * worker, and the objects it makes are garbage right after. Packed, the clone copies one
 * string and moves one buffer, and only the thread that uses a batch makes its objects.
 *
 * Each pack* has its unpack*; the pairs are the only place in TypeScript that knows a
 * layout, and a packed batch that does not add up is an error, never a wrong file
 * (core/packing.ts). The pool's addon (src/native/fsio.c, readBatch and writeBatch) reads
 * the tasks and writes the outcomes in the same layouts, all but a failed file's outcome,
 * which it leaves to readFailure/writeFailure here (test/hash/ holds both ways to the same
 * answers).
 */
import type { Packed } from '../core/packing.js';
import { PackReader, PackWriter } from '../core/packing.js';
import type { ReadOutcome, ReadSegment, StagedStat, WriteItem, WriteOutcome } from './worker.js';

export type { Packed } from '../core/packing.js';

/**
 * Strings in a packed batch cannot hold NUL; a message never should, but one built from
 * foreign text is cleaned rather than refused.
 */
const clean = (message: string): string => message.replaceAll('\0', '\uFFFD');

export function packReadSegments(segments: readonly ReadSegment[]): Packed {
  const w = new PackWriter();
  w.num(segments.length);
  for (const s of segments) {
    w.str(s.abs);
    w.num(s.offset);
    w.num(s.length);
    w.num(s.expect.size);
    w.num(s.expect.mtimeMs);
    w.num(s.expect.ino);
  }
  return w.done();
}

/** The bytes a packed read task reads: its segments' lengths added up. */
export function readTaskBytes(p: Packed): number {
  let total = 0;
  // Each segment's numbers: offset, length, size, mtimeMs, ino (after the count).
  for (let i = 2; i < p.nums.length; i += 5) total += p.nums[i]!;
  return total;
}

export function unpackReadSegments(p: Packed): ReadSegment[] {
  const r = new PackReader(p);
  const out = new Array<ReadSegment>(r.num());
  for (let i = 0; i < out.length; i++) {
    const abs = r.str();
    const offset = r.num();
    const length = r.num();
    out[i] = { abs, offset, length, expect: { size: r.num(), mtimeMs: r.num(), ino: r.num() } };
  }
  r.end();
  return out;
}

/** A failed read outcome's tags (an outcome read whole is 1). */
const READ_FAILED = 0;
const READ_VANISHED = 2;

/**
 * A failed read's outcome as its number and its text (a separator, then the message): how
 * packReadOutcomes writes it, and how the addon's readBatch has JavaScript add it.
 */
export function readFailure(message: string, vanished: boolean): [number, string] {
  return [vanished ? READ_VANISHED : READ_FAILED, `\0${clean(message)}`];
}

export function packReadOutcomes(outcomes: readonly ReadOutcome[]): Packed {
  const w = new PackWriter();
  w.num(outcomes.length);
  for (const o of outcomes) {
    if (o.ok) {
      w.num(1);
      w.num(o.start);
      w.num(o.length);
      w.num(o.pieces.length);
      for (const d of o.pieces) w.str(d);
    } else {
      w.num(o.vanished ? READ_VANISHED : READ_FAILED);
      w.str(clean(o.message));
    }
  }
  return w.done();
}

export function unpackReadOutcomes(p: Packed): ReadOutcome[] {
  const r = new PackReader(p);
  const out = new Array<ReadOutcome>(r.num());
  for (let i = 0; i < out.length; i++) {
    const tag = r.num();
    if (tag === 1) {
      const start = r.num();
      const length = r.num();
      const pieces = new Array<string>(r.num());
      for (let k = 0; k < pieces.length; k++) pieces[k] = r.str();
      out[i] = { ok: true, start, length, pieces };
    } else {
      out[i] = { ok: false, message: r.str(), vanished: tag === READ_VANISHED };
    }
  }
  r.end();
  return out;
}

const CREATE = 2;
const PLACE_AT = 4;
const MTIME = 8;
const ATIME = 16;

export function packWriteItems(items: readonly WriteItem[]): Packed {
  const w = new PackWriter();
  w.num(items.length);
  for (const it of items) {
    const c = it.create;
    w.num(
      (c ? CREATE : 0) |
        (it.placeAt !== undefined ? PLACE_AT : 0) |
        (c?.mtimeMs !== undefined ? MTIME : 0) |
        (c?.atimeMs !== undefined ? ATIME : 0),
    );
    w.str(it.abs);
    w.num(it.offset);
    w.num(it.start);
    w.num(it.length);
    w.num(it.pieces.length);
    for (const d of it.pieces) w.str(d);
    if (c) {
      w.num(c.mode);
      w.num(c.uid);
      w.num(c.gid);
      if (c.mtimeMs !== undefined) w.num(c.mtimeMs);
      if (c.atimeMs !== undefined) w.num(c.atimeMs);
    }
    if (it.placeAt !== undefined) w.str(it.placeAt);
  }
  return w.done();
}

export function unpackWriteItems(p: Packed): WriteItem[] {
  const r = new PackReader(p);
  const out = new Array<WriteItem>(r.num());
  for (let i = 0; i < out.length; i++) {
    const f = r.num();
    const abs = r.str();
    const offset = r.num();
    const start = r.num();
    const length = r.num();
    const pieces = new Array<string>(r.num());
    for (let k = 0; k < pieces.length; k++) pieces[k] = r.str();
    let it: WriteItem = { abs, offset, start, length, pieces };
    if (f & CREATE) {
      const mode = r.num();
      const uid = r.num();
      const gid = r.num();
      const mtime = f & MTIME ? { mtimeMs: r.num() } : {};
      const atime = f & ATIME ? { atimeMs: r.num() } : {};
      it = { ...it, create: { mode, ...mtime, ...atime, uid, gid } };
    }
    if (f & PLACE_AT) it = { ...it, placeAt: r.str() };
    out[i] = it;
  }
  r.end();
  return out;
}

const OK = 1;
const STAGED = 2;
const PLACED = 4;
const DIGEST = 8;
const MISMATCH = 16;

/**
 * A write that failed on a system call, as its outcome's number and text: how
 * packWriteOutcomes writes it, and how the addon's writeBatch has JavaScript add it.
 */
export function writeFailure(message: string): [number, string] {
  return [0, `\0${clean(message)}`];
}

export function packWriteOutcomes(outcomes: readonly WriteOutcome[]): Packed {
  const w = new PackWriter();
  w.num(outcomes.length);
  for (const o of outcomes) {
    if (!o.ok) {
      w.num(o.mismatch ? MISMATCH : 0);
      w.str(clean(o.message));
      continue;
    }
    const s = o.staged;
    w.num(
      OK |
        (s ? STAGED : 0) |
        (o.placed === true ? PLACED : 0) |
        (o.digest !== undefined ? DIGEST : 0),
    );
    if (s) w.stat(s);
    if (o.digest !== undefined) w.str(o.digest);
  }
  return w.done();
}

export function unpackWriteOutcomes(p: Packed): WriteOutcome[] {
  const r = new PackReader(p);
  const out = new Array<WriteOutcome>(r.num());
  for (let i = 0; i < out.length; i++) {
    const f = r.num();
    if (!(f & OK)) {
      out[i] = { ok: false, message: r.str(), mismatch: (f & MISMATCH) !== 0 };
      continue;
    }
    let staged: StagedStat | undefined;
    if (f & STAGED)
      staged = {
        size: r.num(),
        mtimeMs: r.num(),
        mode: r.num(),
        ino: r.num(),
        uid: r.num(),
        gid: r.num(),
      };
    const digest = f & DIGEST ? r.str() : undefined;
    out[i] = {
      ok: true,
      ...(staged ? { staged } : {}),
      ...(f & PLACED ? { placed: true } : {}),
      ...(digest !== undefined ? { digest } : {}),
    };
  }
  r.end();
  return out;
}
