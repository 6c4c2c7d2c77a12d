#!/usr/bin/env node
// Builds the two addons of src/native/ with node-gyp, which npm brings: fsscan.c (a directory
// listed and every name in it lstat'ed in one call; src/scan/native-list.ts) and fsio.c (a
// small file read, or created and placed, in one call; src/hash/native-io.ts). `npm install`
// runs this. They are optional: where they cannot be built (no C compiler, no Node headers),
// this says so and succeeds, and the scan and the pool use Node's fs, the same results more
// slowly on a huge tree.
//
//   npm run build:addons         (again, after changing src/native/ or Node)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'native');
// npm sets npm_config_node_gyp for its scripts (its own copy of node-gyp).
const gyp = process.env['npm_config_node_gyp'];
if (!gyp) {
  console.warn('build-addons: node-gyp not found; run it through npm: npm run build:addons');
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
    `build-addons: the addons were not built (${r.error?.message ?? `node-gyp exit ${r.status}`}).\n` +
      `${tail}\n` +
      "The scan and the pool will use Node's fs instead: the same results, slower on huge trees.",
  );
}
