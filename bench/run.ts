/**
 * `npm run bench`: the huge-tree scenarios of issue 5, each run side by side with its
 * baselines in the same invocation, interleaved (A B A B ...), medians of several runs,
 * ratios printed as a table and written into bench/RESULTS.md with the machine description.
 *
 *   npm run bench                          # 1,000,000 files, 3 runs (long: about an hour)
 *   npm run bench -- --files 100000        # a tenth of the scale, minutes
 *   npm run bench -- --only 1,3,4 --runs 5 # some scenarios only
 *
 * Options (`npm run bench -- --help` lists them with their defaults; each but the flags also
 * read from the environment: BENCH_FILES, BENCH_DIRS, BENCH_MIXED_FILES, BENCH_RUNS,
 * BENCH_ONLY, BENCH_WORK, BENCH_ASYNC_ARGS): --files N, --dirs N (default files/50),
 * --mixed-files N (default 100000, about 5 GB), --runs N, --only LIST, --work DIR (default
 * /tmp/open-async-bench), --keep (leave the fixtures), --no-write (do not touch RESULTS.md),
 * --async-args 'ARGS' (added to every async run).
 *
 * This machine's kernel evicts page-cache pages unused for about 30 s, so every measured
 * run is preceded by a `sync` and a warm-up of the trees it reads (the same for every tool).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import { startBenchDaemon } from './daemon.js';
import type { TreeSpec } from '../fixtures/tree.js';
import { buildTree, mutateTree, planTree } from '../fixtures/tree.js';
import type { Measured } from './measure.js';
import { measure, median } from './measure.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ASYNC_BIN = join(REPO, 'bin', 'async.js');
const RESULTS = join(REPO, 'bench', 'RESULTS.md');

// --- options ----------------------------------------------------------------------------

const SCENARIOS = [1, 2, 3, 4, 5, 6, 7];
const { values: flags } = benchArgs({
  script: 'run',
  summary:
    'the huge-tree scenarios (1-7) side by side with find, rsync and cp, interleaved, medians, ' +
    'ratios written into bench/RESULTS.md with the machine description.',
  usage: ['npm run bench -- [options]', 'node dist/bench/run.js [options]'],
  options: {
    files: {
      type: 'integer',
      min: 1,
      default: 1_000_000,
      env: 'BENCH_FILES',
      help: 'files in the small-file tree of scenarios 1-4 and 7',
    },
    dirs: {
      type: 'integer',
      min: 1,
      env: 'BENCH_DIRS',
      defaultText: 'files/50',
      help: 'directories of that tree',
    },
    'mixed-files': {
      type: 'integer',
      min: 1,
      default: 100_000,
      env: 'BENCH_MIXED_FILES',
      help: 'files in the mixed-size tree of scenarios 5 and 7 (100000: about 5 GB)',
    },
    runs: {
      type: 'integer',
      min: 1,
      default: 3,
      env: 'BENCH_RUNS',
      help: 'measured runs per tool',
    },
    only: {
      type: 'string',
      arg: 'LIST',
      default: SCENARIOS.join(','),
      env: 'BENCH_ONLY',
      check: (t) =>
        t.split(',').every((n) => SCENARIOS.includes(Number(n)))
          ? undefined
          : 'a comma-separated list of scenarios 1 to 7',
      help: 'the scenarios to run',
    },
    work: {
      type: 'string',
      arg: 'DIR',
      default: '/tmp/open-async-bench',
      env: 'BENCH_WORK',
      help: 'where the fixture trees are made',
    },
    keep: { type: 'boolean', help: 'leave the fixture trees for the next call' },
    'no-write': { type: 'boolean', help: 'print the tables only, do not touch RESULTS.md' },
    'async-args': {
      type: 'string',
      arg: "'ARGS'",
      env: 'BENCH_ASYNC_ARGS',
      help: 'extra arguments for every async run, space-separated',
    },
  },
});

const FILES = flags.files;
const DIRS = flags.dirs ?? Math.max(1, Math.round(FILES / 50));
const MIXED = flags['mixed-files'];
const RUNS = flags.runs;
const WORK = resolve(flags.work);
const ONLY = new Set(flags.only.split(',').map((s) => Number(s)));
const EXTRA_ASYNC_ARGS = (flags['async-args'] ?? '').split(' ').filter((s) => s !== '');

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

/*
 * Copies of earlier runs are moved aside, not deleted, until the invocation ends. This
 * machine's ext4 has no journal, and then the kernel's inode allocator passes over every
 * free inode deleted less than 60 s ago (6 min while its inode-table block is dirty),
 * looking up that block for each one (fs/ext4/ialloc.c, recently_deleted()): a tree
 * created right after a big tree was deleted pays a scan per file. Measured at 100k small
 * files: half of a push's CPU samples in recently_deleted and find_get_block_common, for
 * async and rsync alike, and 17-57 s instead of 5-8 s. Deleting each run's copy before the
 * next run made a push's time depend on the deletion before it.
 */
