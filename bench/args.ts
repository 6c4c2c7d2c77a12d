/**
 * The command line of every bench/ entry point: each script declares its options once (name,
 * type, default, one line of help, the checks of a number) and gets `--help`/`-h` (the
 * script's summary, its command lines and its options with their defaults, exit 0) and, for
 * an unknown option, a missing value or a bad number, one line `bench/<script>: <what is
 * wrong>; <what to do> (see --help)` on stderr and exit 2, never a stack trace. People tune
 * `-l` and reproduce the figures of RESULTS.md with these, so a typo must not run on as NaN
 * or undefined.
 *
 * Built on commander, as the async CLI is (src/cli/options.ts): it reads the command line,
 * suggests the option a mistyped one meant, and lays out the help. Its errors are caught
 * (exitOverride, nothing written to stderr) and said again in the one-line form. What it does
 * not do is here: an option followed by another of the script's options (`--runs --keep`) is
 * missing its value, numbers are read as src/core/units.ts reads them, the `BENCH_*`
 * fallbacks come from the environment passed in, and a bad value is noted rather than thrown,
 * so that --help wins over any mistake beside it.
 */
import { Argument, Command, CommanderError, Option } from 'commander';
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
  const fail = (wrong: string, todo: string): Outcome<O> => ({
    kind: 'error',
    message: usageMessage(cli.script, wrong, todo),
  });
  const sink: Sink = { help: '' };
  const cmd = program(cli, argv, sink);
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === 'commander.helpDisplayed') return { kind: 'help', text: sink.help };
    if (e.code === 'commander.optionMissingArgument') {
      // Commander stops at an option that ends the command line without its value, before it
      // looks for --help: the arguments before that option say whether help was asked for.
      const before = readBenchArgs(cli, argv.slice(0, -1), env);
      if (before.kind === 'help') return before;
    }
    return fail(...mistake(cli, cmd, argv, e));
  }
  if (sink.problem) return fail(...sink.problem);

  const specs: OptionSpecs = cli.options;
  const values: Record<string, unknown> = {};
  for (const opt of cmd.options) {
    const name = opt.long!.slice(2);
    const s = specs[name]!;
    // The attribute, not the name: commander files `--no-write` under `write`, true by default.
    const key = opt.attributeName();
    const given = cmd.getOptionValueSource(key) === 'cli';
    if (s.type === 'boolean' || given) {
      values[name] = s.type === 'boolean' ? given : cmd.getOptionValue(key);
      continue;
    }
    // Read here, not by commander's Option.env(): that reads process.env (the tests pass their
    // own), takes an empty variable as a value (here it is unset), and parses it before it
    // looks for --help, in a message of its own.
    const text = s.env === undefined ? '' : (env[s.env] ?? '');
    if (text === '') {
      values[name] = s.default;
      continue;
    }
    const r = valueOf(s, text);
    if ('must' in r) {
      return fail(
        `${s.env} must be ${r.must}, not '${text}'`,
        `fix or unset ${s.env}, or give --${name}`,
      );
    }
    values[name] = r.value;
  }
  return { kind: 'args', values: values as Values<O>, positionals: [...cmd.args] };
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

/** The --help text: the summary, the command lines, then the options in commander's layout. */
export function helpText<O extends OptionSpecs>(cli: BenchCli<O>): string {
  const sink: Sink = { help: '' };
  program(cli, [], sink).outputHelp();
  return sink.help;
}

const HELP_WIDTH = 96;

/** What one parse leaves behind: the help commander wrote, the first value it could not use. */
interface Sink {
  help: string;
  problem?: [wrong: string, todo: string];
}

/**
 * The script's commander program. A value it cannot use is noted in `sink`, not thrown:
 * commander calls an option's parser as it reads the value, before it looks for --help.
 */
function program<O extends OptionSpecs>(
  cli: BenchCli<O>,
  argv: readonly string[],
  sink: Sink,
): Command {
  const usage = cli.usage ?? [`node dist/bench/${cli.script}.js [options]`];
  const help = new Option('-h, --help', 'print this help and exit');
  const cmd = new Command(`bench/${cli.script}`)
    .addHelpOption(help)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => {
        sink.help += s;
      },
      writeErr: () => undefined,
    })
    .showSuggestionAfterError(true)
    // The script's command lines, each under the one before.
    .configureHelp({ helpWidth: HELP_WIDTH, commandUsage: () => usage.join('\n       ') })
    // The summary first, with the `bench/<script>:` that starts every message.
    .addHelpText('before', ({ command }) =>
      command.createHelp().boxWrap(`bench/${cli.script}: ${cli.summary}\n`, HELP_WIDTH),
    );
  const note = (wrong: string, todo: string): undefined => {
    sink.problem ??= [wrong, todo];
    return undefined;
  };
  for (const [name, s] of Object.entries<OptionSpec>(cli.options)) {
    const flags = `${s.short ? `-${s.short}, ` : ''}--${name}`;
    const opt = new Option(s.type === 'boolean' ? flags : `${flags} <${argOf(s)}>`, describe(s));
    if (s.type !== 'boolean') {
      opt.argParser((text: string) => {
        const shown = spelling(opt, argv);
        const todo = `give it as ${shown} ${argOf(s)}`;
        // Commander takes the next argument as the value even when it looks like an option.
        // When it is one of this script's options (`--runs --keep`) the value is missing;
        // anything else is the value (`--async-args -q`, or `--runs -1`, refused as a
        // number), and so is whatever follows `=` (`--async-args=--keep`).
        if (!argv.includes(`--${name}=${text}`) && namesOption(cmd, help, text)) {
          return note(`${shown} needs a value (it was followed by '${text}')`, todo);
        }
        const r = valueOf(s, text);
        return 'must' in r ? note(`${shown} must be ${r.must}, not '${text}'`, todo) : r.value;
      });
    }
    cmd.addOption(opt);
  }
  const p = cli.positionals;
  if (p) {
    const arg = new Argument(`[${p.name}...]`, p.help).argParser(
      (text: string, prev: string[] = []) => {
        const must = p.check?.(text);
        if (must !== undefined)
          note(`${p.name} must be ${must}, not '${text}'`, 'fix that argument');
        return [...prev, text];
      },
    );
    cmd.addArgument(arg);
  }
  return cmd;
}

