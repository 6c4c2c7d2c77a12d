#!/usr/bin/env node
// Entry point of `asyncadmin`; the code lives in src/cli/asyncadmin.ts (compiled to dist/).
import { asyncadminMain } from '../dist/src/cli/asyncadmin.js';
import { exitQuietlyOnEpipe } from '../dist/src/cli/process.js';

exitQuietlyOnEpipe();
process.exitCode = await asyncadminMain(process.argv.slice(2), process);