const TRASH = (): string => join(WORK, '.trash');
let trashed = 0;
let trashEmptiedEarly = false;

/** Moves `p` out of the way (a rename: no inode is freed). */
function retire(p: string): void {
  if (!existsSync(p)) return;
  mkdirSync(TRASH(), { recursive: true });
  renameSync(p, join(TRASH(), `${process.pid}-${trashed++}`));
}

function emptyTrash(): void {
  if (!existsSync(TRASH())) return;
  log('deleting the copies of earlier runs');
  rmTree(TRASH());
}

/**
 * Makes room for a copy of a tree (its bytes and inodes, upper bounds). When the disk is
 * short of either, the trash is emptied now and the results say so: the runs just after it
 * pay the scan above (on a file system without a journal).
 */
function roomFor(spec: TreeSpec): void {
  const free = (what: 'avail' | 'iavail'): number =>
    Number(sh(`df -B1 --output=${what} '${WORK}' | tail -1`).trim());
  const room =
    free('avail') > copyBytes(spec) * 1.25 + 2e9 &&
    free('iavail') > (spec.files + spec.dirs) * 1.1 + 10_000;
  if (room || !existsSync(TRASH())) return;
  log(`the disk is short of room (or of inodes) for another copy: deleting the earlier ones now`);
  emptyTrash();
  trashEmptiedEarly = true;
}

/** An upper bound of the disk space a copy of the tree takes (a block per file at least). */
const copyBytes = (spec: TreeSpec): number =>
  planTree(spec).bytes + (spec.files + spec.dirs) * 4096;

/**
 * Reads every directory entry and inode of the trees, so the next run finds them cached,
 * after a `sync`: no run pays for the writeback of an earlier one (cp and rsync leave
 * gigabytes dirty in the page cache). Every measured run starts with one.
 */
function warm(...dirs: string[]): void {
  sh('sync');
  for (const d of dirs) if (existsSync(d)) sh(`find '${d}' -printf '%s %T@\\n' > /dev/null`);
}

/** Also reads every file's bytes (for the data scenarios). */
function warmData(dir: string): void {
  warm(dir);
  sh(`find '${dir}' -type f -print0 | xargs -0 cat > /dev/null`);
}

