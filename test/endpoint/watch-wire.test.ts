// The watch stream's framing (endpoint/wire.ts HintLines) and the daemon's confinement of
// scoped scans (server/docroot.ts realDirPrefix), as tables.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { WatchMessage } from '../../src/endpoint/wire.js';
import { HintLines, encodeWatchMessage } from '../../src/endpoint/wire.js';
import { realDirPrefix } from '../../src/server/docroot.js';
import { tmp } from '../helpers.js';

function parse(chunks: readonly string[]): WatchMessage[] {
  const out: WatchMessage[] = [];
  const lines = new HintLines((m) => out.push(m));
  for (const c of chunks) lines.push(c);
  return out;
}

describe('watch stream lines', () => {
  const rows: { what: string; chunks: string[]; want: WatchMessage[] }[] = [
    {
      what: 'ready, then a batch',
      chunks: ['{"ready":true}\n{"hints":[{"kind":"paths","paths":["a","b/c"]}]}\n'],
      want: [{ ready: true }, { hints: [{ kind: 'paths', paths: ['a', 'b/c'] }] }],
    },
    {
      what: 'a line split across chunks',
      chunks: ['{"hints":[{"kind":"resc', 'an","reason":"burst"}]}', '\n'],
      want: [{ hints: [{ kind: 'rescan', reason: 'burst' }] }],
    },
    { what: 'a heartbeat', chunks: ['{"ping":true}\n'], want: [{ ping: true }] },
    {
      what: 'an incomplete last line waits',
      chunks: ['{"ping":true}\n{"ready"'],
      want: [{ ping: true }],
    },
    {
      what: 'paths outside the session directory are dropped',
      chunks: [
        '{"hints":[{"kind":"paths","paths":["../x","/etc/passwd","a/../../b",".private-asp/db","ok"]}]}\n',
      ],
      want: [{ hints: [{ kind: 'paths', paths: ['ok'] }] }],
    },
    {
      what: 'a batch of only bad paths is empty',
      chunks: ['{"hints":[{"kind":"paths","paths":["../x"]}]}\n'],
      want: [{ hints: [] }],
    },
    {
      what: 'degraded',
      chunks: [encodeWatchMessage({ hints: [{ kind: 'degraded', message: 'm', hint: 'h' }] })],
      want: [{ hints: [{ kind: 'degraded', message: 'm', hint: 'h' }] }],
    },
  ];
  for (const r of rows) test(r.what, () => assert.deepEqual(parse(r.chunks), r.want));

  for (const bad of [
    'not json\n',
    '{"what":1}\n',
    '{"hints":[{"kind":"paths"}]}\n',
    '{"hints":[{"kind":"nope"}]}\n',
  ])
    test(`a malformed line is refused: ${JSON.stringify(bad)}`, () =>
      assert.throws(() => parse([bad]), /malformed watch stream/));
});

describe('scoped scan directories at the daemon (realDirPrefix)', () => {
  const root = tmp();
  mkdirSync(join(root, 'a/b/c'), { recursive: true });
  writeFileSync(join(root, 'a/file'), '');
  const outside = tmp();
  symlinkSync(outside, join(root, 'a/link'));
  const rows: [string, string][] = [
    ['', ''],
    ['a', 'a'],
    ['a/b/c', 'a/b/c'],
    ['a/link', 'a'],
    ['a/link/deeper', 'a'],
    ['a/file', 'a'],
    ['a/gone/x', 'a'],
  ];
  for (const [dir, want] of rows)
    test(`'${dir}' is listed as '${want}'`, () => assert.equal(realDirPrefix(root, dir), want));
});
