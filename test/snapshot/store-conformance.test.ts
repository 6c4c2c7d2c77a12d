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
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Entry } from '../../src/core/entry.js';
import { AsyncError } from '../../src/errors.js';
import type { DriverName } from '../../src/snapshot/driver.js';
import { latestSchemaVersion } from '../../src/snapshot/schema.js';
import { snapshotDriver, useDrivers } from '../../src/snapshot/select-driver.js';
import type { SnapshotRecord } from '../../src/core/change.js';
import { baseName, parentOf } from '../../src/core/paths.js';
import type { RecordChild } from '../../src/snapshot/dir-record.js';
import { ATTR_WIDTH, FLAG_READ_ROW } from '../../src/snapshot/dir-record.js';
import type { StoredDirRecord } from '../../src/snapshot/store.js';
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

/** A record decoded back into one object per child (tests only; the scan never does). */
function decodeRecord(rec: StoredDirRecord): RecordChild[] {
  const names = rec.names === '' ? [] : rec.names.split('/');
  const v = new DataView(rec.attrs.buffer, rec.attrs.byteOffset, rec.attrs.byteLength);
  assert.equal(rec.attrs.byteLength, names.length * ATTR_WIDTH);
  return names.map((name, i) => {
    const o = i * ATTR_WIDTH;
    return {
      name,
      kind: v.getUint8(o + 34),
      size: v.getFloat64(o, true),
      mtime: v.getFloat64(o + 8, true),
      mode: v.getUint16(o + 32, true),
      ino: v.getFloat64(o + 16, true),
      uid: v.getUint32(o + 24, true),
      gid: v.getUint32(o + 28, true),
      flags: v.getUint8(o + 35),
    };
  });
}

const KIND: Record<string, number> = { file: 1, dir: 2, symlink: 3 };

/** What a row's child in its directory's record must say. */
function expectedChild(r: SnapshotRecord): RecordChild {
  const e = r.entry;
  return {
    name: baseName(r.path),
    kind: e ? KIND[e.kind]! : 0,
    size: e?.size ?? 0,
    mtime: e?.mtimeMs ?? 0,
    mode: (e?.mode ?? 0) & 0xffff,
    ino: e?.ino ?? 0,
    uid: e?.uid ?? 0,
    gid: e?.gid ?? 0,
    flags:
      !e || r.state !== 'synced' || e.target !== undefined || e.xattrs !== undefined
        ? FLAG_READ_ROW
        : 0,
  };
}

