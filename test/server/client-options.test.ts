// Table tests of the client options that reach a peer daemon (parseAsyncArgs does no I/O).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAsyncArgs } from '../../src/cli/options.js';
import type { AsyncOptions } from '../../src/cli/options.js';

const base = ['-N', 'job', '-d', '/data'];
const out = { write: () => undefined };

function parse(args: string[]): AsyncOptions {
  const r = parseAsyncArgs([...base, ...args], out);
  assert.equal(r.kind, 'run');
  return (r as { options: AsyncOptions }).options;
}

describe('client options for a peer daemon', () => {
  const ok: [string, string[], Partial<AsyncOptions['remote']>, Record<string, unknown>][] = [
    [
      'user@host:dir',
      ['-r', 'alice@srv:/p'],
      { user: 'alice', host: 'srv', path: '/p' },
      { port: 33001 },
    ],
    [
      '--host and --user complete a plain -r',
      ['-r', '/p', '--host', 'srv', '--user', 'bob'],
      { user: 'bob', host: 'srv', path: '/p' },
      {},
    ],
    [
      '-P, repeated -i, -W, -R',
      ['-r', 'srv:/p', '-P', '4000', '-i', 'k1', '-i', 'k2', '-W', 't', '-R', '/logs'],
      { host: 'srv' },
      { port: 4000, keyFiles: ['k1', 'k2'], token: 't', remoteLogDir: '/logs' },
    ],
    [
      '--plaintext on loopback',
      ['-r', '127.0.0.1:/p', '--plaintext', '--accept-new-host-key'],
      { host: '127.0.0.1' },
      { plaintext: true, acceptNewHostKey: true },
    ],
  ];
  for (const [what, args, remote, daemon] of ok) {
    test(`accepted: ${what}`, () => {
      const o = parse(args);
      assert.deepEqual({ ...o.remote, ...remote }, o.remote);
      assert.ok(o.daemon);
      for (const [k, v] of Object.entries(daemon))
        assert.deepEqual((o.daemon as unknown as Record<string, unknown>)[k], v, k);
    });
  }
  test('a plain -r is a local peer: no daemon', () => {
    assert.equal(parse(['-r', '/mirror']).daemon, undefined);
  });

  const bad: [string, string[], RegExp][] = [
    [
      '-P without a host',
      ['-r', '/p', '-P', '4000'],
      /-P\/--tcp-port applies to a peer daemon only/,
    ],
    [
      '-i without a host',
      ['-r', '/p', '-i', 'k'],
      /-i\/--private-key-path applies to a peer daemon only/,
    ],
    [
      '-R without a host',
      ['-r', '/p', '-R', '/l'],
      /-R\/--remote-logdir applies to a peer daemon only/,
    ],
    ['a bad port', ['-r', 'h:/p', '-P', '70000'], /Invalid -P\/--tcp-port '70000'/],
    [
      '--plaintext to a far host',
      ['-r', 'h.example:/p', '--plaintext'],
      /--plaintext is allowed with a loopback peer only/,
    ],
    ['--host contradicting -r', ['-r', 'a:/p', '--host', 'b'], /--host b contradicts -r a:\/p/],
    ['--user without a host', ['-r', '/p', '--user', 'x'], /--user needs a peer host/],
    ['-m (FASP only)', ['-r', 'h:/p', '-m', '10m'], /--min-rate is not supported yet/],
  ];
  for (const [what, args, msg] of bad) {
    test(`refused: ${what}`, () => {
      assert.throws(() => parseAsyncArgs([...base, ...args], out), msg);
    });
  }
});
