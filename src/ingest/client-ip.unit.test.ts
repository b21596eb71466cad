import { describe, expect, it } from 'vitest';
import { clientIp, normalizeIp, trustedProxies } from './client-ip.js';

describe('normalizeIp', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    [' 1.2.3.4 ', '1.2.3.4'],
    ['1.2.3.4:8080', '1.2.3.4'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['unknown', null],
    ['', null],
    ['1.2.3', null],
    ['[::1', null],
  ])('%s → %s', (given, expected) => {
    expect(normalizeIp(given)).toBe(expected);
  });
});

describe('trustedProxies', () => {
  const trusted = trustedProxies(['10.0.0.0/8', '192.168.1.5', '2001:db8::/32', '::1']);

  it('matches addresses and ranges of both families', () => {
    expect(trusted.contains('10.1.2.3')).toBe(true);
    expect(trusted.contains('::ffff:10.1.2.3')).toBe(true);
    expect(trusted.contains('192.168.1.5')).toBe(true);
    expect(trusted.contains('192.168.1.6')).toBe(false);
    expect(trusted.contains('2001:db8:1::7')).toBe(true);
    expect(trusted.contains('2001:db9::7')).toBe(false);
    expect(trusted.contains('::1')).toBe(true);
    expect(trusted.contains('11.0.0.1')).toBe(false);
    expect(trusted.contains('garbage')).toBe(false);
  });

  it('trusts nothing when empty', () => {
    const none = trustedProxies([]);
    expect(none.empty).toBe(true);
    expect(none.contains('127.0.0.1')).toBe(false);
  });

  it.each([['10.0.0.0/33'], ['not-an-ip'], ['10.0.0.0/x'], ['::1/129'], ['1.2.3.4/8/1']])(
    'refuses %s',
    (entry) => {
      expect(() => trustedProxies([entry])).toThrow(/not an IP address or CIDR range/);
    },
  );
});

describe('clientIp', () => {
  const trusted = trustedProxies(['10.0.0.0/8', '127.0.0.1']);

  it('is the peer when the peer is not a trusted proxy, whatever the header says', () => {
    expect(clientIp('203.0.113.9', '1.1.1.1', trusted)).toBe('203.0.113.9');
    expect(clientIp('::ffff:203.0.113.9', undefined, trusted)).toBe('203.0.113.9');
  });

  it('walks X-Forwarded-For from the right, skipping trusted hops', () => {
    expect(clientIp('10.0.0.1', '198.51.100.7', trusted)).toBe('198.51.100.7');
    expect(clientIp('10.0.0.1', '198.51.100.7, 10.0.0.2', trusted)).toBe('198.51.100.7');
    expect(clientIp('10.0.0.1', '198.51.100.7, 10.0.0.3, 10.0.0.2', trusted)).toBe('198.51.100.7');
  });

  it('never believes what the client put on the left of the last untrusted hop', () => {
    // The client sent "X-Forwarded-For: 6.6.6.6"; its proxy appended the real address.
    expect(clientIp('10.0.0.1', '6.6.6.6, 198.51.100.7', trusted)).toBe('198.51.100.7');
    expect(clientIp('10.0.0.1', '10.9.9.9, 198.51.100.7', trusted)).toBe('198.51.100.7');
  });

  it('reads several X-Forwarded-For headers as one list', () => {
    expect(clientIp('10.0.0.1', ['6.6.6.6', '198.51.100.7, 10.0.0.2'], trusted)).toBe('198.51.100.7');
  });

  it('takes the left-most hop when every hop is trusted', () => {
    expect(clientIp('10.0.0.1', '10.0.0.5, 10.0.0.2', trusted)).toBe('10.0.0.5');
  });

  it('stops at a hop that is not an address, keeping the last one checked', () => {
    expect(clientIp('10.0.0.1', '198.51.100.7, garbage', trusted)).toBe('10.0.0.1');
    expect(clientIp('10.0.0.1', 'garbage, 10.0.0.2', trusted)).toBe('10.0.0.2');
  });

  it('is the peer for a trusted peer without the header', () => {
    expect(clientIp('127.0.0.1', undefined, trusted)).toBe('127.0.0.1');
    expect(clientIp('10.0.0.1', '', trusted)).toBe('10.0.0.1');
  });

  it('handles ports and IPv6 hops', () => {
    const v6 = trustedProxies(['2001:db8::/32']);
    expect(clientIp('2001:db8::1', '[2001:db8::2]:443, 203.0.113.5:1234', v6)).toBe('203.0.113.5');
    expect(clientIp('2001:db8::1', '2001:db9::5', v6)).toBe('2001:db9::5');
  });

  it('trusts no header without trusted proxies', () => {
    expect(clientIp('127.0.0.1', '1.2.3.4', trustedProxies([]))).toBe('127.0.0.1');
    expect(clientIp(undefined, '1.2.3.4', trustedProxies([]))).toBe('unknown');
  });
});
