/**
 * The wire format between RemoteEndpoint and the daemon, over HTTP/2 (one connection per
 * session, authenticated once; one request per Endpoint call):
 *
 *   GET  /v1/hello                -> { protocol, nonce, binding }
 *   POST /v1/login   JSON         -> { ok: { user } } | 401 { error }
 *   POST /v1/ep/NAME JSON args    -> { ok: result } | { error: { code, message, hint } }
 *   POST /v1/ep/write  frame      -> { ok: PlaceResult[] }
 *   POST /v1/ep/read   JSON       -> frame (or a JSON error, content-type tells)
 *
 * A frame carries a DataBatch: a 4-byte big-endian header length, the JSON header
 * { segments, length }, then exactly `length` bytes of data. The receiver copies the bytes
 * into one fresh Uint8Array: socket Buffers may share a pooled ArrayBuffer, and
 * LocalEndpoint.write hands its buffer to a worker by transfer.
 */
import type { Readable } from 'node:stream';
import { AsyncError, SessionError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { DataBatch, SegmentData } from './endpoint.js';

export const PROTOCOL = 1;
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
      data = new Uint8Array(len);
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
