#!/usr/bin/env node
// Builds the native-free distribution (native-free/README.md): the CLI entry points bundled
// with esbuild into single files that need no node_modules, from the compiled tree (run
// `npm run build` first; `npm run build:native-free` does both).
//
//   node scripts/build-native-free.mjs [--outdir DIR]     (default native-free/dist)
//
// Output: async.mjs, asyncadmin.mjs (ESM), worker.js (CommonJS: piscina's thread entry and
// our hash/transfer tasks, see native-free/entries/worker.mjs), package.json, README.md.
import { readdirSync, readFileSync, mkdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
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
