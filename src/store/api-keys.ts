/** SQL of the API keys (migration 0010): only their SHA-256 hashes are stored (src/auth/keys.ts). */
import type { Queryable } from './db.js';

export interface ApiKeyRow {
  key_id: string;
  name: string;
  scopes: string[];
  user_id: string | null;
  origin: 'api' | 'bootstrap';
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = 'key_id, name, scopes, user_id, origin, created_at, expires_at, revoked_at';

export interface NewApiKey {
  keyId: string;
  hash: string;
  name: string;
  scopes: readonly string[];
  userId: string | null;
  expiresAt: Date | null;
}

export async function insertApiKey(db: Queryable, key: NewApiKey): Promise<ApiKeyRow> {
  const result = await db.query<ApiKeyRow>(
    `INSERT INTO event.api_keys (key_id, key_hash, name, scopes, user_id, expires_at)
     VALUES ($1, $2, $3, $4::text[], $5, $6::timestamptz)
     RETURNING ${COLUMNS}`,
    [key.keyId, key.hash, key.name, key.scopes, key.userId, key.expiresAt?.toISOString() ?? null],
  );
  return result.rows[0]!;
}

/**
 * Inserts the first-start admin key when no key has ever existed. Instances starting together
 * race on the unique index of `origin = 'bootstrap'`: exactly one gets true.
 */
export async function insertBootstrapKey(
  db: Queryable,
  key: { keyId: string; hash: string; name: string; scopes: readonly string[] },
): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO event.api_keys (key_id, key_hash, name, scopes, origin)
     SELECT $1, $2, $3, $4::text[], 'bootstrap'
     WHERE NOT EXISTS (SELECT 1 FROM event.api_keys)
     ON CONFLICT DO NOTHING
     RETURNING key_id`,
    [key.keyId, key.hash, key.name, key.scopes],
  );
  return result.rowCount === 1;
}

/** The key with this hash when it is neither revoked nor expired. */
export async function findActiveKey(db: Queryable, hash: string): Promise<ApiKeyRow | null> {
  const result = await db.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM event.api_keys
     WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
    [hash],
  );
  return result.rows[0] ?? null;
}

/** Newest first; revoked keys only when asked for. */
export async function listApiKeys(
  db: Queryable,
  options: { includeRevoked: boolean; limit: number; offset: number },
): Promise<{ keys: ApiKeyRow[]; total: number }> {
  const where = options.includeRevoked ? '' : 'WHERE revoked_at IS NULL';
  const page = await db.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM event.api_keys ${where} ORDER BY created_at DESC, key_id LIMIT $1 OFFSET $2`,
    [options.limit, options.offset],
  );
  const total = await db.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM event.api_keys ${where}`);
  return { keys: page.rows, total: total.rows[0]?.n ?? 0 };
}

/**
 * Revokes a key (a key revoked before keeps its first revocation time). Returns it with its hash,
 * so that the caller can drop it from its cache; null when there is no such key.
 */
export async function revokeApiKey(
  db: Queryable,
  keyId: string,
  at: Date,
): Promise<{ key: ApiKeyRow; hash: string } | null> {
  const result = await db.query<ApiKeyRow & { key_hash: string }>(
    `UPDATE event.api_keys SET revoked_at = COALESCE(revoked_at, $2::timestamptz)
     WHERE key_id = $1 RETURNING ${COLUMNS}, key_hash`,
    [keyId, at.toISOString()],
  );
  const row = result.rows[0];
  if (!row) return null;
  const { key_hash, ...key } = row;
  return { key, hash: key_hash };
}
