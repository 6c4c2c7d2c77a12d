/**
 * Server-side filters (a user's `filters` in the daemon's configuration): put before the
 * client's rules at both ends, for push, pull and bidi, through the real CLI against a real
 * daemon; enforced by the server against a client that leaves them out.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { asyncadminCli, describeTree, tmp, writeTree } from '../helpers.js';
import type { Daemon } from './daemon.js';
import { asyncTo, connectAsAlice, passwordHash, startDaemon } from './daemon.js';

const files = (root: string): string[] =>
  Object.entries(describeTree(root))
    .filter(([, v]) => v.kind === 'file')
    .map(([k]) => k)
    .sort();

/** The paths the client's snapshot holds (asyncadmin -f), whatever their state. */
const records = (dir: string, name: string): string[] =>
  asyncadminCli(['-d', dir, '-N', name, '-f'])
    .stdout.split('\n')
    .map((l) => l.split(/\s+/)[0]!)
    .filter((p) => p !== '');

describe('server-side filters', () => {
  let d: Daemon;
  let docroot: string;
  before(async () => {
    const base = tmp('async-daemon-');
    docroot = join(base, 'alice');
    mkdirSync(docroot, { recursive: true });
    d = await startDaemon({
      base,
      users: `[users.alice]\ndocroot = "${docroot}"\npassword = "${passwordHash()}"\nfilters = ["- *.tmp", "- /private/"]\n`,
    });
  });
  after(() => d.stop());

  function fresh(name: string): { data: string; serverDir: string; remote: string } {
    const data = tmp();
    const serverDir = join(docroot, name);
    mkdirSync(serverDir, { recursive: true });
    return { data, serverDir, remote: `alice@127.0.0.1:/${name}` };
  }

  test('push: excluded paths are neither sent nor recorded as synced at the client', () => {
    const { data, serverDir, remote } = fresh('push');
    writeTree(data, {
      'a.txt': 'a',
      'b.tmp': 'b',
      'd/c.tmp': 'c',
      'd/e.txt': 'e',
      'private/s.txt': 's',
      'sub/private/t.txt': 'not anchored: synced',
    });
    writeTree(serverDir, { 'old.tmp': 'the server keeps this', 'private/x': 'x' });
    let r = asyncTo(d, remote, ['-N', 'push', '-d', data, '--mirror']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(files(serverDir), [
      'a.txt',
      'd/e.txt',
      'old.tmp',
      'private/x',
      'sub/private/t.txt',
    ]);
    // The client applied the same rules: its snapshot holds nothing the server refused, so a
    // rerun sends nothing and fails nothing.
    const recs = records(data, 'push');
    assert.ok(recs.includes('a.txt'), recs.join(' '));
    for (const p of ['b.tmp', 'd/c.tmp', 'private', 'private/s.txt'])
      assert.ok(!recs.includes(p), `${p} not recorded`);
    r = asyncTo(d, remote, ['-N', 'push', '-d', data, '--mirror', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { filesSent: number; errors: unknown[] };
    assert.equal(j.filesSent, 0);
    assert.deepEqual(j.errors, []);
  });

  test("pull: the server's excluded files stay on the server; the client's are not deleted", () => {
    const { data, serverDir, remote } = fresh('pull');
    writeTree(serverDir, { 'a.txt': 'a', 'x.tmp': 'x', 'private/p.txt': 'p', 'd/y.tmp': 'y' });
    writeTree(data, { 'mine.tmp': 'local only' });
    const r = asyncTo(d, remote, ['-N', 'pull', '-d', data, '-K', 'pull', '--mirror']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(files(data), ['a.txt', 'mine.tmp']);
    assert.ok(existsSync(join(serverDir, 'x.tmp')));
  });

  test('bidi: excluded paths cross in neither direction', () => {
    const { data, serverDir, remote } = fresh('bidi');
    writeTree(data, { 'l.txt': 'l', 'l.tmp': 'l', 'private/l': 'l' });
    writeTree(serverDir, { 's.txt': 's', 's.tmp': 's', 'private/s': 's' });
    let r = asyncTo(d, remote, ['-N', 'bidi', '-d', data, '-K', 'bidi']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(files(data), ['l.tmp', 'l.txt', 'private/l', 's.txt']);
    assert.deepEqual(files(serverDir), ['l.txt', 'private/s', 's.tmp', 's.txt']);
    // Edits to excluded files on either side change nothing on the other.
    writeFileSync(join(data, 'l.tmp'), 'changed');
    writeFileSync(join(serverDir, 's.tmp'), 'changed');
    r = asyncTo(d, remote, ['-N', 'bidi', '-d', data, '-K', 'bidi', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { filesSent: number }).filesSent, 0);
  });

  test("the server's rules come first: a client --include cannot bring back what they exclude", () => {
    const { data, serverDir, remote } = fresh('order');
    writeTree(data, { 'a.txt': 'a', 'b.tmp': 'b', 'c.log': 'c' });
    const r = asyncTo(d, remote, [
      '-N',
      'order',
      '-d',
      data,
      '--include',
      '*.tmp',
      '--exclude',
      '*.log',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(files(serverDir), ['a.txt'], 'the client may narrow, not widen');
  });

  test('a rule added between runs leaves both copies alone; --clean-excluded drops the records', async () => {
    // A daemon of its own, first without rules, then restarted with one (same port and
    // certificate, so the client's pinned fingerprint still holds).
    const base = tmp('async-daemon-');
    const root = join(base, 'alice');
    mkdirSync(root, { recursive: true });
    const users = (rules: string) =>
      `[users.alice]\ndocroot = "${root}"\npassword = "${passwordHash()}"\n${rules}`;
    let d2 = await startDaemon({ base, users: users('') });
    const data = tmp();
    const serverDir = join(root, 'later');
    mkdirSync(serverDir);
    writeTree(data, { 'a.txt': 'a', 'b.tmp': 'b' });
    const run = (...args: string[]) =>
      asyncTo(d2, 'alice@127.0.0.1:/later', ['-N', 'later', '-d', data, '--mirror', ...args]);
    try {
      assert.equal(run().code, 0);
      assert.deepEqual(files(serverDir), ['a.txt', 'b.tmp']);
      await d2.stop();
      d2 = await startDaemon({ base, port: d2.port, users: users('filters = ["- *.tmp"]\n') });
      rmSync(join(data, 'b.tmp'));
      writeFileSync(join(data, 'c.tmp'), 'c');
      let r = run();
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(files(serverDir), ['a.txt', 'b.tmp'], 'excluded: not deleted, not sent');
      assert.ok(records(data, 'later').includes('b.tmp'), 'its record stays');
      r = run('--clean-excluded');
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!records(data, 'later').includes('b.tmp'), 'dropped by --clean-excluded');
      assert.deepEqual(files(serverDir), ['a.txt', 'b.tmp'], 'the file itself stays');
    } finally {
      await d2.stop();
    }
  });

  test('a client that leaves the rules out is refused every excluded path', async () => {
    const { serverDir } = fresh('hostile');
    writeTree(serverDir, { 'keep.tmp': 'secret', 'private/p.txt': 'secret', 'ok.txt': 'ok' });
    const ep = await connectAsAlice(d);
    try {
      const prepared = await ep.prepare({
        identity: {
          name: 'hostile',
          localDir: '/x',
          remoteDir: '/hostile',
          remoteHost: 'h',
          direction: 'push',
        },
        role: 'remote',
        dir: '/hostile',
        createDir: false,
        placement: { preserveMtime: false, preserveUid: false, preserveGid: false },
      });
      assert.deepEqual(prepared.filters, [
        { sign: '-', pattern: '*.tmp' },
        { sign: '-', pattern: '/private/' },
      ]);
      await ep.open({ reset: false });
      const scan = await ep.scan();
      assert.deepEqual(scan.changes.map((c) => c.path).sort(), ['ok.txt']);
      const entry = {
        path: 'keep.tmp',
        kind: 'file' as const,
        size: 6,
        mtimeMs: 0,
        mode: 0o644,
        ino: 0,
        uid: 0,
        gid: 0,
      };
      await assert.rejects(
        ep.read([{ entry, offset: 0, length: 6, index: 0, count: 1 }]),
        /refuses to send keep\.tmp: its rules for user 'alice' exclude it/,
      );
      await assert.rejects(ep.hash([entry]), /refuses to hash keep\.tmp/);
      await assert.rejects(
        ep.write({
          data: new Uint8Array(4),
          segments: [
            {
              entry: { ...entry, path: 'private/new.txt', size: 4 },
              offset: 0,
              length: 4,
              index: 0,
              count: 1,
              start: 0,
              pieces: [],
            },
          ],
        }),
        /refuses to place private\/new\.txt/,
      );
      assert.deepEqual(await ep.list('private'), []);
      assert.deepEqual(await ep.list('keep.tmp'), []);
      const res = await ep.apply([
        { op: 'delete', path: 'keep.tmp' },
        { op: 'delete', path: 'private' },
        { op: 'rename', from: 'ok.txt', path: 'moved.tmp', entry: { ...entry, path: 'moved.tmp' } },
        { op: 'mkdir', path: 'private/x', entry: { ...entry, path: 'private/x', kind: 'dir' } },
        // Called a file to slip past '/private/' (a rule for directories): a mkdir makes one.
        { op: 'mkdir', path: 'private', entry: { ...entry, path: 'private' } },
        { op: 'mkdir', path: 'fine', entry: { ...entry, path: 'fine', kind: 'dir', mode: 0o755 } },
      ]);
      assert.deepEqual(
        res.map((x) => x.ok),
        [false, false, false, false, false, true],
      );
      assert.match((res[0] as { message: string }).message, /refused by the server/);
      await ep.finish({ status: 'failed' });
    } finally {
      ep.close();
    }
    assert.equal(readFileSync(join(serverDir, 'keep.tmp'), 'utf8'), 'secret');
    assert.deepEqual(files(serverDir), ['keep.tmp', 'ok.txt', 'private/p.txt']);
    assert.ok(existsSync(join(serverDir, 'fine')));
  });
});
