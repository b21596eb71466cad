import { describe, expect, it } from 'vitest';
import { checkTargetUrl, isForbiddenAddress, urlProblem } from './ssrf.js';

describe('SSRF guard', () => {
  it.each([
    ['127.0.0.1', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['172.32.0.1', false],
    ['192.168.1.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['0.0.0.0', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:8.8.8.8', false],
    ['fd00:ec2::254', true],
    ['fe80::1', true],
    ['8.8.8.8', false],
    ['2606:4700:4700::1111', false],
    ['not-an-ip', true],
  ])('%s forbidden: %s', (address, forbidden) => {
    expect(isForbiddenAddress(address)).toBe(forbidden);
  });

  it('accepts only absolute http(s) URLs', () => {
    expect(urlProblem('https://example.com/hook')).toBeNull();
    expect(urlProblem('ftp://example.com')).toMatch(/http/);
    expect(urlProblem('/relative')).toMatch(/absolute/);
    expect(urlProblem('file:///etc/passwd')).toMatch(/http/);
  });

  it('refuses hosts that resolve to internal addresses unless allowed', async () => {
    expect(await checkTargetUrl('http://127.0.0.1:8080/x', false)).toMatch(/127\.0\.0\.1/);
    expect(await checkTargetUrl('http://localhost:8080/x', false)).toMatch(/internal/);
    expect(await checkTargetUrl('http://[::1]/x', false)).toMatch(/::1/);
    expect(await checkTargetUrl('http://169.254.169.254/latest/meta-data', false)).toMatch(/169\.254/);
    expect(await checkTargetUrl('http://localhost:8080/x', true)).toBeNull();
    expect(await checkTargetUrl('gopher://localhost', true)).toMatch(/http/);
  });
});
