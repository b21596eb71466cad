/**
 * The projection part: reading an entity's default projection (src/projections) when its stream
 * holds 10,000 events, current and at random past versions. Reads fold from the newest snapshot at
 * or below the version asked for (one every SNAPSHOT_EVERY = 100 events); the warm-up's reads write
 * the snapshots they pass, as the first reads of a long stream do in production.
 */
import { fmt, log, ms, type Suite } from './suite.js';
import { rng } from './payloads.js';
import { ADMIN_AUTHORIZATION } from './service.js';

const STREAM_EVENTS = 10_000;
const BATCH = 1_000;
const TARGET_P95_MS = 5;
const CONNECTIONS = 1;

export async function projectionPart(suite: Suite): Promise<void> {
  await suite.recreateDatabase();
  await suite.run({}, async (svc) => {
    const entityId = 'bench-cart';
    for (let from = 0; from < STREAM_EVENTS; from += BATCH) {
      const events = Array.from({ length: BATCH }, (_, i) => ({
        event_type: `cart.${['item_added', 'item_removed', 'coupon_applied', 'address_set'][(from + i) % 4]}`,
        entity_type: 'cart',
        entity_id: entityId,
        data: { n: from + i, sku: `sku-${(from + i) % 97}`, qty: (from + i) % 5 },
      }));
      const response = await fetch(`${svc.url}/api/v1/events/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: ADMIN_AUTHORIZATION },
        body: JSON.stringify(events),
      });
      if (response.status !== 201) throw new Error(`preload: batch answered ${response.status}`);
    }
    log(`  stream cart:${entityId} holds ${fmt(STREAM_EVENTS)} events`);
    const path = `/api/v1/events/projections/cart/${entityId}`;
    const random = rng(7);
    const scenarios = [
      { name: 'current state', next: () => ({ path }) },
      {
        name: 'random past version (as_of_version)',
        next: () => ({ path: `${path}?as_of_version=${1 + Math.floor(random() * STREAM_EVENTS)}` }),
      },
    ];
    for (const scenario of scenarios) {
      const name = `PostgreSQL: projection of a ${fmt(STREAM_EVENTS)}-event stream, ${scenario.name}, ${CONNECTIONS} conn`;
      log(name);
      const { load } = await suite.measure(svc, CONNECTIONS, 'GET', scenario.next);
      suite.rows.push({
        scenario: name,
        target: `p95 < ${TARGET_P95_MS} ms`,
        result:
          `p50 ${ms(load.p50)}, p95 ${ms(load.p95)}, p99 ${ms(load.p99)}; ${fmt(load.rps)} req/s` +
          suite.loadSummary(load) +
          suite.disturbedNote(load),
        met: load.p95 < TARGET_P95_MS && load.non2xx + load.errors === 0 ? 'yes' : 'no',
        load: { ...load, connections: CONNECTIONS },
      });
      log(`  ${suite.rows[suite.rows.length - 1]!.result}`);
    }
  });
}
