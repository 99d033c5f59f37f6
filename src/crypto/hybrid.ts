import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { CborError, CborErrorCode, decodeCanonical, encodeCanonical } from '../codec/cbor.js';
import { HyperMeshError } from '../codec/error.js';
import {
  ed25519RawPublicKey,
  ed25519Sign,
  ed25519Verify,
  generateEd25519KeyPair,
} from './ed25519.js';
import type { FalconBackend } from './falcon.js';
import { FALCON_ALGORITHM_ID, defaultFalcon } from './falcon.js';
import { generateP256KeyPair, p256RawPublicKey, p256Sign, p256Verify } from './p256.js';

/**
 * Hybrid signatures: one classical (Ed25519 or ECDSA P-256) and one FALCON-1024 signature over
 * the same payload, valid only if both verify — secure while either scheme is unbroken.
 *
 * Encoding (deterministic CBOR, RFC 8949 §4.2.1):
 *   { "v": 1, "alg": [classicalAlg, "falcon-1024-r3"], "sigs": [classicalSig, falconSig] }
 *
 * Both signatures cover `hybridSignedPayload(context, alg, message)`, the canonical CBOR array
 * `["hypermesh/hybrid-signature", 1, alg, context, message]`. Binding the version and both
 * algorithm tags into what is signed means neither half can be stripped and used alone (it
 * signs a payload no plain signature covers) nor re-tagged as another algorithm; the context
 * string keeps signatures made for one purpose from verifying for another.
 *
 * Errors: bytes that are not a well-formed v1 encoding (bad CBOR, non-canonical CBOR, wrong
 * shape, unknown version, unknown algorithm) throw `HybridError`; a well-formed signature that
 * does not verify — including one tagged for a different classical algorithm than the key —
 * makes `verifyHybrid` return false.
 */
export const HYBRID_SIGNATURE_VERSION = 1;
const PAYLOAD_DOMAIN = 'hypermesh/hybrid-signature';

export type ClassicalAlgorithm = 'ed25519' | 'ecdsa-p256-sha256';
export const CLASSICAL_ALGORITHMS: readonly ClassicalAlgorithm[] = ['ed25519', 'ecdsa-p256-sha256'];

export enum HybridErrorCode {
  MALFORMED = 'HYBRID_MALFORMED',
  NOT_CANONICAL = 'HYBRID_NOT_CANONICAL',
  UNSUPPORTED_VERSION = 'HYBRID_UNSUPPORTED_VERSION',
  UNSUPPORTED_ALGORITHM = 'HYBRID_UNSUPPORTED_ALGORITHM',
  INVALID_CONTEXT = 'HYBRID_INVALID_CONTEXT',
}

export class HybridError extends HyperMeshError<HybridErrorCode> {}

export interface HybridPublicKey {
  /** Raw public key: 32 bytes for Ed25519, the 65-byte uncompressed point for P-256. */
  readonly classical: { readonly alg: ClassicalAlgorithm; readonly publicKey: Uint8Array };
  /** 1793-byte FALCON-1024 Round-3 public key. */
  readonly falcon: Uint8Array;
}

export interface HybridSigningKey {
  readonly classical: { readonly alg: ClassicalAlgorithm; readonly privateKey: KeyObject };
  /** 2305-byte FALCON-1024 Round-3 secret key. */
  readonly falcon: Uint8Array;
}

export interface HybridKeyPair {
  readonly publicKey: HybridPublicKey;
  readonly signingKey: HybridSigningKey;
}

export interface HybridSignature {
  readonly v: typeof HYBRID_SIGNATURE_VERSION;
  readonly alg: readonly [ClassicalAlgorithm, typeof FALCON_ALGORITHM_ID];
  readonly sigs: readonly [Uint8Array, Uint8Array];
}

export interface HybridOptions {
  /** What the signature is for, e.g. "stoq/identity-proof"; part of the signed payload. */
  readonly context: string;
  /** FALCON backend; `defaultFalcon()` when omitted. */
  readonly falcon?: FalconBackend;
}

const v1Schema = z.strictObject({
  v: z.literal(HYBRID_SIGNATURE_VERSION),
  alg: z.tuple([z.string(), z.string()]),
  sigs: z.tuple([z.instanceof(Uint8Array), z.instanceof(Uint8Array)]),
});

function requireContext(context: string): void {
  if (typeof context !== 'string' || context.length === 0) {
    throw new HybridError(
      HybridErrorCode.INVALID_CONTEXT,
      'hybrid signature context must be a non-empty string',
    );
  }
}

/** The bytes both halves sign (see the module comment). */
export function hybridSignedPayload(
  context: string,
  alg: readonly [ClassicalAlgorithm, typeof FALCON_ALGORITHM_ID],
  message: Uint8Array,
): Uint8Array {
  requireContext(context);
  return encodeCanonical([PAYLOAD_DOMAIN, HYBRID_SIGNATURE_VERSION, [...alg], context, message]);
}

