/**
 * What a run shows and leaves through the real CLI: --dry-run (plan printed, both trees
 * and both databases byte-identical), --json, -v, the progress display (only on a
 * pseudo-terminal), and the -L log with its rotation and levels.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ASYNC_BIN, asyncCli, describeTree, statTree, tmp, writeTree } from '../helpers.js';

function setup() {
  const root = tmp();
  const data = join(root, 'data');
  const mirror = join(root, 'mirror');
  mkdirSync(data);
  mkdirSync(mirror);
  writeTree(data, { 'a.txt': 'alpha', 'b.txt': 'beta', 'd/c.txt': 'gamma', 'd/e.txt': 'e' });
  const run = (...args: string[]) => asyncCli(['-N', 'o', '-d', data, '-r', mirror, ...args]);
  return { root, data, mirror, run };
}

/** Every byte under a directory, .private-asp included (databases, WAL, locks, cache). */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const n of readdirSync(join(dir, rel)).sort()) {
      const p = rel === '' ? n : `${rel}/${n}`;
      const abs = join(dir, p);
      try {
        out[p] = createHash('sha256').update(readFileSync(abs)).digest('hex');
      } catch {
        out[p] = 'dir';
        walk(p);
      }
    }
  };
  walk('');
  return out;
}

describe('--dry-run', () => {
  test('prints the plan with sizes and changes nothing, databases included', () => {
    const { data, mirror, run } = setup();
    assert.equal(run('-t').code, 0);
    writeFileSync(join(data, 'new.bin'), Buffer.alloc(3000, 1));
    renameSync(join(data, 'b.txt'), join(data, 'b2.txt'));
    rmSync(join(data, 'd/e.txt'));
    const before = [fingerprint(data), fingerprint(mirror), statTree(data), statTree(mirror)];
    const r = run('-t', '--dry-run');
    assert.equal(r.code, 0, r.stderr);
    // d's own times changed with the delete inside it: a metadata-only line for it.
    assert.deepEqual(r.stdout.split('\n').slice(0, 4), [
      '>R b.txt -> b2.txt',
      '*deleting d/e.txt',
      '.m d',
      '>f new.bin (2.93 KiB)',
    ]);
    assert.match(
      r.stdout,
      /\(dry run, nothing changed\): 1 files \(2\.93 KiB\) to send, .*1 to rename, 1 to delete/,
    );
    assert.deepEqual(
      [fingerprint(data), fingerprint(mirror), statTree(data), statTree(mirror)],
      before,
    );
    // The real run then does what the plan said.
    const r2 = run('-t', '-v');
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, />R b\.txt -> b2\.txt\n\*deleting d\/e\.txt\n.*>f new\.bin/s);
    assert.deepEqual(describeTree(mirror), describeTree(data));
  });

  test('a first dry run creates no database, and with --create-dir no directory', () => {
    const { root, data, mirror } = setup();
    const fresh = join(root, 'not-yet');
    const before = fingerprint(root);
    const r = asyncCli(['-N', 'o', '-d', data, '-r', fresh, '--create-dir', '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /cd d\/\n/);
    assert.match(r.stdout, /4 files \(15 B\) to send/);
    assert.ok(!existsSync(fresh));
    assert.deepEqual(fingerprint(root), before);
    assert.ok(!existsSync(join(data, '.private-asp')));
    void mirror;
  });

  test('the plan shows --mirror deletes and --remove-after-transfer removals', () => {
    const { data, mirror, run } = setup();
    writeTree(mirror, { 'extra.txt': 'x' });
    const before = [fingerprint(data), fingerprint(mirror)];
    const r = run('--dry-run', '--mirror', '--remove-after-transfer');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes('*deleting extra.txt'), r.stdout);
    assert.ok(lines.includes('>f a.txt (5 B)') && lines.includes('-f a.txt'), r.stdout);
    assert.deepEqual([fingerprint(data), fingerprint(mirror)], before);
  });

  test('--dry-run --json carries the plan', () => {
    const { run } = setup();
    const r = run('--dry-run', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      dryRun: boolean;
      plan: { op: string; path: string; size?: number }[];
    };
    assert.equal(j.dryRun, true);
    assert.deepEqual(
      j.plan.map((p) => `${p.op} ${p.path} ${p.size ?? ''}`.trim()),
      ['send a.txt 5', 'send b.txt 4', 'mkdir d', 'send d/c.txt 5', 'send d/e.txt 1'],
    );
  });
});

