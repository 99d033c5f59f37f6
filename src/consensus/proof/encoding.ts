import { z } from 'zod';
import { CborError, CborErrorCode, decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput, SchemaError } from '../../codec/schema.js';
import {
  FALCON1024_MAX_SIGNATURE_BYTES,
  FALCON1024_MIN_SIGNATURE_BYTES,
  FALCON_ALGORITHM_ID,
} from '../../crypto/falcon.js';
import { ProofError, ProofErrorCode } from './errors.js';
import { MAX_CHALLENGE_COUNT, MAX_CHECKPOINTS, MAX_SLOTS_PER_BLOCK } from './params.js';
import type { CommitSignature } from './precommit.js';
import type { QuorumCertificate } from './quorum-certificate.js';
import type { SequentialWork } from './sequential-work.js';
import type { SpaceProof } from './space.js';
import { MAX_ADDRESS_LENGTH } from './space.js';
import { SLOT_NONCE_BYTES } from './storage-plot.js';
import type { TimeProof } from './time.js';
import { MAX_VALIDATORS } from './validators.js';
import type { WorkProof } from './work.js';

/**
 * Deterministic CBOR (RFC 8949 §4.2.1) of the consensus proof and of its proposer-built parts.
 * The top level is a map whose `v` key carries the version, so a later format can be told
 * apart. Absent optional fields are omitted (never encoded as null). Stamps, the one list that
 * grows with the block, are [txHash, nonce] pairs rather than maps: a third the size, and
 * faster to encode canonically (no key sorting).
 *
 *   { v: 1,
 *     space: { commitmentRoot, address, addressSignature, answers: [{ index, block, path }] },
 *     stake: { height, round, blockHash, signatures: [{ validator, timestamp, signature,
 *                                                       falcon?: { alg, signature } }] },
 *     work:  { stamps: [[txHash, nonce]] },
 *     time:  { bftTime, sequentialWork: { seed, checkpoints } } }
 */
export const CONSENSUS_PROOF_VERSION = 1;

/** Bounds on decoded sizes, so hostile input cannot make the verifier allocate without limit. */
export const MAX_PATH_LENGTH = 64;
export const MAX_TRANSACTIONS_PER_PROOF = 1_000_000;

/** The proof: the proposer's parts plus the quorum certificate and the BFT time. */
export interface ConsensusProof {
  readonly version: typeof CONSENSUS_PROOF_VERSION;
  readonly space: SpaceProof;
  readonly stake: QuorumCertificate;
  readonly work: WorkProof;
  readonly time: TimeProof;
}

/** The parts the proposer builds before proposing; the header commits to their hash. */
export interface ProposerProof {
  readonly space: SpaceProof;
  readonly work: WorkProof;
  readonly sequentialWork: SequentialWork;
}

function spaceValue(space: SpaceProof) {
  return {
    commitmentRoot: space.commitmentRoot,
    address: space.address,
    addressSignature: space.addressSignature,
    answers: space.answers.map((answer) => ({
      index: answer.index,
      block: answer.block,
      path: [...answer.path],
    })),
  };
}

function signatureValue(signature: CommitSignature) {
  return {
    validator: signature.validator,
    timestamp: signature.timestamp,
    signature: signature.signature,
    ...(signature.falcon === undefined
      ? {}
      : { falcon: { alg: signature.falcon.alg, signature: signature.falcon.signature } }),
  };
}

function stakeValue(qc: QuorumCertificate) {
  return {
    height: qc.height,
    round: qc.round,
    blockHash: qc.blockHash,
    signatures: qc.signatures.map(signatureValue),
  };
}

function workValue(work: WorkProof) {
  return { stamps: work.stamps.map((stamp) => [stamp.txHash, stamp.nonce]) };
}

function sequentialWorkValue(work: SequentialWork) {
  return { seed: work.seed, checkpoints: [...work.checkpoints] };
}

function timeValue(time: TimeProof) {
  return { bftTime: time.bftTime, sequentialWork: sequentialWorkValue(time.sequentialWork) };
}

