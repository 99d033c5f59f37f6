import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import type { EvidenceInput, NodeStore } from '../../storage/index.js';
import type {
  Application,
  BlockExecutionInput,
  BlockExecutionResult,
  LastCommitInfo,
} from '../app.js';
import { checkBlock } from '../block.js';
import { checkQuorumCertificate } from '../commit.js';
import { ConsensusError, ConsensusErrorCode } from '../errors.js';
import { canonicalEvidence } from '../evidence.js';
import { checkValidatorUpdates, type HeightContext } from '../height-context.js';
import { blockHash } from '../messages.js';
import type { Block, DuplicateVoteEvidence, QuorumCertificate } from '../types.js';
import type { SignatureVerifier } from '../verify.js';
import { decodeBlock, decodeQuorumCertificate, encodeEvidence } from '../wire.js';
import { DriverError, DriverErrorCode } from './errors.js';
import type { BlockProofs, SyncedBlock } from './ports.js';

/**
 * The checks a block passes before this node votes for it or stores it from a syncing peer,
 * beyond the engine's consensus rules (`checkBlock`): the genesis size limits, the consensus proof's proposer parts, no
 * evidence that an earlier block already included, and PoWork — executing the block on the
 * latest committed state gives exactly the state root its header carries.
 */
export interface BlockCheckDeps {
  readonly chainId: string;
  readonly verifier: SignatureVerifier;
  readonly requirePq: boolean;
  readonly app: Application;
  readonly proofs: BlockProofs;
  readonly store: NodeStore;
  /** The genesis limits on a block's transactions (count and total bytes). */
  readonly maxBlockTxs: number;
  readonly maxBlockBytes: number;
}

/** Why the application half of valid(v) refused a block (a `rejected` reason). */
export enum BlockRefusal {
  TOO_LARGE = 'BLOCK_TOO_LARGE',
  PROOF_INVALID = 'PROOF_INVALID',
  EVIDENCE_ALREADY_INCLUDED = 'EVIDENCE_ALREADY_INCLUDED',
  EXECUTION_FAILED = 'EXECUTION_FAILED',
  STATE_ROOT_MISMATCH = 'STATE_ROOT_MISMATCH',
  /** The execution returned validator updates that cannot be applied (validator-set.ts). */
  INVALID_VALIDATOR_UPDATES = 'INVALID_VALIDATOR_UPDATES',
}

export type ExecutionOutcome =
  | { readonly ok: true; readonly result: BlockExecutionResult }
  | { readonly ok: false; readonly refusal: BlockRefusal; readonly error: Error };

export function executionInput(
  block: Block,
  context: Pick<HeightContext, 'parent'>,
): BlockExecutionInput {
  const lastCommit = lastCommitInfo(block.lastCommit, context);
  return {
    chainId: block.header.chainId,
    height: block.header.height,
    time: block.header.time,
    proposer: block.header.proposer,
    transactions: block.transactions,
    evidence: block.evidence,
    ...(lastCommit === undefined ? {} : { lastCommit }),
  };
}

/**
 * Who signed the previous block's commit, as the application sees it (`LastCommitInfo`): every
 * validator of the set that decided the parent (`context.parent.validators`), in address order,
 * with `signed` true when its precommit for the parent is in `lastCommit` — the quorum
 * certificate the block itself carries, so every node executing the block derives the same
 * list. Undefined at height 1 (the parent is genesis) or without a commit.
 */
export function lastCommitInfo(
  lastCommit: QuorumCertificate | null,
  context: Pick<HeightContext, 'parent'>,
): LastCommitInfo | undefined {
  const { parent } = context;
  if (parent.kind !== 'block' || lastCommit === null) return undefined;
  const signers = new Set<string>();
  for (const vote of lastCommit.precommits) {
    if (vote.blockHash !== null && bytesEqual(vote.blockHash, lastCommit.blockHash)) {
      signers.add(vote.validator);
    }
  }
  return {
    height: lastCommit.height,
    votes: parent.validators.validators.map((validator) => ({
      validator: validator.address,
      power: validator.power,
      signed: signers.has(validator.address),
    })),
  };
}

