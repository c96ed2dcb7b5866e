import { looksLikePlaceholder } from '../../src/config-checks';
import { newApiKey, newEncryptionKey, newSessionSecret } from '../../src/tools/env-secrets';

/** Random bytes that come out of `random` in the order given, as base64url strings of them. */
function draws(...base64url: string[]): (size: number) => Buffer {
  const queue = base64url.map((s) => Buffer.from(s, 'base64url'));
  return (size) => {
    const next = queue.shift();
    if (!next || next.length !== size) throw new Error(`unexpected draw of ${size} bytes`);
    return next;
  };
}

describe('the secrets latchkey init writes', () => {
  it('draws again when a random value reads like a placeholder, which production refuses', () => {
    const unlucky = `xxx_${'A'.repeat(28)}`; // lk_xxx_… : "xxx" between separators
    const fine = 'B'.repeat(32);
    expect(looksLikePlaceholder(`lk_${unlucky}`)).toBe(true);
    expect(newApiKey(draws(unlucky, fine))).toBe(`lk_${fine}`);

    const tbd = `tbd-${'C'.repeat(39)}`;
    expect(looksLikePlaceholder(tbd)).toBe(true);
    const second = Buffer.from('D'.repeat(43), 'base64url').toString('base64url');
    expect(newSessionSecret(draws(tbd, second))).toBe(second);
  });

  it('gives an encryption key a dated id with random bits, never one already taken', () => {
    const key32 = 'E'.repeat(43);
    const key = newEncryptionKey(
      new Date('2026-12-01T10:00:00Z'),
      ['k20261201-000000'],
      draws('AAAA', key32, 'AAAB', key32),
    );
    expect(key.id).toBe('k20261201-000001');
    expect(key.entry).toBe(`k20261201-000001:${Buffer.from(key32, 'base64url').toString('base64')}`);
  });
});
