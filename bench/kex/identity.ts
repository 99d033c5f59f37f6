import type { KeyObject } from 'node:crypto';
import { createRootCa, issueNodeCertificate, derToPem } from '../../src/crypto/x509.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { defaultFalcon } from '../../src/crypto/falcon.js';

/** A throwaway CA-issued Ed25519 identity, enough for a transport handshake. */
export async function generateTestIdentity(name: string): Promise<{
  privateKey: KeyObject;
  tls: { privateKey: KeyObject; certificateChain: string[] };
}> {
  const ca = await createRootCa({ cluster: 'kex' });
  const keys = generateEd25519KeyPair();
  const falcon = await defaultFalcon().generateKeyPair();
  const now = Date.now();
  const issued = await issueNodeCertificate({
    issuer: ca,
    subjectEd25519PublicKey: ed25519RawPublicKey(keys.publicKey),
    falconPublicKey: falcon.publicKey,
    cluster: 'kex',
    role: 'node',
    name,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
  });
  return {
    privateKey: keys.privateKey,
    tls: {
      privateKey: keys.privateKey,
      certificateChain: issued.chain.map((der) => derToPem(der)),
    },
  };
}
