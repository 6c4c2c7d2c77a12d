/**
 * The pool's addon (src/native/fsio.c) reads a small file, or creates one with its metadata
 * and places it, in one call (and a pool task's files in one call: pool.test.ts runs those
 * both ways). It must do what the worker's calls through Node's fs do
 * (readWithFs and createWithFs in src/hash/worker.ts, used where the addon is not built):
 * the same bytes, the same stat numbers (times rounded as fs.futimesSync rounds them), a
 * failure thrown as Node's fs throws it; and its placement never replaces what is at the
 * target.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CHUNK_SIZE, loadHasher } from '../../src/hash/digest.js';
import { nativeIo } from '../../src/hash/native-io.js';
import { packReadSegments, packWriteItems } from '../../src/hash/task-codec.js';
import { createWithFs, readWithFs, WRITE_SLICE_BYTES } from '../../src/hash/worker.js';
import type { CreateMeta } from '../../src/hash/worker.js';
import { tmp } from '../helpers.js';

const io = nativeIo();

test('npm install built the io addon and it loads', () => {
  assert.ok(io, 'src/native/build/Release/fsio.node: run npm install to build it');
});

test("xxh64 gives xxhash-wasm's h64 of the same bytes, wherever they lie in their buffer", async () => {
  const h = await loadHasher();
  const buf = new Uint8Array(CHUNK_SIZE + 64);
  for (let i = 0, x = 1; i < buf.length; i++) {
    // xorshift: bytes that are not a pattern.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 255;
  }
  // Every length through XXH64's 32-byte stripes and its tails, at offsets not aligned.
  for (let length = 0; length <= 100; length++)
    for (const at of [0, 1, 3, 8, 13]) {
      const bytes = buf.subarray(at, at + length);
      assert.equal(io!.xxh64(bytes), h.h64Raw(bytes, 0n), `${length} bytes at ${at}`);
    }
  for (const [at, length] of [
    [0, CHUNK_SIZE],
    [7, CHUNK_SIZE],
    [64, CHUNK_SIZE - 1],
  ] as const) {
    const bytes = buf.subarray(at, at + length);
    assert.equal(io!.xxh64(bytes), h.h64Raw(bytes, 0n), `${length} bytes at ${at}`);
  }
  assert.equal(io!.xxh64(new Uint8Array(0)), h.h64Raw(new Uint8Array(0), 0n));
});

/** What `fn` throws, as the fields a caller reads. */
function thrown(fn: () => unknown): object {
  try {
    fn();
  } catch (e) {
    const { name, code, errno, syscall, path, message } = e as NodeJS.ErrnoException;
    return { name, code, errno, syscall, path, message };
  }
  assert.fail('did not throw');
}

test('readFile reads from an offset into the buffer and gives the stat after, as Node does', () => {
  const dir = tmp();
  const f = join(dir, 'f');
  writeFileSync(f, 'abcdefghij');
  for (const [at, length, offset] of [
    [2, 4, 3],
    [0, 16, 8], // past the end: fewer bytes
    [5, 0, 0],
  ] as const) {
    const seg = { abs: f, offset, length, expect: { size: 0, mtimeMs: 0, ino: 0 } };
    const mine = new Uint8Array(16).fill(9);
    const node = new Uint8Array(16).fill(9);
    const r = io!.readFile(f, mine, at, length, offset);
    const n = readWithFs(seg, node, at);
    assert.deepEqual(mine, node);
    assert.equal(r.got, n.got);
    assert.deepEqual(
      { size: r.size, mtimeMs: r.mtimeMs, ino: r.ino },
      { size: n.after.size, mtimeMs: n.after.mtimeMs, ino: n.after.ino },
    );
  }
  assert.throws(() => io!.readFile(f, new Uint8Array(16), 10, 7, 0), RangeError);
});

