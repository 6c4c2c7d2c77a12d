/**
 * One conformance suite for the snapshot store, run on every SQLite driver this Node can
 * load: better-sqlite3 under Node 20, node:sqlite under Node >= 22.13. test/native-free
 * runs this file again under Node 24 (ASYNC_TEST_NO_ADDON=1 there: the addon in
 * node_modules is built for Node 20), so both drivers run in every `npm test`.
 *
 * Everything is checked through SnapshotStore's public API, or through the file itself
 * (header bytes), never through a driver, so the same expectations hold for both.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Entry } from '../../src/core/entry.js';
import { AsyncError } from '../../src/errors.js';
import type { DriverName } from '../../src/snapshot/driver.js';
import { latestSchemaVersion } from '../../src/snapshot/schema.js';
import { snapshotDriver, useDrivers } from '../../src/snapshot/select-driver.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { tmp } from '../helpers.js';

function nodeHasSqlite(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  return major > 22 || (major === 22 && minor >= 13);
}

const DRIVERS: { name: DriverName; skip: string | false }[] = [
  {
    name: 'better-sqlite3',
    skip:
      process.env['ASYNC_TEST_NO_ADDON'] === '1' ? 'the addon is built for another Node' : false,
  },
  {
    name: 'node:sqlite',
    skip: nodeHasSqlite() ? false : `Node ${process.version} has no node:sqlite (Node 24 leg)`,
  },
];

function file(path: string, extra: Partial<Entry> = {}): Entry {
  return {
    path,
    kind: 'file',
    size: 5,
    mtimeMs: 1_700_000_000_123.25,
    mode: 0o100644,
    ino: 2 ** 40 + 7,
    uid: 1000,
    gid: 1000,
    digest: '0123456789abcdef',
    ...extra,
  };
}

function dir(path: string): Entry {
  return { path, kind: 'dir', size: 0, mtimeMs: 1, mode: 0o40755, ino: 9, uid: 0, gid: 0 };
}

/** PRAGMA user_version lives at byte 60 of the header (big-endian); journal mode at 18/19. */
function header(path: string): { userVersion: number; wal: boolean } {
  const b = readFileSync(path);
  return { userVersion: b.readUInt32BE(60), wal: b[18] === 2 && b[19] === 2 };
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AsyncError, `expected an AsyncError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected an error');
}

for (const { name, skip } of DRIVERS) {
  describe(`snapshot store on ${name}`, { skip }, () => {
    let root: string;
    const open: SnapshotStore[] = [];
    const store = (file = 'snap.db', create = true): SnapshotStore => {
      const s = SnapshotStore.open(join(root, file), { create });
      open.push(s);
      return s;
    };

    before(() => {
      useDrivers([name]);
      assert.equal(snapshotDriver().name, name);
      root = tmp('async-store-');
    });
    after(() => {
      for (const s of open) s.close();
      useDrivers(['better-sqlite3', 'node:sqlite']);
    });

    test('a new database gets the latest schema version and WAL mode', () => {
      const s = store('new.db');
      s.setMeta({ a: '1' });
      assert.ok(existsSync(join(root, 'new.db-wal')), 'WAL file while open');
      s.close();
      assert.deepEqual(header(join(root, 'new.db')), {
        userVersion: latestSchemaVersion(),
        wal: true,
      });
    });

    test('meta values are set, read one by one and all at once', () => {
      const s = store('meta.db');
      assert.equal(s.getMeta('dir'), undefined);
      s.setMeta({ dir: '/a', direction: 'push' });
      s.setMeta({ dir: '/b' });
      assert.equal(s.getMeta('dir'), '/b');
      assert.deepEqual(s.allMeta(), { dir: '/b', direction: 'push' });
    });

    test('entries round-trip exactly: fractional mtime, big inode, link target, message', () => {
      const s = store('rt.db');
      const link: Entry = { ...file('l'), kind: 'symlink', target: '../x y', size: 4 };
      const noDigest: Entry = { ...file('n') };
      delete (noDigest as { digest?: string }).digest;
      s.write(() => {
        s.put(file('a/f'));
        s.put(link);
        s.put(noDigest, 'error', 'permission denied (EACCES)');
      });
      assert.deepEqual(s.get('a/f'), { path: 'a/f', entry: file('a/f'), state: 'synced' });
      assert.deepEqual(s.get('l'), { path: 'l', entry: link, state: 'synced' });
      assert.deepEqual(s.get('n'), {
        path: 'n',
        entry: noDigest,
        state: 'error',
        message: 'permission denied (EACCES)',
      });
      assert.equal(s.get('missing'), undefined);
    });

    test('children, below, descendants, iterate, size and counts', () => {
      const s = store('tree.db');
      s.write(() => {
        for (const e of [dir('a'), file('a/x'), dir('a/b'), file('a/b/y'), file('ab'), file('z')])
          s.put(e);
        s.mark('a/b/y', 'pending');
      });
      assert.deepEqual(
        s
          .children('a')
          .map((r) => r.path)
          .sort(),
        ['a/b', 'a/x'],
      );
      assert.deepEqual(
        s
          .children('')
          .map((r) => r.path)
          .sort(),
        ['a', 'ab', 'z'],
      );
      // 'ab' sorts between 'a/...' values but is not below 'a'.
      assert.deepEqual(
        s.below('a').map((r) => r.path),
        ['a/b', 'a/x', 'a/b/y'],
      );
      assert.deepEqual(
        s.descendants('a').map((e) => e.path),
        ['a/b', 'a/x'],
      );
      assert.deepEqual(
        [...s.iterate()].map((r) => r.path),
        s.below('').map((r) => r.path),
      );
      assert.equal(s.size(), 6);
      assert.deepEqual(s.counts(), { synced: 5, pending: 1, conflict: 0, error: 0 });
    });

    test('mark keeps the last synced entry, or adds a bare row', () => {
      const s = store('mark.db');
      s.put(file('f'));
      s.mark('f', 'conflict', 'both sides changed');
      assert.deepEqual(s.get('f'), {
        path: 'f',
        entry: file('f'),
        state: 'conflict',
        message: 'both sides changed',
      });
      s.mark('new/g', 'error', 'vanished');
      assert.deepEqual(s.get('new/g'), {
        path: 'new/g',
        entry: null,
        state: 'error',
        message: 'vanished',
      });
      assert.equal(s.deleteByState('error'), 1);
      assert.equal(s.size(), 1);
    });

    test('remove and move act on a whole subtree and nothing beside it', () => {
      const s = store('mv.db');
      s.write(() => {
        for (const e of [dir('d'), dir('d/e'), file('d/e/f'), file('d2'), file('dd/x')]) s.put(e);
      });
      s.write(() => s.move('d', 'n/m'));
      assert.deepEqual(
        s.below('').map((r) => r.path),
        ['d2', 'dd/x', 'n/m', 'n/m/e', 'n/m/e/f'],
      );
      assert.deepEqual(s.get('n/m/e/f')?.entry, file('n/m/e/f'));
      s.remove('n/m');
      assert.deepEqual(
        s.below('').map((r) => r.path),
        ['d2', 'dd/x'],
      );
      s.remove('');
      assert.equal(s.size(), 0);
    });

    test('applyChanges applies moves, deletions and new entries', () => {
      const s = store('apply.db');
      s.applyChanges([
        { path: 'a', old: null, new: file('a') },
        { path: 'b', old: null, new: file('b') },
      ]);
      s.applyChanges([
        { path: 'c', old: file('a'), new: file('c'), from: 'a' },
        { path: 'b', old: file('b'), new: null },
      ]);
      assert.deepEqual(
        s.below('').map((r) => r.path),
        ['c'],
      );
    });

    test('write rolls back when its function throws; a nested write is a savepoint', () => {
      const s = store('tx.db');
      assert.throws(() =>
        s.write(() => {
          s.put(file('lost'));
          throw new Error('boom');
        }),
      );
      assert.equal(s.get('lost'), undefined);
      s.write(() => {
        s.put(file('kept'));
        assert.throws(() =>
          s.write(() => {
            s.put(file('inner'));
            throw new Error('inner boom');
          }),
        );
      });
      assert.deepEqual(
        s.below('').map((r) => r.path),
        ['kept'],
      );
      s.clear();
      assert.equal(s.size(), 0);
    });

    test('checkpoint folds the WAL into the file; a read-only open reads it', () => {
      const s = store('ro.db');
      s.put(file('f'));
      s.checkpoint();
      const ro = SnapshotStore.open(join(root, 'ro.db'), { create: false, readonly: true });
      open.push(ro);
      assert.deepEqual(ro.get('f')?.entry, file('f'));
    });

    test('bad databases are refused with a coded error and never modified', async (t) => {
      const cases: { name: string; make: (p: string) => void; code: string; create: boolean }[] = [
        {
          name: 'a missing file without create',
          make: () => {},
          code: 'ERR_DB_LOCATION',
          create: false,
        },
        {
          name: 'a file that is not SQLite',
          make: (p) => writeFileSync(p, 'this is not a database, just text '.repeat(200)),
          code: 'ERR_DB_CORRUPT',
          create: true,
        },
        {
          name: 'a newer schema version than this program knows',
          make: (p) => {
            const s = SnapshotStore.open(p, { create: true });
            s.put(file('f'));
            s.close();
            const b = readFileSync(p);
            b.writeUInt32BE(latestSchemaVersion() + 1, 60);
            writeFileSync(p, b);
          },
          code: 'ERR_DB_SCHEMA',
          create: true,
        },
      ];
      for (const c of cases) {
        await t.test(c.name, () => {
          const p = join(tmp('async-bad-'), 'snap.db');
          c.make(p);
          const before = existsSync(p) ? readFileSync(p) : undefined;
          assert.equal(
            errorCode(() => SnapshotStore.open(p, { create: c.create })),
            c.code,
          );
          assert.deepEqual(existsSync(p) ? readFileSync(p) : undefined, before);
          assert.ok(!existsSync(`${p}-wal`) || readFileSync(`${p}-wal`).length === 0);
        });
      }
    });
  });
}
