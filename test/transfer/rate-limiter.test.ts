/** The token bucket, on a virtual clock: exact long-run rate, burst bound, cancellable waits. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TokenBucket } from '../../src/transfer/rate-limiter.js';

function virtualClock() {
  let now = 0;
  return {
    now: () => now,
    sleep: (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      now += ms;
      return Promise.resolve();
    },
    get time() {
      return now;
    },
  };
}

describe('TokenBucket', () => {
  test('sends at the target rate over the long run', async () => {
    const clock = virtualClock();
    // 80 Mb/s = 10 MB/s = 10,000 bytes per ms; burst 1 MB.
    const b = new TokenBucket(80e6, { burstBytes: 1_000_000, now: clock.now, sleep: clock.sleep });
    for (let i = 0; i < 100; i++) await b.take(1_000_000);
    // 100 MB at 10 MB/s is 10 s, less the initial full bucket (0.1 s).
    assert.ok(Math.abs(clock.time - 9_900) < 2, `took ${clock.time} ms`);
  });

  test('a request larger than the burst goes through and is paid back', async () => {
    const clock = virtualClock();
    const b = new TokenBucket(8e6, { burstBytes: 1000, now: clock.now, sleep: clock.sleep });
    await b.take(1_000_000);
    await b.take(1);
    assert.ok(clock.time >= 999, `took ${clock.time} ms`);
  });

  test('10m stays within 3% over every 10 s window (a 4 MiB burst floor made it uneven)', async () => {
    const clock = virtualClock();
    const b = new TokenBucket(10e6, { now: clock.now, sleep: clock.sleep });
    // Slices as a paced write sends them; the sender ends at 30 s of virtual time.
    const sent: [number, number][] = [];
    let total = 0;
    while (clock.time < 30_000) {
      await b.take(128 * 1024);
      total += 128 * 1024;
      sent.push([clock.time, total]);
    }
    const at = (t: number): number => sent.filter(([ts]) => ts <= t).pop()?.[1] ?? 0;
    for (let from = 0; from <= 20_000; from += 500) {
      const bits = (at(from + 10_000) - at(from)) * 8;
      const err = Math.abs(bits / 10 - 10e6) / 10e6;
      assert.ok(err <= 0.03, `window at ${from} ms: ${(bits / 10 / 1e6).toFixed(2)} Mb/s`);
    }
  });

  test('waits are cancellable', async () => {
    const clock = virtualClock();
    const b = new TokenBucket(8, { burstBytes: 1, now: clock.now, sleep: clock.sleep });
    await b.take(1);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await assert.rejects(b.take(1, ac.signal), /stop/);
  });
});