test('an empty file: read into an empty buffer (which may have no memory at all), created', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'empty'), '');
  const st = lstatSync(join(dir, 'empty'));
  for (const data of [new Uint8Array(0), Buffer.allocUnsafeSlow(0), new Uint8Array(4)]) {
    const r = io!.readFile(join(dir, 'empty'), data, 0, 0, 0);
    assert.deepEqual(r, { got: 0, size: 0, mtimeMs: st.mtimeMs, ino: st.ino });
  }
  const meta: CreateMeta = { mode: 0o600, uid: -1, gid: -1, mtimeMs: 1_000_000 };
  const made = io!.createFile(join(dir, 'new'), new Uint8Array(0), meta, join(dir, 'placed'));
  assert.equal(made.placed, true);
  assert.equal(made.stat.size, 0);
  assert.equal(lstatSync(join(dir, 'placed')).mtimeMs, 1_000_000);
});

test('readFile fails as Node fails: a missing file, a symbolic link (not followed), a directory', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'target'), 'x');
  symlinkSync('target', join(dir, 'link'));
  mkdirSync(join(dir, 'sub'));
  for (const name of ['missing', 'link', 'sub']) {
    const abs = join(dir, name);
    const seg = { abs, offset: 0, length: 1, expect: { size: 0, mtimeMs: 0, ino: 0 } };
    assert.deepEqual(
      thrown(() => io!.readFile(abs, new Uint8Array(1), 0, 1, 0)),
      thrown(() => readWithFs(seg, new Uint8Array(1), 0)),
      name,
    );
  }
});

test('createFile writes the bytes, mode, owner and times as the calls through Node fs do', () => {
  const dir = tmp();
  const bytes = Buffer.from('some bytes');
  // Fractions below a microsecond, and none (now).
  const metas: CreateMeta[] = [
    {
      mode: 0o4750,
      uid: -1,
      gid: -1,
      atimeMs: 1_700_000_000_123 + 0.4567,
      mtimeMs: 1_600_000_000_987 + 0.6543,
    },
    { mode: 0o600, uid: -1, gid: 1234, atimeMs: 1_234.000_999, mtimeMs: 999.999_999 },
    { mode: 0o644, uid: 4321, gid: -1, atimeMs: 1.25, mtimeMs: 86_400_000.000_5 },
    { mode: 0o444, uid: -1, gid: -1, mtimeMs: 1_650_000_000_000 + 0.0003 },
    { mode: 0o755, uid: -1, gid: -1, atimeMs: 1_650_000_000_000.5 },
    { mode: 0o640, uid: -1, gid: -1 },
    // Bits a common umask (022) takes away at the open: set after it.
    { mode: 0o666, uid: -1, gid: -1 },
    // Set-ID bits with a new owner: fchown clears them (as root; else it is refused), so
    // the mode is set after it.
    { mode: 0o6755, uid: 4321, gid: 1234 },
  ];
  const root = process.getuid?.() === 0;
  for (const [i, meta] of metas.entries()) {
    const mine = io!.createFile(join(dir, `n${i}`), bytes, meta, undefined);
    const node = createWithFs(join(dir, `f${i}`), bytes, meta, undefined);
    assert.equal(mine.placed, false);
    // What the addon answers is the file as it is (before a read changes its atime).
    const st = lstatSync(join(dir, `n${i}`), { bigint: true });
    assert.equal(readFileSync(join(dir, `n${i}`)).toString(), 'some bytes');
    assert.deepEqual(mine.stat, {
      size: Number(st.size),
      mtimeMs: lstatSync(join(dir, `n${i}`)).mtimeMs,
      mode: Number(st.mode) & 0o7777,
      ino: Number(st.ino),
      uid: Number(st.uid),
      gid: Number(st.gid),
    });
    const { ino, mtimeMs, ...rest } = mine.stat;
    const { ino: nodeIno, mtimeMs: nodeMtimeMs, ...nodeRest } = node.stat;
    assert.notEqual(ino, nodeIno);
    assert.deepEqual(rest, nodeRest, `meta ${i}`);
    // Without privilege the kernel may drop set-group-ID (a group the writer is not in).
    if (root || (meta.mode & 0o6000) === 0) assert.equal(rest.mode, meta.mode, `mode of meta ${i}`);
    // Times: the addon sets the nanosecond nearest to what the double holds; Node's fs takes
    // seconds in a double, which libuv before 1.49 (Node 20) then truncates to whole
    // microseconds (up to ~1.25 us early), later ones (Node 24) do not.
    const ns = lstatSync(join(dir, `f${i}`), { bigint: true });
    const near = (got: bigint, wantMs: number, slackNs: number) =>
      Math.abs(Number(got) - wantMs * 1e6) <= slackNs;
    if (meta.mtimeMs !== undefined) {
      assert.ok(near(st.mtimeNs, meta.mtimeMs, 250), `addon mtime of meta ${i}: ${st.mtimeNs}`);
      assert.ok(near(ns.mtimeNs, meta.mtimeMs, 1_300), `fs mtime of meta ${i}: ${ns.mtimeNs}`);
    } else assert.ok(Math.abs(mtimeMs - nodeMtimeMs) < 60_000);
    if (meta.atimeMs !== undefined) {
      assert.ok(near(st.atimeNs, meta.atimeMs, 250), `addon atime of meta ${i}: ${st.atimeNs}`);
      assert.ok(near(ns.atimeNs, meta.atimeMs, 1_300), `fs atime of meta ${i}: ${ns.atimeNs}`);
    }
  }
});

