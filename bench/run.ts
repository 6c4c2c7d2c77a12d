/**
 * `npm run bench`: the huge-tree scenarios of issue 5, each run side by side with its
 * baselines in the same invocation, interleaved (A B A B ...), medians of several runs,
 * ratios printed as a table and written into bench/RESULTS.md with the machine description.
 *
 *   npm run bench                          # 1,000,000 files, 3 runs (long: about an hour)
 *   npm run bench -- --files 100000        # a tenth of the scale, minutes
 *   npm run bench -- --only 1,3,4 --runs 5 # some scenarios only
 *
 * Options (or environment BENCH_FILES, BENCH_RUNS, BENCH_WORK, ...): --files N, --dirs N
 * (default files/50), --mixed-files N (default 100000, about 5 GB), --runs N, --only LIST,
 * --work DIR (default /tmp/open-async-bench), --keep (leave the fixtures), --no-write
 * (do not touch RESULTS.md).
 *
 * This machine's kernel evicts page-cache pages unused for about 30 s, so every measured
 * run is preceded by a warm-up of the trees it reads (the same for every tool).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { TreeSpec } from '../fixtures/tree.js';
import { buildTree, mutateTree, planTree } from '../fixtures/tree.js';
import type { Measured } from './measure.js';
import { measure, median } from './measure.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ASYNC_BIN = join(REPO, 'bin', 'async.js');
const RESULTS = join(REPO, 'bench', 'RESULTS.md');

// --- options ----------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    files: { type: 'string' },
    dirs: { type: 'string' },
    'mixed-files': { type: 'string' },
    runs: { type: 'string' },
    only: { type: 'string' },
    work: { type: 'string' },
    keep: { type: 'boolean' },
    'no-write': { type: 'boolean' },
    'async-args': { type: 'string' },
  },
});

function count(flag: string | undefined, env: string, fallback: number): number {
  const text = flag ?? process.env[env];
  if (text === undefined) return fallback;
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench: ${env.toLowerCase()} must be a positive whole number, not '${text}'`);
    process.exit(2);
  }
  return n;
}

const FILES = count(flags.files, 'BENCH_FILES', 1_000_000);
const DIRS = count(flags.dirs, 'BENCH_DIRS', Math.max(1, Math.round(FILES / 50)));
const MIXED = count(flags['mixed-files'], 'BENCH_MIXED_FILES', 100_000);
const RUNS = count(flags.runs, 'BENCH_RUNS', 3);
const WORK = resolve(flags.work ?? process.env.BENCH_WORK ?? '/tmp/open-async-bench');
const ONLY = new Set(
  (flags.only ?? process.env.BENCH_ONLY ?? '1,2,3,4,5,6,7').split(',').map((s) => Number(s)),
);
const EXTRA_ASYNC_ARGS = (flags['async-args'] ?? process.env.BENCH_ASYNC_ARGS ?? '')
  .split(' ')
  .filter((s) => s !== '');

const depthFor = (dirs: number): number => (dirs > 5000 ? 3 : dirs > 50 ? 2 : 1);
const SMALL: TreeSpec = { seed: 1, files: FILES, dirs: DIRS, depth: depthFor(DIRS), dist: 'small' };
const MIXED_SPEC: TreeSpec = {
  seed: 2,
  files: MIXED,
  dirs: Math.max(1, Math.round(MIXED / 50)),
  depth: depthFor(Math.round(MIXED / 50)),
  dist: 'mixed',
};
const RENAME_FILES = Math.min(100_000, FILES);
const RENAME_SPEC: TreeSpec = {
  seed: 3,
  files: RENAME_FILES,
  dirs: Math.max(1, Math.round(RENAME_FILES / 100)),
  depth: 1,
  dist: 'small',
};

// --- helpers ----------------------------------------------------------------------------

const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

function sh(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

function rmTree(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

/** Reads every directory entry and inode of the trees, so the next run finds them cached. */
function warm(...dirs: string[]): void {
  for (const d of dirs) if (existsSync(d)) sh(`find '${d}' -printf '%s %T@\\n' > /dev/null`);
}

/** Also reads every file's bytes (for the data scenarios). */
function warmData(dir: string): void {
  warm(dir);
  sh(`find '${dir}' -type f -print0 | xargs -0 cat > /dev/null`);
}

