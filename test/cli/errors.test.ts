/**
 * Bad input through the real CLI: each case gets a clear message naming the problem, the
 * documented exit code, and no change to either tree.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { asyncCli, describeTree, isRoot, writeTree, syncPair } from '../helpers.js';

function dirs(): { root: string; data: string; mirror: string } {
  return syncPair({ 'a.txt': 'alpha', 'd/b.txt': 'beta' });
}

describe('usage errors exit 2 and name the option', () => {
  const { data, mirror } = dirs();
  const cases: [string, string[], RegExp][] = [
    ['missing -N', ['-d', data, '-r', mirror], /-N\/--name/],
    ['missing -d', ['-N', 'j', '-r', mirror], /-d\/--local-dir/],
    ['missing -r', ['-N', 'j', '-d', data], /-r\/--remote-dir/],
    [
      'invalid session name',
      ['-N', 'bad/name', '-d', data, '-r', mirror],
      /may only contain letters/,
    ],
    ['session name with a space', ['-N', 'a b', '-d', data, '-r', mirror], /may only contain/],
    [
      'unknown direction',
      ['-N', 'j', '-d', data, '-r', mirror, '-K', 'sideways'],
      /-K, --direction.*invalid|Allowed choices/,
    ],
    [
      'unknown option',
      ['-N', 'j', '-d', data, '-r', mirror, '--frobnicate'],
      /unknown option '--frobnicate'/,
    ],
    ['bad rate', ['-N', 'j', '-d', data, '-r', mirror, '-l', 'fast'], /-l\/--target-rate 'fast'/],
    [
      'bad transfer threads',
      ['-N', 'j', '-d', data, '-r', mirror, '--transfer-threads', '0'],
      /--transfer-threads '0'/,
    ],
    [
      '-o conflict without bidi',
      ['-N', 'j', '-d', data, '-r', mirror, '-o', 'conflict'],
      /applies to -K bidi/,
    ],
    [
      'an option not built yet',
      ['-N', 'j', '-d', data, '-r', mirror, '--min-rate', '1m'],
      /--min-rate is not supported yet/,
    ],
    ['-r equal to -d', ['-N', 'j', '-d', data, '-r', data], /are the same/],
    [
      '-r inside -d',
      ['-N', 'j', '-d', data, '-r', join(data, 'd')],
      /peer directory is inside the local directory/,
    ],
    [
      '-d inside -r',
      ['-N', 'j', '-d', join(data, 'd'), '-r', data],
      /local directory is inside the peer directory/,
    ],
    [
      '--opt=value form works for errors too',
      ['--name=j', `--local-dir=${data}`, `--remote-dir=${mirror}`, '--target-rate=0'],
      /--target-rate '0'/,
    ],
  ];
  for (const [title, args, message] of cases) {
    test(title, () => {
      const before = describeTree(data);
      const r = asyncCli(args);
      assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.deepEqual(describeTree(data), before);
      assert.deepEqual(describeTree(mirror), {});
    });
  }

  test('-h prints the option table, -A the version', () => {
    const h = asyncCli(['-h']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /-N, --name <name>/);
    assert.match(h.stdout, /--preserve-acls/);
    const v = asyncCli(['-A']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^async \d+\.\d+\.\d+/);
  });
});

describe('session and database errors exit 3', () => {
  test('a local directory that does not exist', () => {
    const { root, mirror } = dirs();
    const r = asyncCli(['-N', 'j', '-d', join(root, 'nope'), '-r', mirror]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /Local directory .*nope does not exist/);
  });

  test('a peer directory that does not exist, unless --create-dir', () => {
    const { root, data } = dirs();
    let r = asyncCli(['-N', 'j', '-d', data, '-r', join(root, 'new')]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /Remote directory .*new does not exist[\s\S]*--create-dir/);
    r = asyncCli(['-N', 'j', '-d', data, '-r', join(root, 'new'), '--create-dir']);
    assert.equal(r.code, 0, r.stderr);
  });

  test('a snapshot database that is not SQLite is reported with its path', () => {
    const { data, mirror } = dirs();
    assert.equal(asyncCli(['-N', 'j', '-d', data, '-r', mirror]).code, 0);
    const db = join(mirror, '.private-asp/j/snap.db');
    writeFileSync(db, 'this is not a database, just some garbage bytes'.repeat(200));
    for (const suffix of ['-wal', '-shm']) writeFileSync(db + suffix, '');
    const r = asyncCli(['-N', 'j', '-d', data, '-r', mirror]);
    assert.equal(r.code, 3);
    assert.match(
      r.stderr,
      new RegExp(`${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*(not a database|Corrupt)`),
    );
    // --reset rebuilds it.
    assert.equal(asyncCli(['-N', 'j', '-d', data, '-r', mirror, '-x']).code, 0);
  });

  test('a database on one side only', () => {
    const { data, mirror } = dirs();
    assert.equal(asyncCli(['-N', 'j', '-d', data, '-r', mirror]).code, 0);
    const other = join(mirror, '..', 'other');
    mkdirSync(other);
    const r = asyncCli(['-N', 'j', '-d', data, '-r', other]);
    assert.equal(r.code, 3);
    assert.match(
      r.stderr,
      /Local snapshot DB exists but remote snapshot DB .*other.*does not exist/,
    );
  });

  test('the same name reused for other directories', () => {
    const { root, data, mirror } = dirs();
    const shared = join(root, 'dbs');
    mkdirSync(shared);
    assert.equal(asyncCli(['-N', 'j', '-d', data, '-r', mirror, '-b', shared]).code, 0);
    const data2 = join(root, 'data2');
    mkdirSync(data2);
    const r = asyncCli(['-N', 'j', '-d', data2, '-r', mirror, '-b', shared]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /belongs to local directory '.*data', not '.*data2'/);
    assert.match(r.stderr, /another session name/);
    assert.deepEqual(describeTree(data2), {});
  });

  test('the direction changed between runs', () => {
    const { data, mirror } = dirs();
    assert.equal(asyncCli(['-N', 'j', '-d', data, '-r', mirror, '-K', 'push']).code, 0);
    const r = asyncCli(['-N', 'j', '-d', data, '-r', mirror, '-K', 'pull']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /was run with direction push; this run asks for pull/);
    assert.match(r.stderr, /-x\/--reset/);
  });

  test('-b inside the synced directory is refused', () => {
    const { data, mirror } = dirs();
    const r = asyncCli(['-N', 'j', '-d', data, '-r', mirror, '-b', join(data, 'd')]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /Database directory .* is inside the synced directory/);
  });

  test('the sending root emptied while its snapshot lists files: safety halt, nothing deleted', () => {
    const { data, mirror } = dirs();
    assert.equal(asyncCli(['-N', 'j', '-d', data, '-r', mirror]).code, 0);
    const before = describeTree(mirror);
    for (const p of ['a.txt', 'd/b.txt']) writeFileSync(join(data, p), '');
    rmSync(join(data, 'a.txt'));
    rmSync(join(data, 'd'), { recursive: true });
    const r = asyncCli(['-N', 'j', '-d', data, '-r', mirror]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /Safety halt/);
    assert.deepEqual(describeTree(mirror), before);
  });
});

describe('per-path failures exit 1 and the rest still syncs', () => {
  test('a receiver directory in the way of a file is an error; the others sync', () => {
    const { data, mirror } = dirs();
    writeTree(mirror, { 'blocked/untracked.txt': 'receiver data' });
    writeFileSync(join(data, 'blocked'), 'a file at the sender');
    const r = asyncCli(['-N', 'j', '-d', data, '-r', mirror]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error: blocked: /);
    assert.match(r.stdout, /1 errors/);
    const tree = describeTree(mirror);
    assert.equal(tree['a.txt']?.kind, 'file');
    assert.equal(tree['blocked/untracked.txt']?.kind, 'file', 'receiver data is kept');
  });

  test('an unreadable file is an Error record; the others sync', () => {
    // Root reads every file, so as root the run drops to the unprivileged user nobody.
    const { root, data, mirror } = dirs();
    writeFileSync(join(data, 'secret'), 'no');
    const as = isRoot() ? { uid: 65534, gid: 65534 } : undefined;
    if (as) {
      chmodSync(root, 0o755);
      for (const p of [
        data,
        mirror,
        join(data, 'a.txt'),
        join(data, 'd'),
        join(data, 'd/b.txt'),
        join(data, 'secret'),
      ]) {
        chownSync(p, as.uid, as.gid);
      }
    }
    chmodSync(join(data, 'secret'), 0);
    const r = asyncCli(['-N', 'j', '-d', data, '-r', mirror], as ? { as } : {});
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error: secret: .*permission denied/);
    assert.equal(describeTree(mirror)['a.txt']?.kind, 'file');
    assert.equal(describeTree(mirror)['secret'], undefined);
    // The error is recorded, and retried (and fixed) by the next run.
    chmodSync(join(data, 'secret'), 0o644);
    const again = asyncCli(['-N', 'j', '-d', data, '-r', mirror], as ? { as } : {});
    assert.equal(again.code, 0, again.stderr);
    assert.equal(describeTree(mirror)['secret']?.kind, 'file');
  });
});
