/**
 * Include/exclude rules (--include, --exclude, --include-from, --exclude-from), as pure
 * data and a pure matcher. Both ends of a session get the same rules and apply them to
 * their own scans, so an excluded path is neither sent nor deleted anywhere.
 *
 * Semantics (after rsync's filter rules, which Aspera's documentation paraphrases):
 * - Rules are tried in the order given; the first rule whose pattern matches decides.
 * - A name that no rule matches is INCLUDED. (Aspera's public pages disagree: one says
 *   unmatched names are included, another that giving any --include excludes the rest.
 *   We follow rsync, which every such page cites: to sync only some names, end the rules
 *   with `--exclude '*'`, and include the directories to enter, e.g. `--include '*\/'`.)
 * - An excluded directory is not entered: nothing below it is synced, whatever the rules
 *   say about its contents.
 * - A leading `/` anchors the pattern at the sync root; a trailing `/` matches directories
 *   only; a pattern without `/` matches the last name at any depth; a pattern with a `/`
 *   inside (and no leading `/`) matches the end of the path at any depth (`a/*.c` matches
 *   `a/x.c` and `src/a/x.c`).
 * - `*` matches any run of characters except `/`, `?` one character except `/`, `[...]` a
 *   class (`[!...]` negated), `**` anything including `/`. Matching is case-sensitive and
 *   names starting with a dot are matched like any other. Braces and extglobs are literal.
 * - Rule files hold one rule per line: `+ pattern` (include), `- pattern` (exclude), a bare
 *   pattern (the kind of the option that named the file), `#` comments and blank lines.
 *   Any other one-character prefix (rsync's `!`, `P`, `:` ...) is an error, not a pattern.
 */
import picomatch from 'picomatch';

export type FilterSign = '+' | '-';

export interface FilterRule {
  readonly sign: FilterSign;
  readonly pattern: string;
}

/** Where a rule list failed to parse: a value, the CLI turns it into a usage error. */
export interface FilterSyntaxProblem {
  readonly line: number;
  readonly text: string;
  readonly message: string;
}

export type ParsedRules =
  | { readonly ok: true; readonly rules: FilterRule[] }
  | { readonly ok: false; readonly problem: FilterSyntaxProblem };

/** Checks one pattern; a message when it cannot be a rule. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern === '' || pattern === '/') return 'the pattern is empty';
  if (pattern.includes('\0')) return 'the pattern holds a NUL character';
  if (/(^|\/)\.\.?(\/|$)/.test(pattern.replace(/\/$/, '')))
    return "'.' and '..' are not allowed as path components";
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (c === '[') depth++;
    else if (c === ']' && depth > 0) depth--;
  }
  if (depth > 0) return "an unclosed '[' (write '\\[' for a literal bracket)";
  return undefined;
}

/**
 * Checks a rule list that arrived as data (from a peer, over the wire): a message when it is
 * not an array of well-formed rules. Rules typed by a user are checked where they are read.
 */
export function ruleListProblem(v: unknown): string | undefined {
  if (!Array.isArray(v)) return 'not a list of rules';
  for (let i = 0; i < v.length; i++) {
    const r = v[i] as { sign?: unknown; pattern?: unknown } | null;
    if (typeof r !== 'object' || r === null || (r.sign !== '+' && r.sign !== '-'))
      return `rule ${i + 1} has no '+' or '-' sign`;
    if (typeof r.pattern !== 'string') return `rule ${i + 1} has no pattern`;
    const bad = patternProblem(r.pattern);
    if (bad !== undefined) return `rule ${i + 1} ('${r.pattern}'): ${bad}`;
  }
  return undefined;
}

/** Parses the text of a rule file; `bare` is the sign of a line without a prefix. */
export function parseRuleText(text: string, bare: FilterSign): ParsedRules {
  const rules: FilterRule[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let sign: FilterSign = bare;
    let pattern = line;
    const m = /^(\S)\s+(.*)$/.exec(line);
    if (m) {
      if (m[1] === '+' || m[1] === '-') {
        sign = m[1];
        pattern = m[2]!;
      } else {
        return {
          ok: false,
          problem: {
            line: i + 1,
            text: raw,
            message: `unknown rule prefix '${m[1]}' (use '+ pattern', '- pattern' or '# comment')`,
          },
        };
      }
    } else if (line === '+' || line === '-') {
      pattern = '';
    }
    const bad = patternProblem(pattern);
    if (bad !== undefined) return { ok: false, problem: { line: i + 1, text: raw, message: bad } };
    rules.push({ sign, pattern });
  }
  return { ok: true, rules };
}

interface CompiledRule {
  readonly exclude: boolean;
  readonly dirOnly: boolean;
  /** Match against the last name only. */
  readonly nameOnly: boolean;
  readonly test: (s: string) => boolean;
}

export interface Filter {
  /** True when `path` (relative, '/'-separated) is excluded. The root is never excluded. */
  excluded(path: string, isDir: boolean): boolean;
}

const GLOB_OPTS: picomatch.PicomatchOptions = {
  dot: true,
  nobrace: true,
  noextglob: true,
  nonegate: true,
  strictSlashes: true,
};

function compileRule(r: FilterRule): CompiledRule {
  let p = r.pattern;
  const dirOnly = p.endsWith('/');
  if (dirOnly) p = p.replace(/\/+$/, '');
  const anchored = p.startsWith('/');
  if (anchored) p = p.replace(/^\/+/, '');
  const nameOnly = !anchored && !p.includes('/') && !p.includes('**');
  // picomatch reads `[!..]` as a class holding '!'; the shell and rsync mean negation.
  p = p.replace(/(^|[^\\])\[!/g, '$1[^');
  const glob = anchored || nameOnly ? p : `**/${p}`;
  // Perf: the bare regex; picomatch's matcher function adds per-call bookkeeping that
  // costs more than the test itself on the scan's hot path.
  const re = picomatch.makeRe(glob, GLOB_OPTS);
  return { exclude: r.sign === '-', dirOnly, nameOnly, test: (s) => re.test(s) };
}

/** Undefined when there are no rules (the scan then skips matching altogether). */
export function compileFilter(rules: readonly FilterRule[]): Filter | undefined {
  if (rules.length === 0) return undefined;
  const compiled = rules.map(compileRule);
  return {
    excluded(path: string, isDir: boolean): boolean {
      if (path === '') return false;
      const slash = path.lastIndexOf('/');
      const name = slash < 0 ? path : path.slice(slash + 1);
      for (const r of compiled) {
        if (r.dirOnly && !isDir) continue;
        if (r.test(r.nameOnly ? name : path)) return r.exclude;
      }
      return false;
    },
  };
}

/**
 * True when `path` or any directory above it is excluded: an excluded directory is not
 * entered, so nothing below it is synced whatever the rules say about it.
 */
export function excludedOrBelow(filter: Filter, path: string, isDir: boolean): boolean {
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1))
    if (filter.excluded(path.slice(0, i), true)) return true;
  return filter.excluded(path, isDir);
}
