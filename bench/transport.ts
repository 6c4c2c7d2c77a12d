/**
 * Which HTTP/2 client should RemoteEndpoint use? Moves 1 GiB from memory over loopback TLS
 * in 8 MiB bodies on 4 concurrent streams (the pump's default lanes), both ways (upload =
 * write(), download = read()), with node:http2 and with undici's Client (allowH2), both with
 * enlarged flow-control windows. Prints a table of medians (GB/s) of `RUNS` runs.
 *
 *   npm run build && node dist/bench/transport.js [--runs 3]
 *
 * (--runs was a positional argument: `transport.js 3` is refused with its named form.)
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { Client } from 'undici';
import { SESSION_WINDOW, STREAM_WINDOW } from '../src/endpoint/wire.js';
import { benchArgs } from './args.js';

const TOTAL = 1024 * 1024 * 1024;
const BODY = 8 * 1024 * 1024;
const LANES = 4;
const { values: flags } = benchArgs({
  script: 'transport',
  summary:
    'node:http2 against undici (allowH2) for RemoteEndpoint: 1 GiB each way over loopback TLS ' +
    'in 8 MiB bodies on 4 streams; medians in GB/s.',
  formerPositionals: ['runs'],
  options: { runs: { type: 'integer', min: 1, default: 3, help: 'runs of each client and way' } },
});
const RUNS = flags.runs;
const payload = Buffer.alloc(BODY, 7);

async function server(): Promise<{ port: number; close(): void }> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
  });
  const s = http2.createSecureServer({
    cert: pems.cert,
    key: pems.private,
    settings: { initialWindowSize: STREAM_WINDOW },
    maxSessionMemory: 512,
  });
  s.on('session', (sess) => sess.setLocalWindowSize(SESSION_WINDOW));
  s.on('stream', (stream, headers) => {
    if (headers[':path'] === '/down') {
      stream.respond({ ':status': 200 });
      stream.end(payload);
      return;
    }
    let n = 0;
    stream.on('data', (c: Buffer) => (n += c.length));
    stream.on('end', () => {
      stream.respond({ ':status': 200 });
      stream.end(String(n));
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as AddressInfo).port, close: () => s.close() };
}

async function lanes(one: () => Promise<void>): Promise<number> {
  let left = TOTAL / BODY;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: LANES }, async () => {
      while (left-- > 0) await one();
    }),
  );
  return TOTAL / ((performance.now() - t0) / 1000) / 1e9;
}

async function nodeClient(port: number, dir: 'up' | 'down'): Promise<number> {
  const s = http2.connect(`https://127.0.0.1:${port}`, {
    rejectUnauthorized: false,
    settings: { initialWindowSize: STREAM_WINDOW },
    maxSessionMemory: 512,
  });
  await new Promise((r) => s.once('connect', r));
  s.setLocalWindowSize(SESSION_WINDOW);
  const gbs = await lanes(
    () =>
      new Promise<void>((resolve, reject) => {
        const req = s.request({ ':method': dir === 'up' ? 'POST' : 'GET', ':path': `/${dir}` });
        req.on('error', reject);
        req.on('data', () => undefined);
        req.on('end', () => resolve());
        if (dir === 'up') req.end(payload);
        else req.end();
      }),
  );
  s.close();
  return gbs;
}

async function undiciClient(port: number, dir: 'up' | 'down'): Promise<number> {
  const c = new Client(`https://127.0.0.1:${port}`, {
    allowH2: true,
    connect: { rejectUnauthorized: false },
    initialWindowSize: STREAM_WINDOW,
    connectionWindowSize: SESSION_WINDOW,
  } as ConstructorParameters<typeof Client>[1]);
  const gbs = await lanes(async () => {
    const r = await c.request({
      method: dir === 'up' ? 'POST' : 'GET',
      path: `/${dir}`,
      ...(dir === 'up' ? { body: payload } : {}),
    });
    for await (const _ of r.body) void _;
  });
  await c.close();
  return gbs;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const srv = await server();
const rows: [string, string, number[]][] = [];
for (const dir of ['up', 'down'] as const)
  for (const name of ['node:http2', 'undici Client (allowH2)']) rows.push([name, dir, []]);
for (let i = 0; i < RUNS; i++) {
  // Interleaved (A B A B) so a noisy neighbour hurts both alike.
  for (const row of rows)
    row[2].push(
      await (row[0] === 'node:http2' ? nodeClient : undiciClient)(
        srv.port,
        row[1] as 'up' | 'down',
      ),
    );
}
srv.close();
console.log(`| client | direction | GB/s (median of ${RUNS}) | runs |`);
console.log('|---|---|---|---|');
for (const [name, dir, xs] of rows)
  console.log(
    `| ${name} | ${dir === 'up' ? 'upload (write)' : 'download (read)'} | ${median(xs).toFixed(2)} | ${xs.map((x) => x.toFixed(2)).join(' ')} |`,
  );
