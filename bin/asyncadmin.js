#!/usr/bin/env node
// Entry point of `asyncadmin`; the code lives in src/cli/asyncadmin.ts (compiled to dist/).
import { asyncadminMain } from '../dist/src/cli/asyncadmin.js';

// A reader that went away (`asyncadmin -f | head`) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

process.exitCode = await asyncadminMain(process.argv.slice(2), process);
