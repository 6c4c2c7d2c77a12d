/**
 * Resume of big files with a local peer, through the real CLI: a run killed with SIGKILL in
 * the middle of a big file leaves its verified pieces in the receiver's partial store, and
 * the next run sends only the rest (the --json byte counts prove it) and places a file
 * identical to the source. A changed source, a piece damaged on disk, a reset and a file no
 * longer to be sent each get the safe outcome. The kill is triggered by the partial's
 * manifest (pieces marked held), never by a timer; -l slows the run so it lands mid-file.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { heldPieceCount } from '../../src/endpoint/partial-store.js';
import { asyncCli, spawnAsync, tmp } from '../helpers.js';

const PIECE = 4 * 1024 * 1024;
const SIZE = 16 * PIECE;

function sha256(abs: string): string {
  return createHash('sha256').update(readFileSync(abs)).digest('hex');
}

function fixture(): { data: string; mirror: string; src: string } {
  const root = tmp();
  const data = join(root, 'data');
  const mirror = join(root, 'mirror');
  mkdirSync(data);
  mkdirSync(mirror);
  const src = join(data, 'big.bin');
  writeFileSync(src, randomBytes(SIZE));
  // A whole-second mtime, so a test can put it back exactly after editing in place.
  utimesSync(src, 1_700_000_000, 1_700_000_000);
  return { data, mirror, src };
}

/** The partial store of session `k` at a receiver. */
function partialDir(receiver: string): string {
  return join(receiver, '.private-asp', 'k', 'partial');
}

function dataFile(dir: string): string {
  const f = readdirSync(dir).find((n) => n.endsWith('.data'));
  assert.ok(f, 'a partial data file is kept');
  return join(dir, f);
}

/** Starts a rate-limited run and kills it with SIGKILL once `pieces` are marked held. */
async function killMidFile(args: string[], dir: string, pieces = 4): Promise<number> {
  const child = spawnAsync(args);
  const exited = once(child, 'exit');
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (heldPieceCount(dir) >= pieces || child.exitCode !== null) {
        clearInterval(poll);
        resolve();
      }
    }, 5);
  });
  child.kill('SIGKILL');
  await exited;
  const held = heldPieceCount(dir);
  assert.ok(held >= pieces && held < SIZE / PIECE, `killed mid-file (${held} pieces held)`);
  return held;
}

interface Json {
  ok: boolean;
  filesSent: number;
  bytesSent: number;
  bytesResumed: number;
}

function runJson(args: string[]): Json {
  const r = asyncCli([...args, '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return JSON.parse(r.stdout) as Json;
}

describe('resume of an interrupted big file (local peer)', () => {
  test('killed mid-file: the rerun sends only the missing pieces and the result is identical', async () => {
    const { data, mirror, src } = fixture();
    const args = ['-N', 'k', '-d', data, '-r', mirror];
    const dir = partialDir(mirror);
    const held = await killMidFile([...args, '-l', '100m', '-q'], dir);
    assert.equal(existsSync(join(mirror, 'big.bin')), false, 'no partial file at a final path');
    // A dry run reads nothing of the partial and changes nothing in it.
    const before = readdirSync(dir).map((n) => `${n}:${statSync(join(dir, n)).mtimeMs}`);
    const dry = asyncCli([...args, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(
      readdirSync(dir).map((n) => `${n}:${statSync(join(dir, n)).mtimeMs}`),
      before,
    );
    const r = runJson(args);
    assert.equal(r.bytesResumed, held * PIECE);
    assert.equal(r.bytesSent, SIZE - held * PIECE);
    assert.equal(sha256(join(mirror, 'big.bin')), sha256(src));
    assert.deepEqual(readdirSync(dir), [], 'the partial is gone once placed');
    const again = runJson(args);
    assert.equal(again.filesSent, 0);
  });

  test('the source changed between the runs: the partial is discarded and the file sent in full', async () => {
    const { data, mirror, src } = fixture();
    const args = ['-N', 'k', '-d', data, '-r', mirror];
    await killMidFile([...args, '-l', '100m', '-q'], partialDir(mirror));
    writeFileSync(src, randomBytes(SIZE));
    const r = runJson(args);
    assert.equal(r.bytesResumed, 0);
    assert.equal(r.bytesSent, SIZE);
    assert.equal(sha256(join(mirror, 'big.bin')), sha256(src));
  });

  test('the source was edited in place with its mtime put back: the changed piece is sent again', async () => {
    const { data, mirror, src } = fixture();
    const args = ['-N', 'k', '-d', data, '-r', mirror];
    const dir = partialDir(mirror);
    await killMidFile([...args, '-l', '100m', '-q'], dir);
    // Same inode, size and mtime: only the piece digests tell that piece 0 changed.
    const fd = openSync(src, 'r+');
    writeSync(fd, Buffer.from('changed in place'), 0, 16, 100);
    closeSync(fd);
    utimesSync(src, 1_700_000_000, 1_700_000_000);
    const held = heldPieceCount(dir);
    const hasPiece0 = readFileSync(
      join(
        dir,
        readdirSync(dir).find((n) => n.endsWith('.manifest'))!,
      ),
      'utf8',
    ).includes('{"i":0,');
    const r = runJson(args);
    assert.equal(r.bytesResumed, (held - (hasPiece0 ? 1 : 0)) * PIECE);
    assert.equal(sha256(join(mirror, 'big.bin')), sha256(src));
  });

  test('a held piece damaged on disk is detected and sent again', async () => {
    const { data, mirror, src } = fixture();
    const args = ['-N', 'k', '-d', data, '-r', mirror];
    const dir = partialDir(mirror);
    const held = await killMidFile([...args, '-l', '100m', '-q'], dir);
    const manifest = readFileSync(
      join(
        dir,
        readdirSync(dir).find((n) => n.endsWith('.manifest'))!,
      ),
      'utf8',
    );
    const victim = Number(/\{"i":(\d+),/.exec(manifest)![1]);
    const fd = openSync(dataFile(dir), 'r+');
    writeSync(fd, Buffer.from('rot'), 0, 3, victim * PIECE + 1000);
    closeSync(fd);
    const r = runJson(args);
    assert.equal(r.bytesResumed, (held - 1) * PIECE);
    assert.equal(sha256(join(mirror, 'big.bin')), sha256(src));
  });

  test('-x/--reset discards partials; a partial of a file no longer sent is removed', async () => {
    const { data, mirror, src } = fixture();
    const args = ['-N', 'k', '-d', data, '-r', mirror];
    const dir = partialDir(mirror);
    await killMidFile([...args, '-l', '100m', '-q'], dir);
    const reset = runJson([...args, '-x']);
    assert.equal(reset.bytesResumed, 0);
    assert.equal(sha256(join(mirror, 'big.bin')), sha256(src));

    const other = fixture();
    const args2 = ['-N', 'k', '-d', other.data, '-r', other.mirror];
    await killMidFile([...args2, '-l', '100m', '-q'], partialDir(other.mirror));
    unlinkSync(other.src);
    const r = runJson(args2);
    assert.equal(r.bytesResumed, 0);
    assert.deepEqual(readdirSync(partialDir(other.mirror)), []);
  });
});
