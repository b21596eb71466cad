/**
 * The ceiling of "answer once committed" on this machine, without the event service: a bare
 * Fastify server whose one route commits the JSON body to a two-column table through the same
 * group commit as the store (one group in flight, what arrived meanwhile forms the next), driven
 * like the collector part (64 connections, one event a request, autocannon in this process).
 *
 *   npx tsx bench/ceiling.ts [--connections 64] [--duration 10] [--admin-url postgres://…/postgres]
 *     [--modes answer,commit,locked,jetstream]
 *
 * Modes: `answer` answers without storing (HTTP alone), `commit` commits each group, `locked`
 * commits each group under a transaction-level advisory lock as the store's position order does,
 * `jetstream` publishes each body to a JetStream stream of a private nats-server (with a
 * `Nats-Msg-Id`, through the service's own publisher) and answers on the stream's ack, as the
 * collector does when NATS is configured.
 * The server runs as a child process (this file with `--serve`), so its CPU is its own.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { jetstreamManager } from '@nats-io/jetstream';
import { headers } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { createJetStreamPublisher } from '../src/bus/jetstream-publisher.js';
import { flag, numberFlag, parseArgs } from './args.js';
import { startNats, type RunningNats } from './nats.js';
import { runLoad } from './load.js';
import { bodyPool, cycle, makeFrontendEvent } from './payloads.js';
import { freePort, processCpuSeconds, track } from './service.js';

const MODES = ['answer', 'commit', 'locked', 'jetstream'] as const;
type Mode = (typeof MODES)[number];
const TABLE = 'bench_ceiling_events';

/** Answers once JetStream has the body. */
async function serveJetStream(port: number, natsUrl: string): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'CEILING', subjects: ['ceiling.>'] });
  const publisher = createJetStreamPublisher(nc, 5000);
  const app = Fastify();
  app.post('/e', async (request) => {
    const id = randomUUID();
    const h = headers();
    h.set('Nats-Msg-Id', id);
    await publisher.publish('ceiling.e', Buffer.from(JSON.stringify({ id, data: request.body })), h);
    return { status: 'accepted', event_id: id };
  });
  await app.listen({ port, host: '127.0.0.1' });
  process.on('SIGTERM', () => {
    publisher.close();
    void app
      .close()
      .then(() => nc.close())
      .then(() => process.exit(0));
  });
  process.send?.('ready');
}

async function serve(mode: Mode, port: number, databaseUrl: string, natsUrl?: string): Promise<void> {
  if (mode === 'jetstream') return serveJetStream(port, natsUrl!);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  await pool.query(
    `DROP TABLE IF EXISTS ${TABLE}; CREATE TABLE ${TABLE} (position bigserial PRIMARY KEY, id uuid NOT NULL UNIQUE, data jsonb NOT NULL)`,
  );
  const insert =
    mode === 'locked'
      ? `WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(7235180999))
         INSERT INTO ${TABLE} (id, data) SELECT r.id, r.data FROM l, jsonb_to_recordset($1::jsonb) AS r(id uuid, data jsonb)`
      : `INSERT INTO ${TABLE} (id, data) SELECT r.id, r.data FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, data jsonb)`;
  let queue: { row: unknown; done: (error?: Error) => void }[] = [];
  let inFlight = false;
  const flush = async (): Promise<void> => {
    if (inFlight || queue.length === 0) return;
    const group = queue;
    queue = [];
    inFlight = true;
    try {
      await pool.query(insert, [JSON.stringify(group.map((g) => g.row))]);
      for (const g of group) g.done();
    } catch (error) {
      for (const g of group) g.done(error instanceof Error ? error : new Error(String(error)));
    } finally {
      inFlight = false;
      void flush();
    }
  };
  const app = Fastify();
  app.post('/e', async (request) => {
    const id = randomUUID();
    if (mode !== 'answer') {
      await new Promise<void>((resolve, reject) => {
        queue.push({ row: { id, data: request.body }, done: (e) => (e ? reject(e) : resolve()) });
        void flush();
      });
    }
    return { status: 'accepted', event_id: id };
  });
  await app.listen({ port, host: '127.0.0.1' });
  process.on(
    'SIGTERM',
    () =>
      void app
        .close()
        .then(() => pool.end())
        .then(() => process.exit(0)),
  );
  process.send?.('ready');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const adminUrl = flag(args, 'admin-url') ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const databaseUrl = adminUrl.replace(/\/[^/]*$/, '/event_bench');
  if (args.has('serve')) {
    await serve(
      flag(args, 'serve') as Mode,
      numberFlag(args, 'port', 0),
      databaseUrl,
      flag(args, 'nats-url'),
    );
    return;
  }
  const modes = (flag(args, 'modes') ?? MODES.join(',')).split(',') as Mode[];
  const unknown = modes.filter((mode) => !MODES.includes(mode));
  if (unknown.length > 0)
    throw new Error(`unknown modes: ${unknown.join(', ')} (known: ${MODES.join(', ')})`);
  const nats: RunningNats | undefined = modes.includes('jetstream') ? await startNats() : undefined;
  const connections = numberFlag(args, 'connections', 64);
  const duration = numberFlag(args, 'duration', 10);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query('CREATE DATABASE event_bench').catch(() => undefined);
  await admin.end();
  const nextBody = cycle(bodyPool(4096, makeFrontendEvent, 11));
  const rows: string[] = [];
  for (const mode of modes) {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--serve',
        mode,
        '--port',
        String(port),
        '--admin-url',
        adminUrl,
        ...(nats ? ['--nats-url', nats.url] : []),
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    track(child);
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    const next = () => ({ path: '/e', body: nextBody() });
    const url = `http://127.0.0.1:${port}`;
    await runLoad({ url, method: 'POST', connections, durationSec: 2, next });
    const before = processCpuSeconds(child.pid!);
    const load = await runLoad({
      url,
      method: 'POST',
      connections,
      durationSec: duration,
      next,
      serviceCpu: () => processCpuSeconds(child.pid!),
      busCpu: nats && mode === 'jetstream' ? () => nats.cpuSeconds() : undefined,
      database: mode === 'answer' || mode === 'jetstream' ? undefined : 'event_bench',
    });
    const cpuPerRequest = ((processCpuSeconds(child.pid!) - before) * 1e6) / Math.max(1, load.ok);
    rows.push(
      `| ${mode} | ${connections} | ${Math.round(load.rps).toLocaleString('en-US')} | ${load.p50} ms | ${load.p99} ms | ` +
        `${Math.round(cpuPerRequest)} µs | ${load.cpu.service} / ${load.cpu.postgres} / ${load.cpu.bus} / ${load.cpu.loadgen} |`,
    );
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  await nats?.stop();
  process.stdout.write(
    [
      '| Mode | Conns | req/s | p50 | p99 | server CPU a request | CPU % of a core: server / postgres / nats / loadgen |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
    ].join('\n'),
  );
}

await main();
