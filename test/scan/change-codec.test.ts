import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Change } from '../../src/core/change.js';
import type { Entry } from '../../src/core/entry.js';
import { packChanges, unpackChanges } from '../../src/scan/change-codec.js';

const file = (path: string, extra: Partial<Entry> = {}): Entry => ({
  path,
  kind: 'file',
  size: 12,
  mtimeMs: 1_700_000_000_123.456,
  mode: 0o644,
  ino: 2 ** 40 + 3,
  uid: 1000,
  gid: 100,
  ...extra,
});

describe('packed changes', () => {
  test('every shape of change comes back equal', () => {
    const changes: Change[] = [
      { path: 'a.txt', old: null, new: file('a.txt') },
      { path: 'gone', old: file('gone', { digest: '0123456789abcdef' }), new: null },
      { path: 'm', old: file('m'), new: file('m', { size: 0, mtimeMs: 0.5, mode: 0o7777 }) },
      { path: 'to/x', from: 'from/x', old: file('from/x'), new: file('to/x') },
      { path: 'd', old: null, new: { ...file('d'), kind: 'dir', size: 0 } },
      { path: 'l', old: null, new: { ...file('l'), kind: 'symlink', size: 0, target: '../a b' } },
      {
        path: 'x',
        old: null,
        new: file('x', { digest: 'ff', xattrs: '{"user.a":"AAE="}', atimeMs: 1.25 }),
      },
      // Names may hold newlines, non-ASCII text and what looks like a separator.
      { path: 'u/\u00e9\nn\u2028.txt', old: null, new: file('u/\u00e9\nn\u2028.txt') },
      { path: '', old: null, new: { ...file(''), kind: 'dir', size: 0 } },
      { path: 'never-synced', old: null, new: null },
    ];
    assert.deepEqual(unpackChanges(packChanges(changes)), changes);
  });

  test('no changes', () => {
    assert.deepEqual(unpackChanges(packChanges([])), []);
  });

  test('many changes grow the number buffer and keep their order', () => {
    const changes: Change[] = Array.from({ length: 5000 }, (_, i) => ({
      path: `d${i % 7}/f${i}`,
      old: i % 3 === 0 ? file(`d${i % 7}/f${i}`, { size: i }) : null,
      new: file(`d${i % 7}/f${i}`, { size: i + 1, atimeMs: i }),
    }));
    assert.deepEqual(unpackChanges(packChanges(changes)), changes);
  });

  test('a packed list that does not add up is refused', () => {
    const packed = packChanges([{ path: 'a', old: null, new: file('a') }]);
    assert.throws(() => unpackChanges({ ...packed, text: '\0a\0b' }), /more strings/);
    assert.throws(() => unpackChanges({ ...packed, text: 'a' }), /not made by PackWriter/);
    assert.throws(
      () => unpackChanges({ ...packed, nums: new Float64Array([1, 2, 0, 0, 0, 0, 0, 0, 0]) }),
      /bad entry flags/,
    );
    assert.throws(() => unpackChanges({ ...packed, nums: packed.nums.slice(0, 4) }), /fewer/);
  });
});
