import { describe, expect, it } from 'vitest';
import { genReqId, saneId } from './http.js';
import {
  parseTraceparent,
  traceContextOf,
  traceHeaders,
  traceOfMetadata,
  withTraceMetadata,
} from './trace-context.js';
import type { IncomingMessage } from 'node:http';

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('traceparent', () => {
  it('parses a version-00 value', () => {
    expect(parseTraceparent(VALID)).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentId: '00f067aa0ba902b7',
      flags: '01',
    });
  });
  it.each([
    ['upper case', VALID.toUpperCase()],
    ['version ff', VALID.replace(/^00/, 'ff')],
    ['an all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
    ['an all-zero parent id', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
    ['a short trace id', '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01'],
    ['more fields in version 00', `${VALID}-extra`],
    ['two values joined', `${VALID}, ${VALID}`],
    ['not a string', 42],
    ['nothing', undefined],
  ])('refuses %s', (_what, value) => {
    expect(parseTraceparent(value)).toBeNull();
  });
  it('reads a later version by its first four fields', () => {
    expect(parseTraceparent(`01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more`)).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentId: '00f067aa0ba902b7',
      flags: '01',
    });
    expect(traceContextOf('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more', undefined)).toEqual(
      {
        traceparent: VALID,
      },
    );
  });
});

describe('trace context', () => {
  it('carries a usable tracestate beside a valid traceparent only', () => {
    expect(traceContextOf(VALID, 'congo=t61rcWkgMzE, rojo=00f067aa0ba902b7')).toEqual({
      traceparent: VALID,
      tracestate: 'congo=t61rcWkgMzE, rojo=00f067aa0ba902b7',
    });
    expect(traceContextOf(VALID, 'x'.repeat(513))).toEqual({ traceparent: VALID });
    expect(traceContextOf(VALID, 'bad\u0001state')).toEqual({ traceparent: VALID });
    expect(traceContextOf('nonsense', 'congo=t61rcWkgMzE')).toBeNull();
  });
  it('goes into metadata unless the client set a traceparent, and comes out again', () => {
    const trace = { traceparent: VALID, tracestate: 'congo=t61rcWkgMzE' };
    const metadata = withTraceMetadata({ source_ip: '10.0.0.1' }, trace);
    expect(metadata).toEqual({ source_ip: '10.0.0.1', traceparent: VALID, tracestate: 'congo=t61rcWkgMzE' });
    expect(traceOfMetadata(metadata)).toEqual(trace);
    const own = { traceparent: 'the client’s own' };
    expect(withTraceMetadata(own, trace)).toBe(own);
    expect(withTraceMetadata(own, null)).toBe(own);
    expect(traceOfMetadata(own)).toBeNull();
    expect(traceOfMetadata(null)).toBeNull();
    expect(traceOfMetadata(['x'])).toBeNull();
  });
  it('becomes outgoing headers', () => {
    expect(traceHeaders({ traceparent: VALID })).toEqual({ traceparent: VALID });
    expect(traceHeaders({ traceparent: VALID, tracestate: 'a=b' })).toEqual({
      traceparent: VALID,
      tracestate: 'a=b',
    });
    expect(traceHeaders(null)).toEqual({});
  });
});

describe('request ids', () => {
  const request = (id?: string) =>
    ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as IncomingMessage;
  it('keeps a sane X-Request-Id and replaces any other', () => {
    expect(genReqId(request('req-42.abc'))).toBe('req-42.abc');
    expect(genReqId(request('x'.repeat(128)))).toBe('x'.repeat(128));
    for (const bad of ['x'.repeat(129), 'has space', 'new\nline', '', undefined]) {
      expect(genReqId(request(bad))).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      );
    }
    expect(saneId(['a', 'b'], 10)).toBeNull();
  });
});
