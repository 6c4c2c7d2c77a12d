/**
 * A real async-server for the benchmarks: 127.0.0.1, port 0 (read from its first stdout
 * line), one user with a password login, its docroot and configuration under `dir`.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER_BIN = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'bin',
  'async-server.js',
);

export interface BenchDaemon {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** `<dir>/docroot`: the user's tree. */
  readonly docroot: string;
  stop(): Promise<void>;
}

export interface BenchDaemonOptions {
  readonly user: string;
  readonly password: string;
  /** h2c without TLS (loopback only). */
  readonly plaintext?: boolean;
}

export async function startBenchDaemon(dir: string, o: BenchDaemonOptions): Promise<BenchDaemon> {
  const docroot = join(dir, 'docroot');
  mkdirSync(docroot, { recursive: true });
  const hashed = spawnSync(process.execPath, [SERVER_BIN, 'hash-password'], {
    input: o.password,
    encoding: 'utf8',
  });
  const hash = /password = "(.*)"/.exec(hashed.stdout)?.[1];
  if (!hash) throw new Error(`async-server hash-password failed: ${hashed.stderr}`);
  const config = join(dir, 'server.toml');
  writeFileSync(
    config,
    `[server]\nport = 0\n${o.plaintext ? 'plaintext = true\n' : ''}\n[users.${o.user}]\ndocroot = "${docroot}"\npassword = "${hash}"\n`,
  );
  // Its stderr is its per-session log: not part of any table.
  const proc = spawn(process.execPath, [SERVER_BIN, '--config', config], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  const port = await new Promise<number>((ok, fail) => {
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /listening on [^\n]*:(\d+)\n/.exec(out);
      if (m) ok(Number(m[1]));
    });
    proc.once('exit', (code) => fail(new Error(`async-server exited ${code}`)));
  });
  proc.stdout!.resume();
  return {
    proc,
    pid: proc.pid!,
    port,
    docroot,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
