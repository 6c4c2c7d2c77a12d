// Main script of the single executable (Node SEA, built by `build-native-free.mjs --sea`).
// Node 24 runs only a CommonJS main script inside an executable, and the bundle is ES
// modules with a worker file beside it, so the executable carries the bundle's files as
// assets, writes them once into a private directory (per user, named by their digest) and
// imports the command from there. The command is chosen by the name the executable was
// started under (`async`, or a link named `asyncadmin`), busybox style.
/* eslint-disable @typescript-eslint/no-require-imports -- an SEA main script of Node 24 is CommonJS */
'use strict';
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const { tmpdir } = require('node:os');
const { basename, join } = require('node:path');
const { pathToFileURL } = require('node:url');
const sea = require('node:sea');

const FILES = ['async.mjs', 'asyncadmin.mjs', 'worker.js', 'package.json'];

function assets() {
  return FILES.map((name) => ({ name, data: Buffer.from(sea.getAsset(name)) }));
}

/** The directory is ours and private, and every file in it is the one we carry. */
function valid(dir, files) {
  try {
    const st = fs.lstatSync(dir);
    if (!st.isDirectory() || st.uid !== process.getuid() || (st.mode & 0o077) !== 0) return false;
    return files.every((f) => fs.readFileSync(join(dir, f.name)).equals(f.data));
  } catch {
    return false;
  }
}

function unpack() {
  const files = assets();
  const digest = createHash('sha256');
  for (const f of files) digest.update(f.name).update(f.data);
  const base = process.env.ASYNC_SEA_DIR || tmpdir();
  const dir = join(base, `open-async-${process.getuid()}-${digest.digest('hex').slice(0, 16)}`);
  if (valid(dir, files)) return dir;
  const fresh = fs.mkdtempSync(`${dir}.tmp-`);
  for (const f of files) fs.writeFileSync(join(fresh, f.name), f.data, { mode: 0o600 });
  try {
    fs.renameSync(fresh, dir);
    return dir;
  } catch {
    // Another start won the race, or a stranger's directory is in the way: use ours.
    if (valid(dir, files)) {
      fs.rmSync(fresh, { recursive: true, force: true });
      return dir;
    }
    return fresh;
  }
}

const command = basename(process.argv[1] || 'async') === 'asyncadmin' ? 'asyncadmin' : 'async';
import(pathToFileURL(join(unpack(), `${command}.mjs`)).href).catch((e) => {
  process.stderr.write(`${command}: cannot start: ${e && e.message ? e.message : String(e)}\n`);
  process.exit(70);
});
