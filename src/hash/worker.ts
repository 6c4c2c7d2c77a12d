/**
 * The piscina worker: everything that reads or writes file contents and hashes them runs
 * here, off the main thread, so a sync uses every core (the main thread walks the tree,
 * diffs and talks to the peer).
 *
 * Tasks work on batches (many small files, or pieces of big ones) to keep the per-message
 * cost of the pool small. Buffers travel between threads by transfer, never by copy.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import type { Stats } from 'node:fs';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { CHUNK_SIZE, combineDigests, loadHasher, pieceDigest, pieceHex } from './digest.js';
import type { StatNumbers } from '../core/packing.js';
import { nativeIo, systemError } from './native-io.js';
import type { NativeIo } from './native-io.js';
import type { Packed } from './task-codec.js';
import {
  packReadOutcomes,
  packWriteOutcomes,
  readFailure,
  readTaskBytes,
  unpackReadSegments,
  unpackWriteItems,
  writeFailure,
} from './task-codec.js';

/**
 * The size of a read task's buffer (at least): a full transfer batch (transfer/batches.ts
 * cuts batches of at most this many bytes), so a buffer a write hands back fits the next
 * read.
 */
export const READ_BUFFER_BYTES = 2 * CHUNK_SIZE;

/**
 * Below this many bytes a read batch gets a buffer of its own size even where buffers go
 * round (read(), `reuse`). Perf: a buffer the main thread receives and then drops counts
 * as V8 external memory until a full garbage collection. The ~2 MB batches of 1,024 small
 * files got buffers of their own size (only batches of 4 MiB or more got full ones), which
 * a local peer's write handed back and the pool dropped: a full collection every ~35
 * batches, 26-28 in a 1M-file push, each ~250 ms of the main thread's time and more of
 * V8's helper threads. Buffers of the full size go round (pool.ts, spare).
 */
export const SMALL_READ_BYTES = 64 * 1024;

/**
 * How a file is opened to be read (fsio.c's readFile opens the same way). O_NONBLOCK: a
 * FIFO put at a file's path since the scan would otherwise hold the thread until a writer
 * came; opened at once, it fails its stat check (or its read) as any file that changed.
 */
