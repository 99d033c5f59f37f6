import { z } from 'zod';
import { bytes, parseInput, uint } from '../codec/schema.js';

/** Longest state key: keys are module-prefixed identifiers, not data. */
export const MAX_STATE_KEY_BYTES = 1024;
/** Largest state value (a certificate chain or an account fits with room to spare). */
export const MAX_STATE_VALUE_BYTES = 16 * 1024 * 1024;

const hash = bytes({ length: 32 });

const blockSchema = z.strictObject({
  height: uint,
  hash,
  parentHash: hash,
  /** BFT time of the block, milliseconds since the Unix epoch. */
  timeMs: uint,
  /** The block exactly as consensus encoded it; the store does not interpret it. */
  bytes: bytes({ min: 1 }),
});

const stateChangeSchema = z.strictObject({
  key: bytes({ min: 1, max: MAX_STATE_KEY_BYTES }),
  /** The new value, or null to delete the key. */
  value: bytes({ max: MAX_STATE_VALUE_BYTES }).nullable(),
});

const evidenceSchema = z.strictObject({
  hash,
  bytes: bytes({ min: 1 }),
});

const saveBlockSchema = z.strictObject({
  block: blockSchema,
  /** The quorum certificate that committed this block. */
  commit: bytes({ min: 1 }),
  evidence: z.array(evidenceSchema),
  stateChanges: z.array(stateChangeSchema),
  /** The state root the caller computed; saveBlock recomputes it and refuses a mismatch. */
  stateRoot: hash,
});

const stateChangesSchema = z.array(stateChangeSchema);

export type BlockInput = z.infer<typeof blockSchema>;
export type StateChange = z.infer<typeof stateChangeSchema>;
export type EvidenceInput = z.infer<typeof evidenceSchema>;
export type SaveBlockInput = z.infer<typeof saveBlockSchema>;

export function parseSaveBlockInput(input: unknown): SaveBlockInput {
  return parseInput(saveBlockSchema, input, 'saveBlock');
}

export function parseStateChanges(input: unknown): StateChange[] {
  return parseInput(stateChangesSchema, input, 'stateChanges');
}

const keySchema = bytes({ min: 1, max: MAX_STATE_KEY_BYTES });

export function parseStateKey(input: unknown): Uint8Array {
  return parseInput(keySchema, input, 'key');
}

const heightSchema = uint.optional();

/** An optional height argument (undefined means the latest). */
export function parseHeight(input: unknown): number | undefined {
  return parseInput(heightSchema, input, 'height');
}

/** A required non-negative integer argument, named in the error. */
export function parseUint(input: unknown, name: string): number {
  return parseInput(uint, input, name);
}

export function parseHash(input: unknown): Uint8Array {
  return parseInput(hash, input, 'hash');
}
