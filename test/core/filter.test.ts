/** The filter rules as tables: parsing rule text, and which paths a rule list excludes. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FilterRule } from '../../src/core/filter.js';
import { compileFilter, parseRuleText } from '../../src/core/filter.js';

const ex = (p: string): FilterRule => ({ sign: '-', pattern: p });
const inc = (p: string): FilterRule => ({ sign: '+', pattern: p });

describe('filter matching', () => {
  // [rules, path, isDir, excluded?]
  const rows: [string, FilterRule[], string, boolean, boolean][] = [
    ['no rule matches: included', [ex('*.log')], 'a.txt', false, false],
    ['name at the root', [ex('*.log')], 'a.log', false, true],
    ['name at any depth', [ex('*.log')], 'x/y/a.log', false, true],
    ['case-sensitive', [ex('*.log')], 'A.LOG', false, false],
    ['dot files match *', [ex('*')], '.hidden', false, true],
    ['anchored at the root only', [ex('/a.log')], 'a.log', false, true],
    ['anchored: not deeper', [ex('/a.log')], 'x/a.log', false, false],
    ['trailing slash: directory', [ex('tmp/')], 'x/tmp', true, true],
    ['trailing slash: not a file', [ex('tmp/')], 'x/tmp', false, false],
    ['inner slash: path suffix at the root', [ex('a/*.c')], 'a/x.c', false, true],
    ['inner slash: path suffix deeper', [ex('a/*.c')], 'src/a/x.c', false, true],
    ['inner slash: * does not cross /', [ex('a/*.c')], 'a/b/x.c', false, false],
    ['** crosses /', [ex('/a/**/x.c')], 'a/b/c/x.c', false, true],
    ['** matches zero directories', [ex('/a/**/x.c')], 'a/x.c', false, true],
    ['? is one character', [ex('?.txt')], 'ab.txt', false, false],
    ['? matches one', [ex('?.txt')], 'a.txt', false, true],
    ['class', [ex('[ab].txt')], 'b.txt', false, true],
    ['negated class', [ex('[!ab].txt')], 'b.txt', false, false],
    ['braces are literal', [ex('{a,b}.txt')], 'a.txt', false, false],
    ['first match wins: include first', [inc('keep.log'), ex('*.log')], 'keep.log', false, false],
    ['first match wins: exclude first', [ex('*.log'), inc('keep.log')], 'keep.log', false, true],
    ['include-only list leaves the rest included', [inc('*.txt')], 'a.bin', false, false],
    ['exclude * after includes', [inc('*.txt'), ex('*')], 'a.bin', false, true],
    ['exclude * after includes keeps them', [inc('*.txt'), ex('*')], 'a.txt', false, false],
    ['anchored directory', [ex('/build/')], 'build', true, true],
    ['anchored directory not deeper', [ex('/build/')], 'src/build', true, false],
  ];
  for (const [title, rules, path, isDir, excluded] of rows) {
    test(title, () => {
      assert.equal(compileFilter(rules)!.excluded(path, isDir), excluded);
    });
  }
  test('no rules: no filter at all', () => assert.equal(compileFilter([]), undefined));
  test('the root is never excluded', () =>
    assert.equal(compileFilter([ex('*')])!.excluded('', true), false));
});

describe('rule text', () => {
  test('signs, bare lines, comments and blanks, in order', () => {
    const r = parseRuleText('# a comment\n\n+ *.txt\n- tmp/\n*.bak\r\n  - /x  \n', '-');
    assert.deepEqual(r, {
      ok: true,
      rules: [inc('*.txt'), ex('tmp/'), ex('*.bak'), ex('/x')],
    });
  });
  test('bare lines take the sign of the option', () => {
    assert.deepEqual(parseRuleText('*.c\n', '+'), { ok: true, rules: [inc('*.c')] });
  });
  const bad: [string, string, RegExp][] = [
    ['unknown prefix', 'P *.c', /unknown rule prefix 'P'/],
    ['merge rule', ': .rsync-filter', /unknown rule prefix ':'/],
    ['empty pattern', '+ ', /empty/],
    ['unclosed bracket', '- [abc', /unclosed '\['/],
    ['dot-dot', '- ../x', /'\.\.'/],
  ];
  for (const [title, text, msg] of bad) {
    test(`refused: ${title}`, () => {
      const r = parseRuleText(`# ok\n${text}\n`, '-');
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.problem.line, 2);
        assert.match(r.problem.message, msg);
      }
    });
  }
});
