/**
 * Continuous mode benchmarks (the targets), through the real CLI, with a local peer
 * or (--peer daemon) a real async-server on loopback (TLS; the peer side is its docroot):
 *
 *   1. latency from a closed 1 KiB write to its placement at the peer (p50, p95);
 *   2. a burst of --burst files created at once: all arrive, none sent twice;
 *   3. idle CPU of the session watching the tree, over --idle seconds.
 *
 *   node dist/bench/continuous.js [--files 20000] [--dirs 2000] [--cooloff 0.5]
 *                                 [--samples 30] [--burst 10000] [--idle 20]
 *                                 [--peer local|daemon]
 *   node dist/bench/continuous.js --help         # the options with their defaults
 *
 * Baseline in the same run: the time for the same file to appear at the peer when a
 * one-time `async` is started after the write (what a cron job would give at best).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import { startBenchDaemon } from './daemon.js';

const { values: flags } = benchArgs({
  script: 'continuous',
  summary:
    'continuous mode through the real CLI: write-to-placed latency, a burst of files, idle ' +
    'CPU; a local peer or a real async-server on loopback TLS.',
  options: {
    files: { type: 'integer', min: 1, default: 20_000, help: 'files in the watched tree' },
    dirs: { type: 'integer', min: 1, default: 2000, help: 'directories of that tree' },
    cooloff: {
      type: 'number',
      default: 0.5,
      arg: 'SECONDS',
      help: "the session's --cooloff",
    },
    samples: { type: 'integer', min: 1, default: 30, help: 'latency samples (1 KiB writes)' },
    burst: { type: 'integer', min: 1, default: 10_000, help: 'files created at once' },
    idle: {
      type: 'number',
      positive: true,
      default: 20,
      arg: 'SECONDS',
      help: 'how long idle CPU is measured',
    },
    peer: {
      type: 'string',
      choices: ['local', 'daemon'],
      default: 'local',
      help: 'a local directory, or a real async-server on 127.0.0.1 (TLS)',
    },
  },
});
const FILES = flags.files;
const DIRS = flags.dirs;
const COOLOFF = flags.cooloff;
const SAMPLES = flags.samples;
const BURST = flags.burst;
const IDLE = flags.idle;
const PEER = flags.peer;
const BIN = resolve(fileURLToPath(import.meta.url), '..', '..', '..', 'bin', 'async.js');

interface Peer {
  /** Where the peer's files are on this machine. */
  readonly mirror: string;
  /** The -r ... arguments naming it. */
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** A real async-server on 127.0.0.1 (port 0, TLS), alice's docroot under `root`. */
async function startDaemonPeer(root: string): Promise<Peer> {
  const d = await startBenchDaemon(root, { user: 'alice', password: 'secret' });
  const { port, docroot } = d;
  return {
    mirror: join(docroot, 'bench'),
    args: [
      '-r',
      'alice@127.0.0.1:/bench',
      '-P',
      String(port),
      '--known-hosts',
      join(root, 'known_hosts'),
      '--accept-new-host-key',
      '--create-dir',
    ],
    env: { ...process.env, ASPERA_SCP_PASS: 'secret' },
    stop: () => d.stop(),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (cond()) return true;
    await sleep(2);
  }
  return false;
}
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(parts[11]) + Number(parts[12]); // utime + stime
}

