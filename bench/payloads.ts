/** Request bodies for the load: realistic events, and pools of distinct bodies to cycle through. */
import { EVENT_TYPES } from './seed.js';

/** Deterministic xorshift, so that runs send the same mix. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/** Users as the seed makes them: user-0 most active, user-99999 least (share ~ 1/sqrt(rank)). */
export function skewedUser(random: () => number, users = 100_000): string {
  return `user-${Math.floor(random() ** 2 * users)}`;
}

/** Any of the users, uniformly: "one user's events" for an arbitrary user. */
export function anyUser(random: () => number, users = 100_000): string {
  return `user-${Math.floor(random() * users)}`;
}

export function makeEvent(random: () => number): Record<string, unknown> {
  const [type, category, source] = EVENT_TYPES[Math.floor(random() ** 2 * EVENT_TYPES.length)]!;
  const user = skewedUser(random);
  const event: Record<string, unknown> = {
    event_type: type,
    event_source: source,
    event_category: category,
    user_id: user,
    session_id: `sess-${user}-${Math.floor(random() * 1000)}`,
    organization_id: `org-${Math.floor(random() * 2000)}`,
    data: {
      amount: Math.floor(random() * 500),
      page: `/p/${Math.floor(random() * 997)}`,
      ref: Math.floor(random() * 2 ** 48).toString(16),
      items: Math.floor(random() * 10),
    },
    metadata: { schema: 'v1', origin: 'bench' },
  };
  if (source === 'frontend') {
    event.context = {
      ip: `10.${Math.floor(random() * 250)}.${Math.floor(random() * 250)}.7`,
      locale: 'en-US',
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128',
    };
  }
  if (random() < 0.3) event.correlation_id = `corr-${Math.floor(random() * 2 ** 48).toString(16)}`;
  return event;
}

/** The seed's event types that browsers send: [type, category]. */
const FRONTEND_TYPES = EVENT_TYPES.filter(([, , source]) => source === 'frontend');

/** One event as a browser sends it to the frontend collector (src/ingest/frontend-schemas.ts). */
export function makeFrontendEvent(random: () => number): Record<string, unknown> {
  const [type, category] = FRONTEND_TYPES[Math.floor(random() ** 2 * FRONTEND_TYPES.length)]!;
  const user = skewedUser(random);
  return {
    event_type: type,
    category,
    page_url: `https://shop.example.com/p/${Math.floor(random() * 997)}`,
    user_id: user,
    session_id: `sess-${user}-${Math.floor(random() * 1000)}`,
    data: { element: `el-${Math.floor(random() * 50)}`, items: Math.floor(random() * 10) },
  };
}

/** `count` distinct JSON bodies; each is what `make` returns. */
export function bodyPool(count: number, make: (random: () => number) => unknown, seed = 42): string[] {
  const random = rng(seed);
  return Array.from({ length: count }, () => JSON.stringify(make(random)));
}

/** Cycles through a pool. */
export function cycle<T>(items: readonly T[]): () => T {
  let i = 0;
  return () => items[i++ % items.length]!;
}
