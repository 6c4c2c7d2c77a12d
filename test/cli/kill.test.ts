/**
 * A run killed with SIGKILL at any moment: no partial file is ever visible at a final path,
 * and the rerun converges. The kill is triggered by what the run has visibly done (a file in
 * the transfer cache, a number of files placed), never by a timer; -l slows the run so the
 * moment falls mid-transfer.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { asyncCli, describeTree, spawnAsync, tmp, writeTree } from '../helpers.js';

function fixture(): { data: string; mirror: string; files: Record<string, Buffer> } {
  const root = tmp();
  const data = join(root, 'data');
  const mirror = join(root, 'mirror');
  mkdirSync(mirror);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 300; i++)
    files[`small/d${i % 10}/f${i}.txt`] = Buffer.from(`file ${i} `.repeat(50));
  for (let i = 0; i < 3; i++) files[`big/b${i}.bin`] = Buffer.alloc(12 * 1024 * 1024, i + 1);
  writeTree(data, files);
  return { data, mirror, files };
}

/** Every regular file visible at the receiver is complete and correct. */
function assertNoPartialFiles(mirror: string, files: Record<string, Buffer>): number {
  let n = 0;
  for (const [p, want] of Object.entries(files)) {
    const abs = join(mirror, p);
    if (!existsSync(abs)) continue;
    n++;
    assert.ok(readFileSync(abs).equals(want), `${p} is complete or absent`);
  }
  return n;
}

function countFiles(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}

/**
 * Sizes of the regular files in the transfer cache (which is split in shard directories);
 * a file renamed away meanwhile is skipped.
 */
/** Sizes of the files staged under `.private-asp/k/<dir>` (the cache's shards, the partial store). */
function stagedSizes(mirror: string, dir: 'cache' | 'partial'): number[] {
  const cache = join(mirror, '.private-asp/k', dir);
  if (!existsSync(cache)) return [];
  const out: number[] = [];
  for (const e of readdirSync(cache, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const st = statSync(join(e.parentPath, e.name), { throwIfNoEntry: false });
    if (st) out.push(st.size);
  }
  return out;
}

/** Kills the run when `ready()`; false when the run ended before that moment came. */
async function killWhen(args: string[], ready: () => boolean): Promise<boolean> {
  const child = spawnAsync(args);
  const exited = once(child, 'exit');
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (ready() || child.exitCode !== null) {
        clearInterval(poll);
        resolve();
      }
    }, 5);
  });
  const ranToEnd = child.exitCode !== null;
  child.kill('SIGKILL');
  await exited;
  return !ranToEnd;
}

describe('kill -9 then rerun', () => {
  const triggers: [string, (mirror: string) => boolean][] = [
    [
      'as soon as the first data arrives',
      // Staged or already placed: a pool worker renames a small file into place as soon as
      // it is written, so the cache alone may never be seen holding data.
      (m) =>
        stagedSizes(m, 'cache').some((n) => n > 0) ||
        stagedSizes(m, 'partial').some((n) => n > 0) ||
        countFiles(join(m, 'small')) > 0,
    ],
    ['after some small files are placed', (m) => countFiles(join(m, 'small')) >= 100],
    [
      'while a big file is half received',
      // Big files are staged in the partial store, where they can resume (resume.test.ts).
      (m) => stagedSizes(m, 'partial').some((n) => n >= 4 * 1024 * 1024),
    ],
  ];
  // Thread mode of the snapshot store (every row written by its writer thread, see
  // snapshot/writer-thread.ts) must keep the same promise.
  const cases: [string, (mirror: string) => boolean, boolean][] = [
    ...triggers.map(([when, ready]): [string, (m: string) => boolean, boolean] => [
      when,
      ready,
      false,
    ]),
    [`${triggers[1]![0]}, rows written by the writer thread`, triggers[1]![1], true],
  ];
  for (const [when, ready, threadMode] of cases) {
    test(`killed ${when}: no partial file at a final path, and the rerun converges`, async (t) => {
      if (threadMode) {
        process.env['ASYNC_WRITER_THREAD_MIN_PUTS'] = '0';
        t.after(() => delete process.env['ASYNC_WRITER_THREAD_MIN_PUTS']);
      }
      const { data, mirror, files } = fixture();
      const args = ['-N', 'k', '-d', data, '-r', mirror, '-l', '200m', '-q'];
      // The moment must come mid-run: a trigger that never fires would test nothing.
      assert.ok(await killWhen(args, () => ready(mirror)), 'the run was killed before its end');
      assertNoPartialFiles(mirror, files);
      const r = asyncCli(args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(assertNoPartialFiles(mirror, files), Object.keys(files).length);
      assert.deepEqual(describeTree(mirror), describeTree(data));
      assert.ok(!existsSync(join(mirror, '.private-asp/k/cache')), 'no staged file is left behind');
      // And the run after that has nothing left to do.
      const again = asyncCli(['-N', 'k', '-d', data, '-r', mirror]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, / 0 files \(0 B\) sent/);
    });
  }
});
