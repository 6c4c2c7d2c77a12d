/**
 * The reconcile decision table (docs/RECONCILE.md) as rows, each run for every direction it
 * applies to: push (local sends), pull (the remote sends) and bidi. Operations are shown as
 * short strings, `to-remote: send a` for an operation applied at the remote side.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Change } from '../../src/core/change.js';
import type { Entry, EntryKind } from '../../src/core/entry.js';
import type { Op, Plan } from '../../src/core/plan.js';
import { reconcileOneWay } from '../../src/core/reconcile.js';
import type { ConflictPolicy, Keep } from '../../src/core/reconcile-bidi.js';
import { asideName, reconcileBidi } from '../../src/core/reconcile-bidi.js';

let ino = 100;
function e(path: string, kind: EntryKind = 'file', o: Partial<Entry> = {}): Entry {
  return {
    path,
    kind,
    size: kind === 'file' ? 5 : 0,
    mtimeMs: 1000,
    mode: kind === 'dir' ? 0o755 : 0o644,
    ino: ino++,
    uid: 1,
    gid: 1,
    ...(kind === 'file' ? { digest: `d-${path}` } : {}),
    ...o,
  };
}
/** The snapshot's view of a file, and ways it can change. */
const base = (p: string, k: EntryKind = 'file') => e(p, k, { ino: 1, digest: 'old' });
const mod = (p: string, digest: string, mtimeMs = 2000): Change => ({
  path: p,
  old: base(p),
  new: e(p, 'file', { digest, mtimeMs, size: 7 }),
});
const add = (p: string, k: EntryKind = 'file', o: Partial<Entry> = {}): Change => ({
  path: p,
  old: null,
  new: e(p, k, o),
});
const del = (p: string, k: EntryKind = 'file'): Change => ({ path: p, old: base(p, k), new: null });
const meta = (p: string, k: EntryKind = 'dir'): Change => ({
  path: p,
  old: base(p, k),
  new: e(p, k, { ino: 1, mtimeMs: 3000, digest: k === 'file' ? 'old' : undefined }),
});
const ren = (from: string, to: string, k: EntryKind = 'file'): Change => ({
  path: to,
  from,
  old: base(to, k),
  new: e(to, k, { ino: 1, digest: k === 'file' ? 'old' : undefined }),
});

function fmt(op: Op): string {
  switch (op.op) {
    case 'rename':
      return `rename ${op.from}->${op.path}`;
    case 'aside':
      return `aside ${op.path}->${op.to}`;
    default:
      return `${op.op} ${op.path}`;
  }
}
const show = (side: string, p: Plan): string[] => [
  ...p.ops.map((o) => `${side}: ${fmt(o)}`),
  ...p.forget.map((f) => `forget ${f}`),
];

interface Row {
  readonly name: string;
  readonly local: Change[];
  readonly remote: Change[];
  /** Expected operations; undefined when the row does not apply to that direction. */
  readonly push?: string[];
  readonly pull?: string[];
  readonly bidi?: string[];
  readonly conflicts?: string[];
  readonly policy?: ConflictPolicy;
  readonly resolutions?: [string, Keep][];
}

const STAMP = '20261121T142000Z';

