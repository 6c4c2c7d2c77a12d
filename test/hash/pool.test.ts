/**
 * The pool's read and write tasks on real files: a read buffer handed back by a write is
 * reused by the next read (its stale bytes never show), and bytes the pool read in this
 * process are written with the digests that came with them; bytes from elsewhere (a copy,
 * as a wire delivers them) are checked. Every test runs twice: with the io addon
 * (src/native/fsio.c) and with Node's fs (ASYNC_NO_ADDONS, as where the addon is not built).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import xxhash from 'xxhash-wasm';
import { READ_BUFFER_BYTES, WorkPool } from '../../src/hash/pool.js';
import type { ReadReply, ReadSegment, WriteItem } from '../../src/hash/pool.js';
import { CHUNK_SIZE } from '../../src/hash/digest.js';
import { SMALL_READ_BYTES } from '../../src/hash/worker.js';
import { tmp } from '../helpers.js';

function segment(abs: string): ReadSegment {
  const st = lstatSync(abs);
  return {
    abs,
    offset: 0,
    length: st.size,
    expect: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino },
  };
}

for (const way of ['the io addon', "Node's fs"] as const) {
  describe(`WorkPool read and write, with ${way}`, () => {
    let pool: WorkPool;
    before(() => {
      // The pool's threads take the environment they start with.
      if (way === "Node's fs") process.env['ASYNC_NO_ADDONS'] = '1';
      pool = new WorkPool(1);
    });
    after(async () => {
      await pool.close();
      delete process.env['ASYNC_NO_ADDONS'];
    });
    test('once writes hand buffers back, reads make full ones that go round; stale bytes never show', async () => {
      const dir = tmp();
      mkdirSync(join(dir, 'out'));
      writeFileSync(join(dir, 'big'), Buffer.alloc(READ_BUFFER_BYTES / 2, 7));
      writeFileSync(join(dir, 'mid'), Buffer.alloc(SMALL_READ_BYTES, 9));
      writeFileSync(join(dir, 'small'), 'abc');
      const writeBack = async (read: ReadReply, name: string) => {
        const o = read.outcomes[0]!;
        assert.ok(o.ok);
        const [w] = await pool.write(read.data, [
          {
            abs: join(dir, 'out', name),
            offset: 0,
            start: o.start,
            length: o.length,
            pieces: o.pieces,
            create: { mode: 0o644, uid: -1, gid: -1 },
          },
        ]);
        assert.ok(w?.ok);
      };
      // No buffer has come back yet (as on a daemon, whose reads leave on a wire): a read's
      // buffer is its own size.
      const first = await pool.read([segment(join(dir, 'big'))]);
      assert.equal(first.data.buffer.byteLength, READ_BUFFER_BYTES / 2);
      await writeBack(first, 'big');
      // A write handed it back (a local peer): now a read makes a buffer of the full size,
      const second = await pool.read([segment(join(dir, 'mid'))]);
      assert.equal(second.data.buffer.byteLength, READ_BUFFER_BYTES);
      await writeBack(second, 'mid');
      // which the next read reuses, past its own bytes still holding the last read's.
      const third = await pool.read([segment(join(dir, 'small'))]);
      assert.equal(third.data.byteLength, 3);
      assert.equal(Buffer.from(third.data).toString(), 'abc');
      assert.equal(third.data.buffer.byteLength, READ_BUFFER_BYTES);
      assert.deepEqual([...new Uint8Array(third.data.buffer, 3, 4)], [9, 9, 9, 9]);
      assert.deepEqual(readFileSync(join(dir, 'out', 'big')), readFileSync(join(dir, 'big')));
      assert.deepEqual(readFileSync(join(dir, 'out', 'mid')), readFileSync(join(dir, 'mid')));
    });

    test('bytes read elsewhere are checked against their digests; the pool’s own are not hashed again', async () => {
      const dir = tmp();
      mkdirSync(join(dir, 'out'));
      writeFileSync(join(dir, 'f'), 'hello');
      const write = async (data: Uint8Array, name: string, pieces: readonly string[]) =>
        (
          await pool.write(data, [
            {
              abs: join(dir, 'out', name),
              offset: 0,
              start: 0,
              length: data.byteLength,
              pieces,
              create: { mode: 0o644, uid: -1, gid: -1 },
            },
          ])
        )[0]!;
      const read = await pool.read([segment(join(dir, 'f'))]);
      const o = read.outcomes[0]!;
      assert.ok(o.ok);
      const copy = Uint8Array.from(read.data);
      copy[0] = 0x48; // 'H'
      const checked = await write(copy, 'copy', o.pieces);
      assert.equal(checked.ok, false);
      assert.match((checked as { message: string }).message, /did not match the sender digest/);
      const own = await write(read.data, 'own', o.pieces);
      assert.ok(own.ok);
      // The file's digest comes from the pieces' digests either way: the same as a hash of it.
      const [h] = await pool.hash([
        { abs: join(dir, 'out', 'own'), expect: segment(join(dir, 'out', 'own')).expect },
      ]);
      assert.ok(h?.ok);
      assert.equal(own.digest, h.digest);
    });

    test('a batch goes on past its failed files, each answered as the file-by-file way does', async () => {
      const dir = tmp();
      const h = await xxhash();
      const hex = (b: Uint8Array) => h.h64Raw(b, 0n).toString(16).padStart(16, '0');
      const files: Record<string, Buffer> = {
        a: Buffer.from('first'),
        changed: Buffer.from('0123456789'),
        big: Buffer.alloc(CHUNK_SIZE + 100, 3),
        shrunk: Buffer.from('long enough'),
        z: Buffer.from('last one'),
      };
      for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
      mkdirSync(join(dir, 'dir'));
      const segs = ['a', 'gone', 'changed', 'big', 'dir', 'shrunk', 'z'].map((name) => {
        if (name === 'gone') {
          writeFileSync(join(dir, name), 'x');
          const s = segment(join(dir, name));
          rmSync(join(dir, name));
          return s;
        }
        if (name === 'dir')
          return {
            abs: join(dir, name),
            offset: 0,
            length: 4,
            expect: { size: 4, mtimeMs: 0, ino: 0 },
          };
        return segment(join(dir, name));
      });
      writeFileSync(join(dir, 'changed'), '0123'); // after the scan: 10 -> 4 bytes
      // The scan saw 11 bytes; a read of 20 from the same unchanged file comes up short.
      segs[5] = { ...segs[5]!, length: 20 };
      const read = await pool.read(segs);
      const o = read.outcomes;
      assert.deepEqual(
        o.map((x) => (x.ok ? 'ok' : `${x.vanished ? 'vanished: ' : ''}${x.message}`)),
        [
          'ok',
          'vanished: file vanished before it could be read (ENOENT)',
          'file changed size while reading (10 -> 4 bytes)',
          'ok',
          'EISDIR: illegal operation on a directory, read',
          'file shrank while reading',
          'ok',
        ],
      );
      // The bytes read lie back to back, the failed files' none.
      const starts = o.map((x) => (x.ok ? [x.start, x.length] : null));
      assert.deepEqual(starts, [
        [0, 5],
        null,
        null,
        [5, CHUNK_SIZE + 100],
        null,
        null,
        [CHUNK_SIZE + 105, 8],
      ]);
      assert.equal(read.data.byteLength, CHUNK_SIZE + 113);
      assert.deepEqual(o[3]!.ok && o[3]!.pieces, [
        hex(files['big']!.subarray(0, CHUNK_SIZE)),
        hex(files['big']!.subarray(CHUNK_SIZE)),
      ]);
      assert.deepEqual(o[6]!.ok && o[6]!.pieces, [hex(files['z']!)]);
      assert.equal(Buffer.from(read.data.subarray(CHUNK_SIZE + 105)).toString(), 'last one');

      // Writes of bytes from elsewhere (checked): a file created and placed, one whose bytes
      // are wrong, one whose cache path is taken, a piece into a file that exists, one whose
      // target is taken (created, not placed), and one after them all.
      mkdirSync(join(dir, 'out'));
      writeFileSync(join(dir, 'out', 'taken'), 'mine');
      writeFileSync(join(dir, 'out', 'existing'), Buffer.alloc(8));
      writeFileSync(join(dir, 'out', 'target'), 'was here');
      const bytes = Buffer.from('abcdefgh');
      const d = hex(bytes);
      // A whole second: Node's fs.futimesSync would round a finer time (the fs way).
      const create = { mode: 0o640, uid: -1, gid: -1, mtimeMs: 1_500_000_000_000 };
      const item = (abs: string, extra: Partial<WriteItem>): WriteItem => ({
        abs: join(dir, 'out', abs),
        offset: 0,
        start: 0,
        length: 8,
        pieces: [d],
        ...extra,
      });
      const written = await pool.write(Uint8Array.from(bytes), [
        item('c1', { create, placeAt: join(dir, 'out', 'placed') }),
        item('c2', { create, pieces: [hex(Buffer.from('abcdefgH'))] }),
        item('taken', { create }),
        item('existing', { offset: 4, start: 4, length: 4, pieces: [hex(bytes.subarray(4))] }),
        item('c3', { create, placeAt: join(dir, 'out', 'target') }),
        item('c4', { create, start: 2, length: 3, pieces: [hex(bytes.subarray(2, 5))] }),
      ]);
      const whole = h.h64Raw(Buffer.from(d, 'hex'), 0n).toString(16).padStart(16, '0');
      assert.deepEqual(
        written.map((w) =>
          w.ok
            ? `ok${w.placed === true ? ' placed' : ''}${w.staged ? ` ${w.staged.size} ${w.staged.mode.toString(8)} ${w.staged.mtimeMs}` : ''}${w.digest === whole ? ' digest' : ''}`
            : `${w.mismatch ? 'mismatch: ' : ''}${w.message}`,
        ),
        [
          'ok placed 8 640 1500000000000 digest',
          'mismatch: data did not match the sender digest',
          `EEXIST: file already exists, open '${join(dir, 'out', 'taken')}'`,
          'ok',
          'ok 8 640 1500000000000 digest',
          'ok 3 640 1500000000000',
        ],
      );
      assert.equal(readFileSync(join(dir, 'out', 'placed'), 'utf8'), 'abcdefgh');
      assert.equal(readFileSync(join(dir, 'out', 'taken'), 'utf8'), 'mine');
      assert.equal(readFileSync(join(dir, 'out', 'existing'), 'utf8'), '\0\0\0\0efgh');
      assert.equal(readFileSync(join(dir, 'out', 'target'), 'utf8'), 'was here');
      assert.equal(readFileSync(join(dir, 'out', 'c3'), 'utf8'), 'abcdefgh');
      assert.equal(readFileSync(join(dir, 'out', 'c4'), 'utf8'), 'cde');
    });

    // A timeout: where an open blocks on the FIFO, the test fails rather than holds the suite.
    test(
      'a FIFO put at a file’s path after the scan fails alone, never waited on',
      { timeout: 30_000 },
      async () => {
        const dir = tmp();
        const segs = ['a', 'b', 'c'].map((name) => {
          writeFileSync(join(dir, name), `file ${name}`);
          return segment(join(dir, name));
        });
        rmSync(join(dir, 'b'));
        execFileSync('mkfifo', [join(dir, 'b')]); // opened without O_NONBLOCK, it would block
        const read = await pool.read(segs);
        assert.deepEqual(
          read.outcomes.map((o) => o.ok),
          [true, false, true],
        );
        const c = read.outcomes[2]!;
        assert.ok(c.ok);
        assert.equal(
          Buffer.from(read.data.subarray(c.start, c.start + c.length)).toString(),
          'file c',
        );
        const [hashed] = await pool.hash([{ abs: join(dir, 'b'), expect: segs[1]!.expect }]);
        assert.equal(hashed?.ok, false);
        const [pieces] = await pool.pieces([
          { abs: join(dir, 'b'), indices: [0], expect: segs[1]!.expect },
        ]);
        assert.equal(pieces?.ok, false);
      },
    );

    test('each way is the one in use: only the addon keeps a time before 1970', async () => {
      const dir = tmp();
      writeFileSync(join(dir, 'f'), 'x');
      const read = await pool.read([segment(join(dir, 'f'))]);
      const o = read.outcomes[0]!;
      assert.ok(o.ok);
      const [w] = await pool.write(read.data, [
        {
          abs: join(dir, 'g'),
          offset: 0,
          start: o.start,
          length: o.length,
          pieces: o.pieces,
          create: { mode: 0o644, uid: -1, gid: -1, mtimeMs: -1000 },
        },
      ]);
      assert.ok(w?.ok);
      const mtimeMs = lstatSync(join(dir, 'g')).mtimeMs;
      if (way === 'the io addon') assert.equal(mtimeMs, -1000);
      else assert.ok(mtimeMs > 0, 'fs.futimesSync sets a time before 1970 to now');
    });
  });
}
