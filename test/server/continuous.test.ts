/**
 * Continuous mode (-C) through the real CLI against a real daemon process: changes on
 * either side propagate while the session runs (the daemon's side through its watch
 * stream, with periodic rescans set far beyond the test so only the stream can explain
 * them), the daemon killed with SIGKILL and restarted on the same port is reconnected to
 * with a catch-up pass that resends nothing already in place, and a login refused after
 * the restart stops the session with the documented exit code. Every wait is for something
 * visible (a file at the peer, a line on stdout or stderr), never a fixed sleep.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  readFileSync,
  readdirSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  UNDER_BUNDLE,
  collectOutput,
  describeTree,
  tmp,
  waitForSession as waitFor,
  writeTree,
} from '../helpers.js';
import type { Running } from '../helpers.js';
import type { Daemon } from './daemon.js';
import { asyncMain } from '../../src/cli/async.js';
import {
  asyncTo,
  connectAsAlice,
  passwordHash,
  peerArgs,
  spawnAsyncTo,
  startDaemon,
} from './daemon.js';

// Periodic rescans far beyond the test: only change notification can explain a change
// propagated while the session runs.
const NO_RESCAN = ['--scan-interval', '3600', '--remote-scan-interval', '3600'];

/** The arguments of a continuous session `name` from `data`, 0.2 s cooloff. */
function watchArgs(name: string, data: string, extra: readonly string[] = []): string[] {
  return ['-N', name, '-d', data, '--create-dir', '-C', '--cooloff', '0.2', ...NO_RESCAN, ...extra];
}

/** That session, to alice's `dir` (created) on the daemon, as a child process. */
function watching(
  d: Daemon,
  dir: string,
  name: string,
  data: string,
  extra: readonly string[] = [],
): Running {
  return collectOutput(spawnAsyncTo(d, `alice@127.0.0.1:/${dir}`, watchArgs(name, data, extra)));
}

async function stop(r: Running, sig: NodeJS.Signals = 'SIGINT'): Promise<number> {
  if (r.proc.exitCode !== null) return r.proc.exitCode;
  const exited = once(r.proc, 'exit');
  r.proc.kill(sig);
  const [code] = (await exited) as [number | null];
  return code ?? -1;
}

async function exited(r: Running): Promise<number> {
  if (r.proc.exitCode !== null) return r.proc.exitCode;
  const [code] = (await once(r.proc, 'exit')) as [number | null];
  return code ?? -1;
}

/** Both trees alike (false while one does not exist yet). */
const same = (a: string, b: string) => (): boolean => {
  try {
    return JSON.stringify(describeTree(a)) === JSON.stringify(describeTree(b));
  } catch {
    return false;
  }
};

/** Lines "sent PATH" the session printed (one per file placed at the other side). */
const sentLines = (r: Running): string[] =>
  r
    .out()
    .split('\n')
    .filter((l) => / sent /.test(l))
    .map((l) => l.replace(/^.* sent /, ''));

