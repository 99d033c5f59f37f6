import { z } from 'zod';
import { HyperMeshError } from '../../codec/error.js';
import { parseInput } from '../../codec/schema.js';
import { checkQuorumCertificate } from '../../consensus/commit.js';
import { genesisValidatorSet, type GenesisDocument } from '../../consensus/genesis.js';
import { blockHash } from '../../consensus/messages.js';
import type { BlockHeader, QuorumCertificate } from '../../consensus/types.js';
import { validatorAddress } from '../../consensus/validator-set.js';
import { pqSignatureVerifier } from '../../consensus/verify.js';
import { decodeQuorumCertificate, encodeQuorumCertificate } from '../../consensus/wire.js';
import { bytesEqual, fromHex, toBase64, toHex } from '../../crypto/bytes.js';
import type { FalconBackend } from '../../crypto/falcon.js';
import { decodeStateProof, verifyStateProof } from '../../storage/index.js';
import { verifySignatures, type CheckpointVerifierSet } from '../ct/checkpoint.js';
import { caStateKey } from './state.js';
import { TREE_HEAD_KEY, decodeTreeHead, treeHeadRoot } from './tree-head.js';

/**
 * A quorum-signed checkpoint of the transparency log (docs/ct.md, "Quorum-signed tree head"):
 * block H's header, its commit (the validators' precommits, Ed25519 and FALCON-1024), and the
 * state proof of `ca/ct/head` against `header.appStateRoot`. Anyone holding the genesis
 * document checks it offline: the commit certifies the header (the engine's own
 * `checkQuorumCertificate`), the header names the state root, the proof opens the tree head in
 * it. The size, root and time written beside are claims, checked against the proven head.
 */
export const QUORUM_CHECKPOINT_FORMAT = 'hypermesh-ct-quorum-checkpoint';

export enum QuorumCheckpointErrorCode {
  /** Not the JSON form (wrong format, version, field, hex). */
  MALFORMED = 'CT_QC_MALFORMED',
  /** Another chain's header, or an origin that is not this chain's log. */
  WRONG_CHAIN = 'CT_QC_WRONG_CHAIN',
  /** The header's validator set is not the genesis set: it needs the set's handover chain. */
  VALIDATOR_SET_CHANGED = 'CT_QC_VALIDATOR_SET_CHANGED',
  /** The commit is not a valid quorum certificate of the header; `detail.reason` says why. */
  INVALID_COMMIT = 'CT_QC_INVALID_COMMIT',
  /** The state proof does not open `ca/ct/head` to the value against the header's state root. */
  INVALID_STATE_PROOF = 'CT_QC_INVALID_STATE_PROOF',
  /** The proven tree head is not what the checkpoint claims (size, root, height or time). */
  CLAIM_MISMATCH = 'CT_QC_CLAIM_MISMATCH',
  /** A served checkpoint that no genesis validator signed (or with a bad signature). */
  UNSIGNED_SERVED_CHECKPOINT = 'CT_QC_UNSIGNED_SERVED_CHECKPOINT',
}

export class QuorumCheckpointError extends HyperMeshError<QuorumCheckpointErrorCode> {}

const C = QuorumCheckpointErrorCode;

/** The log's identity: one origin per chain, the same on every node. */
export function ctLogOrigin(chainId: string): string {
  return `${chainId}/ct/log`;
}

export interface QuorumCheckpoint {
  readonly header: BlockHeader;
  readonly commit: QuorumCertificate;
  /** The stored `ca/ct/head` value at the header's height (null: nothing published yet). */
  readonly value: Uint8Array | null;
  /** Encoded state proof (storage/state-proof.ts) of that value. */
  readonly proof: Uint8Array;
}

/** What a valid checkpoint proves: the log at `size` has `root`, as of block `height`. */
export interface VerifiedQuorumCheckpoint {
  readonly origin: string;
  readonly chainId: string;
  readonly size: number;
  readonly root: Uint8Array;
  /** The block whose commit signs the head, and the block that last appended (its time). */
  readonly height: number;
  readonly appendedAt: number;
  readonly timestamp: number;
  /** The time (ms) of block `height`, from its committed header: what the head holds as of. */
  readonly blockTime: number;
  readonly blockHash: Uint8Array;
  /** Validators whose precommits are in the commit, and how many carry FALCON signatures. */
  readonly signers: readonly string[];
  readonly falconSignatures: number;
}

