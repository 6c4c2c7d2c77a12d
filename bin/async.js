#!/usr/bin/env node
// Entry point of `async`; the code lives in src/cli/async.ts (compiled to dist/).
import { asyncMain } from '../dist/src/cli/async.js';

// A reader that went away (`asyncadmin -f | head`) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const controller = new AbortController();
let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    signals++;
    // The first signal lets the run stop cleanly; a second one ends it at once.
    if (signals > 1) process.exit(130);
    controller.abort(new Error(`interrupted by ${sig}`));
  });
}
// SIGHUP asks a long-running (-C) session to reopen its log file after an outside rotation.
// The -L log rotates by itself (pino-roll), so it is acknowledged and ignored rather than
// ending the session, which is Node's default.
process.on('SIGHUP', () => process.emit('async:reopen-log'));
process.exitCode = await asyncMain(process.argv.slice(2), process, controller.signal);
