/**
 * asyncadmin through the real CLI: reading (-m, -s, -f, -l, --conflicts, --json), changing
 * (-C, -E, --resolve) and its refusals, including while a session is running.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { asyncCli, asyncadminCli, spawnAsync, tmp, writeTree } from '../helpers.js';

/** A bidi session 'adm' between a and b with one conflict (c.txt) and one synced file. */
function withConflict() {
  const root = tmp('async-admin-');
  const a = join(root, 'a');
  const b = join(root, 'b');
  mkdirSync(a);
  mkdirSync(b);
  writeTree(a, { 'c.txt': '1', 'ok.txt': 'fine' });
  const args = ['-N', 'adm', '-d', a, '-r', b, '-K', 'bidi'];
  assert.equal(asyncCli(args).code, 0);
  writeFileSync(join(a, 'c.txt'), 'local');
  writeFileSync(join(b, 'c.txt'), 'remote');
  assert.equal(asyncCli(args).code, 4);
  return { root, a, b, args };
}

describe('asyncadmin', () => {
  test('-s, -f, -m and --conflicts, as text and --json', () => {
    const { a } = withConflict();
    const s = asyncadminCli(['-d', a, '-s']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /Synchronized: 1\nPending: 0\nConflict: 1\nError: 0/);
    const f = asyncadminCli(['-d', a, '-f']);
    assert.match(f.stdout, /^c\.txt\tConflict \(changed on both sides\)$/m);
    assert.match(f.stdout, /^ok\.txt\tSynchronized$/m);
    const c = asyncadminCli(['-d', a, '--conflicts']);
    assert.equal(c.stdout, '/c.txt   CONFLICT   changed on both sides\n');
    const j = JSON.parse(asyncadminCli(['-d', a, '-m', '-s', '-f', '--json']).stdout);
    assert.equal(j.meta.direction, 'bidi');
    assert.equal(j.meta.condition, 'stopped');
    assert.deepEqual(j.counts, { synced: 1, pending: 0, conflict: 1, error: 0 });
    assert.deepEqual(j.files, [
      { path: 'c.txt', state: 'conflict', message: 'changed on both sides' },
      { path: 'ok.txt', state: 'synced' },
    ]);
  });

  test('-C deletes the conflict and error records; -E erases one record', () => {
    const { a, b } = withConflict();
    const c = asyncadminCli(['-d', a, '-C']);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /Deleted 1 conflict and 0 error records/);
    assert.match(asyncadminCli(['-d', a, '-s']).stdout, /Conflict: 0/);
    const e = asyncadminCli(['-d', b, '-E', 'ok.txt']);
    assert.equal(e.code, 0, e.stderr);
    assert.doesNotMatch(asyncadminCli(['-d', b, '-f']).stdout, /ok\.txt/);
    const missing = asyncadminCli(['-d', b, '-E', 'no/such']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no record for 'no\/such'/);
  });

  test('--resolve: only for a path in conflict, and only with --keep', () => {
    const { a } = withConflict();
    const ok = asyncadminCli(['-d', a, '--resolve', 'c.txt', '--keep', 'both']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(asyncadminCli(['-d', a, '--conflicts']).stdout, /next run keeps both/);
    const notConflict = asyncadminCli(['-d', a, '--resolve', 'ok.txt', '--keep', 'local']);
    assert.equal(notConflict.code, 2);
    assert.match(notConflict.stderr, /'ok\.txt' is not in conflict/);
    const noKeep = asyncadminCli(['-d', a, '--resolve', 'c.txt']);
    assert.equal(noKeep.code, 2);
    const badKeep = asyncadminCli(['-d', a, '--resolve', 'c.txt', '--keep', 'mine']);
    assert.equal(badKeep.code, 2);
  });

  test('bad input: no session, corrupt database, unknown name, several sessions without -N', () => {
    const empty = tmp('async-admin-empty-');
    const none = asyncadminCli(['-d', empty, '-s']);
    assert.equal(none.code, 3);
    assert.match(none.stderr, /No session database found/);

    const { a, b } = withConflict();
    const unknown = asyncadminCli(['-d', a, '-N', 'other', '-s']);
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /Session 'other' has no database/);

    // The second session meets the same unresolved conflict: exit 4.
    assert.equal(asyncCli(['-N', 'second', '-d', a, '-r', b, '-K', 'bidi']).code, 4);
    const several = asyncadminCli(['-d', a, '-s']);
    assert.equal(several.code, 2);
    assert.match(several.stderr, /Several sessions exist .*adm, second/);
    assert.equal(asyncadminCli(['-d', a, '-l']).stdout, 'adm\nsecond\n');
    assert.deepEqual(JSON.parse(asyncadminCli(['-d', a, '-l', '--json']).stdout), {
      sessions: ['adm', 'second'],
    });

    writeFileSync(join(b, '.private-asp/second/snap.db'), 'not a database at all, sorry');
    const corrupt = asyncadminCli(['-d', b, '-N', 'second', '-s']);
    assert.equal(corrupt.code, 3);
    assert.match(corrupt.stderr, /is not a database/);
    assert.doesNotMatch(corrupt.stderr, /at .*\.js:\d+/);
  });

  test('while a session runs: reads work, writes are refused without -F and allowed with it', async () => {
    const { a, b, args } = withConflict();
    // 12 MiB in 1 MiB files at 2 Mbit/s keep the run busy for about 30 s after the 4 MiB
    // burst; it is stopped below once the checks are done.
    for (let i = 0; i < 12; i++)
      writeFileSync(join(a, `slow-${i}.bin`), Buffer.alloc(1024 * 1024, i));
    const child = spawnAsync([...args, '-l', '2m']);
    const exited = once(child, 'exit');
    try {
      const lock = join(a, '.private-asp/adm/lock');
      for (let i = 0; i < 500 && !existsSync(lock); i++) await delay(20);
      assert.ok(existsSync(lock), 'the session never took its lock');

      const m = asyncadminCli(['-d', a, '-m']);
      assert.equal(m.code, 0, m.stderr);
      assert.match(m.stdout, /Condition: running/);
      assert.match(asyncadminCli(['-d', a, '-s']).stdout, /Conflict: 1/);

      const refused = asyncadminCli(['-d', a, '-C']);
      assert.equal(refused.code, 3);
      assert.match(refused.stderr, /is running .*was not changed/);
      assert.match(refused.stderr, /-F\/--force/);
      const r2 = asyncadminCli(['-d', b, '--resolve', 'c.txt', '--keep', 'local']);
      assert.equal(r2.code, 3);

      const forced = asyncadminCli(['-d', b, '--resolve', 'c.txt', '--keep', 'local', '-F']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(child.exitCode, null, 'the session should still be running');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
