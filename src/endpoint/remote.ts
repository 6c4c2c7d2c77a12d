/**
 * RemoteEndpoint: the Endpoint contract over one HTTP/2 connection to async-server. Each
 * method is one request (endpoint/wire.ts); several lanes of the pump run as concurrent
 * streams on the connection, with flow-control windows enlarged so the connection is not
 * the bottleneck. Client: node:http2 (bench/RESULTS.md, "RemoteEndpoint transport").
 *
 * Connecting checks the server's certificate against the known-hosts file before any
 * credential is sent, then logs in once for the whole session.
 */
import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Entry } from '../core/entry.js';
import type { Change } from '../core/change.js';
import type { Op } from '../core/plan.js';
import type { Problem } from '../core/problem.js';
import { ruleListProblem } from '../core/filter.js';
import { PeerLostError, SessionError, describeIoError, errnoCode } from '../errors.js';
import type { Segment } from '../transfer/batches.js';
import type {
  ApplyResult,
  ChangeHint,
  DataBatch,
  Endpoint,
  FinishOptions,
  HashReply,
  Pacer,
  PieceDigests,
  PieceRequest,
  PlaceResult,
  Prepared,
  RecordUpdate,
  ResumeOffer,
  ScanReply,
  ScanScope,
  SessionSpec,
  WatchHandle,
} from './endpoint.js';
import type { HostKeyPolicy } from './known-hosts.js';
import { checkHostKey, fingerprintOfDer } from './known-hosts.js';
import type { LoginKey } from './ssh-key.js';
import { loginMessage } from './ssh-key.js';
import {
  FRAME_TYPE,
  HintLines,
  JSON_TYPE,
  LINES_TYPE,
  MAX_JSON,
  PROTOCOL,
  SESSION_WINDOW,
  STREAM_WINDOW,
  WATCH_SILENCE_MS,
  WATCH_TYPE,
  encodeFrame,
  errorFromWire,
  readBody,
  readFrame,
  readLines,
} from './wire.js';
import type { WireError } from './wire.js';

export interface RemoteTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string | undefined;
  /** h2c without TLS: loopback only (tests). */
  readonly plaintext: boolean;
  readonly hostKeys: HostKeyPolicy;
  /** -R: the peer's log directory (inside the docroot). */
  readonly logDir?: string;
  /** A stream silent this long is a stalled peer. */
  readonly stallMs?: number;
  /**
   * -l in bits per second: the receive window of each stream is sized from it (50 ms of
   * traffic, at least 64 KiB), so a peer sending a paced read cannot run ahead of the rate
   * by more than that (see Endpoint.read).
   */
  readonly targetRate?: number;
}

export interface Credentials {
  readonly password?: string;
  readonly token?: string;
  readonly keys: readonly LoginKey[];
}

const DEFAULT_STALL_MS = 5 * 60_000;
/**
 * Paced transfers (-l) move in slices of 100 ms of traffic, from 16 KiB to 1 MiB. ±3% of a
 * 10 s window at 10 Mb/s is 375 kB, so a slice must be well below that there. At high rates
 * every slice costs a wait for the stream's 'drain': 128 KiB slices at 2 Gb/s were ~1,900
 * waits a second and held a plaintext push 16% under its target; 1 MiB slices halved that
 * gap (bench/RESULTS.md). At very low rates the slice shrinks so that a stream waiting for
 * its lane's turn in the bucket still moves often enough not to look stalled (a 128 KiB
 * slice is 105 s at 10 kb/s, four lanes take turns).
 */
function paceSlice(bitsPerSecond: number | undefined): number {
  if (bitsPerSecond === undefined) return 128 * 1024;
  return Math.min(1024 * 1024, Math.max(16 * 1024, Math.round(bitsPerSecond / 8 / 10)));
}

export class RemoteEndpoint implements Endpoint {
  readonly label = 'peer';
  private lost: Error | undefined;
  /** Bytes per paced slice (see paceSlice). */
  private readonly slice: number;
  private session!: ClientHttp2Session;
  /** The connection's own socket (session.socket is a proxy that cannot be destroyed). */
  private socket: Duplex | undefined;

