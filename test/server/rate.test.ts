/**
 * -l over the daemon: a push paces its request bodies and a pull paces its reads (with
 * receive windows sized from the rate); both place every byte, once. Accuracy is measured
 * in bench/rate.ts, never in a timed test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeTree, tmp, writeTree } from '../helpers.js';
import type { Daemon } from './daemon.js';
import { asyncTo, startDaemon } from './daemon.js';

describe('-l through the daemon', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.stop());

  const tree = (): Record<string, Buffer> => ({
    'big.bin': randomBytes(5 * 1024 * 1024 + 77),
    'a.txt': randomBytes(1000),
    'd/b.txt': randomBytes(300 * 1024),
    'empty.txt': Buffer.alloc(0),
  });

  test('a paced push and a paced pull place every file whole', () => {
    const data = tmp();
    writeTree(data, tree());
    const server = join(d.root, 'alice', 'paced');
    mkdirSync(server, { recursive: true });
    let r = asyncTo(d, 'alice@127.0.0.1:/paced', ['-N', 'p', '-d', data, '-l', '400m', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(server), describeTree(data));
    const total = 5 * 1024 * 1024 + 77 + 1000 + 300 * 1024;
    assert.equal((JSON.parse(r.stdout) as { bytesSent: number }).bytesSent, total);

    const pulled = tmp();
    writeTree(server, { 'new.bin': randomBytes(2 * 1024 * 1024) });
    r = asyncTo(d, 'alice@127.0.0.1:/paced', [
      '-N',
      'q',
      '-d',
      pulled,
      '-K',
      'pull',
      '-l',
      '400m',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(pulled), describeTree(server));
    assert.equal(
      (JSON.parse(r.stdout) as { bytesSent: number }).bytesSent,
      total + 2 * 1024 * 1024,
    );
  });
});
