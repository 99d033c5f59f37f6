import { HyperMeshError } from '../codec/error.js';
import { createNobleFalcon } from './falcon-noble.js';
import { createPqcleanFalcon } from './falcon-pqclean.js';

/**
 * FALCON-1024 behind one adapter (ARCHITECTURE.md "Post-quantum"). Every backend speaks the
 * NIST Round-3 formats: 1793-byte public keys, 2305-byte secret keys and *detached* compressed
 * signatures of variable length, laid out as `header(1) || nonce(40) || compressed-s2`, with
 * header byte 0x3A (0x30 + logn, "compressed encoding", Falcon spec v1.2 §3.11.3). This is what
 * PQClean's `crypto_sign_signature` and noble's `falcon1024.sign` produce. The NIST KAT files
 * carry the *signed-message* form instead (see falcon-kat.ts), whose header byte is 0x2A.
 *
 * FALCON here is Round 3, not FIPS 206: anything that embeds a FALCON key or signature tags it
 * with `FALCON_ALGORITHM_ID` so a later format can be told apart.
 */
export const FALCON_ALGORITHM_ID = 'falcon-1024-r3';
export const FALCON1024_PUBLIC_KEY_BYTES = 1793;
export const FALCON1024_SECRET_KEY_BYTES = 2305;
/** Upper bound of a compressed FALCON-1024 signature (NIST Round-3 spec, CRYPTO_BYTES). */
export const FALCON1024_MAX_SIGNATURE_BYTES = 1462;
/** Header byte, nonce and at least one byte of compressed s2. */
export const FALCON1024_MIN_SIGNATURE_BYTES = 42;
export const FALCON_NONCE_BYTES = 40;
/** First byte of a detached FALCON-1024 signature: 0x30 + logn (spec §3.11.3). */
export const FALCON1024_SIGNATURE_HEADER = 0x3a;
/** First byte of an encoded FALCON-1024 public key: 0x00 + logn (spec §3.11.4). */
export const FALCON1024_PUBLIC_KEY_HEADER = 0x0a;
/** First byte of an encoded FALCON-1024 secret key: 0x50 + logn (spec §3.11.5). */
export const FALCON1024_SECRET_KEY_HEADER = 0x5a;

export enum FalconErrorCode {
  /** The secret key handed to `sign` is not a 2305-byte FALCON-1024 secret key. */
  INVALID_SECRET_KEY = 'FALCON_INVALID_SECRET_KEY',
  /** The requested library could not be loaded in this process. */
  BACKEND_UNAVAILABLE = 'FALCON_BACKEND_UNAVAILABLE',
  /** The library reported a failure while generating a key pair or signing. */
  OPERATION_FAILED = 'FALCON_OPERATION_FAILED',
}

export class FalconError extends HyperMeshError<FalconErrorCode> {}

export interface FalconKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export interface FalconBackend {
  /** Library name, reported in benchmarks and metrics. */
  readonly name: string;
  generateKeyPair(): Promise<FalconKeyPair>;
  /** Detached Round-3 signature. May run off the main thread. */
  sign(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array>;
  /** False for any invalid signature, wrong key or malformed input; never throws on bad input. */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

export type FalconBackendName = 'pqclean' | 'noble';

/**
 * Cheap structural checks shared by every backend before handing bytes to a library: the
 * libraries throw (rather than return false) on some wrong lengths, and the interface promises
 * never to throw on bad input.
 */
export function isWellFormedFalconVerifyInput(
  signature: unknown,
  message: unknown,
  publicKey: unknown,
): signature is Uint8Array {
  return (
    signature instanceof Uint8Array &&
    message instanceof Uint8Array &&
    publicKey instanceof Uint8Array &&
    publicKey.length === FALCON1024_PUBLIC_KEY_BYTES &&
    publicKey[0] === FALCON1024_PUBLIC_KEY_HEADER &&
    signature.length >= FALCON1024_MIN_SIGNATURE_BYTES &&
    signature.length <= FALCON1024_MAX_SIGNATURE_BYTES &&
    signature[0] === FALCON1024_SIGNATURE_HEADER &&
    // Only the minimal compressed encoding: its last byte holds the last coefficient's
    // terminating 1 bit, so it is never 0x00. PQClean also accepts a signature zero-padded to
    // 1,280 bytes (the padded format's size) and noble does not; validators running different
    // backends would then disagree on a precommit's FALCON signature, so no backend sees one.
    signature[signature.length - 1] !== 0
  );
}

/** Throws `INVALID_SECRET_KEY` unless `secretKey` has the FALCON-1024 length and header. */
export function assertFalconSecretKey(secretKey: unknown): asserts secretKey is Uint8Array {
  if (
    !(secretKey instanceof Uint8Array) ||
    secretKey.length !== FALCON1024_SECRET_KEY_BYTES ||
    secretKey[0] !== FALCON1024_SECRET_KEY_HEADER
  ) {
    throw new FalconError(FalconErrorCode.INVALID_SECRET_KEY, 'not a FALCON-1024 secret key', {
      length: secretKey instanceof Uint8Array ? secretKey.length : null,
      expected: FALCON1024_SECRET_KEY_BYTES,
    });
  }
}

const backends = new Map<FalconBackendName, FalconBackend>();

/**
 * The named backend, loaded once per process. Without a name: the fastest one that loads —
 * PQClean (native addon, or its WebAssembly build where the addon did not compile; both verify
 * ~6-7k/s here against ~0.8k/s for pure-JS noble), else noble.
 * Throws `BACKEND_UNAVAILABLE` when the named library cannot be loaded.
 */
export function createFalcon(name?: FalconBackendName): FalconBackend {
  if (name === undefined) return defaultFalcon();
  let backend = backends.get(name);
  if (backend === undefined) {
    backend = name === 'pqclean' ? createPqcleanFalcon() : createNobleFalcon();
    backends.set(name, backend);
  }
  return backend;
}

/** The fastest available backend (see `createFalcon`). */
export function defaultFalcon(): FalconBackend {
  try {
    return createFalcon('pqclean');
  } catch (error) {
    if (!(error instanceof FalconError)) throw error;
    return createFalcon('noble');
  }
}