const SOURCE_OPEN = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * The most bytes one write(2) hands the kernel (fsio.c's WRITE_SLICE is the same). Perf: a
 * page-cache write of a whole 4-8 MiB piece in one call copied 3-15 times slower than the
 * same bytes in 256 KiB calls (Linux 6.18, ext4, a full page cache: the kernel allocates
 * folios as large as the write and spends the time in copy_folio_from_iter_atomic); in a
 * 5 GB push, big files' pieces took 4 s of CPU there. cp's copy_file_range and rsync write
 * in small calls too. bench/RESULTS.md has the figures.
 */
export const WRITE_SLICE_BYTES = 256 * 1024;

/** What the reader expects the file to be; any difference means it changed under us. */
export interface Expect {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

export interface ReadSegment {
  readonly abs: string;
  /** Byte offset, a multiple of CHUNK_SIZE. */
  readonly offset: number;
  readonly length: number;
  readonly expect: Expect;
}

export type ReadOutcome =
  | {
      readonly ok: true;
      readonly start: number;
      readonly length: number;
      readonly pieces: string[];
    }
  | { readonly ok: false; readonly message: string; readonly vanished: boolean };

export interface ReadReply {
  /** All segments' data, back to back; each outcome says where its bytes start. */
  readonly data: Uint8Array;
  readonly outcomes: ReadOutcome[];
}

/** A ReadReply as the read task answers it (outcomes packed: task-codec.ts). */
export interface PackedReadReply {
  readonly data: Uint8Array;
  readonly outcomes: Packed;
}

/** The write task's answer: the outcomes packed, and the task's buffer handed back for reuse. */
export interface PackedWriteReply {
  readonly outcomes: Packed;
  readonly buf?: ArrayBuffer;
}

export interface WriteItem {
  /** The file in the transfer cache. */
  readonly abs: string;
  readonly offset: number;
  /** Where this item's bytes lie in the task's data buffer. */
  readonly start: number;
  readonly length: number;
  /** Expected piece digests (hex) of the bytes, one per CHUNK_SIZE piece. */
  readonly pieces: readonly string[];
  /**
   * Set for a file sent whole in one item: the worker creates the cache file itself
   * (O_EXCL), writes it and sets its metadata on the open descriptor, and answers with
   * its stat. Perf: this takes open, chmod, utimes, close and a stat per file off the
   * main thread, which otherwise bounds a small-file push.
   */
  readonly create?: CreateMeta;
  /**
   * With `create`: the final path, where the receiver expects nothing to be. The worker
   * renames the verified, complete file there unless something appeared meanwhile (then
   * it stays in the cache and the receiver decides). Perf: takes the rename and the
   * target's lstat off the main thread too.
   */
  readonly placeAt?: string;
}

export interface CreateMeta {
  readonly mode: number;
  /** Set the modification time (ms since the epoch); undefined keeps the time of writing. */
  readonly mtimeMs?: number;
  /** Set the access time (--preserve-access-time); undefined: the time of writing. */
  readonly atimeMs?: number;
  /** -1 keeps the writer's. */
  readonly uid: number;
  readonly gid: number;
}

/** What a created file looks like once written (rename keeps all of it). */
export type StagedStat = StatNumbers;

/** Digests of some CHUNK_SIZE pieces of one file (resume: no data leaves the worker). */
export interface PieceTask {
  readonly abs: string;
  readonly indices: readonly number[];
  /** When given, the file must still be this one (the sender's file); else any size. */
  readonly expect?: Expect;
}

export type PieceOutcome =
  | { readonly ok: true; readonly digests: string[] }
  | { readonly ok: false; readonly message: string; readonly vanished: boolean };

export type WriteOutcome =
  | {
      readonly ok: true;
      readonly staged?: StagedStat;
      readonly placed?: boolean;
      /** With `create`: the whole file's digest (combineDigests of its one piece). */
      readonly digest?: string;
    }
  | { readonly ok: false; readonly message: string; readonly mismatch: boolean };

export type HashOutcome =
  | { readonly ok: true; readonly digest: string }
  | { readonly ok: false; readonly message: string; readonly vanished: boolean };

function changed(st: Expect, e: Expect): string | undefined {
  if (st.ino !== e.ino) return 'file was replaced while reading';
  if (st.size !== e.size) return `file changed size while reading (${e.size} -> ${st.size} bytes)`;
  if (st.mtimeMs !== e.mtimeMs) return 'file was modified while reading';
  return undefined;
}

function ioMessage(e: unknown): { message: string; vanished: boolean } {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT')
    return { message: 'file vanished before it could be read (ENOENT)', vanished: true };
  if (code === 'EACCES' || code === 'EPERM')
    return { message: `cannot read file: permission denied (${code})`, vanished: false };
  if (code === 'ELOOP')
    return { message: 'file was replaced by a symbolic link while reading', vanished: false };
  return { message: e instanceof Error ? e.message : String(e), vanished: false };
}

class Transfer<T extends object> {
  constructor(
    private readonly value: T,
    private readonly buffers: ArrayBuffer[],
  ) {}
  get [transferableSymbol](): ArrayBuffer[] {
    return this.buffers;
  }
  get [valueSymbol](): T {
    return this.value;
  }
}

/**
 * Reads segments and returns their bytes and piece digests, checking the files did not
 * change. The bytes go into `buf` when it is given and large enough (a buffer an earlier
 * write handed back), else into a new buffer. `reuse`: the pool gets its read buffers back
 * (a local peer's transfer), so a new buffer is made of the full size, to go round.
 */
export async function read(task: {
  packed: Packed;
  buf?: ArrayBuffer;
  reuse?: boolean;
}): Promise<unknown> {
  const total = readTaskBytes(task.packed);
  // Perf: not zero-filled (a memset of every byte sent): only the bytes read, [0, end), are
  // handed on. Its own ArrayBuffer (not Buffer's pool), so it can be transferred.
  // Where buffers go round, a batch of SMALL_READ_BYTES or more gets one of the full size,
  // which fits any later batch; otherwise (a wire's, or a few changed files) just what it
  // needs.
  const data: Uint8Array =
    task.buf !== undefined && task.buf.byteLength >= total
      ? new Uint8Array(task.buf, 0, total)
      : task.reuse === true && total >= SMALL_READ_BYTES
        ? Buffer.allocUnsafeSlow(Math.max(total, READ_BUFFER_BYTES)).subarray(0, total)
        : Buffer.allocUnsafeSlow(total);
  const io = nativeIo();
  const { outcomes, end } = io
    ? readBatchNative(io, task.packed, data)
    : await readEach(task.packed, data);
  const reply: PackedReadReply = {
    data: end === total ? data : data.subarray(0, end),
    outcomes,
  };
  return move(
    new Transfer(reply, [data.buffer as ArrayBuffer, outcomes.nums.buffer as ArrayBuffer]),
  );
}

/** Why a segment failed, from its stat after the read: changed, or shorter than asked. */
function changedWhy(after: Expect, seg: ReadSegment, got: number): string | undefined {
  return changed(after, seg.expect) ?? (got < seg.length ? 'file shrank while reading' : undefined);
}

/**
 * The read task in one call into the addon (Perf: no object per file; a failed file's
 * outcome is made here, from the segments unpacked then).
 */
function readBatchNative(
  io: NativeIo,
  packed: Packed,
  data: Uint8Array,
): { outcomes: Packed; end: number } {
  let segments: ReadSegment[] | undefined;
  return io.readBatch(packed, data, (i, why) => {
    segments ??= unpackReadSegments(packed);
    const seg = segments[i]!;
    const { message, vanished } = why.after
      ? { message: changedWhy(why.after, seg, why.after.got) ?? 'file changed', vanished: false }
      : ioMessage(systemError(why.errno, why.syscall, seg.abs));
    return readFailure(message, vanished);
  });
}

/** The read task file by file through Node's fs (where the addon does not load). */
async function readEach(
  packed: Packed,
  data: Uint8Array,
): Promise<{ outcomes: Packed; end: number }> {
  const h = await loadHasher();
  const outcomes: ReadOutcome[] = [];
  let at = 0;
  for (const seg of unpackReadSegments(packed)) {
    try {
      // One stat, after the read: a change before the open or during the read shows there
      // as well (Perf: a stat before it too cost one more syscall per small file sent).
      const { got, after } = readWithFs(seg, data, at);
      const why = changedWhy(after, seg, got);
      if (why) throw Object.assign(new Error(why), { code: 'ECHANGED' });
      const pieces: string[] = [];
      for (let p = 0; p < seg.length; p += CHUNK_SIZE) {
        pieces.push(
          pieceHex(
            pieceDigest(h, data.subarray(at + p, at + Math.min(seg.length, p + CHUNK_SIZE))),
          ),
        );
      }
      outcomes.push({ ok: true, start: at, length: seg.length, pieces });
      at += seg.length;
    } catch (e) {
      outcomes.push({ ok: false, ...ioMessage(e) });
    }
  }
  return { outcomes: packReadOutcomes(outcomes), end: at };
}

interface SegmentRead {
  readonly got: number;
  readonly after: Expect;
}

/** A segment's bytes read into data at `at` with Node's fs, and the file's stat after. */
export function readWithFs(seg: ReadSegment, data: Uint8Array, at: number): SegmentRead {
  const fd = openSync(seg.abs, SOURCE_OPEN);
  try {
    let got = 0;
    while (got < seg.length) {
      const n = readSync(fd, data, at + got, seg.length - got, seg.offset + got);
      if (n === 0) break;
      got += n;
    }
    return { got, after: fstatSync(fd) };
  } finally {
    closeSync(fd);
  }
}

/**
 * Verifies each item's pieces against the sender's digests and writes them at their
 * offset. `trusted`: the bytes are a read task's of this process, hashed there into the
 * very digests that come with them, so they are not hashed again (pool.ts, hashedHere);
 * such a task's buffer is handed back for the pool's next read.
 */
export async function write(task: {
  data: Uint8Array;
  packed: Packed;
  trusted?: boolean;
}): Promise<unknown> {
  const io = nativeIo();
  const trusted = task.trusted === true;
  const packed = io
    ? writeBatchNative(io, task.packed, task.data, trusted)
    : await writeEach(task.packed, task.data, trusted);
  // Only a buffer the pool reuses goes back (a wire's dies here, as it always did: its
  // memory is then this thread's to free, not the main thread's, which reads the wire).
  const buf = trusted && task.data.byteLength > 0 ? (task.data.buffer as ArrayBuffer) : undefined;
  const reply: PackedWriteReply = buf ? { outcomes: packed, buf } : { outcomes: packed };
  return move(
    new Transfer(
      reply,
      buf ? [packed.nums.buffer as ArrayBuffer, buf] : [packed.nums.buffer as ArrayBuffer],
    ),
  );
}

/** The write task in one call into the addon (a failed file's outcome made here). */
function writeBatchNative(
  io: NativeIo,
  packed: Packed,
  data: Uint8Array,
  trusted: boolean,
): Packed {
  let items: WriteItem[] | undefined;
  return io.writeBatch(packed, data, trusted, (i, why) => {
    items ??= unpackWriteItems(packed);
    return writeFailure(
      ioMessage(systemError(why.errno, why.syscall ?? 'open', items[i]!.abs)).message,
    );
  });
}

/** The write task file by file through Node's fs (where the addon does not load). */
async function writeEach(packed: Packed, data: Uint8Array, trusted: boolean): Promise<Packed> {
  const h = await loadHasher();
  const out: WriteOutcome[] = [];
  for (const it of unpackWriteItems(packed)) {
    const bytes = data.subarray(it.start, it.start + it.length);
    let bad = false;
    const raw: bigint[] = [];
    for (let p = 0, i = 0; p < it.length; p += CHUNK_SIZE, i++) {
      if (trusted && it.pieces[i] !== undefined) {
        raw.push(BigInt(`0x${it.pieces[i]}`));
        continue;
      }
      raw.push(pieceDigest(h, bytes.subarray(p, Math.min(it.length, p + CHUNK_SIZE))));
      if (pieceHex(raw[i]!) !== it.pieces[i]) bad = true;
    }
    if (bad || Math.ceil(it.length / CHUNK_SIZE) !== it.pieces.length) {
      out.push({ ok: false, message: 'data did not match the sender digest', mismatch: true });
      continue;
    }
    try {
      const c = it.create;
      if (!c) {
        // The file exists already: the receiver creates it before the first piece comes,
        // since pieces of one file may be written by several workers.
        writePiece(it, bytes);
        out.push({ ok: true });
        continue;
      }
      const made = createWithFs(it.abs, bytes, c, it.placeAt);
      out.push({
        ok: true,
        staged: made.stat,
        placed: made.placed,
        // Perf: the file digest here, not on the main thread (which bounds small files).
        digest: combineDigests(h, raw),
      });
    } catch (e) {
      out.push({ ok: false, message: ioMessage(e).message, mismatch: false });
    }
  }
  return packWriteOutcomes(out);
}

/** A piece of a file that exists, written at its offset. */
function writePiece(it: WriteItem, bytes: Uint8Array): void {
  const fd = openSync(it.abs, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    let put = 0;
    while (put < it.length)
      put += writeSync(
        fd,
        bytes,
        put,
        Math.min(WRITE_SLICE_BYTES, it.length - put),
        it.offset + put,
      );
  } finally {
    closeSync(fd);
  }
}

/**
 * A file sent whole, created (O_EXCL) with its bytes and metadata through Node's fs, and
 * placed at `placeAt` when nothing is there: what NativeIo.createFile does in one call.
 */
export function createWithFs(
  abs: string,
  bytes: Uint8Array,
  c: CreateMeta,
  placeAt: string | undefined,
): { stat: StagedStat; placed: boolean } {
  // Created with its mode (the transfer cache is private); an fchmod only where the umask
  // or fchown changed it, as fsio.c's createFile does.
  const fd = openSync(
    abs,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    c.mode,
  );
  let st: Stats;
  try {
    let put = 0;
    while (put < bytes.length)
      put += writeSync(fd, bytes, put, Math.min(WRITE_SLICE_BYTES, bytes.length - put), put);
    if (c.uid !== -1 || c.gid !== -1) {
      try {
        fchownSync(fd, c.uid, c.gid);
      } catch (e) {
        // Without the privilege a file still syncs; its owner is the receiving user's.
        if ((e as { code?: string }).code !== 'EPERM') throw e;
      }
    }
    if (c.mtimeMs !== undefined || c.atimeMs !== undefined) {
      const now = Date.now();
      futimesSync(fd, (c.atimeMs ?? now) / 1000, (c.mtimeMs ?? now) / 1000);
    }
    st = fstatSync(fd);
    if ((st.mode & 0o7777) !== (c.mode & 0o7777)) {
      fchmodSync(fd, c.mode & 0o7777);
      st = fstatSync(fd);
    }
  } finally {
    closeSync(fd);
  }
  const stat: StagedStat = {
    size: st.size,
    mtimeMs: st.mtimeMs,
    mode: st.mode & 0o7777,
    ino: st.ino,
    uid: st.uid,
    gid: st.gid,
  };
  return { stat, placed: placeAt !== undefined && placeFile(abs, placeAt) };
}

/**
 * Renames a staged file to a target that must not exist; false (the file stays staged)
 * when something is there now or the rename fails: the receiver then re-checks and places
 * it itself, and reports what it finds. Node's fs has no rename that refuses an existing
 * target, so the check and the rename are two calls, as close together as they are on the
 * receiver's own path (NativeIo.createFile does both in one renameat2).
 */
function placeFile(staged: string, target: string): boolean {
  try {
    if (lstatSync(target, { throwIfNoEntry: false }) !== undefined) return false;
    renameSync(staged, target);
    return true;
  } catch {
    return false;
  }
}

/** Digest of a whole file as it is now, checking it did not change while being read. */
export async function hash(task: {
  files: { abs: string; expect: Expect }[];
}): Promise<HashOutcome[]> {
  const h = await loadHasher();
  const buf = new Uint8Array(CHUNK_SIZE);
  const out: HashOutcome[] = [];
  for (const f of task.files) {
    let fd = -1;
    try {
      fd = openSync(f.abs, SOURCE_OPEN);
      const before = changed(fstatSync(fd), f.expect);
      if (before) throw new Error(before);
      const pieces: bigint[] = [];
      let pos = 0;
      for (;;) {
        let got = 0;
        while (got < CHUNK_SIZE) {
          const n = readSync(fd, buf, got, CHUNK_SIZE - got, pos + got);
          if (n === 0) break;
          got += n;
        }
        if (got === 0) break;
        pieces.push(pieceDigest(h, buf.subarray(0, got)));
        pos += got;
        if (got < CHUNK_SIZE) break;
      }
      const after =
        changed(fstatSync(fd), f.expect) ??
        (pos !== f.expect.size ? 'file changed size while reading' : undefined);
      if (after) throw new Error(after);
      out.push({ ok: true, digest: combineDigests(h, pieces) });
    } catch (e) {
      out.push({ ok: false, ...ioMessage(e) });
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }
  return out;
}

/**
 * Digests of the asked pieces of each file. A piece beyond the end of the file (a partial
 * copy whose tail was never written) gets the digest of what is there, which cannot match.
 */
export async function pieces(task: { files: PieceTask[] }): Promise<PieceOutcome[]> {
  const h = await loadHasher();
  const buf = new Uint8Array(CHUNK_SIZE);
  const out: PieceOutcome[] = [];
  for (const f of task.files) {
    let fd = -1;
    try {
      fd = openSync(f.abs, SOURCE_OPEN);
      const st = fstatSync(fd);
      const before = f.expect ? changed(st, f.expect) : undefined;
      if (before) throw new Error(before);
      const size = f.expect?.size ?? st.size;
      const digests: string[] = [];
      for (const i of f.indices) {
        const offset = i * CHUNK_SIZE;
        const want = Math.max(0, Math.min(CHUNK_SIZE, size - offset));
        let got = 0;
        while (got < want) {
          const n = readSync(fd, buf, got, want - got, offset + got);
          if (n === 0) break;
          got += n;
        }
        digests.push(pieceHex(pieceDigest(h, buf.subarray(0, got))));
      }
      const after = f.expect ? changed(fstatSync(fd), f.expect) : undefined;
      if (after) throw new Error(after);
      out.push({ ok: true, digests });
    } catch (e) {
      out.push({ ok: false, ...ioMessage(e) });
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }
  return out;
}
