import { describeSealingAudit } from '../../src/store/sealing-report';

describe('the start-up warning about connections no configured key opens', () => {
  it('says nothing when every connection it looked at opens', () => {
    expect(describeSealingAudit({ checked: 12, complete: true, unreadable: [] })).toBeNull();
    expect(describeSealingAudit({ checked: 10_000, complete: false, unreadable: [] })).toBeNull();
  });

  it('names each key id with its count and why, and that it checked every connection', () => {
    const message = describeSealingAudit({
      checked: 40,
      complete: true,
      unreadable: [
        { keyId: 'k1', reason: 'unknown_key', connections: 3 },
        { keyId: 'dev-0a1b2c3d', reason: 'wrong_key', connections: 1 },
      ],
    });
    expect(message).toContain('4 stored connections cannot be decrypted');
    expect(message).toContain('3 sealed with key "k1", which is not in TOKEN_ENCRYPTION_KEYS');
    expect(message).toContain('1 sealed with key "dev-0a1b2c3d", which the configured key of that id does not open');
    expect(message).toContain('all 40 stored connections checked');
    expect(message).toContain('409 credential_unreadable');
  });

  it('says when the bound stopped it, and which bound', () => {
    const message = describeSealingAudit(
      { checked: 500, complete: false, unreadable: [{ keyId: 'k1', reason: 'unknown_key', connections: 1 }] },
      { maxConnections: 500, maxMs: 2000 },
    );
    expect(message).toContain('1 stored connection cannot be decrypted');
    expect(message).toContain('only the first 500 stored connections checked');
    expect(message).toContain('stops after 500 connections or 2000 ms, so there may be more');
  });
});
