/**
 * Continuous mode (-C) through the real CLI against a local peer: the session is spawned,
 * changes are made while it runs, and each test waits for what it expects to be visible at
 * the peer (polling with a deadline, never a fixed sleep), then stops the session with a
 * signal and checks the exit code and that a one-time rerun finds nothing left to do.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  ASYNC_BIN,
  asyncCli,
  collectOutput,
  describeTree,
  isRoot,
  spawnAsync,
  writeTree,
  UNDER_BUNDLE,
  syncPair,
  waitForSession as waitFor,
} from '../helpers.js';
import type { Running } from '../helpers.js';

function start(args: readonly string[]): Running {
  return collectOutput(spawnAsync(args));
}

/** Waits until the first full pass is done (its end is the first stdout line or nothing). */
async function started(r: Running, peerHas: () => boolean): Promise<void> {
  await waitFor(r, 'the initial sync', peerHas);
}

async function stop(r: Running, sig: NodeJS.Signals = 'SIGTERM'): Promise<number> {
  r.proc.kill(sig);
  const [code] = (await once(r.proc, 'exit')) as [number | null];
  return code ?? -1;
}

async function exited(r: Running): Promise<number> {
  if (r.proc.exitCode !== null) return r.proc.exitCode;
  const [code] = (await once(r.proc, 'exit')) as [number | null];
  return code ?? -1;
}

function pair(files: Record<string, string> = { 'seed.txt': 'seed' }): {
  data: string;
  mirror: string;
} {
  const { data, mirror } = syncPair(files);
  return { data, mirror };
}

const same = (a: string, b: string) => (): boolean =>
  JSON.stringify(describeTree(a)) === JSON.stringify(describeTree(b));

