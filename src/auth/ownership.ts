/**
 * Authorization by user. A principal bound to a user (an API key with `user_id`, a JWT with the
 * user claim) reads only that user's events and writes events only as that user; another user's
 * event is "not found" to it, never "forbidden", so that its existence is not confirmed. Pure.
 */
import { ForbiddenError } from '../domain/errors.js';
import type { Principal } from './scopes.js';

/** The user a principal is bound to; null when it may see every user's events (or on public routes). */
export function boundUser(principal: Principal | null): string | null {
  return principal?.userId ?? null;
}

/** The 403 of a create request for another user than the one `userId` binds to; null when it may be stored. */
export function foreignWrite(
  userId: string | null,
  input: { user_id?: string | null },
  path: string,
): ForbiddenError | null {
  if (userId === null || input.user_id === undefined || input.user_id === null || input.user_id === userId)
    return null;
  return new ForbiddenError(`${path}.user_id: this credential writes only events of user ${userId}`);
}

/**
 * A create request as a bound principal may send it: without `user_id` it gets the bound user's;
 * another user's is a 403.
 */
export function writeAsUser<T extends { user_id?: string | null }>(
  userId: string | null,
  input: T,
  path: string,
): T {
  if (userId === null) return input;
  const forbidden = foreignWrite(userId, input, path);
  if (forbidden) throw forbidden;
  return { ...input, user_id: userId };
}

/**
 * The `user_id` filter of a read by a bound principal: its own user. Asking for another user's is
 * a 403 (it reveals nothing: the principal may never read other users' events).
 */
export function readFilterUser(
  userId: string | null,
  requested: string | undefined,
  path: string,
): string | undefined {
  if (userId === null) return requested;
  if (requested !== undefined && requested !== userId) {
    throw new ForbiddenError(`${path}: this credential reads only events of user ${userId}`);
  }
  return userId;
}

/** Whether a principal bound to `userId` may see an event of `eventUser`. */
export function canSee(userId: string | null, eventUser: string | null): boolean {
  return userId === null || eventUser === userId;
}
