/**
 * Filters through the real CLI: a table of rule sets against one fixture tree, compared
 * with the set of paths that reach the peer; rule files and stdin; bad rules; a change of
 * rules between runs that must not delete anything; --clean-excluded.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { asyncCli, asyncadminCli, describeTree, syncPair } from '../helpers.js';

const FIXTURE: Record<string, string> = {
  'a.txt': 'a',
  'b.log': 'b',
  '.hidden': 'h',
  'src/main.c': 'm',
  'src/util.h': 'u',
  'src/a/x.c': 'x',
  'src/build/out.o': 'o',
  'build/out.o': 'o2',
  'docs/README.md': 'r',
  'docs/tmp/scratch.txt': 's',
  'logs/app.log': 'l',
};

function setup(): { data: string; mirror: string; root: string } {
  return syncPair(FIXTURE);
}

const synced = (dir: string): string[] => Object.keys(describeTree(dir)).sort();
const all = Object.keys(describeTree(((): string => setup().data)()));
const without = (...drop: string[]): string[] =>
  all.filter((p) => !drop.some((d) => p === d || p.startsWith(`${d}/`))).sort();

describe('filter rules decide what reaches the peer', () => {
  // [title, filter args, expected synced paths]
  const rows: [string, string[], string[]][] = [
    ['no rules: everything', [], [...all].sort()],
    ['exclude a name at any depth', ['--exclude', '*.log'], without('b.log', 'logs/app.log')],
    ['exclude anchored at the root', ['--exclude', '/build'], without('build')],
    [
      'exclude a directory name anywhere (not entered)',
      ['--exclude', 'build/'],
      without('build', 'src/build'),
    ],
    ['exclude a path suffix', ['--exclude', 'docs/tmp'], without('docs/tmp')],
    [
      'exclude with ** across directories',
      ['--exclude', '/src/**/*.c'],
      without('src/main.c', 'src/a/x.c'),
    ],
    ['exclude with ? and a class', ['--exclude', '?.[tl][xo]?'], without('a.txt', 'b.log')],
    ['dot files are matched like any name', ['--exclude', '.*'], without('.hidden')],
    [
      'first match wins: include before exclude',
      ['--include', 'app.log', '--exclude', '*.log'],
      without('b.log'),
    ],
    [
      'only *.c: include directories and *.c, exclude the rest',
      ['--include', '*/', '--include', '*.c', '--exclude', '*'],
      ['build', 'docs', 'docs/tmp', 'logs', 'src', 'src/a', 'src/a/x.c', 'src/build', 'src/main.c'],
    ],
    [
      'an excluded directory is not entered, whatever later rules say',
      ['--exclude', 'src/', '--include', '*.c'],
      without('src'),
    ],
    ['unmatched names are included (include-only list)', ['--include', '*.md'], [...all].sort()],
    ['matching is case-sensitive', ['--exclude', '*.TXT'], [...all].sort()],
  ];
  for (const [title, args, expected] of rows) {
    test(title, () => {
      const { data, mirror } = setup();
      const r = asyncCli(['-N', 'f', '-d', data, '-r', mirror, ...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(synced(mirror), expected);
    });
  }
});

