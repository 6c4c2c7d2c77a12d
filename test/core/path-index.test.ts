/** PathIndex: sub-tree questions answered from one sorted list. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PathIndex, ancestorsOf } from '../../src/core/path-index.js';

describe('PathIndex', () => {
  const idx = new PathIndex(['a-c', 'a/b', 'a', 'ab', 'a/b/c', 'z', 'a!x']);
  const rows: [string, boolean, boolean, string[]][] = [
    // dir, anyWithin, anyBelow, within
    ['a', true, true, ['a', 'a/b', 'a/b/c']],
    ['a/b', true, true, ['a/b', 'a/b/c']],
    ['a/b/c', true, false, ['a/b/c']],
    ['ab', true, false, ['ab']],
    ['b', false, false, []],
    ['a/x', false, false, []],
    ['', true, true, ['a', 'a/b', 'a/b/c', 'a!x', 'a-c', 'ab', 'z']],
  ];
  for (const [dir, within, below, list] of rows) {
    test(`'${dir}'`, () => {
      assert.equal(idx.anyWithin(dir), within);
      assert.equal(idx.anyBelow(dir), below);
      assert.deepEqual(idx.within(dir), list);
    });
  }
  test('ancestorsOf', () => {
    assert.deepEqual(ancestorsOf('a/b/c'), ['a/b', 'a']);
    assert.deepEqual(ancestorsOf('a'), []);
  });
});
