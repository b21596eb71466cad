/**
 * How disable and delete keep their promise ("no request after the 200") against claims held by
 * any instance, shown on the claims themselves: the answer waits until no claim is left, a claim
 * racing the disable either lands first (and is waited for) or finds the subscription disabled,
 * and a claim whose instance died is waited for only until its lease ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS, startTestApp, type TestApp } from '../test-support/app.js';
import { uid } from '../test-support/http.js';
import {
  apiOf,
  createEventVia,
  createSubscription,
  SUBSCRIPTIONS,
  type Api,
} from '../test-support/subscriptions.js';
import { claimDeliveries, insertDeliveries, releaseClaim, type ClaimRequest } from './store.js';

const claimAll = (token: string, leaseMs = 60_000): ClaimRequest => ({
  limit: 100,
  perSubscription: 100,
  inFlight: new Map(),
  leaseMs,
  token,
});

describe.each(STORE_KINDS)('stopping delivery on %s', (kind) => {
  let t: TestApp;
  let api: Api;
  beforeAll(async () => {
    // No workers: the test plays the engine's part with the claims themselves.
    t = await startTestApp(kind, {
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      DELIVERY_TIMEOUT_MS: '500',
      DELIVERY_LEASE_MS: '1500',
    });
    api = apiOf(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A subscription with one due delivery. */
  async function subscriptionWithDelivery(): Promise<{ id: string; deliveryId: string }> {
    const type = uid('stop');
    const sub = await createSubscription(api, 'http://127.0.0.1:9/hook', { event_types: [type] });
    const event = await createEventVia(api, { event_type: type });
    const stored = await t.db.query<{ position: number }>(
      'SELECT position FROM event.events WHERE event_id = $1',
      [event.event_id],
    );
    const deliveryId = `dlv_${uid('x')}`;
    await t.db.transaction((tx) =>
      insertDeliveries(tx, [
        {
          delivery_id: deliveryId,
          subscription_id: sub.subscription_id,
          event_id: event.event_id,
          event_position: stored.rows[0]!.position,
        },
      ]),
    );
    return { id: sub.subscription_id, deliveryId };
  }

  for (const how of ['disable', 'delete'] as const) {
    it(`${how} answers only once the claims on the subscription are given back`, async () => {
      const { id, deliveryId } = await subscriptionWithDelivery();
      const claims = await claimDeliveries(t.db, claimAll('engine-a'));
      expect(claims.map((c) => c.delivery_id)).toContain(deliveryId);
      let answered = false;
      const answer = (
        how === 'disable'
          ? api.call('POST', `${SUBSCRIPTIONS}/${id}/disable`)
          : api.call('DELETE', `${SUBSCRIPTIONS}/${id}`)
      ).then((res) => {
        answered = true;
        return res;
      });
      // Still held: no answer yet, however long we look (here: longer than many polls).
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(answered).toBe(false);
      // Meanwhile nobody can claim it again, and the subscription reads as disabled to engines.
      expect(await claimDeliveries(t.db, claimAll('engine-b'))).toEqual([]);
      await releaseClaim(t.db, deliveryId, 'engine-a');
      expect((await answer).status).toBe(200);
      expect(await claimDeliveries(t.db, claimAll('engine-c'))).toEqual([]);
    });
  }

  it('waits for a claim of an instance that died only until its lease ends', async () => {
    const { id } = await subscriptionWithDelivery();
    await claimDeliveries(t.db, claimAll('dead-engine', 800));
    const started = Date.now();
    const res = await api.call('POST', `${SUBSCRIPTIONS}/${id}/disable`);
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it.runIf(kind === 'postgres')(
    'a claim racing the disable is either waited for or finds it disabled',
    async () => {
      const { id, deliveryId } = await subscriptionWithDelivery();
      // A claim in an open transaction: it holds the subscription FOR SHARE until it commits.
      let commit!: () => void;
      const committed = new Promise<void>((resolve) => (commit = resolve));
      let claimed: string[] = [];
      const claiming = t.db.transaction(async (tx) => {
        claimed = (await claimDeliveries(tx, claimAll('engine-racing'))).map((c) => c.delivery_id);
        await committed;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(claimed).toContain(deliveryId);
      let answered = false;
      const answer = api.call('POST', `${SUBSCRIPTIONS}/${id}/disable`).then((res) => {
        answered = true;
        return res;
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(answered).toBe(false); // the disable waits for the claim's lock…
      commit();
      await claiming;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(answered).toBe(false); // …and then for the claim itself
      await releaseClaim(t.db, deliveryId, 'engine-racing');
      expect((await answer).status).toBe(200);

      // The other order: disabled first, then a claim finds nothing.
      const second = await subscriptionWithDelivery();
      await api.call('POST', `${SUBSCRIPTIONS}/${second.id}/disable`);
      const late = await claimDeliveries(t.db, claimAll('engine-late'));
      expect(late.map((c) => c.delivery_id)).not.toContain(second.deliveryId);
    },
  );
});