function ensureRsync(): string {
  const has = spawnSync('sh', ['-c', 'command -v rsync'], { encoding: 'utf8' });
  if (has.status !== 0) {
    log('rsync is missing: apt-get install -y rsync');
    const r = spawnSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq rsync'], {
      stdio: 'inherit',
    });
    if (r.status !== 0) {
      console.error('bench: cannot install rsync (run as root, or install it yourself)');
      process.exit(2);
    }
  }
  return sh('rsync --version | head -1').trim();
}

interface Outcome {
  readonly files: number;
  readonly bytes: string;
  readonly renamed: number;
}

function asyncOutcome(m: Measured): Outcome {
  if (m.code !== 0) {
    throw new Error(`async exited ${m.code}: ${m.stderr.slice(0, 2000)}`);
  }
  const sent = /(\d+) files \(([^)]+)\) sent/.exec(m.stdout);
  const renamed = /(\d+) renamed/.exec(m.stdout);
  return {
    files: sent ? Number(sent[1]) : NaN,
    bytes: sent ? sent[2]! : '?',
    renamed: renamed ? Number(renamed[1]) : NaN,
  };
}

function dbDirs(dst: string): [string, string] {
  const base = join(WORK, 'db', dst.split('/').pop()!);
  const l = `${base}-local`;
  const r = `${base}-peer`;
  mkdirSync(l, { recursive: true });
  mkdirSync(r, { recursive: true });
  return [l, r];
}

function asyncPush(src: string, dst: string, extra: string[] = []): Promise<Measured> {
  const [l, r] = dbDirs(dst);
  return measure('node', [
    ASYNC_BIN,
    '-N',
    'bench',
    '-d',
    src,
    '-r',
    dst,
    '-K',
    'push',
    '--create-dir',
    '-t',
    '-b',
    l,
    '-B',
    r,
    ...EXTRA_ASYNC_ARGS,
    ...extra,
  ]);
}

function forgetAsync(dst: string): void {
  rmTree(dst);
  rmTree(join(WORK, 'db', `${dst.split('/').pop()!}-local`));
  rmTree(join(WORK, 'db', `${dst.split('/').pop()!}-peer`));
}

const rsync = (src: string, dst: string): Promise<Measured> =>
  measure('rsync', ['-a', '--delete', `${src}/`, `${dst}/`]);
const cpA = (src: string, dst: string): Promise<Measured> => measure('cp', ['-a', src, dst]);
const find = (dir: string): Promise<Measured> =>
  measure('find', [dir, '-printf', '%s %T@\\n'], { quiet: true });

// --- results ----------------------------------------------------------------------------

interface Row {
  readonly scenario: string;
  readonly tool: string;
  readonly runs: Measured[];
  /** The 1-minute load average when each run ended (this machine is shared). */
  readonly loads: number[];
  /** Name of the row whose median this one is compared with (per scenario). */
  readonly notes: string[];
}

const rows: Row[] = [];

function row(scenario: string, tool: string): Row {
  let r = rows.find((x) => x.scenario === scenario && x.tool === tool);
  if (!r) rows.push((r = { scenario, tool, runs: [], loads: [], notes: [] }));
  return r;
}

function record(scenario: string, tool: string, m: Measured, note?: string): void {
  if (m.code !== 0) throw new Error(`${tool} exited ${m.code}: ${m.stderr.slice(0, 2000)}`);
  const r = row(scenario, tool);
  r.runs.push(m);
  r.loads.push(loadavg()[0]!);
  if (note !== undefined && !r.notes.includes(note)) r.notes.push(note);
  log(
    `${scenario} | ${tool}: ${m.seconds.toFixed(2)} s, ${m.peakRssMiB.toFixed(0)} MiB${note ? ` (${note})` : ''}`,
  );
}

const fmt = (s: number): string =>
  s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s.toFixed(2);

