/**
 * The features of the one-time and bidirectional issues through a real daemon: what the
 * server passes on from the client's session spec (dry run, filters, link mode, keep-dir,
 * mount signature) and bidi with its conflicts. The engine does not know the peer is
 * remote; these prove the wire and the server's checks carry everything.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeTree, tmp, writeTree } from '../helpers.js';
import type { Daemon } from './daemon.js';
import { asyncTo, startDaemon } from './daemon.js';

/** sha256 of every file below `root` (.private-asp included) and the stat of every path. */
function fingerprint(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(root)) return out;
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    const abs = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    const st = statSync(abs);
    out[abs] = e.isFile()
      ? `${createHash('sha256').update(readFileSync(abs)).digest('hex')}:${st.mtimeMs}`
      : `dir:${st.mtimeMs}`;
  }
  return out;
}

describe('one-time and bidi features over the daemon', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.stop());

  function fresh(name: string): { data: string; remote: string; serverDir: string } {
    const data = tmp();
    writeTree(data, { 'a.txt': 'alpha', 'logs/x.log': 'log', 'd/b.txt': 'beta' });
    const serverDir = join(d.root, 'alice', name);
    mkdirSync(serverDir, { recursive: true });
    return { data, remote: `alice@127.0.0.1:/${name}`, serverDir };
  }

  test('--dry-run changes nothing on the server, its database included', () => {
    const { data, remote, serverDir } = fresh('dry');
    assert.equal(asyncTo(d, remote, ['-N', 'dry', '-d', data]).code, 0);
    writeFileSync(join(data, 'new.txt'), 'new');
    rmSync(join(data, 'a.txt'));
    const before = fingerprint(serverDir);
    const r = asyncTo(d, remote, ['-N', 'dry', '-d', data, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, />f new\.txt/);
    assert.match(r.stdout, /\*deleting a\.txt/);
    assert.deepEqual(fingerprint(serverDir), before);
  });

  test('filters apply at the server too: excluded paths are neither sent nor deleted', () => {
    const { data, remote, serverDir } = fresh('filters');
    writeTree(serverDir, { 'logs/server-only.log': 'keep me' });
    const r = asyncTo(d, remote, ['-N', 'filters', '-d', data, '--exclude', '*.log', '--mirror']);
    assert.equal(r.code, 0, r.stderr);
    const tree = describeTree(serverDir);
    assert.equal(tree['a.txt']?.kind, 'file');
    assert.equal(tree['logs/x.log'], undefined, 'excluded: not sent');
    assert.equal(
      tree['logs/server-only.log']?.kind,
      'file',
      'excluded: never deleted, even by --mirror',
    );
  });

  test('-n follow is refused by the server; keep-dir and mount signature are confined to the docroot', () => {
    const { data, remote, serverDir } = fresh('confined');
    let r = asyncTo(d, remote, ['-N', 'confined', '-d', data, '-n', 'follow']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /does not follow symbolic links/);
    r = asyncTo(d, remote, ['-N', 'confined', '-d', data, '--keep-dir-remote', '/../../etc']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /refused by the server/);
    r = asyncTo(d, remote, ['-N', 'confined', '-d', data, '--remote-mount-signature', 'MOUNTED']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /mount signature .* is missing/);
    writeFileSync(join(serverDir, 'MOUNTED'), '');
    mkdirSync(join(d.root, 'alice', 'kept'), { recursive: true });
    r = asyncTo(d, remote, [
      '-N',
      'confined',
      '-d',
      data,
      '--remote-mount-signature',
      'MOUNTED',
      '--keep-dir-remote',
      '/kept',
    ]);
    assert.equal(r.code, 0, r.stderr);
    rmSync(join(data, 'a.txt'));
    r = asyncTo(d, remote, [
      '-N',
      'confined',
      '-d',
      data,
      '--remote-mount-signature',
      'MOUNTED',
      '--keep-dir-remote',
      '/kept',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(d.root, 'alice', 'kept', 'a.txt'), 'utf8'), 'alpha');
    assert.equal(existsSync(join(serverDir, 'a.txt')), false);
  });

  test('bidi through the daemon: changes flow both ways, a conflict exits 4', () => {
    const { data, remote, serverDir } = fresh('bidi');
    const args = ['-N', 'bidi', '-d', data, '-K', 'bidi'];
    let r = asyncTo(d, remote, args);
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(join(serverDir, 'from-server.txt'), 'server');
    writeFileSync(join(data, 'from-client.txt'), 'client');
    r = asyncTo(d, remote, args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(data, 'from-server.txt'), 'utf8'), 'server');
    assert.equal(readFileSync(join(serverDir, 'from-client.txt'), 'utf8'), 'client');
    writeFileSync(join(serverDir, 'a.txt'), 'server edit');
    writeFileSync(join(data, 'a.txt'), 'client edit, longer');
    r = asyncTo(d, remote, args);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stdout, /^\/a\.txt {3}CONFLICT$/m);
    assert.equal(readFileSync(join(serverDir, 'a.txt'), 'utf8'), 'server edit');
    assert.equal(readFileSync(join(data, 'a.txt'), 'utf8'), 'client edit, longer');
  });
});
