/**
 * LocalEndpoint details that the CLI cannot make happen on demand: a file that changes or
 * vanishes between the scan and the read is detected, and no wrong digest is recorded.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { SessionSpec } from '../../src/endpoint/endpoint.js';
import { LocalEndpoint } from '../../src/endpoint/local.js';
import { WorkPool } from '../../src/hash/pool.js';
import { planBatches } from '../../src/transfer/batches.js';
import { tmp } from '../helpers.js';

const pool = new WorkPool(1);
after(() => pool.close());

function spec(dir: string, role: 'local' | 'remote'): SessionSpec {
  return {
    identity: { name: 's', localDir: '/l', remoteDir: '/r', remoteHost: '', direction: 'push' },
    role,
    dir,
    createDir: false,
    placement: { preserveMtime: false, preserveUid: false, preserveGid: false },
  };
}

async function opened(
  files: Record<string, string | Buffer>,
): Promise<{ ep: LocalEndpoint; dir: string }> {
  const dir = join(tmp(), 'd');
  mkdirSync(dir);
  for (const [p, c] of Object.entries(files)) writeFileSync(join(dir, p), c);
  const ep = new LocalEndpoint(pool, 'local');
  await ep.prepare(spec(dir, 'local'));
  await ep.open({ reset: false });
  return { ep, dir };
}

describe('LocalEndpoint reads', () => {
  test('a file that grew after the scan is refused, not sent with a wrong digest', async () => {
    const { ep, dir } = await opened({ a: 'hello', b: Buffer.alloc(9 * 1024 * 1024, 1) });
    const scan = await ep.scan();
    appendFileSync(join(dir, 'a'), ' world');
    appendFileSync(join(dir, 'b'), 'more');
    const entries = scan.changes.map((c) => c.new!);
    for (const batch of planBatches(entries)) {
      const read = await ep.read(batch);
      for (const s of read.segments) {
        assert.ok(s.error, `${s.entry.path} segment ${s.index} refused`);
        assert.match(s.error, /changed size|modified/);
        assert.equal(s.vanished, false);
      }
    }
    await ep.finish({ status: 'ok' });
  });

  test('a file replaced or rewritten at the same size after the scan is refused', async () => {
    // The reader stats once, after reading: what changed before the open shows there too.
    const { ep, dir } = await opened({ a: 'hello', b: 'world' });
    const scan = await ep.scan();
    writeFileSync(join(dir, 'a.new'), 'HELLO');
    renameSync(join(dir, 'a.new'), join(dir, 'a')); // another inode, same size
    writeFileSync(join(dir, 'b'), 'WORLD');
    utimesSync(join(dir, 'b'), 1_000, 1_000); // same inode and size, another mtime
    const read = await ep.read([...planBatches(scan.changes.map((c) => c.new!))][0]!);
    const byPath = new Map(read.segments.map((s) => [s.entry.path, s]));
    assert.match(byPath.get('a')!.error ?? '', /replaced/);
    assert.match(byPath.get('b')!.error ?? '', /modified/);
    await ep.finish({ status: 'ok' });
  });

  test('a file deleted after the scan is reported as vanished', async () => {
    const { ep, dir } = await opened({ a: 'hello' });
    const scan = await ep.scan();
    rmSync(join(dir, 'a'));
    const read = await ep.read([...planBatches(scan.changes.map((c) => c.new!))][0]!);
    assert.equal(read.segments[0]!.vanished, true);
    await ep.finish({ status: 'ok' });
  });

  test('unchanged files read with piece digests that the receiver verifies', async () => {
    const { ep: sender } = await opened({ a: 'hello', big: Buffer.alloc(9 * 1024 * 1024, 2) });
    const recvDir = join(tmp(), 'r');
    mkdirSync(recvDir);
    const receiver = new LocalEndpoint(pool, 'peer');
    await receiver.prepare(spec(recvDir, 'remote'));
    await receiver.open({ reset: false });
    const scan = await sender.scan();
    const results = [];
    for (const batch of planBatches(scan.changes.map((c) => c.new!))) {
      const read = await sender.read(batch);
      // The bytes as a wire hands them over (a copy; bytes the pool read in this process
      // are not hashed again: pool.ts), one of the first batch corrupted: the receiver must
      // refuse that file.
      const data = Uint8Array.from(read.data);
      if (read.segments.some((s) => s.entry.path === 'a')) data[0] = data[0]! ^ 0xff;
      results.push(...(await receiver.write({ ...read, data })));
    }
    const byPath = Object.fromEntries(results.map((r) => [r.path, r]));
    assert.equal(byPath.a?.ok, false);
    assert.match((byPath.a as { message: string }).message, /did not match the sender digest/);
    assert.equal(byPath.big?.ok, true);
    await sender.finish({ status: 'ok' });
    await receiver.finish({ status: 'ok' });
  });
});
