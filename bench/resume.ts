/**
 * Resume of big files through the peer daemon: bytes and time of a rerun after a kill -9
 * mid-file, against a full send of the same file in the same run (A B A B).
 *
 *   npm run build
 *   node dist/bench/resume.js [--mib 256] [--runs 3] [--kill-at 0.5] [--rate 400m]
 *
 * (These were positional arguments, in that order: a command line in that form is refused
 * with its named form.)
 *
 * Each run: a fresh file of random data; `async -l RATE` pushes it to the bench's own daemon
 * (loopback TLS) and is killed with SIGKILL once the daemon's partial manifest holds
 * `--kill-at` of the pieces; the rerun (no -l) is timed and its --json byte counts recorded.
 * The baseline is a full push of a same-sized fresh file, no -l, into a fresh directory.
 * Both results are checked against the source's sha256.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import { startBenchDaemon } from './daemon.js';
import { median } from './measure.js';
import { parseRate } from '../src/core/units.js';
import { heldPieceCount } from '../src/endpoint/partial-store.js';

const REPO = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const ASYNC = join(REPO, 'bin', 'async.js');
const PIECE = 4 * 1024 * 1024;

const { values: flags } = benchArgs({
  script: 'resume',
  summary:
    'resume of a big file through the daemon: a push killed mid-file (kill -9) then rerun, ' +
    'against a full send of the same size, interleaved; bytes and wall time.',
  formerPositionals: ['mib', 'runs', 'kill-at', 'rate'],
  options: {
    mib: { type: 'integer', min: 1, default: 256, arg: 'MIB', help: 'size of the file' },
    runs: { type: 'integer', min: 1, default: 3, help: 'runs of each kind' },
    'kill-at': {
      type: 'number',
      min: 0,
      max: 1,
      default: 0.5,
      arg: 'FRACTION',
      help: "the share of the file's pieces held by the daemon when the push is killed",
    },
    rate: {
      type: 'string',
      default: '400m',
      arg: 'RATE',
      check: (t) => (parseRate(t) === undefined ? 'a rate like 400m or 1g' : undefined),
      help: "the killed push's -l (slow enough to kill it mid-file)",
    },
  },
});
const mib = flags.mib;
const runs = flags.runs;
const killAt = flags['kill-at'];
const rate = flags.rate;

function writeRandom(abs: string, bytes: number): void {
  const fd = openSync(abs, 'w');
  for (let at = 0; at < bytes; at += 64 * 1024 * 1024)
    writeSync(fd, randomBytes(Math.min(64 * 1024 * 1024, bytes - at)));
  closeSync(fd);
}

function sha256(abs: string): string {
  return createHash('sha256').update(readFileSync(abs)).digest('hex');
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'async-bench-resume-'));
  const { proc, port } = await startBenchDaemon(base, { user: 'bench', password: 'bench' });
  const peerArgs = (name: string) => [
    '-r',
    `bench@127.0.0.1:/${name}`,
    '-P',
    String(port),
    '--known-hosts',
    join(base, 'known_hosts'),
    '--accept-new-host-key',
    '--create-dir',
    '-N',
    name,
  ];
  const env = { ...process.env, ASPERA_SCP_PASS: 'bench' };
  const run = (args: string[]): { secs: number; json: Record<string, number> } => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [ASYNC, ...args, '--json'], { env, encoding: 'utf8' });
    const secs = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`async failed: ${r.stdout} ${r.stderr}`);
    return { secs, json: JSON.parse(r.stdout) as Record<string, number> };
  };
  const size = mib * 1024 * 1024;
  const rows: { kind: string; secs: number; sent: number; resumed: number; load: number }[] = [];
  /** Checks the copy in the docroot against the source, then records the run. */
  const keep = (kind: string, src: string, name: string, r: ReturnType<typeof run>): void => {
    if (sha256(join(base, 'docroot', name, 'big.bin')) !== sha256(join(src, 'big.bin')))
      throw new Error(`${kind} send: content differs`);
    rows.push({
      kind,
      secs: r.secs,
      sent: r.json.bytesSent!,
      resumed: r.json.bytesResumed!,
      load: loadavg()[0]!,
    });
  };
  try {
    for (let i = 0; i < runs; i++) {
      // A: a full send.
      const full = join(base, `full${i}`);
      mkdirSync(full);
      writeRandom(join(full, 'big.bin'), size);
      keep('full', full, `full${i}`, run(['-d', full, ...peerArgs(`full${i}`)]));
      // B: killed mid-file, then resumed.
      const src = join(base, `res${i}`);
      mkdirSync(src);
      writeRandom(join(src, 'big.bin'), size);
      const partial = join(base, 'docroot', `res${i}`, '.private-asp', `res${i}`, 'partial');
      const child = spawn(
        process.execPath,
        [ASYNC, '-d', src, ...peerArgs(`res${i}`), '-l', rate, '-q'],
        { env, stdio: 'ignore' },
      );
      const exited = once(child, 'exit');
      const want = Math.floor((size / PIECE) * killAt);
      while (heldPieceCount(partial) < want && child.exitCode === null)
        await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGKILL');
      await exited;
      // The daemon releases the session once it sees the connection gone.
      let r: ReturnType<typeof run> | undefined;
      for (let tries = 0; r === undefined; tries++) {
        try {
          r = run(['-d', src, ...peerArgs(`res${i}`)]);
        } catch (e) {
          if (tries > 100 || !/already running/.test(String(e))) throw e;
          await new Promise((res) => setTimeout(res, 100));
        }
      }
      keep('resume', src, `res${i}`, r);
      rmSync(full, { recursive: true, force: true });
      rmSync(src, { recursive: true, force: true });
      rmSync(join(base, 'docroot', `full${i}`), { recursive: true, force: true });
      rmSync(join(base, 'docroot', `res${i}`), { recursive: true, force: true });
    }
  } finally {
    proc.kill('SIGTERM');
    rmSync(base, { recursive: true, force: true });
  }
  console.log(`| run | kind | wall (s) | bytes sent | bytes resumed | load |`);
  console.log(`|---|---|---|---|---|---|`);
  rows.forEach((r, i) =>
    console.log(
      `| ${Math.floor(i / 2) + 1} | ${r.kind} | ${r.secs.toFixed(2)} | ${r.sent} | ${r.resumed} | ${r.load.toFixed(1)} |`,
    ),
  );
  const med = (k: string, f: (r: (typeof rows)[0]) => number) =>
    median(rows.filter((r) => r.kind === k).map(f));
  const fullS = med('full', (r) => r.secs);
  const resS = med('resume', (r) => r.secs);
  const fullB = med('full', (r) => r.sent);
  const resB = med('resume', (r) => r.sent);
  console.log(
    `\nmedians: full ${fullS.toFixed(2)} s, ${fullB} B; resume ${resS.toFixed(2)} s, ${resB} B; ` +
      `ratios resume/full: time ${(resS / fullS).toFixed(2)}, bytes ${(resB / fullB).toFixed(2)}`,
  );
}

await main();
