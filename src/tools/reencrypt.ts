import 'dotenv/config';
import { systemClock } from '../clock';
import { ConfigError, parseConfig } from '../config';
import { openStore } from '../store';
import { hasRedis, waitForReady } from '../store/redis-client';
import { reencryptConnections } from './reencrypt-connections';

/**
 * `npm run reencrypt` (in the image: `node dist/tools/reencrypt.js`): re-encrypts every stored
 * connection with the first key of TOKEN_ENCRYPTION_KEYS, reading the same environment as the
 * server. Prints counts and key ids only; exits 1 when a connection could not be re-encrypted
 * (busy the whole time, or sealed with a key that is not configured).
 */
export async function main(
  env: Record<string, string | undefined> = process.env,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  let config;
  try {
    ({ config } = parseConfig(env));
  } catch (err) {
    if (err instanceof ConfigError) {
      out.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  if (!hasRedis(config)) {
    out.write(
      'REDIS_URL (or REDIS_CLUSTER_NODES / REDIS_SENTINELS) is not set: there is no stored connection to re-encrypt.\n',
    );
    return 1;
  }
  const keyId = config.tokenEncryptionKeys[0]!.id;
  const { store, redis } = openStore(config, systemClock);
  try {
    if (redis && !(await waitForReady(redis, 10_000))) {
      out.write('Redis did not answer within 10 s.\n');
      return 1;
    }
    out.write(`Re-encrypting every connection with key "${keyId}" (the first of TOKEN_ENCRYPTION_KEYS)\n`);
    const report = await reencryptConnections(store, {
      onProgress: (done, total) => {
        if (done % 100 === 0 && done < total) out.write(`  ${done}/${total}\n`);
      },
    });
    out.write(
      `connections: ${report.total}, re-encrypted: ${report.reencrypted}, gone meanwhile: ${report.gone}, failed: ${report.failed}, unreadable: ${report.unreadable}\n`,
    );
    if (report.failed) out.write('Some connections were busy the whole time: run the command again.\n');
    if (report.unreadable) {
      const keys = report.unreadableKeys.map((k) =>
        k.reason === 'unknown_key'
          ? `unknown key "${k.keyId}"`
          : k.reason === 'wrong_key'
            ? `key "${k.keyId}", which the configured key of that id does not open`
            : 'a malformed value',
      );
      out.write(
        `${report.unreadable} connection(s) were left as they are: sealed with ${keys.join(', ')}. ` +
          'Add the key that sealed them to TOKEN_ENCRYPTION_KEYS (after the first) and run again, or delete those connections.\n',
      );
    }
    return report.failed || report.unreadable ? 1 : 0;
  } catch (err) {
    // The message names a key id or the store, never a value.
    out.write(`Re-encryption stopped: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`reencrypt failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
