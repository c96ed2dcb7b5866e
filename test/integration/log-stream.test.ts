import { randomBytes } from 'node:crypto';
import { createSandbox } from '../../src/sandbox/sandbox';
import { testEncryptionKey } from '../helpers/keys';
import { startLatchkeyProcess, waitUntil } from '../helpers/latchkey-process';
import { deleteUnder, rawRedis, uniquePrefix } from '../helpers/redis';

/**
 * A Latchkey process writes JSON lines only, on stdout and stderr alike: ioredis's own console
 * warnings go through pino (SECURITY.md 22), and nothing of a Redis command or password with them.
 */
describe("the process's log stream", () => {
  it("carries ioredis's own warnings as JSON lines at warn, without the password", async () => {
    const sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: 'sandbox-secret' });
    const sandboxServer = await sandbox.listen();
    const prefix = uniquePrefix('log-stream');
    const password = `canary-redis-password-${randomBytes(6).toString('hex')}`;
    // The test Redis has no password: ioredis warns "does not require a password" on connect.
    const latchkey = await startLatchkeyProcess({
      sandboxUrl: sandboxServer.url,
      prefix,
      encryptionKeys: [testEncryptionKey()],
      env: { REDIS_URL: `redis://:${password}@127.0.0.1:6379` },
    });
    try {
      await waitUntil(() => latchkey.output().includes('does not require a password'));
      const ready = await latchkey.call('GET', '/readyz');
      expect(ready.status).toBe(200);
    } finally {
      await latchkey.kill('SIGTERM');
      await sandboxServer.close();
      const raw = rawRedis();
      await deleteUnder(raw, prefix);
      raw.disconnect();
    }
    const lines = latchkey.output().split('\n').filter(Boolean);
    const notJson = lines.filter((line) => {
      try {
        return typeof JSON.parse(line) !== 'object';
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
    const warning = lines
      .map((l) => JSON.parse(l) as { level: number; source?: string; msg: string })
      .find((l) => l.msg.includes('does not require a password'));
    expect(warning).toMatchObject({ level: 40, source: 'ioredis' });
    expect(warning!.msg).not.toMatch(/^\[WARN\]/);
    expect(latchkey.output()).not.toContain(password);
  });
});
