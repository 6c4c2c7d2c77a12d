/**
 * The three-way reconcile of a bidirectional session, a pure function (after Mutagen's
 * core.Reconcile): each side's changes since its own snapshot (old = the snapshot entry,
 * new = the disk now) go in; one one-way plan per receiving side and the conflicts come out.
 * No I/O, no clock (the caller passes the time stamp used to name kept copies).
 *
 * What only one side changed is handed to the one-way reconcile (reconcile.ts) with that
 * side as sender and an untouched receiver, so push, pull and bidi share one set of rules
 * for renames, kind changes and metadata. What both sides changed is decided here:
 *
 * | local                     | remote                    | decision                                     |
 * |---------------------------|---------------------------|----------------------------------------------|
 * | changed                   | unchanged                 | propagate to remote                          |
 * | unchanged                 | changed                   | propagate to local                           |
 * | deleted                   | deleted                   | forget the record on both sides              |
 * | same content (any meta)   | same content              | no conflict: metadata of the newer copy      |
 * |                           |                           | (local on a tie) is applied, both synced     |
 * | modified / added          | modified / added, differs | CONFLICT (both copies kept, state Conflict); |
 * |                           |                           | a policy or a stored resolution picks a copy |
 * | deleted                   | modified (file or kind)   | the modified copy wins: sent back to local   |
 * | deleted directory         | directory, metadata only  | the delete wins; anything changed or added   |
 * |                           |                           | below it is kept and sent back (own rows)    |
 * | deleted directory         | a path below it changed   | the changed paths survive on both sides, with |
 * |                           |                           | their directories re-created and tracked     |
 * |                           |                           | (revive); the rest of the tree is deleted    |
 * | directory                 | file or link (differs)    | CONFLICT, whatever the policy (a directory   |
 * |                           |                           | is never replaced wholesale); paths below    |
 * |                           |                           | the conflict wait with it                    |
 * | renamed F -> T            | nothing at/in/above F, T  | propagate the rename                         |
 * | renamed F -> T            | changed F (or in F, or T) | no rename: T is added, F is deleted, and the |
 * |                           |                           | rows above decide (rename vs modify keeps    |
 * |                           |                           | both: the moved copy at T, the edit at F)    |
 * | renamed F -> T1           | renamed F -> T2           | both demoted: T1 and T2 exist on both sides, |
 * |                           |                           | F is forgotten (no version is dropped)       |
 * | renamed F -> T            | renamed F -> T            | same content at T: no conflict, F forgotten  |
 * | renamed F -> T            | added something else at T | T is in conflict; F is deleted remotely      |
 *
 * The mirrored rows (local and remote swapped) are decided the same way; docs/RECONCILE.md
 * has this table with the one-way one, and test/core/reconcile-bidi.test.ts a test per row.
 * A stored resolution (asyncadmin --resolve) outranks the policy for its path.
 *
 * Policies for a conflict between two files or links: `conflict` (leave both, the default
 * and Aspera's behaviour), `newer` / `older` (the copy with the later / earlier mtime wins,
 * local on a tie), `local` / `remote`, `keep-both` (the newer copy keeps the path, the older
 * one is moved aside to `name.conflict-<side>-<stamp>.ext` and reaches the other side too).
 */
import type { Change } from './change.js';
import { mergeByPath } from './change.js';
import type { Entry } from './entry.js';
import { sameContent, withPath } from './entry.js';
import type { BidiPlan, Conflict, Op, Plan, Side } from './plan.js';
import { baseName, comparePaths, depthOf, isWithin, joinRel, parentOf } from './paths.js';
import { PathIndex, ancestorsOf } from './path-index.js';
import { reconcileOneWay } from './reconcile.js';

export type ConflictPolicy = 'conflict' | 'newer' | 'older' | 'local' | 'remote' | 'keep-both';

/** What a user decided for a conflicting path (asyncadmin --resolve PATH --keep ...). */
export type Keep = 'local' | 'remote' | 'both';

