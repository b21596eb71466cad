import { describe, expect, it } from 'vitest';
import { principalFromClaims } from './jwt.js';

const settings = { scopesClaim: 'scope' };

describe('principalFromClaims', () => {
  it('takes sub as the principal and the scope claim (space-separated) as its scopes', () => {
    const principal = principalFromClaims(
      { sub: 'svc-1', scope: 'events:read openid events:write' },
      settings,
    );
    expect(principal).toEqual({
      id: 'jwt:svc-1',
      kind: 'jwt',
      scopes: new Set(['events:read', 'events:write']),
      userId: null,
    });
  });
  it('reads an array claim at a dot path, and roles', () => {
    const principal = principalFromClaims(
      { sub: 'a', realm_access: { roles: ['events:read', 'offline'] }, roles: ['admin'] },
      { scopesClaim: 'realm_access.roles' },
    );
    expect([...principal!.scopes].sort()).toEqual(['admin', 'events:read']);
  });
  it('binds to the user claim, except admins', () => {
    const user = { scopesClaim: 'scope', userClaim: 'uid' };
    expect(principalFromClaims({ sub: 'a', scope: 'events:read', uid: 'u-1' }, user)?.userId).toBe('u-1');
    expect(principalFromClaims({ sub: 'a', scope: 'events:read' }, user)?.userId).toBeNull();
    expect(principalFromClaims({ sub: 'a', scope: 'admin', uid: 'u-1' }, user)?.userId).toBeNull();
    expect(principalFromClaims({ sub: 'a', scope: 'events:read', uid: 42 }, user)?.userId).toBeNull();
  });
  it('has no principal without sub, and no scopes from unknown names', () => {
    expect(principalFromClaims({ scope: 'admin' }, settings)).toBeNull();
    expect(principalFromClaims({ sub: '', scope: 'admin' }, settings)).toBeNull();
    expect(principalFromClaims({ sub: 'a', scope: 'superuser root' }, settings)?.scopes.size).toBe(0);
    expect(principalFromClaims({ sub: 'a', scope: 7 }, settings)?.scopes.size).toBe(0);
  });
});