const ROWS: Row[] = [
  {
    name: 'changed on the local side only: propagated',
    local: [mod('a', 'new')],
    remote: [],
    push: ['to-remote: send a'],
    pull: ['to-local: restore a'],
    bidi: ['to-remote: send a'],
  },
  {
    name: 'changed on the remote side only: propagated',
    local: [],
    remote: [mod('a', 'new')],
    push: ['to-remote: restore a'],
    pull: ['to-local: send a'],
    bidi: ['to-local: send a'],
  },
  {
    name: 'added on one side: propagated',
    local: [add('n')],
    remote: [],
    push: ['to-remote: send n'],
    pull: [],
    bidi: ['to-remote: send n'],
  },
  {
    name: 'deleted on both sides: forgotten',
    local: [del('a')],
    remote: [del('a')],
    push: ['forget a'],
    pull: ['forget a'],
    bidi: ['forget a'],
  },
  {
    name: 'changed on both sides to the same content: no conflict, newer metadata applied',
    local: [mod('a', 'same', 2000)],
    remote: [mod('a', 'same', 5000)],
    push: ['to-remote: attrs a'],
    pull: ['to-local: attrs a'],
    bidi: ['to-local: attrs a'],
    conflicts: [],
  },
  {
    name: 'changed on both sides differently: conflict (bidi), sender wins (one-way)',
    local: [mod('a', 'l')],
    remote: [mod('a', 'r')],
    push: ['to-remote: send a'],
    pull: ['to-local: send a'],
    bidi: [],
    conflicts: ['a'],
  },
  {
    name: 'added on both sides differently: conflict',
    local: [add('n', 'file', { digest: 'x' })],
    remote: [add('n', 'file', { digest: 'y' })],
    bidi: [],
    conflicts: ['n'],
  },
  {
    name: 'deleted locally, modified remotely: the modified copy wins',
    local: [del('a')],
    remote: [mod('a', 'r')],
    push: ['forget a'],
    pull: ['to-local: send a'],
    bidi: ['to-local: send a'],
    conflicts: [],
  },
  {
    name: 'modified locally, deleted remotely: the modified copy wins',
    local: [mod('a', 'l')],
    remote: [del('a')],
    push: ['to-remote: send a'],
    pull: ['forget a'],
    bidi: ['to-remote: send a'],
  },
  {
    name: 'directory deleted locally, its metadata changed remotely: the delete wins',
    local: [del('d', 'dir')],
    remote: [meta('d')],
    push: ['forget d'],
    bidi: ['to-remote: delete d'],
  },
  {
    name: 'directory deleted locally, a file below it modified remotely: both survive',
    local: [del('d', 'dir')],
    remote: [mod('d/x', 'r')],
    bidi: ['to-remote: delete d', 'to-local: mkdir d', 'to-local: send d/x'],
  },
  {
    name: 'directory deleted remotely, a file added deep below it locally: parents revived',
    local: [add('d/e/n')],
    remote: [del('d', 'dir')],
    bidi: [
      'to-remote: mkdir d',
      'to-remote: mkdir d/e',
      'to-remote: send d/e/n',
      'to-local: delete d',
    ],
  },
  {
    name: 'directory locally, file remotely: conflict whatever the policy, paths below wait',
    local: [add('d', 'dir'), add('d/x')],
    remote: [add('d', 'file')],
    policy: 'local',
    bidi: [],
    conflicts: ['d'],
  },
  {
    name: 'file replaced by a link on one side, modified on the other: conflict',
    local: [{ path: 'a', old: base('a'), new: e('a', 'symlink', { target: 't' }) }],
    remote: [mod('a', 'r')],
    bidi: [],
    conflicts: ['a'],
  },
  {
    name: 'renamed locally, untouched remotely: the rename propagates',
    local: [ren('f', 't')],
    remote: [],
    push: ['to-remote: rename f->t'],
    pull: ['to-local: restore f'],
    bidi: ['to-remote: rename f->t'],
  },
  {
    name: 'renamed directory locally, untouched remotely: one rename',
    local: [ren('d', 'e', 'dir')],
    remote: [meta('x')],
    bidi: ['to-remote: rename d->e', 'to-local: attrs x'],
  },
  {
    name: 'renamed locally, modified remotely: both kept (moved copy at T, the edit at F)',
    local: [ren('f', 't')],
    remote: [mod('f', 'r')],
    push: ['to-remote: send t', 'forget f'],
    pull: ['to-local: send f'],
    bidi: ['to-remote: send t', 'to-local: send f'],
    conflicts: [],
  },
  {
    name: 'renamed directory locally, a file in it modified remotely: demoted, nothing lost',
    local: [ren('d', 'e', 'dir')],
    remote: [mod('d/x', 'r')],
    bidi: [
      'to-remote: delete d',
      'to-remote: restore e',
      'to-local: mkdir d',
      'to-local: send d/x',
    ],
  },
  {
    name: 'renamed to different names on the two sides: both names kept on both sides',
    local: [ren('f', 't1')],
    remote: [ren('f', 't2')],
    bidi: ['to-remote: send t1', 'to-local: send t2', 'forget f'],
    conflicts: [],
  },
  {
    name: 'renamed to the same name on both sides: no conflict',
    local: [ren('f', 't')],
    remote: [ren('f', 't')],
    bidi: ['to-remote: attrs t', 'forget f'],
    conflicts: [],
  },
  {
    name: 'renamed locally onto a name the remote added: the new name is in conflict',
    local: [ren('f', 't')],
    remote: [add('t', 'file', { digest: 'other' })],
    bidi: ['to-remote: delete f'],
    conflicts: ['t'],
  },
  {
    name: 'policy newer: the later copy wins',
    local: [mod('a', 'l', 9000)],
    remote: [mod('a', 'r', 2000)],
    policy: 'newer',
    bidi: ['to-remote: send a'],
    conflicts: [],
  },
  {
    name: 'policy older: the earlier copy wins',
    local: [mod('a', 'l', 9000)],
    remote: [mod('a', 'r', 2000)],
    policy: 'older',
    bidi: ['to-local: send a'],
  },
  {
    name: 'policy remote: the remote copy wins',
    local: [mod('a', 'l')],
    remote: [mod('a', 'r')],
    policy: 'remote',
    bidi: ['to-local: send a'],
  },
  {
    name: 'policy local, file against link: the loser is deleted, then the winner sent',
    local: [mod('a', 'l')],
    remote: [{ path: 'a', old: base('a'), new: e('a', 'symlink', { target: 't' }) }],
    policy: 'local',
    bidi: ['to-remote: delete a', 'to-remote: send a'],
  },
  {
    name: 'policy keep-both: the older copy is moved aside on its side, the newer takes the name',
    local: [mod('dir/a.txt', 'l', 9000)],
    remote: [mod('dir/a.txt', 'r', 2000)],
    policy: 'keep-both',
    bidi: [
      `to-remote: aside dir/a.txt->dir/a.conflict-remote-${STAMP}.txt`,
      'to-remote: send dir/a.txt',
    ],
    conflicts: [],
  },
  {
    name: 'a stored resolution outranks the policy',
    local: [mod('a', 'l')],
    remote: [mod('a', 'r')],
    policy: 'local',
    resolutions: [['a', 'remote']],
    bidi: ['to-local: send a'],
    conflicts: [],
  },
];