/** Installs a missing baseline tool with apt-get (Debian's packages are reachable here). */
function ensureTool(command: string, pkg: string): void {
  const has = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  if (has.status === 0) return;
  log(`${command} is missing: apt-get install -y ${pkg}`);
  const r = spawnSync('sh', ['-c', `apt-get update -qq && apt-get install -y -qq ${pkg}`], {
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.error(`bench: cannot install ${pkg} (run as root, or install it yourself)`);
    process.exit(2);
  }
}

function ensureRsync(): string {
  ensureTool('rsync', 'rsync');
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

/** async's arguments for a push of `src` to `remote` (a path, or user@host:/path). */
function pushArgs(src: string, remote: string, localDb: string, extra: string[]): string[] {
  return [
    ASYNC_BIN,
    '-N',
    'bench',
    '-d',
    src,
    '-r',
    remote,
    '-K',
    'push',
    '--create-dir',
    '-t',
    '-b',
    localDb,
    ...extra,
    ...EXTRA_ASYNC_ARGS,
  ];
}

function asyncPush(src: string, dst: string, extra: string[] = []): Promise<Measured> {
  const [l, r] = dbDirs(dst);
  return measure('node', pushArgs(src, dst, l, ['-B', r, ...extra]));
}

function forgetAsync(dst: string): void {
  retire(dst);
  retire(join(WORK, 'db', `${dst.split('/').pop()!}-local`));
  retire(join(WORK, 'db', `${dst.split('/').pop()!}-peer`));
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
    `${scenario} | ${tool}: ${m.seconds.toFixed(2)} s (CPU ${m.cpuUser.toFixed(1)} + ${m.cpuSys.toFixed(1)} s), ${m.peakRssMiB.toFixed(0)} MiB${note ? ` (${note})` : ''}`,
  );
}

const fmt = (s: number): string =>
  s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s.toFixed(2);

function table(): string {
  const lines = [
    '| scenario | tool | median s | runs (s) | × baseline | CPU s, user + sys | peak RSS MiB | load | notes |',
    '|---|---|---|---|---|---|---|---|---|',
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
      const cpu = `${fmt(median(r.runs.map((m) => m.cpuUser)))} + ${fmt(median(r.runs.map((m) => m.cpuSys)))}`;
      lines.push(
        `| ${sc} | ${r.tool} | ${fmt(med)} | ${r.runs.map((m) => fmt(m.seconds)).join(', ')} | ${ratio} | ${cpu} | ${rss.toFixed(0)} | ${median(r.loads).toFixed(1)} | ${r.notes.join('; ')} |`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * Whether an ext4 device keeps a journal (its sysfs journal_task names the journal thread,
 * or reads `<none>`): without one, file creation after a big deletion is slow (retire()).
 */
function ext4Journal(dev: string): string {
  try {
    const task = readFileSync(`/sys/fs/ext4/${basename(dev)}/journal_task`, 'utf8').trim();
    return task === '<none>' ? ' (no journal)' : ' (journaled)';
  } catch {
    return '';
  }
}

function machine(rsyncVersion: string): string {
  const model = cpus()[0]?.model ?? 'unknown CPU';
  const [dev = '', type = '?'] = sh(`df -T '${WORK}' | tail -1`).trim().split(/\s+/);
  const fs = type === 'ext4' ? `ext4${ext4Journal(dev)}` : type;
  const kernel = sh('uname -r').trim();
  return [
    `- Machine: ${cpus().length} × ${model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${kernel}, work dir ${WORK} on ${fs}`,
    `- Node ${process.version}; ${rsyncVersion}; ${sh('cp --version | head -1').trim()}; ${sh('find --version | head -1').trim()}`,
    `- Small tree: ${SMALL.files} files of 0-4 KiB in ${SMALL.dirs} leaf dirs (depth ${SMALL.depth}); mixed tree: ${MIXED_SPEC.files} files, log-normal + 3 big (${(planTree(MIXED_SPEC).bytes / 1e9).toFixed(2)} GB)`,
    `- async runs with \`-K push -t --create-dir\` and its databases outside the trees (-b/-B)${EXTRA_ASYNC_ARGS.length ? `, plus \`${EXTRA_ASYNC_ARGS.join(' ')}\`` : ''}; rsync with \`-a --delete\`; cp with \`-a\``,
    `- ${RUNS} runs per tool, interleaved (a push scenario's tools in turn, the first one rotated each round); each run preceded by \`sync\` and a warm-up of the trees it reads (their metadata; the source's bytes too in scenarios 2 and 5)`,
    `- CPU: medians of each run's user and system seconds, summed over the tool's threads and the processes it waited for${ONLY.has(7) ? ' (scenario 7: the client side only)' : ''}; CPU near ${cpus().length}× the wall time means every core was busy`,
    `- Each push writes a new directory; the copies of earlier runs are deleted when the invocation ends (on ext4 without a journal, files created within minutes of a big deletion pay a scan per inode: bench/run.ts, retire())${trashEmptiedEarly ? '. **Not in this invocation:** the disk was short, so earlier copies were deleted between runs' : ''}`,
    ...(ONLY.has(7)
      ? [
          `- Scenario 7: async to async-server on 127.0.0.1 (TLS, password login, the peer's database in its synced directory: the default), rsync -a over ssh to a private sshd on 127.0.0.1 (${sh('ssh -V 2>&1').trim()}); peak RSS sums both ends`,
        ]
      : []),
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

/**
 * A fixture tree is complete when its marker (beside it, outside the synced tree: inside it
 * would be one more file to sync) holds the spec it was built from. With --keep, a tree
 * built for other options (another --files) is rebuilt, not measured under the wrong label.
 */
const marker = (name: string): string => join(WORK, `${name}.complete`);

function treeReady(name: string, spec: TreeSpec): boolean {
  try {
    return readFileSync(marker(name), 'utf8') === JSON.stringify(spec);
  } catch {
    return false;
  }
}

function markTree(name: string, spec: TreeSpec): void {
  writeFileSync(marker(name), JSON.stringify(spec));
}

function ensureSmallTree(): void {
  retire(A);
  // The synced copies and the databases are of the tree it replaces.
  forgetAsync(A_ASYNC);
  retire(A_RSYNC);
  log(`building ${A}: ${SMALL.files} files in ${SMALL.dirs} dirs`);
  const t = performance.now();
  buildTree(A, SMALL);
  writeFileSync(join(WORK, 'A.built'), `${((performance.now() - t) / 1000).toFixed(1)}\n`);
  markTree('A', SMALL);
  log(`built in ${readFileSync(join(WORK, 'A.built'), 'utf8').trim()} s`);
}

function smallTreeReady(): boolean {
  return treeReady('A', SMALL);
}

/**
 * The tools of a push scenario in round `i`'s order: rotated each round. On this machine
 * the first write after a pause is slow for whichever tool makes it (RESULTS.md,
 * 2026-12-07 07:27), so no tool always goes first.
 */
function inTurn<T>(tools: readonly T[], i: number): T[] {
  const k = i % tools.length;
  return [...tools.slice(k), ...tools.slice(0, k)];
}

async function scenarioInitialSmall(): Promise<void> {
  const sc = `2 initial push, ${FILES} small files`;
  for (let i = 0; i < RUNS; i++) {
    for (const tool of inTurn(['async', 'rsync -a', 'cp -a'] as const, i)) {
      const dst = tool === 'async' ? A_ASYNC : tool === 'rsync -a' ? A_RSYNC : A_CP;
      forgetAsync(dst);
      roomFor(SMALL);
      // The files' bytes too, as for the mixed push: the issue asks for a warm-up right
      // before each run, and with the metadata alone every tool read from the disk what
      // the page cache had evicted since (about 30 s unused here).
      warmData(A);
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
  retire(A_CP);
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

/** Builds the mixed tree B if needed; false (and a note) when the disk lacks room for it. */
function ensureMixedTree(scenario: number): boolean {
  const plan = planTree(MIXED_SPEC);
  const free = Number(sh(`df -B1 --output=avail '${WORK}' | tail -1`).trim());
  if (!treeReady('B', MIXED_SPEC) && free < plan.bytes * 2.5) {
    log(
      `skipping scenario ${scenario}: needs ${((plan.bytes * 2.5) / 1e9).toFixed(1)} GB free, ${(free / 1e9).toFixed(1)} GB left`,
    );
    return false;
  }
  if (!treeReady('B', MIXED_SPEC)) {
    retire(B);
    log(`building ${B}: ${MIXED_SPEC.files} mixed files, ${(plan.bytes / 1e9).toFixed(2)} GB`);
    buildTree(B, MIXED_SPEC);
    markTree('B', MIXED_SPEC);
  }
  return true;
}

function dropMixedTree(): void {
  if (flags.keep) return;
  retire(B);
  rmSync(marker('B'), { force: true });
}

const mixedLabel = (): string =>
  `${MIXED} mixed files (${(planTree(MIXED_SPEC).bytes / 1e9).toFixed(1)} GB)`;

async function scenarioMixed(): Promise<void> {
  if (!ensureMixedTree(5)) return;
  const sc = `5 initial push, ${mixedLabel()}`;
  const dst = join(WORK, 'B-copy');
  for (let i = 0; i < RUNS; i++) {
    for (const tool of inTurn(['async', 'rsync -a', 'cp -a'] as const, i)) {
      forgetAsync(dst);
      roomFor(MIXED_SPEC);
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
  // Scenario 7 pushes the same tree over the daemon.
  if (!ONLY.has(7)) dropMixedTree();
}

async function scenarioRenamedDir(): Promise<void> {
  const inner = (n: number): string => join(C, n % 2 === 0 ? 'big' : 'big-renamed');
  if (!treeReady('C', RENAME_SPEC)) {
    retire(C);
    forgetAsync(C_ASYNC);
    retire(C_RSYNC);
    mkdirSync(C, { recursive: true });
    buildTree(inner(0), RENAME_SPEC);
    markTree('C', RENAME_SPEC);
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

// --- scenario 7: over the peer daemon, against rsync over ssh ------------------------------

const DAEMON_PASSWORD = 'bench';

interface Service {
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

function stopper(proc: ChildProcess): () => Promise<void> {
  return async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await exited;
  };
}

/** A port the kernel just gave out, for sshd (which cannot be told "port 0"). */
async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  srv.close();
  await once(srv, 'close');
  return port;
}

/**
 * A private sshd on 127.0.0.1 (its own host key, config and authorized key under `dir`), so
 * rsync over ssh needs no change to the machine's ssh setup. Returns it with the client key.
 */
async function startSshd(dir: string): Promise<Service & { readonly key: string }> {
  ensureTool('/usr/sbin/sshd', 'openssh-server');
  ensureTool('ssh', 'openssh-client');
  mkdirSync(dir, { recursive: true });
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'host_ed25519');
  const key = join(dir, 'client_ed25519');
  for (const k of [hostKey, key]) {
    rmSync(k, { force: true });
    rmSync(`${k}.pub`, { force: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k]);
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${key}.pub`));
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      `PidFile ${join(dir, 'sshd.pid')}`,
      '',
    ].join('\n'),
  );
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: 'ignore' });
  const service = { pid: proc.pid!, port, key, stop: stopper(proc) };
  // Ready when a login works (sshd has no readiness line on -D -e that is stable across
  // versions); each attempt is a real ssh round trip.
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync('ssh', [...sshArgs(service), '127.0.0.1', 'true'], { encoding: 'utf8' });
    if (r.status === 0) return service;
    if (proc.exitCode !== null || attempt === 100) {
      await service.stop();
      throw new Error(`the private sshd on port ${port} refused logins: ${r.stderr.trim()}`);
    }
    await new Promise((r2) => setTimeout(r2, 100));
  }
}

function sshArgs(sshd: { readonly port: number; readonly key: string }): string[] {
  return [
    '-p',
    String(sshd.port),
    '-i',
    sshd.key,
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'BatchMode=yes',
  ];
}

/**
 * Scenario 7: scenarios 2 and 5 (the small-file tree and the mixed tree, initial push)
 * through async-server on loopback TLS, against `rsync -a` over ssh to 127.0.0.1. Peak RSS
 * sums both ends: the client's process tree plus the daemon's (or sshd's, with the rsync it
 * forks for the session).
 */
async function scenarioDaemon(): Promise<void> {
  const dir = join(WORK, 'daemon');
  retire(dir);
  const daemon = await startBenchDaemon(dir, { user: 'bench', password: DAEMON_PASSWORD });
  let sshd: Awaited<ReturnType<typeof startSshd>> | undefined;
  const knownHosts = join(dir, 'known_hosts');
  try {
    sshd = await startSshd(join(dir, 'ssh'));
    const trees: [string, string][] = [[A, `${FILES} small files`]];
    if (ensureMixedTree(7)) trees.push([B, mixedLabel()]);
    for (const [src, label] of trees) {
      const name = src === A ? 'A' : 'B';
      const sc = `7 initial push over loopback, ${label}`;
      const viaDaemon = join(dir, 'docroot', `${name}-daemon`);
      const viaSsh = join(dir, `${name}-ssh`);
      const localDb = join(dir, `${name}-db`);
      for (let i = 0; i < RUNS; i++) {
        for (const tool of inTurn(
          ['async via async-server (TLS)', 'rsync -a over ssh'] as const,
          i,
        )) {
          retire(viaDaemon);
          retire(viaSsh);
          retire(localDb);
          roomFor(src === A ? SMALL : MIXED_SPEC);
          mkdirSync(localDb, { recursive: true });
          if (src === A) warm(A);
          else warmData(B);
          if (tool === 'rsync -a over ssh') {
            const m = await measure(
              'rsync',
              [
                '-a',
                '--delete',
                '-e',
                ['ssh', ...sshArgs(sshd)].join(' '),
                `${src}/`,
                `127.0.0.1:${viaSsh}/`,
              ],
              { alsoSample: [sshd.pid] },
            );
            record(sc, tool, m);
            continue;
          }
          const m = await measure(
            'node',
            pushArgs(src, `bench@127.0.0.1:/${name}-daemon`, localDb, [
              '-P',
              String(daemon.port),
              '--known-hosts',
              knownHosts,
              '--accept-new-host-key',
            ]),
            {
              env: { ...process.env, ASPERA_SCP_PASS: DAEMON_PASSWORD },
              alsoSample: [daemon.pid],
            },
          );
          const o = asyncOutcome(m);
          record(sc, tool, m, `${o.files} files sent`);
        }
      }
      retire(viaDaemon);
      retire(viaSsh);
    }
  } finally {
    await daemon.stop();
    await sshd?.stop();
  }
  dropMixedTree();
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
  const needSmall = [1, 2, 3, 4, 7].some((n) => ONLY.has(n));
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
  if (ONLY.has(7)) await scenarioDaemon();

  const text = [
    `### ${FILES.toLocaleString('en')} files, ${began.toISOString().slice(0, 16)} UTC`,
    '',
    `Command: \`npm run bench -- ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'),
    '',
    machine(rsyncVersion),
    ...(buildNote ? [buildNote] : []),
    '',
    table(),
  ].join('\n');
  console.log(text);
  if (!flags['no-write']) writeResults(text);

  if (!flags.keep) {
    log('removing the fixtures');
    rmTree(WORK);
  } else emptyTrash();
}

main().catch((e: unknown) => {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
