import { describe, expect, it } from 'vitest';
import { assertClaimUsable } from '../../shared/claims/claim-rules.js';
import { generateClaimToken, hashClaimToken, isClaimTokenFormat } from '../../shared/claims/token.js';
import { NOW, newClaim } from '../support/claims.js';
import { codeThrownBy } from '../support/error-code.js';

const use = { serialNumber: 'SN-1', serverKeygen: false, now: NOW };

describe('claim tokens', () => {
  it('carry the fpc_ prefix and 256 random bits, in the format the API accepts', () => {
    const token = generateClaimToken();

    expect(token).toMatch(/^fpc_[A-Za-z0-9_-]{43}$/);
    expect(isClaimTokenFormat(token)).toBe(true);
  });

  it('are different every time', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => generateClaimToken()));

    expect(tokens.size).toBe(1000);
  });

  it('are stored as a SHA-256 hex digest that does not contain the token', () => {
    const token = generateClaimToken();
    const hash = hashClaimToken(token);

    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(token.slice(4));
    expect(hashClaimToken(token)).toBe(hash);
  });
});

describe('assertClaimUsable', () => {
  it('accepts an active, unexpired claim with a use left', () => {
    expect(
      codeThrownBy(() => assertClaimUsable(newClaim().claim, use, { spendsAUse: true })),
    ).toBeUndefined();
  });

  it('refuses a revoked claim', () => {
    const { claim } = newClaim({ status: 'REVOKED' });

    expect(codeThrownBy(() => assertClaimUsable(claim, use, { spendsAUse: true }))).toBe(
      'CLAIM_TOKEN_REVOKED',
    );
  });

  it('refuses a claim at its expiry second', () => {
    const { claim } = newClaim({ expiresAt: Math.floor(NOW.getTime() / 1000) });

    expect(codeThrownBy(() => assertClaimUsable(claim, use, { spendsAUse: true }))).toBe(
      'CLAIM_TOKEN_EXPIRED',
    );
  });

  it('refuses a claim with no uses left when the registration spends one', () => {
    const { claim } = newClaim({ usesLeft: 0 });

    expect(codeThrownBy(() => assertClaimUsable(claim, use, { spendsAUse: true }))).toBe(
      'CLAIM_TOKEN_USED_UP',
    );
  });

  it('lets a retry of the same device through a used-up claim, since it spends no use', () => {
    const { claim } = newClaim({ usesLeft: 0 });

    expect(codeThrownBy(() => assertClaimUsable(claim, use, { spendsAUse: false }))).toBeUndefined();
  });

  it('refuses a claim bound to another serial number', () => {
    const { claim } = newClaim({ serialNumber: 'SN-2' });

    expect(codeThrownBy(() => assertClaimUsable(claim, use, { spendsAUse: true }))).toBe(
      'SERIAL_NOT_ALLOWED',
    );
  });

  it('refuses server-side key generation unless the batch allows it', () => {
    const keygen = { ...use, serverKeygen: true };

    expect(codeThrownBy(() => assertClaimUsable(newClaim().claim, keygen, { spendsAUse: true }))).toBe(
      'SERVER_KEYGEN_NOT_ALLOWED',
    );
    expect(
      codeThrownBy(() =>
        assertClaimUsable(newClaim({ allowServerKeygen: true }).claim, keygen, { spendsAUse: true }),
      ),
    ).toBeUndefined();
  });
});
