/** planBatches: small files many per batch, big files in pieces, resumed pieces left out. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry } from '../../src/core/entry.js';
import { CHUNK_SIZE } from '../../src/hash/digest.js';
import { isChunked, planBatches } from '../../src/transfer/batches.js';

function file(path: string, size: number): Entry {
  return { path, kind: 'file', size, mtimeMs: 1, mode: 0o644, ino: 1, uid: 0, gid: 0 };
}

describe('planBatches with resumed pieces', () => {
  const big = file('big', 5 * CHUNK_SIZE + 10);
  const rows: [string, number[], number[]][] = [
    ['nothing held: every piece', [], [0, 1, 2, 3, 4, 5]],
    ['held pieces are left out', [0, 1, 4], [2, 3, 5]],
    ['held pieces in any order', [5, 2], [0, 1, 3, 4]],
  ];
  for (const [name, skip, want] of rows) {
    test(name, () => {
      const segs = [
        ...planBatches([big, file('small', 3)], undefined, new Map([['big', skip]])),
      ].flat();
      const bigSegs = segs.filter((s) => s.entry.path === 'big');
      assert.deepEqual(
        bigSegs.map((s) => s.index),
        want,
      );
      for (const s of bigSegs) {
        assert.equal(s.count, 6, 'a segment keeps the full count');
        assert.equal(s.offset, s.index * CHUNK_SIZE);
        assert.equal(s.length, Math.min(CHUNK_SIZE, big.size - s.offset));
      }
      assert.equal(segs.filter((s) => s.entry.path === 'small').length, 1);
    });
  }
  test('only files of more than one piece are chunked', () => {
    assert.equal(isChunked(file('a', CHUNK_SIZE)), false);
    assert.equal(isChunked(file('a', CHUNK_SIZE + 1)), true);
  });
});
