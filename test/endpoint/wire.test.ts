// The data frame of the wire format: exact sizes, fresh buffers, clear errors for bodies
// larger or shorter than announced and for garbage.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { encodeFrame, readFrame } from '../../src/endpoint/wire.js';

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
