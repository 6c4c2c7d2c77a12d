/** The snapshot store on a real SQLite file. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { Entry } from '../../src/core/entry.js';
import { SessionError } from '../../src/errors.js';
import { migrations } from '../../src/snapshot/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { tmp } from '../helpers.js';

function e(path: string, kind: Entry['kind'] = 'file', extra: Partial<Entry> = {}): Entry {
  return {
    path,
    kind,
    size: kind === 'file' ? 3 : 0,
    mtimeMs: 1234.5678,
    mode: 0o644,
    ino: 42,
    uid: 1,
    gid: 2,
    ...extra,
  };
}

describe('SnapshotStore', () => {
  test('put, get, children, below, descendants round-trip entries exactly', () => {
    const s = SnapshotStore.open(join(tmp(), 'snap.db'), { create: true });
    s.write(() => {
      for (const p of ['a', 'a/b', 'a/b/c', 'a-c', 'a0', 'z'])
        s.put(e(p, p === 'a' || p === 'a/b' ? 'dir' : 'file'));
      s.put(e('l', 'symlink', { target: '../x' }));
      s.put(e('h', 'file', { digest: '0123456789abcdef' }));
    });
    assert.deepEqual(s.get('a/b/c')?.entry, e('a/b/c'));
    assert.deepEqual(s.get('l')?.entry, e('l', 'symlink', { target: '../x' }));
    assert.equal(s.get('h')?.entry?.digest, '0123456789abcdef');
    assert.deepEqual(
      s
        .children('')
        .map((r) => r.path)
        .sort(),
      ['a', 'a-c', 'a0', 'h', 'l', 'z'],
    );
    assert.deepEqual(
      s.below('a').map((r) => r.path),
      ['a/b', 'a/b/c'],
    );
    assert.deepEqual(
      s.descendants('a').map((x) => x.path),
      ['a/b', 'a/b/c'],
    );
    assert.equal(s.size(), 8);
    s.close();
  });

  test('move and remove act on whole subtrees and nothing else', () => {
    const s = SnapshotStore.open(join(tmp(), 'snap.db'), { create: true });
    s.write(() => ['d', 'd/x', 'd/s', 'd/s/y', 'd-other', 'dd'].forEach((p) => s.put(e(p))));
    s.write(() => s.move('d', 'e/f'));
    assert.deepEqual([...s.iterate()].map((r) => r.path).sort(), [
      'd-other',
      'dd',
      'e/f',
      'e/f/s',
      'e/f/s/y',
      'e/f/x',
    ]);
    s.write(() => s.remove('e/f/s'));
    assert.deepEqual([...s.iterate()].map((r) => r.path).sort(), ['d-other', 'dd', 'e/f', 'e/f/x']);
    s.close();
  });

  test('get() after the table was seen empty finds what was written since, moved or rolled back', () => {
    const s = SnapshotStore.open(join(tmp(), 'snap.db'), { create: true });
    assert.equal(s.size(), 0);
    s.write(() => s.put(e('d1/f')));
    assert.deepEqual(s.get('d1/f')?.entry, e('d1/f'));
    assert.equal(s.get('d2/f'), undefined);
    // A moved subtree's rows land in directories nothing wrote to directly.
    s.write(() => s.put(e('d1/sub/g')));
    s.write(() => s.move('d1', 'd2'));
    assert.deepEqual(s.get('d2/sub/g')?.entry, e('d2/sub/g'));
    // A clear() that is rolled back leaves its rows, and get() still finds them.
    assert.throws(() =>
      s.write(() => {
        s.clear();
        throw new Error('rolled back');
      }),
    );
    assert.deepEqual(s.get('d2/f')?.entry, e('d2/f'));
    s.write(() => s.mark('d3/h', 'error', 'no'));
    assert.equal(s.get('d3/h')?.state, 'error');
  });

  test('mark keeps the synced entry; counts per state', () => {
    const s = SnapshotStore.open(join(tmp(), 'snap.db'), { create: true });
    s.write(() => {
      s.put(e('a'));
      s.mark('a', 'error', 'permission denied');
      s.mark('never-synced', 'error', 'vanished');
      s.put(e('b'));
    });
    assert.deepEqual(s.get('a'), {
      path: 'a',
      entry: e('a'),
      state: 'error',
      message: 'permission denied',
    });
    assert.equal(s.get('never-synced')?.entry, null);
    assert.deepEqual(s.counts(), { synced: 1, pending: 0, conflict: 0, error: 2 });
    s.close();
  });

  test('the file is in WAL mode and persists across opens', () => {
    const path = join(tmp(), 'snap.db');
    const s = SnapshotStore.open(path, { create: true });
    s.setMeta({ name: 'j', direction: 'push' });
    s.write(() => s.put(e('a')));
    s.close();
    const raw = new Database(path, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    raw.close();
    const again = SnapshotStore.open(path, { create: false });
    assert.equal(again.getMeta('name'), 'j');
    assert.deepEqual(again.get('a')?.entry, e('a'));
    again.close();
  });

  test('a file that is not SQLite is refused with its path', () => {
    const path = join(tmp(), 'snap.db');
    writeFileSync(path, 'garbage '.repeat(1000));
    assert.throws(
      () => SnapshotStore.open(path, { create: true }),
      (err: unknown) =>
        err instanceof SessionError && err.code === 'ERR_DB_CORRUPT' && err.message.includes(path),
    );
  });

  test('a database of a newer schema version is refused and not modified', () => {
    const path = join(tmp(), 'snap.db');
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.exec('CREATE TABLE future (x)');
    raw.close();
    assert.throws(
      () => SnapshotStore.open(path, { create: true }),
      (err: unknown) =>
        err instanceof SessionError &&
        err.code === 'ERR_DB_SCHEMA' &&
        /version 99/.test(err.message),
    );
    const check = new Database(path, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), 99);
    check.close();
  });

  test('a database of an older schema is refused read-only with a message, and upgraded by a writer', () => {
    const path = join(tmp(), 'snap.db');
    const raw = new Database(path);
    raw.exec(migrations()[0]!.sql);
    raw.pragma('user_version = 1');
    raw.close();
    assert.throws(
      () => SnapshotStore.open(path, { create: false, readonly: true }),
      (err: unknown) =>
        err instanceof SessionError &&
        err.code === 'ERR_DB_SCHEMA' &&
        /version 1, older than/.test(err.message),
    );
    const w = SnapshotStore.open(path, { create: false });
    w.write(() => w.put(e('a')));
    w.close();
    const r = SnapshotStore.open(path, { create: false, readonly: true });
    assert.deepEqual(r.get('a')?.entry, e('a'));
    r.close();
  });
});
