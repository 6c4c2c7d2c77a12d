/**
 * Changes are data: `{path, old, new}` where a missing `new` is a delete and a missing `old`
 * is an add. A rename carries `from`, the path the object had in the snapshot. Applying a
 * side's changes to its old snapshot gives its new state (see applyChanges, used by tests).
 */
import type { Entry } from './entry.js';
import { sameLocalState, withPath } from './entry.js';
import { comparePaths, depthOf, isWithin, rebase } from './paths.js';

export interface Change {
  readonly path: string;
  readonly old: Entry | null;
  readonly new: Entry | null;
  /** For renames: the snapshot path of the object now at `path`. */
  readonly from?: string;
}

/** The states a path can have in a snapshot, as asyncadmin shows them. */
export type PathState = 'synced' | 'pending' | 'conflict' | 'error';

/** One snapshot row: the entry as last synced (null if it never was) and its state. */
export interface SnapshotRecord {
  readonly path: string;
  readonly entry: Entry | null;
  readonly state: PathState;
  readonly message?: string;
}

/**
 * Diffs the children of one directory: `before` from the snapshot, `after` from the disk.
 * A record not in state synced always yields a change, so a failed path is retried.
 */
export function diffChildren(before: readonly SnapshotRecord[], after: readonly Entry[]): Change[] {
  const out: Change[] = [];
  const old = new Map<string, SnapshotRecord>();
  for (const r of before) old.set(r.path, r);
  for (const e of after) {
    const r = old.get(e.path);
    if (r === undefined) {
      out.push({ path: e.path, old: null, new: e });
      continue;
    }
    old.delete(e.path);
    if (r.entry === null || r.state !== 'synced' || !sameLocalState(r.entry, e)) {
      out.push({ path: e.path, old: r.entry, new: e });
    }
  }
  for (const r of old.values()) {
    // A record that was never synced and is gone now still yields a change, so that
    // its row is dropped.
    out.push({ path: r.path, old: r.entry, new: null });
  }
  return out;
}

/**
 * Finds renames among one side's changes: an added object whose inode is that of a deleted
 * one, of the same kind (and, for files, the same size and mtime) was moved.
 *
 * A scan reports a vanished directory as one delete, without its contents. When such a
 * directory turns out to be renamed, its snapshot contents (from `descendantsOf`) are
 * rebased under the new name and diffed against what the scan found there, so a renamed
 * directory of 100k files costs one rename, not 100k resends. Directories are matched
 * outermost first, which also finds renames nested inside renamed directories. A rename is
 * safe to apply even if an inode number was reused: whatever differs below it is diffed.
 *
 * Files moved out of a directory that was deleted as a whole are not matched (that would
 * need the contents of every deleted directory); they are sent again.
 */
export function detectRenames(
  changes: readonly Change[],
  descendantsOf: (snapshotPath: string) => readonly Entry[],
): Change[] {
  interface Gone {
    /** Where the object would be now, after the renames found so far. */
    path: string;
    /** Where the snapshot has it, for descendantsOf. */
    snapPath: string;
    old: Entry;
    /** True once its descendants are in `gone` themselves (or it has none to list). */
    expanded: boolean;
  }
  const gone = new Map<string, Gone>();
  const byIno = new Map<number, Set<string>>();
  const index = (g: Gone): void => {
    gone.set(g.path, g);
    let set = byIno.get(g.old.ino);
    if (!set) byIno.set(g.old.ino, (set = new Set()));
    set.add(g.path);
  };
  const unindex = (g: Gone): void => {
    gone.delete(g.path);
    byIno.get(g.old.ino)?.delete(g.path);
  };
  for (const c of changes)
    if (c.new === null && c.old !== null)
      index({ path: c.path, snapPath: c.path, old: c.old, expanded: c.old.kind !== 'dir' });
  // Perf: nothing deleted (a first scan, a reset: a million adds) means nothing renamed.
  if (gone.size === 0) return [...changes];
  const adds: Change[] = [];
  const rest: Change[] = [];
  for (const c of changes) {
    if (c.new === null && c.old !== null) continue;
    if (c.old === null && c.new !== null) adds.push(c);
    else rest.push(c);
  }
  if (adds.length === 0) return [...changes];

  const take = (ino: number, match: (old: Entry) => boolean): Gone | undefined => {
    const set = byIno.get(ino);
    if (!set) return undefined;
    for (const p of set) {
      const g = gone.get(p);
      if (g && match(g.old)) {
        unindex(g);
        return g;
      }
    }
    return undefined;
  };

  const renames: Change[] = [];
  const remaining: Change[] = [];
  const sorted = [...adds].sort(
    (a, b) => depthOf(a.path) - depthOf(b.path) || comparePaths(a.path, b.path),
  );
  for (const a of sorted) {
    const n = a.new!;
    // An add that meets a (rebased) delete at its own path is the same place, modified.
    const d =
      n.kind === 'dir' && !gone.has(a.path) ? take(n.ino, (o) => o.kind === 'dir') : undefined;
    if (!d) {
      remaining.push(a);
      continue;
    }
    renames.push({ path: a.path, old: withPath(d.old, a.path), new: n, from: d.path });
    if (d.expanded) {
      for (const g of [...gone.values()]) {
        if (!isWithin(g.path, d.path)) continue;
        unindex(g);
        index({
          ...g,
          path: rebase(g.path, d.path, a.path),
          old: withPath(g.old, rebase(g.path, d.path, a.path)),
        });
      }
    } else {
      for (const e of descendantsOf(d.snapPath)) {
        const np = rebase(e.path, d.snapPath, a.path);
        index({ path: np, snapPath: e.path, old: withPath(e, np), expanded: true });
      }
    }
  }

  const out: Change[] = [...rest, ...renames];
  const modified: Change[] = [];
  for (const a of remaining) {
    const n = a.new!;
    const here = gone.get(a.path);
    if (here) {
      unindex(here);
      if (!sameLocalState(here.old, n)) modified.push({ path: a.path, old: here.old, new: n });
      continue;
    }
    const d =
      n.kind === 'dir'
        ? undefined
        : take(
            n.ino,
            (o) =>
              o.kind === n.kind &&
              (n.kind !== 'file' || (o.size === n.size && o.mtimeMs === n.mtimeMs)),
          );
    if (d) {
      out.push({ path: a.path, old: withPath(d.old, a.path), new: n, from: d.path });
    } else {
      modified.push(a);
    }
  }
  out.push(...modified);
  // What is left is deleted. Below a deleted directory nothing more needs saying.
  const left = [...gone.values()].sort((a, b) => comparePaths(a.path, b.path));
  let lastDir: string | undefined;
  for (const g of left) {
    if (lastDir !== undefined && isWithin(g.path, lastDir)) continue;
    out.push({ path: g.path, old: g.old, new: null });
    if (g.old.kind === 'dir') lastDir = g.path;
  }
  return out;
}