function table(): string {
  const lines = [
    '| scenario | tool | median s | runs (s) | × baseline | peak RSS MiB | load | notes |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  for (const sc of scenarios) {
    const mine = rows.filter((r) => r.scenario === sc);
    const ours = mine.find((r) => r.tool.startsWith('async'));
    for (const r of mine) {
      const med = median(r.runs.map((m) => m.seconds));
      let ratio = '';
      if (ours && r !== ours) {
        const o = median(ours.runs.map((m) => m.seconds));
        ratio = `async = ${(o / med).toFixed(2)}×`;
      }
      const rss = Math.max(...r.runs.map((m) => m.peakRssMiB));
      lines.push(
        `| ${sc} | ${r.tool} | ${fmt(med)} | ${r.runs.map((m) => fmt(m.seconds)).join(', ')} | ${ratio} | ${rss.toFixed(0)} | ${median(r.loads).toFixed(1)} | ${r.notes.join('; ')} |`,
      );
    }
  }
  return lines.join('\n');
}

function machine(rsyncVersion: string): string {
  const model = cpus()[0]?.model ?? 'unknown CPU';
  const fs = sh(`df -T '${WORK}' | tail -1`).trim().split(/\s+/)[1] ?? '?';
  const kernel = sh('uname -r').trim();
  return [
    `- Machine: ${cpus().length} × ${model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${kernel}, work dir ${WORK} on ${fs}`,
    `- Node ${process.version}; ${rsyncVersion}; ${sh('cp --version | head -1').trim()}; ${sh('find --version | head -1').trim()}`,
    `- Small tree: ${SMALL.files} files of 0-4 KiB in ${SMALL.dirs} leaf dirs (depth ${SMALL.depth}); mixed tree: ${MIXED_SPEC.files} files, log-normal + 3 big (${(planTree(MIXED_SPEC).bytes / 1e9).toFixed(2)} GB)`,
    `- async runs with \`-K push -t --create-dir\` and its databases outside the trees (-b/-B)${EXTRA_ASYNC_ARGS.length ? `, plus \`${EXTRA_ASYNC_ARGS.join(' ')}\`` : ''}; rsync with \`-a --delete\`; cp with \`-a\``,
    `- ${RUNS} runs per tool, interleaved; each run preceded by a warm-up of the trees it reads`,
  ].join('\n');
}

function writeResults(text: string): void {
  const tag = `bench:auto:${FILES}:${[...ONLY].sort().join(',')}`;
  const start = `<!-- ${tag} -->`;
  const end = `<!-- /${tag} -->`;
  const block = `${start}\n${text}\n${end}`;
  const old = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Benchmark results\n';
  const i = old.indexOf(start);
  const j = old.indexOf(end);
  const next =
    i >= 0 && j > i
      ? old.slice(0, i) + block + old.slice(j + end.length)
      : `${old.trimEnd()}\n\n${block}\n`;
  writeFileSync(RESULTS, next);
}

// --- scenarios --------------------------------------------------------------------------

const A = join(WORK, 'A');
const A_ASYNC = join(WORK, 'A-async');
const A_RSYNC = join(WORK, 'A-rsync');
const A_CP = join(WORK, 'A-cp');
const B = join(WORK, 'B');
const C = join(WORK, 'C');
const C_ASYNC = join(WORK, 'C-async');
const C_RSYNC = join(WORK, 'C-rsync');

function ensureSmallTree(): void {
  rmTree(A);
  log(`building ${A}: ${SMALL.files} files in ${SMALL.dirs} dirs`);
  const t = performance.now();
  buildTree(A, SMALL);
  writeFileSync(join(WORK, 'A.built'), `${((performance.now() - t) / 1000).toFixed(1)}\n`);
  // The marker sits outside the synced tree: inside it would be one more file to sync.
  writeFileSync(join(WORK, 'A.complete'), '');
  log(`built in ${readFileSync(join(WORK, 'A.built'), 'utf8').trim()} s`);
}

function smallTreeReady(): boolean {
  return existsSync(join(WORK, 'A.complete'));
}

async function scenarioInitialSmall(): Promise<void> {
  const sc = `2 initial push, ${FILES} small files`;
  for (let i = 0; i < RUNS; i++) {
    for (const tool of ['async', 'rsync -a', 'cp -a'] as const) {
      const dst = tool === 'async' ? A_ASYNC : tool === 'rsync -a' ? A_RSYNC : A_CP;
      forgetAsync(dst);
      sh('sync');
      warm(A);
      if (tool === 'async') {
        const m = await asyncPush(A, dst);
        const o = asyncOutcome(m);
        record(sc, tool, m, `${o.files} files sent`);
      } else if (tool === 'rsync -a') {
        record(sc, tool, await rsync(A, dst));
      } else {
        record(sc, tool, await cpA(A, dst));
      }
    }
  }
  rmTree(A_CP);
}

