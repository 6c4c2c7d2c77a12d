/** Table tests of the pure change model: per-directory diff, rename detection, apply. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Change, SnapshotRecord } from '../../src/core/change.js';
import { applyChanges, detectRenames, diffChildren, mergeByPath } from '../../src/core/change.js';
import { comparePaths } from '../../src/core/paths.js';
import type { Entry } from '../../src/core/entry.js';

let nextIno = 1000;
function f(path: string, opts: Partial<Entry> = {}): Entry {
  return {
    path,
    kind: 'file',
    size: 10,
    mtimeMs: 1000,
    mode: 0o644,
    ino: nextIno++,
    uid: 0,
    gid: 0,
    ...opts,
  };
}
function d(path: string, opts: Partial<Entry> = {}): Entry {
  return {
    path,
    kind: 'dir',
    size: 0,
    mtimeMs: 1000,
    mode: 0o755,
    ino: nextIno++,
    uid: 0,
    gid: 0,
    ...opts,
  };
}
const rec = (e: Entry, state: SnapshotRecord['state'] = 'synced'): SnapshotRecord => ({
  path: e.path,
  entry: e,
  state,
});
const moved = (e: Entry, path: string, opts: Partial<Entry> = {}): Entry => ({
  ...e,
  path,
  ...opts,
});
const summary = (cs: Change[]) =>
  cs
    .map((c) =>
      c.from !== undefined
        ? `R ${c.from}->${c.path}`
        : c.old === null && c.new === null
          ? `X ${c.path}`
          : c.old === null
            ? `A ${c.path}`
            : c.new === null
              ? `D ${c.path}`
              : `M ${c.path}`,
    )
    .sort();

describe('diffChildren', () => {
  const a = f('a');
  const b = f('b');
  const rows: [string, SnapshotRecord[], Entry[], string[]][] = [
    ['nothing changed', [rec(a), rec(b)], [a, b], []],
    ['added', [rec(a)], [a, b], ['A b']],
    ['deleted', [rec(a), rec(b)], [a], ['D b']],
    ['size changed', [rec(a)], [{ ...a, size: 11 }], ['M a']],
    ['mtime changed', [rec(a)], [{ ...a, mtimeMs: 2000 }], ['M a']],
    ['mode changed', [rec(a)], [{ ...a, mode: 0o600 }], ['M a']],
    ['inode changed (replaced)', [rec(a)], [{ ...a, ino: 1 }], ['M a']],
    ['type changed', [rec(a)], [d('a')], ['M a']],
    ['an error record is retried even if unchanged', [rec(a, 'error')], [a], ['M a']],
    [
      'a bare error record whose path is gone yields a change',
      [{ path: 'x', entry: null, state: 'error' }],
      [],
      ['X x'],
    ],
  ];
  for (const [title, before, after, want] of rows) {
    test(title, () => assert.deepEqual(summary(diffChildren(before, after)), want));
  }
});

describe('detectRenames', () => {
  const none = (): Entry[] => [];
  test('a file with the inode, size and mtime of a deleted one is a rename', () => {
    const a = f('a');
    const out = detectRenames(
      [
        { path: 'a', old: a, new: null },
        { path: 'b', old: null, new: moved(a, 'b') },
      ],
      none,
    );
    assert.deepEqual(summary(out), ['R a->b']);
  });
  test('same inode but different size is a delete and an add', () => {
    const a = f('a');
    const out = detectRenames(
      [
        { path: 'a', old: a, new: null },
        { path: 'b', old: null, new: moved(a, 'b', { size: 99 }) },
      ],
      none,
    );
    assert.deepEqual(summary(out), ['A b', 'D a']);
  });
  test('a renamed directory: its unchanged contents vanish from the change list', () => {
    const dir = d('x');
    const inner = [f('x/1'), f('x/2'), d('x/s'), f('x/s/3')];
    const changes: Change[] = [
      { path: 'x', old: dir, new: null },
      { path: 'y', old: null, new: moved(dir, 'y') },
      ...inner.map((e) => ({
        path: e.path.replace(/^x/, 'y'),
        old: null,
        new: moved(e, e.path.replace(/^x/, 'y')),
      })),
    ];
    const out = detectRenames(changes, (p) => (p === 'x' ? inner : []));
    assert.deepEqual(summary(out), ['R x->y']);
  });
  test('inside a renamed directory: a modified file, a deleted one, a new one, a nested rename', () => {
    const dir = d('x');
    const one = f('x/1');
    const two = f('x/2');
    const sub = d('x/s');
    const three = f('x/s/3');
    const changes: Change[] = [
      { path: 'x', old: dir, new: null },
      { path: 'y', old: null, new: moved(dir, 'y') },
      { path: 'y/1', old: null, new: moved(one, 'y/1', { size: 5 }) },
      { path: 'y/new', old: null, new: f('y/new') },
      { path: 'y/t', old: null, new: moved(sub, 'y/t') },
      { path: 'y/t/3', old: null, new: moved(three, 'y/t/3') },
    ];
    const out = detectRenames(changes, (p) => (p === 'x' ? [one, two, sub, three] : []));
    assert.deepEqual(summary(out), ['A y/new', 'D y/2', 'M y/1', 'R x->y', 'R y/s->y/t']);
  });
  test('a file moved out of a renamed directory into another place', () => {
    const dir = d('x');
    const one = f('x/1');
    const changes: Change[] = [
      { path: 'x', old: dir, new: null },
      { path: 'y', old: null, new: moved(dir, 'y') },
      { path: 'top', old: null, new: moved(one, 'top') },
    ];
    const out = detectRenames(changes, (p) => (p === 'x' ? [one] : []));
    assert.deepEqual(summary(out), ['R x->y', 'R y/1->top']);
  });
  test('an add at the place of a rebased delete is not a rename to itself', () => {
    const dir = d('x');
    const sub = d('x/s');
    const changes: Change[] = [
      { path: 'x', old: dir, new: null },
      { path: 'y', old: null, new: moved(dir, 'y') },
      { path: 'y/s', old: null, new: moved(sub, 'y/s', { mode: 0o700 }) },
    ];
    const out = detectRenames(changes, (p) => (p === 'x' ? [sub] : []));
    assert.deepEqual(summary(out), ['M y/s', 'R x->y']);
  });
  test('diff and apply are inverses, renames included', () => {
    const a = f('a');
    const dir = d('x');
    const one = f('x/1');
    const old = new Map<string, Entry>([
      ['a', a],
      ['x', dir],
      ['x/1', one],
      ['gone', f('gone')],
    ]);
    const disk = new Map<string, Entry>([
      ['b', moved(a, 'b')],
      ['y', moved(dir, 'y')],
      ['y/1', moved(one, 'y/1', { mtimeMs: 5 })],
      ['n', f('n')],
    ]);
    const raw: Change[] = [];
    for (const [p, e] of old)
      if (!disk.has(p) && !p.startsWith('x/')) raw.push({ path: p, old: e, new: null });
    for (const [p, e] of disk) if (!old.has(p)) raw.push({ path: p, old: null, new: e });
    const changes = detectRenames(raw, (p) =>
      [...old.values()].filter((e) => e.path.startsWith(`${p}/`)),
    );
    assert.deepEqual([...applyChanges(old, changes)].sort(), [...disk].sort());
  });
});

describe('mergeByPath', () => {
  const walk = (a: string[], b: string[]): [string | null, string | null][] => {
    const out: [string | null, string | null][] = [];
    mergeByPath(
      a.map((path) => ({ path })),
      b.map((path) => ({ path })),
      (i, j) => out.push([i < 0 ? null : a[i]!, j < 0 ? null : b[j]!]),
    );
    return out;
  };

  test('visits every path once, in comparePaths order, paired where both lists have it', () => {
    // '-' and '.' sort before '/' in plain string order, after it in comparePaths.
    const a = ['a', 'a/x', 'a-b', 'c', 'a.c'];
    const b = ['a.c', 'a/x', 'b', 'a'];
    const out = walk(a, b);
    const paths = out.map(([x, y]) => x ?? y!);
    assert.deepEqual(paths, [...new Set([...a, ...b])].sort(comparePaths));
    assert.deepEqual(out, [
      ['a', 'a'],
      ['a/x', 'a/x'],
      ['a-b', null],
      ['a.c', 'a.c'],
      [null, 'b'],
      ['c', null],
    ]);
  });

  test('empty lists', () => {
    assert.deepEqual(walk([], []), []);
    assert.deepEqual(walk(['x'], []), [['x', null]]);
    assert.deepEqual(walk([], ['x']), [[null, 'x']]);
  });
});
