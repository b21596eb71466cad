/**
 * Request bodies of the Segment-style channels: JSON whatever the content type says (SDKs and
 * beacons send `application/json`, `text/plain` or nothing), optionally gzip-encoded. The bytes
 * received and the bytes after decompression are both capped, and inflating stops as soon as the
 * cap is passed, so a small compressed body cannot expand into gigabytes (a decompression bomb).
 */
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { InvalidPayloadError, PayloadTooLargeError } from '../domain/errors.js';

const CODINGS = new Set(['identity', 'gzip', 'x-gzip']);

/** Reads a whole body, inflating it when `contentEncoding` is gzip; rejects past `maxBytes`. */
export function readBody(
  source: Readable,
  contentEncoding: string | undefined,
  maxBytes: number,
): Promise<Buffer> {
  const coding = (contentEncoding ?? 'identity').trim().toLowerCase() || 'identity';
  if (!CODINGS.has(coding)) {
    return Promise.reject(
      new InvalidPayloadError([{ path: 'header.content-encoding', message: 'must be gzip or identity' }]),
    );
  }
  const inflater = coding === 'identity' ? null : createGunzip();
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let decoded = 0;
    let settled = false;

    const finish = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      source.removeListener('data', onData);
      source.removeListener('end', onEnd);
      source.removeListener('error', onSourceError);
      if (inflater) {
        inflater.removeAllListeners();
        inflater.on('error', () => undefined);
        inflater.destroy();
      }
      if (error) {
        // Discard the rest of the upload so that the client reads our answer.
        source.resume();
        reject(error);
      } else {
        resolve(Buffer.concat(chunks, decoded));
      }
    };
    const tooLarge = (): void =>
      finish(
        new PayloadTooLargeError(
          `Body is larger than ${maxBytes} bytes${inflater ? ' (after decompression)' : ''}`,
        ),
      );
    const onDecoded = (chunk: Buffer): void => {
      decoded += chunk.length;
      if (decoded > maxBytes) tooLarge();
      else chunks.push(chunk);
    };
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      received += bytes.length;
      if (received > maxBytes) {
        tooLarge();
      } else if (inflater) {
        if (!inflater.write(bytes)) {
          source.pause();
          inflater.once('drain', () => source.resume());
        }
      } else {
        onDecoded(bytes);
      }
    };
    const onEnd = (): void => {
      if (inflater) inflater.end();
      else finish(null);
    };
    const onSourceError = (error: Error): void => finish(Object.assign(error, { statusCode: 400 }));

    if (inflater) {
      inflater.on('data', onDecoded);
      inflater.on('end', () => finish(null));
      inflater.on('error', () =>
        finish(new InvalidPayloadError([{ path: 'body', message: 'is not valid gzip data' }])),
      );
    }
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onSourceError);
  });
}

/**
 * Makes every body of this (encapsulated) plugin JSON, gzip allowed, at most `maxBytes` after
 * decompression. JSON is parsed by Fastify's own parser (prototype poisoning refused, as
 * everywhere else in the API).
 */
export function acceptJsonBodies(app: FastifyInstance, maxBytes: number): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    const contentLength = Number(request.headers['content-length']);
    if (contentLength > maxBytes) {
      done(new PayloadTooLargeError(`Body is larger than ${maxBytes} bytes`), undefined);
      return;
    }
    readBody(payload, request.headers['content-encoding'], maxBytes).then(
      (body) => parseJson(request, body.toString('utf8'), done),
      (error: Error) => done(error, undefined),
    );
  });
}
