import type { FalconBackend } from '../../crypto/falcon.js';
import { checkBlock } from '../block.js';
import type { GenesisDocument } from '../genesis.js';
import { checkHeightContext, type HeightContext } from '../height-context.js';
import { BLOCK_HASH_BYTES, blockHash, commitHash } from '../messages.js';
import { invalidInput } from '../proof/errors.js';
import type { SequentialWorkCheck } from '../proof/sequential-work.js';
import {
  failure,
  SpaceFailure,
  StakeFailure,
  TimeFailure,
  VALID,
  WorkFailure,
  type PartFailure,
  type PartVerdict,
  type ProofFailure,
  type ProofPart,
} from '../proof/verdict.js';
import type { Block, QuorumCertificate, Vote } from '../types.js';
import { isWellFormedVote, pqSignatureVerifier } from '../verify.js';
import { checkSpacePart } from './space-part.js';
import { checkStakePart } from './stake-part.js';
import { malformedBlock, proofSubject } from './subject.js';
import { checkBftTime, checkSequentialChain } from './time-part.js';
import {
  checkStamps,
  checkStateTransition,
  checkTransactionsRoot,
  type Reexecute,
  type StampOf,
} from './work-part.js';

export interface CommittedBlockInput {
  readonly genesis: GenesisDocument;
  readonly genesisHash: Uint8Array;
  readonly block: Block;
  /** The commit certifying `block` (the next block's `lastCommit`, or the synced commit). */
  readonly commit: QuorumCertificate;
  /** The context of the block's height: its validator set and its parent. */
  readonly context: HeightContext;
  readonly stampOf: StampOf;
  /**
   * Re-executes the block on the parent state and returns the state root. Without it (a
   * verifier without state) PoWork checks the stamps only and says so (`stamps-only`). Called
   * only when everything else holds, so an invalid block is never executed.
   */
  readonly reexecute?: Reexecute;
  readonly falcon: FalconBackend;
  /**
   * How much of the hash chain to recompute: `full` (default, exact, costs T iterations) or
   * `sampled` (s segments chosen by Fiat–Shamir over the commit; docs/consensus-proof.md).
   */
  readonly sequentialWork?: SequentialWorkCheck;
}

/** How much of a part was checked. */
export type PartCoverage = 'full' | 'stamps-only' | 'sampled';

export interface PartSuccess<P extends ProofPart = ProofPart> {
  readonly ok: true;
  readonly part: P;
  readonly coverage: PartCoverage;
}

export type BlockPartVerdict = PartSuccess | ProofFailure;

export type BlockRulesVerdict =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly message: string;
      readonly detail: Readonly<Record<string, unknown>>;
    };

export interface BlockProofVerdict {
  /** Every part and the block rules hold. */
  readonly ok: boolean;
  /** The header's height; null when it is not a positive integer (a malformed block). */
  readonly height: number | null;
  /** The header's hash; null for a malformed block, whose header cannot be hashed. */
  readonly blockHash: Uint8Array | null;
  /**
   * The engine's consensus-level rules for the block (`checkBlock`: chain, height, parent,
   * validator set, proposer, time, last commit, roots over the body, evidence).
   */
  readonly block: BlockRulesVerdict;
  /** space, stake, work, time — always all four, in this order. */
  readonly parts: readonly BlockPartVerdict[];
}

function firstFailure<P extends ProofPart>(
  checks: readonly (() => PartVerdict<P>)[],
): PartFailure<P> | undefined {
  for (const check of checks) {
    const verdict = check();
    if (!verdict.ok) return verdict;
  }
  return undefined;
}

function assertCheck(check: SequentialWorkCheck): void {
  if (check.mode === 'full') return;
  if (check.mode !== 'sampled' || !Number.isSafeInteger(check.segments) || check.segments < 1) {
    throw invalidInput('a sampled hash-chain check needs a positive number of segments');
  }
}

