/**
 * The Endpoint conformance suite (after rclone's fstests): one list of behaviours the engine
 * relies on, run against every implementation (LocalEndpoint in process, RemoteEndpoint
 * against a real daemon). A sender LocalEndpoint on a source tree feeds the endpoint under
 * test through the contract only, as the engine does.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Entry } from '../../src/core/entry.js';
import type { Endpoint, PlaceResult, SessionSpec } from '../../src/endpoint/endpoint.js';
import { LocalEndpoint } from '../../src/endpoint/local.js';
import { WorkPool } from '../../src/hash/pool.js';
import { planBatches } from '../../src/transfer/batches.js';
import { describeTree, tmp, writeTree } from '../helpers.js';

export interface Subject {
  readonly ep: Endpoint;
  /** The directory as the spec names it. */
  readonly dir: string;
  /** Where it is on this machine, to check the results. */
  readonly abs: string;
}

export interface Implementation {
  readonly name: string;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** A fresh endpoint on directory `key` (the same key names the same directory). */
  make(key: string): Promise<Subject>;
}

function spec(name: string, dir: string, createDir: boolean): SessionSpec {
  return {
    identity: { name, localDir: '/client/src', remoteDir: dir, remoteHost: 'h', direction: 'push' },
    role: 'remote',
    dir,
    createDir,
    placement: { preserveMtime: true, preserveUid: false, preserveGid: false },
  };
}

