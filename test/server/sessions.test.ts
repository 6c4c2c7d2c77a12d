/**
 * Many sessions at once against one daemon, one run per session at a time, and kill -9 of
 * the client or of the server in the middle of a transfer: nothing half-placed, and the
 * rerun converges. Kills are triggered by what the run visibly did, never by a timer.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { asyncCli, describeTree, tmp, writeTree } from '../helpers.js';
import type { Daemon } from './daemon.js';
import { asyncTo, collect, spawnAsyncTo, startDaemon, waitFor, connectAsAlice } from './daemon.js';

function bigTree(): { dir: string; files: Record<string, Buffer> } {
  const dir = tmp();
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 200; i++)
    files[`s/d${i % 8}/f${i}.txt`] = Buffer.from(`small ${i} `.repeat(40));
  for (let i = 0; i < 3; i++) files[`big/b${i}.bin`] = Buffer.alloc(12 * 1024 * 1024 + i, i + 1);
  writeTree(dir, files);
  return { dir, files };
}

function assertWholeOrAbsent(root: string, files: Record<string, Buffer>): number {
  let n = 0;
  for (const [p, want] of Object.entries(files)) {
    const abs = join(root, p);
    if (!existsSync(abs)) continue;
    n++;
    assert.ok(readFileSync(abs).equals(want), `${p} is whole or absent`);
  }
  return n;
}

function countFiles(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile())
    .length;
}

describe('sessions on one daemon', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.stop());

  test('16 sessions at once, from 16 clients, all converge', async () => {
    const dirs = Array.from({ length: 16 }, (_, i) => {
      const dir = tmp();
      const files: Record<string, string> = {};
      for (let j = 0; j < 20; j++) files[`d${j % 3}/f${j}.txt`] = `session ${i} file ${j}`;
      writeTree(dir, files);
      return dir;
    });
    const runs = await Promise.all(
      dirs.map((dir, i) =>
        collect(
          spawnAsyncTo(d, `alice@127.0.0.1:/many/s${i}`, [
            '-N',
            `m${i}`,
            '-d',
            dir,
            '--create-dir',
          ]),
        ),
      ),
    );
    runs.forEach((r, i) => assert.equal(r.code, 0, `session ${i}: ${r.stderr}`));
    dirs.forEach((dir, i) =>
      assert.deepEqual(describeTree(join(d.root, 'alice', 'many', `s${i}`)), describeTree(dir)),
    );
  });

  test('a second run of the same session on the same directory is refused while the first runs', async () => {
    // The first run is held open in this process (deterministic: no race with a timer).
    const first = await connectAsAlice(d);
    try {
      const local = tmp();
      await first.prepare({
        identity: {
          name: 'busy',
          localDir: local,
          remoteDir: '/busy',
          remoteHost: '127.0.0.1',
          direction: 'push',
        },
        role: 'remote',
        dir: '/busy',
        createDir: true,
        placement: { preserveMtime: false, preserveUid: false, preserveGid: false },
      });
      await first.open({ reset: false });
      const second = asyncTo(d, 'alice@127.0.0.1:/busy', ['-N', 'busy', '-d', local, '-x']);
      assert.equal(second.code, 3, second.stderr);
      assert.match(
        second.stderr,
        /Session 'busy' is already running on the server for this directory/,
      );
      await first.finish({ status: 'ok' });
    } finally {
      first.close();
    }
    const { dir } = bigTree();
    const after = asyncTo(d, 'alice@127.0.0.1:/busy', ['-N', 'busy', '-d', dir, '-x']);
    assert.equal(after.code, 0, after.stderr);
  });

  test('kill -9 of the client mid-transfer: the server stays consistent, the rerun converges', async () => {
    const { dir, files } = bigTree();
    const peer = join(d.root, 'alice', 'kc');
    const child = spawnAsyncTo(d, 'alice@127.0.0.1:/kc', [
      '-N',
      'kc',
      '-d',
      dir,
      '--create-dir',
      '-l',
      '200m',
    ]);
    const exited = once(child, 'exit');
    await waitFor(() => countFiles(peer) > 20 || child.exitCode !== null);
    child.kill('SIGKILL');
    await exited;
    assertWholeOrAbsent(peer, files);
    // The server notices the lost connection and releases the session.
    await waitFor(() => /session kc: client went away/.test(d.log()));
    const r = asyncTo(d, 'alice@127.0.0.1:/kc', ['-N', 'kc', '-d', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(peer), describeTree(dir));
    const again = asyncTo(d, 'alice@127.0.0.1:/kc', ['-N', 'kc', '-d', dir]);
    assert.match(again.stdout, / 0 files \(0 B\) sent/);
  });

  test('plaintext h2c on loopback works for tests, and is refused for another host', async () => {
    const p = await startDaemon({ plaintext: true });
    try {
      const data = tmp();
      writeTree(data, { 'x.txt': 'x' });
      const r = asyncCli(
        [
          '-N',
          'pt',
          '-d',
          data,
          '-r',
          'alice@127.0.0.1:/pt',
          '-P',
          String(p.port),
          '--plaintext',
          '--create-dir',
        ],
        {
          env: { ASPERA_SCP_PASS: 'secret' },
        },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(describeTree(join(p.root, 'alice', 'pt')), describeTree(data));
      const far = asyncCli(['-N', 'pt', '-d', data, '-r', 'alice@example.org:/pt', '--plaintext']);
      assert.equal(far.code, 2);
      assert.match(far.stderr, /--plaintext is allowed with a loopback peer only/);
    } finally {
      await p.stop();
    }
  });
});

describe('a peer that stalls mid-transfer', () => {
  test('the client gives up with a clear message; once the peer is back the rerun converges', async () => {
    const d = await startDaemon();
    try {
      const { dir, files } = bigTree();
      const peer = join(d.root, 'alice', 'st');
      const child = spawnAsyncTo(
        d,
        'alice@127.0.0.1:/st',
        ['-N', 'st', '-d', dir, '--create-dir', '-l', '200m'],
        {
          ASPERA_SCP_PASS: 'secret',
          ASYNC_PEER_STALL_SECONDS: '1.5',
        },
      );
      const done = collect(child);
      await waitFor(() => countFiles(peer) > 20 || child.exitCode !== null);
      d.proc.kill('SIGSTOP');
      const r = await done;
      d.proc.kill('SIGCONT');
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /Peer .* stalled: nothing arrived for 2 s|Lost the connection/);
      assertWholeOrAbsent(peer, files);
      await waitFor(() => /session st: client went away/.test(d.log()));
      const again = asyncTo(d, 'alice@127.0.0.1:/st', ['-N', 'st', '-d', dir]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(describeTree(peer), describeTree(dir));
    } finally {
      await d.stop();
    }
  });
});

describe('kill -9 of the server mid-transfer', () => {
  test('the client stops with a clear message; after a restart the rerun converges', async () => {
    let d = await startDaemon();
    const { dir, files } = bigTree();
    const peer = join(d.root, 'alice', 'ks');
    const child = spawnAsyncTo(d, 'alice@127.0.0.1:/ks', [
      '-N',
      'ks',
      '-d',
      dir,
      '--create-dir',
      '-l',
      '200m',
    ]);
    const done = collect(child);
    await waitFor(() => countFiles(peer) > 20 || child.exitCode !== null);
    d.proc.kill('SIGKILL');
    const r = await done;
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /Lost the connection to peer|Peer .* stalled/);
    assertWholeOrAbsent(peer, files);
    // Same configuration, same port (the client pinned host:port).
    d = await startDaemon({ base: d.root, port: d.port });
    try {
      const again = asyncTo(d, 'alice@127.0.0.1:/ks', ['-N', 'ks', '-d', dir]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(describeTree(peer), describeTree(dir));
    } finally {
      await d.stop();
    }
  });
});
