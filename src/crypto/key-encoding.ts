import type { KeyObject } from 'node:crypto';
import { createPrivateKey, createPublicKey } from 'node:crypto';

/**
 * The standard encodings of an asymmetric KeyObject: SubjectPublicKeyInfo (RFC 5280 §4.1.2.7)
 * for public keys and unencrypted PKCS#8 PrivateKeyInfo (RFC 5208 §5) for private keys, as DER
 * or as RFC 7468 PEM. They are the same for every algorithm; what differs is which keys an
 * algorithm module accepts and which typed error it throws, so each module supplies those.
 */
export interface KeyAlgorithm {
  /** Returns `key` if it is this algorithm's key of `type`; throws the module's error otherwise. */
  requireKey(key: KeyObject, type: 'public' | 'private'): KeyObject;
  /** The module's typed error for a public key input that does not decode. */
  invalidPublic(message: string, cause?: unknown): Error;
  /** The module's typed error for a private key input that does not decode. */
  invalidPrivate(message: string, cause?: unknown): Error;
}

export interface KeyEncodings {
  publicKeyToSpkiDer(publicKey: KeyObject): Uint8Array;
  /** Throws the algorithm's `invalidPublic` error for anything but its public key. */
  publicKeyFromSpkiDer(der: Uint8Array): KeyObject;
  publicKeyToSpkiPem(publicKey: KeyObject): string;
  privateKeyToPkcs8Der(privateKey: KeyObject): Uint8Array;
  /** Throws the algorithm's `invalidPrivate` error for anything but its private key. */
  privateKeyFromPkcs8Der(der: Uint8Array): KeyObject;
  privateKeyToPkcs8Pem(privateKey: KeyObject): string;
  /** Throws the algorithm's `invalidPrivate` error for anything but its private key. */
  privateKeyFromPkcs8Pem(pem: string): KeyObject;
}

export function keyEncodings(algorithm: KeyAlgorithm): KeyEncodings {
  const { requireKey } = algorithm;
  /** Runs node:crypto's import, mapping its failure to the algorithm's error for `type`. */
  const decode = (type: 'public' | 'private', what: string, load: () => KeyObject): KeyObject => {
    let key: KeyObject;
    try {
      key = load();
    } catch (error) {
      const invalid = type === 'public' ? algorithm.invalidPublic : algorithm.invalidPrivate;
      throw invalid(what, error);
    }
    return requireKey(key, type);
  };
  return {
    publicKeyToSpkiDer: (publicKey) =>
      new Uint8Array(requireKey(publicKey, 'public').export({ format: 'der', type: 'spki' })),

    publicKeyFromSpkiDer: (der) =>
      decode('public', 'not a SubjectPublicKeyInfo DER', () =>
        createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' }),
      ),

    publicKeyToSpkiPem: (publicKey) =>
      requireKey(publicKey, 'public').export({ format: 'pem', type: 'spki' }).toString(),

    privateKeyToPkcs8Der: (privateKey) =>
      new Uint8Array(requireKey(privateKey, 'private').export({ format: 'der', type: 'pkcs8' })),

    privateKeyFromPkcs8Der: (der) =>
      decode('private', 'not a PKCS#8 DER private key', () =>
        createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }),
      ),

    privateKeyToPkcs8Pem: (privateKey) =>
      requireKey(privateKey, 'private').export({ format: 'pem', type: 'pkcs8' }).toString(),

    privateKeyFromPkcs8Pem: (pem) => {
      // An encrypted key ("ENCRYPTED PRIVATE KEY") or a legacy one ("EC PRIVATE KEY") is refused
      // before OpenSSL sees it: only the unencrypted PKCS#8 form is a supported input.
      if (!pem.includes('-----BEGIN PRIVATE KEY-----'))
        throw algorithm.invalidPrivate('not a PKCS#8 "PRIVATE KEY" PEM');
      return decode('private', 'PKCS#8 PEM does not decode', () =>
        createPrivateKey({ key: pem, format: 'pem' }),
      );
    },
  };
}
