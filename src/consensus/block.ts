import { bytesEqual } from '../crypto/bytes.js';
import { bftTime, checkQuorumCertificate } from './commit.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { checkDuplicateVoteEvidence, evidenceKey } from './evidence.js';
import { EVIDENCE_MAX_AGE, validatorsAt, type HeightContext } from './height-context.js';
import { BLOCK_HASH_BYTES, commitHash, evidenceRoot, transactionsRoot } from './messages.js';
import type { Block, DuplicateVoteEvidence, QuorumCertificate, ValidatorAddress } from './types.js';
import { isWellFormedVote, type SignatureVerifier, type VerificationContext } from './verify.js';

/**
 * Blocks at the consensus level: what a proposer fills in, and the rules every validator checks
 * before it asks the application whether the block is valid — valid(v) of the paper is both.
 */

/**
 * Most duplicate-vote evidence items a valid block carries (a block validity rule). Every item
 * costs each validator two Ed25519 verifications and its share of the evidence root, and a
 * proposer signs as many blocks as it likes, so the count is refused before any of that work:
 * a block over it is invalid whatever its evidence. The wire decoder's `MAX_EVIDENCE_PER_BLOCK`
 * (1,000) only bounds what is parsed; `maxEvidencePerBlock` (a node's own proposals) stays at
 * or below this.
 */
export const MAX_BLOCK_EVIDENCE = 64;

/** The header fields the engine determines; the application supplies the rest. */
export interface BlockTemplate {
  readonly chainId: string;
  readonly height: number;
  readonly time: number;
  readonly parentHash: Uint8Array;
  readonly lastCommit: QuorumCertificate | null;
  readonly validatorsHash: Uint8Array;
  readonly proposer: ValidatorAddress;
}

/** What the application puts in a block (prepare proposal). */
export interface BlockContent {
  readonly transactions: readonly Uint8Array[];
  readonly evidence: readonly DuplicateVoteEvidence[];
  readonly appStateRoot: Uint8Array;
  readonly consensusProof: Uint8Array;
}

/** The time a block at this height must carry, given its last commit. */
export function expectedBlockTime(
  context: HeightContext,
  lastCommit: QuorumCertificate | null,
): number {
  const { parent } = context;
  if (parent.kind === 'genesis' || lastCommit === null) return parent.time;
  return bftTime(lastCommit, parent.validators, parent.time);
}

export function blockTemplate(
  chainId: string,
  context: HeightContext,
  proposer: ValidatorAddress,
): BlockTemplate {
  const lastCommit = context.parent.kind === 'block' ? context.parent.commit : null;
  return {
    chainId,
    height: context.height,
    time: expectedBlockTime(context, lastCommit),
    parentHash: context.parent.hash,
    lastCommit,
    validatorsHash: context.schedule.validators.hash,
    proposer,
  };
}

export function buildBlock(template: BlockTemplate, content: BlockContent): Block {
  return {
    header: {
      chainId: template.chainId,
      height: template.height,
      time: template.time,
      parentHash: template.parentHash,
      transactionsRoot: transactionsRoot(content.transactions),
      evidenceRoot: evidenceRoot(content.evidence),
      lastCommitHash: commitHash(template.lastCommit),
      appStateRoot: content.appStateRoot,
      validatorsHash: template.validatorsHash,
      proposer: template.proposer,
      consensusProof: content.consensusProof,
    },
    transactions: content.transactions,
    evidence: content.evidence,
    lastCommit: template.lastCommit,
  };
}

function invalid(message: string, detail: Record<string, unknown> = {}): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.INVALID_BLOCK, message, detail);
}

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === BLOCK_HASH_BYTES;
}

function isByteList(value: unknown): value is readonly Uint8Array[] {
  return Array.isArray(value) && value.every((item) => item instanceof Uint8Array);
}

/** The evidence list's shape and `MAX_BLOCK_EVIDENCE`: free to check, so checked first. */
function checkEvidenceCount(block: Block): ConsensusError | undefined {
  if (!Array.isArray(block.evidence)) return invalid('evidence must be a list');
  if (block.evidence.length > MAX_BLOCK_EVIDENCE) {
    return invalid(`block carries more than ${MAX_BLOCK_EVIDENCE} evidence items`, {
      count: block.evidence.length,
      limit: MAX_BLOCK_EVIDENCE,
    });
  }
  return undefined;
}

/**
 * Whether the body is the one the header commits to: the transactions, the evidence and the
 * last commit hash to the header's roots. The proposer signs only the header hash, so a copy of
 * a genuine proposal with another body carries a valid signature; it must be refused as
 * malformed before anything is recorded under the header hash (validity, the proposal itself),
 * or it would stand in for the genuine block for the rest of the height. Returns the mismatch,
 * or undefined; a body that cannot even be hashed is a mismatch. Evidence over
 * `MAX_BLOCK_EVIDENCE` is refused before any hashing: whether or not it matches the header, the
 * block is invalid, and hashing it is the cost the limit exists to bound.
 */
export function checkBlockBody(block: Block): ConsensusError | undefined {
  if (bodyMatched.has(block)) return undefined;
  const { header } = block;
  const countError = checkEvidenceCount(block);
  if (countError !== undefined) return countError;
  if (!isByteList(block.transactions)) return invalid('transactions must be byte strings');
  if (block.lastCommit !== null && typeof block.lastCommit !== 'object') {
    return invalid('last commit must be a record or null');
  }
  try {
    if (!bytesEqual(header.transactionsRoot, transactionsRoot(block.transactions))) {
      return invalid('transactions root does not match the transactions');
    }
    if (!bytesEqual(header.evidenceRoot, evidenceRoot(block.evidence))) {
      return invalid('evidence root does not match the evidence');
    }
    if (!bytesEqual(header.lastCommitHash, commitHash(block.lastCommit))) {
      return invalid('last commit hash does not match the last commit');
    }
  } catch (error) {
    return invalid('block body cannot be hashed', { cause: (error as Error).message });
  }
  bodyMatched.add(block);
  return undefined;
}

