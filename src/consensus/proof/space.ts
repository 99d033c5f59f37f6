import type { KeyObject } from 'node:crypto';
import { encodeCanonical } from '../../codec/cbor.js';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { ed25519RawPublicKey, ed25519Sign, ed25519Verify } from '../../crypto/ed25519.js';
import { leafHash, verifyInclusion } from '../../crypto/merkle.js';
import type { ProofAnchor } from './anchor.js';
import { anchorDigest } from './anchor.js';
import { invalidInput } from './errors.js';
import { indexFromDigest, u32 } from './hashing.js';
import type { SpaceParams } from './params.js';
import type { StorageChallengeAnswer, StoragePlot } from './storage-plot.js';
import { isStorageBlockOf, storageBlockBytes } from './storage-plot.js';
import type { PartVerdict } from './verdict.js';
import { failure, SpaceFailure, VALID } from './verdict.js';

/**
 * PoSpace ("where"): the proposer shows it holds the plot whose root its validator entry carries
 * (fixed at genesis) by answering k challenges derived from the chain position, and names its
 * network address under its own signature for this height.
 */
export interface SpaceProof {
  /** Must equal the proposer's registered storage root. */
  readonly commitmentRoot: Uint8Array;
  /** The proposer's network address, e.g. a STOQ URL; taken from its configuration. */
  readonly address: string;
  /** Ed25519 signature by the proposer over `addressSignBytes`. */
  readonly addressSignature: Uint8Array;
  readonly answers: readonly StorageChallengeAnswer[];
}

export const MAX_ADDRESS_LENGTH = 256;

/**
 * Challenge j: SHA-256-tagged digest of (chain id, height, parent hash, previous proof output,
 * proposer, j), reduced mod N. The parent hash keeps the challenges unknown until the parent
 * block exists, so answers cannot be prepared ahead of the chain.
 */
export function storageChallenges(anchor: ProofAnchor, params: SpaceParams): number[] {
  const challenges: number[] = [];
  for (let j = 0; j < params.challengeCount; j++) {
    const digest = anchorDigest('hypermesh/pospace/challenge', anchor, u32(j));
    challenges.push(indexFromDigest(digest, params.blockCount));
  }
  return challenges;
}

/** What the proposer signs to certify its address for this height and commitment. */
export function addressSignBytes(
  anchor: ProofAnchor,
  address: string,
  commitmentRoot: Uint8Array,
): Uint8Array {
  return encodeCanonical([
    'hypermesh/pospace/address',
    1,
    anchor.chainId,
    anchor.height,
    anchor.parentHash,
    address,
    commitmentRoot,
  ]);
}

function requireAddress(address: unknown): asserts address is string {
  if (typeof address !== 'string' || address.length === 0 || address.length > MAX_ADDRESS_LENGTH) {
    throw invalidInput(`address must be a string of 1..${MAX_ADDRESS_LENGTH} characters`);
  }
}

function requireOwnKey(privateKey: KeyObject, publicKey: Uint8Array, what: string): void {
  if (!bytesEqual(ed25519RawPublicKey(privateKey), publicKey)) {
    throw invalidInput(`${what}: the signing key is not the key the plot belongs to`);
  }
}

export interface SpaceProofInput {
  readonly plot: StoragePlot;
  readonly anchor: ProofAnchor;
  readonly address: string;
  /** The proposer's Ed25519 private key; must match `plot.publicKey` and `anchor.proposer`. */
  readonly privateKey: KeyObject;
}

export function buildSpaceProof(input: SpaceProofInput): SpaceProof {
  const { plot, anchor, address, privateKey } = input;
  requireAddress(address);
  if (!bytesEqual(plot.publicKey, anchor.proposer)) {
    throw invalidInput('the plot belongs to another validator than the proposer');
  }
  requireOwnKey(privateKey, plot.publicKey, 'space proof');
  const commitmentRoot = plot.root;
  return {
    commitmentRoot,
    address,
    addressSignature: ed25519Sign(addressSignBytes(anchor, address, commitmentRoot), privateKey),
    answers: storageChallenges(anchor, plot.params).map((index) => plot.answer(index)),
  };
}

export interface SpaceVerification {
  readonly anchor: ProofAnchor;
  /** The proposer's registered storage root; undefined if its validator entry has none. */
  readonly registeredRoot: Uint8Array | undefined;
  readonly params: SpaceParams;
}

/**
 * Checks, in order: the proposer has a registered root, the proof names it, the
 * address signature, then for each challenge j: the answer is for challenge j, the block is
 * valid for the proposer's key (S hashes), and its Merkle path leads to the registered root.
 */
export function verifySpaceProof(
  proof: SpaceProof,
  verification: SpaceVerification,
): PartVerdict<'space'> {
  const { anchor, registeredRoot, params } = verification;
  if (registeredRoot === undefined) {
    return failure(
      'space',
      SpaceFailure.NO_REGISTERED_COMMITMENT,
      "the proposer's validator entry has no storage root",
      { proposer: toHex(anchor.proposer) },
    );
  }
  if (!bytesEqual(proof.commitmentRoot, registeredRoot)) {
    return failure(
      'space',
      SpaceFailure.UNREGISTERED_COMMITMENT,
      "the proof's commitment root is not the proposer's registered root",
      { registered: toHex(registeredRoot), claimed: toHex(proof.commitmentRoot) },
    );
  }
  const signed = addressSignBytes(anchor, proof.address, proof.commitmentRoot);
  if (!ed25519Verify(proof.addressSignature, signed, anchor.proposer)) {
    return failure(
      'space',
      SpaceFailure.INVALID_ADDRESS_SIGNATURE,
      "the address is not signed by the proposer's key for this height",
      { address: proof.address },
    );
  }
  const challenges = storageChallenges(anchor, params);
  if (proof.answers.length !== challenges.length) {
    return failure(
      'space',
      SpaceFailure.WRONG_CHALLENGE_COUNT,
      `expected ${challenges.length} challenge answers, got ${proof.answers.length}`,
      { expected: challenges.length, actual: proof.answers.length },
    );
  }
  const blockBytes = storageBlockBytes(params);
  for (const [j, answer] of proof.answers.entries()) {
    const expected = challenges[j] as number;
    if (answer.index !== expected) {
      return failure(
        'space',
        SpaceFailure.WRONG_CHALLENGE_INDEX,
        `answer ${j} is for block ${answer.index}, challenge ${j} is block ${expected}`,
        { challenge: j, expected, actual: answer.index },
      );
    }
    if (answer.block.length !== blockBytes) {
      return failure(
        'space',
        SpaceFailure.MALFORMED_BLOCK,
        `answer ${j}: a block is ${blockBytes} bytes, got ${answer.block.length}`,
        { challenge: j, expected: blockBytes, actual: answer.block.length },
      );
    }
    if (!isStorageBlockOf(anchor.proposer, answer.index, answer.block, params)) {
      return failure(
        'space',
        SpaceFailure.BLOCK_NOT_DERIVED_FROM_KEY,
        `answer ${j}: block ${answer.index} has a slot whose nonce does not meet difficulty ${params.slotDifficulty} for the proposer's key`,
        { challenge: j, index: answer.index },
      );
    }
    const leaf = leafHash(answer.block);
    if (!verifyInclusion(leaf, answer.index, params.blockCount, answer.path, registeredRoot)) {
      return failure(
        'space',
        SpaceFailure.INVALID_MERKLE_PATH,
        `answer ${j}: the inclusion path of block ${answer.index} does not lead to the registered root`,
        { challenge: j, index: answer.index },
      );
    }
  }
  return VALID;
}