const hex = (what: string, length?: number) =>
  z
    .string()
    .regex(/^([0-9a-f]{2})*$/, `${what} must be lowercase hex`)
    .refine((s) => length === undefined || s.length === 2 * length, `${what}: ${length} bytes`);
const uint = z.int().min(0).max(Number.MAX_SAFE_INTEGER);

const jsonSchema = z.strictObject({
  format: z.literal(QUORUM_CHECKPOINT_FORMAT),
  version: z.literal(1),
  origin: z.string().max(200),
  treeSize: uint,
  rootHash: hex('rootHash', 32),
  height: uint,
  appendedAt: uint,
  timestamp: uint,
  header: z.strictObject({
    chainId: z.string().max(64),
    height: uint,
    time: uint,
    parentHash: hex('parentHash', 32),
    transactionsRoot: hex('transactionsRoot', 32),
    evidenceRoot: hex('evidenceRoot', 32),
    lastCommitHash: hex('lastCommitHash', 32),
    appStateRoot: hex('appStateRoot', 32),
    validatorsHash: hex('validatorsHash', 32),
    proposer: z.string().max(64),
    consensusProof: hex('consensusProof').max(2 * 4 * 1024 * 1024),
  }),
  commit: hex('commit').max(2 * 4 * 1024 * 1024),
  value: hex('value')
    .max(16 * 1024)
    .nullable(),
  proof: hex('proof').max(64 * 1024),
});

export type QuorumCheckpointJson = z.infer<typeof jsonSchema>;

function headerJson(header: BlockHeader): QuorumCheckpointJson['header'] {
  return {
    chainId: header.chainId,
    height: header.height,
    time: header.time,
    parentHash: toHex(header.parentHash),
    transactionsRoot: toHex(header.transactionsRoot),
    evidenceRoot: toHex(header.evidenceRoot),
    lastCommitHash: toHex(header.lastCommitHash),
    appStateRoot: toHex(header.appStateRoot),
    validatorsHash: toHex(header.validatorsHash),
    proposer: header.proposer,
    consensusProof: toHex(header.consensusProof),
  };
}

function headerOf(json: QuorumCheckpointJson['header']): BlockHeader {
  return {
    chainId: json.chainId,
    height: json.height,
    time: json.time,
    parentHash: fromHex(json.parentHash),
    transactionsRoot: fromHex(json.transactionsRoot),
    evidenceRoot: fromHex(json.evidenceRoot),
    lastCommitHash: fromHex(json.lastCommitHash),
    appStateRoot: fromHex(json.appStateRoot),
    validatorsHash: fromHex(json.validatorsHash),
    proposer: json.proposer,
    consensusProof: fromHex(json.consensusProof),
  };
}

/**
 * The JSON file `hypermesh ct sth --cluster` writes: the checkpoint and, for people, its claims
 * (origin, size, root, heights, time), all re-derived by `parseQuorumCheckpoint` + verify.
 */
export function quorumCheckpointToJson(checkpoint: QuorumCheckpoint): string {
  return `${JSON.stringify(quorumCheckpointJson(checkpoint), null, 2)}\n`;
}

/** The JSON object of `quorumCheckpointToJson` (embedded as is in a certificate proof). */
export function quorumCheckpointJson(checkpoint: QuorumCheckpoint): QuorumCheckpointJson {
  const head = decodeTreeHead(checkpoint.value);
  return {
    format: QUORUM_CHECKPOINT_FORMAT,
    version: 1,
    origin: ctLogOrigin(checkpoint.header.chainId),
    treeSize: head.range.size,
    rootHash: toHex(treeHeadRoot(head)),
    height: checkpoint.header.height,
    appendedAt: head.height,
    timestamp: head.time,
    header: headerJson(checkpoint.header),
    commit: toHex(encodeQuorumCertificate(checkpoint.commit)),
    value: checkpoint.value === null ? null : toHex(checkpoint.value),
    proof: toHex(checkpoint.proof),
  };
}

/** Parses the JSON form; throws `MALFORMED` naming the field. Claims are not checked here. */
export function parseQuorumCheckpoint(text: string): {
  readonly checkpoint: QuorumCheckpoint;
  readonly claims: QuorumCheckpointJson;
} {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new QuorumCheckpointError(C.MALFORMED, `not JSON: ${(error as Error).message}`);
  }
  return quorumCheckpointFromJson(raw);
}