export interface BidiInput {
  /** The local side's changes since its snapshot, renames detected. */
  readonly local: readonly Change[];
  /** The remote side's changes since its snapshot, renames detected. */
  readonly remote: readonly Change[];
  readonly policy: ConflictPolicy;
  /** Stored decisions by path; applied when the path is in conflict, cleared either way. */
  readonly resolutions?: ReadonlyMap<string, Keep>;
  /** Names kept copies (keep-both), e.g. '20261121T142000Z'. */
  readonly stamp: string;
}

const CONFLICT_MARK = /\.conflict-(?:local|remote)-\d{8}T\d{6}Z(?:-\d+)?/g;

/**
 * The name a losing copy is kept under: `a/name.conflict-remote-<stamp>.ext`. A name that
 * already carries a conflict mark loses it first, so a kept copy never becomes a conflict
 * of a conflict; `taken` makes the name unique among the paths this plan knows.
 */
export function asideName(path: string, side: Side, stamp: string, taken: (p: string) => boolean) {
  for (let n = 0; ; n++) {
    const p = asideNameAt(path, side, stamp, n);
    if (!taken(p)) return p;
  }
}

/** The n-th candidate of asideName (n = 0: no counter). */
export function asideNameAt(path: string, side: Side, stamp: string, n: number): string {
  const base = baseName(path).replace(CONFLICT_MARK, '');
  const dot = base.lastIndexOf('.');
  const stem = dot > 0 ? base.slice(0, dot) : base;
  const ext = dot > 0 ? base.slice(dot) : '';
  return joinRel(parentOf(path), `${stem}.conflict-${side}-${stamp}${n > 0 ? `-${n}` : ''}${ext}`);
}

/** True for a directory that stayed a directory: only its metadata (or mtime) changed. */
function dirMetaOnly(c: Change): boolean {
  return c.old?.kind === 'dir' && c.new?.kind === 'dir';
}

/**
 * Keeps the renames of `mine` that `theirs` did not touch; the others become an add at the
 * new place (a whole subtree for a directory, listed in `subtrees`) and a delete at the old
 * one. Changes found below a demoted directory become plain adds.
 */
function demoteRenames(
  mine: readonly Change[],
  theirs: readonly Change[],
  subtrees: Set<string>,
): Change[] {
  if (!mine.some((c) => c.from !== undefined)) return [...mine];
  const theirPaths = new PathIndex(theirs.map((c) => c.path));
  const froms = theirs.flatMap((c) => (c.from !== undefined ? [c.from] : []));
  const theirFroms = new PathIndex(froms);
  const fromSet = new Set(froms);
  const theirByPath = new Map(theirs.map((c) => [c.path, c]));
  // Touched: anything the other side changed at or below F or T, a rename of theirs that
  // starts near F or T, or a parent of F or T that they deleted, replaced or moved (a
  // parent whose metadata alone changed, say its mtime as a child came or went, does not).
  const touched = (f: string, t: string): boolean => {
    if (theirPaths.anyWithin(f) || theirPaths.anyWithin(t)) return true;
    if (theirFroms.anyWithin(f) || theirFroms.anyWithin(t)) return true;
    for (const a of [...ancestorsOf(f), ...ancestorsOf(t)]) {
      const c = theirByPath.get(a);
      if (c !== undefined && (!dirMetaOnly(c) || c.from !== undefined)) return true;
      if (fromSet.has(a)) return true;
    }
    return false;
  };
  const demoted = new Set<string>();
  for (const c of mine) if (c.from !== undefined && touched(c.from, c.path)) demoted.add(c.path);
  if (demoted.size === 0) return [...mine];
  const under = (p: string): string | undefined =>
    demoted.has(p) ? p : ancestorsOf(p).find((a) => demoted.has(a));
  const out: Change[] = [];
  const deletes = new Map<string, Change>();
  for (const c of mine) {
    const d = under(c.path);
    if (d === undefined) {
      out.push(c);
      continue;
    }
    if (c.new === null) continue; // gone below a moved tree: the delete at F covers it
    if (c.path === d) {
      if (c.new.kind === 'dir') subtrees.add(c.path);
      if (c.from !== undefined && c.old !== null && under(c.from) === undefined)
        deletes.set(c.from, { path: c.from, old: withPath(c.old, c.from), new: null });
    } else if (c.new.kind === 'dir' && c.from !== undefined) {
      subtrees.add(c.path);
    }
    out.push({ path: c.path, old: null, new: c.new });
  }
  const present = new Set(out.map((c) => c.path));
  for (const [p, del] of deletes) if (!present.has(p)) out.push(del);
  return out;
}

