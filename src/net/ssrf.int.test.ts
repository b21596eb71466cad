import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { createOutboundDispatcher } from './ssrf.js';

describe('outbound dispatcher (real local HTTP server)', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('refuses loopback by literal address and by name, at connection time', async () => {
    const guarded = createOutboundDispatcher({ allowPrivate: false });
    await expect(request(`http://127.0.0.1:${port}/`, { dispatcher: guarded })).rejects.toThrow(/forbidden/);
    await expect(request(`http://localhost:${port}/`, { dispatcher: guarded })).rejects.toThrow(/forbidden/);
    await guarded.close();
  });

  it('connects when private networks are allowed', async () => {
    const open = createOutboundDispatcher({ allowPrivate: true });
    const res = await request(`http://localhost:${port}/`, { dispatcher: open });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('ok');
    await open.close();
  });
});
