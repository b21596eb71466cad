/**
 * The client's IP address behind reverse proxies. `X-Forwarded-For` is believed only as far as it
 * was written by proxies we trust (`TRUSTED_PROXIES`): starting from the peer that connected to
 * us, each hop is trusted only if the previous one was a trusted proxy, walking the header from
 * the right (the most recent hop) to the left. The first address not in the trusted set is the
 * client. Anything a client writes itself (the left part of the header, an IP in the body) never
 * counts. Pure.
 */
import { BlockList, isIP } from 'node:net';

export interface TrustedProxies {
  contains(ip: string): boolean;
  readonly empty: boolean;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; `[::1]:80` → `::1`; `1.2.3.4:80` → `1.2.3.4`; null when not an IP. */
export function normalizeIp(value: string): string | null {
  let text = value.trim();
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) return null;
    text = text.slice(1, end);
  } else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(text)) {
    text = text.slice(0, text.lastIndexOf(':'));
  }
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/i.exec(text);
  if (mapped) text = mapped[1]!;
  const family = isIP(text);
  if (family === 0) return null;
  return family === 6 ? text.toLowerCase() : text;
}

/** Parses `TRUSTED_PROXIES` entries (IPs and CIDR ranges, IPv4 or IPv6); throws on a bad entry. */
export function trustedProxies(entries: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const raw of entries) {
    const entry = raw.trim();
    if (entry === '') continue;
    const slash = entry.indexOf('/');
    const address = normalizeIp(slash < 0 ? entry : entry.slice(0, slash));
    if (address === null) throw new Error(`not an IP address or CIDR range: ${entry}`);
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (slash < 0) {
      list.addAddress(address, family);
      continue;
    }
    const prefix = entry.slice(slash + 1);
    const max = family === 'ipv6' ? 128 : 32;
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max)
      throw new Error(`not an IP address or CIDR range: ${entry}`);
    list.addSubnet(address, Number(prefix), family);
  }
  const empty = entries.every((entry) => entry.trim() === '');
  return {
    empty,
    contains(ip) {
      if (empty) return false;
      const address = normalizeIp(ip);
      if (address === null) return false;
      return list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
    },
  };
}

/** Hops of `X-Forwarded-For` (several headers are one list, in order), left to right. */
function hops(forwardedFor: string | string[] | undefined): string[] {
  if (forwardedFor === undefined) return [];
  const values = Array.isArray(forwardedFor) ? forwardedFor : [forwardedFor];
  return values.flatMap((value) => value.split(',')).map((hop) => hop.trim());
}

/**
 * The client address: the connecting peer, unless it is a trusted proxy; then the right-most
 * address of `X-Forwarded-For` that is not a trusted proxy. When every hop is trusted, the
 * left-most; a hop that is not an IP address stops the walk at the last address we could check.
 */
export function clientIp(
  remoteAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trusted: TrustedProxies,
): string {
  const peer = normalizeIp(remoteAddress ?? '') ?? (remoteAddress || 'unknown');
  if (!trusted.contains(peer)) return peer;
  let client = peer;
  const list = hops(forwardedFor);
  for (let i = list.length - 1; i >= 0; i--) {
    const hop = normalizeIp(list[i]!);
    if (hop === null) return client;
    client = hop;
    if (!trusted.contains(hop)) return hop;
  }
  return client;
}
