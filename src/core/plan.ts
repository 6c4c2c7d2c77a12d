/**
 * A plan is what reconcile decides for one run, as data: the operations for the receiving
 * side, in the order they are applied, and the snapshot bookkeeping for both sides.
 *
 * `expect` on an operation is the receiver's own view of the path when its scan ran (null:
 * absent; undefined: unchanged since its snapshot). The receiver re-checks it just before
 * touching the path, so an edit made during the run is reported, not overwritten.
 */
import type { Entry } from './entry.js';

export type Op =
  /** Move the receiver's object at `from` to `path` (a whole subtree for a directory). */
  | { readonly op: 'rename'; readonly from: string; readonly path: string; readonly entry: Entry }
  /** Delete at the receiver; for a directory, every tracked and unchanged path below it. */
  | { readonly op: 'delete'; readonly path: string; readonly expect?: Entry | null }
  | {
      readonly op: 'mkdir';
      readonly path: string;
      readonly entry: Entry;
      readonly expect?: Entry | null;
    }
  /** Transfer a file's data (or create a symlink) from the sender. */
  | {
      readonly op: 'send';
      readonly path: string;
      readonly entry: Entry;
      readonly expect?: Entry | null;
    }
  /** Same content on both sides: set metadata only and record the path as synced. */
  | {
      readonly op: 'attrs';
      readonly path: string;
      readonly entry: Entry;
      readonly expect?: Entry | null;
    }
  /**
   * The receiver changed or lost a path that the sender did not touch: the engine looks
   * up the sender's current state of `path` (a whole subtree for a directory) and sends it.
   */
  | { readonly op: 'restore'; readonly path: string; readonly expect?: Entry | null }
  /**
   * Bidi keep-both: move the receiver's own copy at `path` to the new name `to` (if it still
   * is `expect`), untracked, so the winner's copy can take `path` and nothing is lost.
   */
  | { readonly op: 'aside'; readonly path: string; readonly to: string; readonly expect: Entry };

export interface Plan {
  /** Applied in this order: renames, deletes (deepest first), mkdirs, sends/attrs, restores. */
  readonly ops: readonly Op[];
  /** Paths whose records both sides drop without touching the disk. */
  readonly forget: readonly string[];
  /** Decisions a user should hear about (a receiver copy kept, a newer file not replaced). */
  readonly notes: readonly { readonly path: string; readonly message: string }[];
}

/** Which end of a session a bidi decision is about (the -d side is 'local'). */
export type Side = 'local' | 'remote';

/** A path changed differently on both sides and left as it is for the user (or a policy). */
export interface Conflict {
  readonly path: string;
  readonly local: Entry | null;
  readonly remote: Entry | null;
  /** Why it is a conflict, for asyncadmin and the run's output. */
  readonly message: string;
}

/**
 * A bidirectional plan: one one-way plan per receiving side, so the engine runs the same
 * execute machinery twice (local -> remote, then remote -> local). One-way runs use a
 * plain Plan.
 */
export interface BidiPlan {
  /** Operations applied at the remote side, local being the sender. */
  readonly toRemote: Plan;
  /** Operations applied at the local side, the remote being the sender. */
  readonly toLocal: Plan;
  /** Paths left in state Conflict on both sides. */
  readonly conflicts: readonly Conflict[];
  /** Paths whose stored resolution (asyncadmin --resolve) this plan applies. */
  readonly resolved: readonly string[];
}

export function countOps(plan: Plan): Record<Op['op'], number> {
  const n = { rename: 0, delete: 0, mkdir: 0, send: 0, attrs: 0, restore: 0, aside: 0 };
  for (const o of plan.ops) n[o.op]++;
  return n;
}
