#!/usr/bin/env node
// Entry point of `async`; the code lives in src/cli/async.ts (compiled to dist/).
import { asyncMain } from '../dist/src/cli/async.js';
import { abortOnSignals, exitQuietlyOnEpipe } from '../dist/src/cli/process.js';

exitQuietlyOnEpipe();
const signal = abortOnSignals();
// SIGHUP asks a long-running (-C) session to reopen its log file after an outside rotation.
// The -L log rotates by itself (pino-roll), so it is acknowledged and ignored rather than
// ending the session, which is Node's default.
process.on('SIGHUP', () => process.emit('async:reopen-log'));
process.exitCode = await asyncMain(process.argv.slice(2), process, signal);