/**
 * `parseQuorumCheckpoint` for a value already parsed from JSON (`what` names it in errors);
 * throws `MALFORMED` naming the field.
 */
export function quorumCheckpointFromJson(
  raw: unknown,
  what = 'checkpoint',
): {
  readonly checkpoint: QuorumCheckpoint;
  readonly claims: QuorumCheckpointJson;
} {
  let json: QuorumCheckpointJson;
  try {
    json = parseInput(jsonSchema, raw, what);
  } catch (error) {
    throw new QuorumCheckpointError(C.MALFORMED, (error as Error).message);
  }
  let commit: QuorumCertificate;
  try {
    commit = decodeQuorumCertificate(fromHex(json.commit));
  } catch (error) {
    throw new QuorumCheckpointError(
      C.MALFORMED,
      `${what}.commit does not decode: ${(error as Error).message}`,
    );
  }
  return {
    checkpoint: {
      header: headerOf(json.header),
      commit,
      value: json.value === null ? null : fromHex(json.value),
      proof: fromHex(json.proof),
    },
    claims: json,
  };
}

/**
 * Checks a checkpoint against the genesis document (its validator set, Ed25519 and FALCON-1024
 * keys, `requirePq`), and its claims if given. Throws `QuorumCheckpointError`; the first
 * failing step is reported: chain, validator set, commit, state proof, claims.
 */
export function verifyQuorumCheckpoint(
  checkpoint: QuorumCheckpoint,
  genesis: GenesisDocument,
  falcon: FalconBackend,
  claims?: QuorumCheckpointJson,
): VerifiedQuorumCheckpoint {
  const { header, commit } = checkpoint;
  const origin = ctLogOrigin(genesis.chainId);
  if (header.chainId !== genesis.chainId) {
    throw new QuorumCheckpointError(
      C.WRONG_CHAIN,
      `the header is of chain ${JSON.stringify(header.chainId)}, not ${JSON.stringify(genesis.chainId)}`,
    );
  }
  if (claims !== undefined && claims.origin !== origin) {
    throw new QuorumCheckpointError(
      C.WRONG_CHAIN,
      `origin ${JSON.stringify(claims.origin)} is not this chain's log ${JSON.stringify(origin)}`,
    );
  }
  const validators = genesisValidatorSet(genesis);
  if (!bytesEqual(header.validatorsHash, validators.hash)) {
    throw new QuorumCheckpointError(
      C.VALIDATOR_SET_CHANGED,
      `block ${header.height} is decided by another validator set than the genesis set; ` +
        'check its handover with `hypermesh block verify`',
      { validatorsHash: toHex(header.validatorsHash), genesisSet: toHex(validators.hash) },
    );
  }
  const hash = blockHash(header);
  const refusal = checkQuorumCertificate(
    {
      chainId: genesis.chainId,
      validators,
      verifier: pqSignatureVerifier(falcon),
      requirePq: genesis.consensus.requirePq,
    },
    commit,
    { height: header.height, blockHash: hash },
  );
  if (refusal !== undefined) {
    throw new QuorumCheckpointError(
      C.INVALID_COMMIT,
      `the commit does not certify block ${header.height}: ${refusal.message}`,
      { ...refusal.detail },
    );
  }
  let proofOk: boolean;
  try {
    proofOk = verifyStateProof(
      header.appStateRoot,
      caStateKey(TREE_HEAD_KEY),
      checkpoint.value,
      decodeStateProof(checkpoint.proof),
    );
  } catch (error) {
    throw new QuorumCheckpointError(
      C.INVALID_STATE_PROOF,
      `the state proof does not decode: ${(error as Error).message}`,
    );
  }
  if (!proofOk) {
    throw new QuorumCheckpointError(
      C.INVALID_STATE_PROOF,
      `the state proof does not open ca/ct/head to this value under block ${header.height}'s state root`,
    );
  }
  let head;
  try {
    head = decodeTreeHead(checkpoint.value);
  } catch (error) {
    throw new QuorumCheckpointError(C.MALFORMED, (error as Error).message);
  }
  const nameOf = new Map(
    genesis.validators.map((validator) => [validatorAddress(validator.publicKey), validator.name]),
  );
  const verified: VerifiedQuorumCheckpoint = {
    origin,
    chainId: genesis.chainId,
    size: head.range.size,
    root: treeHeadRoot(head),
    height: header.height,
    appendedAt: head.height,
    timestamp: head.time,
    blockTime: header.time,
    blockHash: hash,
    signers: commit.precommits.map((vote) => nameOf.get(vote.validator) ?? vote.validator),
    falconSignatures: commit.precommits.filter((vote) => vote.pqSignature !== undefined).length,
  };
  if (claims !== undefined) checkClaims(verified, claims);
  return verified;
}

