/**
 * The core engine through the real CLI: one-time push and pull with a local peer, checked
 * by content, mode and mtime after every run.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  asyncCli,
  describeTree,
  isRoot,
  statTree,
  writeTree,
  syncPair,
  assertSameTree,
} from '../helpers.js';
import { chownSync, lstatSync } from 'node:fs';

function setup(files: Record<string, string | Buffer> = {}): {
  root: string;
  data: string;
  mirror: string;
} {
  return syncPair(files);
}

function push(data: string, mirror: string, ...extra: string[]) {
  return asyncCli(['-N', 'job1', '-d', data, '-r', mirror, '-K', 'push', ...extra]);
}

function sentOf(stdout: string): { files: number; renamed: number; deleted: number } {
  const m = /(\d+) files \(.*?\) sent.*?(\d+) renamed, (\d+) deleted/.exec(stdout);
  assert.ok(m, `no summary line in: ${stdout}`);
  return { files: Number(m[1]), renamed: Number(m[2]), deleted: Number(m[3]) };
}

describe('async push with a local peer', () => {
  test('a fresh push copies files, empty dirs, links and modes', () => {
    const { data, mirror } = setup({
      'a.txt': 'alpha',
      'sub/b.txt': 'beta',
      'sub/deep/c.bin': Buffer.alloc(9 * 1024 * 1024, 7),
    });
    mkdirSync(join(data, 'empty'));
    symlinkSync('a.txt', join(data, 'link'));
    symlinkSync('/nowhere/at/all', join(data, 'dangling'));
    chmodSync(join(data, 'sub/b.txt'), 0o640);
    const r = push(data, mirror);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^async: job1 push: 3 files/);
    assert.deepEqual(describeTree(mirror), describeTree(data));
    assert.ok(existsSync(join(data, '.private-asp/job1/snap.db')));
    assert.ok(existsSync(join(mirror, '.private-asp/job1/snap.db')));
  });

  test('files move while new directories are still made: each lands in its made directory', () => {
    // 600 directories (several chunks of mkdirs, the first ones small), two files each,
    // directory modes that only the mkdir sets: a file placed before its directory's mkdir
    // would leave the mode its own parent creation gave.
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++)
      for (const sub of ['p', 'p/q'])
        for (const f of ['1', '2']) files[`d${i}/${sub}/${f}`] = `${i}${sub}${f}`;
    const { data, mirror } = setup(files);
    for (let i = 0; i < 300; i++) chmodSync(join(data, `d${i}/p`), 0o750);
    const r = push(data, mirror, '-v');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1200 files \(.*\) sent, 900 dirs created/);
    assert.deepEqual(describeTree(mirror), describeTree(data));
    // Every directory is said made before any file sent into it.
    const lines = r.stdout.split('\n');
    const at = new Map(lines.map((l, i) => [l, i]));
    for (let i = 0; i < 300; i += 37)
      assert.ok(at.get(`cd d${i}/p/q/`)! < at.get(`>f d${i}/p/q/1`)!, `d${i}/p/q`);
  });

  test('a rerun with no change sends nothing and touches nothing at the receiver', () => {
    const { data, mirror } = setup({ 'a.txt': 'alpha', 'sub/b.txt': 'beta' });
    assert.equal(push(data, mirror).code, 0);
    const before = statTree(mirror);
    const r = push(data, mirror);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sentOf(r.stdout), { files: 0, renamed: 0, deleted: 0 });
    assert.deepEqual(statTree(mirror), before);
  });

  test('added, modified and deleted files and directories propagate', () => {
    const { data, mirror } = setup({
      'keep.txt': 'k',
      'mod.txt': 'v1',
      'del.txt': 'x',
      'gone/inner/f': 'f',
      'gone/g': 'g',
    });
    assert.equal(push(data, mirror).code, 0);
    writeFileSync(join(data, 'mod.txt'), 'version two');
    rmSync(join(data, 'del.txt'));
    rmSync(join(data, 'gone'), { recursive: true });
    writeTree(data, { 'new/dir/n.txt': 'new' });
    chmodSync(join(data, 'keep.txt'), 0o600);
    const r = push(data, mirror);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(mirror), describeTree(data));
  });

  test('a renamed file and a renamed directory are renamed at the receiver, not resent', () => {
    const { data, mirror } = setup({
      'a.txt': 'alpha',
      'dir/x': 'x'.repeat(1000),
      'dir/sub/y': 'y',
    });
    assert.equal(push(data, mirror).code, 0);
    const inoBefore = describeTree(mirror, { inodes: true });
    renameSync(join(data, 'a.txt'), join(data, 'b.txt'));
    renameSync(join(data, 'dir'), join(data, 'moved'));
    const r = push(data, mirror);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sentOf(r.stdout), { files: 0, renamed: 2, deleted: 0 });
    assert.deepEqual(describeTree(mirror), describeTree(data));
    const inoAfter = describeTree(mirror, { inodes: true });
    assert.equal(inoAfter['b.txt']!.ino, inoBefore['a.txt']!.ino);
    assert.equal(inoAfter['moved/sub/y']!.ino, inoBefore['dir/sub/y']!.ino);
  });

  test('a file moved into a renamed directory and changed there is renamed, then resent', () => {
    const { data, mirror } = setup({ 'top.txt': 'top', 'd/x': 'x', 'd/y': 'y' });
    assert.equal(push(data, mirror).code, 0);
    renameSync(join(data, 'd'), join(data, 'e'));
    renameSync(join(data, 'top.txt'), join(data, 'e/top.txt'));
    writeFileSync(join(data, 'e/x'), 'x changed');
    rmSync(join(data, 'e/y'));
    const r = push(data, mirror);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sentOf(r.stdout), { files: 1, renamed: 2, deleted: 1 });
    assert.deepEqual(describeTree(mirror), describeTree(data));
  });

  test('-t preserves modification times; a touched file sends no data', () => {
    const { data, mirror } = setup({ 'a.txt': 'alpha', 'd/b.txt': 'beta' });
    utimesSync(
      join(data, 'a.txt'),
      new Date('2001-02-03T04:05:06Z'),
      new Date('2001-02-03T04:05:06Z'),
    );
    assert.equal(push(data, mirror, '-t').code, 0);
    assertSameTree(mirror, data);
    utimesSync(
      join(data, 'a.txt'),
      new Date('2011-02-03T04:05:06Z'),
      new Date('2011-02-03T04:05:06Z'),
    );
    const r = push(data, mirror, '-t');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sentOf(r.stdout).files, 0);
    assert.match(r.stdout, /1 metadata only/);
    assertSameTree(mirror, data);
  });

  test(
    '-u and -j preserve owner and group',
    { skip: isRoot() ? false : 'changing owners needs root' },
    () => {
      const { data, mirror } = setup({ 'owned.txt': 'x', 'd/inner': 'y' });
      chownSync(join(data, 'owned.txt'), 1234, 5678);
      chownSync(join(data, 'd'), 4321, 8765);
      assert.equal(push(data, mirror, '-u', '-j').code, 0);
      assert.equal(lstatSync(join(mirror, 'owned.txt')).uid, 1234);
      assert.equal(lstatSync(join(mirror, 'owned.txt')).gid, 5678);
      assert.equal(lstatSync(join(mirror, 'd')).uid, 4321);
      assert.equal(lstatSync(join(mirror, 'd')).gid, 8765);
    },
  );

  test('-t also preserves directory times, set once their contents are placed', () => {
    const { data, mirror } = setup({ 'd/a': 'a', 'd/e/b': 'b' });
    const when = new Date('2005-06-07T08:09:10Z');
    utimesSync(join(data, 'd/e'), when, when);
    utimesSync(join(data, 'd'), when, when);
    assert.equal(push(data, mirror, '-t').code, 0);
    assert.equal(lstatSync(join(mirror, 'd')).mtimeMs, when.getTime());
    assert.equal(lstatSync(join(mirror, 'd/e')).mtimeMs, when.getTime());
    const r = push(data, mirror, '-t');
    assert.deepEqual(sentOf(r.stdout), { files: 0, renamed: 0, deleted: 0 });
    assert.doesNotMatch(r.stdout, /metadata only/);
  });

  test('a read-only directory is synced with its contents, as an unprivileged user too', () => {
    const { root, data, mirror } = setup({
      'ro/inner.txt': 'inside',
      'ro/sub/deeper.txt': 'deeper',
    });
    const as = isRoot() ? { uid: 65534, gid: 65534 } : undefined;
    if (as) {
      chmodSync(root, 0o755);
      for (const p of [
        data,
        mirror,
        join(data, 'ro'),
        join(data, 'ro/inner.txt'),
        join(data, 'ro/sub'),
        join(data, 'ro/sub/deeper.txt'),
      ]) {
        chownSync(p, as.uid, as.gid);
      }
    }
    chmodSync(join(data, 'ro/sub'), 0o555);
    chmodSync(join(data, 'ro'), 0o555);
    try {
      const r = asyncCli(['-N', 'job1', '-d', data, '-r', mirror], as ? { as } : {});
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(describeTree(mirror), describeTree(data));
    } finally {
      for (const p of [
        join(data, 'ro'),
        join(data, 'ro/sub'),
        join(mirror, 'ro'),
        join(mirror, 'ro/sub'),
      ]) {
        try {
          chmodSync(p, 0o755);
        } catch {
          // not created
        }
      }
    }
  });

  test('a file changed or deleted at the receiver is restored by the next push', () => {
    const { data, mirror } = setup({ 'a.txt': 'alpha', 'b.txt': 'beta', 'd/c.txt': 'gamma' });
    assert.equal(push(data, mirror).code, 0);
    writeFileSync(join(mirror, 'a.txt'), 'tampered');
    rmSync(join(mirror, 'b.txt'));
    rmSync(join(mirror, 'd'), { recursive: true });
    writeFileSync(join(mirror, 'extra.txt'), 'receiver only');
    const r = push(data, mirror);
    assert.equal(r.code, 0, r.stderr);
    const want = describeTree(data);
    const got = describeTree(mirror);
    assert.equal(got['extra.txt']?.content, Buffer.from('receiver only').toString('base64'));
    delete got['extra.txt'];
    assert.deepEqual(got, want);
    // What was restored is recorded as it was placed: the next push has nothing to do.
    const again = push(data, mirror);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(sentOf(again.stdout), { files: 0, renamed: 0, deleted: 0 });
  });

  test('a type change (file to directory and back) propagates', () => {
    const { data, mirror } = setup({ x: 'file', 'y/inner': 'in y' });
    assert.equal(push(data, mirror).code, 0);
    rmSync(join(data, 'x'));
    rmSync(join(data, 'y'), { recursive: true });
    writeTree(data, { 'x/now-a-dir': 'd' });
    writeFileSync(join(data, 'y'), 'now a file');
    const r = push(data, mirror);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(mirror), describeTree(data));
    assert.equal(push(data, mirror).code, 0);
  });
});

describe('async pull with a local peer', () => {
  test('pull brings the peer tree into the local directory, then follows its changes', () => {
    const { data, mirror } = setup();
    writeTree(mirror, { 'p.txt': 'from peer', 'dir/q.txt': 'q' });
    const args = ['-N', 'pj', '-d', data, '-r', mirror, '-K', 'pull'];
    let r = asyncCli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(data), describeTree(mirror));
    renameSync(join(mirror, 'dir'), join(mirror, 'dir2'));
    writeFileSync(join(mirror, 'p.txt'), 'changed at peer');
    r = asyncCli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sentOf(r.stdout), { files: 1, renamed: 1, deleted: 0 });
    assert.deepEqual(describeTree(data), describeTree(mirror));
  });
});

describe('-x/--reset', () => {
  test('rebuilding the snapshots of identical trees sends no file data', () => {
    const { data, mirror } = setup({ 'a.txt': 'alpha', 'd/b.bin': Buffer.alloc(100_000, 3) });
    assert.equal(push(data, mirror).code, 0);
    rmSync(join(data, '.private-asp'), { recursive: true });
    let r = push(data, mirror);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /Remote snapshot DB exists but local snapshot DB .* does not exist/);
    assert.match(r.stderr, /--reset/);
    r = push(data, mirror, '-x');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sentOf(r.stdout).files, 0);
    r = push(data, mirror);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sentOf(r.stdout).files, 0);
  });

  test('a reset trusts equal size and mtime (quick check) unless recent or -k asks for content', () => {
    const { data, mirror } = setup({ 'a.txt': 'alpha', 'b.txt': 'bravo', 'c.txt': 'charlie' });
    // The peer's b.txt differs in content only: same size, and the same (old) mtime.
    writeTree(mirror, { 'a.txt': 'alpha', 'b.txt': 'BRAVO', 'c.txt': 'CHARLIE' });
    const old = new Date('2024-05-01T12:00:00Z');
    for (const d of [data, mirror])
      for (const f of ['a.txt', 'b.txt']) utimesSync(join(d, f), old, old);
    // c.txt: equal size and equal mtime too, but written just now: inside the racy window
    // (a coarse clock tick can give two different new files the same mtime), so it is read.
    const now = new Date();
    for (const d of [data, mirror]) utimesSync(join(d, 'c.txt'), now, now);
    let r = push(data, mirror, '-x');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sentOf(r.stdout).files, 1);
    assert.equal(readFileSync(join(mirror, 'c.txt'), 'utf8'), 'charlie');
    assert.equal(readFileSync(join(mirror, 'b.txt'), 'utf8'), 'BRAVO');
    // -k sha1 (any content checksum): the files both sides hold are compared by content.
    r = push(data, mirror, '-x', '-k', 'sha1');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sentOf(r.stdout).files, 1);
    assert.deepEqual(describeTree(mirror), describeTree(data));
  });

  test('reset sends what differs and allows a direction change', () => {
    const { data, mirror } = setup({ 'a.txt': 'alpha', 'b.txt': 'beta' });
    assert.equal(push(data, mirror).code, 0);
    writeFileSync(join(mirror, 'b.txt'), 'BETA');
    let r = asyncCli(['-N', 'job1', '-d', data, '-r', mirror, '-K', 'pull']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /direction push; this run asks for pull/);
    r = asyncCli(['-N', 'job1', '-d', data, '-r', mirror, '-K', 'pull', '-x']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sentOf(r.stdout).files, 1);
    assert.deepEqual(describeTree(data), describeTree(mirror));
  });
});
