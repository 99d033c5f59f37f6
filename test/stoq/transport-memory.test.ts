import { generateKeyPairSync } from 'node:crypto';
import { createMemoryNetwork, MEMORY_STREAM_WINDOW } from '../../src/stoq/memory.js';
import { transportContract } from './transport-contract.js';

function rawEd25519PublicKey(): Uint8Array {
  const { publicKey } = generateKeyPairSync('ed25519');
  // SPKI DER of an Ed25519 key is a fixed 12-byte prefix followed by the raw 32-byte key.
  return new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(12));
}

const network = createMemoryNetwork();

transportContract('memory', {
  hosts: ['127.0.0.1', '::1'],
  create: () => {
    const publicKey = rawEd25519PublicKey();
    return Promise.resolve({ transport: network.transport({ publicKey }), publicKey });
  },
  createAnonymous: () => Promise.resolve({ transport: network.transport(), publicKey: null }),
  closedAddress: async (host) => {
    const transport = network.transport({ publicKey: rawEd25519PublicKey() });
    const listener = await transport.listen({ host, port: 0 });
    await transport.close();
    return listener.address;
  },
  maxUnreadBytes: MEMORY_STREAM_WINDOW,
});
