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
import { READ_BUFFER_BYTES, WorkPool } from '../../src/hash/pool.js';
import type { ReadReply, ReadSegment } from '../../src/hash/pool.js';
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
