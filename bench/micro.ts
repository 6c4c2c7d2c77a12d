/**
 * `npm run bench:micro`: tinybench micro-benchmarks of the hot parts of a huge-tree run.
 *
 *   hashing      XXH64 over files: one thread (read + hash inline) vs the worker pool; and
 *                from memory, the addon's (src/native/fsio.c) against xxhash-wasm's
 *   stat batch   lstatSync over a directory's listing (the scanner's inner loop), and the
 *                listing plus lstat of each directory by Node's fs and by the scan addon
 *   snapshot     batch insert of N records, then the ordered full read and per-dir reads,
 *                the rebuild of the per-directory records and the scan's read of them
 *   reconcile    reconcileOneWay over N sender changes (an initial push of N files)
 *
 *   npm run bench:micro -- [--entries 1000000] [--hash-mib 512]
 *
 * Sizes follow --entries N (default 1,000,000 for reconcile and the snapshot, 100,000 stat
 * targets) and --hash-mib MIB (default 512 MiB of files to hash); --help lists the options.
 * Prints a table of rates.
 */
import { randomFillSync } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { nativeListDir } from '../src/scan/native-list.js';
import type { Change } from '../src/core/change.js';
import type { Entry } from '../src/core/entry.js';
import { reconcileOneWay } from '../src/core/reconcile.js';
import { CHUNK_SIZE, combineDigests, loadHasher, pieceDigest } from '../src/hash/digest.js';
import { WorkPool } from '../src/hash/pool.js';
import { DirRecordReader } from '../src/snapshot/dir-record.js';
import { SnapshotStore } from '../src/snapshot/store.js';
import { buildTree } from '../fixtures/tree.js';
import { benchArgs } from './args.js';

const { values: flags } = benchArgs({
  script: 'micro',
  summary:
    'tinybench micro-benchmarks of the hot parts of a huge-tree run (hashing, lstat ' +
    'batches, snapshot insert and reads, per-directory records, reconcile); a table of rates.',
  usage: ['npm run bench:micro -- [options]', 'node dist/bench/micro.js [options]'],
  options: {
    entries: {
      type: 'integer',
      min: 1,
      default: 1_000_000,
      help: 'records for the snapshot and reconcile cases; stat targets: at most 100000',
    },
    'hash-mib': {
      type: 'integer',
      min: 1,
      default: 512,
      arg: 'MIB',
      help: 'MiB of files to hash',
    },
  },
});
const ENTRIES = flags.entries;
const HASH_MIB = flags['hash-mib'];
const STAT_FILES = Math.min(100_000, ENTRIES);

interface Line {
  what: string;
  mean_ms: number;
  rate: string;
  samples: number;
}
const lines: Line[] = [];

function add(bench: Bench, unitsPerRun: number, unit: string): void {
  for (const t of bench.tasks) {
    const r = t.result;
    if (!r || !('latency' in r)) {
      lines.push({ what: t.name, mean_ms: NaN, rate: 'failed', samples: 0 });
      continue;
    }
    const ms = r.latency.mean;
    const perSec = (unitsPerRun / ms) * 1000;
    const rate =
      unit === 'B'
        ? `${(perSec / 1e9).toFixed(2)} GB/s`
        : `${Math.round(perSec).toLocaleString('en')} ${unit}/s`;
    lines.push({
      what: t.name,
      mean_ms: Number(ms.toFixed(1)),
      rate,
      samples: r.latency.samples.length,
    });
  }
}

function entry(i: number, dir: string): Entry {
  return {
    path: `${dir}/f${i}.dat`,
    kind: 'file',
    size: i % 4097,
    mtimeMs: 1.6e12 + i,
    mode: 0o644,
    ino: 1000 + i,
    uid: 1000,
    gid: 1000,
    digest: (i * 2654435761).toString(16).padStart(16, '0'),
  };
}

const dirOf = (i: number): string =>
  `d${String(Math.floor(i / 50) % 100).padStart(2, '0')}/d${Math.floor(i / 5000)}`;

