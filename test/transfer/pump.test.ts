/**
 * The pump with a target rate: a receiver that paces its writes is charged per slice as the
 * slices go (regression: the bucket was charged per batch of up to 8 MiB, so 10 Mb/s missed
 * ±3% over 10 s windows); one that does not pace is charged the whole batch, exactly once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry } from '../../src/core/entry.js';
import type { DataBatch, Endpoint, Pacer, PlaceResult } from '../../src/endpoint/endpoint.js';
import type { Segment } from '../../src/transfer/batches.js';
import { pump } from '../../src/transfer/pump.js';
import type { RateLimiter } from '../../src/transfer/rate-limiter.js';
import { unlimited } from '../../src/transfer/rate-limiter.js';

const file = (path: string, size: number): Entry => ({
  path,
  kind: 'file',
  size,
  mtimeMs: 0,
  mode: 0o644,
  ino: 0,
  uid: 0,
  gid: 0,
});

/** A sender; with `slice`, it paces its reads as a remote one does (the pull direction). */
function senderOf(slice?: number): Endpoint {
  return {
    async read(segments: readonly Segment[], pace?: Pacer): Promise<DataBatch> {
      let start = 0;
      const segs = segments.map((s) => {
        const d = { ...s, start, pieces: [] };
        start += s.length;
        return d;
      });
      if (slice !== undefined && pace)
        for (let at = 0; at < start; at += slice) await pace(Math.min(slice, start - at));
      return { data: new Uint8Array(start), segments: segs };
    },
  } as unknown as Endpoint;
}
const sender = senderOf();

function receiver(slice: number | undefined): Endpoint {
  return {
    async write(batch: DataBatch, pace?: Pacer): Promise<PlaceResult[]> {
      if (slice !== undefined && pace)
        for (let at = 0; at < batch.data.byteLength; at += slice)
          await pace(Math.min(slice, batch.data.byteLength - at));
      return batch.segments.map((s) => ({ path: s.entry.path, ok: true, digest: undefined }));
    },
  } as unknown as Endpoint;
}

function countingLimiter(): RateLimiter & { taken: number[] } {
  const taken: number[] = [];
  return {
    taken,
    take(bytes: number) {
      taken.push(bytes);
      return Promise.resolve();
    },
  };
}

describe('pump with a target rate', () => {
  const items = [{ entry: file('big', 10 * 1024 * 1024) }, { entry: file('small', 1000) }];
  const total = 10 * 1024 * 1024 + 1000;

  const small = (taken: number[]) =>
    assert.ok(Math.max(...taken) <= 64 * 1024, `largest charge ${Math.max(...taken)}`);
  // [what, sender's read slice, receiver's write slice (Infinity: one payment per batch,
  // as an in-process receiver does; undefined: never paces), check of the charges]
  const table: [string, number | undefined, number | undefined, (taken: number[]) => void][] = [
    ['a pacing receiver is charged slice by slice (push)', undefined, 64 * 1024, small],
    [
      'a receiver that does not pace is charged each batch whole',
      undefined,
      undefined,
      (taken) => assert.ok(Math.max(...taken) > 64 * 1024),
    ],
    [
      'a pacing sender is charged slice by slice, and the receiver not again (pull)',
      64 * 1024,
      Infinity,
      small,
    ],
  ];
  for (const [what, readSlice, slice, check] of table) {
    test(what, async () => {
      const limiter = countingLimiter();
      const progress: number[] = [];
      const r = await pump(senderOf(readSlice), receiver(slice), items, {
        limiter,
        lanes: 2,
        onBytes: (n) => progress.push(n),
      });
      assert.equal(r.bytes, total);
      assert.equal(
        limiter.taken.reduce((a, b) => a + b, 0),
        total,
        'every byte charged exactly once',
      );
      assert.equal(
        progress.reduce((a, b) => a + b, 0),
        total,
      );
      check(limiter.taken);
    });
  }

  test('without a target rate the receiver is not asked to pace', async () => {
    let paced = false;
    const rcv = {
      write(batch: DataBatch, pace?: Pacer): Promise<PlaceResult[]> {
        paced ||= pace !== undefined;
        return Promise.resolve(
          batch.segments.map((s) => ({ path: s.entry.path, ok: true, digest: undefined })),
        );
      },
    } as unknown as Endpoint;
    const r = await pump(sender, rcv, items, { limiter: unlimited, lanes: 2 });
    assert.equal(r.bytes, total);
    assert.equal(paced, false);
  });
});

describe('pump results', () => {
  test('each result gets its own sent entry, whatever order the receiver answers in', async () => {
    // Small files and the pieces of a big one (several segments of one path in a batch).
    const entries = [
      ...Array.from({ length: 50 }, (_, i) => file(`f${String(i).padStart(2, '0')}`, i)),
      file('zbig', 9 * 1024 * 1024),
    ];
    for (const order of ['as sent', 'reversed', 'refused first'] as const) {
      const seen = new Map<string, Entry | undefined>();
      const answering = {
        async write(batch: DataBatch): Promise<PlaceResult[]> {
          const paths = [...new Set(batch.segments.map((s) => s.entry.path))];
          if (order === 'reversed') paths.reverse();
          const out: PlaceResult[] = paths.map((path) => ({ path, ok: true, digest: undefined }));
          if (order === 'refused first')
            out.unshift({ path: '../x', ok: false, message: 'refused path', retry: false });
          return out;
        },
      } as unknown as Endpoint;
      await pump(
        sender,
        answering,
        entries.map((entry) => ({ entry })),
        {
          limiter: unlimited,
          lanes: 2,
          onResults: (results, entryOf) => {
            for (const r of results) seen.set(r.path, entryOf(r.path));
            return Promise.resolve();
          },
        },
      );
      for (const e of entries) assert.equal(seen.get(e.path), e, `${order}: ${e.path}`);
      if (order === 'refused first') assert.equal(seen.get('../x'), undefined);
    }
  });
});
