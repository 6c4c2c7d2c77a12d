/**
 * The daemon's configuration file (TOML, parsed by smol-toml) and its validation. Every
 * mistake names the key that is wrong (`users.alice.docrot: unknown key; did you mean
 * docroot?`), so a typo never silently turns a setting off.
 *
 *   [server]
 *   listen = "127.0.0.1"          # address; loopback by default for safety
 *   port = 33001                  # 0 picks a free port (tests)
 *   cert = "server-cert.pem"      # created with its key on first start when missing
 *   key = "server-key.pem"
 *   plaintext = false             # h2c without TLS: loopback addresses only, for tests
 *   auth_backoff_ms = 250         # first delay after a failed login from one source
 *
 *   [users.alice]
 *   docroot = "/srv/sync/alice"   # required; the user cannot reach outside it
 *   sync = true                   # false: the user may log in but not sync
 *   password = "scrypt$..."       # from `async-server hash-password`
 *   tokens = [{ sha256 = "...", expires = 2027-01-01T00:00:00Z }]  # `async-server new-token`
 *   authorized_keys = "/home/alice/.ssh/authorized_keys"
 *   async_db_dir = "/var/lib/async/alice"   # overrides the client's -B
 *   async_log_dir = "/var/log/async/alice"  # overrides the client's -R
 *   file_create_mode = "0644"     # mode of every file the sync writes here
 *   dir_create_mode = "0755"
 *   allow_preserve_owner = false  # let clients use -u/-j here
 *   filters = ["- *.tmp", "- /scratch/"]  # rules put before the client's (see README)
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { TomlDate, TomlError, parse } from 'smol-toml';
import type { FilterRule } from '../core/filter.js';
import { patternProblem } from '../core/filter.js';
import { AsyncError, describeIoError } from '../errors.js';

export interface TokenSpec {
  /** sha256 of the token, hex. Tokens are long random strings, so a fast hash suffices. */
  readonly sha256: string;
  /** Epoch ms after which the token is refused; undefined for never. */
  readonly expires: number | undefined;
}

export interface UserConfig {
  readonly name: string;
  /** Real path of the docroot. */
  readonly docroot: string;
  readonly sync: boolean;
  readonly password: string | undefined;
  readonly tokens: readonly TokenSpec[];
  readonly authorizedKeys: string | undefined;
  readonly asyncDbDir: string | undefined;
  readonly asyncLogDir: string | undefined;
  readonly fileCreateMode: number | undefined;
  readonly dirCreateMode: number | undefined;
  readonly allowPreserveOwner: boolean;
  /**
   * Filter rules the server puts before the client's (first match decides, core/filter.ts).
   * The server returns them with its prepare reply so the client applies the same list, and
   * enforces them itself whatever the client asks (confined-endpoint.ts).
   */
  readonly filters: readonly FilterRule[];
}

export interface ServerConfig {
  readonly file: string;
  readonly listen: string;
  readonly port: number;
  readonly cert: string;
  readonly key: string;
  readonly plaintext: boolean;
  readonly authBackoffMs: number;
  readonly users: ReadonlyMap<string, UserConfig>;
}

export class ConfigError extends AsyncError {
  constructor(file: string, key: string, problem: string, hint?: string) {
    super(
      'ERR_CONFIG',
      `${file}: ${key === '' ? '' : `${key}: `}${problem}`,
      hint ?? 'Fix the configuration file; the README section "The peer daemon" lists every key.',
    );
    this.name = 'ConfigError';
  }
}

const SERVER_KEYS = ['listen', 'port', 'cert', 'key', 'plaintext', 'auth_backoff_ms'] as const;
const USER_KEYS = [
  'docroot',
  'sync',
  'password',
  'tokens',
  'authorized_keys',
  'async_db_dir',
  'async_log_dir',
  'file_create_mode',
  'dir_create_mode',
  'allow_preserve_owner',
  'filters',
] as const;
const USER_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** The known key closest to a typo (edit distance at most 2), for the error message. */
function suggest(word: string, known: readonly string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i]![j] = Math.min(
          d[i - 1]![j]! + 1,
          d[i]![j - 1]! + 1,
          d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
        );
    return d[a.length]![b.length]!;
  };
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const dd = dist(word, k);
    if (dd < bestD) {
      best = k;
      bestD = dd;
    }
  }
  return best;
}

