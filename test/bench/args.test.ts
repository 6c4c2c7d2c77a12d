/**
 * bench/args.ts, the one option parser of the bench/ entry points: help text, the one-line
 * errors (unknown option, missing value, bad number), environment fallbacks, positional
 * arguments; then the real scripts run as child processes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { BenchCli, OptionSpecs } from '../../bench/args.js';
import { helpText, readBenchArgs } from '../../bench/args.js';
import { parseRate } from '../../src/core/units.js';
import { REPO, runCli } from '../helpers.js';

const CLI = {
  script: 'demo',
  summary: 'a demo of the bench option parser.',
  options: {
    files: { type: 'integer', min: 1, default: 1000, env: 'DEMO_FILES', help: 'files to make' },
    dirs: { type: 'integer', min: 1, env: 'DEMO_DIRS', defaultText: 'files/50', help: 'dirs' },
    port: { type: 'integer', short: 'P', min: 1, max: 65535, default: 33001, help: 'port' },
    idle: { type: 'number', positive: true, default: 20, arg: 'SECONDS', help: 'idle time' },
    'kill-at': { type: 'number', min: 0, max: 1, default: 0.5, help: 'when to kill' },
    peer: { type: 'string', choices: ['local', 'daemon'], default: 'local', help: 'the peer' },
    rate: {
      type: 'string',
      default: '400m',
      check: (t: string) => (parseRate(t) === undefined ? 'a rate like 400m' : undefined),
      help: 'the rate',
    },
    'async-args': { type: 'string', env: 'DEMO_ARGS', help: 'extra arguments' },
    keep: { type: 'boolean', help: 'keep the trees' },
  },
} as const satisfies BenchCli<OptionSpecs>;

function values(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const r = readBenchArgs(CLI, argv, env);
  assert.equal(r.kind, 'args', r.kind === 'error' ? r.message : r.kind);
  return (r as Extract<typeof r, { kind: 'args' }>).values;
}

function error(argv: string[], env: NodeJS.ProcessEnv = {}, cli: BenchCli<OptionSpecs> = CLI) {
  const r = readBenchArgs(cli, argv, env);
  assert.equal(r.kind, 'error', `expected an error for ${JSON.stringify(argv)}`);
  return (r as Extract<typeof r, { kind: 'error' }>).message;
}

describe('bench/args: values', () => {
  test('defaults, long and short forms, = and without', () => {
    const v = values([]);
    assert.deepEqual(
      { ...v },
      {
        files: 1000,
        dirs: undefined,
        port: 33001,
        idle: 20,
        'kill-at': 0.5,
        peer: 'local',
        rate: '400m',
        'async-args': undefined,
        keep: false,
      },
    );
    const w = values(['--files=2_000', '-P', '22', '--idle', '0.5', '--peer', 'daemon', '--keep']);
    assert.equal(w.files, 2000);
    assert.equal(w.port, 22);
    assert.equal(w.idle, 0.5);
    assert.equal(w.peer, 'daemon');
    assert.equal(w.keep, true);
    assert.equal(values(['-P33']).port, 33);
  });

  test('a value that starts with a dash but names no option is the value', () => {
    assert.equal(values(['--async-args', '-q --foo'])['async-args'], '-q --foo');
    // After `=` even one of the script's options is the value.
    assert.equal(values(['--async-args=--keep'])['async-args'], '--keep');
  });

  test('a flag named no-something is off unless given (commander reads --no-x as a negation)', () => {
    const cli = {
      script: 'demo',
      summary: 'flags.',
      options: { 'no-write': { type: 'boolean', help: 'print only' } },
    } as const satisfies BenchCli<OptionSpecs>;
    const read = (argv: string[]) => readBenchArgs(cli, argv);
    assert.deepEqual(read([]), { kind: 'args', values: { 'no-write': false }, positionals: [] });
    assert.deepEqual(read(['--no-write']), {
      kind: 'args',
      values: { 'no-write': true },
      positionals: [],
    });
    assert.equal(
      error(['--no-write=yes'], {}, cli),
      "bench/demo: --no-write takes no value, got 'yes'; give --no-write alone (see --help)",
    );
  });

  test('environment fallback: used without the option, the option wins, empty is unset', () => {
    assert.equal(values([], { DEMO_FILES: '500' }).files, 500);
    assert.equal(values(['--files', '7'], { DEMO_FILES: '500' }).files, 7);
    assert.equal(values([], { DEMO_FILES: '' }).files, 1000);
    assert.equal(values([], { DEMO_DIRS: '9' }).dirs, 9);
    assert.equal(values([], { DEMO_ARGS: '-v' })['async-args'], '-v');
    // An option given right is not spoiled by a bad environment value.
    assert.equal(values(['--files', '7'], { DEMO_FILES: 'lots' }).files, 7);
  });
});

describe('bench/args: one-line errors', () => {
  const cases: [string, string[], string][] = [
    ['unknown option, near one', ['--fles', '3'], "unknown option '--fles'; did you mean --files?"],
    ['unknown option', ['--verbose'], "unknown option '--verbose'; leave it out"],
    ['unknown short option', ['-x'], "unknown option '-x'; leave it out"],
    ['missing value at the end', ['--files'], 'needs a value; give it as --files N'],
    [
      'missing value before an option',
      ['--files', '--keep'],
      "--files needs a value (it was followed by '--keep'); give it as --files N",
    ],
    ['missing value of -P', ['-P'], '-P needs a value; give it as -P N'],
    ['not a number', ['--files', 'x'], "--files must be a whole number of at least 1, not 'x'"],
    ['empty', ['--files='], "--files must be a whole number of at least 1, not ''"],
    ['not whole', ['--files', '2.5'], "--files must be a whole number of at least 1, not '2.5'"],
    [
      'below the minimum',
      ['--files', '0'],
      "--files must be a whole number of at least 1, not '0'",
    ],
    ['negative', ['--files', '-1'], "--files must be a whole number of at least 1, not '-1'"],
    ['NaN spelled out', ['--idle', 'NaN'], "--idle must be a number above 0, not 'NaN'"],
    ['exponent', ['--files', '1e3'], "--files must be a whole number of at least 1, not '1e3'"],
    [
      'above the maximum',
      ['-P', '70000'],
      "-P must be a whole number from 1 to 65535, not '70000'",
    ],
    ['not positive', ['--idle', '0'], "--idle must be a number above 0, not '0'"],
    ['out of range', ['--kill-at', '1.5'], "--kill-at must be a number from 0 to 1, not '1.5'"],
    ['not a choice', ['--peer', 'x'], "--peer must be one of local, daemon, not 'x'"],
    ['check', ['--rate', 'fast'], "--rate must be a rate like 400m, not 'fast'"],
    ['flag with a value', ['--keep=yes'], "--keep takes no value, got 'yes'; give --keep alone"],
    ['positional', ['extra'], "unexpected argument 'extra'; this script takes options only"],
  ];
  for (const [what, argv, expected] of cases) {
    test(`${what}: ${argv.join(' ')}`, () => {
      const m = error(argv);
      assert.match(m, /^bench\/demo: [^\n]+; [^\n]+ \(see --help\)$/);
      assert.ok(m.includes(expected), `${m}\n  lacks: ${expected}`);
    });
  }

  test('a bad environment value names the variable and says to fix or unset it', () => {
    assert.equal(
      error([], { DEMO_FILES: 'lots' }),
      "bench/demo: DEMO_FILES must be a whole number of at least 1, not 'lots'; " +
        'fix or unset DEMO_FILES, or give --files (see --help)',
    );
  });

  test('former positional arguments are refused with the named form of the same command', () => {
    const cli = { ...CLI, formerPositionals: ['files', 'rate'] } as const;
    assert.equal(
      error(['500', '1g'], {}, cli),
      'bench/demo: positional arguments are no longer read; name them: --files 500 --rate 1g ' +
        '(see --help)',
    );
    assert.match(error(['500', '1g', 'x'], {}, cli), /--rate 1g, and leave out 'x' \(see/);
  });
});

describe('bench/args: positional arguments', () => {
  const RATES = {
    script: 'rates',
    summary: 'rates.',
    positionals: {
      name: 'RATE',
      help: 'target rates',
      check: (t: string) => (parseRate(t) === undefined ? 'a rate like 500m' : undefined),
    },
    options: { windows: { type: 'integer', min: 1, default: 3, help: 'windows' } },
  } as const satisfies BenchCli<OptionSpecs>;

  test('taken in order, mixed with options, and after --', () => {
    const r = readBenchArgs(RATES, ['10m', '--windows', '2', '1g', '--', '5m']);
    assert.equal(r.kind, 'args');
    if (r.kind !== 'args') return;
    assert.deepEqual(r.positionals, ['10m', '1g', '5m']);
    assert.equal(r.values.windows, 2);
  });

  test('each is checked', () => {
    const r = readBenchArgs(RATES, ['10m', 'fast']);
    assert.deepEqual(r, {
      kind: 'error',
      message:
        "bench/rates: RATE must be a rate like 500m, not 'fast'; fix that argument (see --help)",
    });
  });
});

describe('bench/args: --help', () => {
  test('the summary, the command line, each option with its default and variable', () => {
    const r = readBenchArgs(CLI, ['--help']);
    assert.equal(r.kind, 'help');
    if (r.kind !== 'help') return;
    assert.equal(r.text, helpText(CLI));
    const lines = r.text.split('\n');
    assert.equal(lines[0], 'bench/demo: a demo of the bench option parser.');
    assert.ok(lines.includes('Usage: node dist/bench/demo.js [options]'));
    const line = (flag: string) => lines.find((l) => l.startsWith(`  ${flag} `)) ?? '';
    assert.match(line('--files <N>'), /files to make \(default 1000; env DEMO_FILES\)$/);
    assert.match(line('--dirs <N>'), /\(default files\/50; env DEMO_DIRS\)$/);
    assert.match(line('-P, --port <N>'), /port \(default 33001\)$/);
    assert.match(line('--idle <SECONDS>'), /\(default 20\)$/);
    assert.match(line('--peer <local|daemon>'), /\(default local\)$/);
    assert.match(line('--keep'), /keep the trees$/);
    assert.match(line('-h, --help'), /print this help and exit/);
    for (const l of lines) assert.ok(l.length <= 100, `too long: ${l}`);
  });

  test('-h is --help, and it wins over a mistake beside it', () => {
    assert.equal(readBenchArgs(CLI, ['-h']).kind, 'help');
    assert.equal(readBenchArgs(CLI, ['--files', 'x', '--nope', '--help']).kind, 'help');
    assert.equal(readBenchArgs(CLI, ['--peer', 'x', '-h', 'extra']).kind, 'help');
    assert.equal(readBenchArgs(CLI, ['-h'], { DEMO_FILES: 'lots' }).kind, 'help');
    // Commander stops at an option that ends the line without its value, before --help.
    assert.equal(readBenchArgs(CLI, ['--help', '--files']).kind, 'help');
    assert.equal(readBenchArgs(CLI, ['-h', '-P']).kind, 'help');
  });

  test('a long summary is wrapped; each command line stands under the one before', () => {
    const cli = {
      ...CLI,
      summary: 'a demo of the bench option parser, '.repeat(6).trim(),
      usage: ['npm run demo -- [options]', 'node dist/bench/demo.js [options]'],
    } as const;
    const lines = helpText(cli).split('\n');
    assert.match(lines[0]!, /^bench\/demo: a demo/);
    const usage = lines.indexOf('Usage: npm run demo -- [options]');
    assert.ok(usage >= 3, 'the summary takes more than one line');
    assert.equal(lines[usage - 1], '');
    assert.equal(lines[usage + 1], '       node dist/bench/demo.js [options]');
    for (const l of lines) assert.ok(l.length <= 100, `too long: ${l}`);
  });

  test('positional arguments have their own section', () => {
    const text = helpText({
      script: 'rates',
      summary: 'rates.',
      positionals: { name: 'RATE', help: 'target rates' },
      options: {},
    });
    assert.match(text, /\nArguments:\n {2}RATE +target rates\n/);
  });
});

describe('bench scripts as commands', () => {
  const SCRIPTS = [
    'run',
    'micro',
    'native-free',
    'continuous',
    'rate',
    'resume',
    'transport',
    'filter-scan',
    'watch-setup',
    'staging',
  ];
  const script = (name: string): string => join(REPO, 'dist', 'bench', `${name}.js`);
  const STACK = /^\s+at /m;

  test('run.js --help prints the usage and exits 0', () => {
    const r = runCli(script('run'), ['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^bench\/run: /);
    assert.match(r.stdout, /--runs <N> +measured runs per tool \(default 3; env BENCH_RUNS\)/);
  });

  test('run.js --runs x: one line on stderr, exit 2, no stack trace', () => {
    const r = runCli(script('run'), ['--runs', 'x']);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      "bench/run: --runs must be a whole number of at least 1, not 'x'; give it as --runs N " +
        '(see --help)\n',
    );
    assert.doesNotMatch(r.stderr, STACK);
  });

  // Every entry point parses with bench/args.ts before it makes or starts anything.
  for (const name of SCRIPTS) {
    test(`${name}.js: --help exits 0, an unknown option exits 2 with one line`, () => {
      const help = runCli(script(name), ['--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^bench/${name}: `));
      const bad = runCli(script(name), ['--no-such-option']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, new RegExp(`^bench/${name}: unknown option '--no-such-option'`));
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      assert.doesNotMatch(bad.stderr, STACK);
    });
  }
});
