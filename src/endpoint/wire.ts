/**
 * The wire format between RemoteEndpoint and the daemon, over HTTP/2 (one connection per
 * session, authenticated once; one request per Endpoint call):
 *
 *   GET  /v1/hello                -> { protocol, nonce, binding }
 *   POST /v1/login   JSON         -> { ok: { user } } | 401 { error }
 *   POST /v1/ep/NAME JSON args    -> { ok: result } | { error: { code, message, hint } }
 *   POST /v1/ep/write  frame      -> { ok: PlaceResult[] }
 *   POST /v1/ep/read   JSON       -> frame (or a JSON error, content-type tells)
 *   POST /v1/ep/scan, /v1/ep/list -> lines (LINES_TYPE): a reply that grows with the tree
 *                                    (see encodeLines), or a JSON error
 *   POST /v1/ep/watch  []         -> NDJSON stream, open until either end closes it:
 *                                    {"ready":true} once the daemon's watch is in place,
 *                                    then {"hints":[ChangeHint...]} per batch and
 *                                    {"ping":true} every WATCH_HEARTBEAT_MS
 *
 * A frame carries a DataBatch: a 4-byte big-endian header length, the JSON header
 * { segments, length }, then exactly `length` bytes of data. The receiver copies the bytes
 * into one fresh Uint8Array: socket Buffers may share a pooled ArrayBuffer, and
 * LocalEndpoint.write hands its buffer to a worker by transfer.
 */
import type { Readable } from 'node:stream';
import { AsyncError, SessionError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { unsafeRelPathReason } from '../core/paths.js';
import type { ChangeHint, DataBatch, SegmentData } from './endpoint.js';

/**
 * Checked at hello: a client and a daemon of different protocols refuse each other with a
 * message instead of failing on the first call one of them does not know. 2: the watch
 * stream, resumable/pieceDigests, the daemon's rules in the prepare reply. 3: scan and list
 * replies as lines.
 */
export const PROTOCOL = 3;
export const FRAME_TYPE = 'application/x-async-frame';
export const JSON_TYPE = 'application/json';
/** A JSON body or reply (a scan of a big tree is large; this bounds memory, not use). */
export const MAX_JSON = 1024 * 1024 * 1024;
/** One DataBatch's header and its data (batches are at most 8 MiB plus one 4 MiB piece). */
export const MAX_FRAME_HEADER = 64 * 1024 * 1024;
export const MAX_FRAME_DATA = 64 * 1024 * 1024;
/**
 * HTTP/2 flow-control windows. The defaults (64 KiB) cap a connection at ~0.4 GB/s on this
 * machine's loopback (bench/RESULTS.md); these let several 8 MiB batches be in flight.
 */
/** The watch stream: newline-delimited JSON. */
export const WATCH_TYPE = 'application/x-ndjson';
/**
 * The daemon writes a heartbeat on an idle watch stream this often, so that neither end's
 * idle timeout closes a quiet session, and a peer that vanished without a TCP reset (a
 * host gone, a cable pulled) is noticed after WATCH_SILENCE_MS of silence.
 */
export const WATCH_HEARTBEAT_MS = 20_000;
export const WATCH_SILENCE_MS = 3 * WATCH_HEARTBEAT_MS + 5_000;
/** One line of the watch stream (a batch of hints is bounded by the watcher's burst size). */
const MAX_WATCH_LINE = 64 * 1024 * 1024;

export const STREAM_WINDOW = 16 * 1024 * 1024;
export const SESSION_WINDOW = 128 * 1024 * 1024;

export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
}

