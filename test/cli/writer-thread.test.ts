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
import { snapshotDriver } from '../../src/snapshot/select-driver.js';
import {
  UNDER_BUNDLE,
  asyncCli,
  asyncadminCli,
  describeTree,
  syncPair,
  writeTree,
  assertSameTree,
} from '../helpers.js';

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
      assertSameTree(mirror, data);
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

  test(
    'a row the thread cannot write fails the run (exit 3, one message); the rerun converges',
    { skip: UNDER_BUNDLE && 'the native-free bundle has no writer thread' },
    () => {
      const { root, data, mirror } = syncPair();
      const db = join(root, 'db');
      mkdirSync(db);
      const args = ['-N', 'wf', '-d', data, '-r', mirror, '-b', db];
      // A first run with nothing to sync leaves an empty table, which the next run fills.
      assert.equal(asyncCli(args, { env }).code, 0);
      // The sender's last rows fail as on a full disk: only the writer thread meets it.
      const file = join(db, '.private-asp', 'wf', 'snap.db');
      const conn = snapshotDriver().open(file, { fileMustExist: true, readonly: false });
      conn.exec(
        "CREATE TRIGGER no_room BEFORE INSERT ON entries WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'no room'); END",
      );
      conn.close();
      writeTree(data, { 'd/f1': '1', 'd/f2': '2', 'd/boom': 'x' });
      const r = asyncCli(args, { env });
      assert.equal(r.code, 3, r.stderr);
      assert.match(
        r.stderr,
        /Writing the snapshot database failed \(in its writer thread\): no room/,
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      const fix = snapshotDriver().open(file, { fileMustExist: true, readonly: false });
      fix.exec('DROP TRIGGER no_room');
      fix.close();
      const again = asyncCli(args, { env });
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(describeTree(mirror), describeTree(data));
      assert.match(asyncadminCli(['-d', db, '-s']).stdout, /Synchronized: 4\b/);
    },
  );
});
