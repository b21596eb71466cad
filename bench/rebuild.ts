/**
 * The rebuild part: how fast the projector (src/projections/projector.ts) computes a declared
 * projection from the log (issue 5 point 6). 200,000 events in 2,000 streams of one entity type
 * are stored first (HTTP batches); then a projection using most operations is registered over them
 * (its states are computed in the background from the first event of the type: the rebuild
 * machinery) and rebuilt once (`POST …/projections/{name}/rebuild`). Each is timed by the
 * definition's own progress (`started_at` → `finished_at`, the database's clock); the rate is the
 * events applied over that time. PROJECTION_BATCH_SIZE is the service's default.
 */
import { ADMIN_AUTHORIZATION, type RunningService } from './service.js';
import { cpuText, fmt, log, postJson, secs, waitFor, type Suite } from './suite.js';

const EVENTS = 200_000;
const STREAMS = 2_000;
const BATCH = 1_000;
/** Batches in flight at once while storing. */
const PARALLEL = 4;
const NAME = 'bench_cart_summary';
const EVENT_TYPES = ['cart.item_added', 'cart.item_added', 'cart.item_removed', 'cart.coupon_applied'];

const DEFINITION = {
  name: NAME,
  entity_type: 'cart',
  description: 'bench/rebuild.ts',
  initial_state: { items: [], count: 0, total: 0 },
  handlers: [
    {
      event_type: 'cart.item_added',
      operations: [
        { op: 'append', path: 'items', from: 'data.sku', max_length: 20 },
        { op: 'increment', path: 'count' },
        { op: 'increment', path: 'total', from: 'data.price' },
      ],
    },
    {
      event_type: 'cart.item_removed',
      operations: [
        { op: 'increment', path: 'count', by: -1 },
        { op: 'remove', path: 'coupon' },
      ],
    },
    { event_type: 'cart.coupon_applied', operations: [{ op: 'merge', path: 'coupon', from: 'data' }] },
    { event_type: 'cart.>', operations: [{ op: 'set', path: 'last_event', from: 'event_type' }] },
  ],
};

interface DefinitionJson {
  status: string;
  progress: { events_applied: number; started_at: string; finished_at: string | null };
}

async function definition(svc: RunningService): Promise<DefinitionJson> {
  const response = await fetch(`${svc.url}/api/v1/events/projections/${NAME}`, {
    headers: { authorization: ADMIN_AUTHORIZATION },
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok) throw new Error(`GET projection: HTTP ${response.status}`);
  return (await response.json()) as DefinitionJson;
}

async function store(svc: RunningService): Promise<void> {
  const batches = EVENTS / BATCH;
  let next = 0;
  const worker = async () => {
    for (let b = next++; b < batches; b = next++) {
      const events = Array.from({ length: BATCH }, (_, i) => {
        const n = b * BATCH + i;
        return {
          event_type: EVENT_TYPES[n % EVENT_TYPES.length],
          entity_type: 'cart',
          entity_id: `cart-${n % STREAMS}`,
          data: { sku: `sku-${n % 97}`, price: (n % 13) + 0.5, code: `c${n % 7}` },
        };
      });
      await postJson(svc, '/api/v1/events/batch', events);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

export async function rebuildPart(suite: Suite): Promise<void> {
  await suite.recreateDatabase();
  await suite.run({}, async (svc) => {
    const stored = performance.now();
    await store(svc);
    log(
      `  stored ${fmt(EVENTS)} events in ${fmt(STREAMS)} streams in ${secs((performance.now() - stored) / 1000)} s`,
    );
    for (const phase of ['registered over them', 'rebuilt'] as const) {
      const name = `PostgreSQL: declared projection computed from ${fmt(EVENTS)} events in ${fmt(STREAMS)} streams, ${phase}`;
      log(name);
      await suite.waitForQuiet();
      const cpu = suite.cpuMeter(svc);
      if (phase === 'rebuilt') await postJson(svc, `/api/v1/events/projections/${NAME}/rebuild`, {});
      else await postJson(svc, '/api/v1/events/projections', DEFINITION);
      let last = await definition(svc);
      const reached = await waitFor(
        async () => (last = await definition(svc)).progress.events_applied,
        () => last.status === 'live',
        { stallSeconds: 30, maxSeconds: 900 },
      );
      const usage = { cpu: cpu() };
      const { events_applied: applied, started_at, finished_at } = last.progress;
      const seconds = finished_at ? (Date.parse(finished_at) - Date.parse(started_at)) / 1000 : Number.NaN;
      const rate = applied / seconds;
      suite.rows.push({
        scenario: name,
        target: '—',
        result:
          `${fmt(rate)} events/s (${fmt(applied)} events in ${secs(seconds)} s` +
          `${reached.reached ? '' : ', NOT finished'}); ${cpuText(usage.cpu)}` +
          suite.disturbedNote(usage),
        met: '—',
        extra: { eventsPerSecond: rate, events: applied, seconds, ...usage },
      });
      log(`  ${suite.rows[suite.rows.length - 1]!.result}`);
      if (!reached.reached || applied !== EVENTS) {
        throw new Error(`${phase}: ${fmt(applied)} of ${fmt(EVENTS)} events applied, status ${last.status}`);
      }
    }
  });
}
