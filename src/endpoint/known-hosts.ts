/**
 * Pinned daemon certificates, as OpenSSH pins host keys: one line per peer,
 * `host:port SHA256:fingerprint`. The first connection to a peer asks on a terminal, or
 * needs --accept-new-host-key in batch mode; a fingerprint that changed is refused loudly.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { SessionError, describeIoError, errnoCode } from '../errors.js';

/** SHA256:base64 of a certificate's DER, without padding (as OpenSSH shows host keys). */
export function fingerprintOfDer(der: Buffer): string {
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}

export function defaultKnownHostsFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ASYNC_KNOWN_HOSTS) return env.ASYNC_KNOWN_HOSTS;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'open-async', 'known_hosts');
}

export interface HostKeyPolicy {
  readonly file: string;
  readonly acceptNew: boolean;
  /** Asks the user on a terminal; undefined in batch mode. */
  readonly ask?: (question: string) => Promise<boolean>;
}

function lookup(file: string, peer: string): { fingerprint: string; line: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw new SessionError('ERR_HOST_KEY', `Cannot read ${file}: ${describeIoError(e)}.`);
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const [name, fp] = lines[i]!.trim().split(/\s+/);
    if (name === peer && fp) return { fingerprint: fp, line: i + 1 };
  }
  return undefined;
}

export async function checkHostKey(
  peer: string,
  fingerprint: string,
  policy: HostKeyPolicy,
): Promise<void> {
  const known = lookup(policy.file, peer);
  if (known) {
    if (known.fingerprint === fingerprint) return;
    throw new SessionError(
      'ERR_HOST_KEY',
      [
        '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
        '@    WARNING: THE PEER DAEMON CERTIFICATE HAS CHANGED!    @',
        '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
        `${peer} presented ${fingerprint},`,
        `but ${policy.file} (line ${known.line}) pins ${known.fingerprint}.`,
        'Someone may be intercepting the connection, or the server got a new certificate.',
        'Nothing was sent: no password, token or key signature left this machine.',
      ].join('\n'),
      `If the server's administrator confirms the new fingerprint (async-server prints it at start), remove line ${known.line} of ${policy.file} and run again.`,
    );
  }
  let accept = policy.acceptNew;
  if (!accept && policy.ask) {
    accept = await policy.ask(
      `The authenticity of peer ${peer} can't be established.\nIts certificate fingerprint is ${fingerprint}.\nTrust it and continue (yes/no)? `,
    );
  }
  if (!accept) {
    throw new SessionError(
      'ERR_HOST_KEY',
      `Peer ${peer} is not in ${policy.file}; its certificate fingerprint is ${fingerprint}.`,
      'Compare it with the fingerprint async-server printed at start; if they match, run again with --accept-new-host-key (or answer yes on a terminal).',
    );
  }
  try {
    mkdirSync(dirname(policy.file), { recursive: true, mode: 0o700 });
    appendFileSync(policy.file, `${peer} ${fingerprint}\n`, { mode: 0o600 });
  } catch (e) {
    throw new SessionError(
      'ERR_HOST_KEY',
      `Cannot record the peer's fingerprint in ${policy.file}: ${describeIoError(e)}.`,
    );
  }
}
