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
 * PoSpace ("where"): the proposer shows it holds the plot it registered at genesis by answering
 * k challenges derived from the chain position, and names its network address under its own
 * signature for this height.
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
 * proposer, j), reduced mod N. Including the previous proof output (which contains the parent's
 * quorum certificate) keeps the challenges unknown until the parent is committed.
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
  /** The proposer's registered root; undefined if the proposer is not in the validator set. */
  readonly registeredRoot: Uint8Array | undefined;
  readonly params: SpaceParams;
}

/**
 * Checks, in order: the proposer is registered, the proof names its registered root, the
 * address signature, then for each challenge j: the answer is for challenge j, the block is
 * valid for the proposer's key (S hashes), and its Merkle path leads to the registered root.
 */
export function verifySpaceProof(
  proof: SpaceProof,
  verification: SpaceVerification,
): PartVerdict<'space'> {
  const { anchor, registeredRoot, params } = verification;
  if (registeredRoot === undefined) {
    return failure('space', SpaceFailure.PROPOSER_NOT_A_VALIDATOR, 'proposer is not a validator', {
      proposer: toHex(anchor.proposer),
    });
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

/**
 * The once-per-validator registration of a storage commitment (made at genesis): the validator
 * signs its root, address and the space parameters the root was built under.
 */
export interface StorageRegistration {
  readonly publicKey: Uint8Array;
  readonly commitmentRoot: Uint8Array;
  readonly address: string;
  readonly signature: Uint8Array;
}

export function registrationSignBytes(
  chainId: string,
  params: SpaceParams,
  publicKey: Uint8Array,
  commitmentRoot: Uint8Array,
  address: string,
): Uint8Array {
  return encodeCanonical([
    'hypermesh/pospace/registration',
    1,
    chainId,
    [params.blockCount, params.slotsPerBlock, params.slotDifficulty],
    publicKey,
    commitmentRoot,
    address,
  ]);
}

export function registerStoragePlot(
  plot: StoragePlot,
  registration: {
    readonly chainId: string;
    readonly address: string;
    readonly privateKey: KeyObject;
  },
): StorageRegistration {
  requireAddress(registration.address);
  requireOwnKey(registration.privateKey, plot.publicKey, 'registration');
  const commitmentRoot = plot.root;
  const signed = registrationSignBytes(
    registration.chainId,
    plot.params,
    plot.publicKey,
    commitmentRoot,
    registration.address,
  );
  return {
    publicKey: plot.publicKey.slice(),
    commitmentRoot,
    address: registration.address,
    signature: ed25519Sign(signed, registration.privateKey),
  };
}

/** True if the registration is signed by its key for this chain and these space parameters. */
export function verifyStorageRegistration(
  registration: StorageRegistration,
  chainId: string,
  params: SpaceParams,
): boolean {
  const signed = registrationSignBytes(
    chainId,
    params,
    registration.publicKey,
    registration.commitmentRoot,
    registration.address,
  );
  return ed25519Verify(registration.signature, signed, registration.publicKey);
}
