import type { KeyObject } from 'node:crypto';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { HyperMeshError } from '../codec/error.js';
import { concatBytes } from './bytes.js';
import { keyEncodings } from './key-encoding.js';

/**
 * ECDSA over NIST P-256 with SHA-256 (FIPS 186-5, RFC 5480 key encodings) on node:crypto.
 *
 * Signatures are IEEE P1363 form: the 64-byte fixed-width `r || s` (as in JWS ES256, RFC 7518
 * §3.4), chosen over ASN.1 DER so that a signature has one length and one encoding — nothing to
 * re-encode and no malleable DER lengths. X.509 code that needs DER converts at its edge.
 * ECDSA itself stays malleable — (r, n-s) verifies whenever (r, s) does — so signature bytes
 * must never serve as identifiers (hash the signed message instead).
 * Raw public keys are the 65-byte uncompressed SEC1 point `04 || x || y`; raw private keys the
 * 32-byte scalar d.
 */
export const P256_PUBLIC_KEY_BYTES = 65;
export const P256_PRIVATE_KEY_BYTES = 32;
export const P256_SIGNATURE_BYTES = 64;

export enum P256ErrorCode {
  INVALID_PUBLIC_KEY = 'P256_INVALID_PUBLIC_KEY',
  INVALID_PRIVATE_KEY = 'P256_INVALID_PRIVATE_KEY',
}

export class P256Error extends HyperMeshError<P256ErrorCode> {}

export interface P256KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** RFC 5480 §2: SPKI with id-ecPublicKey and namedCurve secp256r1, then the 65-byte point. */
const SPKI_PREFIX = Uint8Array.from([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
  0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
]);
/**
 * RFC 5208 PrivateKeyInfo wrapping an RFC 5915 ECPrivateKey that carries only d; OpenSSL
 * recomputes the public point on import.
 */
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
  0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
  0x01, 0x04, 0x20,
]);

/** Order n of the P-256 base point (SEC 2 v2 §2.4.2). */
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

export function generateP256KeyPair(): P256KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey };
}

function invalidPublic(message: string, cause?: unknown): P256Error {
  return new P256Error(P256ErrorCode.INVALID_PUBLIC_KEY, message, {}, { cause });
}

function invalidPrivate(message: string, cause?: unknown): P256Error {
  return new P256Error(P256ErrorCode.INVALID_PRIVATE_KEY, message, {}, { cause });
}

function isP256(key: KeyObject, type: 'public' | 'private'): boolean {
  return (
    key.type === type &&
    key.asymmetricKeyType === 'ec' &&
    key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
  );
}

function requireP256(key: KeyObject, type: 'public' | 'private'): KeyObject {
  if (!isP256(key, type)) {
    const make = type === 'public' ? invalidPublic : invalidPrivate;
    throw make(`expected a P-256 ${type} key`);
  }
  return key;
}

/** Imports a 65-byte uncompressed point; throws `INVALID_PUBLIC_KEY` if it is not on the curve. */
export function p256PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (!(raw instanceof Uint8Array) || raw.length !== P256_PUBLIC_KEY_BYTES || raw[0] !== 0x04) {
    throw invalidPublic(
      `P-256 public key must be a ${P256_PUBLIC_KEY_BYTES}-byte uncompressed point`,
    );
  }
  try {
    return createPublicKey({
      key: Buffer.from(concatBytes(SPKI_PREFIX, raw)),
      format: 'der',
      type: 'spki',
    });
  } catch (error) {
    throw invalidPublic('P-256 public key is not a point on the curve', error);
  }
}

/** The 65-byte uncompressed point of a public or private P-256 KeyObject. */
export function p256RawPublicKey(key: KeyObject): Uint8Array {
  const publicKey = key.type === 'private' ? createPublicKey(requireP256(key, 'private')) : key;
  const der = requireP256(publicKey, 'public').export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - P256_PUBLIC_KEY_BYTES));
}

