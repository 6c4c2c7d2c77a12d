/**
 * Chooses the watcher for continuous mode: setup time, memory and event delivery of
 * @parcel/watcher (native inotify backend, its own reader thread) against Node's own
 * fs.watch({recursive: true}) on a tree of many directories.
 *
 *   node dist/bench/watch-setup.js [--dirs 20000] [--files 10] [--runs 3] [--root /tmp/x]
 *   node dist/bench/watch-setup.js --help     # the options with their defaults
 *
 * Each measurement runs in a fresh child process, so RSS figures do not mix. A run is
 * "ready" when a file created in the last directory of the tree is reported: a watcher
 * that returns before it watches everything shows it here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import parcel from '@parcel/watcher';
import { benchArgs } from './args.js';

function build(root: string, dirs: number, files: number): void {
  if (existsSync(join(root, '.done'))) return;
  rmSync(root, { recursive: true, force: true });
  const top = Math.ceil(Math.sqrt(dirs));
  let n = 0;
  for (let i = 0; n < dirs; i++) {
    for (let j = 0; j < top && n < dirs; j++, n++) {
      const d = join(root, `d${i}`, `s${j}`);
      mkdirSync(d, { recursive: true });
      for (let f = 0; f < files; f++) writeFileSync(join(d, `f${f}`), 'x');
    }
  }
  writeFileSync(join(root, '.done'), '');
}

function lastDir(root: string, dirs: number): string {
  const top = Math.ceil(Math.sqrt(dirs));
  const i = Math.floor((dirs - 1) / top);
  const j = (dirs - 1) % top;
  return join(root, `d${i}`, `s${j}`);
}

async function child(method: string, root: string, dirs: number): Promise<void> {
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let seen: (() => void) | undefined;
  const probe = join(lastDir(root, dirs), `probe-${process.pid}`);
  const onPath = (p: string): void => {
    if (p.endsWith(`probe-${process.pid}`)) seen?.();
  };
  let close: () => Promise<void>;
  if (method === 'parcel') {
    const sub = await parcel.subscribe(root, (_err, events) =>
      events.forEach((e) => onPath(e.path)),
    );
    close = () => sub.unsubscribe();
  } else {
    const w = watch(root, { recursive: true }, (_t, name) => onPath(String(name)));
    w.on('error', (e) => {
      // Node 20 watches every file and directory separately: a big tree hits the limit.
      process.stdout.write(JSON.stringify({ method, error: String(e) }) + '\n');
      process.exit(0);
    });
    close = async () => w.close();
  }
  const tCall = performance.now() - t0;
  // Ready: the probe in the last directory is reported (retried: a watcher still walking
  // the tree misses the first ones).
  let ready = -1;
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    const got = new Promise<boolean>((res) => {
      seen = () => res(true);
      setTimeout(() => res(false), 200);
    });
    writeFileSync(probe, String(Date.now()));
    if (await got) {
      ready = performance.now() - t0;
      break;
    }
  }
  global.gc?.();
  const rss = process.memoryUsage().rss - rss0;
  // Idle CPU over 5 s.
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 5000));
  const c = process.cpuUsage(c0);
  await close();
  rmSync(probe, { force: true });
  process.stdout.write(
    JSON.stringify({
      method,
      callMs: tCall,
      readyMs: ready,
      rssMB: rss / 2 ** 20,
      idleCpuPct: ((c.user + c.system) / 1000 / 5000) * 100,
    }) + '\n',
  );
}

async function main(): Promise<void> {
  // Each measurement is this script run again as `watch-setup.js child METHOD ROOT DIRS`
  // (see below): an internal command line, written by main() only, so not parsed as options.
  const argv = process.argv.slice(2);
  if (argv[0] === 'child') {
    await child(argv[1]!, argv[2]!, Number(argv[3]));
    return;
  }
  const { values } = benchArgs({
    script: 'watch-setup',
    summary:
      'the watcher for continuous mode: setup time, memory, idle CPU and event delivery of ' +
      '@parcel/watcher against fs.watch({recursive: true}) on a tree of many directories.',
    options: {
      dirs: { type: 'integer', min: 1, default: 20_000, help: 'directories in the tree' },
      files: { type: 'integer', min: 0, default: 10, help: 'files in each directory' },
      runs: { type: 'integer', min: 1, default: 3, help: 'runs of each watcher' },
      root: {
        type: 'string',
        arg: 'DIR',
        defaultText: `${join(tmpdir(), 'watch-bench-DIRSxFILES')}, kept for the next call`,
        help: 'where the tree is built',
      },
    },
  });
  const { dirs, files, runs } = values;
  const root = values.root ?? join(tmpdir(), `watch-bench-${dirs}x${files}`);
  const tb = performance.now();
  build(root, dirs, files);
  process.stderr.write(
    `tree ${root}: ${dirs} dirs x ${files} files (built in ${((performance.now() - tb) / 1000).toFixed(1)} s)\n`,
  );
  const me = fileURLToPath(import.meta.url);
  type Row = { callMs: number; readyMs: number; rssMB: number; idleCpuPct: number; error?: string };
  const rows: Record<string, Row[]> = {};
  for (let r = 0; r < runs; r++) {
    for (const m of ['parcel', 'fs.watch']) {
      // Warm the dentry cache before each run (see BASELINE.md: pages unused for 30 s go).
      execFileSync('find', [root, '-maxdepth', '3'], { stdio: 'ignore' });
      const out = execFileSync(
        process.execPath,
        ['--expose-gc', me, 'child', m, root, String(dirs)],
        { encoding: 'utf8', maxBuffer: 1 << 20 },
      );
      (rows[m] ??= []).push(JSON.parse(out));
    }
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `| watcher | call returns (ms) | ready (ms) | RSS growth (MiB) | idle CPU (%) | runs |`,
  );
  console.log(`|---|---|---|---|---|---|`);
  for (const [m, rs] of Object.entries(rows)) {
    const failed = rs.find((r) => r.error !== undefined);
    if (failed) {
      console.log(`| ${m} | failed: ${failed.error} | | | | ${rs.length} |`);
      continue;
    }
    console.log(
      `| ${m} | ${med(rs.map((r) => r.callMs)).toFixed(0)} | ${med(rs.map((r) => r.readyMs)).toFixed(0)} | ${med(rs.map((r) => r.rssMB)).toFixed(1)} | ${med(rs.map((r) => r.idleCpuPct)).toFixed(2)} | ${rs.length} |`,
    );
  }
}

await main();
