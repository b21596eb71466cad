import { describe, expect, it } from 'vitest';
import { CreateEventSchema } from '../events/schemas.js';
import { compileBodySchema, toFieldProblems, toPath } from './validation.js';
import { toHttpError } from './errors.js';
import { StoreUnavailableError, VersionConflictError } from '../domain/errors.js';
import { decodeCursor, encodeCursor } from '../events/routes.js';

describe('validation messages', () => {
  const validate = compileBodySchema(CreateEventSchema);
  it('names every bad field once, readably', () => {
    expect(validate({ user_id: 3, event_source: 'nope', expected_version: -1, extra: 1 })).toBe(false);
    const problems = toFieldProblems(validate.errors ?? [], 'body');
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: 'body.event_type', message: 'is required' },
        { path: 'body.extra', message: 'is not an allowed field' },
        { path: 'body.user_id', message: 'must be string or null' },
        expect.objectContaining({
          path: 'body.event_source',
          message: expect.stringContaining('must be one of: frontend'),
        }),
        expect.objectContaining({ path: 'body.expected_version' }),
      ]),
    );
    expect(new Set(problems.map((p) => p.path)).size).toBe(problems.length);
  });
  it('does not coerce body types', () => {
    expect(validate({ event_type: 't', data: '{}' })).toBe(false);
    expect(validate({ event_type: 't', expected_version: '3' })).toBe(false);
  });
  it('converts JSON pointers into paths', () => {
    expect(toPath('body', '/3/data/a~1b')).toBe('body[3].data.a/b');
    expect(toPath('query', '')).toBe('query');
  });
});

describe('toHttpError', () => {
  it('maps domain errors', () => {
    expect(toHttpError(new VersionConflictError('a:1', 'no_stream', 2))).toMatchObject({
      status: 409,
      body: { code: 'version_conflict', actual_version: 2 },
    });
    expect(toHttpError(new StoreUnavailableError('down'))).toMatchObject({
      status: 503,
      headers: { 'retry-after': '1' },
    });
  });
  it('never leaks an unknown error', () => {
    const mapped = toHttpError(new Error('secret stack'));
    expect(mapped).toEqual({
      status: 500,
      body: { detail: 'Internal server error', code: 'internal_error' },
    });
  });
});

describe('cursor', () => {
  it('round-trips and refuses garbage', () => {
    const cursor = { timestamp: new Date('2025-01-01T00:00:00.123Z'), position: 42 };
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
    expect(() => decodeCursor('nope')).toThrow(/cursor/);
  });
});
