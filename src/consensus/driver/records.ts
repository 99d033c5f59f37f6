import { z } from 'zod';
import { decodeStrict, encodeMessage } from '../../codec/cbor.js';
import { bytes, parseInput, uint } from '../../codec/schema.js';
import { ED25519_SIGNATURE_BYTES } from '../../crypto/ed25519.js';
import { FALCON1024_MAX_SIGNATURE_BYTES } from '../../crypto/falcon.js';
import { BLOCK_HASH_BYTES } from '../messages.js';
import type { VoteRequest } from '../types.js';

/**
 * Schemas of the votes a driver keeps in its own files (the consensus WAL and the signer's
 * last-signed record). These files are local, but they are still read back through schemas: a
 * damaged file must stop the node with a precise error, never feed the engine a half-typed value.
 */

export const hashSchema = bytes({ length: BLOCK_HASH_BYTES });
export const heightSchema = z.int().min(1);
export const roundSchema = z
  .int()
  .min(0)
  .max(2 ** 31 - 1);
const voteTypeSchema = z.enum(['prevote', 'precommit']);
/** Validator addresses are 20 bytes in lowercase hex. */
export const addressSchema = z.string().regex(/^[0-9a-f]{40}$/);

export const voteSchema = z.strictObject({
  type: voteTypeSchema,
  height: heightSchema,
  round: roundSchema,
  blockHash: hashSchema.nullable(),
  timestamp: uint,
  validator: addressSchema,
  signature: bytes({ length: ED25519_SIGNATURE_BYTES }),
  pqSignature: bytes({ min: 1, max: FALCON1024_MAX_SIGNATURE_BYTES }).optional(),
});

export const voteRequestSchema = z.strictObject({
  type: voteTypeSchema,
  height: heightSchema,
  round: roundSchema,
  blockHash: hashSchema.nullable(),
  validator: addressSchema,
  notBefore: uint,
  pq: z.boolean(),
});

/** The WAL and signer state keep a vote in its plain-map form, `pqSignature` omitted when absent. */
export { voteRecord } from '../vote-record.js';

export function voteRequestRecord(request: VoteRequest): Record<string, unknown> {
  return {
    type: request.type,
    height: request.height,
    round: request.round,
    blockHash: request.blockHash,
    validator: request.validator,
    notBefore: request.notBefore,
    pq: request.pq,
  };
}

/** CBOR of a local record (not signed or hashed, so the fast encoder). */
export function encodeRecord(value: unknown): Uint8Array {
  return encodeMessage(value);
}

/** Decodes and schema-checks a local record; throws `CborError` or `SchemaError`. */
export function decodeRecord<T>(schema: z.ZodType<T>, bytes: Uint8Array, context: string): T {
  return parseInput(schema, decodeStrict(bytes), context);
}
