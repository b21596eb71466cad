/**
 * SQL of the outbox (lifecycle messages written in the transaction of the change they announce),
 * of relay checkpoints, and of dead letters.
 */
import { prepared, type Queryable } from './db.js';
import { lockPositionOrder, OUTBOX_SOURCE } from './follower.js';

export interface OutboxMessage {
  msgId: string;
  subject: string;
  payload: unknown;
  headers?: Record<string, string>;
}

/** Adds messages to the outbox inside the caller's transaction. */
export async function enqueueOutbox(tx: Queryable, messages: OutboxMessage[]): Promise<void> {
  if (messages.length === 0) return;
  // Positions are drawn in commit order (follower.ts).
  await lockPositionOrder(tx, OUTBOX_SOURCE);
  await tx.query(
    prepared(`INSERT INTO event.outbox (msg_id, subject, payload, headers)
     SELECT m.msg_id, m.subject, m.payload, m.headers
     FROM jsonb_to_recordset($1::jsonb) AS m(msg_id text, subject text, payload jsonb, headers jsonb)`),
    [
      JSON.stringify(
        messages.map((m) => ({
          msg_id: m.msgId,
          subject: m.subject,
          payload: m.payload,
          headers: m.headers ?? {},
        })),
      ),
    ],
  );
}

/**
 * Deletes published outbox rows at or below `upTo` (the caller's saved relay checkpoint, so
 * nothing a restarted relay would read again), at most `limit` of them, oldest first. Returns how
 * many.
 */
export async function pruneOutbox(db: Queryable, upTo: number, limit: number): Promise<number> {
  const result = await db.query(
    prepared(`DELETE FROM event.outbox WHERE position IN (
       SELECT position FROM event.outbox WHERE position <= $1 ORDER BY position LIMIT $2)`),
    [upTo, limit],
  );
  return result.rowCount;
}

export async function loadCheckpoint(db: Queryable, name: string): Promise<number> {
  await db.query('INSERT INTO event.relay_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING', [name]);
  const result = await db.query<{ position: number }>(
    'SELECT position FROM event.relay_checkpoints WHERE name = $1',
    [name],
  );
  return result.rows[0]?.position ?? 0;
}

export async function saveCheckpoint(db: Queryable, name: string, position: number): Promise<void> {
  await db.query(
    prepared(
      'UPDATE event.relay_checkpoints SET position = GREATEST(position, $2), updated_at = now() WHERE name = $1',
    ),
    [name, position],
  );
}

export interface DeadLetter {
  dead_letter_id: number;
  channel: string;
  subject: string | null;
  message_id: string | null;
  payload: string;
  headers: Record<string, string>;
  error: string;
  received_at: Date;
}

export async function recordDeadLetter(
  db: Queryable,
  letter: Omit<DeadLetter, 'dead_letter_id' | 'received_at'>,
): Promise<void> {
  await db.query(
    `INSERT INTO event.dead_letters (channel, subject, message_id, payload, headers, error)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
    [
      letter.channel,
      letter.subject,
      letter.message_id,
      letter.payload,
      JSON.stringify(letter.headers),
      letter.error,
    ],
  );
}

export async function listDeadLetters(
  db: Queryable,
  options: { channel?: string; limit: number; offset: number },
): Promise<{ items: DeadLetter[]; total: number }> {
  const where = options.channel === undefined ? '' : 'WHERE channel = $3';
  const params: unknown[] = [options.limit, options.offset];
  if (options.channel !== undefined) params.push(options.channel);
  const items = await db.query<DeadLetter>(
    `SELECT dead_letter_id, channel, subject, message_id, payload, headers, error, received_at
     FROM event.dead_letters ${where} ORDER BY dead_letter_id DESC LIMIT $1 OFFSET $2`,
    params,
  );
  const total = await db.query<{ n: number }>(
    `SELECT count(*)::bigint AS n FROM event.dead_letters ${where.replace('$3', '$1')}`,
    options.channel === undefined ? [] : [options.channel],
  );
  return { items: items.rows, total: total.rows[0]?.n ?? 0 };
}
