/** The one-way reconcile decision table (push and pull share it: sender vs receiver). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Change } from '../../src/core/change.js';
import type { Entry } from '../../src/core/entry.js';
import type { Plan } from '../../src/core/plan.js';
import { reconcileOneWay } from '../../src/core/reconcile.js';

function f(path: string, opts: Partial<Entry> = {}): Entry {
  return {
    path,
    kind: 'file',
    size: 10,
    mtimeMs: 1000,
    mode: 0o644,
    ino: 1,
    uid: 0,
    gid: 0,
    ...opts,
  };
}
function d(path: string): Entry {
  return { path, kind: 'dir', size: 0, mtimeMs: 1000, mode: 0o755, ino: 2, uid: 0, gid: 0 };
}
const ops = (p: Plan) =>
  p.ops.map((o) => `${o.op} ${o.op === 'rename' ? `${o.from}->` : ''}${o.path}`);

describe('reconcileOneWay', () => {
  const base = f('p', { digest: 'aa' });
  const rows: {
    title: string;
    sender: Change[];
    receiver: Change[];
    overwrite?: 'always' | 'older';
    ops: string[];
    forget?: string[];
    notes?: number;
  }[] = [
    { title: 'nothing changed', sender: [], receiver: [], ops: [] },
    {
      title: 'sender added a file',
      sender: [{ path: 'p', old: null, new: f('p') }],
      receiver: [],
      ops: ['send p'],
    },
    {
      title: 'sender added a directory',
      sender: [{ path: 'p', old: null, new: d('p') }],
      receiver: [],
      ops: ['mkdir p'],
    },
    {
      title: 'sender modified content',
      sender: [{ path: 'p', old: base, new: f('p', { size: 11 }) }],
      receiver: [],
      ops: ['send p'],
    },
    {
      title: 'sender touched a file (same digest): metadata only',
      sender: [{ path: 'p', old: base, new: f('p', { mtimeMs: 5, digest: 'aa' }) }],
      receiver: [],
      ops: ['attrs p'],
    },
    {
      title: 'sender deleted',
      sender: [{ path: 'p', old: base, new: null }],
      receiver: [],
      ops: ['delete p'],
    },
    {
      title: 'sender replaced a file by a directory',
      sender: [{ path: 'p', old: base, new: d('p') }],
      receiver: [],
      ops: ['delete p', 'mkdir p'],
    },
    {
      title: 'sender renamed a file',
      sender: [{ path: 'q', old: f('q'), new: f('q'), from: 'p' }],
      receiver: [],
      ops: ['rename p->q'],
    },
    {
      title: 'rename blocked: the receiver changed the source',
      sender: [{ path: 'q', old: f('q'), new: f('q'), from: 'p' }],
      receiver: [{ path: 'p', old: base, new: f('p', { size: 3 }) }],
      ops: ['send q'],
      forget: ['p'],
      notes: 1,
    },
    {
      title: 'rename blocked: the receiver has something at the target',
      sender: [{ path: 'q', old: f('q'), new: f('q'), from: 'p' }],
      receiver: [{ path: 'q', old: null, new: f('q', { size: 1 }) }],
      ops: ['delete p', 'send q'],
    },
    {
      title: 'renamed directory blocked: restored as a whole subtree',
      sender: [{ path: 'q', old: d('q'), new: d('q'), from: 'p' }],
      receiver: [{ path: 'q', old: null, new: f('q') }],
      ops: ['delete p', 'restore q'],
    },
    {
      title: 'receiver changed what the sender did not: restored',
      sender: [],
      receiver: [{ path: 'p', old: base, new: f('p', { size: 1 }) }],
      ops: ['restore p'],
    },
    {
      title: 'receiver deleted what the sender did not: restored',
      sender: [],
      receiver: [{ path: 'p', old: base, new: null }],
      ops: ['restore p'],
    },
    {
      title: 'receiver added an untracked file: left alone',
      sender: [],
      receiver: [{ path: 'p', old: null, new: f('p') }],
      ops: [],
    },
    {
      title: 'both added the same content: adopted without data',
      sender: [{ path: 'p', old: null, new: f('p', { digest: 'cc' }) }],
      receiver: [{ path: 'p', old: null, new: f('p', { digest: 'cc', ino: 9 }) }],
      ops: ['attrs p'],
    },
    {
      title: 'both changed, different content, -o always: sender wins',
      sender: [{ path: 'p', old: base, new: f('p', { digest: 'bb', mtimeMs: 1 }) }],
      receiver: [{ path: 'p', old: base, new: f('p', { digest: 'cc', mtimeMs: 2 }) }],
      ops: ['send p'],
    },
    {
      title: 'both changed, -o older, receiver newer: kept and noted',
      sender: [{ path: 'p', old: base, new: f('p', { digest: 'bb', mtimeMs: 1 }) }],
      receiver: [{ path: 'p', old: base, new: f('p', { digest: 'cc', mtimeMs: 2 }) }],
      overwrite: 'older',
      ops: [],
      notes: 1,
    },
    {
      title: 'both changed, -o older, receiver older: replaced',
      sender: [{ path: 'p', old: base, new: f('p', { digest: 'bb', mtimeMs: 3 }) }],
      receiver: [{ path: 'p', old: base, new: f('p', { digest: 'cc', mtimeMs: 2 }) }],
      overwrite: 'older',
      ops: ['send p'],
    },
    {
      title: 'both deleted: forgotten',
      sender: [{ path: 'p', old: base, new: null }],
      receiver: [{ path: 'p', old: base, new: null }],
      ops: [],
      forget: ['p'],
    },
    {
      title: 'sender deleted, receiver modified: receiver copy kept',
      sender: [{ path: 'p', old: base, new: null }],
      receiver: [{ path: 'p', old: base, new: f('p', { size: 2 }) }],
      ops: [],
      forget: ['p'],
      notes: 1,
    },
    {
      title: 'sender modified, receiver deleted: sent',
      sender: [{ path: 'p', old: base, new: f('p', { size: 2 }) }],
      receiver: [{ path: 'p', old: base, new: null }],
      ops: ['send p'],
    },
    {
      title: 'deletes come deepest first, before creates',
      sender: [
        { path: 'a', old: d('a'), new: null },
        { path: 'a/b', old: d('a/b'), new: null },
        { path: 'c', old: null, new: f('c') },
      ],
      receiver: [],
      ops: ['delete a/b', 'delete a', 'send c'],
    },
  ];
  for (const r of rows) {
    test(r.title, () => {
      const plan = reconcileOneWay({
        sender: r.sender,
        receiver: r.receiver,
        overwrite: r.overwrite ?? 'always',
      });
      assert.deepEqual(ops(plan), r.ops);
      assert.deepEqual([...plan.forget].sort(), r.forget ?? []);
      assert.equal(plan.notes.length, r.notes ?? 0);
    });
  }
});
