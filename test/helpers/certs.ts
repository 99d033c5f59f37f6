import {
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';

/**
 * A tiny self-signed Ed25519 X.509 certificate for transport tests. The transports do not check
 * chains (authentication does, with the real CA code in src/crypto/x509.ts); they only need a
 * certificate that carries the key, signed by it, so TLS 1.3 can prove possession of that key.
 *
 * The DER is assembled here (RFC 5280 §4.1) rather than with @peculiar/x509 because that library
 * needs a global Reflect-metadata polyfill that the project does not ship yet.
 */
export interface TestCertificate {
  readonly privateKey: KeyObject;
  readonly privateKeyPem: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  readonly certificatePem: string;
  readonly certificateDer: Uint8Array;
}

const ED25519_OID = Uint8Array.from([0x06, 0x03, 0x2b, 0x65, 0x70]);
const COMMON_NAME_OID = Uint8Array.from([0x06, 0x03, 0x55, 0x04, 0x03]);

function der(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(contents);
  let length: Uint8Array;
  if (body.length < 0x80) length = Uint8Array.of(body.length);
  else if (body.length < 0x100) length = Uint8Array.of(0x81, body.length);
  else length = Uint8Array.of(0x82, body.length >> 8, body.length & 0xff);
  return Buffer.concat([Uint8Array.of(tag), length, body]);
}

const sequence = (...contents: Uint8Array[]): Uint8Array => der(0x30, ...contents);

function utcTime(date: Date): Uint8Array {
  const text = date.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return der(0x17, Buffer.from(text, 'ascii'));
}

function name(commonName: string): Uint8Array {
  return sequence(der(0x31, sequence(COMMON_NAME_OID, der(0x0c, Buffer.from(commonName)))));
}

export function createTestCertificate(commonName = 'stoq-transport-test'): TestCertificate {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40; // positive, minimal DER INTEGER
  const now = Date.now();
  const algorithm = sequence(ED25519_OID);
  const tbs = sequence(
    der(0xa0, der(0x02, Uint8Array.of(2))), // version v3
    der(0x02, serial),
    algorithm,
    name(commonName),
    sequence(utcTime(new Date(now - 60_000)), utcTime(new Date(now + 3_600_000))),
    name(commonName),
    spki,
  );
  const signature = sign(null, tbs, privateKey);
  const certificateDer = sequence(tbs, algorithm, der(0x03, Uint8Array.of(0), signature));
  const base64 = Buffer.from(certificateDer).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  const certificatePem = `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
  const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    privateKey: createPrivateKey(privateKeyPem),
    privateKeyPem,
    publicKey: new Uint8Array(spki.subarray(12)),
    certificatePem,
    certificateDer,
  };
}
