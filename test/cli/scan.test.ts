/**
 * Issue #5 through the real CLI: scans in worker threads (--scan-threads) give the same
 * result as scans on the main thread, with the session's filters, link mode and decorations
 * carried to the thread as plain data; a database of schema 003 is read by asyncadmin and
 * upgraded by the next run; the scan progress line shows on a terminal only.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  ASYNC_BIN,
  UNDER_BUNDLE,
  asyncCli,
  asyncadminCli,
  describeTree,
  tmp,
  writeTree,
} from '../helpers.js';

/**
 * Every scan and every rebuild of the per-directory records in a thread, however small
 * (the default thresholds are 20k entries and 2,000 directories).
 */
const THREADS_ALWAYS = { ASYNC_SCAN_THREAD_MIN_ENTRIES: '0', ASYNC_RECORD_THREAD_MIN_DIRS: '0' };

function pair(): { data: string; mirror: string } {
  const root = tmp();
  const data = join(root, 'data');
  const mirror = join(root, 'mirror');
  mkdirSync(mirror);
  const files: Record<string, string> = { 'keep.txt': 'k', 'skip.tmp': 'no' };
  for (let i = 0; i < 40; i++) files[`d${i % 4}/f${i}.txt`] = `file ${i}`;
  writeTree(data, files);
  symlinkSync('d1', join(data, 'link-to-d1'));
  return { data, mirror };
}

function mutate(data: string): void {
  writeFileSync(join(data, 'd0/f0.txt'), 'changed and longer');
  unlinkSync(join(data, 'd1/f1.txt'));
  writeFileSync(join(data, 'd2/new.txt'), 'new');
  utimesSync(join(data, 'd3/f3.txt'), 1_000_000, 1_000_000);
  writeFileSync(join(data, 'more.tmp'), 'excluded');
}

