import type { EncryptionKey } from '../../src/config';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { testEncryptionKey } from '../helpers/keys';
import { dumpMemory } from '../helpers/redis-dump';
import { storeContract } from '../helpers/store-contract';

storeContract(
  'memory',
  async (clock) => {
    const backend = new MemoryBackend(clock);
    const key = testEncryptionKey();
    const prefix = 'latchkey:';
    const open = (keys: EncryptionKey[] = [key]) =>
      new KvStore({ backend, cipher: new CredentialCipher(keys), clock, prefix });
    return {
      store: open(),
      peer: async (keys) => open(keys),
      backend,
      prefix,
      // Live entries only: an expired one is still in the Map until it is next touched.
      dump: async () => {
        for (const [k] of dumpMemory(backend)) await backend.exists(k);
        return dumpMemory(backend);
      },
      cleanup: async () => {},
    };
  },
  true,
);
