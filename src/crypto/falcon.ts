/**
 * FALCON-1024 behind one adapter (ARCHITECTURE.md "Post-quantum"). Every backend speaks the
 * NIST Round-3 formats: 1793-byte public keys, 2305-byte secret keys and *detached* compressed
 * signatures of variable length (`nonce(40) || compressed`, header byte 0x3A), as produced by the
 * reference implementation's `crypto_sign` with the length prefix and message removed.
 *
 * FALCON here is Round 3, not FIPS 206: anything that embeds a FALCON key or signature tags it
 * with `FALCON_ALGORITHM_ID` so a later format can be told apart.
 */
export const FALCON_ALGORITHM_ID = 'falcon-1024-r3';
export const FALCON1024_PUBLIC_KEY_BYTES = 1793;
export const FALCON1024_SECRET_KEY_BYTES = 2305;
/** Upper bound of a compressed FALCON-1024 signature (NIST Round-3 spec, CRYPTO_BYTES). */
export const FALCON1024_MAX_SIGNATURE_BYTES = 1462;

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