export function errorToWire(e: unknown): WireError {
  if (e instanceof AsyncError)
    return { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  return { code: 'ERR_PEER', message: `internal error at the peer: ${(e as Error)?.message ?? e}` };
}

const KNOWN_CODES = new Set<string>([
  'ERR_USAGE',
  'ERR_UNSUPPORTED_OPTION',
  'ERR_SESSION_NAME',
  'ERR_LOCAL_DIR',
  'ERR_REMOTE_DIR',
  'ERR_DIRS_OVERLAP',
  'ERR_DB_ONE_SIDE',
  'ERR_DB_CORRUPT',
  'ERR_DB_IDENTITY',
  'ERR_DB_DIRECTION',
  'ERR_DB_SCHEMA',
  'ERR_DB_LOCATION',
  'ERR_DB_VANISHED',
  'ERR_SESSION_BUSY',
  'ERR_SAFETY',
  'ERR_IO',
  'ERR_CONFIG',
  'ERR_AUTH',
  'ERR_PEER',
]);

export function errorFromWire(w: WireError): SessionError {
  const code = (KNOWN_CODES.has(w?.code) ? w.code : 'ERR_PEER') as ErrorCode;
  const msg = typeof w?.message === 'string' ? w.message : 'the peer reported an error';
  return new SessionError(code, msg, typeof w?.hint === 'string' ? w.hint : undefined);
}

/** Reads a whole body, refusing more than `limit` bytes. */
export async function readBody(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    n += b.length;
    if (n > limit) throw new SessionError('ERR_PEER', `message larger than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks, n);
}

export function encodeFrame(batch: DataBatch): [Buffer, Uint8Array] {
  const header = Buffer.from(
    JSON.stringify({ segments: batch.segments, length: batch.data.byteLength }),
    'utf8',
  );
  const lead = Buffer.allocUnsafe(4 + header.length);
  lead.writeUInt32BE(header.length, 0);
  header.copy(lead, 4);
  return [lead, batch.data];
}

/**
 * Reads one frame, copying its data into a fresh buffer of exactly the announced size.
 * With `pace` (a target rate), data bytes are paid for in slices of `slice` bytes as they
 * are consumed; while a payment waits the stream is not read, so HTTP/2 flow control holds
 * the sender back.
 */
export async function readFrame(
  stream: Readable,
  pace?: (bytes: number) => Promise<void>,
  slice = 128 * 1024,
): Promise<DataBatch> {
  let lead: Buffer = Buffer.alloc(0);
  let headerLen = -1;
  let data: Uint8Array | undefined;
  let segments: SegmentData[] = [];
  let filled = 0;
  const take = (b: Buffer): void => {
    if (data === undefined) {
      lead = lead.length === 0 ? b : Buffer.concat([lead, b]);
      if (headerLen < 0 && lead.length >= 4) {
        headerLen = lead.readUInt32BE(0);
        if (headerLen > MAX_FRAME_HEADER)
          throw new SessionError('ERR_PEER', 'malformed data frame: header too large');
      }
      if (headerLen < 0 || lead.length < 4 + headerLen) return;
      let h: { segments?: unknown; length?: unknown };
      try {
        h = JSON.parse(lead.subarray(4, 4 + headerLen).toString('utf8')) as typeof h;
      } catch {
        throw new SessionError('ERR_PEER', 'malformed data frame: header is not JSON');
      }
      const len = h.length;
      if (
        !Array.isArray(h.segments) ||
        typeof len !== 'number' ||
        !Number.isSafeInteger(len) ||
        len < 0 ||
        len > MAX_FRAME_DATA
      )
        throw new SessionError('ERR_PEER', 'malformed data frame: bad header');
      segments = h.segments as SegmentData[];
      // Perf: not zero-filled first; every byte is written before the frame is used (a
      // frame that ends short is refused below).
      data = Buffer.allocUnsafeSlow(len);
      const rest = lead.subarray(4 + headerLen);
      lead = Buffer.alloc(0);
      if (rest.length > 0) take(rest);
      return;
    }
    if (filled + b.length > data.byteLength)
      throw new SessionError('ERR_PEER', 'data frame larger than announced');
    data.set(b, filled);
    filled += b.length;
  };
  let paid = 0;
  for await (const c of stream) {
    take(c as Buffer);
    if (pace && filled - paid >= slice) {
      const n = filled - paid;
      paid = filled;
      await pace(n);
    }
  }
  if (pace && filled > paid) await pace(filled - paid);
  if (data === undefined || filled !== data.byteLength)
    throw new SessionError(
      'ERR_PEER',
      'data frame shorter than announced (the stream ended early)',
    );
  return { data, segments };
}

export interface WatchMessage {
  readonly ready?: true;
  readonly ping?: true;
  readonly hints?: readonly ChangeHint[];
}

export function encodeWatchMessage(m: WatchMessage): string {
  return `${JSON.stringify(m)}\n`;
}

/**
 * Splits the watch stream into messages and checks them: a hint's paths must be relative
 * paths inside the session directory (the daemon only reports such; a path that is not is
 * dropped, never scanned). Throws on a malformed line.
 */
export class HintLines {
  private buf = '';

  constructor(private readonly onMessage: (m: WatchMessage) => void) {}

  push(chunk: string): void {
    this.buf += chunk;
    if (this.buf.length > MAX_WATCH_LINE)
      throw new SessionError('ERR_PEER', 'malformed watch stream: line too long');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line !== '') this.onMessage(parseWatchLine(line));
    }
  }
}

function parseWatchLine(line: string): WatchMessage {
  let v: { ready?: unknown; ping?: unknown; hints?: unknown };
  try {
    v = JSON.parse(line) as typeof v;
  } catch {
    throw new SessionError('ERR_PEER', 'malformed watch stream: a line is not JSON');
  }
  if (v?.ready === true) return { ready: true };
  if (v?.ping === true) return { ping: true };
  if (!Array.isArray(v?.hints))
    throw new SessionError('ERR_PEER', 'malformed watch stream: unknown message');
  const hints: ChangeHint[] = [];
  for (const h of v.hints as Record<string, unknown>[]) {
    if (h?.kind === 'paths' && Array.isArray(h.paths)) {
      const paths = (h.paths as unknown[]).filter(
        (p): p is string => typeof p === 'string' && (p === '' || !unsafeRelPathReason(p)),
      );
      if (paths.length > 0) hints.push({ kind: 'paths', paths });
    } else if (h?.kind === 'rescan' && typeof h.reason === 'string') {
      hints.push({ kind: 'rescan', reason: h.reason });
    } else if (
      h?.kind === 'degraded' &&
      typeof h.message === 'string' &&
      typeof h.hint === 'string'
    ) {
      hints.push({ kind: 'degraded', message: h.message, hint: h.hint });
    } else throw new SessionError('ERR_PEER', 'malformed watch stream: a bad hint');
  }
  return { hints };
}

/**
 * Replies that grow with the tree (a scan's changes, a listing) go as lines, never as one
 * JSON text: a JSON string of a few million entries passes V8's string length limit
 * (~512 MiB) and would need the whole text in memory twice. The first line is
 * `{"head": H, "n": N}`, then the N items follow as JSON arrays of up to LINE_ITEMS each.
 */
export const LINES_TYPE = 'application/x-async-lines';
export const LINE_ITEMS = 2048;
/** One line of a lines reply (LINE_ITEMS entries of a few hundred bytes each). */
const MAX_LINE = 64 * 1024 * 1024;

export function* encodeLines(head: unknown, items: readonly unknown[]): Generator<string> {
  yield `${JSON.stringify({ head, n: items.length })}\n`;
  for (let i = 0; i < items.length; i += LINE_ITEMS)
    yield `${JSON.stringify(items.slice(i, i + LINE_ITEMS))}\n`;
}

/** Reads a lines reply (encodeLines) into its head and items; throws on a malformed one. */
export async function readLines(stream: Readable): Promise<{ head: unknown; items: unknown[] }> {
  let head: unknown;
  let n = -1;
  const items: unknown[] = [];
  const line = (text: string): void => {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new SessionError('ERR_PEER', 'malformed reply: a line is not JSON');
    }
    if (n < 0) {
      const h = v as { head?: unknown; n?: unknown };
      if (typeof h?.n !== 'number' || !Number.isSafeInteger(h.n) || h.n < 0)
        throw new SessionError('ERR_PEER', 'malformed reply: no item count');
      head = h.head;
      n = h.n;
      return;
    }
    if (!Array.isArray(v) || items.length + v.length > n)
      throw new SessionError('ERR_PEER', 'malformed reply: more items than announced');
    for (const x of v) items.push(x);
  };
  let pending: Buffer[] = [];
  let pendingLen = 0;
  for await (const c of stream) {
    let b = c as Buffer;
    let nl: number;
    while ((nl = b.indexOf(10)) >= 0) {
      pending.push(b.subarray(0, nl));
      line(Buffer.concat(pending, pendingLen + nl).toString('utf8'));
      pending = [];
      pendingLen = 0;
      b = b.subarray(nl + 1);
    }
    if (b.length > 0) {
      pending.push(b);
      pendingLen += b.length;
      if (pendingLen > MAX_LINE)
        throw new SessionError('ERR_PEER', 'malformed reply: line too long');
    }
  }
  if (n < 0 || items.length !== n || pendingLen > 0)
    throw new SessionError('ERR_PEER', 'the reply ended early (the connection was cut)');
  return { head, items };
}
