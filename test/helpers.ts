/**
 * Test helpers: temporary directories that are always removed, the real CLI run as a child
 * process, and a tree description (content, mode, mtime, link targets) to compare trees.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

export const REPO = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
// test/native-free runs these same CLI tests against the native-free bundle in that directory.
const BUNDLE = process.env['ASYNC_TEST_BUNDLE_DIR'];
/** True when the CLI under test is the native-free bundle (no native modules). */
export const UNDER_BUNDLE = BUNDLE !== undefined;
export const ASYNC_BIN = BUNDLE ? join(BUNDLE, 'async.mjs') : join(REPO, 'bin', 'async.js');
export const ASYNCADMIN_BIN = BUNDLE
  ? join(BUNDLE, 'asyncadmin.mjs')
  : join(REPO, 'bin', 'asyncadmin.js');

const made: string[] = [];
/** CLI processes a test started and left running (it failed): they would keep the file alive. */
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** Kills `proc` when the test file ends if it still runs then (see spawnAsync). */
export function killAtEnd(proc: ChildProcess): ChildProcess {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

/** A fresh temporary directory, removed when the test file ends. */
export function tmp(prefix = 'async-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  cwd?: string;
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as another user (only when the tests run as root). */
  as?: { uid: number; gid: number };
}

export function runCli(bin: string, args: readonly string[], opts: CliOptions = {}): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: opts.cwd,
    ...(opts.as ? { uid: opts.as.uid, gid: opts.as.gid } : {}),
    input: opts.input ?? '',
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
  });
  // A process killed by a signal has no status: say which signal, or a crash reads as "-1".
  const stderr = r.signal ? `${r.stderr}\n[killed by ${r.signal}]` : r.stderr;
  return { code: r.status ?? -1, stdout: r.stdout, stderr };
}

export function asyncCli(args: readonly string[], opts: CliOptions = {}): CliResult {
  return runCli(ASYNC_BIN, args, opts);
}

export function asyncadminCli(args: readonly string[], opts: { cwd?: string } = {}): CliResult {
  return runCli(ASYNCADMIN_BIN, args, opts);
}

export function spawnAsync(args: readonly string[], cwd?: string): ChildProcess {
  return killAtEnd(
    spawn(process.execPath, [ASYNC_BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
}

/** A spawned CLI whose output is collected as it comes (continuous-mode tests). */
export interface Running {
  readonly proc: ChildProcess;
  readonly out: () => string;
  readonly err: () => string;
}

export function collectOutput(proc: ChildProcess): Running {
  let out = '';
  let err = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  return { proc, out: () => out, err: () => err };
}

/**
 * Polls `cond` until it holds (never a fixed sleep); fails with `what` and the session's
 * output at the deadline, or as soon as the session exits.
 */
export async function waitForSession(
  r: Running,
  what: string,
  cond: () => boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\nstdout:\n${r.out()}\nstderr:\n${r.err()}`);
    if (r.proc.exitCode !== null)
      throw new Error(`session exited (${r.proc.exitCode}) before ${what}\n${r.out()}\n${r.err()}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

export interface TreeItem {
  kind: 'file' | 'dir' | 'symlink';
  mode: number;
  content?: string;
  target?: string;
  mtimeMs?: number;
  ino?: number;
}

/** Describes a tree (without .private-asp): kind, mode, content, link target, optionally mtime. */
export function describeTree(
  root: string,
  opts: { mtimes?: boolean; exactMtimes?: boolean; inodes?: boolean } = {},
): Record<string, TreeItem> {
  const out: Record<string, TreeItem> = {};
  const walk = (rel: string): void => {
    const abs = rel === '' ? root : join(root, rel);
    for (const name of readdirSync(abs).sort()) {
      if (name === '.private-asp') continue;
      const p = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, p));
      const item: TreeItem = {
        kind: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file',
        mode: st.isSymbolicLink() ? 0 : st.mode & 0o7777,
      };
      if (st.isFile()) item.content = readFileSync(join(root, p)).toString('base64');
      if (st.isSymbolicLink()) item.target = readlinkSync(join(root, p));
      if (opts.mtimes && !st.isDirectory())
        item.mtimeMs = opts.exactMtimes ? st.mtimeMs : Math.round(st.mtimeMs);
      if (opts.inodes) item.ino = st.ino;
      out[p] = item;
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

/**
 * Asserts that a synced tree is its source (describeTree with file mtimes), each mtime the
 * same to the microsecond. Node sets times as seconds in a double (about 0.24 us apart at
 * today's dates), so a copy's mtime can sit a fraction of a microsecond from the source's:
 * both rounded to the millisecond then differ when the source's falls on a half
 * millisecond (this host's coarse clock drifts across it now and then).
 */
export function assertSameTree(actual: string, expected: string): void {
  const got = describeTree(actual, { mtimes: true, exactMtimes: true });
  const want = describeTree(expected, { mtimes: true, exactMtimes: true });
  for (const [p, item] of Object.entries(got)) {
    const m = want[p]?.mtimeMs;
    if (item.mtimeMs !== undefined && m !== undefined && Math.abs(item.mtimeMs - m) < 0.001)
      item.mtimeMs = m;
  }
  assert.deepEqual(got, want);
}

/** Exact stats of every path, to prove a run touched nothing. */
export function statTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : join(root, rel)).sort()) {
      if (name === '.private-asp') continue;
      const p = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, p));
      out[p] = `${st.ino}:${st.mode}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

/**
 * A fresh temporary root with a `data` directory (holding `files`) and an empty `mirror`
 * directory: the two ends of a local-peer session.
 */
export function syncPair(files: Record<string, string | Buffer> = {}): {
  root: string;
  data: string;
  mirror: string;
} {
  const root = tmp();
  const data = join(root, 'data');
  const mirror = join(root, 'mirror');
  mkdirSync(data);
  mkdirSync(mirror);
  writeTree(data, files);
  return { root, data, mirror };
}

/** Creates files from a map of relative path -> content, making parents. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [p, content] of Object.entries(files)) {
    const abs = join(root, p);
    mkdirSync(join(abs, '..'), { recursive: true });
    writeFileSync(abs, content);
  }
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
