// The conformance suite against RemoteEndpoint, talking to a real async-server process
// (TLS; one connection per endpoint, as the CLI does).
import { join } from 'node:path';
import type { Endpoint } from '../../src/endpoint/endpoint.js';
import type { RemoteEndpoint } from '../../src/endpoint/remote.js';
import type { Daemon } from '../server/daemon.js';
import { startDaemon, connectAsAlice } from '../server/daemon.js';
import { conformance } from './conformance.js';

let d: Daemon;
const open: RemoteEndpoint[] = [];
conformance({
  name: 'RemoteEndpoint',
  async setup() {
    d = await startDaemon();
  },
  async teardown() {
    for (const ep of open) ep.close();
    await d.stop();
  },
  async make(key): Promise<{ ep: Endpoint; dir: string; abs: string }> {
    const ep = await connectAsAlice(d);
    open.push(ep);
    return { ep, dir: `/${key}`, abs: join(d.root, 'alice', key) };
  },
});
