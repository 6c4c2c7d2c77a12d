/**
 * The command line of every bench/ entry point: each script declares its options once (name,
 * type, default, one line of help, the checks of a number) and gets `--help`/`-h` (the
 * script's summary and its options with their defaults, exit 0) and, for an unknown option, a
 * missing value or a bad number, one line `bench/<script>: <what is wrong>; <what to do> (see
 * --help)` on stderr and exit 2, never a stack trace. People tune `-l` and reproduce the
 * figures of RESULTS.md with these, so a typo must not run on as NaN or undefined.
 *
 * Built on node:util parseArgs in its non-strict mode with tokens: the strict mode throws
 * errors whose text is its own (and which name no script), so the checks are made here on
 * the tokens, where each message can name the option and say what to give instead.
 */
import { parseArgs } from 'node:util';
import { parseCount, parseSeconds } from '../src/core/units.js';

interface Common {
  /** One line for --help. */
  readonly help: string;
  /** A one-letter alias (`-P`). */
  readonly short?: string;
  /** What --help shows as the default when the script computes it (`files/50`). */
  readonly defaultText?: string;
}

export interface NumberOption extends Common {
  /** `integer`: a whole number (`1_000_000` is read too); `number`: a decimal. Never negative. */
  readonly type: 'integer' | 'number';
  readonly default?: number;
  readonly min?: number;
  readonly max?: number;
  /** Above 0 (for a decimal; for a whole number say `min: 1`). */
  readonly positive?: boolean;
  /** An environment variable read when the option is not given. */
  readonly env?: string;
  /** The value's name in --help (`N` unless given). */
  readonly arg?: string;
}

export interface StringOption extends Common {
  readonly type: 'string';
  readonly default?: string;
  readonly choices?: readonly string[];
  /** Returns what the value must be (`a rate like 400m`) when it is not, else undefined. */
  readonly check?: (text: string) => string | undefined;
  readonly env?: string;
  readonly arg?: string;
}

export interface FlagOption extends Common {
  readonly type: 'boolean';
}

export type OptionSpec = NumberOption | StringOption | FlagOption;
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface BenchCli<O extends OptionSpecs> {
  /** The script's name under bench/ (`run`): the `bench/run:` of every message. */
  readonly script: string;
  /** What the script measures, for --help (a sentence or two; --help wraps it). */
  readonly summary: string;
  /** Command lines for --help; `node dist/bench/<script>.js [options]` unless given. */
  readonly usage?: readonly string[];
  readonly options: O;
  /** Positional arguments the script takes, any number of them (rate.ts: the target rates). */
  readonly positionals?: {
    /** What one of them is, for --help and the messages (`RATE`). */
    readonly name: string;
    readonly help: string;
    readonly check?: (text: string) => string | undefined;
  };
  /**
   * The options that were positional arguments before they had names, in their old order:
   * a positional argument is then refused with the named form of the same command.
   */
  readonly formerPositionals?: readonly (keyof O & string)[];
}

type ValueOf<S> = S extends FlagOption
  ? boolean
  : S extends NumberOption
    ? S extends { readonly default: number }
      ? number
      : number | undefined
    : S extends { readonly default: string }
      ? string
      : string | undefined;

export type Values<O extends OptionSpecs> = { -readonly [K in keyof O]: ValueOf<O[K]> };

export type Outcome<O extends OptionSpecs> =
  | { readonly kind: 'args'; readonly values: Values<O>; readonly positionals: string[] }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly message: string };

/** The one-line message of a usage error: what is wrong, then what to do. */
export function usageMessage(script: string, wrong: string, todo: string): string {
  return `bench/${script}: ${wrong}; ${todo} (see --help)`;
}

/** Prints a usage error of a check the script makes itself and exits 2. */
export function usageError(script: string, wrong: string, todo: string): never {
  process.stderr.write(usageMessage(script, wrong, todo) + '\n');
  process.exit(2);
}

/**
 * Reads `argv` (and the environment fallbacks) against the script's options. Pure: the
 * caller prints the help or the error (see benchArgs).
 */
