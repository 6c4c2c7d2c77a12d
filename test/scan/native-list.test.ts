/**
 * The scan addon (src/native/fsscan.c) lists a directory and lstats every name in it in
 * one call. What it hands back must be what Node's readdirSync and lstatSync give, name for
 * name and number for number, sorted as JavaScript sorts; where it cannot do that (a name
 * that is not UTF-8, a directory it cannot read) it hands the directory back to Node's fs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  FIELD_ERRNO,
  FIELD_GID,
  FIELD_INO,
  FIELD_MODE,
  FIELD_MTIME_MS,
  FIELD_SIZE,
  FIELD_UID,
  NUMS,
  nativeListDir,
} from '../../src/scan/native-list.js';
import { tmp } from '../helpers.js';

const list = nativeListDir();

test('npm install built the scan addon and it loads', () => {
  assert.ok(list, 'src/native/build/Release/fsscan.node: run npm install to build it');
});

test('names sorted as Array.prototype.sort sorts them, each with its lstat numbers', () => {
  const dir = tmp();
  // UTF-8 byte order and UTF-16 order differ for an astral character against U+E000-U+FFFF.
  const names = [
    'b',
    'a',
    'B',
    '10',
    '9',
    '\u00e9',
    '\uE000x',
    '\uFF21',
    '\u{1F600}',
    '\u{1F600}a',
  ];
  for (const [i, n] of names.entries()) writeFileSync(join(dir, n), 'x'.repeat(i));
  mkdirSync(join(dir, 'sub'));
  symlinkSync('b', join(dir, 'link'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  // A fractional mtime: the addon computes mtimeMs as Node does, to the last bit.
  utimesSync(join(dir, 'a'), 1_700_000_000.123456, 1_700_000_000.987654);
  assertListed(dir);
});

/** The addon's listing of dir is Node's, sorted, with each name's lstat numbers. */
function assertListed(dir: string): void {
  const got = list!(dir)!;
  assert.deepEqual(got.names, readdirSync(dir).sort());
  assert.ok(got.nums.length >= got.names.length * NUMS);
  got.names.forEach((name, i) => {
    const st = lstatSync(join(dir, name));
    const at = i * NUMS;
    assert.deepEqual(
      [
        got.nums[at + FIELD_MODE],
        got.nums[at + FIELD_SIZE],
        got.nums[at + FIELD_MTIME_MS],
        got.nums[at + FIELD_INO],
        got.nums[at + FIELD_UID],
        got.nums[at + FIELD_GID],
        got.nums[at + FIELD_ERRNO],
      ],
      [st.mode, st.size, st.mtimeMs, st.ino, st.uid, st.gid, 0],
      name,
    );
  });
}

test('a directory bigger than the numbers buffer grows it; smaller ones after still list right', () => {
  const big = tmp();
  for (let i = 0; i < 1000; i++) writeFileSync(join(big, `f${i}`), 'x'.repeat(i % 17));
  const small = tmp();
  writeFileSync(join(small, 'one'), '1');
  mkdirSync(join(small, 'two'));
  assertListed(small);
  assertListed(big);
  assertListed(small);
  assertListed(big);
});

test('an empty directory lists no names', () => {
  assert.deepEqual(list!(tmp())!.names, []);
});

test("what the addon leaves to Node's fs: a missing directory, a file, a name not in UTF-8", () => {
  const dir = tmp();
  assert.equal(list!(join(dir, 'missing')), undefined);
  writeFileSync(join(dir, 'file'), 'x');
  assert.equal(list!(join(dir, 'file')), undefined);
  writeFileSync(Buffer.from(`${dir}/bad\xff`, 'latin1'), 'x');
  assert.equal(list!(dir), undefined);
});
