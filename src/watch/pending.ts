/**
 * The cooloff queue of one side: paths that changed and when, so that a file is sent only
 * once it stopped changing for --cooloff, and one that never settles is reported after
 * --cooloff-max. Pure bookkeeping: the clock is passed in.
 */
import { parentOf } from '../core/paths.js';

interface Times {
  /** First event since the path was last settled (or last reported as never settling). */
  first: number;
  /** Latest event. */
  last: number;
}

export class PendingPaths {
  private readonly paths = new Map<string, Times>();

  constructor(
    private readonly cooloffMs: number,
    private readonly cooloffMaxMs: number,
  ) {}

  get size(): number {
    return this.paths.size;
  }

  /** Records a change of `path` seen at `at`. */
  note(path: string, at: number): void {
    const t = this.paths.get(path);
    if (t) t.last = Math.max(t.last, at);
    else this.paths.set(path, { first: at, last: at });
  }

  /**
   * Keeps a change a pass held back pending past that pass, due when whatever held it
   * settles: the latest event among its paths (a move's two ends) and the pending
   * directories above them becomes their time. Not the time of the pass: being looked at
   * is not a change, and restarting the cooloff from the pass made a file written while
   * another pass ran wait a second cooloff (p50 latency ~2x --cooloff). Not left as it
   * was either: a path whose own cooloff had elapsed, held only because a directory above
   * it was hot, would be forgotten by this pass's settle() and never looked at again.
   * `at` is the time for a change with nothing pending along its paths.
   */
  hold(paths: readonly string[], at: number): void {
    let last: number | undefined;
    for (const p of paths) {
      for (let q: string | undefined = p; q !== undefined; q = q === '' ? undefined : parentOf(q)) {
        const t = this.paths.get(q);
        if (t && (last === undefined || t.last > last)) last = t.last;
      }
    }
    const when = last ?? at;
    for (const p of paths) this.note(p, when);
  }

  /** True when an event for `path` is pending. */
  has(path: string): boolean {
    return this.paths.has(path);
  }

  /** True while `path` changed less than the cooloff ago. */
  isHot(path: string, now: number): boolean {
    const t = this.paths.get(path);
    return t !== undefined && now - t.last < this.cooloffMs;
  }

  /** True when some path has settled and waits for a pass. */
  hasDue(now: number): boolean {
    for (const t of this.paths.values()) if (now - t.last >= this.cooloffMs) return true;
    return false;
  }

  /** When the next path settles or is overdue; undefined when nothing is pending. */
  nextWake(): number | undefined {
    let w: number | undefined;
    for (const t of this.paths.values()) {
      const at = Math.min(t.last + this.cooloffMs, t.first + this.cooloffMaxMs);
      if (w === undefined || at < w) w = at;
    }
    return w;
  }

  /**
   * The directories a scoped pass lists: each pending path itself (a directory whose mode
   * changed may have become readable) and its parent (where it was added, changed, renamed
   * or deleted). Not the grandparent: the parent's new modification time waits for the next
   * pass that lists it (Perf: listing a wide top level on every pass costs seconds). Hot paths are listed too, so both halves of a move are seen in
   * the same pass; the pass then holds the move back as a whole while either half is hot.
   */
  dirs(): string[] {
    const out = new Set<string>();
    for (const p of this.paths.keys()) {
      out.add(p);
      out.add(parentOf(p));
    }
    return [...out];
  }

  /** After a pass that started at `started`: forgets paths settled then and quiet since. */
  settle(started: number): void {
    for (const [p, t] of this.paths) if (started - t.last >= this.cooloffMs) this.paths.delete(p);
  }

  /**
   * Paths still changing --cooloff-max after their first event: returned once per period
   * (their clock restarts), so the caller reports them; they stay held back while hot.
   */
  overdue(now: number): string[] {
    const out: string[] = [];
    for (const [p, t] of this.paths) {
      if (now - t.first >= this.cooloffMaxMs && now - t.last < this.cooloffMs) {
        out.push(p);
        t.first = now;
      }
    }
    return out.sort();
  }

  clear(): void {
    this.paths.clear();
  }
}
