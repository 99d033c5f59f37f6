import { bytesEqual } from '../../crypto/bytes.js';
import type { QuorumCertificate, ValidatorAddress, Vote } from '../types.js';
import {
  checkVote,
  isWellFormedVote,
  MessageRejection,
  type VerificationContext,
} from '../verify.js';

/**
 * Precommits that arrive after this node decided a height, gathered into the commit it will put
 * in its next proposal as `lastCommit` — what CometBFT does while it waits `timeout_commit`
 * (consensus/state.go `addVote`: "A precommit for the previous height? These come in while we
 * wait timeoutCommit" — added to `LastCommit` while the next height has not started).
 *
 * A decision needs precommits with more than 2/3 of the power; the slowest validators' often
 * arrive just after it. Without them the next block's `lastCommit` (and the application's
 * `LastCommitInfo`: rewards, liveness) would name an honest but slower validator as absent.
 * While the driver waits `commitDelayMs` it offers the precommits of the decided height here;
 * one is added only when it is for exactly the decided block and round and passes the checks
 * the engine runs on a received vote (`checkVote`: signer in the height's set, Ed25519, and
 * FALCON-1024 when `requirePq`). The result stays a valid quorum certificate
 * (`checkQuorumCertificate`): a superset of the decision's precommits, one per validator, in
 * address order — the order the encoder and the check require.
 */

/** Why a late precommit was not added. */
export type LatePrecommitRefusal =
  /** Not a precommit for the decided block, height and round (nil, another block or round). */
  | 'not-for-commit'
  /** Its validator's precommit is in the commit already. */
  | 'duplicate'
  | MessageRejection;

export type LatePrecommitResult =
  | { readonly added: true; readonly commit: QuorumCertificate }
  | { readonly added: false; readonly reason: LatePrecommitRefusal };

function byValidator(a: Vote, b: Vote): number {
  return a.validator < b.validator ? -1 : a.validator > b.validator ? 1 : 0;
}

/** Where a vote of `validator` goes in `precommits` (address order): binary search. */
function insertionIndex(precommits: readonly Vote[], validator: ValidatorAddress): number {
  let low = 0;
  let high = precommits.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((precommits[mid] as Vote).validator < validator) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * `commit` with `vote` added in address order, or why it is refused. `context` is the
 * verification context of the commit's height (its validator set). Pure: nothing is changed.
 */
export function addLatePrecommit(
  context: VerificationContext,
  commit: QuorumCertificate,
  vote: Vote,
): LatePrecommitResult {
  return new CommitGathering(context, commit).offer(vote);
}

/**
 * The commit of one decided height while late precommits are gathered into it: created when
 * the block is stored, read (and dropped) when the next height starts.
 *
 * At `MAX_VALIDATORS` up to a third of 10,000 precommits arrive late, so an offer must not cost
 * O(n) comparisons: a repeat is found in a set of signers, and an added precommit goes in by
 * binary search into the commit sorted once, at the first addition (re-sorting the whole commit
 * per offer and scanning it for a repeat took 16 s of CPU for 3,333 late precommits). Each
 * addition still yields a new commit (one array copy); earlier ones are never changed.
 */
export class CommitGathering {
  private current: QuorumCertificate;
  private readonly signers: Set<ValidatorAddress>;
  private count = 0;

  constructor(
    private readonly context: VerificationContext,
    decided: QuorumCertificate,
  ) {
    this.current = decided;
    this.signers = new Set(decided.precommits.map((vote) => vote.validator));
  }

  get height(): number {
    return this.current.height;
  }

  /** The decision's precommits and every late one added since. */
  get commit(): QuorumCertificate {
    return this.current;
  }

  /** Precommits added beyond the decision's. */
  get added(): number {
    return this.count;
  }

  /** Whether `validator`'s precommit is in the commit (an offer of another would be refused). */
  holds(validator: ValidatorAddress): boolean {
    return this.signers.has(validator);
  }

  offer(vote: Vote): LatePrecommitResult {
    if (!isWellFormedVote(vote)) return { added: false, reason: MessageRejection.MALFORMED };
    const commit = this.current;
    if (
      vote.type !== 'precommit' ||
      vote.height !== commit.height ||
      vote.round !== commit.round ||
      vote.blockHash === null ||
      !bytesEqual(vote.blockHash, commit.blockHash)
    ) {
      return { added: false, reason: 'not-for-commit' };
    }
    // As the engine's vote set: a validator's second vote for the same value is not checked again.
    if (this.signers.has(vote.validator)) return { added: false, reason: 'duplicate' };
    const rejection = checkVote(this.context, vote);
    if (rejection !== undefined) return { added: false, reason: rejection };
    // The decision's order is the engine's; sorted once here, the commit stays in address order.
    const sorted = this.count === 0 ? [...commit.precommits].sort(byValidator) : commit.precommits;
    const precommits = sorted.toSpliced(insertionIndex(sorted, vote.validator), 0, vote);
    this.current = { ...commit, precommits };
    this.signers.add(vote.validator);
    this.count++;
    return { added: true, commit: this.current };
  }
}
