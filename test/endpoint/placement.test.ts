/**
 * Where a file is placed: a file that comes in one piece is created, given its metadata and
 * (when nothing is expected at the target) renamed into place by the pool worker; whatever
 * the worker cannot do falls back to the main thread for that file only. Each row runs a
 * real sender and receiver LocalEndpoint on temp dirs and checks the placed file, the
 * receiver's snapshot (a rescan finds nothing: the recorded entry is what is on disk) and
 * that the transfer cache holds nothing afterwards.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  chmodSync,
  existsSync,
  lstatSync,
  readFileSync,
  readdirSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Entry } from '../../src/core/entry.js';
import type { PlacementPolicy, SessionSpec } from '../../src/endpoint/endpoint.js';
import { LocalEndpoint } from '../../src/endpoint/local.js';
import { WorkPool } from '../../src/hash/pool.js';
import { planBatches } from '../../src/transfer/batches.js';
import { UNDER_BUNDLE, tmp, writeTree } from '../helpers.js';

const BASE: PlacementPolicy = { preserveMtime: true, preserveUid: false, preserveGid: false };
const UMASK_MODE = 0o666 & ~process.umask() & 0o7777;
const OLD_ATIME = Date.UTC(2020, 0, 2) / 1000;
const OLD_MTIME = Date.UTC(2021, 5, 6) / 1000;

function spec(role: 'local' | 'remote', dir: string, placement: PlacementPolicy): SessionSpec {
  return {
    identity: {
      name: 'pl',
      localDir: '/src',
      remoteDir: '/dst',
      remoteHost: '',
      direction: 'push',
    },
    role,
    dir,
    createDir: true,
    placement,
  };
}

interface Row {
  readonly name: string;
  readonly placement: PlacementPolicy;
  /** A file already at the receiver's target (tracked: it is what the plan expects). */
  readonly existing?: { content: string; mode: number };
  /** An xattr set on the source file (skipped where the file system refuses xattrs). */
  readonly xattr?: boolean;
  readonly mode: number;
  readonly atime?: boolean;
}

const rows: Row[] = [
  { name: 'a new file: mode and mtime set by the worker', placement: BASE, mode: 0o640 },
  {
    name: '--preserve-access-time: the worker sets the access time too',
    placement: { ...BASE, preserveAtime: true },
    mode: 0o640,
    atime: true,
  },
  {
    name: '--ignore-mode: a new file gets the umask mode',
    placement: { ...BASE, ignoreMode: true },
    mode: UMASK_MODE,
  },
  {
    name: '--ignore-mode: a replaced file keeps its mode (worker creates, main thread places)',
    placement: { ...BASE, ignoreMode: true },
    existing: { content: 'old', mode: 0o604 },
    mode: 0o604,
  },
  {
    name: 'a replaced file: created by the worker, re-checked and placed on the main thread',
    placement: BASE,
    existing: { content: 'old', mode: 0o600 },
    mode: 0o640,
  },
  {
    name: '--preserve-xattrs: the file is created and placed on the main thread, with its xattrs',
    placement: { ...BASE, preserveXattrs: true },
    xattr: true,
    mode: 0o640,
  },
];

