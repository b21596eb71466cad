/**
 * Fixed one-minute windows of requests per key (a credential or a client IP), in this instance's
 * memory: with N instances behind a load balancer a client may make up to N times the limit.
 * Bounded: past `maxKeys` tracked keys the oldest windows are dropped. Pure apart from the clock.
 */
const WINDOW_MS = 60_000;

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    readonly perMinute: number,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one request of `key`; 0 per minute allows everything. */
  hit(key: string): RateDecision {
    if (this.perMinute <= 0) return { allowed: true };
    const at = this.now();
    let window = this.windows.get(key);
    if (!window || at - window.start >= WINDOW_MS) {
      this.windows.delete(key);
      window = { start: at, count: 0 };
      this.windows.set(key, window);
      this.evict(at);
    }
    window.count++;
    if (window.count <= this.perMinute) return { allowed: true };
    return {
      allowed: false,
      retryAfterSeconds: Math.max(1, Math.ceil((window.start + WINDOW_MS - at) / 1000)),
    };
  }

  private evict(at: number): void {
    if (this.windows.size <= this.maxKeys) return;
    // Insertion order is start order: the first windows are the oldest.
    for (const [key, window] of this.windows) {
      if (this.windows.size <= this.maxKeys && at - window.start < WINDOW_MS) break;
      this.windows.delete(key);
    }
  }
}
