/**
 * What filter rules cost a scan: scanTree over one tree with no rules (the baseline) and
 * with a typical rule list, medians of several runs, as a ratio measured in the same run.
 *
 *   npm run build && node dist/bench/filter-scan.js [--files 50000] [--runs 5]
 *
 * (These were positional arguments: `filter-scan.js 50000 5` is refused with its named form.)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileFilter } from '../src/core/filter.js';
import type { Filter } from '../src/core/filter.js';
import { scanTree } from '../src/scan/scanner.js';
import { benchArgs } from './args.js';

const { values: flags } = benchArgs({
  script: 'filter-scan',
  summary:
    'what filter rules cost a scan: scanTree with no rules (the baseline) and with five ' +
    'typical rules, medians, as a ratio measured in the same run.',
  formerPositionals: ['files', 'runs'],
  options: {
    files: { type: 'integer', min: 1, default: 50_000, help: 'empty files in the tree' },
    runs: { type: 'integer', min: 1, default: 5, help: 'measured scans of each kind' },
  },
});
const files = flags.files;
const runs = flags.runs;

const root = mkdtempSync(join(tmpdir(), 'bench-filter-'));
const perDir = 500;
for (let i = 0; i < files; i++) {
  const dir = join(root, `d${Math.floor(i / perDir)}`, i % 2 === 0 ? 'src' : 'logs');
  if (i % perDir < 2) mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `f${i}${i % 3 === 0 ? '.log' : '.c'}`), '');
}

const rules = compileFilter([
  { sign: '-', pattern: '*.tmp' },
  { sign: '-', pattern: '/build/' },
  { sign: '+', pattern: 'keep.log' },
  { sign: '-', pattern: '*.log' },
  { sign: '-', pattern: '**/cache/**' },
])!;

const empty = { children: () => [], descendants: () => [] };
function once(filter?: Filter): number {
  const t = performance.now();
  scanTree({ root, snapshot: empty, ...(filter ? { filter } : {}) });
  return performance.now() - t;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

once();
once(rules);
const base: number[] = [];
const filtered: number[] = [];
for (let i = 0; i < runs; i++) {
  base.push(once());
  filtered.push(once(rules));
}
rmSync(root, { recursive: true, force: true });
const b = median(base);
const f = median(filtered);
console.log(`| scan of ${files} files | median of ${runs} | ratio |`);
console.log('|---|---|---|');
console.log(`| no rules (baseline) | ${b.toFixed(0)} ms | 1.00 |`);
console.log(`| 5 rules (*.log excluded) | ${f.toFixed(0)} ms | ${(f / b).toFixed(2)} |`);