describe('worker placement and its main-thread fallbacks', () => {
  let pool: WorkPool;
  before(() => {
    pool = new WorkPool(2);
  });
  after(async () => {
    await pool.close();
  });

  for (const row of rows) {
    test(row.name, { skip: row.xattr === true && UNDER_BUNDLE && 'no xattr module' }, async (t) => {
      const root = tmp();
      const src = join(root, 'src');
      const dst = join(root, 'dst');
      writeTree(src, { 'd/f.txt': 'new content' });
      const f = join(src, 'd', 'f.txt');
      chmodSync(f, 0o640);
      utimesSync(f, OLD_ATIME, OLD_MTIME);
      if (row.xattr) {
        const x = createRequire(import.meta.url)('@napi-rs/xattr') as {
          setAttributeSync(p: string, n: string, v: Buffer): void;
        };
        try {
          x.setAttributeSync(f, 'user.color', Buffer.from('blue'));
        } catch {
          t.skip('this file system refuses user xattrs');
          return;
        }
      }
      const sender = new LocalEndpoint(pool, 'local');
      await sender.prepare(spec('local', src, row.placement));
      await sender.open({ reset: false });
      const receiver = new LocalEndpoint(pool, 'peer');
      await receiver.prepare(spec('remote', dst, row.placement));
      await receiver.open({ reset: false });
      try {
        if (row.existing) {
          writeTree(dst, { 'd/f.txt': row.existing.content });
          chmodSync(join(dst, 'd', 'f.txt'), row.existing.mode);
        }
        const entries = (await sender.list('')).filter((e) => e.path !== '');
        const dirs = entries.filter((e) => e.kind === 'dir');
        await receiver.apply(dirs.map((e) => ({ op: 'mkdir', path: e.path, entry: e })));
        const here = new Map((await receiver.list('')).map((e) => [e.path, e]));
        const files = entries.filter((e) => e.kind === 'file');
        const results = [];
        for (const segs of planBatches(files)) {
          const batch = await sender.read(segs);
          const expect = (e: Entry): Entry | null =>
            here.get(e.path)?.kind === 'file' ? here.get(e.path)! : null;
          results.push(
            ...(await receiver.write({
              ...batch,
              segments: batch.segments.map((s) => ({ ...s, expect: expect(s.entry) })),
            })),
          );
        }
        assert.deepEqual(
          results.map((r) => r.ok),
          [true],
          JSON.stringify(results),
        );
        await receiver.settle(dirs);
        const out = join(dst, 'd', 'f.txt');
        const st = lstatSync(out);
        assert.equal(readFileSync(out, 'utf8'), 'new content');
        assert.equal((st.mode & 0o7777).toString(8), row.mode.toString(8));
        assert.equal(Math.round(st.mtimeMs), OLD_MTIME * 1000);
        if (row.atime) assert.equal(Math.round(st.atimeMs), OLD_ATIME * 1000);
        if (row.xattr) {
          const x = createRequire(import.meta.url)('@napi-rs/xattr') as {
            getAttributeSync(p: string, n: string): Buffer | null;
          };
          assert.equal(x.getAttributeSync(out, 'user.color')?.toString(), 'blue');
        }
        const cache = join(dst, '.private-asp', 'pl', 'cache');
        const left = readdirSync(cache, { recursive: true, withFileTypes: true }).filter((e) =>
          e.isFile(),
        );
        assert.deepEqual(left, [], 'nothing is left in the transfer cache');
        // The recorded entry is the placed file as a scan sees it.
        assert.deepEqual((await receiver.scan()).changes, []);
      } finally {
        await receiver.finish({ status: 'ok' });
        await sender.finish({ status: 'ok' });
      }
      assert.ok(!existsSync(join(dst, '.private-asp', 'pl', 'cache')));
    });
  }

  test('a file that appears at the target after the plan is left alone (the worker does not rename over it)', async () => {
    const root = tmp();
    const src = join(root, 'src');
    const dst = join(root, 'dst');
    writeTree(src, { 'a.txt': 'sent' });
    const sender = new LocalEndpoint(pool, 'local');
    await sender.prepare(spec('local', src, BASE));
    await sender.open({ reset: false });
    const receiver = new LocalEndpoint(pool, 'peer');
    await receiver.prepare(spec('remote', dst, BASE));
    await receiver.open({ reset: false });
    try {
      const files = (await sender.list('')).filter((e) => e.kind === 'file');
      const batch = await sender.read([...planBatches(files)][0]!);
      // Appears between the plan (nothing expected) and the write.
      writeFileSync(join(dst, 'a.txt'), 'made at the receiver');
      const r = await receiver.write({
        ...batch,
        segments: batch.segments.map((s) => ({ ...s, expect: null })),
      });
      assert.equal(r[0]!.ok, false);
      assert.match(r[0]!.ok ? '' : r[0]!.message, /something appeared at the target/);
      assert.equal(readFileSync(join(dst, 'a.txt'), 'utf8'), 'made at the receiver');
    } finally {
      await receiver.finish({ status: 'partial' });
      await sender.finish({ status: 'ok' });
    }
  });
});