function createOp(n: Entry, expect: Entry | null): Op {
  return n.kind === 'dir'
    ? { op: 'restore', path: n.path, expect }
    : { op: 'send', path: n.path, entry: n, expect };
}

class PlanBuilder {
  readonly renames: Op[] = [];
  readonly deletes: Op[] = [];
  readonly creates: Op[] = [];
  readonly restores: Op[] = [];
  readonly asides: Op[] = [];
  readonly forget: string[] = [];
  readonly notes: { path: string; message: string }[] = [];

  add(op: Op): void {
    switch (op.op) {
      case 'rename':
        this.renames.push(op);
        break;
      case 'delete':
        this.deletes.push(op);
        break;
      case 'restore':
        this.restores.push(op);
        break;
      case 'aside':
        this.asides.push(op);
        break;
      default:
        this.creates.push(op);
    }
  }

  merge(p: Plan): void {
    for (const o of p.ops) this.add(o);
    this.forget.push(...p.forget);
    this.notes.push(...p.notes);
  }

  build(): Plan {
    this.deletes.sort((a, b) => depthOf(b.path) - depthOf(a.path) || comparePaths(a.path, b.path));
    this.creates.sort((a, b) => comparePaths(a.path, b.path));
    this.restores.sort((a, b) => comparePaths(a.path, b.path));
    return {
      ops: [...this.asides, ...this.renames, ...this.deletes, ...this.creates, ...this.restores],
      forget: this.forget,
      notes: this.notes,
    };
  }
}

