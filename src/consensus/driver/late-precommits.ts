import { bytesEqual } from '../../crypto/bytes.js';
import type { QuorumCertificate, Vote } from '../types.js';
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
 * While the driver waits `commitDelayMs` it offers every precommit of the decided height here;
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

/**
 * `commit` with `vote` added in address order, or why it is refused. `context` is the
 * verification context of the commit's height (its validator set). Pure: nothing is changed.
 */
export function addLatePrecommit(
  context: VerificationContext,
  commit: QuorumCertificate,
  vote: Vote,
): LatePrecommitResult {
  if (!isWellFormedVote(vote)) return { added: false, reason: MessageRejection.MALFORMED };
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
  if (commit.precommits.some((held) => held.validator === vote.validator)) {
    return { added: false, reason: 'duplicate' };
  }
  const rejection = checkVote(context, vote);
  if (rejection !== undefined) return { added: false, reason: rejection };
  return {
    added: true,
    commit: { ...commit, precommits: [...commit.precommits, vote].sort(byValidator) },
  };
}

/**
 * The commit of one decided height while late precommits are gathered into it: created when
 * the block is stored, read (and dropped) when the next height starts.
 */
export class CommitGathering {
  private current: QuorumCertificate;
  private count = 0;

  constructor(
    private readonly context: VerificationContext,
    decided: QuorumCertificate,
  ) {
    this.current = decided;
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

  offer(vote: Vote): LatePrecommitResult {
    const result = addLatePrecommit(this.context, this.current, vote);
    if (result.added) {
      this.current = result.commit;
      this.count++;
    }
    return result;
  }
}
