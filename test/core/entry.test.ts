/**
 * withDigest builds a file's entry with its digest as one literal (a spread-made entry was
 * slow to read in the snapshot's hot path); the result must be what the spread gives, with
 * every optional field of the entry kept.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Entry } from '../../src/core/entry.js';
import { withDigest } from '../../src/core/entry.js';

const file: Entry = {
  path: 'a/b.txt',
  kind: 'file',
  size: 3,
  mtimeMs: 1_700_000_000_000.5,
  mode: 0o644,
  ino: 12,
  uid: 1000,
  gid: 1000,
};

test('withDigest gives what a spread gives, for plain and decorated entries alike', () => {
  const cases: Entry[] = [
    file,
    { ...file, digest: 'old' },
    { ...file, xattrs: '{"user.a":"eA=="}' },
    { ...file, atimeMs: 1_600_000_000_000 },
    { ...file, kind: 'symlink', size: 0, target: 'b.txt' },
  ];
  for (const e of cases) {
    const got = withDigest(e, 'abc123');
    assert.deepEqual(got, { ...e, digest: 'abc123' });
    assert.equal(e.digest === 'abc123', false, 'the entry given is not changed');
  }
});
