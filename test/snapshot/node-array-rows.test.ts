/**
 * node:sqlite before setReturnArrays (Node 22.13-22.15): the adapter turns row objects into
 * arrays in column order itself. Pure: a stand-in statement, so it runs on any Node.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StatementSync } from '../../src/snapshot/driver-node-sqlite.js';
import { NodeArrayStatement } from '../../src/snapshot/driver-node-sqlite.js';

test('rows come as arrays in SELECT order through get, all and iterate; run is unchanged', () => {
  const rows = [
    { name: 'a', kind: 1, size: null },
    { name: 'b', kind: 2, size: 0 },
  ];
  const stmt: StatementSync = {
    run: () => ({ changes: 2n }),
    get: (dir) => (dir === 'none' ? undefined : rows[0]),
    all: () => rows,
    iterate: () => rows[Symbol.iterator](),
  };
  const s = new NodeArrayStatement<[string], [string, number, number | null]>(stmt);
  assert.deepEqual(s.get('d'), ['a', 1, null]);
  assert.equal(s.get('none'), undefined);
  assert.deepEqual(s.all('d'), [
    ['a', 1, null],
    ['b', 2, 0],
  ]);
  assert.deepEqual(
    [...s.iterate('d')],
    [
      ['a', 1, null],
      ['b', 2, 0],
    ],
  );
  assert.deepEqual(s.run('d'), { changes: 2 });
});
