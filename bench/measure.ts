/**
 * Runs one command and measures it: wall time and the peak resident memory of its whole
 * process tree (rsync forks a receiver and a generator; async runs worker threads), sampled
 * from /proc every 50 ms. Sampling costs a little CPU on the harness, the same for every
 * tool measured.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';

export interface Measured {
  readonly seconds: number;
  /** Peak of the summed RSS of the process and all its descendants, in MiB. */
  readonly peakRssMiB: number;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface MeasureOptions {
  /** Discard stdout (find prints a line per file). */
  readonly quiet?: boolean;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Long-running processes that serve this command (the peer daemon, sshd and the rsync it
   * forks): their trees' RSS is added to every sample, so the peak covers both ends.
   */
  readonly alsoSample?: readonly number[];
}

const PAGE = 4096;

function children(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (text) for (const c of text.split(/\s+/)) out.push(Number(c));
    } catch {
      // The task ended between the listing and the read.
    }
  }
  return out;
}

function rssBytes(pid: number): number {
  try {
    const statm = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return Number(statm[1]) * PAGE;
  } catch {
    return 0;
  }
}

/** Summed RSS of `pid` and its descendants. */
export function treeRss(pid: number): number {
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    total += rssBytes(p);
    stack.push(...children(p));
  }
  return total;
}

export function measure(cmd: string, args: string[], opts: MeasureOptions = {}): Promise<Measured> {
  return new Promise((resolvePromise, reject) => {
    const devnull = opts.quiet ? openSync('/dev/null', 'w') : undefined;
    const started = performance.now();
    const child = spawn(cmd, args, {
      stdio: ['ignore', devnull ?? 'pipe', 'pipe'],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.env ? { env: opts.env } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < 100_000) stderr += s;
    });
    let peak = 0;
    const sample = (): void => {
      if (child.pid === undefined) return;
      let total = treeRss(child.pid);
      for (const pid of opts.alsoSample ?? []) total += treeRss(pid);
      peak = Math.max(peak, total);
    };
    const timer = setInterval(sample, 50);
    child.on('error', (e) => {
      clearInterval(timer);
      if (devnull !== undefined) closeSync(devnull);
      reject(e);
    });
    child.on('close', (code) => {
      clearInterval(timer);
      if (devnull !== undefined) closeSync(devnull);
      resolvePromise({
        seconds: (performance.now() - started) / 1000,
        peakRssMiB: peak / (1024 * 1024),
        code: code ?? -1,
        stdout,
        stderr,
      });
    });
  });
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
