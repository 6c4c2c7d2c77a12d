#!/usr/bin/env node
// Entry point of `async-server`, the peer daemon; the code lives in src/cli/server.ts.
import { abortOnSignals } from '../dist/src/cli/process.js';
import { serverMain } from '../dist/src/cli/server.js';

// The first signal ends sessions cleanly; a second one stops at once.
process.exitCode = await serverMain(process.argv.slice(2), process, abortOnSignals());
