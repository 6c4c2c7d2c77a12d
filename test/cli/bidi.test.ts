/**
 * -K bidi through the real CLI: changes flow both ways, conflicts are kept and listed with
 * exit code 4, clear once resolved by hand, and the resolution policies and asyncadmin
 * --resolve settle them without hand edits.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { asyncCli, asyncadminCli, describeTree, tmp, writeTree } from '../helpers.js';

function setup(local: Record<string, string> = {}, remote: Record<string, string> = {}) {
  const root = tmp('async-bidi-');
  const a = join(root, 'a');
  const b = join(root, 'b');
  mkdirSync(a);
  mkdirSync(b);
  writeTree(a, local);
  writeTree(b, remote);
  return { a, b };
}

function bidi(a: string, b: string, ...extra: string[]) {
  return asyncCli(['-N', 'two', '-d', a, '-r', b, '-K', 'bidi', ...extra]);
}

/** A synced pair holding `files`, then each side edited by `edit`. */
function synced(files: Record<string, string>) {
  const s = setup(files);
  const r = bidi(s.a, s.b);
  assert.equal(r.code, 0, r.stderr);
  return s;
}

const read = (p: string) => readFileSync(p, 'utf8');

describe('async -K bidi', () => {
  test('changes on each side reach the other; a second run changes nothing', () => {
    const { a, b } = setup(
      { 'l.txt': 'from local', 'd/x': 'x' },
      { 'r.txt': 'from remote', 'e/y': 'y' },
    );
    const r = bidi(a, b);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^async: two bidi: 4 files/);
    assert.deepEqual(describeTree(a), describeTree(b));
    writeFileSync(join(a, 'l.txt'), 'edited locally');
    rmSync(join(b, 'e'), { recursive: true });
    writeFileSync(join(b, 'new.txt'), 'new remotely');
    const r2 = bidi(a, b);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(describeTree(a), describeTree(b));
    assert.equal(read(join(b, 'l.txt')), 'edited locally');
    assert.ok(!existsSync(join(a, 'e')));
    const r3 = bidi(a, b);
    assert.equal(r3.code, 0);
    assert.match(r3.stdout, /0 files \(0 B\) sent, 0 dirs created, 0 renamed, 0 deleted/);
  });

  test('a rename on the remote side travels as a rename to the local side', () => {
    const { a, b } = synced({ 'big/one': 'x'.repeat(1000), 'big/two': 'y' });
    const before = lstatSync(join(a, 'big/one')).ino;
    renameSync(join(b, 'big'), join(b, 'moved'));
    const r = bidi(a, b);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0 files .* 1 renamed/);
    assert.equal(lstatSync(join(a, 'moved/one')).ino, before);
    assert.deepEqual(describeTree(a), describeTree(b));
  });

  test('both sides changed a file differently: both kept, CONFLICT listed, exit 4, Conflict in both DBs', () => {
    const { a, b } = synced({ 'doc.txt': 'v1' });
    writeFileSync(join(a, 'doc.txt'), 'local edit');
    writeFileSync(join(b, 'doc.txt'), 'remote edit');
    const r = bidi(a, b);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stdout, /^\/doc\.txt {3}CONFLICT$/m);
    assert.match(r.stdout, /1 conflicts/);
    assert.equal(read(join(a, 'doc.txt')), 'local edit');
    assert.equal(read(join(b, 'doc.txt')), 'remote edit');
    for (const dir of [a, b]) {
      const f = asyncadminCli(['-d', dir, '-f']);
      assert.match(f.stdout, /^doc\.txt\tConflict/m, f.stdout);
    }
    // Still a conflict on the next run while nobody touches it.
    assert.equal(bidi(a, b).code, 4);
  });

  test('both sides changed to the same content: no conflict', () => {
    const { a, b } = synced({ 'same.txt': 'v1' });
    writeFileSync(join(a, 'same.txt'), 'v2 everywhere');
    writeFileSync(join(b, 'same.txt'), 'v2 everywhere');
    const r = bidi(a, b);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /CONFLICT/);
  });

  test('a conflict resolved by hand clears on the next run: edited to equal, deleted, renamed', () => {
    const { a, b } = synced({ 'eq.txt': '1', 'del.txt': '1', 'ren.txt': '1' });
    for (const f of ['eq.txt', 'del.txt', 'ren.txt']) {
      writeFileSync(join(a, f), `local ${f}`);
      writeFileSync(join(b, f), `remote ${f}`);
    }
    assert.equal(bidi(a, b).code, 4);
    writeFileSync(join(b, 'eq.txt'), 'local eq.txt'); // made equal
    rmSync(join(a, 'del.txt')); // drop my copy: the remote one wins
    renameSync(join(a, 'ren.txt'), join(a, 'ren-mine.txt')); // keep mine under another name
    const r = bidi(a, b);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(describeTree(a), describeTree(b));
    assert.equal(read(join(a, 'del.txt')), 'remote del.txt');
    assert.equal(read(join(b, 'ren-mine.txt')), 'local ren.txt');
    assert.equal(read(join(a, 'ren.txt')), 'remote ren.txt');
    const s = asyncadminCli(['-d', a, '-s']);
    assert.match(s.stdout, /Conflict: 0/);
  });

  test('modified on one side, deleted on the other: the modified copy is kept on both', () => {
    const { a, b } = synced({ 'm.txt': '1', 'dir/in.txt': '1', 'dir/other': 'o', keep: 'k' });
    writeFileSync(join(a, 'm.txt'), 'changed');
    rmSync(join(b, 'm.txt'));
    writeFileSync(join(a, 'dir/in.txt'), 'changed in dir');
    rmSync(join(b, 'dir'), { recursive: true });
    const r = bidi(a, b);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(read(join(b, 'm.txt')), 'changed');
    assert.equal(read(join(b, 'dir/in.txt')), 'changed in dir');
    // The untouched file goes with the deleted directory.
    assert.ok(!existsSync(join(a, 'dir/other')));
    assert.deepEqual(describeTree(a), describeTree(b));
  });

  test('deleting a directory does not take a file in conflict with it (the other copy wins)', () => {
    const { a, b } = synced({ keep: 'k', 'z/c.txt': 'c' });
    writeFileSync(join(a, 'z/c.txt'), 'local edit');
    writeFileSync(join(b, 'z/c.txt'), 'remote edit');
    assert.equal(bidi(a, b).code, 4);
    rmSync(join(a, 'z'), { recursive: true }); // resolved by dropping the local copy
    const r = bidi(a, b);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(read(join(a, 'z/c.txt')), 'remote edit');
    assert.deepEqual(describeTree(a), describeTree(b));
  });

  test('a directory on one side and a file on the other: a conflict whatever the policy', () => {
    const { a, b } = synced({});
    writeTree(a, { 'thing/inner.txt': 'in a dir' });
    writeFileSync(join(b, 'thing'), 'a file');
    const r = bidi(a, b, '--conflict-resolve', 'newer');
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stdout, /^\/thing {3}CONFLICT$/m);
    assert.equal(read(join(b, 'thing')), 'a file');
    assert.equal(read(join(a, 'thing/inner.txt')), 'in a dir');
  });

  test('--conflict-resolve keep-both: the older copy kept under a conflict name on both sides', () => {
    const { a, b } = synced({ 'r.txt': 'v1' });
    writeFileSync(join(a, 'r.txt'), 'older local');
    utimesSync(join(a, 'r.txt'), 1_600_000_000, 1_600_000_000);
    writeFileSync(join(b, 'r.txt'), 'newer remote');
    const r = bidi(a, b, '--conflict-resolve', 'keep-both');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(describeTree(a), describeTree(b));
    assert.equal(read(join(a, 'r.txt')), 'newer remote');
    const kept = readdirSync(a).filter((n) => n.startsWith('r.conflict-local-'));
    assert.equal(kept.length, 1, readdirSync(a).join(' '));
    assert.match(kept[0]!, /^r\.conflict-local-\d{8}T\d{6}Z\.txt$/);
    assert.equal(read(join(b, kept[0]!)), 'older local');
    // The kept copy is a plain file now: no conflict of a conflict on the next run.
    const r2 = bidi(a, b, '--conflict-resolve', 'keep-both');
    assert.equal(r2.code, 0);
    assert.match(r2.stdout, /0 files \(0 B\) sent/);
  });

  test('--conflict-resolve newer, local and remote, and -o older (the newer copy wins)', () => {
    const cases: [string[], string][] = [
      [['--conflict-resolve', 'newer'], 'remote'],
      [['--conflict-resolve', 'local'], 'local'],
      [['--conflict-resolve', 'remote'], 'remote'],
      [['-o', 'older'], 'remote'],
      [['-o', 'always'], 'local'],
    ];
    for (const [flags, winner] of cases) {
      const { a, b } = synced({ 'c.txt': 'v1' });
      writeFileSync(join(a, 'c.txt'), 'local');
      utimesSync(join(a, 'c.txt'), 1_600_000_000, 1_600_000_000);
      writeFileSync(join(b, 'c.txt'), 'remote');
      const r = bidi(a, b, ...flags);
      assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(read(join(a, 'c.txt')), winner, flags.join(' '));
      assert.equal(read(join(b, 'c.txt')), winner, flags.join(' '));
    }
  });

  test('asyncadmin --resolve PATH --keep local: the next run applies the decision and forgets it', () => {
    const { a, b } = synced({ 'x.txt': 'v1' });
    writeFileSync(join(a, 'x.txt'), 'local');
    writeFileSync(join(b, 'x.txt'), 'remote');
    assert.equal(bidi(a, b).code, 4);
    const res = asyncadminCli(['-d', b, '--resolve', '/x.txt', '--keep', 'local']);
    assert.equal(res.code, 0, res.stderr);
    const r = bidi(a, b);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(read(join(b, 'x.txt')), 'local');
    assert.match(r.stderr, /asyncadmin --resolve/);
    const c = asyncadminCli(['-d', b, '--conflicts', '--json']);
    assert.deepEqual(JSON.parse(c.stdout), { conflicts: [] });
  });

  test('bad input: direction change, --mirror, --conflict-resolve without bidi', () => {
    const { a, b } = setup({ f: '1' });
    assert.equal(asyncCli(['-N', 'two', '-d', a, '-r', b, '-K', 'push']).code, 0);
    const r = bidi(a, b);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /was run with direction push; this run asks for bidi/);
    assert.match(r.stderr, /-x\/--reset/);
    const m = bidi(a, b, '--mirror');
    assert.equal(m.code, 2);
    assert.match(m.stderr, /--mirror cannot be used with -K bidi/);
    const c = asyncCli(['-N', 'two', '-d', a, '-r', b, '--conflict-resolve', 'newer']);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /--conflict-resolve applies to -K bidi only/);
    const both = bidi(a, b, '-o', 'older', '--conflict-resolve', 'local');
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give only one/);
    const bad = bidi(a, b, '--conflict-resolve', 'coin-toss');
    assert.equal(bad.code, 2);
    // After a reset, the session runs bidi.
    assert.equal(bidi(a, b, '-x').code, 0);
  });
});
