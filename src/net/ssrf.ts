/**
 * SSRF guard for outbound HTTP to user-given URLs (webhook processors, subscription callbacks):
 * only http(s), and never to loopback, private, link-local, metadata or otherwise special
 * addresses unless explicitly allowed. Checked at registration (the URL and what its host resolves
 * to now) and again at every connection, against the address actually connected to (DNS answers
 * can change between the two: the dispatcher resolves, checks and connects to the checked address).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { promises as dns } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, type Dispatcher } from 'undici';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network, unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64 (embeds IPv4)
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (incl. fd00:ec2::254, AWS metadata)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** True for an address outbound calls must not reach (IPv4-mapped IPv6 checked as IPv4). */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return blocked.check(mapped[1]!, 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return true;
}

export class ForbiddenTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForbiddenTargetError';
  }
}

/** Syntax: an absolute http(s) URL. Returns the reason it is refused, or null. */
export function urlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must use http or https';
  if (url.hostname === '') return 'must name a host';
  return null;
}

/**
 * Full check at registration: syntax, then every address the host resolves to now. Returns the
 * reason it is refused, or null. `allowPrivate` lifts the address rule (not the syntax rule).
 */
export async function checkTargetUrl(value: string, allowPrivate: boolean): Promise<string | null> {
  const syntax = urlProblem(value);
  if (syntax || allowPrivate) return syntax;
  const host = new URL(value).hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(host)) {
    addresses = [host];
  } else {
    try {
      addresses = (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch {
      return `host ${host} does not resolve`;
    }
  }
  const forbidden = addresses.find(isForbiddenAddress);
  return forbidden
    ? `resolves to ${forbidden}, a loopback, private, link-local or otherwise internal address (set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow)`
    : null;
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A DNS lookup that fails for forbidden addresses: the connection goes to what was checked. */
export function guardedLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const list = addresses;
    const bad = list.find((a) => isForbiddenAddress(a.address));
    if (bad) {
      return callback(
        Object.assign(new ForbiddenTargetError(`${hostname} resolves to forbidden address ${bad.address}`), {
          code: 'EFORBIDDEN',
        }),
        [],
      );
    }
    const wantsAll = (options as { all?: boolean }).all === true;
    if (wantsAll) return callback(null, list);
    const first = list[0]!;
    callback(null, first.address, first.family);
  });
}

/**
 * The dispatcher every outbound call to a user-given URL goes through. With `allowPrivate` false,
 * connections to forbidden addresses fail (also for literal IPs, which skip DNS).
 */
export function createOutboundDispatcher(options: {
  allowPrivate: boolean;
  connections?: number;
}): Dispatcher {
  return new Agent({
    connections: options.connections ?? 64,
    keepAliveTimeout: 10_000,
    connect: options.allowPrivate
      ? {}
      : {
          lookup: guardedLookup,
        },
  }).compose((dispatch) => (opts, handler) => {
    if (!options.allowPrivate && opts.origin) {
      const host = new URL(String(opts.origin)).hostname.replace(/^\[|\]$/g, '');
      if (isIP(host) && isForbiddenAddress(host)) {
        handler.onError?.(new ForbiddenTargetError(`${host} is a forbidden address`));
        return true;
      }
    }
    return dispatch(opts, handler);
  });
}
