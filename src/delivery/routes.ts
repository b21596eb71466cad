/**
 * Endpoints 10-12 of the seed contract (list, create, delete subscriptions) and what a webhook
 * user needs besides: get, update, enable/disable, the delivery log and redelivery. Thin:
 * validate, call the service, answer. All need the admin scope (src/auth/policy.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { errorResponses } from '../http/schema-helpers.js';
import {
  CreatedSubscriptionSchema,
  CreateSubscriptionSchema,
  DeletedSubscriptionSchema,
  DeliveryListQuerySchema,
  DeliveryListSchema,
  DeliveryParamsSchema,
  DeliverySchema,
  SubscriptionIdParamsSchema,
  SubscriptionListQuerySchema,
  SubscriptionSchema,
  UpdateSubscriptionSchema,
} from './schemas.js';
import type { CreateSubscriptionInput, SubscriptionService, UpdateSubscriptionInput } from './service.js';

export interface SubscriptionRoutesDeps {
  subscriptions: SubscriptionService;
}

const TAGS = ['subscriptions'];
const BASE = '/api/v1/events/subscriptions';

export async function subscriptionRoutes(app: FastifyInstance, deps: SubscriptionRoutesDeps): Promise<void> {
  const { subscriptions } = deps;

  app.get(
    BASE,
    {
      schema: {
        tags: TAGS,
        summary: 'List webhook subscriptions',
        description: 'Every subscription, oldest first (`?enabled=` filters). Secrets are never returned.',
        querystring: SubscriptionListQuerySchema,
        response: { 200: { type: 'array', items: SubscriptionSchema }, ...errorResponses(422, 503) },
      },
    },
    async (request) => {
      const { enabled } = request.query as Static<typeof SubscriptionListQuerySchema>;
      return subscriptions.list({ enabled });
    },
  );

  app.post(
    BASE,
    {
      schema: {
        tags: TAGS,
        summary: 'Create a webhook subscription',
        description:
          'Every event stored from now on that matches the filters (`event_types` patterns; `event_sources` and `event_categories` when given) is POSTed to `callback_url`, signed after Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) and retried per `retry_policy`. The answer holds `webhook_secret` this once. `subscriber_name` is unique (409). Publishes `event.subscription.created`.',
        body: CreateSubscriptionSchema,
        response: { 201: CreatedSubscriptionSchema, ...errorResponses(400, 409, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const { subscription, webhook_secret } = await subscriptions.create(
        request.body as CreateSubscriptionInput,
      );
      return reply.code(201).send({ ...subscription, webhook_secret });
    },
  );

  app.get(
    `${BASE}/:subscription_id`,
    {
      schema: {
        tags: TAGS,
        summary: 'Get a webhook subscription',
        description: 'Without its secret. `disabled_reason` says why a disabled subscription is disabled.',
        params: SubscriptionIdParamsSchema,
        response: { 200: SubscriptionSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { subscription_id } = request.params as Static<typeof SubscriptionIdParamsSchema>;
      return subscriptions.get(subscription_id);
    },
  );

  app.put(
    `${BASE}/:subscription_id`,
    {
      schema: {
        tags: TAGS,
        summary: 'Update a webhook subscription',
        description:
          'Changes the fields given and keeps the others (`null` clears `description`, `event_sources`, `event_categories`). New filters apply to events fanned out from then on. `webhook_secret` rotates the secret (not returned). `enabled: false` answers once no attempt is in flight, like `/disable`.',
        params: SubscriptionIdParamsSchema,
        body: UpdateSubscriptionSchema,
        response: { 200: SubscriptionSchema, ...errorResponses(400, 404, 409, 413, 415, 422, 503) },
      },
    },
    async (request) => {
      const { subscription_id } = request.params as Static<typeof SubscriptionIdParamsSchema>;
      return subscriptions.update(subscription_id, request.body as UpdateSubscriptionInput);
    },
  );

  app.post(
    `${BASE}/:subscription_id/enable`,
    {
      schema: {
        tags: TAGS,
        summary: 'Enable a webhook subscription',
        description:
          'Clears `disabled_reason` and the failure count. Deliveries still pending resume; events stored while it was disabled are not delivered.',
        params: SubscriptionIdParamsSchema,
        response: { 200: SubscriptionSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { subscription_id } = request.params as Static<typeof SubscriptionIdParamsSchema>;
      return subscriptions.setEnabled(subscription_id, true);
    },
  );

  app.post(
    `${BASE}/:subscription_id/disable`,
    {
      schema: {
        tags: TAGS,
        summary: 'Disable a webhook subscription',
        description:
          'Stops delivery: attempts in flight are aborted, and the answer comes once none is left, so no request is sent after it. Pending deliveries wait for `/enable`.',
        params: SubscriptionIdParamsSchema,
        response: { 200: SubscriptionSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { subscription_id } = request.params as Static<typeof SubscriptionIdParamsSchema>;
      return subscriptions.setEnabled(subscription_id, false);
    },
  );

  app.delete(
    `${BASE}/:subscription_id`,
    {
      schema: {
        tags: TAGS,
        summary: 'Delete a webhook subscription',
        description:
          'Stops delivery at once (as `/disable`: no request is sent after the answer) and deletes the subscription with its deliveries and attempt log.',
        params: SubscriptionIdParamsSchema,
        response: { 200: DeletedSubscriptionSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { subscription_id } = request.params as Static<typeof SubscriptionIdParamsSchema>;
      await subscriptions.remove(subscription_id);
      return { status: 'deleted' as const, subscription_id, message: 'Subscription deleted' };
    },
  );

  app.get(
    `${BASE}/:subscription_id/deliveries`,
    {
      schema: {
        tags: TAGS,
        summary: 'Deliveries of a subscription, with every attempt',
        description:
          'Newest event first; `status` filters (`pending`, `delivered`, `failed`). Each delivery has its attempt log: status, response code and body excerpt, duration, error, next attempt.',
        params: SubscriptionIdParamsSchema,
        querystring: DeliveryListQuerySchema,
        response: { 200: DeliveryListSchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { subscription_id } = request.params as Static<typeof SubscriptionIdParamsSchema>;
      const { status, limit = 100, offset = 0 } = request.query as Static<typeof DeliveryListQuerySchema>;
      const page = await subscriptions.deliveries(subscription_id, { status, limit, offset });
      return {
        deliveries: page.items,
        total: page.total,
        limit,
        offset,
        has_more: offset + limit < page.total,
      };
    },
  );

  app.post(
    `${BASE}/:subscription_id/deliveries/:delivery_id/redeliver`,
    {
      schema: {
        tags: TAGS,
        summary: 'Deliver again',
        description:
          'A failed (or delivered) delivery is attempted again now, with a fresh retry budget and the same `webhook-id`. 409 while it is still pending.',
        params: DeliveryParamsSchema,
        response: { 202: DeliverySchema, ...errorResponses(404, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const { subscription_id, delivery_id } = request.params as Static<typeof DeliveryParamsSchema>;
      return reply.code(202).send(await subscriptions.redeliver(subscription_id, delivery_id));
    },
  );
}