async function ensureSynced(): Promise<void> {
  if (!existsSync(A_ASYNC) || !existsSync(join(WORK, 'db', 'A-async-local'))) {
    log('preparing the async copy (not measured)');
    forgetAsync(A_ASYNC);
    asyncOutcome(await asyncPush(A, A_ASYNC));
  }
  if (!existsSync(A_RSYNC)) {
    log('preparing the rsync copy (not measured)');
    await rsync(A, A_RSYNC);
  }
}

async function scenarioNoChange(): Promise<void> {
  await ensureSynced();
  // One run of each first, unmeasured: the first rescan after a build also settles
  // directory mtimes and the like.
  asyncOutcome(await asyncPush(A, A_ASYNC));
  const sc = `1 no-change rescan, ${FILES} files`;
  for (let i = 0; i < RUNS; i++) {
    warm(A);
    record(sc, 'find -printf (floor, one tree)', await find(A));
    warm(A, A_RSYNC);
    record(sc, 'rsync -a (no change)', await rsync(A, A_RSYNC));
    warm(A, A_ASYNC);
    const m = await asyncPush(A, A_ASYNC);
    const o = asyncOutcome(m);
    record(sc, 'async (both trees)', m, `${o.files} files sent`);
  }
}

async function scenarioChanged(): Promise<void> {
  await ensureSynced();
  const sc = `3 1,000 changed paths in ${FILES}`;
  // A kept tree (--keep) is mutated again by the next invocation: a seed never used on it
  // before keeps every touch and modify a real change.
  const counter = join(WORK, 'A.mutations');
  let next = existsSync(counter) ? Number(readFileSync(counter, 'utf8')) : 100;
  for (let i = 0; i < RUNS; i++) {
    writeFileSync(counter, String(next + 1));
    mutateTree(A, SMALL, {
      seed: next++,
      touch: 200,
      modify: 200,
      add: 200,
      delete: 200,
      rename: 200,
    });
    warm(A, A_RSYNC);
    record(sc, 'rsync -a', await rsync(A, A_RSYNC));
    warm(A, A_ASYNC);
    const m = await asyncPush(A, A_ASYNC);
    const o = asyncOutcome(m);
    record(sc, 'async', m, `files sent ${o.files} (${o.bytes}), renamed ${o.renamed}`);
  }
}

async function scenarioReset(): Promise<void> {
  await ensureSynced();
  asyncOutcome(await asyncPush(A, A_ASYNC));
  const sc = `4 -x reset of identical trees, ${FILES} files`;
  for (let i = 0; i < RUNS; i++) {
    warm(A);
    record(sc, 'find -printf (floor, one tree)', await find(A));
    warm(A, A_ASYNC);
    const m = await asyncPush(A, A_ASYNC, ['-x']);
    const o = asyncOutcome(m);
    const verdict = o.files === 0 ? 'zero bytes sent' : `FAIL: ${o.files} files (${o.bytes}) sent`;
    record(sc, 'async -x (both trees)', m, verdict);
  }
}

async function scenarioMixed(): Promise<void> {
  const plan = planTree(MIXED_SPEC);
  const free = Number(sh(`df -B1 --output=avail '${WORK}' | tail -1`).trim());
  if (free < plan.bytes * 2.5) {
    log(
      `skipping scenario 5: needs ${((plan.bytes * 2.5) / 1e9).toFixed(1)} GB free, ${(free / 1e9).toFixed(1)} GB left`,
    );
    return;
  }
  if (!existsSync(join(WORK, 'B.complete'))) {
    rmTree(B);
    log(`building ${B}: ${MIXED_SPEC.files} mixed files, ${(plan.bytes / 1e9).toFixed(2)} GB`);
    buildTree(B, MIXED_SPEC);
    writeFileSync(join(WORK, 'B.complete'), '');
  }
  const sc = `5 initial push, ${MIXED} mixed files (${(plan.bytes / 1e9).toFixed(1)} GB)`;
  const dst = join(WORK, 'B-copy');
  for (let i = 0; i < RUNS; i++) {
    for (const tool of ['async', 'rsync -a', 'cp -a'] as const) {
      forgetAsync(dst);
      sh('sync');
      warmData(B);
      if (tool === 'async') {
        const m = await asyncPush(B, dst);
        const o = asyncOutcome(m);
        record(sc, tool, m, `${o.files} files sent`);
      } else if (tool === 'rsync -a') record(sc, tool, await rsync(B, dst));
      else record(sc, tool, await cpA(B, dst));
      forgetAsync(dst);
    }
  }
  if (!flags.keep) {
    rmTree(B);
    rmSync(join(WORK, 'B.complete'), { force: true });
  }
}

