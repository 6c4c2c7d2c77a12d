/**
 * Target rate accuracy and the tuning harness ("tuning the target rate" in the README).
 *
 * For each target rate, syncs a fresh tree (sized to last about 13 s at that rate) to a peer
 * daemon with -l <rate>, counts the bytes handed to the peer, and reports the achieved rate
 * over the 10 s window that starts 1 s after the first byte, with the CPU the client used
 * (and the daemon's, when this harness started it). Then suggests a -l for the link: the
 * highest target achieved within 3% without saturating a core.
 *
 *   npm run build
 *   node dist/bench/rate.js                          # its own daemon on loopback TLS
 *   node dist/bench/rate.js 10m 100m 1g              # chosen rates
 *   ASPERA_SCP_PASS=... node dist/bench/rate.js --peer alice@host:/scratch -P 33001 \
 *       --known-hosts ~/.config/open-async/known_hosts 100m 500m 1g
 *
 * Source files are sparse (zeros), so reading them costs no disk; the peer writes for real.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  ftruncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseRate } from '../src/core/units.js';
import { runSession } from '../src/engine/session.js';

const REPO = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const WINDOW_S = 10;
const WARMUP_S = 1;

interface Peer {
  host: string;
  port: number;
  user: string;
  path: string;
  knownHosts: string;
  password: string;
  proc?: ChildProcess;
}

function args(): { rates: string[]; peer?: { spec: string; port: number; knownHosts: string } } {
  const a = process.argv.slice(2);
  const rates: string[] = [];
  let spec: string | undefined;
  let port = 33001;
  let knownHosts = join(process.env.HOME ?? '', '.config', 'open-async', 'known_hosts');
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--peer') spec = a[++i];
    else if (a[i] === '-P') port = Number(a[++i]);
    else if (a[i] === '--known-hosts') knownHosts = a[++i]!;
    else rates.push(a[i]!);
  }
  return {
    rates: rates.length > 0 ? rates : ['10m', '100m', '500m', '1g', '2g'],
    ...(spec ? { peer: { spec, port, knownHosts } } : {}),
  };
}

async function ownDaemon(base: string): Promise<Peer> {
  const docroot = join(base, 'docroot');
  mkdirSync(docroot);
  const hash = await new Promise<string>((res) => {
    const p = spawn(process.execPath, [join(REPO, 'bin', 'async-server.js'), 'hash-password'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.on('exit', () => res(/password = "(.*)"/.exec(out)![1]!));
    p.stdin.end('bench');
  });
  writeFileSync(
    join(base, 'server.toml'),
    `[server]\nport = 0\n[users.bench]\ndocroot = "${docroot}"\npassword = "${hash}"\n`,
  );
  const proc = spawn(
    process.execPath,
    [join(REPO, 'bin', 'async-server.js'), '--config', join(base, 'server.toml')],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const port = await new Promise<number>((res) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on .*:(\d+)\n/.exec(out);
      if (m) res(Number(m[1]));
    });
  });
  return {
    host: '127.0.0.1',
    port,
    user: 'bench',
    path: '/',
    knownHosts: join(base, 'known_hosts'),
    password: 'bench',
    proc,
  };
}

function cpuOf(pid: number): number {
  // utime + stime in clock ticks (100 Hz on Linux).
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function makeTree(dir: string, bytes: number): void {
  mkdirSync(dir, { recursive: true });
  const piece = 256 * 1024 * 1024;
  for (let i = 0; bytes > 0; i++) {
    const n = Math.min(piece, bytes);
    const fd = openSync(join(dir, `f${i}.bin`), 'w');
    ftruncateSync(fd, n);
    closeSync(fd);
    bytes -= n;
  }
}

async function measure(peer: Peer, rateText: string, base: string, i: number) {
  const bps = parseRate(rateText)!;
  const src = join(base, `src${i}`);
  makeTree(src, Math.ceil((bps / 8) * (WINDOW_S + WARMUP_S + 2)));
  const samples: [number, number][] = [];
  let total = 0;
  const cpu0 = process.cpuUsage();
  const srv0 = peer.proc ? cpuOf(peer.proc.pid!) : 0;
  const t0 = performance.now();
  const summary = await runSession({
    name: `rate${i}`,
    localDir: src,
    remoteDir: `${peer.path.replace(/\/$/, '')}/rate-${process.pid}-${i}`,
    direction: 'push',
    reset: false,
    createDir: true,
    overwrite: 'always',
    preserveMtime: false,
    preserveUid: false,
    preserveGid: false,
    targetRate: bps,
    transferThreads: 4,
    events: {
      bytes(n) {
        total += n;
        samples.push([performance.now(), total]);
      },
    },
    remote: {
      target: {
        host: peer.host,
        port: peer.port,
        user: peer.user,
        plaintext: false,
        hostKeys: { file: peer.knownHosts, acceptNew: peer.proc !== undefined },
      },
      credentials: { password: peer.password, keys: [] },
    },
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const srvCpu = peer.proc ? cpuOf(peer.proc.pid!) - srv0 : NaN;
  rmSync(src, { recursive: true, force: true });
  if (peer.proc)
    rmSync(join(base, 'docroot', `rate-${process.pid}-${i}`), { recursive: true, force: true });
  const first = samples[0]?.[0] ?? t0;
  const at = (t: number): number => {
    let b = 0;
    for (const [ts, n] of samples) if (ts <= t) b = n;
    return b;
  };
  const from = first + WARMUP_S * 1000;
  const to = from + WINDOW_S * 1000;
  const windowBits = (at(to) - at(from)) * 8;
  const achieved = windowBits / WINDOW_S;
  // Steady state over the whole run: the first batch leaves at once (the bucket starts
  // full), so it is not counted; every later byte waited for its tokens.
  const last = samples[samples.length - 1];
  const steady =
    samples.length > 1 && last
      ? ((last[1] - samples[0]![1]) * 8) / ((last[0] - first) / 1000)
      : NaN;
  return {
    steady,
    rateText,
    bps,
    achieved,
    complete: samples.length > 0 && samples[samples.length - 1]![0] >= to,
    clientCpu: (cpu.user + cpu.system) / 1e6 / wall,
    serverCpu: srvCpu / wall,
    errors: summary.problems.length,
  };
}

const fmt = (bps: number): string =>
  bps >= 1e9 ? `${(bps / 1e9).toFixed(3)} Gb/s` : `${(bps / 1e6).toFixed(1)} Mb/s`;

const { rates, peer: peerArg } = args();
const base = mkdtempSync(join(tmpdir(), 'async-rate-'));
let peer: Peer;
if (peerArg) {
  const m = /^(?:([^@]+)@)?([^:]+):(.*)$/.exec(peerArg.spec);
  if (!m) throw new Error('--peer user@host:/path');
  peer = {
    user: m[1] ?? process.env.USER ?? '',
    host: m[2]!,
    path: m[3]!,
    port: peerArg.port,
    knownHosts: peerArg.knownHosts,
    password: process.env.ASPERA_SCP_PASS ?? '',
  };
} else peer = await ownDaemon(base);
try {
  console.log(
    `| target | achieved (10 s window) | error | steady state (whole run) | error | client CPU (cores) | daemon CPU (cores) |`,
  );
  console.log('|---|---|---|---|---|---|---|');
  const rows = [];
  for (let i = 0; i < rates.length; i++) {
    const r = await measure(peer, rates[i]!, base, i);
    rows.push(r);
    const err = ((r.achieved - r.bps) / r.bps) * 100;
    const serr = ((r.steady - r.bps) / r.bps) * 100;
    console.log(
      `| ${r.rateText} | ${r.complete ? fmt(r.achieved) : `${fmt(r.achieved)} (ended early)`} | ${err >= 0 ? '+' : ''}${err.toFixed(1)}% | ${fmt(r.steady)} | ${serr >= 0 ? '+' : ''}${serr.toFixed(1)}% | ${r.clientCpu.toFixed(2)} | ${Number.isNaN(r.serverCpu) ? '-' : r.serverCpu.toFixed(2)} |`,
    );
  }
  const good = rows.filter(
    (r) =>
      r.complete &&
      Math.abs(r.achieved - r.bps) / r.bps <= 0.03 &&
      r.clientCpu < 0.9 &&
      !(r.serverCpu >= 0.9),
  );
  const best = good.sort((a, b) => b.bps - a.bps)[0];
  const ceiling = Math.max(...rows.map((r) => r.achieved));
  console.log(
    best
      ? `\nsuggested: -l ${best.rateText} (the highest target met within 3% with CPU to spare; the link carried at most ${fmt(ceiling)})`
      : `\nno target was met within 3%: the link carried at most ${fmt(ceiling)}; try -l ${Math.floor((ceiling * 0.8) / 1e6)}m`,
  );
} finally {
  peer.proc?.kill('SIGTERM');
  rmSync(base, { recursive: true, force: true });
}