const byName = (a: RecordChild, b: RecordChild): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

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

    test('puts batched inside a transaction are read back at once, and roll back by level', () => {
      const s = store('batched.db');
      // More rows than one multi-row statement holds, and a remainder.
      const names = Array.from({ length: 150 }, (_, i) => `d/f${String(i).padStart(3, '0')}`);
      s.write(() => {
        for (const n of names.slice(0, 70)) s.put(file(n));
        // Read in the middle of a batch: the rows put so far are there.
        assert.equal(s.get('d/f069')?.entry?.size, 5);
        assert.equal(s.children('d').length, 70);
        s.put({ ...file('d/f000'), size: 7 });
        s.mark('d/f001', 'error', 'failed');
        s.write(() => s.put(file('d/nested')));
        assert.throws(() =>
          s.write(() => {
            for (const n of names.slice(70)) s.put(file(n));
            throw new Error('inner boom');
          }),
        );
        for (const n of names.slice(100, 130)) s.put(file(n));
      });
      assert.equal(s.size(), 70 + 1 + 30);
      assert.equal(s.get('d/f000')?.entry?.size, 7);
      assert.equal(s.get('d/f001')?.state, 'error');
      assert.equal(s.get('d/f080'), undefined);
      assert.equal(s.get('d/f129')?.entry?.size, 5);
      // Outside a transaction a put is written at once.
      s.put(file('d/alone'));
      assert.equal(s.get('d/alone')?.entry?.size, 5);
    });

    test('per-directory records stay true on every write path, and are rebuilt by a flush', async (t) => {
      /** Every record that exists matches the rows of its directory (names, order, attributes). */
      const recordsTrue = (s: SnapshotStore, complete: boolean): void => {
        const byDir = new Map<string, SnapshotRecord[]>();
        for (const r of s.below('')) {
          const d = parentOf(r.path);
          byDir.set(d, [...(byDir.get(d) ?? []), r]);
        }
        for (const [d, rows] of byDir) {
          const rec = s.dirRecord(d);
          if (rec === undefined) {
            assert.ok(!complete, `no record for '${d}' after a flush`);
            continue;
          }
          assert.deepEqual(decodeRecord(rec), rows.map(expectedChild).sort(byName), `dir '${d}'`);
        }
        for (const d of ['', 'a', 'a/b', 'n', 'n/m', 'gone'])
          if (!byDir.has(d)) assert.equal(s.dirRecord(d), undefined, `stale record for '${d}'`);
      };
      const cases: { name: string; ops: (s: SnapshotStore) => void }[] = [
        { name: 'put', ops: (s) => s.put(file('a/new')) },
        { name: 'put of a changed entry', ops: (s) => s.put(file('a/f1', { size: 99 })) },
        {
          name: 'mark pending, error, and a bare row',
          ops: (s) => {
            s.mark('a/f1', 'pending');
            s.mark('a/b/g', 'error', 'boom');
            s.mark('a/bare', 'conflict');
          },
        },
        { name: 'remove a subtree', ops: (s) => s.remove('a/b') },
        { name: 'move a subtree', ops: (s) => s.move('a', 'n/m') },
        { name: 'move onto an existing subtree', ops: (s) => s.move('a/b', 'c') },
        { name: 'eraseOne', ops: (s) => s.eraseOne('a/f1') },
        {
          name: 'deleteByState',
          ops: (s) => {
            s.mark('a/f1', 'error');
            s.deleteByState('error');
          },
        },
        {
          name: 'deleteByState of a row put in that state',
          ops: (s) => s.deleteByState('pending'),
        },
        {
          name: 'applyChanges',
          ops: (s) =>
            s.applyChanges([
              { path: 'z', old: file('a/f1'), new: file('z'), from: 'a/f1' },
              { path: 'c/x', old: file('c/x'), new: null },
            ]),
        },
        { name: 'remove all', ops: (s) => s.remove('') },
        {
          name: 'a rolled back write',
          ops: (s) => {
            assert.throws(() =>
              s.write(() => {
                s.put(file('a/lost'));
                s.remove('c');
                throw new Error('boom');
              }),
            );
          },
        },
        {
          name: 'a rolled back savepoint, then more writes in the same transaction',
          ops: (s) =>
            s.write(() => {
              s.put(file('a/kept'));
              assert.throws(() =>
                s.write(() => {
                  s.put(file('a/inner'));
                  throw new Error('inner boom');
                }),
              );
              s.put(file('a/kept2'));
            }),
        },
      ];
      const seed = (s: SnapshotStore): void =>
        s.write(() => {
          for (const e of [dir('a'), file('a/f1'), file('a/f2', { mtimeMs: 5 }), dir('a/b')])
            s.put(e);
          s.put(file('a/b/g'));
          s.put({ ...file('a/l'), kind: 'symlink', target: 'f1', size: 0 });
          s.put(file('a/x', { xattrs: '{"user.a":"eA=="}' }));
          // Put twice: the row holds the second.
          s.put(file('a/f2', { mtimeMs: 4 }));
          s.put(file('a/f2', { mtimeMs: 5 }));
          s.put(file('a/p'), 'pending');
          s.put(dir('c'));
          s.put(file('c/x'));
        });
      for (const [i, c] of cases.entries()) {
        await t.test(c.name, () => {
          const s = store(`rec${i}.db`);
          seed(s);
          s.flushDirRecords();
          recordsTrue(s, true);
          c.ops(s);
          recordsTrue(s, false);
          s.flushDirRecords();
          recordsTrue(s, true);
        });
        // A table seen empty: the flush writes records built from the puts, and reads back
        // only what other writes touched.
        await t.test(`${c.name}, on a table seen empty`, () => {
          const s = store(`rec-empty${i}.db`);
          assert.equal(s.size(), 0);
          seed(s);
          recordsTrue(s, false);
          c.ops(s);
          recordsTrue(s, false);
          s.flushDirRecords();
          recordsTrue(s, true);
          assert.equal(s.getMeta('dir_records'), 'complete');
          // Later writes are rebuilt from rows again.
          s.write(() => s.put(file('a/later')));
          s.flushDirRecords();
          recordsTrue(s, true);
        });
      }
    });

    test('records dropped by a writer that never flushed (kill -9) are rebuilt after the next open', () => {
      const s = store('kill.db');
      s.write(() => ['a/1', 'a/2', 'b/1'].forEach((p) => s.put(file(p))));
      s.flushDirRecords();
      assert.ok(s.dirRecord('a'));
      s.write(() => s.put(file('a/3')));
      // The writer "dies" here: its connection is abandoned without a flush.
      const ro = SnapshotStore.open(join(root, 'kill.db'), { create: false, readonly: true });
      assert.equal(ro.dirRecord('a'), undefined);
      assert.ok(ro.dirRecord('b'));
      assert.equal(ro.getMeta('dir_records'), 'partial');
      ro.close();
      const next = SnapshotStore.open(join(root, 'kill.db'), { create: false });
      open.push(next);
      next.flushDirRecords();
      assert.deepEqual(
        decodeRecord(next.dirRecord('a')!).map((c) => c.name),
        ['1', '2', '3'],
      );
      assert.equal(next.getMeta('dir_records'), 'complete');
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

/**
 * Thread mode (store.ts, writer-thread.ts): once a table seen empty took
 * ASYNC_WRITER_THREAD_MIN_PUTS puts, a thread writes the rows. Whatever this connection
 * reads or writes afterwards must see them, in order, and rollbacks drop exactly theirs.
 */
for (const { name, skip } of DRIVERS) {
  describe(`snapshot store on ${name}, rows written by the writer thread`, { skip }, () => {
    let root: string;
    const saved = process.env['ASYNC_WRITER_THREAD_MIN_PUTS'];
    const open: SnapshotStore[] = [];
    /** A new store whose table was seen empty, in thread mode from its first put. */
    const store = (file: string): SnapshotStore => {
      const s = SnapshotStore.open(join(root, file), { create: true });
      open.push(s);
      assert.equal(s.size(), 0);
      return s;
    };
    const paths = (s: SnapshotStore): string[] =>
      s
        .below('')
        .map((r) => r.path)
        .sort();

    before(() => {
      useDrivers([name]);
      process.env['ASYNC_WRITER_THREAD_MIN_PUTS'] = '0';
      root = tmp('async-writer-');
    });
    after(() => {
      for (const s of open) s.close();
      if (saved === undefined) delete process.env['ASYNC_WRITER_THREAD_MIN_PUTS'];
      else process.env['ASYNC_WRITER_THREAD_MIN_PUTS'] = saved;
      useDrivers(['better-sqlite3', 'node:sqlite']);
    });

    test('rows and records written by the thread read back exactly, after a reopen too', () => {
      const s = store('rows.db');
      const link: Entry = { ...file('d/l'), kind: 'symlink', target: '../x y', size: 4 };
      const all = [dir('d'), file('d/a'), link, file('d/e/f', { xattrs: '{"user.k":"dg=="}' })];
      for (let i = 0; i < 300; i++) all.push(file(`m/f${String(i).padStart(3, '0')}`));
      s.write(() => s.put(dir('m')));
      assert.ok(s.threadMode, 'the first put of an empty table starts the thread');
      for (let at = 0; at < all.length; at += 50)
        s.write(() => all.slice(at, at + 50).forEach((e) => s.put(e)));
      const x = file('x');
      delete (x as { digest?: string }).digest;
      s.write(() => s.put(x, 'error', 'vanished'));
      assert.equal(s.size(), all.length + 2);
      assert.deepEqual(s.get('d/l')?.entry, link);
      assert.deepEqual(s.get('d/e/f')?.entry, all[3]);
      assert.deepEqual(s.get('x'), {
        path: 'x',
        entry: x,
        state: 'error',
        message: 'vanished',
      });
      const mNames = (rec: StoredDirRecord | undefined): string[] =>
        rec ? decodeRecord(rec).map((c) => c.name) : [];
      s.flushDirRecords();
      assert.equal(mNames(s.dirRecord('m')).length, 300);
      assert.deepEqual(mNames(s.dirRecord('d')), ['a', 'l']);
      s.close();
      const again = SnapshotStore.open(join(root, 'rows.db'), { create: false });
      open.push(again);
      assert.equal(again.getMeta('dir_records'), 'complete');
      assert.deepEqual(paths(again).length, all.length + 2);
      assert.equal(mNames(again.dirRecord('m')).length, 300);
    });

    test('records of directories done are written during the run; one put to again is written whole at the end', () => {
      const s = store('handover.db');
      const names = (d: string): string[] => {
        const rec = s.dirRecord(d);
        return rec ? decodeRecord(rec).map((c) => c.name) : [];
      };
      // 40 directories of 1,000 files in path order, 500 puts per commit: far more puts
      // than a directory must be left alone for before its record is handed over.
      const d = (i: number): string => `d${String(i).padStart(2, '0')}`;
      const f = (i: number): string => `f${String(i).padStart(4, '0')}`;
      for (let i = 0; i < 40; i++)
        for (let at = 0; at < 1000; at += 500)
          s.write(() => {
            for (let k = at; k < at + 500; k++) s.put(file(`${d(i)}/${f(k)}`));
          });
      assert.ok(s.threadMode);
      // Before any flush: the first directories' records are written already.
      assert.equal(names('d00').length, 1000);
      assert.equal(names('d39').length, 0, 'the last directory is not taken as done');
      assert.equal(s.getMeta('dir_records'), 'partial', 'a kill -9 now rebuilds every record');
      // Late results: a directory handed over gets another child, and its own entry.
      s.write(() => {
        s.put(file('d00/late'));
        for (let i = 0; i < 40; i++) s.put(dir(d(i)));
      });
      s.flushDirRecords();
      assert.equal(s.getMeta('dir_records'), 'complete');
      assert.deepEqual(names('d00'), [...Array.from({ length: 1000 }, (_, k) => f(k)), 'late']);
      assert.equal(names('d39').length, 1000);
      assert.deepEqual(
        names(''),
        Array.from({ length: 40 }, (_, i) => d(i)),
      );
      s.close();
    });

    test('reads and other writes inside a transaction see the rows put before them', () => {
      const s = store('mixed.db');
      s.write(() => {
        s.put(dir('a'));
        s.put(file('a/f'));
        assert.deepEqual(s.get('a/f')?.entry, file('a/f'));
        s.put(file('a/g'));
        s.mark('a/g', 'conflict', 'both changed');
        s.put(file('a/h'));
      });
      s.write(() => s.put(file('a/f', { size: 99 })));
      assert.equal(s.get('a/f')?.entry?.size, 99, 'the later put wins');
      assert.equal(s.get('a/g')?.state, 'conflict');
      s.write(() => {
        s.put(file('b/1'));
        s.move('a', 'c');
        s.put(file('c/new'));
      });
      assert.deepEqual(paths(s), ['b/1', 'c', 'c/f', 'c/g', 'c/h', 'c/new']);
      s.write(() => s.remove('c'));
      assert.deepEqual(paths(s), ['b/1']);
    });

    test('a rolled-back savepoint drops its rows only; a rolled-back transaction all of them', () => {
      const s = store('rollback.db');
      const fail = (fn: () => void): void => assert.throws(() => s.write(fn), /boom/);
      s.write(() => {
        s.put(file('keep1'));
        fail(() => {
          s.put(file('drop1'));
          throw new Error('boom');
        });
        s.put(file('keep2'));
        fail(() => {
          s.put(file('drop2'));
          // A read moves the rows waiting so far to this connection, inside the savepoint.
          assert.equal(s.get('keep1')?.path, 'keep1');
          s.put(file('drop3'));
          throw new Error('boom');
        });
        s.put(file('keep3'));
      });
      fail(() => {
        s.put(file('drop4'));
        throw new Error('boom');
      });
      assert.deepEqual(paths(s), ['keep1', 'keep2', 'keep3']);
    });

    test('rows of a transaction rolled back after thread mode started inside it stay out', () => {
      const s = store('started.db');
      assert.throws(
        () =>
          s.write(() => {
            s.put(file('gone1'));
            assert.ok(s.threadMode, 'the first put started the thread');
            s.put(file('gone2'));
            throw new Error('boom');
          }),
        /boom/,
      );
      s.write(() => s.put(file('kept')));
      assert.deepEqual(paths(s), ['kept']);
    });

    test('a table cleared after its records were written says partial again', () => {
      const s = store('cleared.db');
      s.write(() => s.put(file('a/1')));
      s.flushDirRecords();
      assert.equal(s.getMeta('dir_records'), 'complete');
      s.clear();
      s.write(() => s.put(file('b/2')));
      assert.equal(s.getMeta('dir_records'), 'partial');
      s.flushDirRecords();
      assert.equal(s.getMeta('dir_records'), 'complete');
      assert.deepEqual(paths(s), ['b/2']);
      assert.equal(s.dirRecord('a'), undefined);
      assert.ok(s.dirRecord('b'));
    });

    test('a thread that cannot open the file leaves the store writing alone', () => {
      const p = join(root, 'gone.db');
      const s = store('gone.db');
      // The thread opens the file by its path when the first put starts it.
      rmSync(p);
      s.write(() => s.put(file('f')));
      assert.equal(s.threadMode, false);
      assert.deepEqual(s.get('f')?.entry, file('f'));
    });

    test('a failed write in the thread stops the store with a coded error, every time after', async () => {
      const p = join(root, 'fail.db');
      const s = store('fail.db');
      s.write(() => s.put(file('a')));
      assert.ok(s.threadMode);
      assert.equal(s.get('a')?.path, 'a', 'the thread is done with its batch');
      // Another connection makes the thread's next insert fail, as a full disk would.
      const other = snapshotDriver().open(p, { fileMustExist: true, readonly: false });
      other.exec(
        "CREATE TRIGGER no_room BEFORE INSERT ON entries WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'no room'); END",
      );
      other.close();
      s.write(() => s.put(file('boom')));
      await assert.rejects(s.committed(), /no room/);
      for (const read of [() => s.get('a'), () => s.size()])
        assert.equal(errorCode(read), 'ERR_IO');
      assert.throws(
        () => s.get('a'),
        /Writing the snapshot database failed \(in its writer thread\): .*no room/,
      );
      s.close();
    });
  });
}