/**
 * Evidence as the store keeps it: encoded as the block carries it, and named by the SHA-256 of
 * its canonical form (`canonicalEvidence`: no FALCON signatures), so one offence re-encoded with
 * another value in that unchecked field is still found as already included.
 */
export function storedEvidence(evidence: DuplicateVoteEvidence): EvidenceInput {
  return {
    hash: sha256(encodeEvidence(canonicalEvidence(evidence))),
    bytes: encodeEvidence(evidence),
  };
}

/** Evidence of `block` that an earlier stored block already included, or undefined. */
export function includedEvidence(
  store: NodeStore,
  evidence: readonly DuplicateVoteEvidence[],
): number | undefined {
  for (const [position, item] of evidence.entries()) {
    if (store.blocks.evidence(storedEvidence(item).hash) !== null) return position;
  }
  return undefined;
}

/**
 * A refusal if `block` has more transactions, or more bytes of them, than genesis allows. The
 * header's consensus proof is bounded next, by `checkProposal`: from the genesis proof
 * parameters and the transaction count, before a byte of it is decoded (pos/encoding.ts
 * `blockProofLimits`; a longer one is `PROOF_INVALID`).
 */
export function blockSizeError(
  limits: Pick<BlockCheckDeps, 'maxBlockTxs' | 'maxBlockBytes'>,
  block: Block,
): ConsensusError | undefined {
  const count = block.transactions.length;
  if (count > limits.maxBlockTxs) {
    return new ConsensusError(
      ConsensusErrorCode.INVALID_BLOCK,
      `block ${block.header.height} has ${count} transactions; the limit is ${limits.maxBlockTxs}`,
      { height: block.header.height, count, limit: limits.maxBlockTxs },
    );
  }
  let bytes = 0;
  for (const tx of block.transactions) bytes += tx.length;
  if (bytes > limits.maxBlockBytes) {
    return new ConsensusError(
      ConsensusErrorCode.INVALID_BLOCK,
      `block ${block.header.height} has ${bytes} bytes of transactions; the limit is ${limits.maxBlockBytes}`,
      { height: block.header.height, bytes, limit: limits.maxBlockBytes },
    );
  }
  return undefined;
}

/**
 * Size, proofs, evidence and execution of `block` for `context` (see the module comment), and
 * the validator updates the execution returned: they must apply to the set of height + 1
 * (`checkValidatorUpdates`), or the block is invalid — every correct node refuses it alike.
 */
export function checkAndExecute(
  deps: BlockCheckDeps,
  context: HeightContext,
  block: Block,
): ExecutionOutcome {
  const sizeError = blockSizeError(deps, block);
  if (sizeError !== undefined) {
    return { ok: false, refusal: BlockRefusal.TOO_LARGE, error: sizeError };
  }
  let proofError: Error | undefined;
  try {
    proofError = deps.proofs.checkProposal(context, block);
  } catch (error) {
    proofError = error as Error;
  }
  if (proofError !== undefined) {
    return { ok: false, refusal: BlockRefusal.PROOF_INVALID, error: proofError };
  }
  const repeated = includedEvidence(deps.store, block.evidence);
  if (repeated !== undefined) {
    return {
      ok: false,
      refusal: BlockRefusal.EVIDENCE_ALREADY_INCLUDED,
      error: new ConsensusError(
        ConsensusErrorCode.INVALID_BLOCK,
        `evidence ${repeated} was included by an earlier block`,
        { position: repeated },
      ),
    };
  }
  let result: BlockExecutionResult;
  try {
    result = deps.app.executeBlock(executionInput(block, context));
  } catch (error) {
    return {
      ok: false,
      refusal: BlockRefusal.EXECUTION_FAILED,
      error: error instanceof Error ? error : new Error(String(error)),
    };
  }
  if (!bytesEqual(result.stateRoot, block.header.appStateRoot)) {
    return {
      ok: false,
      refusal: BlockRefusal.STATE_ROOT_MISMATCH,
      error: new DriverError(
        DriverErrorCode.STATE_ROOT_MISMATCH,
        `executing block ${block.header.height} gives another state root than its header`,
        {
          height: block.header.height,
          header: toHex(block.header.appStateRoot),
          executed: toHex(result.stateRoot),
        },
      ),
    };
  }
  const updatesError = checkValidatorUpdates(context, result.validatorUpdates);
  if (updatesError !== undefined) {
    return {
      ok: false,
      refusal: BlockRefusal.INVALID_VALIDATOR_UPDATES,
      error: new ConsensusError(
        ConsensusErrorCode.INVALID_BLOCK,
        `block ${block.header.height} returns validator updates that cannot be applied: ${updatesError.message}`,
        { height: block.header.height, ...updatesError.detail },
        { cause: updatesError },
      ),
    };
  }
  return { ok: true, result };
}

