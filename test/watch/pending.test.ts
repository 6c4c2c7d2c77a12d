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
