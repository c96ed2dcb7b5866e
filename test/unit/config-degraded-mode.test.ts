import { parseConfig } from '../../src/config';

describe('DEGRADED_MODE', () => {
  it('is on when unset or empty', () => {
    expect(parseConfig({}).config.degradedMode).toBe(true);
    expect(parseConfig({ DEGRADED_MODE: '' }).config.degradedMode).toBe(true);
  });

  it('reads true, false, 1 and 0', () => {
    expect(parseConfig({ DEGRADED_MODE: 'false' }).config.degradedMode).toBe(false);
    expect(parseConfig({ DEGRADED_MODE: '0' }).config.degradedMode).toBe(false);
    expect(parseConfig({ DEGRADED_MODE: 'true' }).config.degradedMode).toBe(true);
    expect(parseConfig({ DEGRADED_MODE: '1' }).config.degradedMode).toBe(true);
  });

  it('refuses any other value, naming the variable', () => {
    expect(() => parseConfig({ DEGRADED_MODE: 'yes' })).toThrow(/DEGRADED_MODE/);
  });
});
