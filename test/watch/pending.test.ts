/** The cooloff queue as a table: events at given times, then what is hot, due and overdue. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PendingPaths } from '../../src/watch/pending.js';

describe('PendingPaths (cooloff 1000 ms, cooloff-max 5000 ms)', () => {
  const rows: {
    title: string;
    events: [string, number][];
    now: number;
    hot: string[];
    due: boolean;
    overdue: string[];
  }[] = [
    { title: 'nothing pending', events: [], now: 0, hot: [], due: false, overdue: [] },
    {
      title: 'a fresh change is hot, not due',
      events: [['a', 100]],
      now: 500,
      hot: ['a'],
      due: false,
      overdue: [],
    },
    {
      title: 'quiet for the cooloff: due',
      events: [['a', 100]],
      now: 1100,
      hot: [],
      due: true,
      overdue: [],
    },
    {
      title: 'a later event restarts the cooloff',
      events: [
        ['a', 100],
        ['a', 900],
      ],
      now: 1500,
      hot: ['a'],
      due: false,
      overdue: [],
    },
    {
      title: 'still changing after cooloff-max: overdue',
      events: [
        ['busy', 0],
        ['busy', 4900],
        ['calm', 0],
      ],
      now: 5000,
      hot: ['busy'],
      due: true,
      overdue: ['busy'],
    },
  ];
  for (const r of rows) {
    test(r.title, () => {
      const p = new PendingPaths(1000, 5000);
      for (const [path, at] of r.events) p.note(path, at);
      const paths = [...new Set(r.events.map(([x]) => x))];
      assert.deepEqual(
        paths.filter((x) => p.isHot(x, r.now)),
        r.hot,
      );
      assert.equal(p.hasDue(r.now), r.due);
      assert.deepEqual(p.overdue(r.now), r.overdue);
    });
  }

  test('an overdue path is reported once per cooloff-max period', () => {
    const p = new PendingPaths(1000, 5000);
    for (let t = 0; t <= 12_000; t += 500) p.note('busy', t);
    assert.deepEqual(p.overdue(5000), ['busy']);
    assert.deepEqual(p.overdue(6000), []);
    assert.deepEqual(p.overdue(10_000), ['busy']);
  });

  test('settle forgets what was quiet when the pass started, keeps what changed since', () => {
    const p = new PendingPaths(1000, 5000);
    p.note('old', 0);
    p.note('new', 1500);
    p.settle(1200);
    assert.equal(p.size, 1);
    assert.ok(p.isHot('new', 2000));
  });

  test('hold: a held path is due when what held it settles, and survives the pass', () => {
    const p = new PendingPaths(1000, 5000);
    p.note('hot', 1000); // a directory still being filled
    p.note('hot/a.txt', 100); // quiet for long enough itself
    p.note('self.txt', 900); // held because it is hot itself
    // The pass started at 1200 and held these back at 1300.
    p.hold(['hot/a.txt'], 1300);
    p.hold(['self.txt'], 1300);
    p.hold(['new/b.txt', 'hot/moved'], 1300); // a move out of the hot directory
    p.hold(['free.txt'], 1300); // nothing pending along its path
    p.settle(1200);
    assert.equal(p.size, 6, 'nothing held is forgotten by the pass');
    assert.ok(!p.isHot('self.txt', 1900), 'its own cooloff, not restarted by the pass');
    assert.ok(p.isHot('hot/a.txt', 1900) && !p.isHot('hot/a.txt', 2000), 'due with hot/');
    assert.ok(p.isHot('new/b.txt', 1900) && p.isHot('hot/moved', 1900), 'both ends together');
    assert.ok(p.isHot('free.txt', 2200));
  });

  test('dirs: each path and its parent', () => {
    const p = new PendingPaths(1000, 5000);
    p.note('a/b/c.txt', 0);
    p.note('top.txt', 0);
    assert.deepEqual(p.dirs().sort(), ['', 'a/b', 'a/b/c.txt', 'top.txt']);
  });

  test('nextWake: the earliest settle or overdue time', () => {
    const p = new PendingPaths(1000, 5000);
    assert.equal(p.nextWake(), undefined);
    p.note('a', 300);
    p.note('b', 100);
    assert.equal(p.nextWake(), 1100);
  });
});