function isHeight(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

/**
 * Why `commit` is not a well-formed quorum certificate — what `commitHash` needs to hash it (a
 * record with a height, a round, a 32-byte block hash and a list of well-formed votes) — or
 * undefined. `checkQuorumCertificate` stops at the first broken rule, so a commit for another
 * height may still carry a precommit list that cannot be hashed.
 */
function malformedCommit(commit: QuorumCertificate): string | undefined {
  if (typeof commit !== 'object' || commit === null) return 'commit is not a record';
  const {
    height,
    round,
    blockHash: hash,
    precommits,
  } = commit as Partial<Record<keyof QuorumCertificate, unknown>>;
  if (!isHeight(height)) return 'commit height must be a positive integer';
  if (!Number.isSafeInteger(round) || (round as number) < 0) return 'commit round is not a round';
  if (!(hash instanceof Uint8Array) || hash.length !== BLOCK_HASH_BYTES) {
    return 'commit block hash must be 32 bytes';
  }
  if (!Array.isArray(precommits)) return 'commit precommits are not a list';
  const position = precommits.findIndex((vote: Vote) => !isWellFormedVote(vote));
  return position === -1 ? undefined : `precommit ${position} is not a well-formed vote`;
}

/**
 * The verdict on a block that is not even well formed: its rules fail with the shape error, and
 * no part can be checked — the proof bytes, the chain position and the hash the commit would
 * certify all come from the header.
 */
function malformedBlockVerdict(block: Block, error: string): BlockProofVerdict {
  const height: unknown = (block as { header?: { height?: unknown } } | null)?.header?.height;
  const unreadable = `the block is malformed (${error}), so its proof cannot be read`;
  const detail = { malformed: error };
  return {
    ok: false,
    height: isHeight(height) ? (height as number) : null,
    blockHash: null,
    block: { ok: false, message: error, detail },
    parts: [
      failure('space', SpaceFailure.UNDECODABLE_PROOF, unreadable, detail),
      failure(
        'stake',
        StakeFailure.WRONG_BLOCK,
        `the block is malformed (${error}), so no commit certifies it`,
        detail,
      ),
      failure('work', WorkFailure.UNDECODABLE_PROOF, unreadable, detail),
      failure('time', TimeFailure.UNDECODABLE_PROOF, unreadable, detail),
    ],
  };
}

/**
 * Checks a committed block and its commit completely, for anyone holding the genesis and the
 * height's context: the engine's block rules and each of the four parts, every part on its own
 * (a failure in one does not hide the others). Used by `hypermesh block verify` and the
 * benchmarks; nodes run the same rules split differently (driver/block-checks.ts,
 * docs/consensus-proof.md). Never throws for a bad block or commit, whatever its shape: a block
 * that is not well formed fails every part (`malformedBlockVerdict`), a commit that is not well
 * formed fails PoStake (`malformed-commit`) and, having no hash to draw a sample from, makes a
 * sampled hash-chain check run in full. Throws `ProofError(INVALID_INPUT)` only for a malformed
 * `genesisHash`, `context` or `sequentialWork` option — the caller's own data.
 */
export function verifyCommittedBlock(input: CommittedBlockInput): BlockProofVerdict {
  const { genesis, genesisHash, block, commit, context, stampOf, reexecute, falcon } = input;
  if (!(genesisHash instanceof Uint8Array) || genesisHash.length !== 32) {
    throw invalidInput('genesisHash must be 32 bytes');
  }
  const contextError = checkHeightContext(context);
  if (contextError !== undefined) throw invalidInput(`context: ${contextError.message}`);
  const requested = input.sequentialWork ?? { mode: 'full' };
  assertCheck(requested);

  const blockError = malformedBlock(block);
  if (blockError !== undefined) return malformedBlockVerdict(block, blockError);
  const commitError = malformedCommit(commit);
  // A sampled check draws its segments from the commit's hash: a commit that cannot be hashed
  // gets the whole chain recomputed, and the binding (read by sampled checks only) is empty.
  const binding = commitError === undefined ? commitHash(commit) : new Uint8Array(0);
  const check: SequentialWorkCheck = commitError === undefined ? requested : { mode: 'full' };

  const verifier = pqSignatureVerifier(falcon);
  const rules = checkBlock(
    { chainId: genesis.chainId, verifier, requirePq: genesis.consensus.requirePq },
    context,
    block,
  );
  const subject = proofSubject(genesis, genesisHash, context, block);

  const space = checkSpacePart(subject);
  const stake =
    commitError === undefined
      ? checkStakePart(subject, commit, verifier)
      : failure('stake', StakeFailure.MALFORMED_COMMIT, commitError);
  // `checkBlock` already checked the last commit, its hash, the header time and the
  // transactions root (the same rules); only when it failed are they checked again, so that the
  // part they belong to names its own reason.
  const time = firstFailure<'time'>([
    () => (rules === undefined ? VALID : checkBftTime(subject, verifier)),
    () => checkSequentialChain(subject, check, binding),
  ]);
  const stamps = firstFailure<'work'>([
    () => (rules === undefined ? VALID : checkTransactionsRoot(subject)),
    () => checkStamps(subject, stampOf),
  ]);
  const othersHold = rules === undefined && space.ok && stake.ok && time === undefined;
  const work =
    stamps ??
    (reexecute !== undefined && othersHold ? checkStateTransition(subject, reexecute) : undefined);
  const workCoverage: PartCoverage = reexecute !== undefined && othersHold ? 'full' : 'stamps-only';

  const parts: BlockPartVerdict[] = [
    space.ok ? { ok: true, part: 'space', coverage: 'full' } : space,
    stake.ok ? { ok: true, part: 'stake', coverage: 'full' } : stake,
    work === undefined || work.ok ? { ok: true, part: 'work', coverage: workCoverage } : work,
    time ?? { ok: true, part: 'time', coverage: check.mode === 'full' ? 'full' : 'sampled' },
  ];
  return {
    ok: rules === undefined && parts.every((part) => part.ok),
    height: block.header.height,
    blockHash: blockHash(block.header),
    block:
      rules === undefined
        ? { ok: true }
        : { ok: false, message: rules.message, detail: { ...rules.detail } },
    parts,
  };
}
