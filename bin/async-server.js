#!/usr/bin/env node
// Entry point of `async-server`, the peer daemon; the code lives in src/cli/server.ts.
import { serverMain } from '../dist/src/cli/server.js';

const controller = new AbortController();
let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    signals++;
    // The first signal ends sessions cleanly; a second one stops at once.
    if (signals > 1) process.exit(130);
    controller.abort();
  });
}
process.exitCode = await serverMain(process.argv.slice(2), process, controller.signal);