/**
 * Walks two lists of paths' changes side by side in comparePaths order: `visit` is called
 * once per path, with the index of its change in each list (-1 where that list has none).
 * Each list holds a path at most once.
 *
 * Perf: a reset has every path in both lists. Hash maps of a million fresh path strings
 * cost about 0.6 s per map to build and as much to query; a scan hands its changes over in
 * comparePaths order, which pathOrder() confirms in one pass each.
 */
export function mergeByPath(
  a: readonly { readonly path: string }[],
  b: readonly { readonly path: string }[],
  visit: (i: number, j: number) => void,
): void {
  const ia = pathOrder(a);
  const ib = pathOrder(b);
  let x = 0;
  let y = 0;
  while (x < a.length || y < b.length) {
    const i = x < a.length ? (ia ? ia[x] : x) : undefined;
    const j = y < b.length ? (ib ? ib[y] : y) : undefined;
    if (j === undefined) {
      visit(i!, -1);
      x++;
      continue;
    }
    if (i === undefined) {
      visit(-1, j);
      y++;
      continue;
    }
    const pa = a[i]!.path;
    const pb = b[j]!.path;
    const c = pa === pb ? 0 : comparePaths(pa, pb);
    if (c <= 0) x++;
    if (c >= 0) y++;
    visit(c <= 0 ? i : -1, c >= 0 ? j : -1);
  }
}

/**
 * The indices of `list` in comparePaths order, or undefined when the list already is in
 * that order (Perf: one pass of comparisons, no index array to sort: what a scan hands over).
 */
function pathOrder(list: readonly { readonly path: string }[]): number[] | undefined {
  let sorted = true;
  for (let i = 1; i < list.length && sorted; i++)
    sorted = comparePaths(list[i - 1]!.path, list[i]!.path) < 0;
  if (sorted) return undefined;
  return list.map((_, i) => i).sort((x, y) => comparePaths(list[x]!.path, list[y]!.path));
}

/** Renames first in the order found (each may depend on an earlier one), then by path. */
export function orderChanges(changes: readonly Change[]): Change[] {
  const renames = changes.filter((c) => c.from !== undefined);
  const others = changes
    .filter((c) => c.from === undefined)
    .sort((a, b) => comparePaths(a.path, b.path));
  return [...renames, ...others];
}

/**
 * Applies one side's changes to a snapshot held as a map. Diff and apply are inverses:
 * applyChanges(old, detectRenames(diff(old, disk))) describes the disk.
 */
export function applyChanges(
  snapshot: ReadonlyMap<string, Entry>,
  changes: readonly Change[],
): Map<string, Entry> {
  const out = new Map(snapshot);
  for (const c of orderChanges(changes)) {
    if (c.from !== undefined) {
      for (const [p, e] of [...out]) {
        if (!isWithin(p, c.from)) continue;
        out.delete(p);
        const np = rebase(p, c.from, c.path);
        out.set(np, withPath(e, np));
      }
    }
    if (c.new === null) {
      for (const p of [...out.keys()]) if (isWithin(p, c.path)) out.delete(p);
    } else {
      out.set(c.path, c.new);
    }
  }
  return out;
}
