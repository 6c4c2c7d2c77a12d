/**
 * The pump holds a batch until the directories its files land in are made (DirGate), so a
 * run's file data can move while its new directories are still being made.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry } from '../../src/core/entry.js';
import type { DataBatch, Endpoint, PlaceResult } from '../../src/endpoint/endpoint.js';
import type { Segment } from '../../src/transfer/batches.js';
import { DirGate } from '../../src/transfer/dir-gate.js';
import { pump } from '../../src/transfer/pump.js';
import { unlimited } from '../../src/transfer/rate-limiter.js';

const file = (path: string): Entry => ({
  path,
  kind: 'file',
  size: 3,
  mtimeMs: 0,
  mode: 0o644,
  ino: 0,
  uid: 0,
  gid: 0,
});

const sender = {
  read(segments: readonly Segment[]): Promise<DataBatch> {
    return Promise.resolve({
      data: new Uint8Array(3 * segments.length),
      segments: segments.map((s, i) => ({ ...s, start: 3 * i, pieces: [] })),
    });
  },
} as unknown as Endpoint;

/** A receiver that notes the paths written, in order. */
function receiver(): Endpoint & { written: string[] } {
  const written: string[] = [];
  return {
    written,
    write(batch: DataBatch): Promise<PlaceResult[]> {
      written.push(...batch.segments.map((s) => s.entry.path));
      return Promise.resolve(
        batch.segments.map((s) => ({ path: s.entry.path, ok: true, digest: undefined })),
      );
    },
  } as unknown as Endpoint & { written: string[] };
}

/** The gate, and a promise that resolves the first time it holds a batch back. */
function watched(gate: DirGate): {
  placeable: (s: readonly Segment[]) => Promise<void> | undefined;
  held: Promise<void>;
} {
  let heard!: () => void;
  const held = new Promise<void>((r) => (heard = r));
  return {
    held,
    placeable: (s) => {
      const w = gate.ready(s);
      if (w) heard();
      return w;
    },
  };
}

describe('directories made while file data moves', () => {
  test('a batch goes once the directories of all its files are made, parents first', async () => {
    const gate = new DirGate(['a', 'a/b']);
    const g = watched(gate);
    const rcv = receiver();
    // One batch (small files travel up to 1,024 a batch); the root's file needs no directory.
    const items = ['top', 'a/f', 'a/b/g'].map((p) => ({ entry: file(p) }));
    const done = pump(sender, rcv, items, {
      limiter: unlimited,
      lanes: 1,
      placeable: (s) => g.placeable(s),
    });
    await g.held;
    gate.made([{ op: 'mkdir', path: 'a' }]);
    gate.made([{ op: 'attrs', path: 'a/b' }]);
    assert.deepEqual(rcv.written, [], 'a/b/g waits for a/b');
    assert.ok(gate.ready([{ entry: file('a/f') } as Segment]) === undefined, 'a is made');
    gate.made([{ op: 'mkdir', path: 'a/b' }]);
    await done;
    assert.deepEqual(rcv.written, ['top', 'a/f', 'a/b/g']);
  });

  test('a batch waiting for a directory fails with the reason making it failed', async () => {
    const gate = new DirGate(['d']);
    const g = watched(gate);
    const rcv = receiver();
    const done = pump(sender, rcv, [{ entry: file('d/f') }], {
      limiter: unlimited,
      lanes: 2,
      placeable: (s) => g.placeable(s),
    });
    await g.held;
    gate.fail(new Error('connection lost'));
    await assert.rejects(done, /connection lost/);
    assert.deepEqual(rcv.written, []);
    // Later batches are refused too.
    await assert.rejects(gate.ready([{ entry: file('x') } as Segment])!, /connection lost/);
  });
});
