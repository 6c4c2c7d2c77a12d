/**
 * -n/--symbolic-links through the real CLI: copy (the default) copies links as links, even
 * those pointing outside the tree; skip leaves them out; follow syncs what they point at
 * and reports a loop as a per-path error (exit 1) while the rest syncs.
 */
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { asyncCli, describeTree, tmp, writeTree } from '../helpers.js';

function setup(): { data: string; mirror: string; outside: string } {
  const root = tmp();
  const data = join(root, 'data');
  const mirror = join(root, 'mirror');
  const outside = join(root, 'outside');
  mkdirSync(data);
  mkdirSync(mirror);
  writeTree(data, { 'a.txt': 'alpha', 'd/b.txt': 'beta' });
  writeTree(outside, { 'secret.txt': 'outside the tree', 'od/c.txt': 'c' });
  symlinkSync('a.txt', join(data, 'to-file'));
  symlinkSync('d', join(data, 'to-dir'));
  symlinkSync(join(outside, 'secret.txt'), join(data, 'out-file'));
  symlinkSync(join(outside, 'od'), join(data, 'out-dir'));
  return { data, mirror, outside };
}

const run = (data: string, mirror: string, ...args: string[]) =>
  asyncCli(['-N', 's', '-d', data, '-r', mirror, ...args]);

describe('symbolic links', () => {
  test('copy (default): links stay links, also those pointing outside the tree', () => {
    const { data, mirror, outside } = setup();
    const r = run(data, mirror);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(mirror), describeTree(data));
    assert.equal(readlinkSync(join(mirror, 'out-dir')), join(outside, 'od'));
    assert.ok(lstatSync(join(mirror, 'out-dir')).isSymbolicLink());
  });

  test('-n skip: links are neither synced nor deleted', () => {
    const { data, mirror } = setup();
    assert.equal(run(data, mirror).code, 0);
    const r = run(data, mirror, '-n', 'skip');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0 deleted/);
    const fresh = join(mirror, '..', 'fresh');
    mkdirSync(fresh);
    const r2 = asyncCli(['-N', 's2', '-d', data, '-r', fresh, '--symbolic-links=skip']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(Object.keys(describeTree(fresh)).sort(), ['a.txt', 'd', 'd/b.txt']);
  });

  test('-n follow: what links point at is synced as files and directories', () => {
    const { data, mirror } = setup();
    const r = run(data, mirror, '-n', 'follow');
    assert.equal(r.code, 0, r.stderr);
    const t = describeTree(mirror);
    assert.equal(t['to-file']!.kind, 'file');
    assert.equal(t['to-dir']!.kind, 'dir');
    assert.equal(readFileSync(join(mirror, 'to-dir/b.txt'), 'utf8'), 'beta');
    assert.equal(readFileSync(join(mirror, 'out-file'), 'utf8'), 'outside the tree');
    assert.equal(readFileSync(join(mirror, 'out-dir/c.txt'), 'utf8'), 'c');
    // A rerun finds nothing to do.
    const r2 = run(data, mirror, '-n', 'follow');
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /0 files .* 0 deleted/);
  });

  test('-n follow: a loop is a per-path error (exit 1); everything else syncs', () => {
    const { data, mirror } = setup();
    symlinkSync('..', join(data, 'd', 'up'));
    symlinkSync('self', join(data, 'self'));
    const r = run(data, mirror, '-n', 'follow');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error: d\/up: symbolic link loop/);
    assert.match(r.stderr, /error: self: symbolic link loop/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(readFileSync(join(mirror, 'd/b.txt'), 'utf8'), 'beta');
    assert.equal(readFileSync(join(mirror, 'to-dir/b.txt'), 'utf8'), 'beta');
  });
});