describe('--json and -v', () => {
  test('--json is one parsable object that matches what happened', () => {
    const { data, mirror, run } = setup();
    const r = run('--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.session, 'o');
    assert.equal(j.direction, 'push');
    assert.equal(j.ok, true);
    assert.equal(j.exitCode, 0);
    assert.equal(j.filesSent, 4);
    assert.equal(j.bytesSent, 15);
    assert.equal(j.dirsCreated, 1);
    assert.deepEqual(j.errors, []);
    assert.deepEqual(describeTree(mirror), describeTree(data));
    rmSync(join(data, 'a.txt'));
    const j2 = JSON.parse(run('--json').stdout);
    assert.equal(j2.deleted, 1);
    assert.equal(j2.filesSent, 0);
  });

  test('--json reports a failed run as an object too, with its exit code', () => {
    const { root, data } = setup();
    const r = asyncCli(['-N', 'o', '-d', data, '-r', join(root, 'missing'), '--json']);
    assert.equal(r.code, 3);
    const j = JSON.parse(r.stdout);
    assert.deepEqual([j.ok, j.exitCode, j.error.code], [false, 3, 'ERR_REMOTE_DIR']);
    assert.match(j.error.hint, /--create-dir/);
  });

  test('-v lists each change, itemized', () => {
    const { run } = setup();
    const r = run('-v');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').slice(0, 5).sort(), [
      '>f a.txt',
      '>f b.txt',
      '>f d/c.txt',
      '>f d/e.txt',
      'cd d/',
    ]);
  });
});

describe('progress display', () => {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  test(
    'shown on a pseudo-terminal, never on a pipe or with -q',
    { skip: !hasScript && 'no script(1)' },
    () => {
      const { root, data, mirror } = setup();
      writeFileSync(join(data, 'big.bin'), Buffer.alloc(4 * 1024 * 1024, 3));
      const args = (name: string, dir: string) => ['-N', name, '-d', data, '-r', dir, '-l', '64m'];
      const inPty = (argv: string[]) => {
        const cmd = [process.execPath, ASYNC_BIN, ...argv].map((a) => `'${a}'`).join(' ');
        return spawnSync('script', ['-qec', cmd, '/dev/null'], {
          encoding: 'utf8',
          env: { ...process.env, TERM: 'xterm' },
        }).stdout;
      };
      const shown = inPty(args('p1', mirror));
      assert.match(shown, /\d+\/5 files \| .* of 4\.00 MiB \| .*b\/s \| ETA/);
      const m2 = join(root, 'm2');
      mkdirSync(m2);
      const quiet = inPty([...args('p2', m2), '-q']);
      assert.doesNotMatch(quiet, /ETA/);
      const m3 = join(root, 'm3');
      mkdirSync(m3);
      const piped = asyncCli(args('p3', m3));
      assert.equal(piped.code, 0, piped.stderr);
      assert.doesNotMatch(piped.stdout + piped.stderr, /ETA/);
    },
  );
});

describe('-L logs', () => {
  test('records each change and error with its path, as JSON lines', () => {
    const { root, data, mirror, run } = setup();
    const logs = join(root, 'logs');
    const r = run('-L', logs);
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(logs);
    assert.deepEqual(files, ['async.1.log']);
    const lines = readFileSync(join(logs, files[0]!), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const changes = lines
      .filter((l) => l.change)
      .map((l) => `${l.change} ${l.path}`)
      .sort();
    assert.deepEqual(changes, [
      'mkdir d',
      'send a.txt',
      'send b.txt',
      'send d/c.txt',
      'send d/e.txt',
    ]);
    assert.ok(lines.some((l) => l.msg === 'run finished' && l.exitCode === 0));
    assert.ok(!lines.some((l) => l.level < 30), 'no debug lines without -D');
    // An error is logged with its path: a receiver directory in the way of a file.
    writeTree(mirror, { 'blocked/untracked.txt': 'receiver data' });
    writeFileSync(join(data, 'blocked'), 'a file at the sender');
    const r2 = run('-L', logs, '-DD');
    assert.equal(r2.code, 1, r2.stderr);
    const all = readFileSync(join(logs, 'async.1.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(
      all.some((l) => l.level === 20 && l.msg === 'options'),
      '-DD logs the options',
    );
    assert.ok(
      all.some((l) => l.level === 50 && l.path === 'blocked'),
      'the error, with its path',
    );
    assert.ok(all.some((l) => l.msg === 'run finished' && l.exitCode === 1));
  });

  test('rotates by size', () => {
    const { root, data, run } = setup();
    const logs = join(root, 'logs');
    // About 3.4 MB of log lines from 6000 files (long paths make long lines, one per change):
    // the 1 MB limit is crossed early, so the rotation (made at the next drain after the
    // limit, see cli/log.ts) happens well before the run ends and closes the log.
    const dir = `many/${'d'.repeat(200)}`;
    writeTree(
      data,
      Object.fromEntries(
        Array.from({ length: 6000 }, (_, i) => [
          `${dir}/${String(i).padStart(4, '0')}${'f'.repeat(200)}`,
          '',
        ]),
      ),
    );
    const r = run('-L', `${logs}:1`, '-DDD');
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(logs).sort();
    assert.ok(files.length >= 2, `rotated: ${files.join(' ')}`);
    assert.ok(files.every((f) => /^async\.\d+\.log$/.test(f)));
  });

  test('a log directory inside a synced directory is refused (exit 2)', () => {
    const { data, mirror, run } = setup();
    const r = run('-L', join(data, 'logs'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /-L\/--alt-logdir .* is inside the synced directory/);
    assert.deepEqual(Object.keys(describeTree(mirror)), []);
  });
});
