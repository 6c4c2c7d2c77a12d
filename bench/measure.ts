/**
 * Runs one command and measures it: wall time, the CPU time of its whole process tree, and
 * the peak resident memory of that tree (rsync forks a receiver and a generator; async runs
 * worker threads), sampled from /proc every 50 ms. Sampling costs a little CPU on the
 * harness, the same for every tool measured.
 *
 * CPU time is far steadier than wall time on a shared machine whose disk writes vary
 * several-fold between identical runs: it says whether a tool was bound by its own work or
 * by waiting.
 */
import { execFileSync, spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';

export interface Measured {
  readonly seconds: number;
  /** Peak of the summed RSS of the process and all its descendants, in MiB. */
  readonly peakRssMiB: number;
  /**
   * CPU seconds in user space and in the kernel, of the command and every descendant it
   * waited for (all its threads). A long-running server it talks to is not counted.
   */
  readonly cpuUser: number;
  readonly cpuSys: number;
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

let ticksPerSecond: number | undefined;

/**
 * CPU seconds (user, system) of this process's children that have ended and been waited
 * for: fields 16 and 17 (cutime, cstime) of /proc/self/stat, in clock ticks. A child's
 * figure includes its own reaped descendants. Node reaps a child before its 'close' event.
 */
export function reapedChildrenCpu(): { user: number; sys: number } {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // The command name (field 2) may hold spaces and parentheses: fields are counted from
  // after its closing parenthesis, where field 3 begins.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[16 - 3]) / ticksPerSecond, sys: Number(f[17 - 3]) / ticksPerSecond };
}

/**
 * Measures one command. Measurements must not overlap (nor any other child of this process
 * end meanwhile): the CPU figures are the difference of all reaped children's times.
 */
export function measure(cmd: string, args: string[], opts: MeasureOptions = {}): Promise<Measured> {
  return new Promise((resolvePromise, reject) => {
    const devnull = opts.quiet ? openSync('/dev/null', 'w') : undefined;
    const cpu0 = reapedChildrenCpu();
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
      const seconds = (performance.now() - started) / 1000;
      const cpu = reapedChildrenCpu();
      resolvePromise({
        seconds,
        peakRssMiB: peak / (1024 * 1024),
        cpuUser: cpu.user - cpu0.user,
        cpuSys: cpu.sys - cpu0.sys,
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
