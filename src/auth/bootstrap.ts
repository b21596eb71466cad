/**
 * Secure by default: when `ADMIN_API_KEY` is not set and no API key has ever existed in the
 * database, the first start generates an admin key, stores its hash and hands the key back to be
 * printed once. Instances starting together race on a unique index (migration 0010): exactly one
 * generates and prints; a later start finds a key and prints nothing.
 */
import { insertBootstrapKey } from '../store/api-keys.js';
import { guarded, type Db } from '../store/db.js';
import { generateApiKey } from './keys.js';
import { Scope } from './scopes.js';

export type BootstrapOutcome =
  { type: 'configured' } | { type: 'exists' } | { type: 'generated'; keyId: string; key: string };

export async function ensureAdminKey(db: Db, adminApiKey: string | undefined): Promise<BootstrapOutcome> {
  if (adminApiKey !== undefined) return { type: 'configured' };
  const generated = generateApiKey();
  const inserted = await guarded(() =>
    insertBootstrapKey(db, {
      keyId: generated.keyId,
      hash: generated.hash,
      name: 'generated at first start',
      scopes: [Scope.Admin],
    }),
  );
  return inserted ? { type: 'generated', keyId: generated.keyId, key: generated.key } : { type: 'exists' };
}

/** What the first start prints: the key, once, impossible to miss. */
export function bootstrapBanner(key: string): string {
  const line = '='.repeat(78);
  return [
    line,
    'event-service: no API key was configured, so an admin API key was generated.',
    'It is shown this once (only its hash is stored). Keep it somewhere safe:',
    '',
    `    ${key}`,
    '',
    'Use it as:  Authorization: Bearer <key>   (README "Authentication")',
    'Create narrower keys with POST /api/v1/auth/keys; revoke this one when done.',
    line,
    '',
  ].join('\n');
}
