/**
 * Scoped scans (continuous mode): only the listed directories are diffed, new directories
 * found there are crawled in full, renames between scoped directories are still found, and
 * an emptied root is listed so it still looks empty to the safety check.
 */
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { SnapshotRecord } from '../../src/core/change.js';
import type { Entry } from '../../src/core/entry.js';
import { isWithin, parentOf } from '../../src/core/paths.js';
import type { ScanSource } from '../../src/scan/scanner.js';
import { scanTree } from '../../src/scan/scanner.js';
import { tmp, writeTree } from '../helpers.js';

/** A snapshot held in memory: what a full scan of `root` finds now, all synced. */
function snapshotOf(root: string): ScanSource {
  const empty: ScanSource = { children: () => [], descendants: () => [] };
  const all = new Map<string, Entry>();
  for (const c of scanTree({ root, snapshot: empty }).changes) all.set(c.path, c.new!);
  return {
    children: (dir): SnapshotRecord[] =>
      [...all.values()]
        .filter((e) => parentOf(e.path) === dir)
        .map((entry) => ({ path: entry.path, entry, state: 'synced' })),
    descendants: (p) => [...all.values()].filter((e) => e.path !== p && isWithin(e.path, p)),
  };
}

/** The changes, without directories whose only change is their mtime (contents moved). */
const summary = (root: string, snap: ScanSource, scope: string[]): string[] =>
  scanTree({ root, snapshot: snap, scope })
    .changes.filter(
      (c) => !(c.old?.kind === 'dir' && c.new?.kind === 'dir' && c.from === undefined),
    )
    .map(
      (c) =>
        `${c.from !== undefined ? `${c.from} -> ` : ''}${c.path} ${c.old === null ? 'add' : c.new === null ? 'del' : c.from !== undefined ? 'move' : 'mod'}`,
    )
    .sort();

describe('scanTree with a scope', () => {
  test('changes outside the scope are not seen; inside they are', () => {
    const root = tmp();
    writeTree(root, { 'a/x.txt': 'x', 'b/y.txt': 'y' });
    const snap = snapshotOf(root);
    writeFileSync(join(root, 'a/new.txt'), 'n');
    writeFileSync(join(root, 'b/other.txt'), 'o');
    assert.deepEqual(summary(root, snap, ['a']), ['a/new.txt add']);
  });

  test('a file moved between two scoped directories is a rename', () => {
    const root = tmp();
    writeTree(root, { 'a/x.txt': 'x', 'b/y.txt': 'y' });
    const snap = snapshotOf(root);
    renameSync(join(root, 'a/x.txt'), join(root, 'b/x.txt'));
    assert.deepEqual(summary(root, snap, ['a', 'b']), ['a/x.txt -> b/x.txt move']);
  });

  test('a directory moved: its parent scoped, the contents come along as one rename', () => {
    const root = tmp();
    writeTree(root, { 'd/e/f.txt': 'f', 'd/g.txt': 'g', 'other/h.txt': 'h' });
    const snap = snapshotOf(root);
    renameSync(join(root, 'd'), join(root, 'other/D'));
    assert.deepEqual(summary(root, snap, ['', 'other']), ['d -> other/D move']);
  });

  test('a new directory deep below a scope path is crawled in full', () => {
    const root = tmp();
    writeTree(root, { 'a/x.txt': 'x' });
    const snap = snapshotOf(root);
    writeTree(root, { 'a/n1/n2/deep.txt': 'd' });
    // Only the deepest path was reported: the scope climbs to the nearest known directory.
    assert.deepEqual(summary(root, snap, ['a/n1/n2']), [
      'a/n1 add',
      'a/n1/n2 add',
      'a/n1/n2/deep.txt add',
    ]);
  });

  test('a scoped directory that vanished is not an error; its parent shows the delete', () => {
    const root = tmp();
    writeTree(root, { 'a/b/x.txt': 'x' });
    const snap = snapshotOf(root);
    rmSync(join(root, 'a/b'), { recursive: true });
    const res = scanTree({ root, snapshot: snap, scope: ['a/b', 'a'] });
    assert.deepEqual(res.problems, []);
    assert.deepEqual(summary(root, snap, ['a/b', 'a']), ['a/b del']);
  });

  test('an emptied root is listed: nothing counts as present', () => {
    const root = tmp();
    writeTree(root, { 'a/x.txt': 'x', 'top.txt': 't' });
    const snap = snapshotOf(root);
    rmSync(join(root, 'a'), { recursive: true });
    rmSync(join(root, 'top.txt'));
    mkdirSync(join(root, 'unrelated-but-gone'), { recursive: true });
    rmSync(join(root, 'unrelated-but-gone'), { recursive: true });
    const res = scanTree({ root, snapshot: snap, scope: [] });
    assert.equal(res.stats.files + res.stats.dirs + res.stats.symlinks, 0);
    assert.ok(res.changes.some((c) => c.path === 'a' && c.new === null));
  });
});
