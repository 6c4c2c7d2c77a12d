/**
 * Test helpers for the peer daemon: a real async-server process on 127.0.0.1 port 0 (the
 * port is read from its first stdout line), its docroot and configuration in a temp dir,
 * and the real async CLI run against it with a private known-hosts file.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { RemoteEndpoint } from '../../src/endpoint/remote.js';
import { REPO, asyncCli, killAtEnd, tmp } from '../helpers.js';
import type { CliResult } from '../helpers.js';

export const SERVER_BIN = join(REPO, 'bin', 'async-server.js');
export const ASYNC_BIN_PATH = join(REPO, 'bin', 'async.js');

const running = new Set<ChildProcess>();
after(() => {
  for (const p of running) p.kill('SIGKILL');
});

/** A password hash made once per test file (scrypt is slow on purpose). */
let cachedHash: { password: string; hash: string } | undefined;
export function passwordHash(password = 'secret'): string {
  if (cachedHash?.password === password) return cachedHash.hash;
  const r = spawnSync(process.execPath, [SERVER_BIN, 'hash-password'], {
    input: password,
    encoding: 'utf8',
  });
  const m = /password = "(.*)"/.exec(r.stdout);
  if (!m) throw new Error(`hash-password failed: ${r.stderr}`);
  cachedHash = { password, hash: m[1]! };
  return m[1]!;
}

export interface Daemon {
  readonly port: number;
  readonly fingerprint: string;
  readonly proc: ChildProcess;
  readonly root: string;
  readonly configFile: string;
  /** Everything the daemon printed on stderr so far (its log). */
  log(): string;
  stop(): Promise<void>;
}

export interface DaemonSetup {
  /** Extra TOML inside [server]. */
  readonly server?: string;
  /** Whole [users.NAME] tables; `alice` with docroot <root>/alice and password 'secret' if absent. */
  readonly users?: string;
  readonly plaintext?: boolean;
  /** The directory holding config, certificate and docroots (a new temp dir if absent). */
  readonly base?: string;
  readonly port?: number;
}

export async function startDaemon(setup: DaemonSetup = {}): Promise<Daemon> {
  const root = setup.base ?? tmp('async-daemon-');
  mkdirSync(join(root, 'alice'), { recursive: true });
  const users =
    setup.users ??
    `[users.alice]\ndocroot = "${join(root, 'alice')}"\npassword = "${passwordHash()}"\n`;
  const configFile = join(root, 'server.toml');
  writeFileSync(
    configFile,
    `[server]\nport = ${setup.port ?? 0}\nauth_backoff_ms = 20\n${setup.plaintext ? 'plaintext = true\n' : ''}${setup.server ?? ''}\n${users}`,
  );
  const proc = spawn(process.execPath, [SERVER_BIN, '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A client gone while the daemon was blocked writing to it (a stalled or killed peer) is
    // only noticed by unanswered pings: every 2 s here (dropped after 8 s), not 15 s (60 s),
    // so the tests that wait for "client went away" do not depend on where the write stood.
    env: { ASYNC_SERVER_PING_SECONDS: '2', ...process.env },
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  let out = '';
  proc.stdout!.setEncoding('utf8');
  const ready = await new Promise<{ port: number; fingerprint: string }>((resolve, reject) => {
    const onData = (s: string): void => {
      out += s;
      const m = /listening on [^\n]*:(\d+)\n/.exec(out);
      const fp = /fingerprint (SHA256:\S+)\n/.exec(out);
      if (m && (fp || setup.plaintext)) {
        proc.stdout!.off('data', onData);
        resolve({ port: Number(m[1]), fingerprint: fp?.[1] ?? '' });
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`async-server exited ${code}: ${err}`)));
  });
  return {
    ...ready,
    proc,
    root,
    configFile,
    log: () => err,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs the real async CLI against the daemon, trusting its certificate on first use. */
export function asyncTo(
  d: Daemon,
  remote: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = { ASPERA_SCP_PASS: 'secret' },
): CliResult {
  return asyncCli([...peerArgs(d, remote), ...args], { env: { ASPERA_SCP_PASS: '', ...env } });
}

export function peerArgs(d: Daemon, remote: string): string[] {
  return [
    '-r',
    remote,
    '-P',
    String(d.port),
    '--known-hosts',
    join(d.root, 'known_hosts'),
    '--accept-new-host-key',
  ];
}

/** The same, as a child process (for kill tests and concurrency). */
export function spawnAsyncTo(
  d: Daemon,
  remote: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = { ASPERA_SCP_PASS: 'secret' },
): ChildProcess {
  return killAtEnd(
    spawn(process.execPath, [ASYNC_BIN_PATH, ...peerArgs(d, remote), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ASPERA_SCP_PASS: '', ...env },
    }),
  );
}

export async function collect(p: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  p.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  p.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const [code] = (await once(p, 'exit')) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

/** Waits for an observable condition (never a fixed sleep), failing after `ms`. */
export async function waitFor(cond: () => boolean, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A RemoteEndpoint logged in as alice (password), trusting the daemon on first use. */
export function connectAsAlice(d: Daemon): Promise<RemoteEndpoint> {
  return RemoteEndpoint.connect(
    {
      host: '127.0.0.1',
      port: d.port,
      user: 'alice',
      plaintext: false,
      hostKeys: { file: join(d.root, 'known_hosts'), acceptNew: true },
    },
    { password: 'secret', keys: [] },
  );
}