export function encodeConsensusProof(proof: ConsensusProof): Uint8Array {
  return encodeCanonical({
    v: CONSENSUS_PROOF_VERSION,
    space: spaceValue(proof.space),
    stake: stakeValue(proof.stake),
    work: workValue(proof.work),
    time: timeValue(proof.time),
  });
}

export function encodeProposerProof(proof: ProposerProof): Uint8Array {
  return encodeCanonical({
    v: CONSENSUS_PROOF_VERSION,
    space: spaceValue(proof.space),
    work: workValue(proof.work),
    sequentialWork: sequentialWorkValue(proof.sequentialWork),
  });
}

/** Encoded quorum certificate (the Fiat–Shamir binding of sampled chain checks). */
export function encodeQuorumCertificate(qc: QuorumCertificate): Uint8Array {
  return encodeCanonical({ v: CONSENSUS_PROOF_VERSION, stake: stakeValue(qc) });
}

const hash32 = bytes({ length: 32 });
const uint = z.int().min(0);

const spaceSchema = z.strictObject({
  commitmentRoot: hash32,
  address: z.string().min(1).max(MAX_ADDRESS_LENGTH),
  addressSignature: bytes({ length: 64 }),
  answers: z
    .array(
      z.strictObject({
        index: uint,
        block: bytes({ max: MAX_SLOTS_PER_BLOCK * SLOT_NONCE_BYTES }),
        path: z.array(hash32).max(MAX_PATH_LENGTH),
      }),
    )
    .max(MAX_CHALLENGE_COUNT),
});

const stakeSchema = z.strictObject({
  height: z.int().min(1),
  round: uint,
  blockHash: hash32,
  signatures: z
    .array(
      z.strictObject({
        validator: hash32,
        timestamp: uint,
        signature: bytes({ length: 64 }),
        falcon: z
          .strictObject({
            alg: z.literal(FALCON_ALGORITHM_ID),
            signature: bytes({
              min: FALCON1024_MIN_SIGNATURE_BYTES,
              max: FALCON1024_MAX_SIGNATURE_BYTES,
            }),
          })
          .optional(),
      }),
    )
    .max(MAX_VALIDATORS),
});

const workSchema = z.strictObject({
  stamps: z.array(z.tuple([hash32, uint])).max(MAX_TRANSACTIONS_PER_PROOF),
});

const sequentialWorkSchema = z.strictObject({
  seed: hash32,
  checkpoints: z.array(hash32).min(1).max(MAX_CHECKPOINTS),
});

const proofSchema = z.strictObject({
  v: z.literal(CONSENSUS_PROOF_VERSION),
  space: spaceSchema,
  stake: stakeSchema,
  work: workSchema,
  time: z.strictObject({ bftTime: uint, sequentialWork: sequentialWorkSchema }),
});

function malformed(message: string, detail: Record<string, unknown> = {}): ProofError {
  return new ProofError(ProofErrorCode.MALFORMED, message, detail);
}

/** Parses a decoded value as a v1 proof; throws `ProofError` (never anything else). */
function parseProof(value: unknown): ConsensusProof {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !('v' in value)) {
    throw malformed('consensus proof is not a versioned map');
  }
  if (value.v !== CONSENSUS_PROOF_VERSION) {
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
    parsed = parseInput(proofSchema, value, 'proof');
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw malformed(error.message, { issues: error.issues });
  }
  const { v: _version, work, ...parts } = parsed;
  return {
    version: CONSENSUS_PROOF_VERSION,
    ...parts,
    work: { stamps: work.stamps.map(([txHash, nonce]) => ({ txHash, nonce })) },
  };
}

/**
 * Decodes bytes from the network or the store. Throws `ProofError` with `MALFORMED`,
 * `NOT_CANONICAL` or `UNSUPPORTED_VERSION`; a decoded proof still has to be verified.
 */
export function decodeConsensusProof(encoded: Uint8Array): ConsensusProof {
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
  return parseProof(value);
}

/**
 * Throws `PROOF_MALFORMED` unless `proof` has the shape and bounds of a v1 proof — for values
 * that did not come from `decodeConsensusProof`.
 */
export function assertConsensusProof(proof: ConsensusProof): void {
  const { version, work, ...parts } = proof;
  parseProof({ v: version, ...parts, work: workValue(work) });
}