/**
 * Blocks whose body `checkBlockBody` found to match their header: a received proposal is checked
 * on arrival and again in `checkBlock`, and hashing a 1,000-transaction body twice is work for
 * nothing. Blocks are read-only values (the types say so, and nothing writes into a received
 * one), so the answer for one object does not change.
 */
const bodyMatched = new WeakSet<Block>();

export interface BlockCheckOptions {
  readonly chainId: string;
  readonly verifier: SignatureVerifier;
  readonly requirePq: boolean;
}

/**
 * Consensus-level validity of a block for `context`: at most `MAX_BLOCK_EVIDENCE` evidence items
 * (checked first, before any hashing or signature), chain, height, parent, validator set (the
 * header names the set of its height), proposer, BFT time, the last commit (a valid quorum
 * certificate of the parent by the parent's validators), the roots over the body, and the
 * evidence (no offence twice, checked before any signature; each item against the set of its own
 * height, at most `EVIDENCE_MAX_AGE` heights back). Returns the first broken rule, or undefined.
 * Application rules (transactions, state root, consensus proof) are checked by the application.
 */
export function checkBlock(
  options: BlockCheckOptions,
  context: HeightContext,
  block: Block,
): ConsensusError | undefined {
  if (typeof block !== 'object' || block === null || typeof block.header !== 'object') {
    return invalid('block is not a record');
  }
  const countError = checkEvidenceCount(block);
  if (countError !== undefined) return countError;
  const { header } = block;
  if (header === null) return invalid('block has no header');
  if (header.chainId !== options.chainId) return invalid('block is for another chain');
  if (header.height !== context.height) {
    return invalid('block is for another height', { height: header.height });
  }
  for (const field of [
    'parentHash',
    'transactionsRoot',
    'evidenceRoot',
    'lastCommitHash',
    'appStateRoot',
    'validatorsHash',
  ] as const) {
    if (!isHash(header[field])) return invalid(`header ${field} must be 32 bytes`);
  }
  if (!(header.consensusProof instanceof Uint8Array)) {
    return invalid('header consensus proof must be bytes');
  }
  if (!Number.isSafeInteger(header.time)) return invalid('header time must be an integer');
  if (!isByteList(block.transactions)) return invalid('transactions must be byte strings');
  if (!bytesEqual(header.parentHash, context.parent.hash)) {
    return invalid('block does not extend the committed parent');
  }
  const validators = context.schedule.validators;
  if (!bytesEqual(header.validatorsHash, validators.hash)) {
    return invalid('block names another validator set');
  }
  if (!validators.indexOf.has(header.proposer)) return invalid('block proposer is not a validator');

  const { parent } = context;
  if (parent.kind === 'genesis') {
    if (block.lastCommit !== null) return invalid('the first block has no last commit');
  } else {
    if (block.lastCommit === null || typeof block.lastCommit !== 'object') {
      return invalid('block lacks the commit of its parent');
    }
    const parentContext: VerificationContext = {
      chainId: options.chainId,
      validators: parent.validators,
      verifier: options.verifier,
      requirePq: options.requirePq,
    };
    const commitError = checkQuorumCertificate(parentContext, block.lastCommit, {
      height: parent.height,
      blockHash: parent.hash,
    });
    if (commitError !== undefined) {
      return invalid(`last commit: ${commitError.message}`, { cause: commitError.code });
    }
  }
  if (header.time !== expectedBlockTime(context, block.lastCommit)) {
    return invalid('header time is not the BFT time of the last commit', { time: header.time });
  }
  const bodyError = checkBlockBody(block);
  if (bodyError !== undefined) return bodyError;
  const repeated = repeatedOffence(block.evidence);
  if (repeated !== undefined) {
    return invalid(`evidence ${repeated} repeats an offence`, { position: repeated });
  }
  for (const [position, item] of block.evidence.entries()) {
    // Each equivocation is checked against the validators of its own height.
    const offenceHeight: unknown = item?.voteA?.height;
    const offenceSet =
      Number.isSafeInteger(offenceHeight) && (offenceHeight as number) < context.height
        ? validatorsAt(context, offenceHeight as number)
        : validators;
    if (offenceSet === undefined) {
      return invalid(`evidence ${position} is older than ${EVIDENCE_MAX_AGE} heights`, {
        position,
        height: offenceHeight,
      });
    }
    const evidenceContext: VerificationContext = {
      chainId: options.chainId,
      validators: offenceSet,
      verifier: options.verifier,
      requirePq: false,
    };
    const evidenceError = checkDuplicateVoteEvidence(evidenceContext, item, context.height);
    if (evidenceError !== undefined) {
      return invalid(`evidence ${position}: ${evidenceError.message}`, { position });
    }
  }
  return undefined;
}

/**
 * The position of the first evidence item whose offence an earlier item already reports, or
 * undefined. Runs before any signature is verified, so a block repeating one offence costs no
 * verification; items too ill-formed to name an offence are left to `checkDuplicateVoteEvidence`.
 */
function repeatedOffence(evidence: readonly DuplicateVoteEvidence[]): number | undefined {
  const seen = new Set<string>();
  for (const [position, item] of evidence.entries()) {
    const voteA: unknown = (item as Partial<DuplicateVoteEvidence> | null)?.voteA;
    if (!isWellFormedVote(voteA as DuplicateVoteEvidence['voteA'])) continue;
    const key = evidenceKey(item);
    if (seen.has(key)) return position;
    seen.add(key);
  }
  return undefined;
}
