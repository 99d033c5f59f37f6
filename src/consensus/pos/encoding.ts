import { z } from 'zod';
import { CborError, CborErrorCode, decodeStrict, encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput, SchemaError } from '../../codec/schema.js';
import { bytesEqual } from '../../crypto/bytes.js';
import { ED25519_SIGNATURE_BYTES } from '../../crypto/ed25519.js';
import { ProofError, ProofErrorCode } from '../proof/errors.js';
import {
  checkpointCount,
  MAX_BLOCK_COUNT,
  MAX_CHALLENGE_COUNT,
  MAX_CHECKPOINTS,
  MAX_SLOTS_PER_BLOCK,
  type ConsensusProofParams,
} from '../proof/params.js';
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

/**
 * How large one block's `header.consensusProof` may be, in bytes and in CBOR data items
 * (`blockProofLimits`). Checked before anything is decoded: the schema's bounds apply only to a
 * decoded value, and a proof of 4 MiB of empty maps (`a0`, one byte, one object each) would cost
 * every validator a second and hundreds of MB to decode first.
 */
export interface BlockProofLimits {
  readonly maxBytes: number;
  readonly maxItems: number;
}

// Upper bounds on the encoding of an honest proof (`encodeBlockProof`), part by part. The same
// figures as genesis.ts `proposalOverheadBytes` (PROOF_FIXED_BYTES, ANSWER_FIXED_BYTES, the
// 44-byte stamp of PER_TRANSACTION_BYTES), so a genesis whose proposals fit one message also
// fits this bound. test/consensus/pos-proof-limits.test.ts encodes the largest honest proof the
// parameters allow and checks it against them.

/**
 * Keys, version, root, signature, seed and every list head (~1,000 bytes with an address of 256
 * three-byte characters), with room to spare.
 */
const PROOF_FIXED_BYTES = 2048;
/** One answer's map head, keys, index (≤ 5 bytes) and block and path heads (28 bytes). */
const ANSWER_FIXED_BYTES = 32;
/** A 32-byte hash as a CBOR byte string: a 2-byte head and the hash. */
const HASH_ITEM_BYTES = 34;
/** `[txHash, nonce]`: array head, hash item and a nonce of up to 9 bytes. */
const STAMP_BYTES = 1 + HASH_ITEM_BYTES + 9;
/** Slack on top of the exact maxima, so a bound is never the one byte an honest proof needs. */
const PROOF_SLACK_BYTES = 1024;
/** The maps, keys and scalars besides answers, stamps and checkpoints (23 items), and slack. */
const PROOF_FIXED_ITEMS = 64;
/** An answer's map, three keys, index, block and path list, besides the path's hashes. */
const ANSWER_FIXED_ITEMS = 7;
/** A stamp's pair, hash and nonce. */
const STAMP_ITEMS = 3;

/** Hashes in an RFC 6962 inclusion path of a tree of `leaves` leaves: ⌈log2 leaves⌉. */
function inclusionPathLength(leaves: number): number {
  let length = 0;
  while (2 ** length < leaves) length++;
  return length;
}

/**
 * The limits of a block's consensus proof for the genesis proof parameters and `stamps`, the
 * block's transaction count (each transaction has one stamp): with k challenges, S slots per
 * block, N plot blocks (paths of p = ⌈log2 N⌉ hashes), n stamps and c = T / C checkpoints,
 *
 *   maxBytes = 2048 + k·(32 + 4·S + 34·p) + 44·n + 34·c + 1024
 *   maxItems = 64 + k·(7 + p) + 3·n + c
 *
 * This is a consensus rule: every validator derives it from the genesis and the block alone,
 * in integers, and refuses a proof beyond it as `PROOF_MALFORMED` (docs/consensus-proof.md).
 */
export function blockProofLimits(params: ConsensusProofParams, stamps: number): BlockProofLimits {
  const { challengeCount, slotsPerBlock, blockCount } = params.space;
  const path = inclusionPathLength(blockCount);
  const checkpoints = checkpointCount(params.time);
  return {
    maxBytes:
      PROOF_FIXED_BYTES +
      challengeCount * (ANSWER_FIXED_BYTES + 4 * slotsPerBlock + HASH_ITEM_BYTES * path) +
      STAMP_BYTES * stamps +
      HASH_ITEM_BYTES * checkpoints +
      PROOF_SLACK_BYTES,
    maxItems:
      PROOF_FIXED_ITEMS +
      challengeCount * (ANSWER_FIXED_ITEMS + path) +
      STAMP_ITEMS * stamps +
      checkpoints,
  };
}

/**
 * The limits for the largest parameters genesis allows and `MAX_STAMPS_PER_PROOF` stamps: what
 * `decodeBlockProof` applies when its caller knows no block (a block's own limits are far lower).
 */
export const LARGEST_PROOF_LIMITS: BlockProofLimits = Object.freeze(
  blockProofLimits(
    {
      space: {
        blockCount: MAX_BLOCK_COUNT,
        slotsPerBlock: MAX_SLOTS_PER_BLOCK,
        slotDifficulty: 0,
        challengeCount: MAX_CHALLENGE_COUNT,
      },
      work: { stampDifficulty: 0 },
      time: { iterations: MAX_CHECKPOINTS, checkpointInterval: 1 },
    },
    MAX_STAMPS_PER_PROOF,
  ),
);

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

/** CBOR errors as proof errors: `NOT_CANONICAL` stays itself, anything else is `MALFORMED`. */
function undecodable(error: CborError): ProofError {
  const code =
    error.code === CborErrorCode.NOT_CANONICAL
      ? ProofErrorCode.NOT_CANONICAL
      : ProofErrorCode.MALFORMED;
  return new ProofError(code, `consensus proof: ${error.message}`, {}, { cause: error });
}

/**
 * Deterministic CBOR within `limits`: the length is checked before a byte is decoded, the items
 * while decoding (before a surplus item is built), canonical form after (re-encoding must give
 * the same bytes, as `decodeCanonical` does).
 */
function decodeWithin(encoded: Uint8Array, limits: BlockProofLimits): unknown {
  if (encoded.length > limits.maxBytes) {
    throw malformed(
      `consensus proof is ${encoded.length} bytes; a proof for this block is at most ${limits.maxBytes}`,
      { length: encoded.length, limit: limits.maxBytes },
    );
  }
  try {
    const value = decodeStrict(encoded, { maxItems: limits.maxItems });
    if (!bytesEqual(encodeCanonical(value), encoded)) {
      throw new CborError(
        CborErrorCode.NOT_CANONICAL,
        'CBOR item is not in RFC 8949 §4.2.1 deterministic encoding',
        { length: encoded.length },
      );
    }
    return value;
  } catch (error) {
    if (!(error instanceof CborError)) throw error;
    throw undecodable(error);
  }
}

/**
 * Decodes `header.consensusProof`. Throws `ProofError` with `MALFORMED` (longer or of more data
 * items than `limits`, not CBOR, trailing bytes, wrong shape, out of bounds, unknown keys),
 * `NOT_CANONICAL` or `UNSUPPORTED_VERSION`, and nothing else; a decoded proof still has to be
 * verified. Verifiers pass the block's own limits (`blockProofLimits`, as pos/subject.ts does);
 * the default holds any proof some genesis allows.
 */
export function decodeBlockProof(
  encoded: Uint8Array,
  limits: BlockProofLimits = LARGEST_PROOF_LIMITS,
): BlockProof {
  if (!(encoded instanceof Uint8Array)) throw malformed('consensus proof must be bytes');
  const value = decodeWithin(encoded, limits);
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
