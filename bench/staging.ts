/**
 * Where a receiver should create a small file before it is placed: the question behind the
 * transfer cache (src/endpoint/local.ts). Two worker threads (like the pool) create --files
 * files of 1,500 B, 50 per directory, each as the pool's worker does (create O_EXCL, write,
 * futimes, fstat, close), in one of three ways, interleaved, medians:
 *
 *   cross   in a cache directory of the thread's own, then lstat of the target and a
 *           rename across directories into place (what async does);
 *   same    beside the target (`.name.part`), then lstat and a rename in the same directory
 *           (rsync's way);
 *   direct  at the target itself (cp's way; no protection against a half-written file).
 *
 * Every run's tree is kept until the last run ends: on ext4 without a journal, files created
 * within minutes of a big deletion pay a scan per inode (see bench/run.ts, retire()), which
 * would charge one way for the deletion of the one before.
 *
 *   node dist/bench/staging.js [--files 100000] [--runs 3] [--work DIR]
 */
import {
  closeSync,
  fstatSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { benchArgs } from './args.js';
import { median } from './measure.js';

const MODES = ['cross', 'same', 'direct'] as const;
type Mode = (typeof MODES)[number];
const PER_DIR = 50;

interface Job {
  readonly mode: Mode;
  readonly root: string;
  readonly files: number;
  readonly thread: number;
}

/** One thread's share: every other file. */
function create(job: Job): void {
  const buf = Buffer.alloc(1500, 7);
  for (let i = job.thread; i < job.files; i += 2) {
    const dir = join(job.root, `d${Math.floor(i / PER_DIR)}`);
    const target = join(dir, `f${i}`);
    const at =
      job.mode === 'cross'
        ? join(job.root, 'cache', String(job.thread), `${i}.part`)
        : job.mode === 'same'
          ? join(dir, `.f${i}.part`)
          : target;
    const fd = openSync(at, 'wx', 0o600);
    writeSync(fd, buf, 0, buf.length, 0);
    futimesSync(fd, 1e9, 1e9);
    fstatSync(fd);
    closeSync(fd);
    if (at !== target) {
      lstatSync(target, { throwIfNoEntry: false });
      renameSync(at, target);
    }
  }
}

async function once(mode: Mode, root: string, files: number): Promise<number> {
  for (const t of [0, 1]) mkdirSync(join(root, 'cache', String(t)), { recursive: true });
  for (let d = 0; d < Math.ceil(files / PER_DIR); d++) mkdirSync(join(root, `d${d}`));
  const start = performance.now();
  await Promise.all(
    [0, 1].map(
      (thread) =>
        new Promise<void>((resolve, reject) => {
          const job: Job = { mode, root, files, thread };
          const w = new Worker(new URL(import.meta.url), { workerData: job });
          w.once('error', reject);
          w.once('exit', (code) =>
            code === 0 ? resolve() : reject(new Error(`thread exit ${code}`)),
          );
        }),
    ),
  );
  return (performance.now() - start) / 1000;
}

if (isMainThread) {
  const { values } = benchArgs({
    script: 'staging',
    summary:
      'where a receiver should create a small file before placing it: in a cache directory ' +
      'and renamed across directories (async), beside its target (rsync), or in place (cp); ' +
      'two threads, interleaved rounds, medians.',
    options: {
      files: { type: 'integer', min: 2, default: 100_000, help: 'files created per run' },
      runs: { type: 'integer', min: 1, default: 3, help: 'interleaved rounds of all three' },
      work: { type: 'string', arg: 'DIR', help: 'where the trees are made (default: tmpdir)' },
    },
  });
  const work = values.work ?? tmpdir();
  const times = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const roots: string[] = [];
  try {
    for (let r = 0; r < values.runs; r++) {
      for (const mode of MODES) {
        roots.push(mkdtempSync(join(work, `staging-${mode}-`)));
        const s = await once(mode, roots.at(-1)!, values.files);
        times.get(mode)!.push(s);
        console.log(`round ${r + 1}: ${mode} ${s.toFixed(2)} s`);
      }
    }
  } finally {
    for (const root of roots) rmSync(root, { recursive: true, force: true });
  }
  const cross = median(times.get('cross')!);
  console.log(`\n| way | median s | runs (s) | x cross |\n|---|---|---|---|`);
  for (const [mode, xs] of times) {
    const m = median(xs);
    const runs = xs.map((x) => x.toFixed(2)).join(', ');
    console.log(`| ${mode} | ${m.toFixed(2)} | ${runs} | ${(m / cross).toFixed(2)} |`);
  }
} else {
  create(workerData as Job);
}