export function encodeHybridSignature(signature: HybridSignature): Uint8Array {
  return encodeCanonical({ v: signature.v, alg: [...signature.alg], sigs: [...signature.sigs] });
}

/** Parses a hybrid signature encoding; throws `HybridError` unless it is a well-formed v1 one. */
export function decodeHybridSignature(bytes: Uint8Array): HybridSignature {
  let value: unknown;
  try {
    value = decodeCanonical(bytes);
  } catch (error) {
    if (!(error instanceof CborError)) throw error;
    const code =
      error.code === CborErrorCode.NOT_CANONICAL
        ? HybridErrorCode.NOT_CANONICAL
        : HybridErrorCode.MALFORMED;
    throw new HybridError(code, `hybrid signature: ${error.message}`, {}, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !('v' in value)) {
    throw new HybridError(HybridErrorCode.MALFORMED, 'hybrid signature is not a versioned map');
  }
  if (value.v !== HYBRID_SIGNATURE_VERSION) {
    throw new HybridError(
      HybridErrorCode.UNSUPPORTED_VERSION,
      'unsupported hybrid signature version',
      {
        version: typeof value.v === 'number' ? value.v : String(value.v),
      },
    );
  }
  const parsed = v1Schema.safeParse(value);
  if (!parsed.success) {
    throw new HybridError(
      HybridErrorCode.MALFORMED,
      `hybrid signature v1: ${parsed.error.message}`,
    );
  }
  const [classical, falcon] = parsed.data.alg;
  if (
    !CLASSICAL_ALGORITHMS.includes(classical as ClassicalAlgorithm) ||
    falcon !== FALCON_ALGORITHM_ID
  ) {
    throw new HybridError(
      HybridErrorCode.UNSUPPORTED_ALGORITHM,
      'unsupported hybrid signature algorithm',
      {
        alg: [classical, falcon],
      },
    );
  }
  return {
    v: HYBRID_SIGNATURE_VERSION,
    alg: [classical as ClassicalAlgorithm, FALCON_ALGORITHM_ID],
    sigs: parsed.data.sigs,
  };
}

export async function generateHybridKeyPair(
  alg: ClassicalAlgorithm,
  falcon: FalconBackend = defaultFalcon(),
): Promise<HybridKeyPair> {
  const pq = await falcon.generateKeyPair();
  const classical = alg === 'ed25519' ? generateEd25519KeyPair() : generateP256KeyPair();
  const rawPublic =
    alg === 'ed25519'
      ? ed25519RawPublicKey(classical.publicKey)
      : p256RawPublicKey(classical.publicKey);
  return {
    publicKey: { classical: { alg, publicKey: rawPublic }, falcon: pq.publicKey },
    signingKey: { classical: { alg, privateKey: classical.privateKey }, falcon: pq.secretKey },
  };
}

/** Signs `message` with both keys and returns the encoded hybrid signature. */
export async function signHybrid(
  message: Uint8Array,
  key: HybridSigningKey,
  options: HybridOptions,
): Promise<Uint8Array> {
  const alg = [key.classical.alg, FALCON_ALGORITHM_ID] as const;
  const payload = hybridSignedPayload(options.context, alg, message);
  const classicalSignature =
    key.classical.alg === 'ed25519'
      ? ed25519Sign(payload, key.classical.privateKey)
      : p256Sign(payload, key.classical.privateKey);
  const falconSignature = await (options.falcon ?? defaultFalcon()).sign(payload, key.falcon);
  return encodeHybridSignature({
    v: HYBRID_SIGNATURE_VERSION,
    alg,
    sigs: [classicalSignature, falconSignature],
  });
}

/**
 * True only if both signatures verify under `publicKey` for this context and message, and the
 * signature's classical algorithm tag is the key's. Throws `HybridError` for a malformed
 * encoding (see the module comment).
 */
export function verifyHybrid(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: HybridPublicKey,
  options: HybridOptions,
): boolean {
  const decoded = decodeHybridSignature(signature);
  if (decoded.alg[0] !== publicKey.classical.alg) return false;
  const payload = hybridSignedPayload(options.context, decoded.alg, message);
  const [classicalSignature, falconSignature] = decoded.sigs;
  const classicalValid =
    decoded.alg[0] === 'ed25519'
      ? ed25519Verify(classicalSignature, payload, publicKey.classical.publicKey)
      : p256Verify(classicalSignature, payload, publicKey.classical.publicKey);
  if (!classicalValid) return false;
  return (options.falcon ?? defaultFalcon()).verify(falconSignature, payload, publicKey.falcon);
}
