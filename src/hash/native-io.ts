/**
 * The pool's optional addon (src/native/fsio.c): a small file read (open, read, fstat, close),
 * or created with its metadata and placed (open O_EXCL with its mode, write, fchown,
 * futimens, fstat, an fchmod only where the umask or fchown changed the mode, close,
 * rename), in one call each, and a whole read or write task of the pool in one call; a
 * path's times set to the nanosecond (Node's fs takes seconds in a double, which Node 20's
 * libuv truncates to whole microseconds: a copy could get a time more than a microsecond
 * before its source's); and the XXH64 of bytes where they lie (digest.ts).
 *
 * Perf: those are thirteen calls into Node's fs per small file a local peer sends, each with
 * its own exception path and a Stats object per stat; the workers of a small-file push spend
 * their time in them (bench/RESULTS.md). The placement is also atomic here:
 * renameat2(RENAME_NOREPLACE) fails when anything is at the target, where Node's fs can only
 * lstat the target and then rename. Where the addon is not built or does not load (no
 * compiler, the native-free bundle, ASYNC_NO_ADDONS set), worker.ts makes the same calls
 * through Node's fs, with the same results.
 *
 * A failed call throws an Error shaped as Node's fs throws it (code, errno, syscall, path,
 * and the message `CODE: description, syscall 'path'`), so callers report it the same way.
 */
import { getSystemErrorMap } from 'node:util';
import type { Packed, StatNumbers } from '../core/packing.js';
import { loadAddon } from '../native/load.js';

/**
 * Why a file of a batch failed: a system call (named as Node's fs names it), or, in a read,
 * the file was no longer what the scan saw (its stat after the read, and the bytes read).
 */
export type BatchFailure =
  | { readonly errno: number; readonly syscall: string; readonly after?: undefined }
  | {
      readonly errno: 0;
      readonly syscall?: undefined;
      readonly after: {
        readonly size: number;
        readonly mtimeMs: number;
        readonly ino: number;
        readonly got: number;
      };
    };

/** A failed file's outcome (task-codec.ts, readFailure/writeFailure) for its place in a batch. */
export type OnFailure = (index: number, why: BatchFailure) => [number, string];

export interface NativeIo {
  /**
   * Reads up to `length` bytes of `path` from `offset` into `data` at `at`; returns the
   * bytes read (fewer at the end of the file) and the file's stat after the read.
   */
  readFile(
    path: string,
    data: Uint8Array,
    at: number,
    length: number,
    offset: number,
  ): { got: number; size: number; mtimeMs: number; ino: number };
  /**
   * Creates `path` (it must not exist) with the bytes, mode, owner (-1: the writer's; no
   * privilege: the writer's) and times (undefined: now); then, with `placeAt`, renames it
   * there unless anything is there. Returns the file's stat and whether it was placed.
   */
  createFile(
    path: string,
    bytes: Uint8Array,
    meta: {
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
      readonly atimeMs?: number;
      readonly mtimeMs?: number;
    },
    placeAt: string | undefined,
  ): { stat: StatNumbers; placed: boolean };
  /**
   * A read task (packReadSegments) read whole: each segment read as readFile reads it, into
   * data back to back, checked against what the scan saw and its pieces hashed; its
   * outcomes packed as packReadOutcomes packs them, a failed file's from `failure`. `end`:
   * where the bytes read end in data. Perf: one call per batch, with no object made per
   * file (bench/RESULTS.md).
   */
  readBatch(task: Packed, data: Uint8Array, failure: OnFailure): { outcomes: Packed; end: number };
  /**
   * A write task (packWriteItems) done whole, as worker.ts's write() does it file by file:
   * its outcomes packed as packWriteOutcomes packs them, a failed file's from `failure`.
   */
  writeBatch(task: Packed, data: Uint8Array, trusted: boolean, failure: OnFailure): Packed;
  /**
   * Sets a path's access and modification times (ms since the epoch) to the nanosecond the
   * numbers hold; `nofollow`: a symbolic link's own.
   */
  setTimes(path: string, atimeMs: number, mtimeMs: number, nofollow: boolean): void;
  /**
   * XXH64 (seed 0) of the bytes: xxhash-wasm's h64 of them, without their copy into wasm
   * memory and about twice as fast (digest.ts uses it where it loads).
   */
  xxh64(data: Uint8Array): bigint;
}

interface Addon {
  readFile(
    path: string,
    data: Uint8Array,
    at: number,
    length: number,
    offset: number,
    out: Float64Array,
  ): number;
  createFile(
    path: string,
    data: Uint8Array,
    at: number,
    length: number,
    meta: Float64Array,
    placeAt: string | undefined,
    out: Float64Array,
  ): number;
  readBatch(
    text: string,
    nums: Float64Array,
    data: Uint8Array,
    cursor: Float64Array,
    out: Float64Array,
  ): string;
  writeBatch(
    text: string,
    nums: Float64Array,
    data: Uint8Array,
    trusted: boolean,
    cursor: Float64Array,
    out: Float64Array,
  ): string;
  setTimes(path: string, atimeMs: number, mtimeMs: number, nofollow: boolean): number;
  xxh64(data: Uint8Array, at: number, length: number): bigint;
}

