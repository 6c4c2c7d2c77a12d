/**
 * bench/measure.ts: the CPU time of a measured command covers its threads and the processes
 * it waited for, and nothing measured before it. The commands burn a fixed amount of CPU
 * (not of wall time), so the figures hold on a loaded machine.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { measure, reapedChildrenCpu } from '../../bench/measure.js';

/**
 * Burns at least `ms` of user CPU (the process's, measured by itself, not by a clock). It
 * looks at the clock every 65,536 steps: each look is a system call.
 */
const BURN = (ms: number): string =>
  `{ const t = process.cpuUsage().user; let x = 0; for (let i = 1; (i & 0xffff) !== 0 || process.cpuUsage().user - t < ${ms * 1000}; i++) x += Math.sqrt(x + i); }`;

/**
 * A child that starts a grandchild process and a worker thread, each burning 200 ms, burns
 * 200 ms itself, and prints its own CPU (all its threads) and the grandchild's.
 */
const CHILD = `
const { execFileSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const grand = JSON.parse(execFileSync(process.execPath, ['-e', ${JSON.stringify(`${BURN(200)}; console.log(JSON.stringify(process.cpuUsage()))`)}], { encoding: 'utf8' }));
const w = new Worker(${JSON.stringify(BURN(200))}, { eval: true });
w.on('exit', () => {
  ${BURN(200)}
  console.log(JSON.stringify({ self: process.cpuUsage(), grand }));
});
`;

describe('measure', () => {
  test('counts the CPU of the command, its threads and the processes it waited for', async () => {
    const m = await measure(process.execPath, ['-e', CHILD]);
    assert.equal(m.code, 0, m.stderr);
    const { self, grand } = JSON.parse(m.stdout) as Record<
      'self' | 'grand',
      { user: number; system: number }
    >;
    const reported = (self.user + self.system + grand.user + grand.system) / 1e6;
    // Three burns of 200 ms each, on three threads of two processes.
    assert.ok(reported >= 0.6, `the burns report ${reported} s`);
    // The kernel counts in clock ticks (10 ms here), per process: a few ticks either way.
    const measured = m.cpuUser + m.cpuSys;
    assert.ok(
      measured >= reported - 0.05,
      `measured ${measured} s, the processes report ${reported} s`,
    );
    assert.ok(m.cpuUser >= 0.55, `user ${m.cpuUser} s`);
    assert.ok(m.peakRssMiB > 0);
  });

  test('a measurement does not include what ended before it', async () => {
    await measure(process.execPath, ['-e', BURN(300)]);
    const before = reapedChildrenCpu();
    const m = await measure(process.execPath, ['-e', 'process.exitCode = 0']);
    assert.equal(m.code, 0);
    // A node that only starts and exits uses well under the 300 ms burned just before.
    assert.ok(m.cpuUser + m.cpuSys < 0.25, `${m.cpuUser} + ${m.cpuSys} s`);
    assert.ok(reapedChildrenCpu().user >= before.user);
  });
});
