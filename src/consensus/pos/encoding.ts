import { z } from 'zod';
import { CborError, CborErrorCode, decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput, SchemaError } from '../../codec/schema.js';
import { ED25519_SIGNATURE_BYTES } from '../../crypto/ed25519.js';
import { ProofError, ProofErrorCode } from '../proof/errors.js';
import { MAX_CHALLENGE_COUNT, MAX_CHECKPOINTS, MAX_SLOTS_PER_BLOCK } from '../proof/params.js';
import type { SequentialWork } from '../proof/sequential-work.js';
import type { SpaceProof } from '../proof/space.js';
import { MAX_ADDRESS_LENGTH } from '../proof/space.js';
import { SLOT_NONCE_BYTES } from '../proof/storage-plot.js';

/**
 * The proposer's parts of the consensus proof, as they travel in `header.consensusProof`:
 * deterministic CBOR (RFC 8949 §4.2.1) of a version-tagged map. The quorum signs the header, so
 * it signs these bytes; PoStake (the commit) and the BFT time live elsewhere in the block.
 *
 *   { v: 1,
 *     space: { root, address, signature, answers: [{ index, block, path }] },
 *     work:  { stamps: [[txHash, nonce]] },
 *     time:  { seed, checkpoints } }
 *
 * Stamps, the one list that grows with the block, are pairs rather than maps: a third the size
 * and cheaper to encode canonically.
 */
export const BLOCK_PROOF_VERSION = 1;

/** Bounds on decoded sizes, so hostile bytes cannot make a verifier allocate without limit. */
export const MAX_PATH_LENGTH = 64;
export const MAX_STAMPS_PER_PROOF = 1_000_000;

/** A transaction's hashcash stamp: the hash of the transaction without its stamp, and nonce. */
export interface TransactionStamp {
  readonly txHash: Uint8Array;
  readonly nonce: number;
}

export interface BlockProof {
  readonly space: SpaceProof;
  /** One stamp per transaction, in block order. */
  readonly stamps: readonly TransactionStamp[];
  readonly sequentialWork: SequentialWork;
}

export function encodeBlockProof(proof: BlockProof): Uint8Array {
  const { space, stamps, sequentialWork } = proof;
  return encodeCanonical({
    v: BLOCK_PROOF_VERSION,
    space: {
      root: space.commitmentRoot,
      address: space.address,
      signature: space.addressSignature,
      answers: space.answers.map((answer) => ({
        index: answer.index,
        block: answer.block,
        path: [...answer.path],
      })),
    },
    work: { stamps: stamps.map((stamp) => [stamp.txHash, stamp.nonce]) },
    time: { seed: sequentialWork.seed, checkpoints: [...sequentialWork.checkpoints] },
  });
}

const hash32 = bytes({ length: 32 });
const uint = z.int().min(0);

const proofSchema = z.strictObject({
  v: z.literal(BLOCK_PROOF_VERSION),
  space: z.strictObject({
    root: hash32,
    address: z.string().min(1).max(MAX_ADDRESS_LENGTH),
    signature: bytes({ length: ED25519_SIGNATURE_BYTES }),
    answers: z
      .array(
        z.strictObject({
          index: uint,
          block: bytes({ max: MAX_SLOTS_PER_BLOCK * SLOT_NONCE_BYTES }),
          path: z.array(hash32).max(MAX_PATH_LENGTH),
        }),
      )
      .max(MAX_CHALLENGE_COUNT),
  }),
  // Checked by `parseStamps`: a zod tuple per stamp would cost more than the rest of decoding.
  work: z.strictObject({ stamps: z.array(z.unknown()).max(MAX_STAMPS_PER_PROOF) }),
  time: z.strictObject({
    seed: hash32,
    checkpoints: z.array(hash32).min(1).max(MAX_CHECKPOINTS),
  }),
});

function malformed(message: string, detail: Record<string, unknown> = {}): ProofError {
  return new ProofError(ProofErrorCode.MALFORMED, message, detail);
}

/** `[txHash, nonce]` pairs: 32 bytes and a non-negative safe integer. */
function parseStamps(values: readonly unknown[]): TransactionStamp[] {
  return values.map((value, index) => {
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      value[0] instanceof Uint8Array &&
      value[0].length === 32 &&
      Number.isSafeInteger(value[1]) &&
      (value[1] as number) >= 0
    ) {
      return { txHash: value[0], nonce: value[1] as number };
    }
    throw malformed(
      `consensusProof.work.stamps[${index}]: expected [32-byte txHash, non-negative integer nonce]`,
      { index },
    );
  });
}

/**
 * Decodes `header.consensusProof`. Throws `ProofError` with `MALFORMED` (not CBOR, trailing
 * bytes, wrong shape, out of bounds, unknown keys), `NOT_CANONICAL` or `UNSUPPORTED_VERSION`,
 * and nothing else; a decoded proof still has to be verified.
 */
export function decodeBlockProof(encoded: Uint8Array): BlockProof {
  if (!(encoded instanceof Uint8Array)) throw malformed('consensus proof must be bytes');
  let value: unknown;
  try {
    value = decodeCanonical(encoded);
  } catch (error) {
    if (!(error instanceof CborError)) throw error;
    const code =
      error.code === CborErrorCode.NOT_CANONICAL
        ? ProofErrorCode.NOT_CANONICAL
        : ProofErrorCode.MALFORMED;
    throw new ProofError(code, `consensus proof: ${error.message}`, {}, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !('v' in value)) {
    throw malformed('consensus proof is not a versioned map');
  }
  if (value.v !== BLOCK_PROOF_VERSION) {
    throw new ProofError(
      ProofErrorCode.UNSUPPORTED_VERSION,
      'unsupported consensus proof version',
      {
        version: typeof value.v === 'number' ? value.v : String(value.v),
      },
    );
  }
  let parsed: z.infer<typeof proofSchema>;
  try {
    parsed = parseInput(proofSchema, value, 'consensusProof');
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw malformed(error.message, { issues: error.issues });
  }
  return {
    space: {
      commitmentRoot: parsed.space.root,
      address: parsed.space.address,
      addressSignature: parsed.space.signature,
      answers: parsed.space.answers,
    },
    stamps: parseStamps(parsed.work.stamps),
    sequentialWork: parsed.time,
  };
}