test('createFile writes a file of several write slices whole, from inside a bigger buffer', () => {
  const dir = tmp();
  // Not a multiple of the slice, and starting past the buffer's first byte (a batch's
  // buffer holds many files).
  const size = 3 * WRITE_SLICE_BYTES + 5;
  const batch = new Uint8Array(size + 100);
  for (let i = 0; i < batch.length; i++) batch[i] = (i * 31 + (i >> 12)) & 0xff;
  const bytes = batch.subarray(17, 17 + size);
  const meta: CreateMeta = { mode: 0o644, uid: -1, gid: -1 };
  const mine = io!.createFile(join(dir, 'n'), bytes, meta, join(dir, 'placed'));
  const node = createWithFs(join(dir, 'f'), bytes, meta, undefined);
  assert.equal(mine.placed, true);
  assert.equal(mine.stat.size, size);
  assert.equal(node.stat.size, size);
  assert.ok(readFileSync(join(dir, 'placed')).equals(bytes));
  assert.ok(readFileSync(join(dir, 'f')).equals(bytes));
});

test('createFile and setTimes land within a microsecond of the time asked, whatever it is', () => {
  // Times as a scan reads them (ns precision), many of them: a truncation to microseconds
  // after the double's rounding would put some of them more than a microsecond early.
  const dir = tmp();
  writeFileSync(join(dir, 'set'), 'x');
  for (let i = 0; i < 500; i++) {
    const mtimeMs = 1_796_649_692_805 + ((i * 7919) % 1_000_000) / 1000 + i / 1e6;
    const meta: CreateMeta = { mode: 0o644, uid: -1, gid: -1, mtimeMs };
    const made = io!.createFile(join(dir, `f${i}`), Buffer.from('x'), meta, undefined);
    assert.ok(Math.abs(made.stat.mtimeMs - mtimeMs) < 0.001, `${mtimeMs} -> ${made.stat.mtimeMs}`);
    io!.setTimes(join(dir, 'set'), mtimeMs, mtimeMs, false);
    const st = lstatSync(join(dir, 'set'));
    assert.ok(Math.abs(st.mtimeMs - mtimeMs) < 0.001 && Math.abs(st.atimeMs - mtimeMs) < 0.001);
  }
});

test('setTimes sets a link’s own times with nofollow, and fails as Node fails', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'target'), 'x');
  symlinkSync('target', join(dir, 'link'));
  const before = lstatSync(join(dir, 'target')).mtimeMs;
  io!.setTimes(join(dir, 'link'), 1_000_000, 2_000_000, true);
  assert.equal(lstatSync(join(dir, 'link')).mtimeMs, 2_000_000);
  assert.equal(lstatSync(join(dir, 'target')).mtimeMs, before);
  const missing = join(dir, 'missing');
  const e = thrown(() => io!.setTimes(missing, 1, 2, false)) as { code: string; path: string };
  assert.equal(e.code, 'ENOENT');
  assert.equal(e.path, missing);
});