export function readBenchArgs<const O extends OptionSpecs>(
  cli: BenchCli<O>,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Outcome<O> {
  const specs: Record<string, OptionSpec> = cli.options;
  const parserOptions: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, s] of Object.entries(specs)) {
    parserOptions[name] = {
      type: s.type === 'boolean' ? 'boolean' : 'string',
      ...(s.short ? { short: s.short } : {}),
    };
  }
  const { tokens } = parseArgs({
    args: [...argv],
    options: parserOptions,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  // --help wins over any mistake beside it: someone unsure of the options asks for it.
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) {
    return { kind: 'help', text: helpText(cli) };
  }
  const fail = (wrong: string, todo: string): Outcome<O> => ({
    kind: 'error',
    message: usageMessage(cli.script, wrong, todo),
  });
  /** The value given to each option (true for a flag) and the spelling used (`-P`). */
  const given: Record<string, { value: string | true; raw: string }> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      positionals.push(t.value);
      continue;
    }
    const s = specs[t.name];
    if (s === undefined) {
      const near = closest(t.name, Object.keys(specs));
      return fail(
        `unknown option '${t.rawName}'`,
        near ? `did you mean --${near}?` : 'leave it out',
      );
    }
    const shown = t.rawName;
    if (s.type === 'boolean') {
      if (t.value !== undefined) {
        return fail(`${shown} takes no value, got '${t.value}'`, `give ${shown} alone`);
      }
      given[t.name] = { value: true, raw: shown };
      continue;
    }
    // Non-strict parseArgs takes the next argument as the value even when it looks like an
    // option. When it is one of this script's options (`--runs --keep`) the value is missing;
    // anything else is the value (`--async-args -q`, or `--runs -1`, refused as a number).
    const value = t.value;
    const swallowed = value !== undefined && !t.inlineValue && namesAnOption(value, specs);
    if (value === undefined || swallowed) {
      return fail(
        `${shown} needs a value${swallowed ? ` (it was followed by '${value}')` : ''}`,
        `give it as ${shown} ${argOf(s)}`,
      );
    }
    given[t.name] = { value, raw: shown };
  }

  const values: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(specs)) {
    if (s.type === 'boolean') {
      values[name] = given[name] !== undefined;
      continue;
    }
    const shown = given[name]?.raw ?? `--${name}`;
    let text = given[name]?.value as string | undefined;
    let source = shown;
    let todo = `give it as ${shown} ${argOf(s)}`;
    if (text === undefined && s.env !== undefined && (env[s.env] ?? '') !== '') {
      text = env[s.env]!;
      source = s.env;
      todo = `fix or unset ${s.env}, or give ${shown}`;
    }
    if (text === undefined) {
      values[name] = s.default;
      continue;
    }
    if (s.type === 'string') {
      const must =
        s.choices && !s.choices.includes(text) ? `one of ${s.choices.join(', ')}` : s.check?.(text);
      if (must !== undefined) return fail(`${source} must be ${must}, not '${text}'`, todo);
      values[name] = text;
      continue;
    }
    const n = readNumber(s, text);
    if (n === undefined) return fail(`${source} must be ${numberKind(s)}, not '${text}'`, todo);
    values[name] = n;
  }

  if (positionals.length > 0 && cli.positionals === undefined) {
    const former = cli.formerPositionals ?? [];
    if (former.length > 0) {
      const named = positionals.slice(0, former.length).map((p, i) => `--${former[i]} ${p}`);
      const extra = positionals.slice(former.length).map((p) => `'${p}'`);
      return fail(
        'positional arguments are no longer read',
        `name them: ${named.join(' ')}${extra.length > 0 ? `, and leave out ${extra.join(' ')}` : ''}`,
      );
    }
    return fail(`unexpected argument '${positionals[0]}'`, 'this script takes options only');
  }
  for (const p of positionals) {
    const must = cli.positionals?.check?.(p);
    if (must !== undefined) {
      return fail(`${cli.positionals!.name} must be ${must}, not '${p}'`, 'fix that argument');
    }
  }
  return { kind: 'args', values: values as Values<O>, positionals };
}

/**
 * readBenchArgs for a script's entry: prints the help (exit 0) or the one-line error (exit
 * 2), else returns the values, with `fail` for the checks the script makes itself.
 */
