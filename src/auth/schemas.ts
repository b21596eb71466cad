/** Request and response schemas of the key management endpoints (TypeBox → JSON Schema → OpenAPI). */
import { Type } from 'typebox';
import { DateTime, NullableDateTime, NullableString, StringEnum } from '../http/schema-helpers.js';
import { SCOPES } from './scopes.js';

const ScopeSchema = StringEnum(SCOPES, {
  description: '`events:read`, `events:write` or `admin` (which implies the others)',
});

export const CreateKeySchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'What the key is for, for people' }),
    scopes: Type.Array(ScopeSchema, { minItems: 1, maxItems: 3, uniqueItems: true }),
    user_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description:
          'Binds the key to one user: it reads only that user’s events and writes events only as that user. Not with `admin`.',
      }),
    ),
    expires_at: Type.Optional(
      Type.String({ format: 'date-time', description: 'When the key stops working; unset = never' }),
    ),
  },
  { additionalProperties: false },
);

const KeyFields = {
  key_id: Type.String({ description: 'Public id of the key (also the part after `esk_`)' }),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  user_id: NullableString(),
  origin: StringEnum(['api', 'bootstrap'] as const, {
    description: '`bootstrap`: the admin key generated at the first start',
  }),
  created_at: DateTime(),
  expires_at: NullableDateTime(),
  revoked_at: NullableDateTime(),
};

export const ApiKeySchema = Type.Object(KeyFields, { title: 'ApiKey' });

export const CreatedKeySchema = Type.Object(
  {
    ...KeyFields,
    key: Type.String({ description: 'The key: shown this once, only its hash is stored' }),
  },
  { title: 'CreatedApiKey' },
);

export const KeyListQuerySchema = Type.Object(
  {
    include_revoked: Type.Optional(Type.Boolean({ default: false })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
  },
  { additionalProperties: false },
);

export const KeyListSchema = Type.Object(
  {
    keys: Type.Array(ApiKeySchema),
    total: Type.Integer(),
    limit: Type.Integer(),
    offset: Type.Integer(),
  },
  { title: 'ApiKeyList' },
);

export const KeyIdParamsSchema = Type.Object({
  key_id: Type.String({ minLength: 1, maxLength: 64 }),
});

export const WhoAmISchema = Type.Object(
  {
    principal: Type.String({ description: '`key:<key_id>`, `env:ADMIN_API_KEY` or `jwt:<sub>`' }),
    kind: StringEnum(['api_key', 'jwt'] as const),
    scopes: Type.Array(Type.String()),
    user_id: NullableString({ description: 'The user the credential is bound to; null = none' }),
  },
  { title: 'WhoAmI' },
);
