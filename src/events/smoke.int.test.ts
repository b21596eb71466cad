import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';

describe.each(STORE_KINDS)('smoke (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(async () => {
    await t.close();
  });

  it('creates and reads back an event', async () => {
    const created = await t.app.http.inject({
      method: 'POST',
      url: '/api/v1/events/create',
      payload: { event_type: 'user.created', user_id: 'u1', data: { a: 1 } },
    });
    expect(created.statusCode).toBe(201);
    const event = created.json<{ event_id: string }>();
    const read = await t.app.http.inject({ method: 'GET', url: `/api/v1/events/${event.event_id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({ event_type: 'user.created', user_id: 'u1', data: { a: 1 } });
  });
});