/** The system call of each failed step, as fsio.c numbers them (STEP_*). */
const STEPS = ['', 'open', 'read', 'write', 'fchmod', 'fchown', 'futime', 'fstat'];

/** A batch's cursor, as fsio.c lays it out (CUR_*). */
const CUR_DONE = 0;
const CUR_DATA = 3;
const CUR_OUT = 4;
const CUR_FAILED = 5;
const CUR_ERRNO = 6;
const CUR_STEP = 7;
const CUR_AFTER = 8;
const CURSOR = 12;

/** The most numbers an item's outcome takes: a read's 4, a write's 7 (a flag, a stat). */
const READ_OUTCOME_NUMS = 4;
const WRITE_OUTCOME_NUMS = 7;

/**
 * Runs a batch call until every file is done: after a failed file, its outcome is added
 * here and the call goes on after it.
 */
function wholeBatch(
  task: Packed,
  perItem: number,
  call: (cursor: Float64Array, out: Float64Array) => string,
  failure: OnFailure,
): { outcomes: Packed; cursor: Float64Array } {
  const out = new Float64Array(1 + perItem * (task.nums[0] ?? 0));
  const cursor = new Float64Array(CURSOR);
  let text = call(cursor, out);
  while (cursor[CUR_FAILED] === 1) {
    const errno = cursor[CUR_ERRNO]!;
    const why: BatchFailure =
      errno !== 0
        ? { errno, syscall: STEPS[cursor[CUR_STEP]!] ?? 'open' }
        : {
            errno: 0,
            after: {
              size: cursor[CUR_AFTER]!,
              mtimeMs: cursor[CUR_AFTER + 1]!,
              ino: cursor[CUR_AFTER + 2]!,
              got: cursor[CUR_AFTER + 3]!,
            },
          };
    const [num, str] = failure(cursor[CUR_DONE]! - 1, why);
    out[cursor[CUR_OUT]!] = num;
    cursor[CUR_OUT]! += 1;
    text += str + call(cursor, out);
  }
  return { outcomes: { text, nums: out.subarray(0, cursor[CUR_OUT]) }, cursor };
}

let loaded: NativeIo | null | undefined;

/** The addon's calls, or undefined when it is not built or does not load here. */
export function nativeIo(): NativeIo | undefined {
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

/**
 * An Error as Node's fs throws it for a failed system call: with the path for a call that
 * takes one (open, utime, lutime), without it for a call on a descriptor.
 */
export function systemError(errno: number, syscall: string, path: string): Error {
  const [code, description] = getSystemErrorMap().get(errno) ?? ['EUNKNOWN', 'unknown error'];
  return syscall === 'open' || syscall === 'utime' || syscall === 'lutime'
    ? Object.assign(new Error(`${code}: ${description}, ${syscall} '${path}'`), {
        errno,
        code,
        syscall,
        path,
      })
    : Object.assign(new Error(`${code}: ${description}, ${syscall}`), { errno, code, syscall });
}

function load(): NativeIo | null {
  const addon = loadAddon<Addon>('fsio', "using Node's fs");
  if (!addon) return null;
  // One of each per thread: every call fills them and they are read before the next.
  const out = new Float64Array(7);
  const meta = new Float64Array(5);
  return {
    readFile(path, data, at, length, offset) {
      const got = addon.readFile(path, data, at, length, offset, out);
      if (got < 0) throw systemError(got, STEPS[out[0]!] ?? 'read', path);
      return { got, size: out[0]!, mtimeMs: out[1]!, ino: out[2]! };
    },
    createFile(path, bytes, m, placeAt) {
      meta[0] = m.mode;
      meta[1] = m.uid;
      meta[2] = m.gid;
      meta[3] = m.atimeMs ?? NaN;
      meta[4] = m.mtimeMs ?? NaN;
      const r = addon.createFile(path, bytes, 0, bytes.byteLength, meta, placeAt, out);
      if (r < 0) throw systemError(r, STEPS[out[0]!] ?? 'open', path);
      return {
        stat: {
          size: out[0]!,
          mtimeMs: out[1]!,
          mode: out[2]!,
          ino: out[3]!,
          uid: out[4]!,
          gid: out[5]!,
        },
        placed: out[6] === 1,
      };
    },
    readBatch(task, data, failure) {
      const { outcomes, cursor } = wholeBatch(
        task,
        READ_OUTCOME_NUMS,
        (cur, o) => addon.readBatch(task.text, task.nums, data, cur, o),
        failure,
      );
      return { outcomes, end: cursor[CUR_DATA]! };
    },
    writeBatch(task, data, trusted, failure) {
      return wholeBatch(
        task,
        WRITE_OUTCOME_NUMS,
        (cur, o) => addon.writeBatch(task.text, task.nums, data, trusted, cur, o),
        failure,
      ).outcomes;
    },
    setTimes(path, atimeMs, mtimeMs, nofollow) {
      const r = addon.setTimes(path, atimeMs, mtimeMs, nofollow);
      if (r < 0) throw systemError(r, nofollow ? 'lutime' : 'utime', path);
    },
    xxh64(data) {
      return addon.xxh64(data, 0, data.byteLength);
    },
  };
}