  private constructor(
    private readonly target: RemoteTarget,
    private readonly creds: Credentials,
    /** `user@host:port`, as messages show the peer. */
    readonly where: string,
  ) {
    this.slice = paceSlice(target.targetRate);
  }

  static async connect(target: RemoteTarget, creds: Credentials): Promise<RemoteEndpoint> {
    const ep = new RemoteEndpoint(
      target,
      creds,
      `${target.user ? `${target.user}@` : ''}${target.host}:${target.port}`,
    );
    await ep.dial();
    return ep;
  }

  /**
   * Continuous mode: a session whose connection was lost connects and logs in again when
   * the engine reopens it (prepare), with the same credentials and the same host-key check.
   */
  private async redial(): Promise<void> {
    this.session?.destroy();
    this.socket?.destroy();
    this.lost = undefined;
    await this.dial();
  }

  private async dial(): Promise<void> {
    const target = this.target;
    const creds = this.creds;
    const peer = `${target.host}:${target.port}`;
    let socket: Duplex | undefined;
    const authority = `${target.plaintext ? 'http' : 'https'}://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
    const streamWindow =
      target.targetRate !== undefined
        ? Math.min(STREAM_WINDOW, Math.max(64 * 1024, Math.round(target.targetRate / 8 / 20)))
        : STREAM_WINDOW;
    const session = http2.connect(authority, {
      settings: { initialWindowSize: streamWindow },
      maxSessionMemory: 512,
      // The certificate is self-signed: it is checked against the pinned fingerprint below,
      // before anything else is sent, instead of against a CA.
      rejectUnauthorized: false,
      ...(/^[\d.]+$|:/.test(target.host) ? {} : { servername: target.host }),
    });
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('connect', (_s: unknown, sock: Duplex) => {
          socket = sock;
          resolve();
        });
        session.once('error', reject);
      });
    } catch (e) {
      session.destroy();
      const code = errnoCode(e);
      throw new PeerLostError(
        `Cannot connect to peer ${peer}: ${code === 'ECONNREFUSED' ? 'connection refused (ECONNREFUSED)' : describeIoError(e)}.`,
        code === 'ECONNREFUSED'
          ? 'Is async-server running there? Check the host and -P/--tcp-port.'
          : undefined,
      );
    }
    // Only this connection's end marks the endpoint lost: an old one closing after a
    // reconnection must not.
    session.on('error', (e) => {
      if (this.session === session) this.lost ??= e;
    });
    session.on('close', () => {
      if (this.session === session) this.lost ??= new Error('connection closed');
    });
    session.on('goaway', () => {
      if (this.session === session) this.lost ??= new Error('the server closed the connection');
    });
    this.session = session;
    this.socket = socket;
    try {
      let binding = '';
      if (!target.plaintext) {
        const cert = (session.socket as TLSSocket).getPeerCertificate();
        if (!cert?.raw) throw new SessionError('ERR_HOST_KEY', `Peer ${peer} sent no certificate.`);
        binding = fingerprintOfDer(cert.raw);
        await checkHostKey(peer, binding, target.hostKeys);
      }
      try {
        session.setLocalWindowSize(SESSION_WINDOW);
      } catch {
        // Only an optimisation.
      }
      const hello = (await this.call('GET', '/v1/hello', undefined)) as {
        protocol: number;
        nonce: string;
        binding: string;
      };
      if (hello?.protocol !== PROTOCOL) {
        throw new SessionError(
          'ERR_PEER',
          `Peer ${peer} speaks protocol ${hello?.protocol}, this async speaks ${PROTOCOL}.`,
          'Run the same version of open-async on both ends.',
        );
      }
      if (!target.plaintext && hello.binding !== binding) {
        throw new SessionError('ERR_HOST_KEY', `Peer ${peer} answered for another certificate.`);
      }
      if (!creds.password && !creds.token && creds.keys.length === 0) {
        throw new SessionError(
          'ERR_AUTH',
          `No credentials for peer ${peer}.`,
          'Give a key with -i, a password in ASPERA_SCP_PASS (or -w to be asked), or a token with -W or ASPERA_SCP_TOKEN.',
        );
      }
      const user = target.user;
      const keys =
        user === undefined
          ? []
          : creds.keys.map((k) => ({
              blob: k.blob,
              signature: k.sign(loginMessage(hello.nonce, user, binding)),
            }));
      try {
        await this.call('POST', '/v1/login', {
          ...(user !== undefined ? { user } : {}),
          ...(creds.password !== undefined ? { password: creds.password } : {}),
          ...(creds.token !== undefined ? { token: creds.token } : {}),
          keys,
        });
      } catch (e) {
        if (e instanceof SessionError && e.code === 'ERR_AUTH') {
          throw new SessionError(
            'ERR_AUTH',
            `Authentication failed at peer ${this.where}.`,
            'Check the user, the password (ASPERA_SCP_PASS or -w), the token (-W or ASPERA_SCP_TOKEN) or the key (-i); the server does not say which part was wrong.',
          );
        }
        throw e;
      }
    } catch (e) {
      session.destroy();
      throw e;
    }
  }

  close(): void {
    // A peer that is gone or stalled gets no graceful goodbye: it might never answer one.
    // Destroying the session ends the socket gracefully, which waits for its queued writes:
    // against a stopped peer (its window open, its socket buffers full) that never ends, and
    // the process would hang, so the socket itself is destroyed too.
    if (this.lost) {
      this.session.destroy();
      this.socket?.destroy();
    } else if (!this.session.closed) this.session.close();
  }

  // --- requests ---------------------------------------------------------------------------

  private request(
    method: 'GET' | 'POST',
    path: string,
    contentType?: string,
    stallMs = this.target.stallMs ?? DEFAULT_STALL_MS,
  ): ClientHttp2Stream {
    if (this.lost || this.session.closed || this.session.destroyed) throw this.lostError();
    const req = this.session.request({
      ':method': method,
      ':path': path,
      ...(contentType ? { 'content-type': contentType } : {}),
    });
    req.setTimeout(stallMs, () => {
      this.lost ??= new Error('the peer stalled');
      req.destroy(
        new PeerLostError(
          `Peer ${this.where} stalled: nothing arrived for ${Math.round(stallMs / 1000)} s.`,
          'Run again; what was placed is recorded.',
        ),
      );
    });
    return req;
  }

  private lostError(cause?: unknown): SessionError {
    const why = cause ?? this.lost;
    return new PeerLostError(
      `Lost the connection to peer ${this.where}${why ? ` (${why instanceof Error ? describeIoError(why) : String(why)})` : ''}.`,
      'Run again when the server is back: what was placed is recorded, the rest is sent then.',
    );
  }

  /** Sends a request, waits for its headers; rejects with a clear error if the peer is gone. */
  private async exchange(req: ClientHttp2Stream): Promise<{ status: number; type: string }> {
    try {
      return await new Promise((resolve, reject) => {
        req.once('response', (h) =>
          resolve({ status: Number(h[':status']), type: String(h['content-type'] ?? '') }),
        );
        req.once('error', reject);
        req.once('close', () => reject(this.lost ?? new Error('stream closed')));
      });
    } catch (e) {
      if (e instanceof SessionError) throw e;
      throw this.lostError(e);
    }
  }

  private async jsonReply(req: ClientHttp2Stream): Promise<unknown> {
    const { status } = await this.exchange(req);
    let body: Buffer;
    try {
      body = await readBody(req, MAX_JSON);
    } catch (e) {
      if (e instanceof SessionError) throw e;
      throw this.lostError(e);
    }
    let v: { ok?: unknown; error?: WireError };
    try {
      v = JSON.parse(body.toString('utf8')) as typeof v;
    } catch {
      throw new SessionError('ERR_PEER', `Peer ${this.where} answered garbage (HTTP ${status}).`);
    }
    if (v.error) throw errorFromWire(v.error);
    if (status !== 200)
      throw new SessionError('ERR_PEER', `Peer ${this.where} answered HTTP ${status}.`);
    return v.ok;
  }

  private async call(method: 'GET' | 'POST', path: string, body: unknown): Promise<unknown> {
    const req = this.request(method, path, method === 'POST' ? 'application/json' : undefined);
    if (method === 'POST') req.end(JSON.stringify(body));
    else req.end();
    return this.jsonReply(req);
  }

  private ep(name: string, ...args: unknown[]): Promise<unknown> {
    return this.call('POST', `/v1/ep/${name}`, args);
  }

  // --- Endpoint ---------------------------------------------------------------------------

  async prepare(spec: SessionSpec): Promise<Prepared> {
    // A session reopened after a lost connection (continuous mode) starts on a new one.
    if (this.lost || this.session.closed || this.session.destroyed) await this.redial();
    const p = (await this.ep('prepare', {
      ...spec,
      ...(this.target.logDir !== undefined ? { logDir: this.target.logDir } : {}),
    })) as Prepared;
    // The daemon's own rules: applied here too, so nothing is sent that it would refuse.
    if (p.filters !== undefined) {
      const bad = ruleListProblem(p.filters);
      if (bad !== undefined)
        throw new SessionError('ERR_PEER', `Peer ${this.where} sent invalid filter rules: ${bad}.`);
    }
    return {
      dir: `${this.where}:${p.dir}`,
      dbPath: `${this.where}:${p.dbPath}`,
      dbExisted: p.dbExisted,
      ...(p.filters !== undefined && p.filters.length > 0 ? { filters: p.filters } : {}),
    };
  }

  async open(opts: { readonly reset: boolean }): Promise<void> {
    await this.ep('open', opts);
  }

  async scan(scope?: ScanScope): Promise<ScanReply> {
    const { head, items } = await this.linesCall('scan', scope ? [scope] : []);
    return { ...(head as Omit<ScanReply, 'changes'>), changes: items as Change[] };
  }

  /**
   * The daemon watches its side (LocalEndpoint.watch) and streams the hints back on one
   * long request (endpoint/wire.ts, "watch"). Resolves on the stream's `ready` line, once
   * the daemon's watch is in place. The stream ending without close() (the connection
   * lost, the daemon gone, no heartbeat for WATCH_SILENCE_MS) is a 'degraded' hint: the
   * engine falls back to full scans, whose failure starts its reconnection.
   */
  async watch(onHints: (hints: readonly ChangeHint[]) => void): Promise<WatchHandle> {
    const req = this.request('POST', '/v1/ep/watch', JSON_TYPE, WATCH_SILENCE_MS);
    req.end('[]');
    const { type } = await this.exchange(req);
    if (type !== WATCH_TYPE) {
      await this.jsonReply2(req);
      throw new SessionError('ERR_PEER', `Peer ${this.where} answered the watch with no stream.`);
    }
    let closed = false;
    let ready: (() => void) | undefined;
    let failed: ((e: Error) => void) | undefined;
    const readyP = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    const lines = new HintLines((msg) => {
      if (msg.ready) ready?.();
      else if (msg.hints && !closed) onHints(msg.hints);
    });
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      try {
        lines.push(chunk);
      } catch (e) {
        req.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
        failed?.(e as Error);
      }
    });
    let ended = false;
    const end = (why: string): void => {
      if (ended) return;
      ended = true;
      failed?.(this.lostError(why));
      if (closed) return;
      onHints([
        {
          kind: 'degraded',
          message: `the change notification stream from peer ${this.where} was lost (${why}): changes there are found by full scans until it is back`,
          hint: 'The session reconnects by itself when the server is reachable again.',
        },
      ]);
    };
    req.on('error', (e) => end(e instanceof Error ? e.message : String(e)));
    req.on('end', () => end('the server ended it'));
    req.on('close', () => end(this.lost?.message ?? 'stream closed'));
    await readyP;
    return {
      close: async () => {
        closed = true;
        if (!req.closed && !req.destroyed) req.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
  }

  async list(path: string): Promise<Entry[]> {
    return (await this.linesCall('list', [path])).items as Entry[];
  }

  async hash(entries: readonly Entry[]): Promise<HashReply[]> {
    return (await this.ep('hash', entries)) as HashReply[];
  }

  async read(segments: readonly Segment[], pace?: Pacer): Promise<DataBatch> {
    const req = this.request('POST', '/v1/ep/read', 'application/json');
    req.end(JSON.stringify([segments]));
    const { type } = await this.exchange(req);
    if (type !== FRAME_TYPE) return (await this.jsonReply2(req)) as never;
    try {
      return await readFrame(req, pace, this.slice);
    } catch (e) {
      if (e instanceof SessionError) throw e;
      throw this.lostError(e);
    }
  }

  /** A call whose reply grows with the tree: lines (wire.ts), or a JSON error. */
  private async linesCall(
    name: 'scan' | 'list',
    args: unknown[],
  ): Promise<{ head: unknown; items: unknown[] }> {
    const req = this.request('POST', `/v1/ep/${name}`, JSON_TYPE);
    req.end(JSON.stringify(args));
    const { type } = await this.exchange(req);
    if (type !== LINES_TYPE) {
      await this.jsonReply2(req);
      throw new SessionError('ERR_PEER', `Peer ${this.where} answered ${name} without its lines.`);
    }
    try {
      return await readLines(req);
    } catch (e) {
      if (e instanceof SessionError) throw e;
      throw this.lostError(e);
    }
  }

  /** The JSON error answer of a request whose headers were already read. */
  private async jsonReply2(req: ClientHttp2Stream): Promise<unknown> {
    const body = await readBody(req, MAX_JSON);
    let v: { ok?: unknown; error?: WireError };
    try {
      v = JSON.parse(body.toString('utf8')) as typeof v;
    } catch {
      throw new SessionError('ERR_PEER', `Peer ${this.where} answered garbage.`);
    }
    if (v.error) throw errorFromWire(v.error);
    return v.ok;
  }

  async write(batch: DataBatch, pace?: Pacer): Promise<PlaceResult[]> {
    const req = this.request('POST', '/v1/ep/write', FRAME_TYPE);
    const [lead, data] = encodeFrame(batch);
    if (!pace) {
      req.write(lead);
      req.end(data);
      return (await this.jsonReply(req)) as PlaceResult[];
    }
    // Listening for the answer first: the server may refuse before the body is complete.
    const reply = this.jsonReply(req);
    reply.catch(() => undefined);
    try {
      req.write(lead);
      await this.paced(req, data, pace);
      req.end();
    } catch (e) {
      req.close(http2.constants.NGHTTP2_CANCEL);
      // A stream that failed under us: the server's own answer (a refusal) says more. An
      // abort while waiting for the bucket is the caller's, and stays as it is.
      if (e instanceof SessionError) await reply;
      throw e;
    }
    return (await reply) as PlaceResult[];
  }

  /**
   * Writes `data` in slices, each after `pace` allowed it and once the stream took the last
   * one (the 'drain' of its small buffer), so the bytes leave at the target rate rather than
   * as one burst per batch.
   */
  private async paced(req: ClientHttp2Stream, data: Uint8Array, pace: Pacer): Promise<void> {
    for (let at = 0; at < data.byteLength; at += this.slice) {
      const slice = data.subarray(at, Math.min(at + this.slice, data.byteLength));
      await pace(slice.byteLength);
      if (req.destroyed || req.closed) throw this.lostError(this.lost ?? 'stream closed');
      if (!req.write(slice)) {
        await new Promise<void>((resolve, reject) => {
          const done = (e?: unknown): void => {
            req.off('drain', done);
            req.off('close', done);
            if (e !== undefined || req.destroyed) reject(e ?? this.lostError('stream closed'));
            else resolve();
          };
          req.once('drain', done);
          req.once('close', done);
        });
      }
    }
  }

  async resumable(files: readonly Entry[]): Promise<ResumeOffer[]> {
    return (await this.ep('resumable', files)) as ResumeOffer[];
  }

  async pieceDigests(requests: readonly PieceRequest[]): Promise<PieceDigests[]> {
    return (await this.ep('pieceDigests', requests)) as PieceDigests[];
  }

  async apply(ops: readonly Op[]): Promise<ApplyResult[]> {
    return (await this.ep('apply', ops)) as ApplyResult[];
  }

  async settle(dirs: readonly Entry[]): Promise<void> {
    await this.ep('settle', dirs);
  }

  async record(updates: readonly RecordUpdate[]): Promise<void> {
    await this.ep('record', updates);
  }

  async recordProblems(problems: readonly Problem[]): Promise<void> {
    await this.ep('recordProblems', problems);
  }

  async finish(opts: FinishOptions): Promise<void> {
    await this.ep('finish', opts);
  }
}
