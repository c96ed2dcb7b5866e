import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { testEncryptionKey } from '../helpers/keys';
import { storeContract } from '../helpers/store-contract';

storeContract(
  'memory',
  async (clock) => {
    const backend = new MemoryBackend(clock);
    const open = () =>
      new KvStore({ backend, cipher: new CredentialCipher([testEncryptionKey()]), clock, prefix: 'latchkey:' });
    return { store: open(), peer: async () => open(), cleanup: async () => {} };
  },
  true,
);