/** Commander's error `e` in the one-line form: what is wrong, what to do. */
function mistake<O extends OptionSpecs>(
  cli: BenchCli<O>,
  cmd: Command,
  argv: readonly string[],
  e: CommanderError,
): [string, string] {
  // `unknown option '--fles'`, then on a line of its own `(Did you mean --files?)`.
  const [what = '', hint = ''] = e.message.replace(/^error: /, '').split('\n');
  if (e.code === 'commander.unknownOption') {
    // Commander finds no option in `--keep=yes`, as `--keep` takes no value.
    const [, flag, value] = /^unknown option '(--[^=]+)=(.*)'$/.exec(what) ?? [];
    const opt = cmd.options.find((o) => o.long === flag);
    if (opt && !opt.required && !opt.optional) {
      return [`${flag} takes no value, got '${value}'`, `give ${flag} alone`];
    }
    const near = /^\(Did you mean (.+)\?\)$/.exec(hint)?.[1];
    return [what, near ? `did you mean ${near}?` : 'leave it out'];
  }
  if (e.code === 'commander.optionMissingArgument') {
    // The option is the last argument: `--files`, `-P`, or `-P` at the end of `-kP`.
    const last = argv.at(-1)!;
    const shown = last.startsWith('--') ? last : `-${last.slice(-1)}`;
    const opt = cmd.options.find((o) => o.long === shown || o.short === shown)!;
    const s = (cli.options as OptionSpecs)[opt.long!.slice(2)] as NumberOption | StringOption;
    return [`${shown} needs a value`, `give it as ${shown} ${argOf(s)}`];
  }
  if (e.code === 'commander.excessArguments') {
    const former = cli.formerPositionals ?? [];
    if (former.length === 0) {
      return [`unexpected argument '${cmd.args[0]}'`, 'this script takes options only'];
    }
    const named = cmd.args.slice(0, former.length).map((p, i) => `--${former[i]} ${p}`);
    const extra = cmd.args.slice(former.length).map((p) => `'${p}'`);
    return [
      'positional arguments are no longer read',
      `name them: ${named.join(' ')}${extra.length > 0 ? `, and leave out ${extra.join(' ')}` : ''}`,
    ];
  }
  return [what, 'fix the command line'];
}

/**
 * How the user spelled option `o`: commander does not say, so the short form (`-P`) when the
 * long one is nowhere on the command line.
 */
function spelling(o: Option, argv: readonly string[]): string {
  const long = o.long!;
  const longGiven = argv.some((a) => a === long || a.startsWith(`${long}=`));
  return o.short !== undefined && !longGiven ? o.short : long;
}

/** True when `arg` gives one of the options (`--keep`, `--runs=3`, `-P`, `-P3`, `-h`) or is `--`. */
function namesOption(cmd: Command, help: Option, arg: string): boolean {
  const flag = arg.replace(/=.*/s, '');
  return (
    arg === '--' ||
    [help, ...cmd.options].some(
      (o) =>
        o.long === flag || o.short === flag || (o !== help && !!o.short && arg.startsWith(o.short)),
    )
  );
}

/** The option's line of help: its text, then its default and variable in the scripts' words. */
function describe(s: OptionSpec): string {
  // Not commander's `(default: 1000, env: BENCH_FILES)`: it shows only what Option.default()
  // and Option.env() were given, and env() is not used (see readBenchArgs).
  const notes: string[] = [];
  const def =
    s.defaultText ?? (s.type !== 'boolean' && s.default !== undefined ? String(s.default) : '');
  if (def !== '') notes.push(`default ${def}`);
  if (s.type !== 'boolean' && s.env) notes.push(`env ${s.env}`);
  return notes.length > 0 ? `${s.help} (${notes.join('; ')})` : s.help;
}

function argOf(s: NumberOption | StringOption): string {
  if (s.arg) return s.arg;
  if (s.type === 'string') return s.choices ? s.choices.join('|') : 'VALUE';
  return 'N';
}

/** The value `text` gives option `s`, or what it must be instead. */
function valueOf(
  s: NumberOption | StringOption,
  text: string,
): { value: number | string } | { must: string } {
  if (s.type === 'string') {
    // Not Option.choices(): its parser throws as it reads the value, in its own words.
    const must =
      s.choices && !s.choices.includes(text) ? `one of ${s.choices.join(', ')}` : s.check?.(text);
    return must === undefined ? { value: text } : { must };
  }
  const n = readNumber(s, text);
  return n === undefined ? { must: numberKind(s) } : { value: n };
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
