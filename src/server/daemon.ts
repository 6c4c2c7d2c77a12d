/**
 * The peer daemon: an HTTP/2 server (TLS, or h2c on loopback for tests) whose connections
 * each carry one authenticated client session. A connection logs in once (hello -> nonce,
 * login), then every Endpoint call of the engine arrives as one request (see
 * endpoint/wire.ts) and is served by a ConfinedEndpoint around a LocalEndpoint. When a
 * connection goes away mid-run, the session is finished as failed once its calls in flight
 * have settled: only placed files were recorded, the lock is released, the cache removed.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { Http2Session, Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { AsyncError, describeIoError, errnoCode } from '../errors.js';
import { LocalEndpoint } from '../endpoint/local.js';
import type { Endpoint, ScanReply } from '../endpoint/endpoint.js';
import {
  FRAME_TYPE,
  JSON_TYPE,
  LINES_TYPE,
  MAX_JSON,
  PROTOCOL,
  SESSION_WINDOW,
  STREAM_WINDOW,
  WATCH_HEARTBEAT_MS,
  WATCH_TYPE,
  encodeFrame,
  encodeLines,
  encodeWatchMessage,
  errorToWire,
  readBody,
  readFrame,
} from '../endpoint/wire.js';
import { WorkPool } from '../hash/pool.js';
import type { LoginRequest } from './auth.js';
import { LoginThrottle, authenticate } from './auth.js';
import type { ServerConfig, UserConfig } from './config.js';
import { ConfinedEndpoint } from './confined-endpoint.js';
import { loadOrCreateIdentity } from './tls.js';

interface Conn {
  readonly source: string;
  readonly nonce: string;
  user: UserConfig | undefined;
  ep: ConfinedEndpoint | undefined;
  opened: boolean;
  finished: boolean;
  readonly inflight: Set<Promise<unknown>>;
  /** Ends this connection's open watch streams (continuous mode), e.g. on shutdown. */
  readonly watches: Set<() => void>;
}

/** The Endpoint calls a client may make, with how their arguments arrive. */
const JSON_CALLS = new Set([
  'prepare',
  'open',
  'scan',
  'list',
  'hash',
  'resumable',
  'pieceDigests',
  'apply',
  'settle',
  'record',
  'recordProblems',
  'finish',
]);

export interface DaemonEvents {
  log(line: string): void;
}

export class Daemon {
  private readonly conns = new Map<Http2Session, Conn>();
  private readonly throttle: LoginThrottle;
  private constructor(
    private readonly cfg: ServerConfig,
    private readonly server: Http2Server,
    private readonly pool: WorkPool,
    readonly fingerprint: string,
    readonly certCreated: boolean,
    private readonly events: DaemonEvents,
  ) {
    this.throttle = new LoginThrottle(cfg.authBackoffMs);
  }

