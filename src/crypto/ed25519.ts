import type { KeyObject } from 'node:crypto';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import sodium from 'sodium-native';
import { HyperMeshError } from '../codec/error.js';
import { bytesEqual, concatBytes } from './bytes.js';
import { keyEncodings } from './key-encoding.js';

/**
 * Ed25519 (RFC 8032) identity keys on node:crypto KeyObjects (OpenSSL: far faster than pure JS).
 * Raw forms are the 32-byte public key and the 32-byte private seed of RFC 8032 §5.1.5; DER
 * forms are SPKI and PKCS#8 with the id-Ed25519 OID 1.3.101.112 (RFC 8410), as TLS and X.509
 * tools expect.
 *
 * Verification tries libsodium (sodium-native) first: its 64-bit field arithmetic verifies in
 * ~50 µs here against ~120 µs for OpenSSL 3.0's through node:crypto, and it needs the raw key
 * only, not an imported KeyObject. libsodium is stricter than OpenSSL (it also refuses public
 * keys and `R` of small order and non-canonical keys) and accepts nothing OpenSSL refuses, so
 * what it accepts is valid and what it refuses is decided by OpenSSL. Except for one case:
 * OpenSSL accepts signatures under a public key of small order (the identity 01 00…00 verifies
 * R = 01 00…00, s = 0 for every message), a key anyone can sign with, so `ed25519Verify`
 * refuses those keys (`isSmallOrderEd25519Key`) before OpenSSL sees them. Every other
 * signature is valid exactly when OpenSSL says so. Only refused signatures pay for both checks.
 */
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SEED_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

export enum Ed25519ErrorCode {
  INVALID_PUBLIC_KEY = 'ED25519_INVALID_PUBLIC_KEY',
  INVALID_PRIVATE_KEY = 'ED25519_INVALID_PRIVATE_KEY',
}

export class Ed25519Error extends HyperMeshError<Ed25519ErrorCode> {}

export interface Ed25519KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** RFC 8410 §4: SubjectPublicKeyInfo with id-Ed25519 and a 32-byte BIT STRING. */
const SPKI_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);
/** RFC 8410 §7: OneAsymmetricKey v1 with id-Ed25519 and CurvePrivateKey (OCTET STRING of 32). */
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

export function generateEd25519KeyPair(): Ed25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey };
}

function invalidPublic(message: string, cause?: unknown): Ed25519Error {
  return new Ed25519Error(Ed25519ErrorCode.INVALID_PUBLIC_KEY, message, {}, { cause });
}

function invalidPrivate(message: string, cause?: unknown): Ed25519Error {
  return new Ed25519Error(Ed25519ErrorCode.INVALID_PRIVATE_KEY, message, {}, { cause });
}

function requireEd25519(key: KeyObject, type: 'public' | 'private'): KeyObject {
  if (key.type !== type || key.asymmetricKeyType !== 'ed25519') {
    const make = type === 'public' ? invalidPublic : invalidPrivate;
    throw make(
      `expected an Ed25519 ${type} key, got ${key.asymmetricKeyType ?? 'none'} ${key.type}`,
    );
  }
  return key;
}

/**
 * The encodings of the 8 points of small order (the torsion subgroup), with the sign bit
 * masked: y = 0, 1, the two order-8 y values, p − 1, and the non-canonical p and p + 1. The
 * order-8 values plus p exceed 2^255 and have no encoding. The same list as libsodium's
 * `ge25519_has_small_order` (RFC 8032 §5.1.3 decoding; "Taming the many EdDSAs", Chalkias et
 * al. 2020, §3).
 */
const SMALL_ORDER_Y: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Uint8Array.from(Buffer.from(hex, 'hex')));

/**
 * Whether the 32-byte Ed25519 public key encodes a point of small order (in any encoding,
 * canonical or not, either sign). Such a key has no secret: signatures under it verify for
 * every message (with OpenSSL's rules), so it must never be certified or trusted. Keys of any
 * other length are not small-order keys (callers check the length).
 */
