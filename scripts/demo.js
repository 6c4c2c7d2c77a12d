#!/usr/bin/env node
// The README's quick start as one command: makes a small tree in a temporary directory,
// pushes it to a local peer directory, changes a few things, and pushes again.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'async.js');
const root = mkdtempSync(join(tmpdir(), 'async-demo-'));
const data = join(root, 'data');
const mirror = join(root, 'mirror');

function run(title, args) {
  console.log(`\n# ${title}\n$ async ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`demo: async exited with ${r.status}`);
    process.exit(r.status ?? 1);
  }
}

try {
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(data, `dir${d}`), { recursive: true });
    for (let f = 0; f < 50; f++)
      writeFileSync(join(data, `dir${d}`, `file${f}.txt`), `demo file ${d}/${f}\n`.repeat(20));
  }
  writeFileSync(join(data, 'big.bin'), Buffer.alloc(32 * 1024 * 1024, 1));
  const args = ['-N', 'demo', '-d', data, '-r', mirror, '-K', 'push', '--create-dir'];
  run('First push: 1,001 files to a new peer directory', args);
  run('Rerun with no change: the snapshot finds nothing to do', args);
  renameSync(join(data, 'dir0'), join(data, 'renamed-dir'));
  writeFileSync(join(data, 'dir1', 'file0.txt'), 'changed\n');
  rmSync(join(data, 'dir2'), { recursive: true });
  run('A renamed directory, a changed file and a deleted directory', args);
  console.log(`\nDone. The trees are in ${root} (removed now).`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