  static async start(cfg: ServerConfig, events: DaemonEvents): Promise<Daemon> {
    const settings = { initialWindowSize: STREAM_WINDOW };
    let server: Http2Server;
    let fingerprint = '';
    let created = false;
    if (cfg.plaintext) {
      server = http2.createServer({ settings, maxSessionMemory: 512 });
    } else {
      const id = await loadOrCreateIdentity(cfg.cert, cfg.key);
      fingerprint = id.fingerprint;
      created = id.created;
      server = http2.createSecureServer({
        cert: id.cert,
        key: id.key,
        settings,
        maxSessionMemory: 512,
        allowHTTP1: false,
        minVersion: 'TLSv1.2',
      });
    }
    const pool = new WorkPool();
    const d = new Daemon(cfg, server, pool, fingerprint, created, events);
    // The raw socket of each new connection, for watchLiveness (the session only exposes a
    // proxy that may not destroy it). Prepended: it runs just before the HTTP/2 handler that
    // creates the session and emits 'session' for this very socket.
    server.prependListener(cfg.plaintext ? 'connection' : 'secureConnection', (sock: Socket) => {
      d.rawSocket = sock;
    });
    server.on('session', (s) => d.onSession(s));
    server.on('stream', (stream, headers) => d.onStream(stream, headers));
    // A client speaking garbage, or going away mid-handshake, must not stop the others.
    server.on('sessionError', () => undefined);
    server.on('tlsClientError', () => undefined);
    server.on('clientError' as never, () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => {
        void pool.close();
        const code = errnoCode(e);
        reject(
          new AsyncError(
            'ERR_LISTEN',
            `Cannot listen on ${cfg.listen}:${cfg.port}: ${code === 'EADDRINUSE' ? 'the address is already in use (EADDRINUSE)' : describeIoError(e)}.`,
            code === 'EADDRINUSE'
              ? 'Another program (or another async-server) uses that port: stop it, or set server.port to another one.'
              : 'Check server.listen and server.port in the configuration.',
          ),
        );
      });
      server.listen(cfg.port, cfg.listen, () => resolve());
    });
    server.on('error', (e) => events.log(`server error: ${describeIoError(e)}`));
    return d;
  }

  address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      // A watch stream never ends by itself: end it, or the graceful close would wait forever.
      for (const c of this.conns.values()) for (const end of c.watches) end();
      for (const s of this.conns.keys()) s.close();
    });
    await Promise.all([...this.conns.values()].map((c) => this.abandon(c)));
    await this.pool.close();
  }

  /** See Daemon.start: the socket of the connection whose session is being set up. */
  private rawSocket: Socket | undefined;

  private onSession(s: Http2Session): void {
    const sock = s.socket;
    const raw =
      this.rawSocket !== undefined && this.rawSocket.remotePort === sock?.remotePort
        ? this.rawSocket
        : undefined;
    this.rawSocket = undefined;
    const conn: Conn = {
      source: sock?.remoteAddress ?? 'unknown',
      nonce: randomBytes(32).toString('base64url'),
      user: undefined,
      ep: undefined,
      opened: false,
      finished: false,
      inflight: new Set(),
      watches: new Set(),
    };
    this.conns.set(s, conn);
    try {
      s.setLocalWindowSize(SESSION_WINDOW);
    } catch {
      // The session may already be closing (a client that went away at once).
    }
    s.on('error', () => undefined);
    // An idle connection is closed after 15 minutes; a run's calls keep it busy.
    s.setTimeout(15 * 60_000, () => s.close());
    const alive = watchLiveness(s, raw, () =>
      this.log(conn, 'client stopped answering pings; connection dropped'),
    );
    s.once('close', () => {
      clearInterval(alive);
      this.conns.delete(s);
      void this.abandon(conn);
    });
  }

  /** A connection that ended without finish(): end its session as failed, cleanly. */
  private async abandon(conn: Conn): Promise<void> {
    if (!conn.ep || !conn.opened || conn.finished) return;
    conn.finished = true;
    await Promise.allSettled([...conn.inflight]);
    try {
      await conn.ep.finish({ status: 'failed' });
      this.log(conn, `session ${conn.ep.sessionName}: client went away; ended as failed`);
    } catch (e) {
      this.log(conn, `session ${conn.ep.sessionName}: cleanup failed: ${describeIoError(e)}`);
    }
  }

  private log(conn: Conn, msg: string): void {
    const line = `${new Date().toISOString()} ${conn.source} ${conn.user ? `user=${conn.user.name} ` : ''}${msg}`;
    this.events.log(line);
    const dir = conn.ep?.logDir;
    if (dir) {
      try {
        appendFileSync(join(dir, 'async-server.log'), `${line}\n`, { mode: 0o640 });
      } catch {
        // A log directory that cannot be written must not stop a sync.
      }
    }
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const conn = this.conns.get(stream.session!);
    if (!conn) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const p = this.handle(stream, headers, conn).catch((e: unknown) => {
      if (e instanceof AsyncError) this.reply(stream, 400, { error: errorToWire(e) });
      else {
        this.log(conn, `internal error: ${(e as Error)?.stack ?? e}`);
        this.reply(stream, 500, { error: errorToWire(e) });
      }
    });
    conn.inflight.add(p);
    void p.finally(() => conn.inflight.delete(p));
  }

  private reply(stream: ServerHttp2Stream, status: number, body: unknown): void {
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent) stream.respond({ ':status': status, 'content-type': JSON_TYPE });
    stream.end(JSON.stringify(body));
  }

  /** A reply that grows with the tree, as lines (wire.ts), written as the client reads. */
  private async replyLines(
    stream: ServerHttp2Stream,
    head: unknown,
    items: readonly unknown[],
  ): Promise<void> {
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ':status': 200, 'content-type': LINES_TYPE });
    for (const line of encodeLines(head, items)) {
      if (stream.destroyed || stream.closed) return;
      if (!stream.write(line)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off('drain', done);
            stream.off('close', done);
            resolve();
          };
          stream.on('drain', done);
          stream.on('close', done);
        });
      }
    }
    if (!stream.destroyed && !stream.closed) stream.end();
  }

  private async handle(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    conn: Conn,
  ): Promise<void> {
    const path = String(headers[':path'] ?? '');
    const method = String(headers[':method'] ?? '');
    if (path === '/v1/hello' && method === 'GET') {
      this.reply(stream, 200, {
        ok: { protocol: PROTOCOL, nonce: conn.nonce, binding: this.fingerprint },
      });
      return;
    }
    if (path === '/v1/login' && method === 'POST') return this.login(stream, conn);
    const m = /^\/v1\/ep\/([A-Za-z]+)$/.exec(path);
    if (!m || method !== 'POST') {
      this.reply(stream, 404, { error: { code: 'ERR_PEER', message: `unknown request ${path}` } });
      return;
    }
    if (!conn.user) {
      this.reply(stream, 401, {
        error: { code: 'ERR_AUTH', message: 'Not logged in on this connection.' },
      });
      return;
    }
    const name = m[1]!;
    if (name === 'write') {
      const ep = this.endpoint(conn);
      const batch = await readFrame(stream);
      const res = await ep.write(batch);
      this.reply(stream, 200, { ok: res });
      return;
    }
    if (name === 'watch') return this.watch(stream, conn);
    if (name === 'read') {
      const args = await this.jsonBody(stream);
      const batch = await this.endpoint(conn).read(args[0] as never);
      const [lead, data] = encodeFrame(batch);
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': FRAME_TYPE });
      stream.write(lead);
      stream.end(data);
      return;
    }
    if (!JSON_CALLS.has(name)) {
      this.reply(stream, 404, { error: { code: 'ERR_PEER', message: `unknown call ${name}` } });
      return;
    }
    const args = await this.jsonBody(stream);
    if (name === 'prepare') {
      if (conn.ep) throw new AsyncError('ERR_PEER', 'One session per connection.');
      conn.ep = new ConfinedEndpoint(new LocalEndpoint(this.pool, 'peer'), conn.user);
      const res = await conn.ep.prepare(args[0] as never);
      this.reply(stream, 200, { ok: res });
      return;
    }
    const ep = this.endpoint(conn);
    if (name === 'finish') {
      if (conn.finished) {
        this.reply(stream, 200, { ok: null });
        return;
      }
      conn.finished = true;
      for (const end of [...conn.watches]) end();
      await ep.finish(args[0] as never);
      this.log(
        conn,
        `session ${ep.sessionName}: finished (${(args[0] as { status?: string })?.status})`,
      );
      this.reply(stream, 200, { ok: null });
      return;
    }
    if (conn.finished) throw new AsyncError('ERR_PEER', 'The session has finished.');
    const fn = (ep as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]!;
    const res = await fn.apply(ep, args);
    if (name === 'scan') {
      const { changes, ...head } = res as ScanReply;
      return this.replyLines(stream, head, changes);
    }
    if (name === 'list') return this.replyLines(stream, null, res as unknown[]);
    if (name === 'open') {
      conn.opened = true;
      this.log(conn, `session ${ep.sessionName}: started`);
    }
    this.reply(stream, 200, { ok: res ?? null });
  }

  /**
   * Continuous mode: runs the session's watch and streams its hints (endpoint/wire.ts,
   * "watch") until the client closes the stream, the connection goes away, the session
   * finishes or the daemon stops. The `ready` line goes out once the watch is in place;
   * hints reported while it was being set up follow it.
   */
  private async watch(stream: ServerHttp2Stream, conn: Conn): Promise<void> {
    const ep = this.endpoint(conn);
    if (!conn.opened || conn.finished)
      throw new AsyncError('ERR_PEER', 'The client asked to watch a session that is not open.');
    await readBody(stream, 1024);
    let early: string[] | undefined = [];
    const send = (line: string): void => {
      if (early) early.push(line);
      else if (!stream.destroyed && !stream.closed) stream.write(line);
    };
    const handle = await ep.watch((hints) => send(encodeWatchMessage({ hints })));
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    const heartbeat = setInterval(
      () => send(encodeWatchMessage({ ping: true })),
      WATCH_HEARTBEAT_MS,
    );
    const end = (): void => {
      if (!conn.watches.delete(end)) return;
      clearInterval(heartbeat);
      void handle.close().finally(finished);
      if (!stream.destroyed && !stream.closed) stream.end();
    };
    conn.watches.add(end);
    stream.once('close', end);
    if (stream.destroyed || stream.closed) {
      end();
      await done;
      return;
    }
    stream.respond({ ':status': 200, 'content-type': WATCH_TYPE });
    stream.write(encodeWatchMessage({ ready: true }));
    const queued = early;
    early = undefined;
    for (const line of queued) stream.write(line);
    this.log(conn, `session ${ep.sessionName}: watching for the client`);
    await done;
  }

  private endpoint(conn: Conn): Endpoint & ConfinedEndpoint {
    if (!conn.ep) throw new AsyncError('ERR_PEER', 'The client called the peer before prepare.');
    return conn.ep;
  }

  private async jsonBody(stream: ServerHttp2Stream): Promise<unknown[]> {
    const body = await readBody(stream, MAX_JSON);
    let v: unknown;
    try {
      v = body.length === 0 ? [] : JSON.parse(body.toString('utf8'));
    } catch {
      throw new AsyncError('ERR_PEER', 'The request body is not JSON.');
    }
    if (!Array.isArray(v))
      throw new AsyncError('ERR_PEER', 'The request body must be a JSON array.');
    return v;
  }

  private async login(stream: ServerHttp2Stream, conn: Conn): Promise<void> {
    const wait = this.throttle.delayFor(conn.source);
    if (wait > 0) await sleep(wait);
    let req: LoginRequest;
    try {
      req = JSON.parse((await readBody(stream, 1024 * 1024)).toString('utf8')) as LoginRequest;
    } catch {
      req = {};
    }
    const user =
      conn.user === undefined && typeof req === 'object' && req !== null
        ? await authenticate(this.cfg, req, conn.nonce, this.fingerprint)
        : undefined;
    if (!user) {
      this.throttle.failed(conn.source);
      await sleep(this.throttle.delayFor(conn.source));
      this.log(
        conn,
        `login failed${typeof req?.user === 'string' ? ` for '${req.user.slice(0, 64)}'` : ''}`,
      );
      // One answer for every failure: it says nothing about which part was wrong.
      this.reply(stream, 401, {
        error: { code: 'ERR_AUTH', message: 'Authentication failed.' },
      });
      return;
    }
    this.throttle.succeeded(conn.source);
    conn.user = user;
    this.log(conn, 'logged in');
    this.reply(stream, 200, { ok: { user: user.name } });
  }
}

