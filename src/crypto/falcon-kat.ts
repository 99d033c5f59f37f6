import { HyperMeshError } from '../codec/error.js';
import { BytesError, fromHex } from './bytes.js';

/*
 * NIST PQC known-answer files (`.rsp`) for FALCON: blocks of `name = value` lines separated by
 * blank lines, `#` comments. The signed message `sm` is the reference implementation's
 * `crypto_sign` output (FALCON Round-3 submission, nist.c):
 *
 *   sig_len(2, big-endian) || nonce(40) || message || 0x20+logn || compressed-s2
 *
 * where sig_len counts the header byte and the compressed part. The detached format the
 * backends verify is `0x30+logn || nonce || compressed-s2` (spec §3.11.3): the same nonce and
 * compressed bytes with the "signed message" header 0x2A swapped for the detached header 0x3A.
 */

export enum FalconKatErrorCode {
  MALFORMED_FILE = 'FALCON_KAT_MALFORMED_FILE',
  MALFORMED_SIGNED_MESSAGE = 'FALCON_KAT_MALFORMED_SIGNED_MESSAGE',
}

export class FalconKatError extends HyperMeshError<FalconKatErrorCode> {}

export interface FalconKatVector {
  readonly count: number;
  /** 48-byte seed of the AES-256 CTR_DRBG the reference harness draws all randomness from. */
  readonly seed: Uint8Array;
  readonly mlen: number;
  readonly msg: Uint8Array;
  readonly pk: Uint8Array;
  readonly sk: Uint8Array;
  readonly smlen: number;
  readonly sm: Uint8Array;
}

const FIELDS = ['count', 'seed', 'mlen', 'msg', 'pk', 'sk', 'smlen', 'sm'] as const;
type Field = (typeof FIELDS)[number];

const NONCE_BYTES = 40;
const SIGNED_MESSAGE_HEADER_BASE = 0x20;
const DETACHED_HEADER_BASE = 0x30;

function malformed(message: string, detail: Record<string, unknown>): FalconKatError {
  return new FalconKatError(FalconKatErrorCode.MALFORMED_FILE, message, detail);
}

/** Parses every vector of a `.rsp` file, checking that `mlen`/`smlen` match the byte fields. */
export function parseFalconKat(text: string): FalconKatVector[] {
  const vectors: FalconKatVector[] = [];
  let current = new Map<Field, string>();
  let startLine = 0;
  const lines = text.split(/\r?\n/);

  const finish = (): void => {
    if (current.size === 0) return;
    vectors.push(toVector(current, startLine));
    current = new Map();
  };

  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') {
      finish();
      return;
    }
    if (line.startsWith('#')) return;
    const match = /^([a-z]+)\s*=\s*([0-9A-Fa-f]*)$/.exec(line);
    if (match === null)
      throw malformed(`line ${index + 1} is not "name = value"`, { line: index + 1 });
    const name = match[1] as Field;
    const value = match[2] ?? '';
    if (!FIELDS.includes(name)) throw malformed(`unknown field "${name}"`, { line: index + 1 });
    if (current.size === 0) startLine = index + 1;
    if (current.has(name)) throw malformed(`field "${name}" repeated`, { line: index + 1 });
    current.set(name, value);
  });
  finish();
  return vectors;
}

function toVector(fields: Map<Field, string>, line: number): FalconKatVector {
  const read = (name: Field): string => {
    const value = fields.get(name);
    if (value === undefined) throw malformed(`vector at line ${line} lacks "${name}"`, { line });
    return value;
  };
  const integer = (name: Field): number => {
    const value = read(name);
    if (!/^[0-9]+$/.test(value)) throw malformed(`"${name}" is not a decimal integer`, { line });
    return Number(value);
  };
  const bytes = (name: Field): Uint8Array => {
    try {
      return fromHex(read(name));
    } catch (error) {
      if (error instanceof BytesError) throw malformed(`"${name}" is not hex`, { line });
      throw error;
    }
  };
  const vector: FalconKatVector = {
    count: integer('count'),
    seed: bytes('seed'),
    mlen: integer('mlen'),
    msg: bytes('msg'),
    pk: bytes('pk'),
    sk: bytes('sk'),
    smlen: integer('smlen'),
    sm: bytes('sm'),
  };
  if (vector.msg.length !== vector.mlen || vector.sm.length !== vector.smlen) {
    throw malformed(`vector ${vector.count}: mlen/smlen disagree with msg/sm`, {
      line,
      count: vector.count,
    });
  }
  return vector;
}

export interface FalconSignedMessageParts {
  readonly message: Uint8Array;
  /** Detached signature: `0x30+logn || nonce || compressed-s2`. */
  readonly signature: Uint8Array;
}

/**
 * Splits a reference-implementation signed message into the message and the detached
 * signature (see the layout above). `messageLength` is the vector's `mlen`.
 */
export function detachFalconSignedMessage(
  sm: Uint8Array,
  messageLength: number,
): FalconSignedMessageParts {
  const fail = (message: string): FalconKatError =>
    new FalconKatError(FalconKatErrorCode.MALFORMED_SIGNED_MESSAGE, message, {
      length: sm.length,
      messageLength,
    });
  if (sm.length < 2 + NONCE_BYTES + messageLength + 1) throw fail('signed message too short');
  const signatureLength = ((sm[0] ?? 0) << 8) | (sm[1] ?? 0);
  if (sm.length !== 2 + NONCE_BYTES + messageLength + signatureLength) {
    throw fail('sig_len does not match the signed message length');
  }
  const nonce = sm.subarray(2, 2 + NONCE_BYTES);
  const message = sm.slice(2 + NONCE_BYTES, 2 + NONCE_BYTES + messageLength);
  const encoded = sm.subarray(2 + NONCE_BYTES + messageLength);
  const header = encoded[0] ?? 0;
  if ((header & 0xf0) !== SIGNED_MESSAGE_HEADER_BASE) throw fail('signature header is not 0x2N');
  const signature = new Uint8Array(1 + NONCE_BYTES + encoded.length - 1);
  signature[0] = DETACHED_HEADER_BASE | (header & 0x0f);
  signature.set(nonce, 1);
  signature.set(encoded.subarray(1), 1 + NONCE_BYTES);
  return { message, signature };
}

/** The detached signature of a KAT vector. */
export function falconKatDetachedSignature(vector: FalconKatVector): Uint8Array {
  return detachFalconSignedMessage(vector.sm, vector.mlen).signature;
}
