/**
 * Turns the filter options of a command line into rules: literal patterns are checked,
 * rule files are read (`-` is stdin, read once). The rules themselves, and what they mean,
 * are in core/filter.ts; this is the I/O around them.
 */
import { readFileSync } from 'node:fs';
import type { FilterRule } from '../core/filter.js';
import { parseRuleText, patternProblem } from '../core/filter.js';
import { SessionError, describeIoError } from '../errors.js';

export interface FilterOption {
  readonly kind: 'include' | 'exclude' | 'include-from' | 'exclude-from';
  readonly value: string;
}

export function loadFilterRules(
  options: readonly FilterOption[],
  readStdin: () => string = () => readFileSync(0, 'utf8'),
): FilterRule[] {
  const rules: FilterRule[] = [];
  let stdinUsed = false;
  for (const o of options) {
    const sign = o.kind.startsWith('include') ? '+' : '-';
    if (o.kind === 'include' || o.kind === 'exclude') {
      const bad = patternProblem(o.value);
      if (bad !== undefined) {
        throw new SessionError(
          'ERR_FILTER',
          `Invalid --${o.kind} pattern '${o.value}': ${bad}.`,
          'Patterns use *, ?, [...] and **; a leading / anchors at the root, a trailing / matches directories only.',
        );
      }
      rules.push({ sign, pattern: o.value });
      continue;
    }
    let text: string;
    const where = o.value === '-' ? 'standard input' : o.value;
    if (o.value === '-') {
      if (stdinUsed) {
        throw new SessionError(
          'ERR_FILTER',
          `--${o.kind} -: standard input was already read by an earlier filter option.`,
          'Read rules from standard input once; put the other rules in files.',
        );
      }
      stdinUsed = true;
      text = readStdin();
    } else {
      try {
        text = readFileSync(o.value, 'utf8');
      } catch (e) {
        throw new SessionError(
          'ERR_FILTER',
          `Cannot read the rule file of --${o.kind} ${o.value}: ${describeIoError(e)}.`,
          'Check the path; use - to read the rules from standard input.',
        );
      }
    }
    const parsed = parseRuleText(text, sign);
    if (!parsed.ok) {
      const p = parsed.problem;
      throw new SessionError(
        'ERR_FILTER',
        `Invalid rule in ${where}, line ${p.line} ('${p.text.trim()}'): ${p.message}.`,
        "Each line is '+ pattern', '- pattern', a bare pattern, '#' comment or blank.",
      );
    }
    rules.push(...parsed.rules);
  }
  return rules;
}