async function main(): Promise<void> {
  const root = join(tmpdir(), `cont-bench-${process.pid}`);
  const data = join(root, 'data');
  mkdirSync(root, { recursive: true });
  const peer: Peer =
    PEER === 'daemon'
      ? await startDaemonPeer(root)
      : {
          mirror: join(root, 'mirror'),
          args: ['-r', join(root, 'mirror')],
          env: process.env,
          stop: async () => undefined,
        };
  const mirror = peer.mirror;
  if (PEER !== 'daemon') mkdirSync(mirror, { recursive: true });
  for (let i = 0; i < FILES; i++) {
    const d = join(data, `d${i % DIRS}`);
    if (i < DIRS) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}`), 'x'.repeat(100));
  }
  const t0 = performance.now();
  const proc = spawn(
    process.execPath,
    [BIN, '-N', 'bench', '-d', data, ...peer.args, '-C', '--cooloff', String(COOLOFF)],
    { stdio: ['ignore', 'pipe', 'inherit'], env: peer.env },
  );
  // One stdout line per propagated change: the burst's files must each be sent once.
  const sentCount = new Map<string, number>();
  let pendingOut = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    pendingOut += c;
    const lines = pendingOut.split('\n');
    pendingOut = lines.pop()!;
    for (const l of lines) {
      const m = / sent (burst\/\S+)$/.exec(l);
      if (m) sentCount.set(m[1]!, (sentCount.get(m[1]!) ?? 0) + 1);
    }
  });
  const seed = join(mirror, `d${DIRS - 1}`, `f${FILES - 1}`);
  if (!(await until(() => existsSync(seed), 600_000))) throw new Error('initial sync timed out');
  const initial = performance.now() - t0;
  // Steady state first: the initial pass ends after its last file is placed, and the peer's
  // watcher then reports those placements (the "echo" pass). A probe that arrives marks
  // the end of both.
  const tw = performance.now();
  writeFileSync(join(data, 'probe.bin'), 'probe');
  if (!(await until(() => existsSync(join(mirror, 'probe.bin')), 600_000)))
    throw new Error('warm-up probe timed out');
  const warm = performance.now() - tw;

  // 1. Latency, one closed write at a time.
  const lat: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const rel = join(`d${i % DIRS}`, `lat${i}.bin`);
    const t = performance.now();
    writeFileSync(join(data, rel), Buffer.alloc(1024, i));
    if (!(await until(() => existsSync(join(mirror, rel)), 30_000))) throw new Error('lost');
    lat.push(performance.now() - t);
    await sleep(100);
  }

  // 2. A burst, all at once, in new directories.
  const tb = performance.now();
  for (let i = 0; i < BURST; i++) {
    const d = join(data, 'burst', `b${i % 100}`);
    if (i < 100) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}`), `burst ${i}`);
  }
  const last = join(mirror, 'burst', `b${(BURST - 1) % 100}`, `f${BURST - 1}`);
  let all = false;
  let found = 0;
  const deadline = performance.now() + 120_000;
  while (!all && performance.now() < deadline) {
    await until(() => existsSync(last), 120_000);
    const r = spawnSync('find', [join(mirror, 'burst'), '-type', 'f'], { encoding: 'utf8' });
    found = r.stdout.trim().split('\n').length;
    all = found === BURST;
    if (!all) await sleep(50);
  }
  if (!all) console.error(`burst: only ${found} of ${BURST} placed after 120 s`);
  const burstMs = performance.now() - tb;

  // 3. Idle CPU.
  // Let the peer-side echo of the burst settle first.
  await sleep(COOLOFF * 1000 + 5000);
  const c0 = cpuTicks(proc.pid!);
  await sleep(IDLE * 1000);
  const idlePct = ((cpuTicks(proc.pid!) - c0) / 100 / IDLE) * 100;

  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  // Sent exactly once: the sender's snapshot has each burst file once and a rerun is a no-op.
  const rerun = spawnSync(process.execPath, [BIN, '-N', 'bench', '-d', data, ...peer.args], {
    encoding: 'utf8',
    env: peer.env,
  });

  // Baseline: a one-time run started right after a write (cron at its best).
  const base: number[] = [];
  for (let i = 0; i < 5; i++) {
    const rel = join('d0', `base${i}.bin`);
    const t = performance.now();
    writeFileSync(join(data, rel), Buffer.alloc(1024, i));
    spawnSync(process.execPath, [BIN, '-N', 'bench', '-d', data, ...peer.args, '-q'], {
      env: peer.env,
    });
    base.push(performance.now() - t);
  }
  await peer.stop();
  rmSync(root, { recursive: true, force: true });

  console.log(
    `peer: ${PEER}; tree: ${FILES} files in ${DIRS} dirs; cooloff ${COOLOFF} s; node ${process.version}; load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(`| measure | figure |`);
  console.log(`|---|---|`);
  console.log(`| initial sync (s) | ${(initial / 1000).toFixed(1)} |`);
  console.log(`| first change after it, incl. the echo pass (s) | ${(warm / 1000).toFixed(1)} |`);
  console.log(
    `| latency 1 KiB closed write -> placed, p50 / p95 / max (ms), ${SAMPLES} samples | ${pct(lat, 50).toFixed(0)} / ${pct(lat, 95).toFixed(0)} / ${Math.max(...lat).toFixed(0)} |`,
  );
  console.log(`| target: cooloff + 500 ms | ${(COOLOFF * 1000 + 500).toFixed(0)} |`);
  console.log(
    `| baseline: one-time run after the write, median of 5 (ms) | ${pct(base, 50).toFixed(0)} |`,
  );
  console.log(`| burst of ${BURST} files: all placed after (s) | ${(burstMs / 1000).toFixed(1)} |`);
  const twice = [...sentCount.values()].filter((n) => n > 1).length;
  console.log(
    `| burst: files with a "sent" line / sent more than once | ${sentCount.size} / ${twice} |`,
  );
  console.log(`| rerun after the session: ${rerun.stdout.trim().replace(/\|/g, '/')} | |`);
  console.log(`| idle CPU over ${IDLE} s (% of one core) | ${idlePct.toFixed(2)} |`);
}

await main();
