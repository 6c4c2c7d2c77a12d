/**
 * The scan compares each directory with its compact record (schema 004) instead of its
 * rows. It must find exactly what the row-by-row comparison finds, for every kind of
 * change, and the same in a worker thread. Table: one mutation per row, each on a fresh
 * tree recorded by a first scan.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Change } from '../../src/core/change.js';
import { compileFilter } from '../../src/core/filter.js';
import { comparePaths } from '../../src/core/paths.js';
import type { SessionSpec } from '../../src/endpoint/endpoint.js';
import { LocalEndpoint } from '../../src/endpoint/local.js';
import { WorkPool } from '../../src/hash/pool.js';
import { ScanThreads, scanInThread } from '../../src/scan/scan-thread.js';
import type { ScanOptions, ScanResult, ScanSource } from '../../src/scan/scanner.js';
import { joinParts, scanTree, splitTree } from '../../src/scan/scanner.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { tmp, writeTree } from '../helpers.js';

function rowsOnly(store: SnapshotStore): ScanSource {
  return { children: (d) => store.children(d), descendants: (p) => store.descendants(p) };
}

function withRecords(store: SnapshotStore): ScanSource {
  return {
    ...rowsOnly(store),
    dirRecord: (d) => store.dirRecord(d),
    get: (p) => store.get(p),
  };
}

/** A change in a form that compares across scans (entries as the rows give them). */
function summary(r: ScanResult): string[] {
  const one = (c: Change): string =>
    JSON.stringify([c.path, c.from ?? null, c.old, c.new && { ...c.new, ino: 0 }]);
  return r.changes.map(one).sort();
}

/**
 * The scan of a tree cut by splitTree into about `items` items, scanned as `n` parts on
 * this thread (part k takes items k, k + n, ...), joined as ScanThreads joins its threads.
 */
function splitScan(opts: ScanOptions, items: number, n: number): ScanResult {
  const split = splitTree(opts.root, {
    items,
    minNames: 0,
    ...(opts.filter ? { filter: opts.filter } : {}),
  })!;
  const parts = Array.from({ length: n }, (_, k) => {
    let i = k - n;
    return scanTree({ ...opts, part: { items: split.items, take: () => (i += n) } });
  });
  return joinParts(parts, (p) => opts.snapshot.descendants(p));
}

const byPath = <T extends { path: string }>(list: readonly T[]): T[] =>
  [...list].sort((a, b) => comparePaths(a.path, b.path));

interface Row {
  readonly name: string;
  readonly mutate: (root: string, store: SnapshotStore) => void;
  /** Paths the scan must report as changed. */
  readonly changed: readonly string[];
  readonly opts?: Partial<ScanOptions>;
}