async function hashing(work: string): Promise<void> {
  const dir = join(work, 'hash');
  const fileMiB = 32;
  const files = Math.max(2, Math.round(HASH_MIB / fileMiB));
  // Files of fileMiB each, random bytes (hashing speed does not depend on them).
  mkdirSync(dir, { recursive: true });
  const block = randomFillSync(new Uint8Array(fileMiB * 1024 * 1024));
  const paths: { abs: string; size: number }[] = [];
  for (let i = 0; i < files; i++) {
    const abs = join(dir, `h${i}.bin`);
    writeFileSync(abs, block);
    paths.push({ abs, size: block.length });
  }
  const total = paths.reduce((n, p) => n + p.size, 0);
  const h = await loadHasher();
  const buf = new Uint8Array(CHUNK_SIZE);
  const pool = new WorkPool();
  const bench = new Bench({ time: 2000, iterations: 3, warmup: true, warmupIterations: 1 });
  bench.add('hash files: one thread (read + xxh64 inline)', () => {
    for (const p of paths) {
      const fd = openSync(p.abs, 'r');
      const pieces: bigint[] = [];
      let pos = 0;
      for (;;) {
        const n = readSync(fd, buf, 0, CHUNK_SIZE, pos);
        if (n === 0) break;
        pieces.push(pieceDigest(h, buf.subarray(0, n)));
        pos += n;
      }
      closeSync(fd);
      combineDigests(h, pieces);
    }
  });
  bench.add(`hash files: worker pool (${pool.threads || 'n'} threads, batches of 1)`, async () => {
    await Promise.all(
      paths.map((p) => {
        const st = lstatSync(p.abs);
        return pool.hash([
          { abs: p.abs, expect: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } },
        ]);
      }),
    );
  });
  const mem = new Uint8Array(64 * 1024 * 1024).fill(7);
  bench.add('xxh64 from memory, 64 MiB, one thread (pieceDigest: the addon where it loads)', () => {
    for (let p = 0; p < mem.length; p += CHUNK_SIZE)
      pieceDigest(h, mem.subarray(p, p + CHUNK_SIZE));
  });
  bench.add('xxh64 from memory, 64 MiB, one thread (xxhash-wasm)', () => {
    for (let p = 0; p < mem.length; p += CHUNK_SIZE) h.h64Raw(mem.subarray(p, p + CHUNK_SIZE), 0n);
  });
  await bench.run();
  add({ tasks: bench.tasks.slice(0, 2) } as unknown as Bench, total, 'B');
  add({ tasks: bench.tasks.slice(2) } as unknown as Bench, mem.length, 'B');
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}

async function statBatch(work: string): Promise<void> {
  const dir = join(work, 'stat');
  buildTree(dir, {
    seed: 8,
    files: STAT_FILES,
    dirs: Math.max(1, STAT_FILES / 50),
    depth: 2,
    dist: 'small',
  });
  const dirs: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
    }
    dirs.push(d);
  };
  walk(dir);
  const listings = dirs.map((d) => ({ d, names: readdirSync(d) }));
  const bench = new Bench({ time: 2000, iterations: 3 });
  bench.add(`lstatSync batches per directory (${STAT_FILES} files)`, () => {
    for (const { d, names } of listings) for (const n of names) lstatSync(join(d, n));
  });
  bench.add(`lstatSync, bigint: false, throwIfNoEntry: false (${STAT_FILES} files)`, () => {
    for (const { d, names } of listings)
      for (const n of names) lstatSync(join(d, n), { throwIfNoEntry: false });
  });
  // The whole per-directory step of a scan, both ways: Node's fs, or the scan addon.
  bench.add(`readdirSync + lstatSync of each name (${STAT_FILES} files)`, () => {
    for (const d of dirs)
      for (const n of readdirSync(d)) lstatSync(join(d, n), { throwIfNoEntry: false });
  });
  const list = nativeListDir();
  if (list)
    bench.add(`scan addon: one list() per directory (${STAT_FILES} files)`, () => {
      for (const d of dirs) list(d);
    });
  else
    console.warn('micro: the scan addon is not built (npm run build:addons); its row is left out');
  const perFile = bench.tasks.length;
  bench.add(`readdirSync withFileTypes, names only (${dirs.length} dirs)`, () => {
    for (const d of dirs) readdirSync(d, { withFileTypes: true });
  });
  await bench.run();
  add({ tasks: bench.tasks.slice(0, perFile) } as unknown as Bench, STAT_FILES, 'files');
  add({ tasks: bench.tasks.slice(perFile) } as unknown as Bench, dirs.length, 'dirs');
  rmSync(dir, { recursive: true, force: true });
}

