/**
 * SIGHUP reopens the -L log file of a continuous session, as logrotate expects (rename the
 * file, then signal): lines written before the signal stay in the renamed file, and a new
 * file of the old name receives what follows. Waits are for files and lines, never timers.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UNDER_BUNDLE, describeTree, spawnAsync, syncPair, tmp, writeTree } from '../helpers.js';

async function until(what: string, cond: () => boolean, dump: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}\n${dump()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test(
  'SIGHUP after the log file was renamed: a new file is created and written (logrotate)',
  { skip: UNDER_BUNDLE && 'the native-free bundle has no native watcher' },
  async () => {
    const { data, mirror } = syncPair({ 'seed.txt': 'seed' });
    const logs = tmp();
    const proc = spawnAsync([
      '-N',
      'hup',
      '-d',
      data,
      '-r',
      mirror,
      '-C',
      '--cooloff',
      '0.2',
      '-L',
      logs,
    ]);
    let out = '';
    let err = '';
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const dump = (): string => `stdout:\n${out}\nstderr:\n${err}\nlogs: ${readdirSync(logs)}`;
    await until('the initial sync', () => existsSync(join(mirror, 'seed.txt')), dump);
    const [file] = readdirSync(logs).filter((f) => f.endsWith('.log'));
    assert.ok(file, dump());
    renameSync(join(logs, file), join(logs, `${file}.rotated`));
    proc.kill('SIGHUP');
    await until('the log file reopened under its name', () => existsSync(join(logs, file)), dump);

    writeTree(data, { 'after-hup.txt': 'written after the rotation' });
    await until('the change at the peer', () => existsSync(join(mirror, 'after-hup.txt')), dump);
    const exited = once(proc, 'exit');
    proc.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, dump());
    assert.deepEqual(describeTree(mirror), describeTree(data));

    const before = readFileSync(join(logs, `${file}.rotated`), 'utf8');
    const after = readFileSync(join(logs, file), 'utf8');
    assert.match(before, /"run started"/);
    assert.doesNotMatch(before, /after-hup\.txt/);
    assert.match(after, /"path":"after-hup\.txt"/);
  },
);
