/**
 * Deletes and safety through the real CLI: --ignore-delete, --delete-before/--delete-delay,
 * keep directories, --remove-after-transfer, mount signatures, the safety halt for an
 * emptied or vanished sending root, -o always|older, --mirror.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { asyncCli, describeTree, isRoot, tmp, writeTree, syncPair } from '../helpers.js';

function setup(files: Record<string, string> = { 'a.txt': 'a', 'b.txt': 'b', 'd/c.txt': 'c' }) {
  const { root, data, mirror } = syncPair(files);
  const run = (...args: string[]) => asyncCli(['-N', 'x', '-d', data, '-r', mirror, ...args]);
  return { root, data, mirror, run };
}

const paths = (dir: string): string[] => Object.keys(describeTree(dir)).sort();

describe('deletes', () => {
  test('by default a delete at the sender propagates', () => {
    const { data, mirror, run } = setup();
    {
      const r0 = run();
      assert.equal(r0.code, 0, r0.stderr);
    }
    rmSync(join(data, 'a.txt'));
    const r = run();
    assert.match(r.stdout, /1 deleted/);
    assert.deepEqual(paths(mirror), paths(data));
  });

  test('--ignore-delete keeps the peer copy, and later runs do not delete it either', () => {
    const { data, mirror, run } = setup();
    {
      const r0 = run();
      assert.equal(r0.code, 0, r0.stderr);
    }
    rmSync(join(data, 'a.txt'));
    rmSync(join(data, 'd'), { recursive: true });
    const r = run('--ignore-delete');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0 deleted/);
    assert.deepEqual(paths(mirror), ['a.txt', 'b.txt', 'd', 'd/c.txt']);
    const r2 = run();
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /0 deleted/);
    assert.ok(existsSync(join(mirror, 'a.txt')));
  });

  test('--delete-delay deletes after the transfers, --delete-before (default) before them', () => {
    for (const [flag, deleteFirst] of [
      ['--delete-before', true],
      ['--delete-delay', false],
      [undefined, true],
    ] as const) {
      const { data, run } = setup();
      {
        const r0 = run();
        assert.equal(r0.code, 0, r0.stderr);
      }
      rmSync(join(data, 'a.txt'));
      writeFileSync(join(data, 'new.txt'), 'n');
      const r = flag ? run('-v', flag) : run('-v');
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n');
      const del = lines.indexOf('*deleting a.txt');
      const send = lines.indexOf('>f new.txt');
      assert.ok(del >= 0 && send >= 0, r.stdout);
      assert.equal(del < send, deleteFirst, `${flag}: ${r.stdout}`);
    }
  });

  test('--delete-before with --delete-delay is a usage error', () => {
    const { run } = setup();
    const r = run('--delete-before', '--delete-delay');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /contradict/);
  });

  test('--keep-dir-remote moves deleted files there, keeping their relative paths', () => {
    const { root, data, mirror, run } = setup();
    const keep = join(root, 'kept');
    {
      const r0 = run();
      assert.equal(r0.code, 0, r0.stderr);
    }
    rmSync(join(data, 'd'), { recursive: true });
    rmSync(join(data, 'a.txt'));
    const r = run('--keep-dir-remote', keep);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(paths(mirror), ['b.txt']);
    assert.equal(readFileSync(join(keep, 'd/c.txt'), 'utf8'), 'c');
    assert.equal(readFileSync(join(keep, 'a.txt'), 'utf8'), 'a');
    // A second delete of the same path does not overwrite what was kept.
    writeFileSync(join(data, 'a.txt'), 'a2');
    {
      const r0 = run();
      assert.equal(r0.code, 0, r0.stderr);
    }
    rmSync(join(data, 'a.txt'));
    assert.equal(run('--keep-dir-remote', keep).code, 0);
    assert.equal(readFileSync(join(keep, 'a.txt'), 'utf8'), 'a');
    assert.equal(readFileSync(join(keep, 'a.txt~1'), 'utf8'), 'a2');
  });

  test('--keep-dir-local is used when the local side receives (pull)', () => {
    const { root, data, mirror } = setup();
    const keep = join(root, 'kept-local');
    const pull = (...a: string[]) =>
      asyncCli(['-N', 'p', '-d', mirror, '-r', data, '-K', 'pull', ...a]);
    assert.equal(pull().code, 0);
    rmSync(join(data, 'b.txt'));
    const r = pull('--keep-dir-local', keep);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(join(mirror, 'b.txt')));
    assert.equal(readFileSync(join(keep, 'b.txt'), 'utf8'), 'b');
  });

  test('a keep directory inside the synced tree is refused (exit 2), nothing changes', () => {
    const { data, mirror, run } = setup();
    {
      const r0 = run();
      assert.equal(r0.code, 0, r0.stderr);
    }
    rmSync(join(data, 'a.txt'));
    const r = run('--keep-dir-remote', join(mirror, 'trash'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--keep-dir-remote .* is inside the synced directory/);
    assert.ok(existsSync(join(mirror, 'a.txt')));
  });

  describe('a keep directory on another file system', () => {
    const mnt = tmp('async-ramfs-');
    const mounted = isRoot() && spawnSync('mount', ['-t', 'ramfs', 'none', mnt]).status === 0;
    after(() => {
      if (mounted) spawnSync('umount', [mnt]);
    });
    test('is refused (exit 2)', { skip: !mounted && 'mounting a ramfs needs root' }, () => {
      const { data, mirror, run } = setup();
      {
        const r0 = run();
        assert.equal(r0.code, 0, r0.stderr);
      }
      rmSync(join(data, 'a.txt'));
      const r = run('--keep-dir-remote', join(mnt, 'kept'));
      assert.equal(r.code, 2);
      assert.match(r.stderr, /is on another file system/);
      assert.ok(existsSync(join(mirror, 'a.txt')));
    });
  });

  test('--remove-after-transfer removes sent files at the sender; later runs delete nothing', () => {
    const { data, mirror, run } = setup();
    const r = run('--remove-after-transfer');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /3 removed at the sender/);
    assert.deepEqual(paths(data), ['d']);
    assert.deepEqual(paths(mirror), ['a.txt', 'b.txt', 'd', 'd/c.txt']);
    writeFileSync(join(data, 'e.txt'), 'e');
    const r2 = run('--remove-after-transfer');
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /1 files .* 0 deleted/);
    assert.deepEqual(paths(mirror), ['a.txt', 'b.txt', 'd', 'd/c.txt', 'e.txt']);
    assert.deepEqual(paths(data), ['d']);
  });
});

describe('mount signatures and the safety halt', () => {
  test('a missing mount signature refuses the run (exit 3), relative or absolute', () => {
    const { root, mirror, run } = setup();
    for (const args of [
      ['--local-mount-signature', '.mounted'],
      ['--remote-mount-signature', join(root, 'nowhere/.sig')],
    ]) {
      const r = run(...args);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /mount signature .* is missing/);
      assert.match(r.stderr, /hint: Mount the file system/);
      assert.deepEqual(paths(mirror), []);
    }
  });

  test('present mount signatures let the run go', () => {
    const { data, mirror, run } = setup();
    writeFileSync(join(data, '.mounted'), '');
    writeFileSync(join(mirror, '.sig'), '');
    const r = run('--local-mount-signature', '.mounted', '--remote-mount-signature', '.sig');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(mirror, 'a.txt')));
  });

  test('an emptied sending root halts before any delete (exit 3)', () => {
    const { data, mirror, run } = setup();
    {
      const r0 = run();
      assert.equal(r0.code, 0, r0.stderr);
    }
    const before = describeTree(mirror);
    for (const n of ['a.txt', 'b.txt', 'd']) rmSync(join(data, n), { recursive: true });
    const r = run();
    assert.equal(r.code, 3);
    assert.match(r.stderr, /Safety halt: the local directory is empty/);
    assert.match(r.stderr, /hint: .*-x\/--reset/);
    assert.deepEqual(describeTree(mirror), before);
  });

  test('a vanished sending root halts before any delete (exit 3), also with --create-dir', () => {
    const { root, data, mirror } = setup();
    const db = join(root, 'db');
    mkdirSync(db);
    const run = (...a: string[]) => asyncCli(['-N', 'x', '-d', data, '-r', mirror, '-b', db, ...a]);
    {
      const r0 = run();
      assert.equal(r0.code, 0, r0.stderr);
    }
    const before = describeTree(mirror);
    rmSync(data, { recursive: true });
    const r = run();
    assert.equal(r.code, 3);
    assert.match(r.stderr, /Local directory .* does not exist/);
    assert.deepEqual(describeTree(mirror), before);
    const r2 = run('--create-dir');
    assert.equal(r2.code, 3);
    assert.match(r2.stderr, /Safety halt/);
    assert.deepEqual(describeTree(mirror), before);
  });
});

describe('overwrite policies and --mirror', () => {
  for (const direction of ['push', 'pull'] as const) {
    test(`-o older and -o always (${direction})`, () => {
      const { data, mirror } = setup();
      const [send, recv] = direction === 'push' ? [data, mirror] : [mirror, data];
      const run = (...a: string[]) =>
        asyncCli(['-N', 'o', '-d', data, '-r', mirror, '-K', direction, '-t', ...a]);
      if (direction === 'pull') writeTree(mirror, { 'a.txt': 'a', 'b.txt': 'b', 'd/c.txt': 'c' });
      {
        const r0 = run();
        assert.equal(r0.code, 0, r0.stderr);
      }
      // Both sides change a.txt; the receiver's copy is newer.
      writeFileSync(join(send, 'a.txt'), 'sender');
      utimesSync(join(send, 'a.txt'), new Date(), new Date('2020-01-01T00:00:00Z'));
      writeFileSync(join(recv, 'a.txt'), 'receiver');
      utimesSync(join(recv, 'a.txt'), new Date(), new Date('2021-01-01T00:00:00Z'));
      const r = run('-o', 'older');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /note: a\.txt: not replaced: the receiver copy is newer/);
      assert.equal(readFileSync(join(recv, 'a.txt'), 'utf8'), 'receiver');
      // -o always: the sender wins.
      const r2 = run('-o', 'always');
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(readFileSync(join(recv, 'a.txt'), 'utf8'), 'sender');
    });
  }

  test('--mirror removes the receiver’s own extra files and restores what it changed', () => {
    const { data, mirror, run } = setup();
    {
      const r0 = run();
      assert.equal(r0.code, 0, r0.stderr);
    }
    writeTree(mirror, { 'extra.txt': 'x', 'xd/deep/y.txt': 'y', 'd/z.txt': 'z' });
    const r0 = run();
    assert.ok(existsSync(join(mirror, 'extra.txt')), 'a plain push leaves extras alone');
    assert.equal(r0.code, 0);
    writeFileSync(join(mirror, 'b.txt'), 'changed at the receiver');
    rmSync(join(data, 'a.txt'));
    writeFileSync(join(mirror, 'a.txt'), 'also changed at the receiver');
    const r = run('--mirror');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(mirror), describeTree(data));
  });

  test('--mirror keeps excluded paths', () => {
    const { data, mirror, run } = setup();
    writeTree(mirror, { 'keep.tmp': 'k', 'gone.txt': 'g' });
    const r = run('--mirror', '--exclude', '*.tmp');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(paths(mirror), [...paths(data), 'keep.tmp'].sort());
  });

  test('--mirror with bidi is a usage error (exit 2)', () => {
    const { run, mirror } = setup();
    const r = run('--mirror', '-K', 'bidi');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--mirror cannot be used with -K bidi/);
    assert.deepEqual(paths(mirror), []);
  });
});
