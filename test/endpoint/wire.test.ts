// The data frame and the lines replies of the wire format: exact sizes, fresh buffers,
// clear errors for bodies larger or shorter than announced and for garbage.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import {
  LINE_ITEMS,
  encodeFrame,
  encodeLines,
  readFrame,
  readLines,
} from '../../src/endpoint/wire.js';

const seg = {
  entry: {
    path: 'a',
    kind: 'file' as const,
    size: 5,
    mtimeMs: 0,
    mode: 0o644,
    ino: 1,
    uid: 0,
    gid: 0,
  },
  offset: 0,
  length: 5,
  index: 0,
  count: 1,
  start: 0,
  pieces: ['00'],
};

function chunks(bufs: Uint8Array[], size: number): Readable {
  const all = Buffer.concat(bufs);
  const parts: Buffer[] = [];
  for (let i = 0; i < all.length; i += size) parts.push(all.subarray(i, i + size));
  return Readable.from(parts);
}

describe('data frames', () => {
  for (const size of [1, 3, 7, 1 << 20]) {
    test(`a frame read in chunks of ${size} bytes comes back whole, in a buffer of its own`, async () => {
      const data = Buffer.from('hello');
      const b = await readFrame(chunks(encodeFrame({ data, segments: [seg] }), size));
      assert.deepEqual(Buffer.from(b.data), data);
      assert.equal(b.data.buffer.byteLength, 5, 'not a view into a pooled buffer');
      assert.deepEqual(b.segments, [seg]);
    });
  }
  const bad: [string, Uint8Array[], RegExp][] = [
    [
      'a body larger than announced',
      [...encodeFrame({ data: Buffer.from('hello'), segments: [] }), Buffer.from('x')],
      /larger than announced/,
    ],
    [
      'a body shorter than announced',
      [encodeFrame({ data: Buffer.from('hello'), segments: [] })[0]],
      /shorter than announced/,
    ],
    [
      'a header that is not JSON',
      [Buffer.from([0, 0, 0, 3]), Buffer.from('{{{')],
      /header is not JSON/,
    ],
    ['a huge header length', [Buffer.from([0xff, 0xff, 0xff, 0xff])], /header too large/],
    ['an empty body', [], /shorter than announced/],
  ];
  for (const [what, parts, msg] of bad) {
    test(`${what} is refused`, async () => {
      await assert.rejects(readFrame(chunks(parts, 4)), msg);
    });
  }
});

describe('lines replies (scan and list over the daemon)', () => {
  const items = Array.from({ length: LINE_ITEMS * 2 + 5 }, (_, i) => ({ path: `d/f${i}`, n: i }));
  const encoded = (): Buffer => Buffer.from([...encodeLines({ stats: 1 }, items)].join(''));

  for (const size of [1, 13, 4096, 1 << 24]) {
    test(`a reply of ${items.length} items read in chunks of ${size} bytes comes back whole`, async () => {
      const r = await readLines(chunks([encoded()], size));
      assert.deepEqual(r.head, { stats: 1 });
      assert.deepEqual(r.items, items);
    });
  }

  test('the items go as several lines, each a JSON array of at most LINE_ITEMS', () => {
    const lines = [...encodeLines(null, items)];
    assert.equal(lines.length, 1 + 3);
    assert.deepEqual(JSON.parse(lines[0]!), { head: null, n: items.length });
    for (const l of lines.slice(1)) assert.ok((JSON.parse(l) as unknown[]).length <= LINE_ITEMS);
  });

  test('an empty list is a head line only', async () => {
    const r = await readLines(Readable.from([Buffer.from([...encodeLines(null, [])].join(''))]));
    assert.deepEqual(r, { head: null, items: [] });
  });

  test('a cut reply, garbage, or more items than announced are clear errors', async () => {
    const whole = encoded();
    await assert.rejects(
      readLines(chunks([whole.subarray(0, whole.length - 10)], 100)),
      /the reply ended early/,
    );
    await assert.rejects(
      readLines(chunks([Buffer.from('{"head":null,"n":2}\n[1]\n')], 4)),
      /the reply ended early/,
    );
    await assert.rejects(
      readLines(chunks([Buffer.from('{"head":null,"n":1}\n[1,2]\n')], 4)),
      /more items than announced/,
    );
    await assert.rejects(readLines(chunks([Buffer.from('nope\n')], 4)), /not JSON/);
    await assert.rejects(readLines(chunks([Buffer.from('{"head":1}\n')], 4)), /no item count/);
  });
});
