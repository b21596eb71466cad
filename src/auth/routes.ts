/**
 * Key management (admin): create (the key is in the answer this once), list (never the key),
 * revoke. And `whoami`, for any valid credential. Thin: validate, call the store, answer.
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import { errorResponses } from '../http/schema-helpers.js';
import { insertApiKey, listApiKeys, revokeApiKey } from '../store/api-keys.js';
import { guarded, type Db } from '../store/db.js';
import type { Authenticator } from './authenticator.js';
import { generateApiKey } from './keys.js';
import { Scope } from './scopes.js';
import {
  ApiKeySchema,
  CreatedKeySchema,
  CreateKeySchema,
  KeyIdParamsSchema,
  KeyListQuerySchema,
  KeyListSchema,
  WhoAmISchema,
} from './schemas.js';

export const KEYS_PATH = '/api/v1/auth/keys';
const TAGS = ['auth'];

export async function authRoutes(
  app: FastifyInstance,
  deps: { db: Db; authenticator: Authenticator; now: () => Date },
): Promise<void> {
  app.post(
    KEYS_PATH,
    {
      schema: {
        tags: TAGS,
        summary: 'Create an API key',
        description:
          'A new key with the given scopes, optionally bound to a user. The answer carries the key (`esk_…`) this once: only its SHA-256 is stored.',
        body: CreateKeySchema,
        response: { 201: CreatedKeySchema, ...errorResponses(400, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof CreateKeySchema>;
      const expiresAt = body.expires_at === undefined ? null : new Date(body.expires_at);
      if (body.user_id !== undefined && body.scopes.includes(Scope.Admin)) {
        throw new ValidationError([
          { path: 'body.user_id', message: 'must not be set for a key with the admin scope' },
        ]);
      }
      if (expiresAt && expiresAt.getTime() <= deps.now().getTime()) {
        throw new ValidationError([{ path: 'body.expires_at', message: 'must be in the future' }]);
      }
      const generated = generateApiKey();
      const row = await guarded(() =>
        insertApiKey(deps.db, {
          keyId: generated.keyId,
          hash: generated.hash,
          name: body.name,
          scopes: body.scopes,
          userId: body.user_id ?? null,
          expiresAt,
        }),
      );
      request.log.info({ key_id: row.key_id, scopes: row.scopes, user_id: row.user_id }, 'API key created');
      return reply.code(201).send({ ...row, key: generated.key });
    },
  );

  app.get(
    KEYS_PATH,
    {
      schema: {
        tags: TAGS,
        summary: 'List API keys',
        description: 'Newest first, never with the key itself. Revoked keys with `include_revoked=true`.',
        querystring: KeyListQuerySchema,
        response: { 200: KeyListSchema, ...errorResponses(422, 503) },
      },
    },
    async (request) => {
      const {
        include_revoked = false,
        limit = 100,
        offset = 0,
      } = request.query as Static<typeof KeyListQuerySchema>;
      const { keys, total } = await guarded(() =>
        listApiKeys(deps.db, { includeRevoked: include_revoked, limit, offset }),
      );
      return { keys, total, limit, offset };
    },
  );

  app.delete(
    `${KEYS_PATH}/:key_id`,
    {
      schema: {
        tags: TAGS,
        summary: 'Revoke an API key',
        description:
          'The key stops working at once on this instance, and on the others within `AUTH_CACHE_TTL_MS`. Revoking a revoked key changes nothing. 404 when unknown.',
        params: KeyIdParamsSchema,
        response: { 200: ApiKeySchema, ...errorResponses(404, 422, 503) },
      },
    },
    async (request) => {
      const { key_id } = request.params as Static<typeof KeyIdParamsSchema>;
      const revoked = await guarded(() => revokeApiKey(deps.db, key_id, deps.now()));
      if (!revoked) throw new NotFoundError(`API key not found: ${key_id}`);
      deps.authenticator.forget(revoked.hash);
      request.log.info({ key_id }, 'API key revoked');
      return revoked.key;
    },
  );

  app.get(
    '/api/v1/auth/whoami',
    {
      schema: {
        tags: TAGS,
        summary: 'The principal of this credential',
        description: 'Who the request speaks for: its id, kind, scopes and the user it is bound to.',
        response: { 200: WhoAmISchema, ...errorResponses(503) },
      },
    },
    async (request) => {
      const principal = request.principal!;
      return {
        principal: principal.id,
        kind: principal.kind,
        scopes: [...principal.scopes],
        user_id: principal.userId,
      };
    },
  );
}
