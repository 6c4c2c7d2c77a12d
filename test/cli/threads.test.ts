/**
 * --local-checksum-threads (the size of the worker pool that hashes, reads, writes and
 * places file data) and --transfer-threads (batches in flight) through the real CLI.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertSameTree, asyncCli, describeTree, syncPair } from '../helpers.js';

describe('--local-checksum-threads and --transfer-threads', () => {
  for (const [ct, tt] of [
    ['1', '1'],
    ['3', '8'],
  ] as const) {
    test(`a push with ${ct} worker thread(s) and ${tt} lane(s) places every file whole`, () => {
      const files: Record<string, string | Buffer> = {
        // More than one 4 MiB piece: written by several tasks at their offsets.
        'big.bin': Buffer.alloc(9 * 1024 * 1024 + 5, 3),
      };
      for (let i = 0; i < 300; i++) files[`d${i % 7}/f${i}.txt`] = `file ${i}`;
      const { data, mirror } = syncPair(files);
      const r = asyncCli([
        '-N',
        'thr',
        '-d',
        data,
        '-r',
        mirror,
        '-t',
        '--local-checksum-threads',
        ct,
        '--transfer-threads',
        tt,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assertSameTree(mirror, data);
      const again = asyncCli([
        '-N',
        'thr',
        '-d',
        data,
        '-r',
        mirror,
        '--json',
        '--local-checksum-threads',
        ct,
      ]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).filesSent, 0, 'the rerun finds nothing to send');
    });
  }

  test('an invalid --local-checksum-threads is a usage error naming the option (exit 2)', () => {
    const { data, mirror } = syncPair({ 'a.txt': 'a' });
    for (const bad of ['0', '65', 'many']) {
      const r = asyncCli(['-N', 'thr', '-d', data, '-r', mirror, '--local-checksum-threads', bad]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`--local-checksum-threads '${bad}'`));
      assert.deepEqual(describeTree(mirror), {});
    }
  });
});