// The native-free bundle carries no native watcher (@parcel/watcher is an addon): there -C
// falls back to periodic rescans, which these event-driven tests do not wait for.
describe(
  'async -C (continuous, local peer)',
  { skip: UNDER_BUNDLE && 'the native-free bundle has no native watcher' },
  () => {
    test('propagates create, modify, delete and moves while running; SIGTERM exits 0', async () => {
      const { data, mirror } = pair({ 'seed.txt': 'seed', 'd/keep.txt': 'k', 'gone.txt': 'g' });
      const r = start(['-N', 'c1', '-d', data, '-r', mirror, '-C', '--cooloff', '0.2']);
      await started(r, same(data, mirror));
      // SIGHUP (log rotation) does not end the session.
      r.proc.kill('SIGHUP');

      writeTree(data, { 'new/deep/a.txt': 'created while running' });
      writeFileSync(join(data, 'seed.txt'), 'modified');
      unlinkSync(join(data, 'gone.txt'));
      await waitFor(r, 'create, modify and delete', same(data, mirror));

      // A move of a file and of a directory: renames at the peer, not resends.
      const inoKeep = statSync(join(mirror, 'd/keep.txt')).ino;
      const inoA = statSync(join(mirror, 'new/deep/a.txt')).ino;
      renameSync(join(data, 'new/deep/a.txt'), join(data, 'd/a-moved.txt'));
      renameSync(join(data, 'd'), join(data, 'D'));
      await waitFor(r, 'the moves', same(data, mirror));
      assert.equal(
        statSync(join(mirror, 'D/keep.txt')).ino,
        inoKeep,
        'directory renamed at the peer',
      );
      assert.equal(statSync(join(mirror, 'D/a-moved.txt')).ino, inoA, 'file renamed at the peer');

      assert.equal(await stop(r), 0, r.err());
      assert.match(r.out(), /renamed D \(from d\)/);
      assert.match(r.out(), /stopped after \d+ passes/);
      assert.doesNotMatch(r.err(), /error/i);
      // The databases were committed: a one-time rerun finds nothing to do.
      const again = asyncCli(['-N', 'c1', '-d', data, '-r', mirror]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /0 files \(0 B\) sent, 0 dirs created, 0 renamed, 0 deleted/);
    });

    test('a burst of 400 files arrives, each exactly once; SIGINT exits 0', async () => {
      const { data, mirror } = pair();
      const r = start(['-N', 'c2', '-d', data, '-r', mirror, '-C', '--cooloff', '0.2']);
      await started(r, same(data, mirror));
      const burst: Record<string, string> = {};
      for (let i = 0; i < 400; i++) burst[`burst/d${i % 7}/f${i}.txt`] = `file ${i}`;
      writeTree(data, burst);
      await waitFor(r, 'the burst', same(data, mirror));
      assert.equal(await stop(r, 'SIGINT'), 0, r.err());
      const sent = r.out().match(/: sent burst\/\S+/g) ?? [];
      assert.equal(sent.length, 400, 'each file sent once');
      assert.equal(new Set(sent).size, 400);
    });

    test('--pending-max exceeded: one full rescan of that side, and everything arrives', async () => {
      const { data, mirror } = pair();
      const r = start(
        // A cooloff long enough that the 60 files are pending together even when writing them
        // is slow (a loaded machine): with 0.2 s, early files were sent before the last came.
        ['-N', 'c11', '-d', data, '-r', mirror, '-C', '--cooloff', '1.5'].concat([
          '--pending-max',
          '5',
        ]),
      );
      await started(r, same(data, mirror));
      const burst: Record<string, string> = {};
      for (let i = 0; i < 60; i++) burst[`many/f${i}.txt`] = `file ${i}`;
      writeTree(data, burst);
      await waitFor(r, 'the burst', same(data, mirror));
      assert.equal(await stop(r), 0, r.err());
      assert.match(r.err(), /more than 5 paths changed on the local side/);
      assert.equal((r.out().match(/: sent many\/\S+/g) ?? []).length, 60);
    });

    test('cooloff: a file written repeatedly is sent once, with its last content', async () => {
      const { data, mirror } = pair();
      const r = start(['-N', 'c3', '-d', data, '-r', mirror, '-C', '--cooloff', '1']);
      await started(r, same(data, mirror));
      const f = join(data, 'growing.log');
      for (let i = 0; i < 8; i++) {
        writeFileSync(f, `line\n`.repeat(i + 1));
        // Writes closer together than the cooloff (a tenth of it).
        await new Promise((res) => setTimeout(res, 100));
      }
      await waitFor(r, 'the settled file', same(data, mirror));
      assert.equal(readFileSync(join(mirror, 'growing.log'), 'utf8'), 'line\n'.repeat(8));
      assert.equal(await stop(r), 0, r.err());
      assert.equal((r.out().match(/: sent growing\.log/g) ?? []).length, 1, r.out());
    });

    test('--cooloff-max reports a file that never settles; it is sent once it does', async () => {
      const { data, mirror } = pair();
      const r = start([
        '-N',
        'c4',
        '-d',
        data,
        '-r',
        mirror,
        '-C',
        '--cooloff',
        '0.5',
        '--cooloff-max',
        '1',
      ]);
      await started(r, same(data, mirror));
      const f = join(data, 'busy.txt');
      let n = 0;
      const writer = setInterval(() => writeFileSync(f, `rewrite ${++n}`), 100);
      try {
        await waitFor(r, 'the cooloff-max error', () => /busy\.txt: still changing/.test(r.err()));
        assert.ok(!existsSync(join(mirror, 'busy.txt')), 'not sent while it changes');
      } finally {
        clearInterval(writer);
      }
      await waitFor(r, 'the file once settled', same(data, mirror));
      assert.equal(await stop(r), 0, r.err());
    });

    test('pull: changes at the peer are watched and arrive', async () => {
      const { data, mirror } = pair({});
      writeTree(mirror, { 'remote.txt': 'r' });
      const r = start([
        '-N',
        'c5',
        '-d',
        data,
        '-r',
        mirror,
        '-K',
        'pull',
        '-C',
        '--cooloff',
        '0.2',
      ]);
      await started(r, same(mirror, data));
      writeTree(mirror, { 'sub/later.txt': 'later' });
      renameSync(join(mirror, 'remote.txt'), join(mirror, 'sub/remote.txt'));
      await waitFor(r, 'the pulled changes', same(mirror, data));
      assert.equal(await stop(r), 0, r.err());
    });

    test('bidi: changes on both sides propagate while running', async () => {
      const { data, mirror } = pair({ 'both.txt': 'b' });
      const r = start([
        '-N',
        'c10',
        '-d',
        data,
        '-r',
        mirror,
        '-K',
        'bidi',
        '-C',
        '--cooloff',
        '0.2',
      ]);
      await started(r, same(data, mirror));
      writeTree(data, { 'from-local.txt': 'l' });
      writeTree(mirror, { 'from-peer/p.txt': 'p' });
      await waitFor(
        r,
        'both directions',
        () => same(data, mirror)() && existsSync(join(data, 'from-peer/p.txt')),
      );
      assert.equal(await stop(r), 0, r.err());
    });

    test('a watched directory deleted while running: safety halt, nothing deleted at the peer', async () => {
      const { data, mirror } = pair({ 'a.txt': 'a', 'b/c.txt': 'c' });
      const r = start(['-N', 'c6', '-d', data, '-r', mirror, '-C', '--cooloff', '0.2']);
      await started(r, same(data, mirror));
      rmSync(data, { recursive: true, force: true });
      assert.equal(await exited(r), 3, r.err());
      assert.match(r.err(), /Safety halt/);
      assert.equal(readFileSync(join(mirror, 'b/c.txt'), 'utf8'), 'c');
    });

    test('the database deleted while running: stops with a message', async () => {
      const { data, mirror } = pair();
      const r = start(['-N', 'c7', '-d', data, '-r', mirror, '-C', '--cooloff', '0.2']);
      await started(r, same(data, mirror));
      rmSync(join(data, '.private-asp', 'c7', 'snap.db'));
      assert.equal(await exited(r), 3, r.err());
      assert.match(r.err(), /was deleted while the session was running/);
      assert.doesNotMatch(r.err(), /internal error|at .*\.js/);
    });

    // The kernel's watch limit, lowered for this process only: a user namespace has its own
    // (/proc/sys/user/max_inotify_watches), so the test changes nothing for the rest of the host.
    const userns = spawnSync('unshare', [
      '-U',
      '-r',
      'sh',
      '-c',
      'echo 3 > /proc/sys/user/max_inotify_watches',
    ]);
    test(
      'the watch limit reached: a message naming the sysctl, then periodic rescans',
      { skip: userns.status !== 0 ? 'needs unshare -U (user namespaces)' : false },
      async () => {
        const { data, mirror } = pair({ 'a/b/c/d/e.txt': 'deep' });
        const cmd = [process.execPath, ASYNC_BIN, '-N', 'c8', '-d', data, '-r', mirror, '-C']
          .concat(['--cooloff', '0.2', '--scan-interval', '0.5'])
          .map((a) => `'${a}'`)
          .join(' ');
        const proc = spawn(
          'unshare',
          ['-U', '-r', 'sh', '-c', `echo 3 > /proc/sys/user/max_inotify_watches && exec ${cmd}`],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        let err = '';
        proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
        proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
        const r: Running = { proc, out: () => out, err: () => err };
        await waitFor(r, 'the watch-limit message and its hint', () =>
          /sysctl -w fs\.inotify\.max_user_watches=/.test(err),
        );
        assert.match(err, /sysctl -w fs\.inotify\.max_user_watches=/);
        await started(r, same(data, mirror));
        writeTree(data, { 'a/b/later.txt': 'found by a rescan' });
        await waitFor(r, 'the rescan', same(data, mirror));
        assert.equal(await stop(r), 0, err);
      },
    );

    test(
      'a subtree made unreadable: errors for those paths, the rest goes on',
      { skip: isRoot() ? 'root reads every directory' : false },
      async () => {
        const { data, mirror } = pair({ 'locked/a.txt': 'a', 'open/b.txt': 'b' });
        const r = start(['-N', 'c9', '-d', data, '-r', mirror, '-C', '--cooloff', '0.2']);
        await started(r, same(data, mirror));
        chmodSync(join(data, 'locked'), 0o000);
        try {
          writeTree(data, { 'open/c.txt': 'c' });
          await waitFor(r, 'the readable change', () => existsSync(join(mirror, 'open/c.txt')));
          writeTree(data, { 'open/d.txt': 'd' });
          await waitFor(r, 'a later change', () => existsSync(join(mirror, 'open/d.txt')));
          assert.equal(readFileSync(join(mirror, 'locked/a.txt'), 'utf8'), 'a', 'not deleted');
        } finally {
          chmodSync(join(data, 'locked'), 0o755);
        }
        assert.equal(await stop(r), 0, r.err());
      },
    );

    const bad: [string, string[], RegExp][] = [
      ['--cooloff without -C', ['--cooloff', '1'], /--cooloff applies to continuous mode only/],
      ['a bad --cooloff', ['-C', '--cooloff', 'soon'], /Invalid --cooloff 'soon'/],
      ['a bad --pending-max', ['-C', '--pending-max', '0'], /Invalid --pending-max '0'/],
      [
        '--cooloff-max below --cooloff',
        ['-C', '--cooloff', '5', '--cooloff-max', '1'],
        /--cooloff-max must be at least --cooloff/,
      ],
    ];
    for (const [title, extra, want] of bad) {
      test(`usage error: ${title}`, () => {
        const { data, mirror } = pair();
        const res = asyncCli(['-N', 'u', '-d', data, '-r', mirror, ...extra]);
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr, want);
      });
    }
  },
);