async function scenarioRenamedDir(): Promise<void> {
  const inner = (n: number): string => join(C, n % 2 === 0 ? 'big' : 'big-renamed');
  if (!existsSync(join(WORK, 'C.complete'))) {
    rmTree(C);
    forgetAsync(C_ASYNC);
    rmTree(C_RSYNC);
    mkdirSync(C, { recursive: true });
    buildTree(inner(0), RENAME_SPEC);
    writeFileSync(join(WORK, 'C.complete'), '');
  }
  // Whatever name the directory has now, bring both copies in line first (not measured).
  asyncOutcome(await asyncPush(C, C_ASYNC));
  await rsync(C, C_RSYNC);
  let state = existsSync(inner(0)) ? 0 : 1;
  const sc = `6 renamed directory of ${RENAME_FILES} files`;
  for (let i = 0; i < RUNS; i++) {
    execFileSync('mv', [inner(state), inner(state + 1)]);
    state++;
    warm(C, C_ASYNC);
    const m = await asyncPush(C, C_ASYNC);
    const o = asyncOutcome(m);
    const verdict =
      o.files === 0
        ? `zero bytes sent, ${o.renamed} renamed`
        : `FAIL: ${o.files} files (${o.bytes}) sent`;
    record(sc, 'async', m, verdict);
    warm(C, C_RSYNC);
    record(sc, 'rsync -a --delete (resends: no rename detection)', await rsync(C, C_RSYNC));
  }
}

/**
 * Scenario 7, over the peer daemon on loopback against rsync over ssh to 127.0.0.1. The
 * daemon is built under another issue; when it lands, this hook runs scenarios 2 and 5
 * with `-r 127.0.0.1:<dir>` against a daemon started on port 0.
 */
function scenarioDaemon(): string {
  return 'skipped: the peer daemon is not part of this build yet (hook: scenarioDaemon in bench/run.ts)';
}

// --- main -------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!existsSync(join(REPO, 'dist', 'src', 'cli', 'async.js'))) {
    console.error('bench: build first (npm run build)');
    process.exit(2);
  }
  const rsyncVersion = ensureRsync();
  mkdirSync(WORK, { recursive: true });
  log(sh(`df -h '${WORK}' | tail -1`).trim());
  const began = new Date();
  const needSmall = [1, 2, 3, 4].some((n) => ONLY.has(n));
  if (needSmall && !smallTreeReady()) ensureSmallTree();
  let buildNote = '';
  if (existsSync(join(WORK, 'A.built')))
    buildNote = `- Fixture build of the small tree (fixtures/gen.c, 4 threads): ${readFileSync(join(WORK, 'A.built'), 'utf8').trim()} s`;

  if (ONLY.has(2)) await scenarioInitialSmall();
  if (ONLY.has(1)) await scenarioNoChange();
  if (ONLY.has(3)) await scenarioChanged();
  if (ONLY.has(4)) await scenarioReset();
  if (ONLY.has(5)) await scenarioMixed();
  if (ONLY.has(6)) await scenarioRenamedDir();
  const daemon = ONLY.has(7) ? scenarioDaemon() : '';

  const text = [
    `### ${FILES.toLocaleString('en')} files, ${began.toISOString().slice(0, 16)} UTC`,
    '',
    `Command: \`npm run bench -- ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'),
    '',
    machine(rsyncVersion),
    ...(buildNote ? [buildNote] : []),
    '',
    table(),
    ...(daemon ? ['', `7 over the daemon: ${daemon}`] : []),
  ].join('\n');
  console.log(text);
  if (!flags['no-write']) writeResults(text);

  if (!flags.keep) {
    log('removing the fixtures');
    rmTree(WORK);
  }
}

main().catch((e: unknown) => {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
