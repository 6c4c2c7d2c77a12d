/**
 * Reconcile is a pure function (after Mutagen's core.Reconcile): given what changed on each
 * side since its snapshot, it returns the plan. No I/O, no clock.
 *
 * One-way (push and pull) rules, where s is the sender's change and r the receiver's:
 *
 * | sender          | receiver               | decision                                        |
 * |-----------------|------------------------|-------------------------------------------------|
 * | changed         | unchanged              | propagate (send, mkdir, attrs, delete, rename)  |
 * | unchanged       | modified or deleted    | restore the sender's version at the receiver    |
 * | unchanged       | added (untracked)      | leave it alone; --mirror deletes it              |
 * | added/modified  | same content           | adopt: record as synced, fix metadata only      |
 * | added/modified  | different or deleted   | -o always: send; -o older: send if receiver's   |
 * |                 |                        | copy is older, else keep it and say so          |
 * | deleted         | deleted                | forget the record                               |
 * | deleted         | modified or added      | keep the receiver's copy, forget, say so        |
 * | renamed F -> T  | changed at F or at T   | no rename: T is sent, F handled as a delete     |
 * | unchanged       | renamed F -> T         | F is restored; T is left alone (untracked)      |
 *
 * "Same content" compares digests where both sides know them, else size and mtime.
 */
import type { Change } from './change.js';
import { mergeByPath } from './change.js';
import type { Entry } from './entry.js';
import { sameContent, withPath } from './entry.js';
import type { Op, Plan } from './plan.js';
import { comparePaths, depthOf, isWithin, rebase } from './paths.js';

export type Overwrite = 'always' | 'older';

export interface OneWayInput {
  /** The sender's changes since its snapshot, renames detected. */
  readonly sender: readonly Change[];
  /** The receiver's changes since its snapshot (renames need not be detected). */
  readonly receiver: readonly Change[];
  readonly overwrite: Overwrite;
  /**
   * --mirror: the receiver ends identical to the sender. Its own extra (untracked) paths
   * are deleted, a path the sender deleted is deleted even if the receiver changed it, and
   * -o older never keeps a newer receiver copy. Excluded paths are never seen, so kept.
   */
  readonly mirror?: boolean;
}

