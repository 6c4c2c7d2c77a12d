#!/usr/bin/env node
// Entry point of `async`; the code lives in src/cli/async.ts (compiled to dist/).
import { asyncMain } from '../dist/src/cli/async.js';
import { abortOnSignals, exitQuietlyOnEpipe } from '../dist/src/cli/process.js';

exitQuietlyOnEpipe();
const signal = abortOnSignals();
// SIGHUP asks a long-running (-C) session to reopen its -L log file after an outside
// rotation (logrotate renames the file, then signals); it never ends the session, which
// would be Node's default. cli/async.ts listens for the event while a -C session runs.
process.on('SIGHUP', () => process.emit('async:reopen-log'));
process.exitCode = await asyncMain(process.argv.slice(2), process, signal);
