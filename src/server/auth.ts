/**
 * Server-side authentication: passwords (stored as salted scrypt hashes), Basic tokens
 * (stored as sha256 with an optional expiry) and SSH keys (a signature over the server's
 * nonce, checked against the user's authorized_keys). A failed login says nothing about
 * which part was wrong, costs about the same time whatever was wrong, and is slowed down
 * per source address (LoginThrottle).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerConfig, UserConfig } from './config.js';
import { loginMessage, publicKeyFromBlob } from '../endpoint/ssh-key.js';
import { verify } from 'node:crypto';

/** What a client sends to log in; any combination, tried in this order: token, keys, password. */
export interface LoginRequest {
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly keys?: readonly { readonly blob: string; readonly signature: string }[];
}

// scrypt cost: N=2^15, r=8 takes ~100 ms and 32 MiB here: slow for a guesser, fine per login.
const SCRYPT = { N: 1 << 15, r: 8, p: 1 };
const KEYLEN = 32;

function scryptAsync(
  password: string,
  salt: Buffer,
  p: { N: number; r: number; p: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEYLEN, { ...p, maxmem: 256 * p.N * p.r }, (e, key) =>
      e ? reject(e) : resolve(key),
    ),
  );
}

/** `scrypt$N$r$p$salt$hash` (base64): what `async-server hash-password` prints. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

// Checked against when the user is unknown, so an unknown user costs as much as a wrong password.
let dummyHash: Promise<string> | undefined;

export async function checkPassword(
  password: string,
  stored: string | undefined,
): Promise<boolean> {
  const ref = stored ?? (await (dummyHash ??= hashPassword('not a password')));
  const parts = ref.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const want = Buffer.from(parts[5]!, 'base64');
  if (!(N > 1 && r > 0 && p > 0) || want.length !== KEYLEN) return false;
  const got = await scryptAsync(password, salt, { N, r, p });
  return timingSafeEqual(got, want) && stored !== undefined;
}

/** A new random token and the line to put in the configuration file. */
export function newToken(): { token: string; sha256: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, sha256: tokenHash(token) };
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function findByToken(cfg: ServerConfig, token: string, now: number): UserConfig | undefined {
  const h = Buffer.from(tokenHash(token), 'hex');
  let found: UserConfig | undefined;
  for (const u of cfg.users.values()) {
    for (const t of u.tokens) {
      // Every entry is compared, in constant time, so the answer's timing tells nothing.
      const match = timingSafeEqual(h, Buffer.from(t.sha256, 'hex'));
      if (match && (t.expires === undefined || t.expires > now)) found = u;
    }
  }
  return found;
}

/** The key blobs (base64) of an authorized_keys file; lines with options are not honoured. */
export function authorizedBlobs(file: string | undefined): Set<string> {
  const out = new Set<string>();
  if (file === undefined) return out;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    // A line with options (from=, command=, ...) restricts its key in ways this daemon does
    // not implement; skipping it is safer than granting the key without the restriction.
    const m = /^(ssh-ed25519|ssh-rsa)\s+([A-Za-z0-9+/]+=*)(\s|$)/.exec(line);
    if (m) out.add(m[2]!);
  }
  return out;
}

function checkKeys(
  user: UserConfig,
  keys: LoginRequest['keys'],
  nonce: string,
  binding: string,
): boolean {
  if (!keys || keys.length === 0) return false;
  const allowed = authorizedBlobs(user.authorizedKeys);
  const msg = loginMessage(nonce, user.name, binding);
  for (const k of keys.slice(0, 16)) {
    if (typeof k?.blob !== 'string' || typeof k.signature !== 'string') continue;
    if (!allowed.has(k.blob)) continue;
    const pub = publicKeyFromBlob(k.blob);
    if (!pub) continue;
    try {
      if (verify(pub.algorithm, msg, pub.key, Buffer.from(k.signature, 'base64'))) return true;
    } catch {
      // A malformed signature is a failed login like any other.
    }
  }
  return false;
}

/** The user the request proves to be, or undefined. Never says why not. */
export async function authenticate(
  cfg: ServerConfig,
  req: LoginRequest,
  nonce: string,
  binding: string,
): Promise<UserConfig | undefined> {
  const named = typeof req.user === 'string' ? cfg.users.get(req.user) : undefined;
  if (typeof req.token === 'string' && req.token !== '') {
    const u = findByToken(cfg, req.token, Date.now());
    if (u && (req.user === undefined || req.user === u.name)) return u;
  }
  if (typeof req.token === 'string') {
    // Aspera clients often pass a Basic authorization value, `Basic base64(user:password)`:
    // accepted as that user's password.
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/.exec(req.token.trim());
    const pair = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
    const colon = pair.indexOf(':');
    if (colon > 0) {
      const u = cfg.users.get(pair.slice(0, colon));
      const ok = await checkPassword(pair.slice(colon + 1), u?.password);
      if (ok && u && (req.user === undefined || req.user === u.name)) return u;
    }
  }
  if (named && checkKeys(named, req.keys, nonce, binding)) return named;
  if (typeof req.password === 'string') {
    const ok = await checkPassword(req.password, named?.password);
    if (ok && named) return named;
  }
  return undefined;
}

/**
 * Slows failed logins down per source: after n failures a source waits base*2^(n-1) ms
 * (at most 8 s) before its next attempt is even looked at, and every failure is answered
 * only after that delay. A source's record is forgotten 15 minutes after its last failure.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, { n: number; last: number }>();

  constructor(private readonly baseMs: number) {}

  delayFor(source: string, now = Date.now()): number {
    const f = this.failures.get(source);
    if (!f) return 0;
    if (now - f.last > 15 * 60_000) {
      this.failures.delete(source);
      return 0;
    }
    return Math.min(8000, this.baseMs * 2 ** (f.n - 1));
  }

  failed(source: string, now = Date.now()): void {
    const f = this.failures.get(source);
    this.failures.set(source, { n: (f?.n ?? 0) + 1, last: now });
    if (this.failures.size > 10_000) {
      // Bounded memory under a flood: drop the oldest records.
      for (const k of [...this.failures.keys()].slice(0, 1000)) this.failures.delete(k);
    }
  }

  succeeded(source: string): void {
    this.failures.delete(source);
  }
}