const ROWS: Row[] = [
  { name: 'nothing changed', mutate: () => {}, changed: [] },
  {
    name: 'content of the same size (mtime moved)',
    mutate: (r) => {
      writeFileSync(join(r, 'd/a.txt'), 'AAAA');
      utimesSync(join(r, 'd/a.txt'), 1000, 1000);
    },
    changed: ['d/a.txt'],
  },
  {
    name: 'a file grew',
    mutate: (r) => writeFileSync(join(r, 'd/b.txt'), 'bbbbbb'),
    changed: ['d/b.txt'],
  },
  {
    name: 'mode changed',
    mutate: (r) => chmodSync(join(r, 'top.txt'), 0o600),
    changed: ['top.txt'],
  },
  {
    name: 'a file deleted',
    mutate: (r) => unlinkSync(join(r, 'd/a.txt')),
    changed: ['d', 'd/a.txt'],
  },
  {
    name: 'a file added',
    mutate: (r) => writeFileSync(join(r, 'd/new.txt'), 'n'),
    changed: ['d', 'd/new.txt'],
  },
  {
    name: 'a link retargeted (links always take the row path)',
    mutate: (r) => {
      unlinkSync(join(r, 'd/link'));
      symlinkSync('b.txt', join(r, 'd/link'));
    },
    changed: ['d', 'd/link'],
  },
  {
    name: 'a directory deleted (one delete, nothing below)',
    mutate: (r) => rmSync(join(r, 'd/e'), { recursive: true }),
    changed: ['d', 'd/e'],
  },
  {
    name: 'a directory renamed (one rename)',
    mutate: (r) => renameSync(join(r, 'd/e'), join(r, 'moved')),
    changed: ['d', 'moved'],
  },
  {
    name: 'a file replaced by a directory',
    mutate: (r) => {
      unlinkSync(join(r, 'top.txt'));
      mkdirSync(join(r, 'top.txt'));
    },
    changed: ['top.txt'],
  },
  {
    name: 'a path in state error is retried although unchanged',
    mutate: (_r, s) => s.write(() => s.mark('d/b.txt', 'error', 'boom')),
    changed: ['d/b.txt'],
  },
  {
    name: 'a never-synced row whose path is gone is dropped',
    mutate: (_r, s) => s.write(() => s.mark('d/ghost', 'pending')),
    changed: ['d/ghost'],
  },
  {
    name: 'an excluded path is neither synced nor deleted',
    mutate: (r) => writeFileSync(join(r, 'd/a.txt'), 'changed, but excluded'),
    changed: [],
    opts: { filter: compileFilter([{ sign: '-', pattern: 'a.txt' }])! },
  },
  {
    name: 'a FIFO is skipped with a warning, not a change',
    mutate: (r) => execFileSync('mkfifo', [join(r, 'd/fifo')]),
    changed: ['d'],
  },
  {
    name: 'names that sort differently in UTF-16 and UTF-8 (astral and BMP-private)',
    mutate: (r) => {
      writeFileSync(join(r, 'u/\u{1F600}.txt'), 'x');
      writeFileSync(join(r, 'u/\uFF21.txt'), 'y');
    },
    changed: ['u', 'u/\u{1F600}.txt', 'u/\uFF21.txt'],
  },
  {
    // Node reads such a name with U+FFFD in it (and lstat of that finds nothing); the addon
    // leaves the directory to Node's fs, so both scans see the same.
    name: 'a name that is not UTF-8',
    mutate: (r) => writeFileSync(Buffer.from(`${r}/d/bad\xff.txt`, 'latin1'), 'x'),
    changed: ['d'],
  },
];

function fixture(): { root: string; store: SnapshotStore; db: string } {
  const root = tmp();
  const db = join(tmp(), 'snap.db');
  writeTree(root, {
    'top.txt': 't',
    'd/a.txt': 'aaaa',
    'd/b.txt': 'bb',
    'd/e/c.txt': 'ccc',
    'd/e/f/g.txt': 'g',
    'u/\u00e9.txt': 'e',
    'u/\uFF20.txt': 'at',
  });
  symlinkSync('a.txt', join(root, 'd/link'));
  const store = SnapshotStore.open(db, { create: true });
  const first = scanTree({ root, snapshot: rowsOnly(store) });
  assert.deepEqual(first, scanTree({ root, snapshot: rowsOnly(store), nodeListing: true }));
  store.applyChanges(first.changes);
  store.flushDirRecords();
  return { root, store, db };
}

describe('scan against per-directory records', () => {
  for (const row of ROWS) {
    test(row.name, async () => {
      const { root, store, db } = fixture();
      try {
        row.mutate(root, store);
        store.flushDirRecords();
        assert.ok(store.dirRecord('d'), 'the records exist, so the scan uses them');
        const opts = { root, ...row.opts };
        const byRows = scanTree({ ...opts, snapshot: rowsOnly(store) });
        const byRecords = scanTree({ ...opts, snapshot: withRecords(store) });
        assert.deepEqual(summary(byRecords), summary(byRows));
        assert.deepEqual(byRecords.stats, byRows.stats);
        assert.deepEqual(byRecords.warnings, byRows.warnings);
        assert.deepEqual(byRecords.changes.map((c) => c.path).sort(), [...row.changed].sort());
        // Listed by Node's fs instead of the scan addon: the very same scan.
        const byNode = scanTree({ ...opts, snapshot: withRecords(store), nodeListing: true });
        assert.deepEqual(byNode, byRecords);
        assert.deepEqual(
          scanTree({ ...opts, snapshot: rowsOnly(store), nodeListing: true }),
          byRows,
        );
        // Cut into parts (renames may cross them), it is the same scan, in the same order.
        for (const items of [1, 3, 100])
          for (const n of [1, 2, 3]) {
            const split = splitScan({ ...opts, snapshot: withRecords(store) }, items, n);
            const at = `${items} items, ${n} parts`;
            assert.deepEqual(split.changes, byRecords.changes, at);
            assert.deepEqual(split.stats, byRecords.stats, at);
            assert.deepEqual(split.warnings, byPath(byRecords.warnings), at);
            assert.deepEqual(split.problems, byPath(byRecords.problems), at);
          }
        if (row.opts === undefined) {
          const threaded = await scanInThread({
            root,
            dbPath: db,
            driver: store.driver,
            decorate: { atime: false },
          });
          assert.deepEqual(summary(threaded), summary(byRows));
        }
      } finally {
        store.close();
      }
    });
  }
});

