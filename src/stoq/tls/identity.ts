import { createPrivateKey, KeyObject, X509Certificate } from 'node:crypto';
import { StoqError, StoqErrorCode } from '../errors.js';
import type { ProvenKey } from '../transport.js';

/** The local side's TLS identity: an Ed25519 key and the certificate chain that names it. */
export interface TlsIdentity {
  /** Ed25519 private key: a `KeyObject` or a PKCS#8 PEM string. */
  readonly privateKey: KeyObject | string;
  /**
   * Certificate chain, leaf first: PEM strings (one string may hold several certificates) or
   * DER bytes. The leaf must carry the public half of `privateKey`.
   */
  readonly certificateChain: readonly (string | Uint8Array)[];
}

/** The identity in the form node:tls takes. */
export interface TlsCredentials {
  readonly keyPem: string;
  readonly certificatePems: readonly string[];
  /** Raw 32-byte Ed25519 public key of the leaf. */
  readonly publicKey: Uint8Array;
}

function invalid(message: string, cause?: unknown): StoqError {
  return new StoqError(StoqErrorCode.INVALID_ARGUMENT, message, {}, { cause });
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function parseCertificates(entry: string | Uint8Array, index: number): X509Certificate[] {
  try {
    if (typeof entry !== 'string') return [new X509Certificate(Buffer.from(entry))];
    const blocks = entry.match(PEM_CERTIFICATE);
    if (!blocks) throw new Error('no PEM CERTIFICATE block');
    return blocks.map((block) => new X509Certificate(block));
  } catch (error) {
    throw invalid(`certificate chain entry ${index} is not an X.509 certificate`, error);
  }
}

/** Raw Ed25519 public key of a key object, or null for any other algorithm. */
export function rawEd25519PublicKey(key: KeyObject): Uint8Array | null {
  if (key.asymmetricKeyType !== 'ed25519') return null;
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') return null;
  const raw = Buffer.from(jwk.x, 'base64url');
  return raw.length === 32 ? new Uint8Array(raw) : null;
}

/** Checks the identity once, up front, so a misconfiguration fails at construction. */
export function resolveTlsIdentity(identity: TlsIdentity): TlsCredentials {
  let key: KeyObject;
  try {
    key =
      identity.privateKey instanceof KeyObject
        ? identity.privateKey
        : createPrivateKey(identity.privateKey);
  } catch (error) {
    throw invalid('TLS private key is not a readable private key', error);
  }
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
    throw invalid(`TLS private key must be an Ed25519 private key, got ${key.asymmetricKeyType}`);
  }
  const chain = identity.certificateChain.flatMap(parseCertificates);
  const leaf = chain[0];
  if (!leaf) throw invalid('TLS certificate chain is empty');
  const publicKey = rawEd25519PublicKey(leaf.publicKey);
  if (!publicKey) throw invalid('TLS leaf certificate does not hold an Ed25519 key');
  if (!leaf.checkPrivateKey(key)) {
    throw invalid('TLS leaf certificate does not match the private key');
  }
  return {
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    certificatePems: chain.map((certificate) => certificate.toString()),
    publicKey,
  };
}

/**
 * The key the TLS 1.3 handshake proved: the peer signed the handshake transcript with the key in
 * its certificate (CertificateVerify, RFC 8446 §4.4.3). Null when the peer sent no certificate or
 * a non-Ed25519 one; authentication rejects both.
 */
export function provenPeerKey(certificate: X509Certificate | undefined): ProvenKey | null {
  if (!certificate) return null;
  const publicKey = rawEd25519PublicKey(certificate.publicKey);
  return publicKey ? { algorithm: 'ed25519', publicKey } : null;
}
