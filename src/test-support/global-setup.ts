/**
 * Vitest global setup for integration tests: a reachable PostgreSQL (TEST_DATABASE_URL, else the
 * local server on 127.0.0.1:5432, provisioned by scripts/ensure-services.sh where it is missing),
 * and a template database with every migration applied, from which each test file clones its own
 * database in milliseconds.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { EVENT_STREAM } from '../bus/envelope.js';
import { INGEST_STREAM } from '../ingest/nats-consumer.js';
import { createPgDb } from '../store/pg.js';
import { loadMigrations, migrate } from '../store/migrate.js';

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export default async function setup(project: TestProject): Promise<void> {
  const adminUrl = process.env.TEST_DATABASE_URL ?? DEFAULT_URL;
  if (!(await reachable(adminUrl))) {
    if (process.env.TEST_DATABASE_URL) throw new Error(`TEST_DATABASE_URL ${adminUrl} is not reachable`);
    execFileSync('bash', ['scripts/ensure-services.sh', 'postgres'], { stdio: 'inherit' });
    if (!(await reachable(adminUrl)))
      throw new Error(`PostgreSQL at ${adminUrl} is not reachable after provisioning`);
  }
  const hash = createHash('sha256')
    .update(
      loadMigrations()
        .map((m) => m.sql)
        .join('\n'),
    )
    .digest('hex')
    .slice(0, 12);
  const template = `event_service_tpl_${hash}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
    if (exists.rowCount === 0) {
      const building = `${template}_build_${process.pid}`;
      await admin.query(`CREATE DATABASE "${building}"`);
      const db = createPgDb({
        connectionString: withDatabase(adminUrl, building),
        poolSize: 2,
        statementTimeoutMs: 60_000,
      });
      await migrate(db);
      await db.close();
      try {
        await admin.query(`ALTER DATABASE "${building}" RENAME TO "${template}"`);
      } catch {
        // another run built it at the same time
        await admin.query(`DROP DATABASE IF EXISTS "${building}"`);
      }
    }
  } finally {
    await admin.end();
  }
  const natsUrl = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
  const hasBinary = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].some(
    (p) => existsSync(p),
  );
  if (!(await natsReachable(natsUrl)) || !hasBinary) {
    if (process.env.TEST_NATS_URL) throw new Error(`TEST_NATS_URL ${natsUrl} is not reachable`);
    execFileSync('bash', ['scripts/ensure-services.sh', 'nats'], { stdio: 'inherit' });
    if (!(await natsReachable(natsUrl)))
      throw new Error(`NATS at ${natsUrl} is not reachable after provisioning`);
  }
  await removeDefaultStreams(natsUrl);
  // Redis and RabbitMQ for the processor tests (src/processing).
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  for (const [name, url] of [
    ['redis', redisUrl],
    ['rabbitmq', amqpUrl],
  ] as const) {
    if (await portOpen(url)) continue;
    if (process.env[name === 'redis' ? 'TEST_REDIS_URL' : 'TEST_AMQP_URL'])
      throw new Error(`${url} is not reachable`);
    execFileSync('bash', ['scripts/ensure-services.sh', name], { stdio: 'inherit' });
    if (!(await portOpen(url))) throw new Error(`${name} at ${url} is not reachable after provisioning`);
  }
  project.provide('redisUrl', redisUrl);
  project.provide('amqpUrl', amqpUrl);
  project.provide('natsUrl', natsUrl);
  project.provide('pgAdminUrl', adminUrl);
  project.provide('pgTemplate', template);
}

/**
 * A service started by hand against the shared test server (NATS_URL=nats://127.0.0.1:4222) leaves
 * the service's default streams there; they capture `event.>` and `events.backend.>`, so the
 * tests' own streams (unique names and subjects under those) could not be created. Tests never
 * use the default names on the shared server: whatever holds them is such a leftover.
 */
async function removeDefaultStreams(url: string): Promise<void> {
  const nc = await connectNats({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    for (const name of [EVENT_STREAM, INGEST_STREAM]) {
      await jsm.streams.delete(name).catch(() => false);
    }
  } finally {
    await nc.close();
  }
}

async function portOpen(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function natsReachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url.replace(/^nats:/, 'http:'));
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 4222) });
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('data', (chunk) => {
      socket.destroy();
      resolve(chunk.toString().startsWith('INFO'));
    });
    socket.once('error', () => resolve(false));
  });
}

declare module 'vitest' {
  export interface ProvidedContext {
    natsUrl: string;
    redisUrl: string;
    amqpUrl: string;
    pgAdminUrl: string;
    pgTemplate: string;
  }
}
