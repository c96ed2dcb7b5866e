import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdminKeyHolder, readVariableAgain, splitKeyList } from '../../src/admin/admin-keys';
import { parseConfig } from '../../src/config';

const KEY = 'console-key-one-0123456789';
const OTHER = 'console-key-two-0123456789';
const nameOf = (key: string) => `key-${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;

describe('ADMIN_API_KEYS', () => {
  it('is parsed as a comma list; an empty value leaves the console off; a short key is a start-up error', () => {
    expect(parseConfig({ NODE_ENV: 'test', ADMIN_API_KEYS: ` ${KEY} ,, ${OTHER}` }).config.adminApiKeys).toEqual([
      KEY,
      OTHER,
    ]);
    expect(parseConfig({ NODE_ENV: 'test', ADMIN_API_KEYS: '  ' }).config.adminApiKeys).toEqual([]);
    expect(() => parseConfig({ NODE_ENV: 'test', ADMIN_API_KEYS: 'short' })).toThrow(
      /ADMIN_API_KEYS.*at least 16 characters/,
    );
    expect(splitKeyList(undefined)).toEqual([]);
  });

  it('names a key by its hash and recognises only whole keys', () => {
    const keys = createAdminKeyHolder([KEY, OTHER]);
    expect(keys.enabled()).toBe(true);
    expect(keys.nameOf(KEY)).toBe(nameOf(KEY));
    expect(keys.nameOf(OTHER)).toBe(nameOf(OTHER));
    for (const wrong of ['', KEY.slice(0, -1), `${KEY}x`, KEY.toUpperCase()])
      expect(keys.nameOf(wrong)).toBeUndefined();
    expect(createAdminKeyHolder([]).enabled()).toBe(false);
  });

  it('swaps the keys whole on reload, and keeps them when the new value does not validate', () => {
    const keys = createAdminKeyHolder([KEY]);
    expect(keys.reload(OTHER)).toEqual({ ok: true, names: [nameOf(OTHER)] });
    expect(keys.has(nameOf(KEY))).toBe(false);
    expect(keys.nameOf(OTHER)).toBe(nameOf(OTHER));
    expect(keys.reload(`${KEY},tiny`)).toEqual({
      ok: false,
      problems: ['ADMIN_API_KEYS (item 2): must have at least 16 characters'],
    });
    expect(keys.nameOf(OTHER)).toBe(nameOf(OTHER));
    expect(keys.reload('')).toEqual({ ok: true, names: [] });
    expect(keys.enabled()).toBe(false);
  });

  it('is read again from .env when it sets it, else from the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'admin-keys-'));
    try {
      const file = join(dir, '.env');
      const env = { ADMIN_API_KEYS: KEY };
      expect(readVariableAgain('ADMIN_API_KEYS', env, file)).toBe(KEY); // no file
      writeFileSync(file, 'OTHER_VARIABLE=1\n');
      expect(readVariableAgain('ADMIN_API_KEYS', env, file)).toBe(KEY);
      writeFileSync(file, `# rotated\nADMIN_API_KEYS=${OTHER}\n`);
      expect(readVariableAgain('ADMIN_API_KEYS', env, file)).toBe(OTHER);
      expect(readVariableAgain('ADMIN_API_KEYS', env)).toBe(KEY);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