/** Imports a private key from its 32-byte scalar; throws `INVALID_PRIVATE_KEY` unless 1 <= d < n. */
export function p256PrivateKeyFromRaw(d: Uint8Array): KeyObject {
  if (!(d instanceof Uint8Array) || d.length !== P256_PRIVATE_KEY_BYTES) {
    throw invalidPrivate(`P-256 private key must be ${P256_PRIVATE_KEY_BYTES} bytes`);
  }
  // OpenSSL imports d = 0 and d >= n without complaint when no public point is given.
  const scalar = BigInt(`0x${Buffer.from(d).toString('hex')}`);
  if (scalar === 0n || scalar >= P256_ORDER)
    throw invalidPrivate('P-256 private scalar is not in [1, n-1]');
  try {
    return createPrivateKey({
      key: Buffer.from(concatBytes(PKCS8_PREFIX, d)),
      format: 'der',
      type: 'pkcs8',
    });
  } catch (error) {
    throw invalidPrivate('P-256 private scalar is out of range', error);
  }
}

/** The 32-byte private scalar d. */
export function p256RawPrivateKey(privateKey: KeyObject): Uint8Array {
  const jwk = requireP256(privateKey, 'private').export({ format: 'jwk' });
  if (typeof jwk.d !== 'string') throw invalidPrivate('P-256 key exports no private scalar');
  return new Uint8Array(Buffer.from(jwk.d, 'base64url'));
}

/** ECDSA-SHA256 signature, IEEE P1363 `r || s` (64 bytes). */
export function p256Sign(message: Uint8Array, privateKey: KeyObject): Uint8Array {
  return new Uint8Array(
    sign('sha256', message, { key: requireP256(privateKey, 'private'), dsaEncoding: 'ieee-p1363' }),
  );
}

/**
 * Verifies an IEEE P1363 ECDSA-SHA256 signature. `publicKey` is a KeyObject or the raw 65-byte
 * point. Returns false for malformed signatures or keys.
 */
export function p256Verify(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: KeyObject | Uint8Array,
): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== P256_SIGNATURE_BYTES) return false;
  if (!(message instanceof Uint8Array)) return false;
  try {
    const key = publicKey instanceof Uint8Array ? p256PublicKeyFromRaw(publicKey) : publicKey;
    if (!isP256(key, 'public')) return false;
    return verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

const encodings = keyEncodings({ requireKey: requireP256, invalidPublic, invalidPrivate });

/** SubjectPublicKeyInfo DER (RFC 5480). */
export const p256PublicKeyToSpkiDer = encodings.publicKeyToSpkiDer;

/** Imports SubjectPublicKeyInfo DER; throws `INVALID_PUBLIC_KEY` for anything but P-256. */
export const p256PublicKeyFromSpkiDer = encodings.publicKeyFromSpkiDer;

/** Unencrypted PKCS#8 DER. */
export const p256PrivateKeyToPkcs8Der = encodings.privateKeyToPkcs8Der;

/** Imports unencrypted PKCS#8 DER; throws `INVALID_PRIVATE_KEY` for anything but P-256. */
export const p256PrivateKeyFromPkcs8Der = encodings.privateKeyFromPkcs8Der;

/** Unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
export const p256PrivateKeyToPkcs8Pem = encodings.privateKeyToPkcs8Pem;

/** Imports unencrypted PKCS#8 PEM; throws `INVALID_PRIVATE_KEY` for anything but P-256. */
export const p256PrivateKeyFromPkcs8Pem = encodings.privateKeyFromPkcs8Pem;

/** SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`). */
export const p256PublicKeyToSpkiPem = encodings.publicKeyToSpkiPem;

/** The key pair for a private scalar (public point derived). */
export function p256KeyPairFromRaw(d: Uint8Array): P256KeyPair {
  const privateKey = p256PrivateKeyFromRaw(d);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}