export function isSmallOrderEd25519Key(raw: Uint8Array): boolean {
  if (raw.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  return SMALL_ORDER_Y.some((y) => {
    for (let i = 0; i < 31; i++) if (raw[i] !== y[i]) return false;
    return ((raw[31] as number) & 0x7f) === y[31];
  });
}

/** Imports a raw 32-byte public key. Any 32 bytes import; points off the curve fail to verify. */
export function ed25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (!(raw instanceof Uint8Array) || raw.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw invalidPublic(`Ed25519 public key must be ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  }
  return createPublicKey({
    key: Buffer.from(concatBytes(SPKI_PREFIX, raw)),
    format: 'der',
    type: 'spki',
  });
}

/** The raw 32-byte public key of a public or private Ed25519 KeyObject. */
export function ed25519RawPublicKey(key: KeyObject): Uint8Array {
  const publicKey = key.type === 'private' ? createPublicKey(requireEd25519(key, 'private')) : key;
  const der = requireEd25519(publicKey, 'public').export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(SPKI_PREFIX.length));
}

/** Imports a private key from its 32-byte RFC 8032 seed. */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_SEED_BYTES) {
    throw invalidPrivate(`Ed25519 seed must be ${ED25519_SEED_BYTES} bytes`);
  }
  return createPrivateKey({
    key: Buffer.from(concatBytes(PKCS8_PREFIX, seed)),
    format: 'der',
    type: 'pkcs8',
  });
}

/** The 32-byte RFC 8032 seed of a private key. */
export function ed25519Seed(privateKey: KeyObject): Uint8Array {
  const der = requireEd25519(privateKey, 'private').export({ format: 'der', type: 'pkcs8' });
  return new Uint8Array(der.subarray(der.length - ED25519_SEED_BYTES));
}

/** The key pair for a seed (public key derived). */
export function ed25519KeyPairFromSeed(seed: Uint8Array): Ed25519KeyPair {
  const privateKey = ed25519PrivateKeyFromSeed(seed);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** Pure Ed25519 signature (RFC 8032 §5.1.6), 64 bytes. */
export function ed25519Sign(message: Uint8Array, privateKey: KeyObject): Uint8Array {
  return new Uint8Array(sign(null, message, requireEd25519(privateKey, 'private')));
}

/** Raw keys of the KeyObjects verified with, so a KeyObject is exported once. */
const rawPublicKeys = new WeakMap<KeyObject, Uint8Array>();

function rawVerificationKey(publicKey: KeyObject | Uint8Array): Uint8Array | undefined {
  if (publicKey instanceof Uint8Array) {
    return publicKey.length === ED25519_PUBLIC_KEY_BYTES ? publicKey : undefined;
  }
  const known = rawPublicKeys.get(publicKey);
  if (known !== undefined) return known;
  if (publicKey.type !== 'public' || publicKey.asymmetricKeyType !== 'ed25519') return undefined;
  const raw = ed25519RawPublicKey(publicKey);
  rawPublicKeys.set(publicKey, raw);
  return raw;
}

/**
 * RFC 8032 §5.1.7 verification with OpenSSL's rules (libsodium first, above). `publicKey` is a
 * KeyObject or the raw 32 bytes. Returns false for a wrong-length signature or key, a key of
 * another type, a key of small order (`isSmallOrderEd25519Key`), or any other malformed input.
 */
export function ed25519Verify(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: KeyObject | Uint8Array,
): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_BYTES)
    return false;
  if (!(message instanceof Uint8Array)) return false;
  try {
    const key = rawVerificationKey(publicKey);
    if (key === undefined) return false;
    if (sodium.crypto_sign_verify_detached(signature, message, key)) return true;
    if (isSmallOrderEd25519Key(key)) return false;
    const keyObject =
      publicKey instanceof Uint8Array ? ed25519PublicKeyFromRaw(publicKey) : publicKey;
    return verify(null, message, keyObject, signature);
  } catch {
    return false;
  }
}

const encodings = keyEncodings({ requireKey: requireEd25519, invalidPublic, invalidPrivate });

/** SubjectPublicKeyInfo DER (RFC 8410 §4). */
export const ed25519PublicKeyToSpkiDer = encodings.publicKeyToSpkiDer;

/** Imports SubjectPublicKeyInfo DER; throws `INVALID_PUBLIC_KEY` for anything but Ed25519. */
export const ed25519PublicKeyFromSpkiDer = encodings.publicKeyFromSpkiDer;

/** Unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, RFC 8410 §7 / RFC 7468 §10). */
export const ed25519PrivateKeyToPkcs8Pem = encodings.privateKeyToPkcs8Pem;

/** Imports unencrypted PKCS#8 PEM; throws `INVALID_PRIVATE_KEY` for anything but Ed25519. */
export const ed25519PrivateKeyFromPkcs8Pem = encodings.privateKeyFromPkcs8Pem;

/** PKCS#8 DER (RFC 8410 §7). */
export const ed25519PrivateKeyToPkcs8Der = encodings.privateKeyToPkcs8Der;

/** SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`). */
export const ed25519PublicKeyToSpkiPem = encodings.publicKeyToSpkiPem;

/*
 * libp2p key protobufs (libp2p peer-ids spec, "Keys"): message { KeyType Type = 1;
 * bytes Data = 2; } with KeyType Ed25519 = 1. For Ed25519 the private Data is the 64-byte
 * `seed || publicKey` and the public Data is the 32-byte public key.
 */
const LIBP2P_PRIVATE_PREFIX = Uint8Array.from([0x08, 0x01, 0x12, 0x40]);
const LIBP2P_PUBLIC_PREFIX = Uint8Array.from([0x08, 0x01, 0x12, 0x20]);

/**
 * The libp2p PrivateKey protobuf of an Ed25519 key — the `privateKeyProto` the quinn binding
 * of @chainsafe/libp2p-quic takes: `08 01 12 40 || seed(32) || publicKey(32)`.
 * Accepts the 32-byte seed or a private KeyObject.
 */
export function ed25519Libp2pPrivateKeyProto(seedOrKey: Uint8Array | KeyObject): Uint8Array {
  const privateKey =
    seedOrKey instanceof Uint8Array ? ed25519PrivateKeyFromSeed(seedOrKey) : seedOrKey;
  return concatBytes(
    LIBP2P_PRIVATE_PREFIX,
    ed25519Seed(privateKey),
    ed25519RawPublicKey(privateKey),
  );
}

/** The libp2p PublicKey protobuf: `08 01 12 20 || publicKey(32)`. */
export function ed25519Libp2pPublicKeyProto(publicKey: Uint8Array | KeyObject): Uint8Array {
  if (publicKey instanceof Uint8Array) {
    if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
      throw invalidPublic(`Ed25519 public key must be ${ED25519_PUBLIC_KEY_BYTES} bytes`);
    }
    return concatBytes(LIBP2P_PUBLIC_PREFIX, publicKey);
  }
  return concatBytes(LIBP2P_PUBLIC_PREFIX, ed25519RawPublicKey(publicKey));
}

/**
 * The raw public key inside a libp2p PublicKey protobuf. Only the canonical Ed25519 encoding
 * (exactly the 36 bytes above) is accepted; throws `INVALID_PUBLIC_KEY` otherwise.
 */
export function ed25519PublicKeyFromLibp2pProto(proto: Uint8Array): Uint8Array {
  const expected = LIBP2P_PUBLIC_PREFIX.length + ED25519_PUBLIC_KEY_BYTES;
  if (
    !(proto instanceof Uint8Array) ||
    proto.length !== expected ||
    !bytesEqual(proto.subarray(0, LIBP2P_PUBLIC_PREFIX.length), LIBP2P_PUBLIC_PREFIX)
  ) {
    throw invalidPublic('not a libp2p Ed25519 PublicKey protobuf');
  }
  return proto.slice(LIBP2P_PUBLIC_PREFIX.length);
}
