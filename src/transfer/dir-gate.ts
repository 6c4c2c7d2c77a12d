/**
 * Directories made while file data moves: the engine makes a run's new directories in
 * chunks while the pump already sends, and each batch waits here (PumpOptions.placeable)
 * until the directories its files land in are made.
 */
import { parentOf } from '../core/paths.js';
import type { Segment } from './batches.js';

/**
 * The directories a run makes while its file data already moves (engine/run.ts, steps 3
 * and 4): a batch of files is placeable once none of its files' parents is still to be
 * made. Directories are made parents first, so a made parent has made ancestors.
 */
export class DirGate {
  private readonly pending: Set<string>;
  private waiters: (() => void)[] = [];
  private failure: { reason: unknown } | undefined;

  constructor(dirs: readonly string[]) {
    this.pending = new Set(dirs);
  }

  /** Some directories are still to be made. */
  get making(): boolean {
    return this.pending.size > 0;
  }

  /** The directories of `ops` were made (or failed to be). */
  made(ops: readonly { readonly op: string; readonly path: string }[]): void {
    if (this.pending.size === 0) return;
    for (const o of ops) if (o.op === 'mkdir') this.pending.delete(o.path);
    this.wake();
  }

  /** Making the directories failed: every wait, now or later, rejects with `reason`. */
  fail(reason: unknown): void {
    this.failure = { reason };
    this.wake();
  }

  /** Undefined when `segments` may go now, else a promise of when they may. */
  ready(segments: readonly Segment[]): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure.reason);
    if (this.pending.size === 0 || !this.blocked(segments)) return undefined;
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.failure) reject(this.failure.reason);
        else if (this.blocked(segments)) this.waiters.push(check);
        else resolve();
      };
      this.waiters.push(check);
    });
  }

  private blocked(segments: readonly Segment[]): boolean {
    return segments.some((s) => this.pending.has(parentOf(s.entry.path)));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const check of w) check();
  }
}
