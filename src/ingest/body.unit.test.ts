import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readBody } from './body.js';

const stream = (...chunks: Buffer[]) => Readable.from(chunks);

describe('readBody', () => {
  it('reads a plain body', async () => {
    const body = await readBody(stream(Buffer.from('{"a"'), Buffer.from(':1}')), undefined, 100);
    expect(body.toString()).toBe('{"a":1}');
  });

  it('inflates gzip (and x-gzip)', async () => {
    const json = JSON.stringify({ batch: [{ type: 'track', event: 'x' }] });
    for (const coding of ['gzip', 'x-gzip', ' GZIP ']) {
      const body = await readBody(stream(gzipSync(json)), coding, 1000);
      expect(body.toString()).toBe(json);
    }
  });

  it('refuses a plain body over the cap', async () => {
    await expect(readBody(stream(Buffer.alloc(101)), 'identity', 100)).rejects.toMatchObject({
      code: 'body_too_large',
    });
  });

  it('stops inflating a decompression bomb at the cap', async () => {
    // 64 MiB of zeros compress to about 64 KiB.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(100 * 1024);
    const before = process.memoryUsage().arrayBuffers;
    await expect(readBody(stream(bomb), 'gzip', 100 * 1024)).rejects.toMatchObject({
      code: 'body_too_large',
      message: expect.stringContaining('after decompression'),
    });
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('answers 400 for data that is not gzip, and for other encodings', async () => {
    await expect(readBody(stream(Buffer.from('plain')), 'gzip', 1000)).rejects.toMatchObject({
      code: 'invalid_payload',
    });
    await expect(readBody(stream(Buffer.from('x')), 'br', 1000)).rejects.toMatchObject({
      code: 'invalid_payload',
      errors: [{ path: 'header.content-encoding' }],
    });
  });
});