async function snapshot(work: string): Promise<void> {
  const db = join(work, 'snap.db');
  const store = SnapshotStore.open(db, { create: true });
  const entries = Array.from({ length: ENTRIES }, (_, i) => entry(i, dirOf(i)));
  const dirs = [...new Set(entries.map((e) => e.path.slice(0, e.path.lastIndexOf('/'))))];
  const bench = new Bench({ time: 1, iterations: 1, warmup: false });
  bench.add(`snapshot: insert ${ENTRIES} records, batches of 10k`, () => {
    store.clear();
    for (let i = 0; i < entries.length; i += 10_000) {
      store.write(() => {
        for (const e of entries.slice(i, i + 10_000)) store.put(e);
      });
    }
  });
  bench.add(`snapshot: ordered full read of ${ENTRIES} records`, () => {
    let n = 0;
    for (const r of store.iterate()) if (r.entry) n++;
    if (n !== ENTRIES) throw new Error(`read ${n} of ${ENTRIES}`);
  });
  bench.add(`snapshot: children() of each of ${dirs.length} dirs (the scan's reads)`, () => {
    let n = 0;
    for (const d of dirs) n += store.children(d).length;
    if (n !== ENTRIES) throw new Error(`read ${n} of ${ENTRIES}`);
  });
  bench.add(`snapshot: rebuild the records of all ${dirs.length} dirs (schema 004)`, () => {
    // What the first open after an upgrade from schema 003 (or a kill -9) pays once.
    store.write(() => store.eraseOne(entries[0]!.path));
    store.write(() => store.put(entries[0]!));
    store.deleteByState('error');
    store.flushDirRecords();
  });
  // The scan's side of schema 004: each directory's listing, sorted, with its stat values.
  const listings = new Map<string, Entry[]>();
  for (const e of entries) {
    const d = e.path.slice(0, e.path.lastIndexOf('/'));
    let l = listings.get(d);
    if (!l) listings.set(d, (l = []));
    l.push(e);
  }
  const nameOf = (e: Entry): string => e.path.slice(e.path.lastIndexOf('/') + 1);
  const sorted = [...listings].map(([d, l]) => {
    const byName = l.map((e) => [nameOf(e), e] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    return { d, names: byName.map((x) => x[0]), es: byName.map((x) => x[1]) };
  });
  const noop = (): void => {};
  bench.add(
    `snapshot: dirRecord() of each of ${dirs.length} dirs, every child compared in place (schema 004)`,
    () => {
      let n = 0;
      for (const { d, names, es } of sorted) {
        const rec = store.dirRecord(d);
        if (!rec) throw new Error(`no record for ${d}`);
        const r = new DirRecordReader(rec.names, rec.attrs);
        for (let j = 0; j < names.length; j++) {
          const e = es[j]!;
          const k = r.seek(names[j]!, noop);
          if (k >= 0 && r.same(k, 1, e.size, e.mtimeMs, e.mode, e.ino, e.uid, e.gid)) n++;
        }
      }
      if (n !== ENTRIES) throw new Error(`matched ${n} of ${ENTRIES}`);
    },
  );
  await bench.run();
  add(bench, ENTRIES, 'records');
  store.close();
}

async function reconcile(): Promise<void> {
  const sender: Change[] = Array.from({ length: ENTRIES }, (_, i) => {
    const e = entry(i, dirOf(i));
    return { path: e.path, old: null, new: e };
  });
  const noChange: Change[] = [];
  const bench = new Bench({ time: 1, iterations: 3, warmup: false });
  bench.add(`reconcile: ${ENTRIES} sender adds, receiver unchanged`, () => {
    reconcileOneWay({ sender, receiver: noChange, overwrite: 'always' });
  });
  bench.add(`reconcile: ${ENTRIES} adds on both sides (a reset)`, () => {
    reconcileOneWay({ sender, receiver: sender, overwrite: 'always' });
  });
  await bench.run();
  add(bench, ENTRIES, 'entries');
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'open-async-micro-'));
  mkdirSync(work, { recursive: true });
  try {
    await hashing(work);
    await statBatch(work);
    await snapshot(work);
    await reconcile();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log('| micro-benchmark | mean ms | rate | samples |\n|---|---|---|---|');
  for (const l of lines) console.log(`| ${l.what} | ${l.mean_ms} | ${l.rate} | ${l.samples} |`);
}

main().catch((e: unknown) => {
  console.error(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