describe('scans in worker threads', () => {
  for (const threads of ['0', '1', '2']) {
    test(`--scan-threads ${threads}: push, change, push again with --exclude, -n follow, -u`, () => {
      const { data, mirror } = pair();
      const args = [
        '-N',
        's',
        '-d',
        data,
        '-r',
        mirror,
        '--scan-threads',
        threads,
        '--exclude',
        '*.tmp',
        '-n',
        'follow',
        '--preserve-access-time',
      ];
      const first = asyncCli(args, { env: THREADS_ALWAYS });
      assert.equal(first.code, 0, first.stderr);
      mutate(data);
      const second = asyncCli(args, { env: THREADS_ALWAYS });
      assert.equal(second.code, 0, second.stderr);
      const want = describeTree(data);
      delete want['skip.tmp'];
      delete want['more.tmp'];
      // -n follow: the link arrives as a directory holding d1's files.
      delete want['link-to-d1'];
      for (const [p, item] of Object.entries(describeTree(join(data, 'd1')))) {
        want[`link-to-d1/${p}`] = item;
      }
      const got = describeTree(mirror);
      want['link-to-d1'] = { kind: 'dir', mode: got['link-to-d1']!.mode };
      assert.deepEqual(got, want);
      assert.equal(got['link-to-d1/f5.txt']?.content, want['d1/f5.txt']?.content);
      // Nothing left to do: a third run finds no change through the records.
      const third = asyncCli([...args, '--json'], { env: THREADS_ALWAYS });
      assert.equal(third.code, 0, third.stderr);
      const j = JSON.parse(third.stdout) as { filesSent: number; deleted: number };
      assert.equal(j.filesSent, 0, third.stdout);
      assert.equal(j.deleted, 0, third.stdout);
    });
  }

  test('a tree split across the scan threads: the same runs, a rename across the parts', () => {
    const { data, mirror } = pair();
    writeTree(data, { 'd2/deep/er/x.txt': 'x', 'd3/deep/y.txt': 'y' });
    // Two trees scan at once and share the threads: four make two per tree, so each splits.
    const args = [
      '-N',
      'sp',
      '-d',
      data,
      '-r',
      mirror,
      '--scan-threads',
      '4',
      '--exclude',
      '*.tmp',
      '--json',
    ];
    const first = asyncCli(args, { env: THREADS_ALWAYS });
    assert.equal(first.code, 0, first.stderr);
    mutate(data);
    // Moved from one top directory into another: splitTree makes them different items.
    renameSync(join(data, 'd2/deep'), join(data, 'd3/deep/moved'));
    const second = asyncCli(args, { env: THREADS_ALWAYS });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(JSON.parse(second.stdout).renamed, 1, second.stdout);
    const want = describeTree(data);
    delete want['skip.tmp'];
    delete want['more.tmp'];
    assert.deepEqual(describeTree(mirror), want);
    const third = asyncCli(args, { env: THREADS_ALWAYS });
    assert.equal(third.code, 0, third.stderr);
    assert.equal(JSON.parse(third.stdout).filesSent, 0, third.stdout);
  });

  test('--scan-threads must be a whole number from 0 to 64 (exit 2, naming the option)', () => {
    const { data, mirror } = pair();
    for (const bad of ['-1', 'two', '65', '1.5']) {
      const r = asyncCli(['-N', 's', '-d', data, '-r', mirror, '--scan-threads', bad]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /Invalid --scan-threads/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });
});

describe('snapshot schema 004', { skip: UNDER_BUNDLE && 'needs better-sqlite3' }, () => {
  test('a database of schema 003 is read by asyncadmin, then upgraded by the next run', () => {
    const { data, mirror } = pair();
    const args = ['-N', 's', '-d', data, '-r', mirror];
    assert.equal(asyncCli(args).code, 0);
    // Turn the local database back into what the previous release wrote.
    const dbPath = join(data, '.private-asp', 's', 'snap.db');
    const raw = new Database(dbPath);
    raw.exec("DROP TABLE dirs; DELETE FROM meta WHERE key = 'dir_records'");
    raw.pragma('user_version = 3');
    raw.close();
    const before = asyncadminCli(['-d', data, '-s']);
    assert.equal(before.code, 0, before.stderr);
    assert.match(before.stdout, /Synchronized: 4[0-9]/);
    mutate(data);
    const r = asyncCli([...args, '--exclude', '*.tmp']);
    assert.equal(r.code, 0, r.stderr);
    const check = new Database(dbPath, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), 4);
    const dirs = check.prepare('SELECT count(*) AS n FROM dirs').get() as { n: number };
    check.close();
    assert.ok(dirs.n >= 5, `records written: ${dirs.n}`);
    assert.equal(asyncadminCli(['-d', data, '-s']).code, 0);
    assert.equal(
      describeTree(mirror)['d0/f0.txt']?.content,
      describeTree(data)['d0/f0.txt']?.content,
    );
  });
});

describe('scan progress', () => {
  // `script` gives the run a terminal; without one there is no progress line at all.
  const hasScript = spawnSync('script', ['--version']).status === 0;
  test(
    'a terminal sees the files scanned so far; a pipe sees none',
    { skip: !hasScript && 'no script(1)' },
    () => {
      const root = tmp();
      const data = join(root, 'data');
      const mirror = join(root, 'mirror');
      mkdirSync(mirror);
      const files: Record<string, string> = {};
      for (let i = 0; i < 600; i++) files[`d${i}/f.txt`] = 'x';
      writeTree(data, files);
      const cmd = [process.execPath, ASYNC_BIN, '-N', 'p', '-d', data, '-r', mirror]
        .map((a) => `'${a}'`)
        .join(' ');
      const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], {
        encoding: 'utf8',
        env: { ...process.env, TERM: 'xterm', COLUMNS: '120' },
      });
      assert.equal(tty.status, 0, tty.stdout);
      assert.match(tty.stdout, /scanning: [\d,]+ files in [\d,]+ directories \| [\d,]+ files\/s/);
      const piped = asyncCli(['-N', 'p2', '-d', data, '-r', mirror]);
      assert.equal(piped.code, 0, piped.stderr);
      assert.doesNotMatch(piped.stderr + piped.stdout, /scanning:/);
    },
  );
});