test('createFile keeps a time before 1970, which fs.futimesSync would make now', () => {
  const dir = tmp();
  const meta: CreateMeta = { mode: 0o644, uid: -1, gid: -1, mtimeMs: -86_400_000.000_5 };
  const made = io!.createFile(join(dir, 'f'), Buffer.from('x'), meta, undefined);
  // -86,401 s and 999,999,500 ns.
  assert.equal(lstatSync(join(dir, 'f'), { bigint: true }).mtimeNs, -86_400_000_000_500n);
  assert.ok(Math.abs(made.stat.mtimeMs - -86_400_000.000_5) < 1e-6);
});

test('createFile places at a free target, and leaves a taken one alone', () => {
  const dir = tmp();
  mkdirSync(join(dir, 'cache'));
  const meta: CreateMeta = { mode: 0o644, uid: -1, gid: -1, mtimeMs: 1_600_000_000_000 };
  const free = io!.createFile(join(dir, 'cache', '1'), Buffer.from('new'), meta, join(dir, 'a'));
  assert.equal(free.placed, true);
  assert.equal(existsSync(join(dir, 'cache', '1')), false);
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'new');
  for (const [name, make] of [
    ['file', (p: string) => writeFileSync(p, 'theirs')],
    ['dir', (p: string) => mkdirSync(p)],
    ['dangling link', (p: string) => symlinkSync('nowhere', p)],
  ] as const) {
    const target = join(dir, `taken ${name}`);
    make(target);
    const staged = join(dir, 'cache', name);
    const taken = io!.createFile(staged, Buffer.from('new'), meta, target);
    assert.equal(taken.placed, false, name);
    assert.equal(readFileSync(staged, 'utf8'), 'new');
  }
  assert.equal(readFileSync(join(dir, 'taken file'), 'utf8'), 'theirs');
  // A target whose directory is gone: not placed, the file stays where it was made.
  const gone = io!.createFile(
    join(dir, 'cache', '2'),
    Buffer.from('x'),
    meta,
    join(dir, 'no', 'b'),
  );
  assert.equal(gone.placed, false);
  assert.ok(existsSync(join(dir, 'cache', '2')));
});

test('createFile fails as Node fails: a path taken, a directory missing', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'taken'), 'x');
  const meta: CreateMeta = { mode: 0o644, uid: -1, gid: -1 };
  for (const p of [join(dir, 'taken'), join(dir, 'missing', 'f')]) {
    assert.deepEqual(
      thrown(() => io!.createFile(p, Buffer.from('y'), meta, undefined)),
      thrown(() => createWithFs(p, Buffer.from('y'), meta, undefined)),
    );
  }
  assert.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'x');
});

test('a batch whose packed task does not add up is refused before any file is touched', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'a'), 'abc');
  const st = lstatSync(join(dir, 'a'));
  const read = packReadSegments([
    {
      abs: join(dir, 'a'),
      offset: 0,
      length: 3,
      expect: { size: 3, mtimeMs: st.mtimeMs, ino: st.ino },
    },
  ]);
  const never = (): [number, string] => assert.fail('no file failed');
  const short = { text: read.text, nums: read.nums.subarray(0, read.nums.length - 1) };
  assert.throws(() => io!.readBatch(short, new Uint8Array(3), never), /does not add up/);
  // Its bytes would not fit in the buffer.
  assert.throws(() => io!.readBatch(read, new Uint8Array(2), never), /does not add up/);
  assert.equal(io!.readBatch(read, new Uint8Array(3), never).end, 3);

  const item = {
    abs: join(dir, 'b'),
    offset: 0,
    start: 0,
    length: 3,
    pieces: ['0'.repeat(16)],
    create: { mode: 0o644, uid: -1, gid: -1 },
  };
  const write = packWriteItems([item]);
  const noText = { text: write.text.slice(0, write.text.lastIndexOf('\0')), nums: write.nums };
  assert.throws(() => io!.writeBatch(noText, new Uint8Array(3), true, never), /does not add up/);
  assert.throws(() => io!.writeBatch(write, new Uint8Array(2), true, never), /does not add up/);
  assert.ok(!existsSync(join(dir, 'b')));
});
