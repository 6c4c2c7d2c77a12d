/**
 * Target rate accuracy and the tuning harness ("tuning the target rate" in the README).
 *
 * For each target rate, pushes a big sparse tree to a peer daemon with -l <rate>, counts the
 * bytes as they go on the wire, and reports the achieved rate over each of several
 * consecutive 10 s windows (the first starts 1 s after the first byte), the worst window's
 * error, the CPU the client used (and the daemon's, when this harness started it) and the
 * load average. The run is stopped once the last window closed. Then it suggests a -l for
 * the link: the highest target whose every window was within 3%, without saturating a core.
 *
 *   npm run build
 *   node dist/bench/rate.js                          # its own daemon on loopback TLS
 *   node dist/bench/rate.js 10m 100m 1g              # chosen rates
 *   node dist/bench/rate.js --windows 5 --plaintext  # own daemon over h2c (no TLS cost)
 *   node dist/bench/rate.js --pull 10m 100m          # the daemon sends (own daemon only)
 *   node dist/bench/rate.js max 1g 2g                # max: no -l, the link's ceiling
 *   ASPERA_SCP_PASS=... node dist/bench/rate.js --peer alice@host:/scratch -P 33001 \
 *       --known-hosts ~/.config/open-async/known_hosts 100m 500m 1g
 *   node dist/bench/rate.js --help                   # the options with their defaults
 *
 * Source files are sparse (zeros), so reading them costs no disk; the receiver writes for
 * real.
 */
import type { ChildProcess } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  ftruncateSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './args.js';
import { startBenchDaemon } from './daemon.js';
import { parseRate } from '../src/core/units.js';
import { runSession } from '../src/engine/session.js';

const WINDOW_S = 10;
const WARMUP_S = 1;
const DEFAULT_RATES = ['10m', '50m', '100m', '500m', '1g', '2g'];

interface Peer {
  host: string;
  port: number;
  user: string;
  path: string;
  knownHosts: string;
  password: string;
  plaintext: boolean;
  /** The docroot, when this harness started the daemon (pull trees are made there). */
  docroot?: string;
  proc?: ChildProcess;
}

interface Args {
  rates: string[];
  windows: number;
  plaintext: boolean;
  pull: boolean;
  peer?: { spec: string; port: number; knownHosts: string };
}

const PEER_RE = /^(?:([^@]+)@)?([^:]+):(.*)$/;

function args(): Args {
  const { values, positionals, fail } = benchArgs({
    script: 'rate',
    summary:
      'target rate accuracy: pushes (or pulls) at each target rate with -l, reports the achieved ' +
      'rate per 10 s window and the CPU, and suggests a -l for the link.',
    usage: [
      'node dist/bench/rate.js [options] [RATE ...]',
      'ASPERA_SCP_PASS=... node dist/bench/rate.js --peer USER@HOST:/PATH [-P PORT] [RATE ...]',
    ],
    positionals: {
      name: 'RATE',
      help: `target rates like 100m or 1g; max: no -l, the link's ceiling (default ${DEFAULT_RATES.join(' ')})`,
      check: (t) =>
        t === 'max' || parseRate(t) !== undefined ? undefined : 'a rate like 500m or 1g, or max',
    },
    options: {
      windows: {
        type: 'integer',
        min: 1,
        default: 3,
        help: `${WINDOW_S} s windows measured per rate`,
      },
      plaintext: { type: 'boolean', help: 'own daemon over h2c (no TLS cost)' },
      pull: { type: 'boolean', help: 'the daemon sends (own daemon only)' },
      peer: {
        type: 'string',
        arg: 'USER@HOST:/PATH',
        check: (t) => (PEER_RE.test(t) ? undefined : 'user@host:/path'),
        help: 'an existing peer instead of the own daemon (password in ASPERA_SCP_PASS)',
      },
      port: {
        type: 'integer',
        short: 'P',
        min: 1,
        max: 65535,
        default: 33001,
        help: "the --peer's port",
      },
      'known-hosts': {
        type: 'string',
        arg: 'FILE',
        default: join(process.env.HOME ?? '', '.config', 'open-async', 'known_hosts'),
        help: "the known_hosts file with the --peer's key",
      },
    },
  });
  if (values.pull && values.peer !== undefined) {
    fail("--pull needs the harness's own daemon (it makes the tree there)", 'leave out --peer');
  }
  return {
    rates: positionals.length > 0 ? positionals : DEFAULT_RATES,
    windows: values.windows,
    plaintext: values.plaintext,
    pull: values.pull,
    ...(values.peer !== undefined
      ? { peer: { spec: values.peer, port: values.port, knownHosts: values['known-hosts'] } }
      : {}),
  };
}