function checkClaims(verified: VerifiedQuorumCheckpoint, claims: QuorumCheckpointJson): void {
  const mismatch = (field: string, claimed: unknown, proven: unknown): never => {
    throw new QuorumCheckpointError(
      C.CLAIM_MISMATCH,
      `${field}: the checkpoint claims ${String(claimed)}, the proven tree head has ${String(proven)}`,
      { field, claimed, proven },
    );
  };
  if (claims.treeSize !== verified.size) mismatch('treeSize', claims.treeSize, verified.size);
  if (claims.rootHash !== toHex(verified.root)) {
    mismatch('rootHash', claims.rootHash, toHex(verified.root));
  }
  if (claims.height !== verified.height) mismatch('height', claims.height, verified.height);
  if (claims.appendedAt !== verified.appendedAt) {
    mismatch('appendedAt', claims.appendedAt, verified.appendedAt);
  }
  if (claims.timestamp !== verified.timestamp) {
    mismatch('timestamp', claims.timestamp, verified.timestamp);
  }
}

/** How a node's served checkpoint (`/checkpoint`) relates to a verified quorum checkpoint. */
export type ServedComparison =
  | {
      readonly kind: 'same';
      readonly size: number;
      readonly signers: readonly string[];
    }
  | {
      readonly kind: 'split-view';
      readonly size: number;
      readonly quorumRoot: string;
      readonly servedRoot: string;
      /** The genesis validators whose Ed25519 lines on the served note verified. */
      readonly signers: readonly string[];
    }
  | {
      readonly kind: 'other-size';
      readonly size: number;
      readonly servedSize: number;
      readonly servedRoot: Uint8Array;
      readonly signers: readonly string[];
    };

/** The genesis validators as cosigners of the log's checkpoints (key name `<origin>/<name>`). */
export function validatorCosigners(genesis: GenesisDocument): CheckpointVerifierSet {
  const origin = ctLogOrigin(genesis.chainId);
  return {
    origin,
    cosigners: genesis.validators.map((validator) => ({
      name: `${origin}/${validator.name}`,
      publicKey: validator.publicKey,
      weight: validator.power,
    })),
  };
}

/**
 * Compares a node's signed note (its `/checkpoint`) with the quorum's head. The note must carry
 * at least one verifying Ed25519 line by a genesis validator (nodes sign with their identity
 * key), so a differing root at the same size is attributable: the quorum signed one root, that
 * validator the other — split-view evidence (RFC 9162 §8.3).
 */
export function compareServedCheckpoint(
  verified: VerifiedQuorumCheckpoint,
  note: string,
  genesis: GenesisDocument,
): ServedComparison {
  let served;
  try {
    served = verifySignatures(note, validatorCosigners(genesis));
  } catch (error) {
    throw new QuorumCheckpointError(
      C.UNSIGNED_SERVED_CHECKPOINT,
      `the served checkpoint does not verify: ${(error as Error).message}`,
      { ...((error as HyperMeshError).detail ?? {}) },
    );
  }
  if (served.cosigners.length === 0) {
    throw new QuorumCheckpointError(
      C.UNSIGNED_SERVED_CHECKPOINT,
      'the served checkpoint carries no signature by a genesis validator',
    );
  }
  const signers = served.cosigners.map((name) => name.slice(verified.origin.length + 1));
  const { size, root } = served.checkpoint;
  if (size !== verified.size) {
    return { kind: 'other-size', size: verified.size, servedSize: size, servedRoot: root, signers };
  }
  if (bytesEqual(root, verified.root)) return { kind: 'same', size, signers };
  return {
    kind: 'split-view',
    size,
    quorumRoot: toBase64(verified.root),
    servedRoot: toBase64(root),
    signers,
  };
}
