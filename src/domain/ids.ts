/**
 * Time-ordered ids (UUIDv7, RFC 9562), from the `uuid` package with random bytes drawn from a
 * pool: its default draws 16 bytes per id through WebCrypto's getRandomValues, which was 3-4 % of
 * the service's CPU under single-create load. Same monotonic rule as the package's default (a
 * random 31-bit sequence per millisecond, incremented within it), so ids keep sorting in the order
 * they were made in this process.
 */
import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';

const POOL_BYTES = 16 * 256;
const pool = new Uint8Array(POOL_BYTES);
let offset = POOL_BYTES;
const state = { msecs: -Infinity, seq: 0 };

function randomBytes16(): Uint8Array {
  if (offset + 16 > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const bytes = pool.subarray(offset, offset + 16);
  offset += 16;
  return bytes;
}

export function uuidv7(): string {
  const random = randomBytes16();
  const now = Date.now();
  if (now > state.msecs) {
    state.msecs = now;
    state.seq = ((random[6]! & 0x7f) << 24) | (random[7]! << 16) | (random[8]! << 8) | random[9]!;
  } else {
    state.seq = (state.seq + 1) | 0;
    if (state.seq === 0) state.msecs++;
  }
  return v7({ msecs: state.msecs, seq: state.seq, random });
}