async function ownDaemon(base: string, plaintext: boolean): Promise<Peer> {
  const { proc, port, docroot } = await startBenchDaemon(base, {
    user: 'bench',
    password: 'bench',
    plaintext,
  });
  return {
    host: '127.0.0.1',
    port,
    user: 'bench',
    path: '/',
    knownHosts: join(base, 'known_hosts'),
    password: 'bench',
    plaintext,
    docroot,
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

async function measure(peer: Peer, rateText: string, base: string, i: number, o: Args) {
  // 'max': no -l at all, to show what the link (or a core) carries in the same run.
  const unlimited = rateText === 'max';
  // Checked with the options (args()): every rate but 'max' parses.
  const bps = unlimited ? NaN : parseRate(rateText)!;
  const span = WARMUP_S + o.windows * WINDOW_S;
  // Sparse, so its size costs nothing: big enough to outlast the windows at this rate.
  const bytes = Math.ceil(((unlimited ? 4e9 : bps) / 8) * (span + 10));
  const rel = `rate-${process.pid}-${i}`;
  const local = join(base, `local${i}`);
  if (o.pull) makeTree(join(peer.docroot!, rel), bytes);
  else makeTree(local, bytes);
  const samples: [number, number][] = [];
  let total = 0;
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const cpu0 = process.cpuUsage();
  const srv0 = peer.proc ? cpuOf(peer.proc.pid!) : 0;
  const t0 = performance.now();
  let errors = 0;
  try {
    const summary = await runSession({
      name: `rate${i}`,
      localDir: local,
      remoteDir: `${peer.path.replace(/\/$/, '')}/${rel}`,
      direction: o.pull ? 'pull' : 'push',
      reset: false,
      createDir: true,
      overwrite: 'always',
      preserveMtime: false,
      preserveUid: false,
      preserveGid: false,
      ...(unlimited ? {} : { targetRate: bps }),
      transferThreads: 4,
      signal: stop.signal,
      events: {
        bytes(n) {
          total += n;
          const now = performance.now();
          samples.push([now, total]);
          // The windows are measured: stop the run rather than wait for the whole tree.
          timer ??= setTimeout(() => stop.abort(new Error('measured')), span * 1000 + 500);
        },
      },
      remote: {
        target: {
          host: peer.host,
          port: peer.port,
          user: peer.user,
          plaintext: peer.plaintext,
          hostKeys: { file: peer.knownHosts, acceptNew: peer.proc !== undefined },
        },
        credentials: { password: peer.password, keys: [] },
      },
    });
    errors = summary.problems.length;
  } catch (e) {
    if (!stop.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const srvCpu = peer.proc ? cpuOf(peer.proc.pid!) - srv0 : NaN;
  const load = loadavg()[0]!;
  rmSync(local, { recursive: true, force: true });
  if (peer.docroot) rmSync(join(peer.docroot, rel), { recursive: true, force: true });
  const first = samples[0]?.[0] ?? t0;
  const at = (t: number): number => {
    let b = 0;
    for (const [ts, n] of samples) if (ts <= t) b = n;
    return b;
  };
  const last = samples[samples.length - 1]?.[0] ?? t0;
  const windows: number[] = [];
  for (let w = 0; w < o.windows; w++) {
    const from = first + (WARMUP_S + w * WINDOW_S) * 1000;
    const to = from + WINDOW_S * 1000;
    if (last < to) break;
    windows.push(((at(to) - at(from)) * 8) / WINDOW_S);
  }
  const errs = unlimited ? [] : windows.map((w) => (w - bps) / bps);
  const worst = errs.reduce((m, e) => (Math.abs(e) > Math.abs(m) ? e : m), 0);
  return {
    rateText,
    bps,
    windows,
    worst,
    complete: windows.length === o.windows,
    clientCpu: (cpu.user + cpu.system) / 1e6 / wall,
    serverCpu: srvCpu / wall,
    load,
    errors,
  };
}

const fmt = (bps: number): string =>
  bps >= 1e9 ? `${(bps / 1e9).toFixed(3)} Gb/s` : `${(bps / 1e6).toFixed(1)} Mb/s`;

const o = args();
const base = mkdtempSync(join(tmpdir(), 'async-rate-'));
let peer: Peer;
if (o.peer) {
  const m = PEER_RE.exec(o.peer.spec)!;
  peer = {
    user: m[1] ?? process.env.USER ?? '',
    host: m[2]!,
    path: m[3]!,
    port: o.peer.port,
    knownHosts: o.peer.knownHosts,
    password: process.env.ASPERA_SCP_PASS ?? '',
    plaintext: false,
  };
} else peer = await ownDaemon(base, o.plaintext);
const pct = (e: number): string => `${e >= 0 ? '+' : ''}${(e * 100).toFixed(1)}%`;
try {
  console.log(
    `${o.pull ? 'pull' : 'push'} over ${peer.plaintext ? 'h2c (plaintext)' : 'TLS'}, ${o.windows} windows of ${WINDOW_S} s per rate\n`,
  );
  console.log(
    `| target | achieved per ${WINDOW_S} s window | worst error | client CPU (cores) | daemon CPU (cores) | load avg (1 min) |`,
  );
  console.log('|---|---|---|---|---|---|');
  const rows = [];
  for (let i = 0; i < o.rates.length; i++) {
    const r = await measure(peer, o.rates[i]!, base, i, o);
    rows.push(r);
    const ws = r.windows.map(fmt).join(', ') || '(none: the run ended early)';
    const worst = Number.isNaN(r.bps) ? '(no -l)' : pct(r.worst);
    console.log(
      `| ${r.rateText} | ${ws}${r.complete ? '' : ' (ended early)'} | ${worst} | ${r.clientCpu.toFixed(2)} | ${Number.isNaN(r.serverCpu) ? '-' : r.serverCpu.toFixed(2)} | ${r.load.toFixed(1)} |`,
    );
  }
  const good = rows.filter(
    (r) =>
      !Number.isNaN(r.bps) &&
      r.complete &&
      Math.abs(r.worst) <= 0.03 &&
      r.clientCpu < 0.9 &&
      !(r.serverCpu >= 0.9),
  );
  const best = good.sort((a, b) => b.bps - a.bps)[0];
  const ceiling = Math.max(...rows.flatMap((r) => r.windows));
  console.log(
    best
      ? `\nsuggested: -l ${best.rateText} (the highest target met within 3% in every window with CPU to spare; the link carried at most ${fmt(ceiling)})`
      : `\nno target was met within 3%: the link carried at most ${fmt(ceiling)}; try -l ${Math.floor((ceiling * 0.8) / 1e6)}m`,
  );
} finally {
  peer.proc?.kill('SIGTERM');
  rmSync(base, { recursive: true, force: true });
}
