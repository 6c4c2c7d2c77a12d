/**
 * Metadata through the real CLI: modes, modification and access times, owner and group
 * (when running as root), extended attributes and POSIX ACLs, --ignore-mode; attribute-only
 * changes travel without the file's data; a file system that refuses xattrs gives a warning
 * and the file still syncs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  UNDER_BUNDLE,
  asyncCli,
  describeTree,
  isRoot,
  tmp,
  syncPair,
  assertSameTree,
} from '../helpers.js';

const xattr = createRequire(import.meta.url)('@napi-rs/xattr') as {
  setAttributeSync(p: string, n: string, v: Buffer): void;
  getAttributeSync(p: string, n: string): Buffer | null;
  listAttributesSync(p: string): string[];
};

function setup(files: Record<string, string> = { 'a.txt': 'alpha', 'd/b.txt': 'beta' }) {
  return syncPair(files);
}

const run = (data: string, mirror: string, ...args: string[]) =>
  asyncCli(['-N', 'm', '-d', data, '-r', mirror, ...args]);

const sent = (stdout: string): number => Number(/(\d+) files/.exec(stdout)![1]);

/** A POSIX ACL as Linux stores it in system.posix_acl_access (version 2, 8-byte entries). */
function aclBytes(extraUid: number): Buffer {
  const e = (tag: number, perm: number, id: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt16LE(tag, 0);
    b.writeUInt16LE(perm, 2);
    b.writeUInt32LE(id, 4);
    return b;
  };
  const head = Buffer.alloc(4);
  head.writeUInt32LE(2, 0);
  const any = 0xffffffff;
  return Buffer.concat([
    head,
    e(1, 6, any),
    e(2, 4, extraUid),
    e(4, 4, any),
    e(0x10, 4, any),
    e(0x20, 4, any),
  ]);
}

