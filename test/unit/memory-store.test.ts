import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { testEncryptionKey } from '../helpers/keys';
import { storeContract } from '../helpers/store-contract';

storeContract(
  'memory',
  async (clock) => ({
    store: new KvStore({
      backend: new MemoryBackend(clock),
      cipher: new CredentialCipher([testEncryptionKey()]),
      clock,
      prefix: 'latchkey:',
    }),
    cleanup: async () => {},
  }),
  true,
);
