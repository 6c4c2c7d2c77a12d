/**
 * Resume of big files, the negotiation before the pump starts: the receiver offers the
 * pieces it kept from an interrupted run of the same source version (Endpoint.resumable),
 * the sender digests those pieces of its file as it is now (Endpoint.pieceDigests: a local
 * read, no data on the wire), and a piece is skipped only when both digests agree
 * (core/partial.ts piecesToSkip). Everything else, including every piece of a file whose
 * source changed, is sent as usual; the receiver still verifies the whole file before it
 * places it.
 */
import type { Entry } from '../core/entry.js';
import { piecesToSkip } from '../core/partial.js';
import type { Endpoint } from '../endpoint/endpoint.js';
import { CHUNK_SIZE } from '../hash/digest.js';
import { isChunked } from './batches.js';

export interface ResumePlan {
  /** Per path, the piece indices the sender leaves out. */
  readonly skip: Map<string, readonly number[]>;
  /** Per path, how many bytes that saves. */
  readonly savedBytes: Map<string, number>;
}

export async function planResume(
  sender: Endpoint,
  receiver: Endpoint,
  files: readonly Entry[],
): Promise<ResumePlan> {
  const plan: ResumePlan = { skip: new Map(), savedBytes: new Map() };
  const big = files.filter(isChunked);
  if (big.length === 0 || !receiver.resumable || !sender.pieceDigests) return plan;
  const offers = (await receiver.resumable(big)).filter((o) => o.pieces.length > 0);
  if (offers.length === 0) return plan;
  const byPath = new Map(big.map((e) => [e.path, e]));
  const asked = offers.filter((o) => byPath.has(o.path));
  const mine = await sender.pieceDigests(
    asked.map((o) => ({ entry: byPath.get(o.path)!, indices: o.pieces.map((p) => p.index) })),
  );
  asked.forEach((o, k) => {
    const d = mine[k];
    if (!d?.ok) return;
    const e = byPath.get(o.path)!;
    const skip = piecesToSkip(o.pieces, d.digests, Math.ceil(e.size / CHUNK_SIZE));
    if (skip.length === 0) return;
    plan.skip.set(o.path, skip);
    plan.savedBytes.set(
      o.path,
      skip.reduce((n, i) => n + Math.min(CHUNK_SIZE, e.size - i * CHUNK_SIZE), 0),
    );
  });
  return plan;
}