function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr === '::1' || /^127\.\d+\.\d+\.\d+$/.test(addr);
}

export function loadConfig(file: string): ServerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `cannot read the configuration file: ${describeIoError(e)}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (e) {
    const msg = e instanceof TomlError ? e.message.split('\n')[0]! : String(e);
    const where = e instanceof TomlError ? ` (line ${e.line}, column ${e.column})` : '';
    throw new ConfigError(file, '', `not valid TOML${where}: ${msg}`);
  }
  return validateConfig(doc, file);
}

type Table = Record<string, unknown>;

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

export function validateConfig(doc: Table, file: string): ServerConfig {
  const base = dirname(resolve(file));
  const fail = (key: string, problem: string, hint?: string): never => {
    throw new ConfigError(file, key, problem, hint);
  };
  const unknownKeys = (t: Table, prefix: string, known: readonly string[]): void => {
    for (const k of Object.keys(t)) {
      if (known.includes(k)) continue;
      const s = suggest(k, known);
      fail(`${prefix}${k}`, `unknown key${s ? `; did you mean ${s}?` : ''}`);
    }
  };
  unknownKeys(doc, '', ['server', 'users']);
  const server = doc.server ?? {};
  if (!isTable(server)) fail('server', 'must be a table ([server])');
  const srv = server as Table;
  unknownKeys(srv, 'server.', SERVER_KEYS);

  const str = (t: Table, key: string, full: string): string | undefined => {
    const v = t[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') fail(full, 'must be a non-empty string');
    return v as string;
  };
  const bool = (t: Table, key: string, full: string, dflt: boolean): boolean => {
    const v = t[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') fail(full, 'must be true or false');
    return v as boolean;
  };
  const path = (t: Table, key: string, full: string): string | undefined => {
    const v = str(t, key, full);
    return v === undefined ? undefined : isAbsolute(v) ? v : resolve(base, v);
  };
  const dir = (t: Table, key: string, full: string): string | undefined => {
    const p = path(t, key, full);
    if (p === undefined) return undefined;
    try {
      if (!statSync(p).isDirectory()) fail(full, `${p} is not a directory`);
      return realpathSync(p);
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      return fail(
        full,
        `${p} cannot be used: ${describeIoError(e)}`,
        'Create the directory first.',
      );
    }
  };
  const mode = (t: Table, key: string, full: string): number | undefined => {
    const v = str(t, key, full);
    if (v === undefined) return undefined;
    if (!/^0?[0-7]{3,4}$/.test(v)) fail(full, `'${v}' is not an octal mode such as "0644"`);
    return parseInt(v, 8);
  };

  const listen = str(srv, 'listen', 'server.listen') ?? '127.0.0.1';
  let port = 33001;
  if (srv.port !== undefined) {
    if (!Number.isInteger(srv.port) || (srv.port as number) < 0 || (srv.port as number) > 65535)
      fail('server.port', 'must be a whole number from 0 to 65535');
    port = srv.port as number;
  }
  const plaintext = bool(srv, 'plaintext', 'server.plaintext', false);
  if (plaintext && !isLoopback(listen)) {
    fail(
      'server.plaintext',
      `plaintext (h2c) is allowed on loopback addresses only, not on ${listen}`,
      'It exists for tests on one machine; remove it to serve over TLS.',
    );
  }
  let authBackoffMs = 250;
  if (srv.auth_backoff_ms !== undefined) {
    const v = srv.auth_backoff_ms;
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 60_000)
      fail('server.auth_backoff_ms', 'must be a whole number of milliseconds from 1 to 60000');
    authBackoffMs = v as number;
  }

  const usersT = doc.users ?? {};
  if (!isTable(usersT)) fail('users', 'must be a table of users ([users.NAME])');
  const users = new Map<string, UserConfig>();
  for (const [name, uv] of Object.entries(usersT as Table)) {
    const p = `users.${name}.`;
    if (!USER_NAME_RE.test(name))
      fail(`users.${name}`, 'a user name uses A-Z a-z 0-9 _ . - (at most 64)');
    if (!isTable(uv)) fail(`users.${name}`, 'must be a table');
    const u = uv as Table;
    unknownKeys(u, p, USER_KEYS);
    const docroot = dir(u, 'docroot', `${p}docroot`);
    if (docroot === undefined) fail(`${p}docroot`, 'is required');
    const tokens: TokenSpec[] = [];
    if (u.tokens !== undefined) {
      if (!Array.isArray(u.tokens)) fail(`${p}tokens`, 'must be an array of { sha256, expires }');
      (u.tokens as unknown[]).forEach((t, i) => {
        const k = `${p}tokens[${i}]`;
        if (!isTable(t))
          fail(k, 'must be a table { sha256 = "...", expires = 2027-01-01T00:00:00Z }');
        const tt = t as Table;
        unknownKeys(tt, `${k}.`, ['sha256', 'expires']);
        if (typeof tt.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(tt.sha256))
          fail(`${k}.sha256`, 'must be 64 lowercase hex digits (see async-server new-token)');
        let expires: number | undefined;
        if (tt.expires !== undefined) {
          if (!(tt.expires instanceof TomlDate) || Number.isNaN(tt.expires.getTime()))
            fail(`${k}.expires`, 'must be a TOML date-time such as 2027-01-01T00:00:00Z');
          expires = (tt.expires as TomlDate).getTime();
        }
        tokens.push({ sha256: tt.sha256 as string, expires });
      });
    }
    const password = str(u, 'password', `${p}password`);
    if (password !== undefined && !password.startsWith('scrypt$'))
      fail(
        `${p}password`,
        'must be a hash made by `async-server hash-password`, never the password itself',
      );
    const filters: FilterRule[] = [];
    if (u.filters !== undefined) {
      if (!Array.isArray(u.filters))
        fail(`${p}filters`, 'must be an array of rules such as ["- *.tmp", "+ keep/"]');
      (u.filters as unknown[]).forEach((f, i) => {
        const k = `${p}filters[${i}]`;
        if (typeof f !== 'string') fail(k, 'must be a string such as "- *.tmp"');
        const m = /^([+-])\s+(.*)$/.exec((f as string).trim());
        if (!m || (f as string).includes('\n'))
          fail(
            k,
            `'${f as string}' is not a rule: write "- PATTERN" to exclude or "+ PATTERN" to include`,
            'One rule per string; the README section "Server-side filters" describes them.',
          );
        const bad = patternProblem(m![2]!);
        if (bad !== undefined) fail(k, `'${f as string}': ${bad}`);
        filters.push({ sign: m![1] as '+' | '-', pattern: m![2]! });
      });
    }
    users.set(name, {
      name,
      docroot: docroot!,
      sync: bool(u, 'sync', `${p}sync`, true),
      password,
      tokens,
      authorizedKeys: path(u, 'authorized_keys', `${p}authorized_keys`),
      asyncDbDir: dir(u, 'async_db_dir', `${p}async_db_dir`),
      asyncLogDir: dir(u, 'async_log_dir', `${p}async_log_dir`),
      fileCreateMode: mode(u, 'file_create_mode', `${p}file_create_mode`),
      dirCreateMode: mode(u, 'dir_create_mode', `${p}dir_create_mode`),
      allowPreserveOwner: bool(u, 'allow_preserve_owner', `${p}allow_preserve_owner`, false),
      filters,
    });
  }
  if (users.size === 0) fail('users', 'no user is configured', 'Add a [users.NAME] table.');
  return {
    file,
    listen,
    port,
    cert: path(srv, 'cert', 'server.cert') ?? resolve(base, 'async-server-cert.pem'),
    key: path(srv, 'key', 'server.key') ?? resolve(base, 'async-server-key.pem'),
    plaintext,
    authBackoffMs,
    users,
  };
}

export { isLoopback };