/** A block from a syncing peer that passed every check, with its execution result. */
export interface VerifiedBlock {
  readonly block: Block;
  readonly hash: Uint8Array;
  readonly commit: QuorumCertificate;
  readonly result: BlockExecutionResult;
}

function syncInvalid(height: number, message: string, cause?: unknown): DriverError {
  return new DriverError(
    DriverErrorCode.SYNC_INVALID_BLOCK,
    `synced block ${height}: ${message}`,
    { height },
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Verifies a committed block fetched from a peer for `context` (the next height to decide):
 * its commit decides it — a quorum certificate by this height's validators for exactly this
 * block, checked first — and the block passes the same rules as a proposal: `checkBlock`
 * (which checks its own last commit against the parent's validators), the proofs, and
 * re-execution with the header's state root. Throws `SYNC_OUT_OF_ORDER` or `SYNC_INVALID_BLOCK`; nothing is written.
 */
export function verifySyncedBlock(
  deps: BlockCheckDeps,
  context: HeightContext,
  synced: SyncedBlock,
): VerifiedBlock {
  const height = context.height;
  if (typeof synced !== 'object' || synced === null || synced.height !== height) {
    throw new DriverError(
      DriverErrorCode.SYNC_OUT_OF_ORDER,
      `expected block ${height} from the syncing peer`,
      { expected: height, got: typeof synced === 'object' ? synced?.height : undefined },
    );
  }
  let block: Block;
  let commit: QuorumCertificate;
  try {
    block = decodeBlock(synced.block);
    commit = decodeQuorumCertificate(synced.commit);
  } catch (error) {
    throw syncInvalid(height, 'cannot be decoded', error);
  }
  // The commit first: it refuses a block it does not certify on comparing one hash, and a
  // block it certifies was accepted by more than 2/3 of the power, so a peer serving made-up
  // blocks does not get `checkBlock`'s evidence signatures verified. Sound because both checks
  // must pass and neither reads the other's result: a decoded header always hashes, and the
  // commit is checked against this height's validators whatever the header names.
  const hash = blockHash(block.header);
  const commitError = checkQuorumCertificate(
    {
      chainId: deps.chainId,
      validators: context.schedule.validators,
      verifier: deps.verifier,
      requirePq: deps.requirePq,
    },
    commit,
    { height, blockHash: hash },
  );
  if (commitError !== undefined) {
    throw syncInvalid(height, `commit: ${commitError.message}`, commitError);
  }
  const blockError = checkBlock(
    { chainId: deps.chainId, verifier: deps.verifier, requirePq: deps.requirePq },
    context,
    block,
  );
  if (blockError !== undefined) throw syncInvalid(height, blockError.message, blockError);
  const outcome = checkAndExecute(deps, context, block);
  if (!outcome.ok) {
    throw syncInvalid(height, `${outcome.refusal}: ${outcome.error.message}`, outcome.error);
  }
  return { block, hash, commit, result: outcome.result };
}

/**
 * What a node serves to a syncing peer: stored blocks `from..to` with their commits, at most
 * `limit` of them (the `ConsensusNetwork.fetchBlocks` answer on the serving side).
 */
export function readSyncedBlocks(
  store: NodeStore,
  from: number,
  to: number,
  limit = 100,
): SyncedBlock[] {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 1 || to < from) return [];
  return store.blocks
    .range(from, to, limit)
    .map(({ block, commit }) => ({ height: block.height, block: block.bytes, commit }));
}