describe('scan threads', () => {
  test('a damaged snapshot seen from a scan thread is a SessionError, not a crash', async () => {
    const root = tmp();
    const db = join(tmp(), 'snap.db');
    writeFileSync(db, 'this is not a database, just text that is long enough '.repeat(40));
    await assert.rejects(
      scanInThread({ root, dbPath: db, driver: 'better-sqlite3', decorate: { atime: false } }),
      (e: unknown) => (e as { code?: string }).code === 'ERR_DB_CORRUPT',
    );
  });

  test('progress is reported on the calling thread every 256 directories', async () => {
    const root = tmp();
    const db = join(tmp(), 'snap.db');
    const files: Record<string, string> = {};
    for (let i = 0; i < 600; i++) files[`d${i}/f.txt`] = 'x';
    writeTree(root, files);
    SnapshotStore.open(db, { create: true }).close();
    const seen: number[] = [];
    const r = await scanInThread(
      { root, dbPath: db, driver: 'better-sqlite3', decorate: { atime: false } },
      (p) => seen.push(p.dirs),
    );
    assert.equal(r.stats.files, 600);
    // 601 directories (the root and d0..d599): progress at 256 and 512.
    assert.deepEqual(seen, [256, 512]);
  });

  test('ScanThreads runs at most its limit of scans at once; 0 scans on this thread', async () => {
    const { root, store, db } = fixture();
    const job = { root, dbPath: db, driver: store.driver, decorate: { atime: false } };
    for (const limit of [0, 1, 2]) {
      const threads = new ScanThreads(limit);
      const results = await Promise.all([
        threads.scan(job, 1e9, store),
        threads.scan(job, 1e9, store),
        threads.scan(job, 1e9, store),
      ]);
      assert.equal(threads.peak, limit);
      for (const r of results) assert.deepEqual(r.changes, []);
    }
    // A small snapshot is scanned on this thread whatever the limit.
    const small = new ScanThreads(2);
    await small.scan(job, 10, store);
    assert.equal(small.peak, 0);
    store.close();
  });

  test('a big tree alone is split across the free threads; two at once get one each', async () => {
    const { root, store, db } = fixture();
    renameSync(join(root, 'd/e'), join(root, 'u/moved'));
    writeFileSync(join(root, 'd/new.txt'), 'n');
    const job = { root, dbPath: db, driver: store.driver, decorate: { atime: false } };
    const plain = scanTree({ root, snapshot: withRecords(store) });
    assert.ok(plain.changes.some((c) => c.from === 'd/e'));
    const alone = new ScanThreads(2);
    const r = await alone.scan(job, 1e9, store);
    assert.deepEqual([alone.peak, alone.splits], [2, 1]);
    assert.deepEqual(r.changes, plain.changes);
    assert.deepEqual(r.stats, plain.stats);
    const both = new ScanThreads(2);
    const [a, b] = await Promise.all([both.scan(job, 1e9, store), both.scan(job, 1e9, store)]);
    assert.deepEqual([both.peak, both.splits], [2, 0]);
    assert.deepEqual(a.changes, plain.changes);
    assert.deepEqual(b.changes, plain.changes);
    store.close();
  });

  test('a first scan goes to the threads when the listing shows a big tree', async () => {
    const root = tmp();
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`d${i % 30}/e${i % 7}/f${i}`] = 'x';
    writeTree(root, files);
    const db = join(tmp(), 'snap.db');
    const store = SnapshotStore.open(db, { create: true });
    const job = { root, dbPath: db, driver: store.driver, decorate: { atime: false } };
    const saved = process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES'];
    try {
      process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES'] = '100';
      const big = new ScanThreads(2);
      const r = await big.scan(job, 0, store);
      assert.deepEqual([big.peak, big.splits], [2, 1]);
      assert.equal(r.stats.files, 300);
      assert.deepEqual(r.changes, scanTree({ root, snapshot: withRecords(store) }).changes);
      process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES'] = '1000';
      const small = new ScanThreads(2);
      assert.equal((await small.scan(job, 0, store)).stats.files, 300);
      assert.equal(small.peak, 0, 'fewer names than the threshold: scanned on this thread');
    } finally {
      if (saved === undefined) delete process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES'];
      else process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES'] = saved;
      store.close();
    }
  });

  test("a reset's first scan goes to a thread when the snapshot it dropped was big", async () => {
    const dir = join(tmp(), 'd');
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`d${i % 10}/f${i}`] = 'x';
    writeTree(dir, files);
    const spec: SessionSpec = {
      identity: { name: 's', localDir: dir, remoteDir: '/r', remoteHost: '', direction: 'push' },
      role: 'local',
      dir,
      createDir: false,
      placement: { preserveMtime: false, preserveUid: false, preserveGid: false },
    };
    const pool = new WorkPool(1);
    const saved = process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES'];
    // Far more than the 210 paths: only the dropped file's size can send the scan away.
    process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES'] = '1000';
    try {
      const run = async (reset: boolean, threads: ScanThreads) => {
        const ep = new LocalEndpoint(pool, 'local', { scanThreads: threads });
        await ep.prepare(spec);
        await ep.open({ reset });
        const scan = await ep.scan();
        await ep.record(
          scan.changes.map((c) => ({ kind: 'put', entry: c.new!, replaceBelow: false })),
        );
        await ep.finish({ status: 'ok' });
        return scan;
      };
      const first = new ScanThreads(2);
      const firstScan = await run(false, first);
      assert.equal(first.peak, 0, 'a first scan of an unknown tree stays on this thread');
      // Pad the database file past what 1000 entries would take (the estimate is by size).
      const db = join(dir, '.private-asp', 's', 'snap.db');
      const pad = SnapshotStore.open(db, { create: false });
      pad.setMeta({ padding: 'p'.repeat(400_000) });
      pad.close();
      const reset = new ScanThreads(2);
      const resetScan = await run(true, reset);
      assert.equal(reset.peak, 2, 'the reset scanned in threads (split: the only tree scanning)');
      assert.deepEqual(summary(resetScan), summary(firstScan));
    } finally {
      if (saved === undefined) delete process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES'];
      else process.env['ASYNC_SCAN_THREAD_MIN_ENTRIES'] = saved;
      await pool.close();
    }
  });

  test('records rebuilt in a thread are those the calling thread would build', async () => {
    const { store } = fixture();
    // Drop every record, as a new database has none.
    store.write(() => store.deleteByState('pending'));
    const work = store.pendingRecords();
    assert.deepEqual(work, { all: true, dirs: [] });
    const dirs = ['', 'd', 'd/e', 'd/e/f', 'u'];
    const saved = process.env['ASYNC_RECORD_THREAD_MIN_DIRS'];
    process.env['ASYNC_RECORD_THREAD_MIN_DIRS'] = '0';
    try {
      assert.ok(dirs.every((d) => store.dirRecord(d) === undefined));
      const threads = new ScanThreads(1);
      await threads.rebuildRecords(store);
      assert.equal(threads.peak, 1, 'rebuilt in a thread');
      assert.equal(store.pendingRecords(), undefined);
      assert.equal(store.getMeta('dir_records'), 'complete');
      const inThread = dirs.map((d) => store.dirRecord(d));
      assert.ok(inThread.every((r) => r !== undefined));
      // The same records, built here.
      store.write(() => store.deleteByState('pending'));
      store.flushDirRecords();
      assert.deepEqual(
        dirs.map((d) => store.dirRecord(d)),
        inThread,
      );
      // A few directories stay on this thread.
      delete process.env['ASYNC_RECORD_THREAD_MIN_DIRS'];
      store.write(() => store.put({ ...store.get('d/e/c.txt')!.entry!, size: 99 }));
      assert.deepEqual(store.pendingRecords(), { all: false, dirs: ['d/e'] });
      const few = new ScanThreads(1);
      await few.rebuildRecords(store);
      assert.equal(few.peak, 0);
      assert.equal(store.pendingRecords(), undefined);
      assert.ok(store.dirRecord('d/e'));
    } finally {
      if (saved === undefined) delete process.env['ASYNC_RECORD_THREAD_MIN_DIRS'];
      else process.env['ASYNC_RECORD_THREAD_MIN_DIRS'] = saved;
      store.close();
    }
  });

  test('a record rebuild the thread cannot do (its database file vanished) is done here', async () => {
    const { store, db } = fixture();
    store.write(() => store.deleteByState('pending'));
    // The thread opens the file by name; this connection still holds the unlinked file.
    for (const suffix of ['', '-wal', '-shm']) rmSync(db + suffix, { force: true });
    const saved = process.env['ASYNC_RECORD_THREAD_MIN_DIRS'];
    process.env['ASYNC_RECORD_THREAD_MIN_DIRS'] = '0';
    try {
      const threads = new ScanThreads(1);
      await threads.rebuildRecords(store);
      assert.equal(threads.peak, 1, 'the thread was tried');
      assert.equal(store.pendingRecords(), undefined);
      assert.equal(store.getMeta('dir_records'), 'complete');
      assert.ok(store.dirRecord('d/e'));
    } finally {
      if (saved === undefined) delete process.env['ASYNC_RECORD_THREAD_MIN_DIRS'];
      else process.env['ASYNC_RECORD_THREAD_MIN_DIRS'] = saved;
      store.close();
    }
  });
});