export function benchArgs<const O extends OptionSpecs>(
  cli: BenchCli<O>,
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): { values: Values<O>; positionals: string[]; fail(wrong: string, todo: string): never } {
  const r = readBenchArgs(cli, argv, env);
  if (r.kind === 'help') {
    process.stdout.write(r.text);
    process.exit(0);
  }
  if (r.kind === 'error') {
    process.stderr.write(r.message + '\n');
    process.exit(2);
  }
  return {
    values: r.values,
    positionals: r.positionals,
    fail: (wrong, todo) => usageError(cli.script, wrong, todo),
  };
}

/** The --help text: summary, command lines, then one line per option with its default. */
export function helpText<O extends OptionSpecs>(cli: BenchCli<O>): string {
  const rows: [string, string][] = [];
  for (const [name, s] of Object.entries(cli.options as Record<string, OptionSpec>)) {
    const left = `${s.short ? `-${s.short}, ` : ''}--${name}${s.type === 'boolean' ? '' : ` ${argOf(s)}`}`;
    const notes: string[] = [];
    const def =
      s.defaultText ?? (s.type !== 'boolean' && s.default !== undefined ? String(s.default) : '');
    if (def !== '') notes.push(`default ${def}`);
    if (s.type !== 'boolean' && s.env) notes.push(`env ${s.env}`);
    rows.push([left, notes.length > 0 ? `${s.help} (${notes.join('; ')})` : s.help]);
  }
  rows.push(['-h, --help', 'print this help and exit']);
  if (cli.positionals) rows.unshift([`${cli.positionals.name} ...`, cli.positionals.help]);
  const left = Math.max(...rows.map(([l]) => l.length)) + 4;
  const usage = cli.usage ?? [`node dist/bench/${cli.script}.js [options]`];
  return [
    ...wrap(`bench/${cli.script}: ${cli.summary}`, HELP_WIDTH),
    '',
    'Usage:',
    ...usage.map((u) => `  ${u}`),
    '',
    cli.positionals ? 'Arguments and options:' : 'Options:',
    ...rows.flatMap(([l, r]) =>
      wrap(r, HELP_WIDTH - left).map(
        (line, i) => (i === 0 ? `  ${l}`.padEnd(left) : ' '.repeat(left)) + line,
      ),
    ),
    '',
  ].join('\n');
}

const HELP_WIDTH = 96;

/** Breaks `text` into lines of at most `width` characters at spaces (a longer word stays whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

/** True when `arg` is one of the options (`--keep`, `--runs=3`, `-P`, `-h`) or `--`. */
function namesAnOption(arg: string, specs: Readonly<Record<string, OptionSpec>>): boolean {
  if (arg === '--' || arg === '-h' || arg === '--help') return true;
  const long = /^--([^=]+)/.exec(arg)?.[1];
  if (long !== undefined) return long in specs;
  const short = /^-([^-])/.exec(arg)?.[1];
  return short !== undefined && Object.values(specs).some((s) => s.short === short);
}

function argOf(s: NumberOption | StringOption): string {
  if (s.arg) return s.arg;
  if (s.type === 'string') return s.choices ? s.choices.join('|') : 'VALUE';
  return 'N';
}

function readNumber(s: NumberOption, text: string): number | undefined {
  // Digit groups as in source code (1_000_000), as run.ts always read them.
  const n =
    s.type === 'integer'
      ? parseCount(/^\d+(_\d+)*$/.test(text) ? text.replace(/_/g, '') : '-')
      : parseSeconds(text);
  if (n === undefined) return undefined;
  if (s.positive && !(n > 0)) return undefined;
  if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) return undefined;
  return n;
}

/** What a number option must be, in words: "a whole number of at least 1". */
function numberKind(s: NumberOption): string {
  const kind = s.type === 'integer' ? 'a whole number' : 'a number';
  const min = s.min ?? 0;
  if (s.max !== undefined) return `${kind} from ${min} to ${s.max}`;
  if (s.positive && min <= 0) return `${kind} above 0`;
  return `${kind} of at least ${min}`;
}

/**
 * The option name nearest a mistyped one, for "did you mean": at most two edits, and fewer
 * than half the typed name (a stray `-x` is no typo of `--dirs`).
 */
function closest(name: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.min(3, Math.ceil(name.length / 2));
  for (const n of names) {
    const d = editDistance(name, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length]!;
}
