import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { eventLogContract } from '../helpers/event-log-contract';
import { testEncryptionKey } from '../helpers/keys';

eventLogContract('memory', async (clock, limits) => {
  const store = new KvStore({
    backend: new MemoryBackend(clock),
    cipher: new CredentialCipher([testEncryptionKey()]),
    clock,
    prefix: 'latchkey:',
    eventLimits: limits,
  });
  return { store, cleanup: () => store.close() };
});