export function reconcileBidi(input: BidiInput): BidiPlan {
  const subL = new Set<string>();
  const subR = new Set<string>();
  const lc = demoteRenames(input.local, input.remote, subL);
  const rc = demoteRenames(input.remote, input.local, subR);
  // Perf: lookups by path (revive, kept copies' names, what changed below a directory) are
  // rare; their maps and indexes are built on first use, not for every million-path run.
  let byPathL: Map<string, Change> | undefined;
  let byPathR: Map<string, Change> | undefined;
  const L = (): Map<string, Change> => (byPathL ??= new Map(lc.map((c) => [c.path, c])));
  const R = (): Map<string, Change> => (byPathR ??= new Map(rc.map((c) => [c.path, c])));
  const toRemote = new PlanBuilder();
  const toLocal = new PlanBuilder();
  const conflicts: Conflict[] = [];
  const resolved = new Set<string>(input.resolutions?.keys() ?? []);
  let knownPaths: Set<string> | undefined;
  const known = (): Set<string> => (knownPaths ??= new Set([...L().keys(), ...R().keys()]));
  // The changes decided below as changed on both sides, by index in lc and rc.
  const handledL = new Uint8Array(lc.length);
  const handledR = new Uint8Array(rc.length);
  const builderTo = (side: Side): PlanBuilder => (side === 'remote' ? toRemote : toLocal);
  const other = (side: Side): Side => (side === 'local' ? 'remote' : 'local');
  const subtree = (side: Side, path: string): boolean => (side === 'local' ? subL : subR).has(path);
  /**
   * The deleting side gets back the directory `dir` and every directory between it and a
   * path the other side changed below it, so each path that travels back has tracked
   * parents on both sides. A directory the other side did not change itself is described
   * by `like` (its snapshot entry); the next run settles its metadata.
   */
  const revive = (deleter: Side, dir: string, like: Entry): void => {
    const keeper = other(deleter);
    if (!changedBelow(keeper, dir)) return;
    const theirs = keeper === 'local' ? L() : R();
    const dirs = new Set<string>([dir]);
    for (const p of significant(keeper).within(dir)) {
      if (p === dir) continue;
      for (let a = parentOf(p); a !== dir && isWithin(a, dir); a = parentOf(a)) dirs.add(a);
    }
    for (const d of dirs) {
      const own = theirs.get(d);
      // The keeper's own add or replacement creates it.
      if (d !== dir && own?.new != null && !dirMetaOnly(own)) continue;
      const entry = own?.new?.kind === 'dir' ? own.new : withPath(like, d);
      builderTo(deleter).add({ op: 'mkdir', path: d, entry, expect: null });
    }
  };
  // Paths whose change keeps a deleted parent alive: anything but a deletion or a change
  // of a directory's metadata.
  const sig: Partial<Record<Side, PathIndex>> = {};
  const significant = (side: Side): PathIndex =>
    (sig[side] ??= new PathIndex(
      (side === 'local' ? lc : rc)
        .filter((c) => c.new !== null && !dirMetaOnly(c))
        .map((c) => c.path),
    ));
  const changedBelow = (side: Side, dir: string): boolean => significant(side).anyBelow(dir);

  // The paths both sides changed, in path order (a merge of the two sorted lists).
  mergeByPath(lc, rc, (i, j) => {
    if (i < 0 || j < 0) return;
    handledL[i] = 1;
    handledR[j] = 1;
    bothChanged(lc[i]!, rc[j]!);
  });

  function bothChanged(l: Change, r: Change): void {
    const path = l.path;
    const ln = l.new;
    const rn = r.new;
    if (ln === null && rn === null) {
      toRemote.forget.push(path);
      return;
    }
    if (ln !== null && rn !== null && sameContent(ln, rn)) {
      // Identical on both sides: no conflict. A directory that arrived as a whole moved
      // tree still needs its contents; otherwise the newer copy's metadata is applied.
      if (ln.kind === 'dir' && (subtree('local', path) || subtree('remote', path))) {
        if (subtree('local', path)) toRemote.add({ op: 'restore', path });
        if (subtree('remote', path)) toLocal.add({ op: 'restore', path });
      } else if (rn.mtimeMs > ln.mtimeMs) {
        toLocal.add({ op: 'attrs', path, entry: rn, expect: ln });
      } else {
        toRemote.add({ op: 'attrs', path, entry: ln, expect: rn });
      }
      return;
    }
    if (ln === null || rn === null) {
      const keptSide: Side = ln === null ? 'remote' : 'local';
      const kept = (ln ?? rn)!;
      const keptChange = keptSide === 'local' ? l : r;
      const gone = keptSide === 'local' ? r : l;
      const deleterSide = other(keptSide);
      if (dirMetaOnly(keptChange) && gone.old?.kind === 'dir') {
        // A directory deleted on one side whose metadata changed on the other (adding a
        // file changes a directory's mtime): the delete goes ahead; the receiver keeps
        // what changed below it, and those paths travel back on their own.
        builderTo(keptSide).add({ op: 'delete', path });
        // What changed below survives the delete, so its directory must exist on both
        // sides and be tracked there (a path is never recorded under an untracked parent).
        revive(deleterSide, path, kept);
        builderTo(keptSide).notes.push({
          path,
          message: `deleted on the ${deleterSide} side: deleted on the ${keptSide} side too, except what changed below it`,
        });
        return;
      }
      builderTo(deleterSide).add(createOp(kept, null));
      builderTo(deleterSide).notes.push({
        path,
        message: `deleted on the ${deleterSide} side but changed on the ${keptSide} side: the changed copy is kept on both`,
      });
      return;
    }
    // Both present with different content.
    const isDirConflict = (ln.kind === 'dir') !== (rn.kind === 'dir');
    const stored = input.resolutions?.get(path);
    let keep: Keep | undefined = stored;
    if (keep === undefined) {
      switch (input.policy) {
        case 'conflict':
          break;
        case 'local':
        case 'remote':
          keep = input.policy;
          break;
        case 'keep-both':
          keep = 'both';
          break;
        case 'newer':
          keep = rn.mtimeMs > ln.mtimeMs ? 'remote' : 'local';
          break;
        case 'older':
          keep = rn.mtimeMs < ln.mtimeMs ? 'remote' : 'local';
          break;
      }
    }
    if (keep === undefined || isDirConflict) {
      conflicts.push({
        path,
        local: ln,
        remote: rn,
        message: isDirConflict
          ? `a ${ln.kind} on the local side, a ${rn.kind} on the remote side: resolve by hand`
          : 'changed on both sides',
      });
      return;
    }
    let winner: Side;
    if (keep === 'both') {
      winner = rn.mtimeMs > ln.mtimeMs ? 'remote' : 'local';
      const loser = other(winner);
      const loserEntry = loser === 'local' ? ln : rn;
      const to = asideName(path, loser, input.stamp, (p) => known().has(p));
      known().add(to);
      builderTo(loser).add({ op: 'aside', path, to, expect: loserEntry });
      builderTo(loser).add(createOp(winner === 'local' ? ln : rn, null));
      builderTo(loser).notes.push({
        path,
        message: `conflict: the ${winner} copy kept the name, the ${loser} copy is kept as ${to}`,
      });
      return;
    }
    winner = keep;
    const w = winner === 'local' ? ln : rn;
    const lose = winner === 'local' ? rn : ln;
    const b = builderTo(other(winner));
    if (w.kind !== lose.kind) {
      b.add({ op: 'delete', path, expect: lose });
      b.add(createOp(w, null));
    } else {
      b.add(createOp(w, lose));
    }
    b.notes.push({
      path,
      message: `conflict resolved${stored !== undefined ? ' (asyncadmin --resolve)' : ` (${input.policy})`}: the ${winner} copy wins`,
    });
  }

  // What only one side changed, minus what waits below a conflict.
  const conflictPaths = new Set(conflicts.map((c) => c.path));
  const blocked = (p: string): boolean =>
    conflictPaths.size > 0 && ancestorsOf(p).some((a) => conflictPaths.has(a));
  const onlyL = lc.filter((c, i) => handledL[i] === 0 && !blocked(c.path));
  const onlyR = rc.filter((c, i) => handledR[i] === 0 && !blocked(c.path));
  const oneWay = (changes: Change[], subs: Set<string>, receiver: readonly Change[]): Plan => {
    const p = reconcileOneWay({ sender: changes, receiver: [], overwrite: 'always' });
    // Below a directory the receiver deleted, a metadata-only change has nothing left to
    // adjust: the whole object travels (a change wins over a delete).
    const goneDirs = new Set(
      receiver.filter((c) => c.new === null && c.old?.kind === 'dir').map((c) => c.path),
    );
    const underGone = (path: string): boolean => ancestorsOf(path).some((a) => goneDirs.has(a));
    // A directory added as a moved tree carries unchanged contents the change list does
    // not name: the engine lists them from the sender (restore).
    return {
      ...p,
      ops: p.ops.flatMap((o): Op[] => {
        if (o.op === 'mkdir' && subs.has(o.path)) return [{ op: 'restore', path: o.path }];
        if (o.op === 'attrs' && underGone(o.path))
          // A directory whose metadata alone changed goes with the delete (revive() brings
          // it back if it holds changes); a file's change wins over the delete.
          return o.entry.kind === 'dir'
            ? []
            : [{ op: 'send', path: o.path, entry: o.entry, expect: null }];
        return [o];
      }),
    };
  };
  // A directory deleted on one side while the other changed something below it: the
  // delete goes ahead there (keeping what changed), and the deleting side gets the
  // directory back, tracked, to hold what travels back.
  for (const [side, list] of [
    ['local', onlyL],
    ['remote', onlyR],
  ] as const) {
    for (const c of list) {
      if (c.new !== null || c.old?.kind !== 'dir' || !changedBelow(other(side), c.path)) continue;
      revive(side, c.path, c.old);
      builderTo(other(side)).notes.push({
        path: c.path,
        message: `deleted on the ${side} side, but paths below it changed on the ${other(side)} side: those are kept on both`,
      });
    }
  }
  toRemote.merge(oneWay(onlyL, subL, rc));
  toLocal.merge(oneWay(onlyR, subR, lc));
  return {
    toRemote: toRemote.build(),
    toLocal: toLocal.build(),
    conflicts: conflicts.sort((a, b) => comparePaths(a.path, b.path)),
    resolved: [...resolved].sort(comparePaths),
  };
}
