/**
 * The `async-server` command: the peer daemon that `async -r user@host:dir` talks to.
 *
 *   async-server --config server.toml     serve (prints "listening on ADDR:PORT" first)
 *   async-server --config server.toml --check    validate the configuration and exit
 *   async-server hash-password            a password hash for the configuration (stdin)
 *   async-server new-token                a new token and its configuration entry
 */
import { Command, CommanderError } from 'commander';
import { UsageError } from '../errors.js';
import { hashPassword, newToken } from '../server/auth.js';
import { loadConfig } from '../server/config.js';
import { Daemon } from '../server/daemon.js';
import type { Io } from './async.js';
import { reportError } from './async.js';
import { EXIT } from './exit-codes.js';
import { VERSION } from './options.js';
import { askPassword, haveTty } from './prompt.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function serverMain(
  argv: readonly string[],
  io: Io,
  signal?: AbortSignal,
): Promise<number> {
  try {
    const cmd = new Command('async-server')
      .description('The open-async peer daemon (HTTP/2 over TLS).')
      .version(`async-server ${VERSION}`, '-A, --version', 'print the version and exit')
      .option('-c, --config <file>', 'configuration file (TOML; see the README)')
      .option('--check', 'validate the configuration and exit')
      .argument('[command]', 'hash-password | new-token')
      .exitOverride()
      .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: () => undefined });
    try {
      cmd.parse(argv as string[], { from: 'user' });
    } catch (e) {
      if (e instanceof CommanderError) {
        if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
        throw new UsageError(e.message.replace(/^error: /, ''), "Run 'async-server --help'.");
      }
      throw e;
    }
    const opts = cmd.opts<{ config?: string; check?: boolean }>();
    const sub = cmd.args[0];
    if (sub === 'hash-password') {
      const pw = haveTty()
        ? await askPassword('Password to hash: ')
        : (await readStdin()).replace(/\r?\n$/, '');
      if (pw === '') throw new UsageError('The password is empty.', 'Give it on stdin.');
      io.stdout.write(`password = "${await hashPassword(pw)}"\n`);
      return EXIT.OK;
    }
    if (sub === 'new-token') {
      const t = newToken();
      io.stdout.write(
        `token: ${t.token}\nconfiguration: tokens = [{ sha256 = "${t.sha256}" }]\n` +
          'Give the token to the client (-W or ASPERA_SCP_TOKEN); it is not stored anywhere.\n',
      );
      return EXIT.OK;
    }
    if (sub !== undefined)
      throw new UsageError(`Unknown command '${sub}'.`, 'Commands: hash-password, new-token.');
    if (opts.config === undefined)
      throw new UsageError('Missing the configuration file: pass --config <file>.');
    const cfg = loadConfig(opts.config);
    if (opts.check) {
      io.stdout.write(`${opts.config}: ok (${cfg.users.size} users)\n`);
      return EXIT.OK;
    }
    const daemon = await Daemon.start(cfg, { log: (l) => io.stderr.write(`${l}\n`) });
    const a = daemon.address();
    // The first line is what scripts and tests read to find a port chosen with port = 0.
    io.stdout.write(`listening on ${a.host}:${a.port}\n`);
    if (cfg.plaintext) io.stdout.write('plaintext h2c (no TLS): for tests on this machine only\n');
    else {
      if (daemon.certCreated) io.stdout.write(`created a self-signed certificate: ${cfg.cert}\n`);
      io.stdout.write(`fingerprint ${daemon.fingerprint}\n`);
    }
    await new Promise<void>((resolve) => {
      if (signal?.aborted) resolve();
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    await daemon.close();
    return EXIT.OK;
  } catch (e) {
    return reportError(e, io, 'async-server');
  }
}