// Event-driven: the native-free bundle has no native watcher (see test/cli/continuous.test.ts).
describe(
  'async -C with a peer daemon',
  { skip: UNDER_BUNDLE && 'the native-free bundle has no native watcher' },
  () => {
    test('push: create, modify, delete and rename while running; SIGINT exits 0', async () => {
      const d = await startDaemon();
      try {
        const data = tmp();
        writeTree(data, { 'seed.txt': 'seed', 'd/keep.txt': 'k', 'gone.txt': 'g' });
        const peer = join(d.root, 'alice', 'push');
        const r = watching(d, 'push', 'cp', data);
        await waitFor(r, 'the initial sync', same(data, peer));
        writeTree(data, { 'new/deep/a.txt': 'created while running' });
        writeFileSync(join(data, 'seed.txt'), 'modified');
        unlinkSync(join(data, 'gone.txt'));
        await waitFor(r, 'create, modify and delete', same(data, peer));
        renameSync(join(data, 'new/deep/a.txt'), join(data, 'd/a-moved.txt'));
        renameSync(join(data, 'd'), join(data, 'D'));
        await waitFor(r, 'the moves', same(data, peer));
        assert.equal(await stop(r, 'SIGINT'), 0, r.err());
        // Read once the session ended: a line is printed after the daemon confirmed, which
        // may come after the trees already look alike.
        assert.match(r.out(), /renamed D\/a-moved.txt|renamed D /);
        assert.match(r.out(), /stopped after \d+ passes/);
        // The databases were committed: a one-time run finds nothing to do.
        const again = asyncTo(d, 'alice@127.0.0.1:/push', ['-N', 'cp', '-d', data]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(
          again.stdout,
          / 0 files \(0 B\) sent, 0 dirs created, 0 renamed, 0 deleted, 0 errors/,
        );
      } finally {
        await d.stop();
      }
    });

    test('pull: a change at the daemon arrives through its watch stream, no rescan needed', async () => {
      const d = await startDaemon();
      try {
        const peer = join(d.root, 'alice', 'pull');
        writeTree(peer, { 'a.txt': 'a', 'sub/b.txt': 'b' });
        const data = tmp();
        const r = watching(d, 'pull', 'cl', data, ['-K', 'pull']);
        await waitFor(r, 'the initial sync', same(peer, data));
        writeTree(peer, { 'sub/new.txt': 'made on the server', 'c/d/e.txt': 'deep' });
        writeFileSync(join(peer, 'a.txt'), 'changed on the server');
        await waitFor(r, 'server-side create and modify', same(peer, data));
        unlinkSync(join(peer, 'sub/b.txt'));
        renameSync(join(peer, 'c'), join(peer, 'C'));
        await waitFor(r, 'server-side delete and rename', same(peer, data));
        assert.equal(await stop(r, 'SIGTERM'), 0, r.err());
      } finally {
        await d.stop();
      }
    });

    test('bidi: changes on both sides meet', async () => {
      const d = await startDaemon();
      try {
        const peer = join(d.root, 'alice', 'bidi');
        writeTree(peer, { 'server.txt': 's' });
        const data = tmp();
        writeTree(data, { 'client.txt': 'c' });
        const r = watching(d, 'bidi', 'cb', data, ['-K', 'bidi']);
        await waitFor(r, 'the initial sync', same(peer, data));
        writeTree(peer, { 'from-server/x.txt': 'x' });
        writeTree(data, { 'from-client/y.txt': 'y' });
        await waitFor(r, 'both sides', same(peer, data));
        assert.equal(readFileSync(join(data, 'from-server/x.txt'), 'utf8'), 'x');
        assert.equal(readFileSync(join(peer, 'from-client/y.txt'), 'utf8'), 'y');
        assert.equal(await stop(r), 0, r.err());
      } finally {
        await d.stop();
      }
    });

    test('the daemon killed with SIGKILL and restarted: reconnects, catches up, resends nothing', async () => {
      let d = await startDaemon();
      try {
        const data = tmp();
        const files: Record<string, string> = {};
        for (let i = 0; i < 40; i++) files[`d${i % 4}/f${i}.txt`] = `file ${i}`;
        writeTree(data, files);
        const peer = join(d.root, 'alice', 'rc');
        const r = watching(d, 'rc', 'rc', data, ['-K', 'bidi']);
        // A "sent" line is printed once the daemon confirmed, which may come after the
        // trees already look alike.
        await waitFor(r, 'the initial sync', () => same(data, peer)() && sentLines(r).length >= 40);
        assert.equal(sentLines(r).length, 40);
        const { port, root } = d;
        const down = once(d.proc, 'exit');
        d.proc.kill('SIGKILL');
        await down;
        await waitFor(r, 'the loss to be noticed', () => /lost the connection/.test(r.err()));
        // Changes on both sides while the daemon is down.
        writeTree(data, { 'while-down/local.txt': 'made while the daemon was down' });
        writeFileSync(join(data, 'd1/f1.txt'), 'modified while down');
        writeTree(peer, { 'while-down-server.txt': 'server side, daemon down' });
        d = await startDaemon({ base: root, port });
        await waitFor(r, 'the catch-up', () => {
          try {
            return (
              readFileSync(join(peer, 'while-down/local.txt'), 'utf8') ===
                'made while the daemon was down' &&
              readFileSync(join(data, 'while-down-server.txt'), 'utf8') ===
                'server side, daemon down' &&
              readFileSync(join(peer, 'd1/f1.txt'), 'utf8') === 'modified while down' &&
              sentLines(r).length >= 43
            );
          } catch {
            return false;
          }
        });
        assert.match(r.err(), /reconnected to the peer/);
        // Only what changed travelled after the reconnection: 40 at first, then 3.
        assert.deepEqual(sentLines(r).slice(40).sort(), [
          'd1/f1.txt',
          'while-down-server.txt',
          'while-down/local.txt',
        ]);
        // And the watch stream is back: a server-side change arrives without a rescan.
        writeTree(peer, { 'after.txt': 'after the restart' });
        await waitFor(r, 'a change after the restart', same(data, peer));
        assert.equal(await stop(r), 0, r.err());
      } finally {
        await d.stop();
      }
    });

    test('the connection cut while the daemon keeps running: reconnects and goes on', async () => {
      const d = await startDaemon();
      // A TCP relay between client and daemon whose connections the test can cut.
      const sockets = new Set<Socket>();
      const relay = createServer((c) => {
        const up = connect(d.port, '127.0.0.1');
        for (const s of [c, up]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        c.pipe(up).pipe(c);
      });
      await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
      const port = (relay.address() as AddressInfo).port;
      try {
        const data = tmp();
        writeTree(data, { 'a.txt': 'a' });
        const peer = join(d.root, 'alice', 'cut');
        const logs = tmp();
        const r = watching({ ...d, port }, 'cut', 'cut', data, ['-L', logs]);
        await waitFor(r, 'the initial sync', same(data, peer));
        for (const s of sockets) s.destroy();
        await waitFor(r, 'the loss to be noticed', () => /lost the connection/.test(r.err()));
        writeTree(data, { 'b.txt': 'made while cut' });
        await waitFor(r, 'the reconnection and catch-up', same(data, peer));
        assert.match(r.err(), /reconnected to the peer/);
        assert.equal(await stop(r), 0, r.err());
        // The retries are in the session log too.
        const log = readdirSync(logs)
          .map((f) => readFileSync(join(logs, f), 'utf8'))
          .join('');
        assert.match(log, /lost the connection to the peer/);
      } finally {
        relay.close();
        for (const s of sockets) s.destroy();
        await d.stop();
      }
    });

    test('on a terminal, the status line shows the peer unreachable and the retry', async () => {
      // asyncMain in this process, with a stderr that says it is a terminal.
      let d = await startDaemon();
      const ac = new AbortController();
      let out = '';
      let err = '';
      const io = {
        stdout: { write: (t: string) => void (out += t) },
        stderr: { isTTY: true, write: (t: string) => void (err += t) },
      };
      const saved = process.env.ASPERA_SCP_PASS;
      process.env.ASPERA_SCP_PASS = 'secret';
      const until = async (what: string, cond: () => boolean): Promise<void> => {
        const deadline = Date.now() + 20_000;
        while (!cond()) {
          if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}\n${out}\n${err}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      };
      try {
        const data = tmp();
        writeTree(data, { 'a.txt': 'a' });
        const peer = join(d.root, 'alice', 'tty');
        const run = asyncMain(
          [...peerArgs(d, 'alice@127.0.0.1:/tty'), ...watchArgs('tty', data)],
          io,
          ac.signal,
        );
        await until('the initial sync', same(data, peer));
        const { port, root } = d;
        const down = once(d.proc, 'exit');
        d.proc.kill('SIGKILL');
        await down;
        await until(
          'the status line',
          () =>
            // Redrawn in place: carriage return, erase line (ESC [ K), then the status.
            err.includes('\r\u001b[K') && /peer unreachable, retry 1 in 0\.5 s/.test(err),
        );
        d = await startDaemon({ base: root, port });
        await until('the reconnection', () => /reconnected to the peer/.test(err));
        ac.abort();
        assert.equal(await run, 0, err);
      } finally {
        if (saved === undefined) delete process.env.ASPERA_SCP_PASS;
        else process.env.ASPERA_SCP_PASS = saved;
        await d.stop();
      }
    });

    // The daemon stopped gracefully (SIGTERM ends the open watch stream instead of waiting
    // on it), then: restarted with something waiting cannot cure (exit 3 with its message),
    // or not restarted and the session stopped by the user meanwhile (exit 0).
    const afterStop: {
      what: string;
      users?: (root: string) => string;
      code: number;
      says: RegExp;
    }[] = [
      {
        what: "restarted with alice's password changed: the refused login stops it, exit 3",
        users: (root) =>
          `[users.alice]\ndocroot = "${join(root, 'alice')}"\npassword = "${passwordHash('another')}"\n`,
        code: 3,
        says: /Authentication failed/,
      },
      {
        what: 'restarted with sync disabled for alice: exit 3',
        users: (root) =>
          `[users.alice]\ndocroot = "${join(root, 'alice')}"\npassword = "${passwordHash()}"\nsync = false\n`,
        code: 3,
        says: /Sync is not enabled for user 'alice'/,
      },
      {
        what: 'not restarted; SIGINT while retrying exits 0',
        code: 0,
        says: /stopped after \d+ passes/,
      },
    ];
    for (const row of afterStop) {
      test(`the daemon stopped (SIGTERM) with a session watching, ${row.what}`, async () => {
        let d = await startDaemon();
        try {
          const data = tmp();
          writeTree(data, { 'a.txt': 'a' });
          const peer = join(d.root, 'alice', 'auth');
          const r = watching(d, 'auth', 'au', data);
          await waitFor(r, 'the initial sync', same(data, peer));
          const { port, root } = d;
          await d.stop();
          await waitFor(r, 'the loss to be noticed', () => /lost the connection/.test(r.err()));
          if (row.users) {
            d = await startDaemon({ base: root, port, users: row.users(root) });
            assert.equal(await exited(r), row.code, r.err());
          } else {
            await waitFor(r, 'a failed retry', () => /reconnection attempt 1 failed/.test(r.err()));
            assert.equal(await stop(r, 'SIGINT'), row.code, r.err());
          }
          assert.match(`${r.out()}${r.err()}`, row.says);
          assert.doesNotMatch(r.err(), /internal error|at .*\.js:\d+/);
        } finally {
          await d.stop();
        }
      });
    }

    test('a scoped scan never lists through a symbolic link planted at the server', async () => {
      const d = await startDaemon();
      const ep = await connectAsAlice(d);
      try {
        const dir = join(d.root, 'alice', 'sc');
        writeTree(dir, { 'real/a.txt': 'a' });
        const outside = tmp();
        writeTree(outside, { 'secret.txt': 'not yours' });
        await ep.prepare({
          identity: {
            name: 'sc',
            localDir: '/c',
            remoteDir: '/sc',
            remoteHost: 'h',
            direction: 'push',
          },
          role: 'remote',
          dir: '/sc',
          createDir: false,
          placement: { preserveMtime: true, preserveUid: false, preserveGid: false },
        });
        await ep.open({ reset: false });
        const first = await ep.scan();
        await ep.record(
          first.changes.map((c) => ({ kind: 'put', entry: c.new!, replaceBelow: false })),
        );
        // 'real' was a directory the snapshot knows; a local user swaps it for a link.
        renameSync(join(dir, 'real'), join(dir, 'was-real'));
        symlinkSync(outside, join(dir, 'real'));
        const scoped = await ep.scan({ dirs: ['real', 'real/deeper'] });
        const paths = scoped.changes.map((c) => c.path);
        assert.ok(!paths.some((p) => p.includes('secret')), `listed through the link: ${paths}`);
        assert.ok(paths.includes('real'), `the link itself shows as a change: ${paths}`);
        await assert.rejects(ep.scan({ dirs: ['../alice'] }), /refused/);
        await ep.finish({ status: 'ok' });
      } finally {
        ep.close();
        await d.stop();
      }
    });
  },
);
