/** Resume of big files, the pure part: the manifest format, identities, which pieces to skip. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry } from '../../src/core/entry.js';
import {
  identityOf,
  manifestHeader,
  manifestPieceLines,
  parseManifest,
  piecesToSkip,
  sameIdentity,
} from '../../src/core/partial.js';

const P = 4;
const entry: Entry = {
  path: 'a/big.bin',
  kind: 'file',
  size: 10,
  mtimeMs: 1700000000123.25,
  mode: 0o644,
  ino: 42,
  uid: 0,
  gid: 0,
};
const id = identityOf(entry, P);
const D = (n: number) => n.toString(16).padStart(16, '0');
const header = manifestHeader(id);

describe('parseManifest', () => {
  const rows: { name: string; text: string; pieces?: [number, string][] | undefined }[] = [
    { name: 'header only', text: header, pieces: [] },
    {
      name: 'pieces in any order',
      text:
        header +
        manifestPieceLines([
          { index: 2, digest: D(2) },
          { index: 0, digest: D(0) },
        ]),
      pieces: [
        [0, D(0)],
        [2, D(2)],
      ],
    },
    {
      name: 'a torn last line (crash mid-append) is not a held piece',
      text: `${header}${manifestPieceLines([{ index: 0, digest: D(0) }])}{"i":1,"d":"00`,
      pieces: [[0, D(0)]],
    },
    {
      name: 'a complete line missing its newline is not trusted either',
      text: `${header}{"i":1,"d":"${D(1)}"}`,
      pieces: [],
    },
    {
      name: 'a later mark of the same piece wins (re-sent after damage)',
      text:
        header +
        manifestPieceLines([
          { index: 1, digest: D(1) },
          { index: 1, digest: D(9) },
        ]),
      pieces: [[1, D(9)]],
    },
    {
      name: 'garbage stops the list',
      text: `${header}${manifestPieceLines([{ index: 0, digest: D(0) }])}xx\n${manifestPieceLines([{ index: 1, digest: D(1) }])}`,
      pieces: [[0, D(0)]],
    },
    {
      name: 'an index beyond the file is ignored',
      text: header + manifestPieceLines([{ index: 7, digest: D(7) }]),
      pieces: [],
    },
    { name: 'a torn header is no manifest', text: header.slice(0, -1), pieces: undefined },
    { name: 'empty', text: '', pieces: undefined },
    {
      name: 'another version of the format',
      text: header.replace('"v":1', '"v":2'),
      pieces: undefined,
    },
    {
      name: 'a count that does not fit the size',
      text: header.replace('"count":3', '"count":4'),
      pieces: undefined,
    },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const m = parseManifest(r.text);
      if (r.pieces === undefined) return assert.equal(m, undefined);
      assert.ok(m);
      assert.ok(sameIdentity(m, id));
      assert.deepEqual(
        [...m.pieces].sort((a, b) => a[0] - b[0]),
        r.pieces,
      );
    });
  }
});

describe('sameIdentity', () => {
  const rows: [string, Partial<Entry>, boolean][] = [
    ['the same file', {}, true],
    ['another size', { size: 11 }, false],
    ['another mtime', { mtimeMs: entry.mtimeMs + 0.001 }, false],
    ['another inode (replaced)', { ino: 43 }, false],
    ['another path', { path: 'a/other.bin' }, false],
    ['another mode (not part of the content)', { mode: 0o600 }, true],
  ];
  for (const [name, change, same] of rows)
    test(name, () => assert.equal(sameIdentity(id, identityOf({ ...entry, ...change }, P)), same));
  test('another piece size', () => assert.equal(sameIdentity(id, identityOf(entry, 8)), false));
});

describe('piecesToSkip', () => {
  const held = [0, 1, 3].map((index) => ({ index, digest: D(index) }));
  const rows: [string, (string | undefined)[], number, number[]][] = [
    ['all digests agree', [D(0), D(1), D(3)], 5, [0, 1, 3]],
    ['a piece changed at the sender', [D(0), D(7), D(3)], 5, [0, 3]],
    ['the sender could not say', [undefined, undefined, undefined], 5, []],
    ['everything held: the last piece travels anyway', [D(0), D(1), D(3)], 3, [0, 1]],
  ];
  for (const [name, sender, count, want] of rows)
    test(name, () => assert.deepEqual(piecesToSkip(held, sender, count), want));
  test('held pieces outside the file are never skipped', () =>
    assert.deepEqual(piecesToSkip([{ index: 9, digest: D(9) }], [D(9)], 5), []));
});