describe('rule files', () => {
  test('--exclude-from and --include-from, with +/- lines and comments, in order', () => {
    const { data, mirror, root } = setup();
    const rules = join(root, 'rules.txt');
    // src/a is a directory that `- src/**` excludes, so src/a/x.c is never seen.
    writeFileSync(rules, '# keep sources and docs\n+ *.c\n- src/**\n\n- /logs/\n');
    const more = join(root, 'more.txt');
    writeFileSync(more, 'README.md\n- docs/**\n');
    const r = asyncCli([
      '-N',
      'f',
      '-d',
      data,
      '-r',
      mirror,
      '--exclude-from',
      rules,
      '--include-from',
      more,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(synced(mirror), [
      '.hidden',
      'a.txt',
      'b.log',
      'build',
      'build/out.o',
      'docs',
      'docs/README.md',
      'src',
      'src/main.c',
    ]);
  });

  test('- reads the rules from standard input', () => {
    const { data, mirror } = setup();
    const r = asyncCli(['-N', 'f', '-d', data, '-r', mirror, '--exclude-from', '-'], {
      input: '- *.log\n- /src/\n',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(synced(mirror), without('b.log', 'logs/app.log', 'src'));
  });

  const bad: [string, (root: string) => string[], RegExp][] = [
    [
      'a missing rule file',
      (root) => ['--exclude-from', join(root, 'nope.txt')],
      /Cannot read the rule file.*nope\.txt.*no such file/,
    ],
    [
      'an unknown rule prefix',
      (root) => {
        writeFileSync(join(root, 'r.txt'), '- *.log\nP keep/\n');
        return ['--exclude-from', join(root, 'r.txt')];
      },
      /line 2 \('P keep\/'\): unknown rule prefix 'P'/,
    ],
    [
      'an unclosed bracket',
      () => ['--exclude', '[abc'],
      /Invalid --exclude pattern '\[abc': an unclosed/,
    ],
    [
      'an empty pattern',
      () => ['--include', ''],
      /Invalid --include pattern '': the pattern is empty/,
    ],
  ];
  for (const [title, args, msg] of bad) {
    test(`refused with exit 2: ${title}`, () => {
      const { data, mirror, root } = setup();
      const r = asyncCli(['-N', 'f', '-d', data, '-r', mirror, ...args(root)]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.deepEqual(synced(mirror), []);
    });
  }
});

describe('a change of rules between runs', () => {
  test('newly excluded paths are neither deleted at the peer nor sent; removing the rule resumes', () => {
    const { data, mirror } = setup();
    const run = (...args: string[]) => asyncCli(['-N', 'f', '-d', data, '-r', mirror, ...args]);
    assert.equal(run().code, 0);
    const before = describeTree(mirror);
    // Excluded now: changed and deleted at the sender, the peer keeps its copies untouched.
    writeFileSync(join(data, 'b.log'), 'changed');
    writeFileSync(join(data, 'logs/app.log'), 'changed too');
    const r = run('--exclude', '*.log', '--exclude', '/docs/');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0 files .* 0 deleted/);
    assert.deepEqual(describeTree(mirror), before);
    // Without the rule, the changed files sync again, nothing is lost.
    const r2 = run();
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(describeTree(mirror), describeTree(data));
  });

  test('an excluded file deleted at the sender is not deleted at the peer (it was)', () => {
    const { data, mirror } = setup();
    const run = (...args: string[]) => asyncCli(['-N', 'f', '-d', data, '-r', mirror, ...args]);
    assert.equal(run().code, 0);
    rmSync(join(data, 'b.log'));
    rmSync(join(data, 'docs'), { recursive: true });
    const r = run('--exclude', '*.log', '--exclude', '/docs/');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0 deleted/);
    assert.ok(synced(mirror).includes('b.log'));
    assert.ok(synced(mirror).includes('docs'));
    // The record stays too: without the rule, the delete propagates then.
    const r2 = run();
    assert.equal(r2.code, 0, r2.stderr);
    assert.ok(!synced(mirror).includes('b.log'));
  });

  test('deleting a directory at the sender keeps its newly excluded contents at the peer', () => {
    const { data, mirror } = setup();
    const run = (...args: string[]) => asyncCli(['-N', 'f', '-d', data, '-r', mirror, ...args]);
    assert.equal(run().code, 0);
    // The whole docs/ tree goes at the sender; docs/tmp is excluded from now on.
    rmSync(join(data, 'docs'), { recursive: true });
    const r = run('--exclude', 'tmp/');
    assert.equal(r.code, 0, r.stderr);
    const left = synced(mirror).filter((p) => p.startsWith('docs'));
    assert.deepEqual(left, ['docs', 'docs/tmp', 'docs/tmp/scratch.txt']);
  });

  test('--clean-excluded drops the records of excluded paths on both sides', () => {
    const { data, mirror } = setup();
    const run = (...args: string[]) => asyncCli(['-N', 'f', '-d', data, '-r', mirror, ...args]);
    assert.equal(run().code, 0);
    const files = (dir: string) =>
      asyncadminCli(['-d', dir, '-N', 'f', '-f'])
        .stdout.split('\n')
        .filter((l) => l.includes('.log'));
    assert.equal(files(data).length, 2);
    assert.equal(run('--exclude', '*.log').code, 0);
    assert.equal(files(data).length, 2, 'excluded records are kept by default');
    const r = run('--exclude', '*.log', '--exclude', 'tmp/', '--clean-excluded');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(files(data), []);
    assert.deepEqual(files(mirror), []);
    const tmpRecords = (dir: string) =>
      asyncadminCli(['-d', dir, '-N', 'f', '-f'])
        .stdout.split('\n')
        .filter((l) => l.startsWith('docs/tmp'));
    assert.deepEqual(tmpRecords(data), [], 'the excluded directory and its contents');
    assert.deepEqual(tmpRecords(mirror), []);
    // The files themselves stay where they are.
    assert.ok(synced(mirror).includes('b.log'));
  });
});
