import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  packReadOutcomes,
  packReadSegments,
  packWriteItems,
  packWriteOutcomes,
  unpackReadOutcomes,
  unpackReadSegments,
  unpackWriteItems,
  unpackWriteOutcomes,
} from '../../src/hash/task-codec.js';
import type { ReadOutcome, ReadSegment, WriteItem, WriteOutcome } from '../../src/hash/worker.js';

describe('packed pool tasks', () => {
  test('read segments and their outcomes come back equal', () => {
    const segs: ReadSegment[] = [
      {
        abs: '/t/a b/\u00e9\n.txt',
        offset: 0,
        length: 5,
        expect: { size: 5, mtimeMs: 1.5, ino: 2 ** 40 },
      },
      {
        abs: '/t/big',
        offset: 8 << 20,
        length: 4 << 20,
        expect: { size: 1e10, mtimeMs: 0, ino: 1 },
      },
    ];
    assert.deepEqual(unpackReadSegments(packReadSegments(segs)), segs);
    const outcomes: ReadOutcome[] = [
      { ok: true, start: 0, length: 5, pieces: ['00ff'] },
      { ok: true, start: 5, length: 0, pieces: [] },
      { ok: false, message: '', vanished: true },
      { ok: false, message: 'cannot read file: permission denied (EACCES)', vanished: false },
      { ok: true, start: 5, length: 8 << 20, pieces: ['aa', 'bb'] },
    ];
    assert.deepEqual(unpackReadOutcomes(packReadOutcomes(outcomes)), outcomes);
    // A message can never break the layout: a NUL in it is replaced.
    const [o] = unpackReadOutcomes(
      packReadOutcomes([{ ok: false, message: 'a\0b', vanished: false }]),
    );
    assert.deepEqual(o, { ok: false, message: 'a\uFFFDb', vanished: false });
  });

  test('write items and their outcomes come back equal', () => {
    const items: WriteItem[] = [
      { abs: '/c/1.part', offset: 0, start: 0, length: 3, pieces: ['01'] },
      { abs: '/c/2.part', offset: 4 << 20, start: 3, length: 9, pieces: ['02'] },
      {
        abs: '/c/3.part',
        offset: 0,
        start: 12,
        length: 0,
        pieces: [],
        create: { mode: 0o644, uid: -1, gid: -1 },
      },
      {
        abs: '/c/4.part',
        offset: 0,
        start: 12,
        length: 1,
        pieces: ['03'],
        create: { mode: 0o7777, mtimeMs: 1_700_000_000_123.25, atimeMs: 5, uid: 0, gid: 7 },
        placeAt: '/target/d/\u00e9 x',
      },
    ];
    assert.deepEqual(unpackWriteItems(packWriteItems(items)), items);
    const outcomes: WriteOutcome[] = [
      { ok: true },
      {
        ok: true,
        staged: { size: 1, mtimeMs: 2.5, mode: 0o600, ino: 3, uid: 4, gid: 5 },
        placed: true,
        digest: 'abcd',
      },
      { ok: true, staged: { size: 0, mtimeMs: 0, mode: 0, ino: 0, uid: 0, gid: 0 }, digest: '' },
      { ok: false, message: 'data did not match the sender digest', mismatch: true },
      { ok: false, message: 'ENOSPC', mismatch: false },
    ];
    assert.deepEqual(unpackWriteOutcomes(packWriteOutcomes(outcomes)), outcomes);
  });

  test('empty batches, and batches that do not add up', () => {
    assert.deepEqual(unpackReadSegments(packReadSegments([])), []);
    assert.deepEqual(unpackWriteItems(packWriteItems([])), []);
    assert.deepEqual(unpackReadOutcomes(packReadOutcomes([])), []);
    assert.deepEqual(unpackWriteOutcomes(packWriteOutcomes([])), []);
    const p = packWriteItems([{ abs: '/c/1', offset: 0, start: 0, length: 1, pieces: ['01'] }]);
    assert.throws(() => unpackWriteItems({ ...p, text: '\0/c/1' }), /fewer strings/);
    assert.throws(() => unpackWriteItems({ ...p, text: `${p.text}\0extra` }), /more strings/);
    assert.throws(() => unpackWriteItems({ ...p, nums: p.nums.slice(0, 3) }), /fewer numbers/);
    assert.throws(
      () =>
        packReadSegments([
          { abs: 'a\0b', offset: 0, length: 0, expect: { size: 0, mtimeMs: 0, ino: 0 } },
        ]),
      /NUL/,
    );
  });
});