describe('scan order', () => {
  const inOrder = (r: ScanResult): void => {
    const paths = r.changes.map((c) => c.path);
    assert.deepEqual(paths, [...paths].sort(comparePaths));
  };

  test('changes come in comparePaths order (a directory, then what is below it, then its next sibling)', async () => {
    const root = tmp();
    const db = join(tmp(), 'snap.db');
    // 'a-b' and 'a.c' sort between 'a' and what is below 'a' by plain string order, after
    // it by comparePaths; the deep directory's parents hold no change on the rescan.
    writeTree(root, {
      'a-b': '1',
      'a/x/y/z.txt': '2',
      'a/x/w.txt': '3',
      'a.c/q': '4',
      'a/a': '5',
      'b/deep/er/still/f.txt': '6',
      c: '7',
    });
    mkdirSync(join(root, 'empty'));
    const store = SnapshotStore.open(db, { create: true });
    try {
      const first = scanTree({ root, snapshot: withRecords(store) });
      assert.equal(first.changes.length, 16);
      inOrder(first);
      const threaded = await scanInThread({
        root,
        dbPath: db,
        driver: store.driver,
        decorate: { atime: false },
      });
      assert.deepEqual(
        threaded.changes.map((c) => c.path),
        first.changes.map((c) => c.path),
      );
      store.applyChanges(first.changes);
      store.flushDirRecords();
      // Changes spread over directories whose parents did not change. (Adds and deletes
      // together go through rename detection, which puts renames first.)
      writeFileSync(join(root, 'b/deep/er/still/g.txt'), 'new');
      writeFileSync(join(root, 'a/x/y/z.txt'), 'longer');
      writeFileSync(join(root, 'a/0'), 'new');
      writeFileSync(join(root, 'a-b'), '11');
      const rescan = scanTree({ root, snapshot: withRecords(store) });
      assert.deepEqual(
        rescan.changes.map((c) => c.path),
        ['a', 'a/0', 'a/x/y/z.txt', 'a-b', 'b/deep/er/still', 'b/deep/er/still/g.txt'],
      );
    } finally {
      store.close();
    }
  });
});
