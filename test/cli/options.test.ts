/** Option parsing, without running anything: forms, defaults, validation messages. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OPTION_TABLE, parseAsyncArgs, parseRemote } from '../../src/cli/options.js';
import { parseRate } from '../../src/core/units.js';
import { sessionNameProblem } from '../../src/core/session-name.js';
import { comparePaths, unsafeRelPathReason } from '../../src/core/paths.js';

const sink = { write: () => undefined };
const run = (args: string[]) => {
  const r = parseAsyncArgs(args, sink);
  assert.equal(r.kind, 'run');
  return (r as Extract<typeof r, { kind: 'run' }>).options;
};

describe('parseAsyncArgs', () => {
  test('short and long forms, with = and without', () => {
    const a = run(['-N', 'j', '-d', 'x', '-r', 'y', '-K', 'pull', '-l', '500m', '-t', '-x']);
    const b = run([
      '--name=j',
      '--local-dir',
      'x',
      '--remote-dir=y',
      '--direction=pull',
      '--target-rate',
      '500m',
      '--preserve-time',
      '--reset',
    ]);
    assert.deepEqual(a, b);
    assert.equal(a.targetRate, 500_000_000);
    assert.equal(a.direction, 'pull');
    assert.equal(a.overwrite, 'always');
  });

  test('defaults', () => {
    const o = run(['-N', 'j', '-d', 'x', '-r', 'y']);
    assert.equal(o.direction, 'push');
    assert.equal(o.transferThreads, 4);
    assert.equal(o.targetRate, undefined);
    assert.equal(o.quiet, false);
  });

  test('every option of the table has a long form and is listed in --help', () => {
    let help = '';
    parseAsyncArgs(['--help'], { write: (s: string) => (help += s) });
    for (const spec of OPTION_TABLE) {
      const long = /--[a-z0-9-]+/.exec(spec.flags)?.[0];
      assert.ok(long, spec.flags);
      assert.ok(help.includes(long), `${long} in help`);
    }
  });

  test('-r forms', () => {
    assert.deepEqual(parseRemote('/data/x'), { path: '/data/x' });
    assert.deepEqual(parseRemote('./rel'), { path: './rel' });
    assert.deepEqual(parseRemote('host:/p'), { host: 'host', path: '/p' });
    assert.deepEqual(parseRemote('alice@host:/p'), { user: 'alice', host: 'host', path: '/p' });
    assert.deepEqual(parseRemote('host:'), { host: 'host', path: '.' });
  });
});

describe('small parsers', () => {
  test('rates', () => {
    const rows: [string, number | undefined][] = [
      ['500m', 5e8],
      ['10M', 1e7],
      ['1g', 1e9],
      ['64k', 64_000],
      ['1000', 1000],
      ['1.5g', 1.5e9],
      ['0', undefined],
      ['fast', undefined],
      ['-5m', undefined],
      ['5x', undefined],
    ];
    for (const [text, want] of rows) assert.equal(parseRate(text), want, text);
  });
  test('session names', () => {
    for (const ok of ['job1', 'A_b-C', '0']) assert.equal(sessionNameProblem(ok), undefined, ok);
    for (const bad of ['', 'a b', 'a/b', '..', 'é', 'a.b']) assert.ok(sessionNameProblem(bad), bad);
  });
  test('path order puts a directory right before its contents', () => {
    const sorted = ['a-c', 'a/b', 'a', 'a/b/c', 'ab'].sort(comparePaths);
    assert.deepEqual(sorted, ['a', 'a/b', 'a/b/c', 'a-c', 'ab']);
  });
  test('unsafe relative paths', () => {
    for (const bad of ['/abs', 'a/../b', '..', 'a//b', './a', '.private-asp/x', 'a\0b'])
      assert.ok(unsafeRelPathReason(bad), bad);
    for (const ok of ['a', 'a/b', '.hidden', 'a..b'])
      assert.equal(unsafeRelPathReason(ok), undefined, ok);
  });
});