export function conformance(impl: Implementation): void {
  describe(`Endpoint conformance: ${impl.name}`, () => {
    let pool: WorkPool;
    let src: string;
    let sender: LocalEndpoint;
    let files: Entry[];
    before(async () => {
      await impl.setup?.();
      pool = new WorkPool(2);
      src = tmp();
      writeTree(src, {
        'small/a.txt': 'alpha',
        'small/b.txt': 'bravo',
        'empty.txt': '',
        'big.bin': Buffer.alloc(9 * 1024 * 1024 + 17, 7),
      });
      sender = new LocalEndpoint(pool, 'local');
      await sender.prepare({ ...spec('conf', src, false), role: 'local' });
      await sender.open({ reset: false });
      files = (await sender.list('')).filter((e) => e.path !== '');
    });
    after(async () => {
      await sender.finish({ status: 'ok' });
      await pool.close();
      await impl.teardown?.();
    });

    /** Sends `files` the way the pump does: batches read at the sender, written at `to`. */
    async function send(to: Endpoint, entries: readonly Entry[]): Promise<PlaceResult[]> {
      const out: PlaceResult[] = [];
      const dirs = entries.filter((e) => e.kind === 'dir');
      const ar = await to.apply(
        dirs.map((e) => ({ op: 'mkdir', path: e.path, entry: e, expect: null })),
      );
      assert.ok(
        ar.every((r) => r.ok),
        JSON.stringify(ar),
      );
      for (const segs of planBatches(entries.filter((e) => e.kind !== 'dir'))) {
        const batch = await sender.read(segs);
        const withExpect = {
          ...batch,
          segments: batch.segments.map((s) => ({ ...s, expect: null })),
        };
        out.push(...(await to.write(withExpect)));
      }
      return out;
    }

    test('a missing directory is refused without --create-dir, created with it', async () => {
      const s = await impl.make('missing');
      await assert.rejects(s.ep.prepare(spec('c1', s.dir, false)), /does not exist/);
      const s2 = await impl.make('missing');
      const p = await s2.ep.prepare(spec('c1', s2.dir, true));
      assert.equal(p.dbExisted, false);
      assert.ok(existsSync(s2.abs));
    });

    test('placed files are whole, recorded, readable and hash the same; a reopen sees no change', async () => {
      const s = await impl.make('tree');
      await s.ep.prepare(spec('c2', s.dir, true));
      await s.ep.open({ reset: false });
      const first = await s.ep.scan();
      assert.deepEqual(first.changes, []);
      const placed = await send(s.ep, files);
      assert.equal(placed.length, files.filter((e) => e.kind !== 'dir').length);
      assert.ok(
        placed.every((r) => r.ok),
        JSON.stringify(placed),
      );
      await s.ep.settle(files.filter((e) => e.kind === 'dir'));
      assert.deepEqual(describeTree(s.abs), describeTree(src));
      assert.deepEqual((await s.ep.scan()).changes, [], 'placements are in the snapshot');
      const big = files.find((e) => e.path === 'big.bin')!;
      const back = await s.ep.read([
        { entry: { ...big, ino: 0 }, offset: 0, length: 100, index: 0, count: 1 },
      ]);
      // The expectations (inode) differ at this end: the read reports a changed file, no bytes.
      assert.ok(back.segments[0]!.error !== undefined);
      const mine = (await s.ep.list('')).find((e) => e.path === 'big.bin')!;
      const ok = await s.ep.read([
        { entry: mine, offset: 4 * 1024 * 1024, length: 4 * 1024 * 1024, index: 1, count: 3 },
      ]);
      assert.equal(ok.data.byteLength, 4 * 1024 * 1024);
      assert.ok(ok.data.every((b) => b === 7));
      const hashes = await s.ep.hash([mine]);
      const digest = placed.find((r) => r.path === 'big.bin');
      assert.ok(hashes[0]!.ok && digest?.ok && hashes[0].digest === digest.digest);
      await s.ep.finish({ status: 'ok' });
      const again = await impl.make('tree');
      const p = await again.ep.prepare(spec('c2', again.dir, false));
      assert.equal(p.dbExisted, true);
      await again.ep.open({ reset: false });
      assert.deepEqual((await again.ep.scan()).changes, []);
      await again.ep.finish({ status: 'ok' });
    });

    test('apply renames, deletes and makes directories; list shows the result', async () => {
      const s = await impl.make('ops');
      await s.ep.prepare(spec('c3', s.dir, true));
      await s.ep.open({ reset: false });
      await send(s.ep, files);
      const a = (await s.ep.list('small')).find((e) => e.path === 'small/a.txt')!;
      const res = await s.ep.apply([
        {
          op: 'mkdir',
          path: 'new',
          entry: { ...files.find((e) => e.path === 'small')!, path: 'new' },
          expect: null,
        },
        {
          op: 'rename',
          from: 'small/a.txt',
          path: 'new/a.txt',
          entry: { ...a, path: 'new/a.txt' },
        },
        { op: 'delete', path: 'empty.txt' },
      ]);
      assert.deepEqual(
        res.map((r) => r.ok),
        [true, true, true],
      );
      const listed = (await s.ep.list('new')).map((e) => e.path);
      assert.deepEqual(listed, ['new', 'new/a.txt']);
      assert.equal(readFileSync(join(s.abs, 'new', 'a.txt'), 'utf8'), 'alpha');
      assert.ok(!existsSync(join(s.abs, 'empty.txt')));
      await s.ep.finish({ status: 'ok' });
    });

    test('a target changed during the run is not overwritten (placement re-checks it)', async () => {
      const s = await impl.make('recheck');
      await s.ep.prepare(spec('c4', s.dir, true));
      await s.ep.open({ reset: false });
      writeTree(s.abs, { 'small/a.txt': 'edited at the receiver' });
      const r = await send(
        s.ep,
        files.filter((e) => e.path === 'small/a.txt'),
      );
      assert.equal(r[0]!.ok, false);
      assert.equal(readFileSync(join(s.abs, 'small', 'a.txt'), 'utf8'), 'edited at the receiver');
      await s.ep.finish({ status: 'partial' });
    });

    test('an interrupted big file resumes from the verified pieces; another version does not', async () => {
      const big = files.find((e) => e.path === 'big.bin')!;
      const segs = [...planBatches([big], { maxFiles: 1, maxBytes: 1 })].flat();
      assert.equal(segs.length, 3);
      const writeSegs = async (to: Endpoint, which: typeof segs, skip?: number[]) => {
        const out: PlaceResult[] = [];
        for (const seg of which) {
          const b = await sender.read([seg]);
          const segments = b.segments.map((x) => ({
            ...x,
            expect: null,
            ...(skip ? { skip } : {}),
          }));
          out.push(...(await to.write({ data: b.data, segments })));
        }
        return out;
      };
      // A run that received two pieces of three, then ended without placing (killed).
      const s = await impl.make('resume');
      await s.ep.prepare(spec('c6', s.dir, true));
      await s.ep.open({ reset: false });
      assert.deepEqual(await writeSegs(s.ep, segs.slice(0, 2)), []);
      await s.ep.finish({ status: 'failed' });
      assert.ok(!existsSync(join(s.abs, 'big.bin')), 'nothing at the final path');

      const r = await impl.make('resume');
      await r.ep.prepare(spec('c6', r.dir, false));
      await r.ep.open({ reset: false });
      const [offer] = await r.ep.resumable!([big]);
      assert.deepEqual(
        offer!.pieces.map((p) => p.index),
        [0, 1],
      );
      const [mine] = await sender.pieceDigests!([{ entry: big, indices: [0, 1] }]);
      assert.ok(mine!.ok);
      assert.deepEqual(
        mine.digests,
        offer!.pieces.map((p) => p.digest),
      );
      const placed = await writeSegs(r.ep, segs.slice(2), [0, 1]);
      assert.equal(placed.length, 1);
      assert.ok(placed[0]!.ok, JSON.stringify(placed));
      assert.ok(readFileSync(join(r.abs, 'big.bin')).equals(readFileSync(join(src, 'big.bin'))));
      const [h] = await sender.hash([big]);
      assert.ok(h!.ok && placed[0]!.ok && h.digest === placed[0]!.digest);

      // Interrupted again; the sender's file is now another version (mtime): nothing offered.
      await writeSegs(r.ep, segs.slice(0, 1));
      const [other] = await r.ep.resumable!([
        { ...big, path: 'big.bin', mtimeMs: big.mtimeMs + 1000 },
      ]);
      assert.deepEqual(other!.pieces, []);
      // The rest of that file, its partial now gone: it fails instead of placing holes.
      const bad = await writeSegs(r.ep, segs.slice(1), [0]);
      assert.equal(bad.length, 1);
      assert.equal(bad[0]!.ok, false);
      await r.ep.finish({ status: 'partial' });
    });

    test('one run of a session at a time: a second open is refused', async () => {
      const a = await impl.make('busy');
      await a.ep.prepare(spec('c5', a.dir, true));
      await a.ep.open({ reset: false });
      const b = await impl.make('busy');
      await b.ep.prepare(spec('c5', b.dir, true));
      await assert.rejects(
        b.ep.open({ reset: false }),
        (e: Error & { code?: string }) => e.code === 'ERR_SESSION_BUSY',
      );
      await a.ep.finish({ status: 'ok' });
    });

    test('watch resolves once in place and reports changed paths; a scoped scan finds them', async () => {
      const s = await impl.make('watched');
      writeTree(s.abs, { 'w/old.txt': 'old', 'other/x.txt': 'x' });
      await s.ep.prepare(spec('c6', s.dir, true));
      await s.ep.open({ reset: false });
      // Record the tree, as a first pass would.
      const first = await s.ep.scan();
      await s.ep.record(
        first.changes.map((c) => ({ kind: 'put', entry: c.new!, replaceBelow: false })),
      );
      assert.ok(s.ep.watch, 'continuous mode needs watch()');
      const seen = new Set<string>();
      const handle = await s.ep.watch((hints) => {
        for (const h of hints) if (h.kind === 'paths') h.paths.forEach((p) => seen.add(p));
      });
      try {
        // Written after watch() resolved: must be reported.
        writeTree(s.abs, { 'w/new.txt': 'new' });
        const deadline = Date.now() + 15_000;
        while (!seen.has('w/new.txt')) {
          assert.ok(Date.now() < deadline, `no hint for w/new.txt; saw ${[...seen]}`);
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(
          [...seen].every((p) => !p.startsWith('/') && !p.split('/').includes('..')),
          `hint paths are relative to the session directory: ${[...seen]}`,
        );
        const scoped = await s.ep.scan({ dirs: ['w'] });
        assert.deepEqual(
          scoped.changes.map((c) => c.path),
          ['w/new.txt'],
        );
        // A scope naming a path outside the directory is refused, never listed.
        await assert.rejects(s.ep.scan({ dirs: ['../escape'] }));
      } finally {
        await handle.close();
        await s.ep.finish({ status: 'ok' });
      }
    });
  });
}
