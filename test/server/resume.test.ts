/**
 * Resume of big files through the peer daemon, with the real CLI: the client is killed with
 * SIGKILL in the middle of a big file, pushing (the daemon keeps the verified pieces in its
 * partial store) and pulling (the client's side keeps them, the daemon digests its pieces
 * for the skip), and the daemon itself is killed and restarted; each rerun sends fewer bytes
 * (--json) and the result is identical.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { heldPieceCount } from '../../src/endpoint/partial-store.js';
import { tmp } from '../helpers.js';
import type { Daemon } from './daemon.js';
import { asyncTo, collect, spawnAsyncTo, startDaemon, waitFor } from './daemon.js';

const PIECE = 4 * 1024 * 1024;
const SIZE = 16 * PIECE;

function sha256(abs: string): string {
  return createHash('sha256').update(readFileSync(abs)).digest('hex');
}

interface Json {
  bytesSent: number;
  bytesResumed: number;
  filesSent: number;
}

describe('resume of an interrupted big file through the daemon', () => {
  let d: Daemon;
  before(async () => {
    // A client killed while the daemon writes to it (pull) is noticed by an unanswered ping.
    process.env.ASYNC_SERVER_PING_SECONDS = '1';
    d = await startDaemon();
  });
  after(() => d.stop());

  /** Runs with -l, kills the client once `partial` holds 4 pieces; returns how many it holds. */
  async function killMidFile(session: string, args: string[], partial: string): Promise<number> {
    const child = spawnAsyncTo(d, `alice@127.0.0.1:/${session}`, [...args, '-l', '100m', '-q']);
    const exited = once(child, 'exit');
    await waitFor(() => heldPieceCount(partial) >= 4 || child.exitCode !== null);
    child.kill('SIGKILL');
    await exited;
    // The daemon ends the session as failed once it notices; the partial stays.
    await waitFor(() => new RegExp(`session ${session}: client went away`).test(d.log()));
    const held = heldPieceCount(partial);
    assert.ok(held >= 4 && held < SIZE / PIECE, `killed mid-file (${held} pieces held)`);
    return held;
  }

  function rerun(session: string, args: string[]): Json {
    const r = asyncTo(d, `alice@127.0.0.1:/${session}`, [...args, '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    return JSON.parse(r.stdout) as Json;
  }

  test('push: kill -9 of the client mid-file, the rerun resumes from what the daemon verified', async () => {
    const data = tmp();
    writeFileSync(join(data, 'big.bin'), randomBytes(SIZE));
    const peer = join(d.root, 'alice', 'rp');
    const args = ['-N', 'rp', '-d', data, '--create-dir'];
    const held = await killMidFile('rp', args, join(peer, '.private-asp', 'rp', 'partial'));
    assert.equal(existsSync(join(peer, 'big.bin')), false, 'no partial file at a final path');
    const r = rerun('rp', args);
    assert.equal(r.bytesResumed, held * PIECE);
    assert.equal(r.bytesSent, SIZE - held * PIECE);
    assert.equal(sha256(join(peer, 'big.bin')), sha256(join(data, 'big.bin')));
    assert.deepEqual(readdirSync(join(peer, '.private-asp', 'rp', 'partial')), []);
  });

  test('pull: kill -9 of the client mid-file, the rerun resumes from what the client verified', async () => {
    const served = join(d.root, 'alice', 'rl');
    mkdirSync(served, { recursive: true });
    writeFileSync(join(served, 'big.bin'), randomBytes(SIZE));
    const local = tmp();
    const args = ['-N', 'rl', '-d', local, '-K', 'pull'];
    const held = await killMidFile('rl', args, join(local, '.private-asp', 'rl', 'partial'));
    const r = rerun('rl', args);
    assert.equal(r.bytesResumed, held * PIECE);
    assert.equal(r.bytesSent, SIZE - held * PIECE);
    assert.equal(sha256(join(local, 'big.bin')), sha256(join(served, 'big.bin')));
  });

  test('kill -9 of the daemon mid-file: after a restart the rerun resumes', async () => {
    let k = await startDaemon();
    try {
      const data = tmp();
      writeFileSync(join(data, 'big.bin'), randomBytes(SIZE));
      const peer = join(k.root, 'alice', 'rk');
      const partial = join(peer, '.private-asp', 'rk', 'partial');
      const args = ['-N', 'rk', '-d', data, '--create-dir'];
      const child = spawnAsyncTo(k, 'alice@127.0.0.1:/rk', [...args, '-l', '100m', '-q']);
      const done = collect(child);
      await waitFor(() => heldPieceCount(partial) >= 4 || child.exitCode !== null);
      k.proc.kill('SIGKILL');
      const r = await done;
      assert.equal(r.code, 3, r.stderr);
      const held = heldPieceCount(partial);
      assert.ok(held >= 4 && held < SIZE / PIECE, `killed mid-file (${held} pieces held)`);
      k = await startDaemon({ base: k.root, port: k.port });
      const again = asyncTo(k, 'alice@127.0.0.1:/rk', [...args, '--json']);
      assert.equal(again.code, 0, again.stderr + again.stdout);
      const j = JSON.parse(again.stdout) as Json;
      assert.equal(j.bytesResumed, held * PIECE);
      assert.equal(sha256(join(peer, 'big.bin')), sha256(join(data, 'big.bin')));
    } finally {
      await k.stop();
    }
  });
});