/**
 * Seconds between liveness pings (ASYNC_SERVER_PING_SECONDS, default 15); a connection whose
 * ping stays unanswered for four intervals is dropped (a ping waits behind what the kernel
 * already buffers for a slow link: 60 s by default leaves room for a few MB at 1 Mb/s).
 */
function pingInterval(): number {
  const v = Number(process.env.ASYNC_SERVER_PING_SECONDS);
  return Number.isFinite(v) && v > 0 ? v * 1000 : 15_000;
}

/**
 * Pings the client and drops the connection when it stops answering. Needed because a client
 * killed while the server was blocked writing to it (a pull: the server sends, the client's
 * window is full) is otherwise never noticed: Node's HTTP/2 session stops reading its socket
 * while a write is pending, so neither the peer's reset nor its close arrives, and the
 * session (and its lock) would stay open until the idle timeout.
 */
function watchLiveness(
  s: Http2Session,
  raw: Socket | undefined,
  onDead: () => void,
): NodeJS.Timeout {
  const every = pingInterval();
  let sentAt = 0;
  const timer = setInterval(() => {
    if (s.closed || s.destroyed) return;
    if (sentAt !== 0) {
      if (Date.now() - sentAt > 4 * every) {
        onDead();
        s.destroy();
        // The session's own destroy waits for the pending socket write, which never ends.
        raw?.destroy();
      }
      return;
    }
    sentAt = Date.now();
    try {
      s.ping(() => (sentAt = 0));
    } catch {
      sentAt = 0;
    }
  }, every);
  timer.unref();
  return timer;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
