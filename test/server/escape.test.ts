/**
 * Every way out of the docroot, tried through the real CLI against a real daemon (and one
 * malicious client speaking the protocol directly): '..', absolute paths, symbolic links in
 * the peer path, links planted inside a synced tree, -B and -R outside the docroot. The
 * directory outside must never be read or written.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeTree, statTree, tmp, writeTree } from '../helpers.js';
import type { Daemon } from './daemon.js';
import { asyncTo, startDaemon, connectAsAlice } from './daemon.js';

describe('docroot confinement', () => {
  let d: Daemon;
  let docroot: string;
  let outside: string;
  let data: string;
  let before0: Record<string, string>;
  before(async () => {
    d = await startDaemon();
    docroot = join(d.root, 'alice');
    outside = join(d.root, 'outside');
    writeTree(outside, { 'secret.txt': 'top secret', 'sub/x.txt': 'x' });
    before0 = statTree(outside);
    data = tmp();
    writeTree(data, { 'a/x.txt': 'new content', 'b.txt': 'b' });
  });
  after(async () => {
    assert.deepEqual(statTree(outside), before0, 'the directory outside the docroot is untouched');
    await d.stop();
  });

  const push = (name: string, remote: string, extra: string[] = []) =>
    asyncTo(d, `alice@127.0.0.1:${remote}`, ['-N', name, '-d', data, '--create-dir', ...extra]);

  test("'..' in the peer path is refused", () => {
    const r = push('dots', '../outside');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /refused by the server: bad path segment '\.\.'/);
    const r2 = push('dots', '/a/../../outside');
    assert.equal(r2.code, 3);
  });

  test('an absolute peer path is inside the docroot', () => {
    const r = push('abs', join(outside, 'sub'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(join(docroot, outside, 'sub')), describeTree(data));
  });

  test('a symbolic link in the peer path is refused, at any depth', () => {
    symlinkSync(outside, join(docroot, 'link'));
    for (const p of ['/link', '/link/sub', 'link/new/deeper']) {
      const r = push('lnk', p);
      assert.equal(r.code, 3, p);
      assert.match(r.stderr, /'link' is a symbolic link; the server never follows links/);
    }
  });

  test('a link planted inside a synced tree is never written through', () => {
    assert.equal(push('plant', '/plant').code, 0);
    // Someone on the server swaps the directory a/ for a link to the outside.
    rmSync(join(docroot, 'plant', 'a'), { recursive: true });
    symlinkSync(join(outside, 'sub'), join(docroot, 'plant', 'a'));
    writeFileSync(join(data, 'a', 'x.txt'), 'changed at the client');
    const r = push('plant', '/plant');
    assert.notEqual(r.code, 0);
    assert.equal(readFileSync(join(outside, 'sub', 'x.txt'), 'utf8'), 'x');
    assert.ok(lstatSync(join(docroot, 'plant', 'a')).isSymbolicLink());
    writeFileSync(join(data, 'a', 'x.txt'), 'new content');
  });

  test('pulling a tree with a link to the outside copies the link, never what it points to', () => {
    mkdirSync(join(docroot, 'pl'));
    writeFileSync(join(docroot, 'pl', 'f.txt'), 'f');
    symlinkSync(outside, join(docroot, 'pl', 'out'));
    const local = join(tmp(), 'l');
    const r = asyncTo(d, 'alice@127.0.0.1:/pl', [
      '-N',
      'pl',
      '-d',
      local,
      '--create-dir',
      '-K',
      'pull',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lstatSync(join(local, 'out')).isSymbolicLink());
    assert.deepEqual(Object.keys(describeTree(local)).sort(), ['f.txt', 'out']);
  });

  test('-B and -R must be inside the docroot; inside, they are used', () => {
    const b = push('dbout', '/dbout', ['-B', '../outside']);
    assert.equal(b.code, 3);
    assert.match(b.stderr, /-B \.\.\/outside is refused by the server/);
    const r = push('logout', '/logout', ['-R', '../outside']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /-R \.\.\/outside is refused by the server/);
    const bl = push('dblink', '/dblink', ['-B', '/link']);
    assert.equal(bl.code, 3);
    mkdirSync(join(docroot, 'db'));
    const ok = push('dbin', '/dbin', ['-B', '/db', '-R', '/logs']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(existsSync(join(docroot, 'db', '.private-asp', 'dbin', 'snap.db')));
    assert.match(
      readFileSync(join(docroot, 'logs', 'async-server.log'), 'utf8'),
      /session dbin: finished \(ok\)/,
    );
  });

  test('a malicious client naming paths through links, or with .., is refused', async () => {
    mkdirSync(join(docroot, 'mal'));
    symlinkSync(outside, join(docroot, 'mal', 'l'));
    const ep = await connectAsAlice(d);
    try {
      await ep.prepare({
        identity: {
          name: 'mal',
          localDir: '/x',
          remoteDir: '/mal',
          remoteHost: 'h',
          direction: 'push',
        },
        role: 'remote',
        dir: '/mal',
        createDir: false,
        placement: { preserveMtime: false, preserveUid: false, preserveGid: false },
      });
      await ep.open({ reset: false });
      const entry = {
        path: 'l/secret.txt',
        kind: 'file' as const,
        size: 10,
        mtimeMs: 0,
        mode: 0o644,
        ino: 0,
        uid: 0,
        gid: 0,
      };
      await assert.rejects(
        ep.read([{ entry, offset: 0, length: 10, index: 0, count: 1 }]),
        /'l' is a symbolic link/,
      );
      await assert.rejects(ep.hash([entry]), /'l' is a symbolic link/);
      await assert.rejects(ep.list('l/sub'), /'l' is a symbolic link/);
      await assert.rejects(
        ep.apply([
          { op: 'mkdir', path: 'l/evil', entry: { ...entry, path: 'l/evil', kind: 'dir' } },
        ]),
        /'l' is a symbolic link/,
      );
      await assert.rejects(
        ep.write({
          data: new Uint8Array(0),
          segments: [
            {
              entry: { ...entry, path: '../evil', size: 0 },
              offset: 0,
              length: 0,
              index: 0,
              count: 1,
              start: 0,
              pieces: [],
            },
          ],
        }),
        /refused path/,
      );
      await ep.finish({ status: 'failed' });
    } finally {
      ep.close();
    }
    // A session name is a directory on the server: a crafted one is refused there too.
    const ep2 = await connectAsAlice(d);
    try {
      await assert.rejects(
        ep2.prepare({
          identity: {
            name: '../../../outside/x',
            localDir: '/x',
            remoteDir: '/mal',
            remoteHost: 'h',
            direction: 'push',
          },
          role: 'remote',
          dir: '/mal',
          createDir: false,
          placement: { preserveMtime: false, preserveUid: false, preserveGid: false },
        }),
        /Invalid session name/,
      );
    } finally {
      ep2.close();
    }
    // A client speaking garbage does not disturb the daemon.
    await new Promise<void>((resolve) => {
      const s = connect(d.port, '127.0.0.1', () =>
        s.end('GET / HTTP/1.1\r\n\r\n\u0000\u0001garbage'),
      );
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    assert.equal(push('after', '/after').code, 0);
  });
});