export function reconcileOneWay(input: OneWayInput): Plan {
  const renames: Op[] = [];
  const deletes: Op[] = [];
  const creates: Op[] = [];
  const restores: Op[] = [];
  const forget: string[] = [];
  const notes: { path: string; message: string }[] = [];

  // Renames need lookups by path (and move what is below them); without any, the two
  // lists are merged as they are.
  let sendList: readonly Change[] = input.sender;
  let recvList: readonly Change[] = input.receiver;
  const renamed = (c: Change): boolean => c.from !== undefined;
  if (input.sender.some(renamed) || input.receiver.some(renamed)) {
    ({ sendList, recvList } = settleRenames());
  }

  function settleRenames(): { sendList: Change[]; recvList: Change[] } {
    let recv = new Map<string, Change>();
    for (const c of input.receiver) {
      // A rename at the receiver is, for a one-way sync, a delete of its old place (restored
      // from the sender) and an untracked add at its new one (left alone).
      if (c.from !== undefined && c.old !== null) {
        if (!recv.has(c.from))
          recv.set(c.from, { path: c.from, old: withPath(c.old, c.from), new: null });
        recv.set(c.path, { path: c.path, old: null, new: c.new });
      } else recv.set(c.path, c);
    }
    const send = new Map<string, Change>();

    for (const s of input.sender) {
      if (s.from === undefined) {
        send.set(s.path, s);
        continue;
      }
      const from = s.from;
      const atFrom = recv.get(from);
      const atTo = recv.get(s.path);
      // A directory whose own metadata changed at the receiver can still be moved; anything
      // else the receiver did at F, or anything it has at T, blocks the rename.
      const blocked =
        (atFrom !== undefined &&
          !(atFrom.old?.kind === 'dir' && atFrom.new?.kind === 'dir' && s.new?.kind === 'dir')) ||
        (atTo?.new ?? null) !== null;
      if (blocked) {
        // Demote: the sender's object is new at T (a whole subtree for a directory, whose
        // contents the rename would have carried), and its old place F counts as deleted.
        if (s.new!.kind === 'dir') {
          restores.push({ op: 'restore', path: s.path, expect: atTo?.new ?? null });
          recv.delete(s.path);
        } else {
          send.set(s.path, { path: s.path, old: null, new: s.new });
        }
        if (!send.has(from)) send.set(from, { path: from, old: s.old, new: null });
        continue;
      }
      renames.push({ op: 'rename', from, path: s.path, entry: s.new! });
      // What the receiver changed below F is now below T.
      const moved = new Map<string, Change>();
      for (const [p, c] of recv) {
        if (isWithin(p, from)) {
          const np = rebase(p, from, s.path);
          moved.set(np, { ...c, path: np });
        } else {
          moved.set(p, c);
        }
      }
      recv = moved;
      // The renamed object may also have changed (mode, times): settle it like a modification.
      if (s.old !== null && s.new !== null && !sameMeta(s.old, s.new)) {
        send.set(s.path, { path: s.path, old: s.old, new: s.new });
      }
    }
    return { sendList: [...send.values()], recvList: [...recv.values()] };
  }

  mergeByPath(sendList, recvList, (i, j) => {
    const s = sendList[i];
    const r = recvList[j];
    if (s && !r) {
      sideChanged(s, undefined);
    } else if (!s && r) {
      const path = r.path;
      if (r.old === null) {
        // Untracked at the receiver: left alone (deleted with --mirror). A bare record (a
        // failure that never synced) whose path is gone is dropped.
        if (r.new === null) forget.push(path);
        else if (input.mirror) deletes.push({ op: 'delete', path, expect: r.new });
        return;
      }
      restores.push({ op: 'restore', path, expect: r.new });
    } else if (s && r) {
      bothChanged(s, r);
    }
  });

  function sideChanged(s: Change, expect: Entry | null | undefined): void {
    const n = s.new;
    const o = s.old;
    if (n === null) {
      if (o !== null)
        deletes.push(
          expect === undefined
            ? { op: 'delete', path: s.path }
            : { op: 'delete', path: s.path, expect },
        );
      else forget.push(s.path);
      return;
    }
    const e = expect === undefined ? {} : { expect };
    if (o !== null && o.kind !== n.kind) {
      deletes.push({ op: 'delete', path: s.path, ...e });
      creates.push(createOp(n, null));
      return;
    }
    if (o !== null && sameContent(o, n)) {
      creates.push({ op: 'attrs', path: s.path, entry: n, ...e });
      return;
    }
    creates.push(
      n.kind === 'dir'
        ? { op: 'mkdir', path: s.path, entry: n, ...e }
        : { op: 'send', path: s.path, entry: n, ...e },
    );
  }

  function bothChanged(s: Change, r: Change): void {
    const n = s.new;
    if (n === null) {
      if (r.new === null) forget.push(s.path);
      else if (input.mirror) deletes.push({ op: 'delete', path: s.path, expect: r.new });
      else {
        forget.push(s.path);
        notes.push({
          path: s.path,
          message: 'deleted by the sender but changed at the receiver: the receiver copy is kept',
        });
      }
      return;
    }
    const theirs = r.new;
    if (theirs === null) {
      creates.push(createOp(n, null));
      return;
    }
    if (sameContent(n, theirs)) {
      creates.push({ op: 'attrs', path: s.path, entry: n, expect: theirs });
      return;
    }
    if (input.overwrite === 'older' && !input.mirror && theirs.mtimeMs >= n.mtimeMs) {
      notes.push({ path: s.path, message: 'not replaced: the receiver copy is newer (-o older)' });
      return;
    }
    if (theirs.kind !== n.kind) {
      deletes.push({ op: 'delete', path: s.path, expect: theirs });
      creates.push(createOp(n, null));
      return;
    }
    creates.push(createOp(n, theirs));
  }

  deletes.sort((a, b) => depthOf(b.path) - depthOf(a.path) || comparePaths(a.path, b.path));
  creates.sort((a, b) => comparePaths(a.path, b.path));
  return { ops: [...renames, ...deletes, ...creates, ...restores], forget, notes };
}

function createOp(n: Entry, expect: Entry | null): Op {
  return n.kind === 'dir'
    ? { op: 'mkdir', path: n.path, entry: n, expect }
    : { op: 'send', path: n.path, entry: n, expect };
}

function sameMeta(a: Entry, b: Entry): boolean {
  return (
    a.mode === b.mode &&
    a.mtimeMs === b.mtimeMs &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.xattrs === b.xattrs
  );
}
