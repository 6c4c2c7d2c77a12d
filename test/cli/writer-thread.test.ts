/**
 * Thread mode of the snapshot store (snapshot/writer-thread.ts) through the real CLI: with
 * ASYNC_WRITER_THREAD_MIN_PUTS=0 every row of a table filled from empty (a first sync, a
 * reset) is written by the writer thread, which otherwise starts only after 20,000 puts.
 * The snapshots must come out the same: reruns find nothing to do.
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { UNDER_BUNDLE, asyncCli, asyncadminCli, describeTree, syncPair } from '../helpers.js';

const env = { ASYNC_WRITER_THREAD_MIN_PUTS: '0' };
/** Snapshots filled from empty per run: each gets a thread (the native-free bundle has none). */
const BOTH = UNDER_BUNDLE ? 0 : 2;

/** Runs with --json; `threads`: how many snapshots had their rows written by a thread. */
function json(args: string[], threads = 0): { filesSent: number } {
  const r = asyncCli([...args, '--json'], { env: { ...env, ASYNC_DEBUG: '1' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.match(/rows written by a writer thread/g)?.length ?? 0, threads, r.stderr);
  return JSON.parse(r.stdout) as { filesSent: number };
}

describe('snapshot rows written by the writer thread', () => {
  for (const direction of ['push', 'bidi'] as const) {
    test(`${direction}: first sync, rerun, change, -x reset`, () => {
      const files: Record<string, string> = {};
      for (let i = 0; i < 300; i++) files[`d${i % 10}/sub/f${i}.txt`] = `file ${i}`;
      const { root, data, mirror } = syncPair(files);
      symlinkSync('d0/sub/f0.txt', join(data, 'link'));
      const db = join(root, 'db');
      mkdirSync(db);
      const args = ['-N', 'wt', '-d', data, '-r', mirror, '-K', direction, '-b', db, '-t'];
      assert.equal(json(args, BOTH).filesSent, 300);
      assert.deepEqual(
        describeTree(mirror, { mtimes: true }),
        describeTree(data, { mtimes: true }),
      );
      const counts = asyncadminCli(['-d', db, '-s']);
      assert.equal(counts.code, 0, counts.stderr);
      // 300 files, a link, 10 + 10 directories.
      assert.match(counts.stdout, /Synchronized: 321\b/);
      assert.equal(json(args).filesSent, 0, 'the rerun finds nothing to send');
      writeFileSync(join(data, 'd3/sub/f3.txt'), 'changed');
      assert.equal(json(args).filesSent, 1);
      assert.equal(
        json([...args, '-x'], BOTH).filesSent,
        0,
        'a reset of identical trees sends nothing',
      );
      assert.match(asyncadminCli(['-d', db, '-s']).stdout, /Synchronized: 321\b/);
      assert.equal(json(args).filesSent, 0, 'nor does the run after the reset');
    });
  }
});
