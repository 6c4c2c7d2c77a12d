/**
 * One token bucket shared by every stream of a session (after Syncthing's limiter.go).
 * Tokens are bytes. The bucket holds at most `burst` bytes, so a session that sat idle can
 * send at most that much at once before settling at the target rate.
 */
export interface RateLimiter {
  /** Waits until `bytes` may be sent; rejects with the signal's reason when aborted. */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
}

export const unlimited: RateLimiter = {
  take: () => Promise.resolve(),
};

export class TokenBucket implements RateLimiter {
  private tokens: number;
  private last: number;
  private readonly bytesPerMs: number;
  private readonly burst: number;
  /** Waiters are served in order so one big request cannot be starved by small ones. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    bitsPerSecond: number,
    opts: {
      burstBytes?: number;
      now?: () => number;
      sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
    } = {},
  ) {
    this.bytesPerMs = bitsPerSecond / 8 / 1000;
    // A burst of 200 ms of traffic, at least 256 KiB (two of the slices a paced write
    // sends, see Endpoint.write). Small enough that a 10 s window stays within 2% even if
    // a whole burst lands in it, and the old floor of one 4 MiB piece (3.4 s of budget at
    // 10 Mb/s) is gone; large enough that tokens a short stall leaves unused (all lanes
    // waiting for the peer, on a loaded machine) are caught up rather than lost: with
    // 50 ms a pull over the daemon fell 5-7% short at 50m-100m. A request larger than the
    // burst (an unpaced 8 MiB batch) still passes, in debt, so the long-run rate holds.
    this.burst = opts.burstBytes ?? Math.max(256 * 1024, this.bytesPerMs * 200);
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? defaultSleep;
    this.tokens = this.burst;
    this.last = this.now();
  }

  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(() => this.consume(bytes, signal));
    // Keep the chain alive even if this waiter is aborted.
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async consume(bytes: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.refill();
    // A request larger than the bucket goes through once the bucket is full, leaving it in
    // debt (negative), which later requests pay off: the long-run rate stays exact.
    while (this.tokens < Math.min(bytes, this.burst)) {
      const missing = Math.min(bytes, this.burst) - this.tokens;
      await this.sleep(Math.max(1, missing / this.bytesPerMs), signal);
      this.refill();
    }
    this.tokens -= bytes;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.last) * this.bytesPerMs);
    this.last = t;
  }
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
