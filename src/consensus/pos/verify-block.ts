import type { FalconBackend } from '../../crypto/falcon.js';
import { checkBlock } from '../block.js';
import type { GenesisDocument } from '../genesis.js';
import { checkHeightContext, type HeightContext } from '../height-context.js';
import { blockHash, commitHash } from '../messages.js';
import { invalidInput } from '../proof/errors.js';
import type { SequentialWorkCheck } from '../proof/sequential-work.js';
import {
  VALID,
  type PartFailure,
  type PartVerdict,
  type ProofFailure,
  type ProofPart,
} from '../proof/verdict.js';
import type { Block, QuorumCertificate } from '../types.js';
import { pqSignatureVerifier } from '../verify.js';
import { checkSpacePart } from './space-part.js';
import { checkStakePart } from './stake-part.js';
import { proofSubject } from './subject.js';
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
  readonly height: number;
  readonly blockHash: Uint8Array;
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

/**
 * Checks a committed block and its commit completely, for anyone holding the genesis and the
 * height's context: the engine's block rules and each of the four parts, every part on its own
 * (a failure in one does not hide the others). Used by every node on every block it commits or
 * syncs, and by `hypermesh block verify`. Throws `ProofError(INVALID_INPUT)` only for a
 * malformed `genesisHash`, `context` or `sequentialWork` option — the caller's own data.
 */
export function verifyCommittedBlock(input: CommittedBlockInput): BlockProofVerdict {
  const { genesis, genesisHash, block, commit, context, stampOf, reexecute, falcon } = input;
  if (!(genesisHash instanceof Uint8Array) || genesisHash.length !== 32) {
    throw invalidInput('genesisHash must be 32 bytes');
  }
  const contextError = checkHeightContext(context);
  if (contextError !== undefined) throw invalidInput(`context: ${contextError.message}`);
  const check = input.sequentialWork ?? { mode: 'full' };
  assertCheck(check);

  const verifier = pqSignatureVerifier(falcon);
  const rules = checkBlock(
    { chainId: genesis.chainId, verifier, requirePq: genesis.consensus.requirePq },
    context,
    block,
  );
  const subject = proofSubject(genesis, genesisHash, context, block);

  const space = checkSpacePart(subject);
  const stake = checkStakePart(subject, commit, verifier);
  // `checkBlock` already checked the last commit, its hash, the header time and the
  // transactions root (the same rules); only when it failed are they checked again, so that the
  // part they belong to names its own reason.
  const time = firstFailure<'time'>([
    () => (rules === undefined ? VALID : checkBftTime(subject, verifier)),
    () => checkSequentialChain(subject, check, commitHash(commit)),
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
