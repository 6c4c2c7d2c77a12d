#!/usr/bin/env node
// Builds the scan addon (src/scan/native/fsscan.c: a directory listed and every name in it
// lstat'ed in one call; src/scan/native-list.ts) with node-gyp, which npm brings. `npm
// install` runs this. The addon is optional: where it cannot be built (no C compiler, no
// Node headers), this says so and succeeds, and the scan lists and lstats with Node's fs,
// the same results about 1.5 times slower on a huge tree.
//
//   npm run build:addon          (again, after changing fsscan.c or Node)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'scan', 'native');
// npm sets npm_config_node_gyp for its scripts (its own copy of node-gyp).
const gyp = process.env['npm_config_node_gyp'];
if (!gyp) {
  console.warn('build-scan-addon: node-gyp not found; run it through npm: npm run build:addon');
  process.exit(0);
}
const args = [gyp, 'rebuild', '--directory', dir];
// The headers of the Node that runs this, where its installation has them (no download).
const prefix = resolve(process.execPath, '..', '..');
if (!process.env['npm_config_nodedir'] && existsSync(join(prefix, 'include', 'node', 'node_api.h')))
  args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
if (r.status !== 0) {
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-12).join('\n');
  console.warn(
    `build-scan-addon: the scan addon was not built (${r.error?.message ?? `node-gyp exit ${r.status}`}).\n` +
      `${tail}\n` +
      "Scans will use Node's fs instead: the same results, slower on huge trees.",
  );
}