describe('metadata', () => {
  test('modes always, -t modification times, --preserve-access-time access times', () => {
    const { data, mirror } = setup();
    chmodSync(join(data, 'a.txt'), 0o640);
    chmodSync(join(data, 'd'), 0o750);
    utimesSync(
      join(data, 'a.txt'),
      new Date('2001-02-03T04:05:06Z'),
      new Date('2002-03-04T05:06:07Z'),
    );
    const r = run(data, mirror, '-t', '--preserve-access-time');
    assert.equal(r.code, 0, r.stderr);
    // Checked before anything reads the copy (reading would move its access time).
    const st = statSync(join(mirror, 'a.txt'));
    assert.equal(st.mtime.toISOString(), '2002-03-04T05:06:07.000Z');
    assert.equal(st.atime.toISOString(), '2001-02-03T04:05:06.000Z');
    assertSameTree(mirror, data);
    assert.equal(statSync(join(mirror, 'd')).mode & 0o777, 0o750);
  });

  test('mode-only and time-only changes propagate without sending data', () => {
    const { data, mirror } = setup();
    assert.equal(run(data, mirror, '-t').code, 0);
    chmodSync(join(data, 'a.txt'), 0o600);
    utimesSync(join(data, 'd/b.txt'), new Date(), new Date('2010-01-01T00:00:00Z'));
    const r = run(data, mirror, '-t');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sent(r.stdout), 0);
    assert.match(r.stdout, /2 metadata only/);
    assertSameTree(mirror, data);
  });

  test('--ignore-mode: permission bits are neither sent nor compared', () => {
    const { data, mirror } = setup();
    chmodSync(join(data, 'a.txt'), 0o600);
    const r = run(data, mirror, '--ignore-mode');
    assert.equal(r.code, 0, r.stderr);
    const umask = process.umask();
    assert.equal(statSync(join(mirror, 'a.txt')).mode & 0o777, 0o666 & ~umask);
    chmodSync(join(mirror, 'a.txt'), 0o604);
    chmodSync(join(data, 'a.txt'), 0o700);
    const r2 = run(data, mirror, '--ignore-mode');
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(sent(r2.stdout), 0);
    assert.equal(statSync(join(mirror, 'a.txt')).mode & 0o777, 0o604);
  });

  test('-u -j preserve owner and group (as root)', { skip: !isRoot() && 'needs root' }, () => {
    const { data, mirror } = setup();
    chownSync(join(data, 'a.txt'), 1234, 5678);
    chownSync(join(data, 'd'), 4321, 8765);
    const r = run(data, mirror, '-u', '-j');
    assert.equal(r.code, 0, r.stderr);
    const st = statSync(join(mirror, 'a.txt'));
    assert.deepEqual([st.uid, st.gid], [1234, 5678]);
    const sd = statSync(join(mirror, 'd'));
    assert.deepEqual([sd.uid, sd.gid], [4321, 8765]);
    // Without -u/-j, placed files belong to the receiving user.
    const other = join(mirror, '..', 'plain');
    mkdirSync(other);
    assert.equal(asyncCli(['-N', 'p', '-d', data, '-r', other]).code, 0);
    assert.equal(statSync(join(other, 'a.txt')).uid, process.getuid!());
  });

  test(
    '-u -j keep set-user/group-ID bits, which a chown clears (as root)',
    { skip: !isRoot() && 'needs root' },
    () => {
      // A small file (created by a pool worker) and one of several pieces (placed by the
      // receiver's own thread).
      const { data, mirror } = setup({ small: 'x', big: 'y'.repeat(5 * 1024 * 1024) });
      for (const f of ['small', 'big']) {
        chownSync(join(data, f), 1234, 5678);
        chmodSync(join(data, f), 0o6755);
      }
      const r = run(data, mirror, '-u', '-j');
      assert.equal(r.code, 0, r.stderr);
      for (const f of ['small', 'big']) {
        const st = statSync(join(mirror, f));
        assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1234, 5678, 0o6755], f);
      }
      // A new owner alone: the receiver sets it in place, and the bits again.
      chownSync(join(data, 'small'), 1111, 2222);
      chmodSync(join(data, 'small'), 0o6755);
      const r2 = run(data, mirror, '-u', '-j');
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(sent(r2.stdout), 0);
      const st = statSync(join(mirror, 'small'));
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1111, 2222, 0o6755]);
    },
  );

  test(
    'the native-free bundle refuses --preserve-xattrs and --preserve-acls up front (exit 2)',
    { skip: !UNDER_BUNDLE && 'only the native-free bundle lacks the xattr module' },
    () => {
      const { data, mirror } = setup();
      for (const opt of ['--preserve-xattrs', '--preserve-acls']) {
        const r = run(data, mirror, opt);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`${opt} needs the @napi-rs/xattr native module`));
        assert.doesNotMatch(r.stderr, /internal error/);
      }
      assert.deepEqual(describeTree(mirror), {});
    },
  );

  test(
    '--preserve-xattrs and --preserve-acls; attribute-only changes send no data',
    { skip: UNDER_BUNDLE && 'the native-free bundle has no xattr module' },
    () => {
      const { data, mirror } = setup();
      const a = join(data, 'a.txt');
      xattr.setAttributeSync(a, 'user.color', Buffer.from('blue'));
      xattr.setAttributeSync(join(data, 'd'), 'user.kind', Buffer.from([0, 1, 2, 255]));
      xattr.setAttributeSync(a, 'system.posix_acl_access', aclBytes(4242));
      const r = run(data, mirror, '--preserve-xattrs', '--preserve-acls');
      assert.equal(r.code, 0, r.stderr);
      const m = join(mirror, 'a.txt');
      assert.equal(xattr.getAttributeSync(m, 'user.color')!.toString(), 'blue');
      assert.deepEqual(
        [...xattr.getAttributeSync(join(mirror, 'd'), 'user.kind')!],
        [0, 1, 2, 255],
      );
      assert.deepEqual(xattr.getAttributeSync(m, 'system.posix_acl_access'), aclBytes(4242));
      // A rerun is quiet; an xattr-only change travels as metadata, a removed one is removed.
      const r2 = run(data, mirror, '--preserve-xattrs', '--preserve-acls');
      assert.match(r2.stdout, /0 files .* 0 deleted, 0 errors/);
      xattr.setAttributeSync(a, 'user.color', Buffer.from('green'));
      xattr.setAttributeSync(a, 'user.size', Buffer.from('L'));
      const r3 = run(data, mirror, '--preserve-xattrs', '--preserve-acls');
      assert.equal(r3.code, 0, r3.stderr);
      assert.equal(sent(r3.stdout), 0);
      assert.match(r3.stdout, /1 metadata only/);
      assert.equal(xattr.getAttributeSync(m, 'user.color')!.toString(), 'green');
      assert.equal(xattr.getAttributeSync(m, 'user.size')!.toString(), 'L');
    },
  );

  test('without the options, xattrs and ACLs are not carried', () => {
    const { data, mirror } = setup();
    xattr.setAttributeSync(join(data, 'a.txt'), 'user.color', Buffer.from('blue'));
    assert.equal(run(data, mirror).code, 0);
    assert.deepEqual(
      xattr.listAttributesSync(join(mirror, 'a.txt')).filter((n) => n.startsWith('user.')),
      [],
    );
  });

  describe('a receiver that refuses xattrs (ramfs)', () => {
    const mnt = tmp('async-ramfs-');
    const mounted = isRoot() && spawnSync('mount', ['-t', 'ramfs', 'none', mnt]).status === 0;
    after(() => {
      if (mounted) spawnSync('umount', [mnt]);
    });
    test(
      'a warning names the attribute; the file still syncs (exit 0)',
      {
        skip:
          (!mounted && 'mounting a ramfs needs root') ||
          (UNDER_BUNDLE && 'the native-free bundle has no xattr module'),
      },
      () => {
        const { data } = setup();
        xattr.setAttributeSync(join(data, 'a.txt'), 'user.color', Buffer.from('blue'));
        const mirror = join(mnt, 'mirror');
        mkdirSync(mirror);
        const r = run(data, mirror, '--preserve-xattrs');
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stderr,
          /warning: a\.txt: extended attributes not preserved: user\.color \(operation not supported, EOPNOTSUPP\)/,
        );
        assert.deepEqual(describeTree(mirror), describeTree(data));
        // The rerun does not resend the data.
        const r2 = run(data, mirror, '--preserve-xattrs');
        assert.equal(r2.code, 0, r2.stderr);
        assert.equal(sent(r2.stdout), 0);
      },
    );
  });
});
