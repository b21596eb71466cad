/**
 * Scopes and principals. A principal is who a request speaks for: an API key or the subject of a
 * JWT, with its scopes and, when bound to a user, that user's id. Pure.
 */

export const Scope = {
  EventsRead: 'events:read',
  EventsWrite: 'events:write',
  Admin: 'admin',
} as const;
export type Scope = (typeof Scope)[keyof typeof Scope];

export const SCOPES: readonly Scope[] = Object.values(Scope);

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (SCOPES as readonly string[]).includes(value);
}

export interface Principal {
  /** `key:<key_id>`, `env:ADMIN_API_KEY` or `jwt:<sub>`: stable, used in logs and rate limits. */
  readonly id: string;
  readonly kind: 'api_key' | 'jwt';
  readonly scopes: ReadonlySet<Scope>;
  /** The user whose events alone this principal reads and writes; null = every user's. */
  readonly userId: string | null;
}

/** `admin` implies every other scope. */
export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has(Scope.Admin) || principal.scopes.has(scope);
}

export function isAdmin(principal: Principal): boolean {
  return principal.scopes.has(Scope.Admin);
}