describe('reconcile decision table', () => {
  for (const row of ROWS) {
    if (row.push) {
      test(`push: ${row.name}`, () => {
        const p = reconcileOneWay({ sender: row.local, receiver: row.remote, overwrite: 'always' });
        assert.deepEqual(show('to-remote', p), row.push);
      });
    }
    if (row.pull) {
      test(`pull: ${row.name}`, () => {
        const p = reconcileOneWay({ sender: row.remote, receiver: row.local, overwrite: 'always' });
        assert.deepEqual(show('to-local', p), row.pull);
      });
    }
    if (row.bidi) {
      test(`bidi: ${row.name}`, () => {
        const p = reconcileBidi({
          local: row.local,
          remote: row.remote,
          policy: row.policy ?? 'conflict',
          resolutions: new Map(row.resolutions ?? []),
          stamp: STAMP,
        });
        assert.deepEqual(
          [...show('to-remote', p.toRemote), ...show('to-local', p.toLocal)].sort(),
          [...row.bidi!].sort(),
        );
        if (row.conflicts)
          assert.deepEqual(
            p.conflicts.map((c) => c.path),
            row.conflicts,
          );
        // Mirrored: swapping the sides swaps the plans (policies aside).
        if (!row.policy && !row.resolutions) {
          const m = reconcileBidi({
            local: row.remote,
            remote: row.local,
            policy: 'conflict',
            stamp: STAMP,
          });
          const swap = (s: string) =>
            s.startsWith('to-remote')
              ? s.replace('to-remote', 'to-local')
              : s.replace('to-local', 'to-remote');
          // Same-content ties go to the local side; skip the tie-break rows.
          if (!row.name.includes('same'))
            assert.deepEqual(
              [...show('to-remote', m.toRemote), ...show('to-local', m.toLocal)].sort(),
              row.bidi!.map(swap).sort(),
            );
          assert.deepEqual(
            m.conflicts.map((c) => c.path),
            p.conflicts.map((c) => c.path),
          );
        }
      });
    }
  }
});

describe('asideName', () => {
  const none = () => false;
  test('keeps the extension after the mark', () => {
    assert.equal(
      asideName('d/report.pdf', 'local', STAMP, none),
      `d/report.conflict-local-${STAMP}.pdf`,
    );
  });
  test('a name without extension, and a dot file', () => {
    assert.equal(asideName('Makefile', 'remote', STAMP, none), `Makefile.conflict-remote-${STAMP}`);
    assert.equal(asideName('.env', 'remote', STAMP, none), `.env.conflict-remote-${STAMP}`);
  });
  test('never a conflict of a conflict: an existing mark is replaced', () => {
    const once = asideName('a.txt', 'local', '20250101T000000Z', none);
    assert.equal(asideName(once, 'remote', STAMP, none), `a.conflict-remote-${STAMP}.txt`);
  });
  test('collision-free: a taken name gets a counter', () => {
    const taken = new Set([`a.conflict-local-${STAMP}.txt`]);
    assert.equal(
      asideName('a.txt', 'local', STAMP, (p) => taken.has(p)),
      `a.conflict-local-${STAMP}-1.txt`,
    );
  });
});
