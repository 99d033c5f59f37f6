import { z } from 'zod';
import { decodeCanonical, encodeCanonical } from '../codec/cbor.js';
import { bytes, parseInput } from '../codec/schema.js';
import { ED25519_PUBLIC_KEY_BYTES } from '../crypto/ed25519.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../crypto/falcon.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import {
  MAX_VALIDATOR_UPDATES,
  STORAGE_ROOT_BYTES,
  type ValidatorSetUpdate,
} from './validator-set.js';

/**
 * A block's validator updates as the node store keeps them beside the block (storage saves
 * them opaquely, schema version 3): deterministic CBOR (RFC 8949 §4.2.1) of
 *
 *   { v: 1, updates: [{ publicKey, power, pqPublicKey?, storageRoot? }] }
 *
 * in the order the application returned them. A restarted node replays them to rebuild the
 * validator set and proposer schedule of every height (driver/chain.ts).
 */
const VERSION = 1;

const updateSchema = z.strictObject({
  publicKey: bytes({ length: ED25519_PUBLIC_KEY_BYTES }),
  power: z.int().min(0),
  pqPublicKey: bytes({ length: FALCON1024_PUBLIC_KEY_BYTES }).optional(),
  storageRoot: bytes({ length: STORAGE_ROOT_BYTES }).optional(),
});

const recordSchema = z.strictObject({
  v: z.literal(VERSION),
  updates: z.array(updateSchema).min(1).max(MAX_VALIDATOR_UPDATES),
});

/**
 * The decoder's item budget (RFC 8949 §2 data items), from the schemas above: the record map
 * with its 2 keys and values, and at most MAX_VALIDATOR_UPDATES updates, each a strict map of
 * at most 4 keys and values: 1 + 2 × 2 + 20,000 × (1 + 2 × 4) = 180,005. No record accepted
 * before holds more; `hypermesh block verify` decodes records a node sends.
 */
const MAX_RECORD_ITEMS = 1 + 2 * 2 + MAX_VALIDATOR_UPDATES * (1 + 2 * 4);

/** Encodes a non-empty list of updates (only the four fields; absent optional ones left out). */
export function encodeValidatorUpdates(updates: readonly ValidatorSetUpdate[]): Uint8Array {
  return encodeCanonical({
    v: VERSION,
    updates: updates.map(({ publicKey, power, pqPublicKey, storageRoot }) => ({
      publicKey,
      power,
      ...(pqPublicKey === undefined ? {} : { pqPublicKey }),
      ...(storageRoot === undefined ? {} : { storageRoot }),
    })),
  });
}

/**
 * Decodes `encodeValidatorUpdates` bytes, accepting nothing else (canonical form, known keys,
 * sizes). Throws `ConsensusError(MALFORMED_MESSAGE)` naming the problem.
 */
export function decodeValidatorUpdates(encoded: Uint8Array): ValidatorSetUpdate[] {
  let record: z.infer<typeof recordSchema>;
  try {
    record = parseInput(
      recordSchema,
      decodeCanonical(encoded, { maxItems: MAX_RECORD_ITEMS }),
      'validatorUpdates',
    );
  } catch (error) {
    throw new ConsensusError(
      ConsensusErrorCode.MALFORMED_MESSAGE,
      `stored validator updates do not decode: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
  return record.updates.map(({ publicKey, power, pqPublicKey, storageRoot }) => ({
    publicKey,
    power,
    ...(pqPublicKey === undefined ? {} : { pqPublicKey }),
    ...(storageRoot === undefined ? {} : { storageRoot }),
  }));
}
