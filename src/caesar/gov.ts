import type { ModuleState, ModuleStateReader } from '../consensus/application/module.js';
import { toHex } from '../crypto/bytes.js';
import { CaesarError, CaesarErrorCode, CaesarStateError, CaesarStateErrorCode } from './errors.js';
import { applyParamChanges } from './gov-changes.js';
import type { ParamChange } from './gov-changes.js';
import { MAX_MIN_DEPOSIT_BPS, maxMinDeposit, readGovParams } from './gov-params.js';
import type { GovParams } from './gov-params.js';
import {
  GOV_DEPOSITS_KEY,
  MAX_ACTIVE_PROPOSALS,
  MAX_PROPOSAL_VOTERS,
  ProposalStatus,
  readActiveProposals,
  readProposal,
  readProposalCount,
  readVotes,
  writeActiveProposals,
  writeProposal,
  writeProposalCount,
  writeVotes,
} from './gov-state.js';
import type { ProposalRecord, Tally, VoteRecord } from './gov-state.js';
import { SUBMIT_PROPOSAL_OP, VOTE_OP, VoteOption } from './gov-tx.js';
import type { GovTx, SubmitProposal, Vote } from './gov-tx.js';
import { BASIS_POINTS, decodeStakingParams } from './staking-params.js';
import type { StakingParams } from './staking-params.js';
import {
  STAKING_PARAMS_KEY,
  compareAddresses,
  readDelegatorIndex,
  readShares,
  readValidator,
  sharesValue,
} from './staking-state.js';
import type { ValidatorRecord } from './staking-state.js';
import { FEE_POOL_KEY, PARAMS_KEY, balanceKey, readAmount, writeAmount } from './state.js';
import { decodeTokenParams } from './params.js';
import { feeEvents, submitProposalEvent, voteEvent } from './events.js';
import type { CaesarEvent } from './events.js';

/**
 * The rules of the governance transactions (docs/caesar.md, "Governance"). As for staking, each
 * `plan…` function checks everything against the state and returns what to write, so `check`
 * and `apply` run the same rules and a refusal writes nothing. `account` is the proposer or
 * voter: `ed25519Address(sender)` for a plain transaction, the hybrid address for one wrapped in
 * a hybrid body (hybrid.ts); the deposit, the fee and the voting weight are its.
 */

/** The parameters in force; governance needs staking (voting weight is bonded stake). */
export function requireGovernance(
  state: ModuleStateReader,
  op: string,
): { readonly staking: StakingParams; readonly gov: GovParams } {
  const stored = state.get(STAKING_PARAMS_KEY);
  if (stored === null) {
    throw new CaesarError(
      CaesarErrorCode.STAKING_DISABLED,
      `${op}: governance weighs votes by bonded stake, and this chain has no staking`,
    );
  }
  return { staking: decodeStakingParams(stored), gov: readGovParams(state) };
}

/**
 * Bonded stake by account, over one state: an account's stake is what its delegations are
 * worth (floor of shares × tokens / shares, per validator), self-bonds included. The account's
 * delegator index names the validators it has shares of, so weighing one account reads its
 * index and at most `MAX_DELEGATIONS_PER_ACCOUNT` delegations, however many validators exist.
 * Each validator record is read once per view, and each account weighed once per view (the end
 * of a block tallying several proposals weighs a voter of several of them once). A view must
 * not outlive a write to the stake it reads.
 */
export class StakeView {
  private readonly records = new Map<string, ValidatorRecord>();
  private readonly stakes = new Map<string, bigint>();

  constructor(private readonly state: ModuleStateReader) {}

  private record(validator: Uint8Array): ValidatorRecord {
    const id = toHex(validator);
    let record = this.records.get(id);
    if (record === undefined) {
      record = readValidator(this.state, validator);
      if (record === undefined) {
        throw new CaesarStateError(
          CaesarStateErrorCode.CORRUPT_VALUE,
          `delegator index: names validator ${id}, which has no record`,
        );
      }
      this.records.set(id, record);
    }
    return record;
  }

  stakeOf(account: Uint8Array): bigint {
    const id = toHex(account);
    const known = this.stakes.get(id);
    if (known !== undefined) return known;
    let stake = 0n;
    for (const validator of readDelegatorIndex(this.state, account)) {
      const shares = readShares(this.state, validator, account);
      if (shares > 0n) stake += sharesValue(this.record(validator), shares);
    }
    this.stakes.set(id, stake);
    return stake;
  }
}

/** Sums the votes by option, each weighted by `stakeOf(voter)`. */
export function countVotes(
  votes: readonly VoteRecord[],
  stakeOf: (voter: Uint8Array) => bigint,
): Omit<Tally, 'bonded'> {
  let yes = 0n;
  let no = 0n;
  let abstain = 0n;
  for (const { voter, option } of votes) {
    const weight = stakeOf(voter);
    if (option === VoteOption.YES) yes += weight;
    else if (option === VoteOption.NO) no += weight;
    else abstain += weight;
  }
  return { yes, no, abstain };
}

export type TallyOutcome = 'passed' | 'rejected' | 'no-quorum';

/**
 * The outcome of a tally: quorum when (yes + no + abstain) × 10,000 ≥ quorumBps × bonded;
 * then passed when yes × 10,000 > thresholdBps × (yes + no), else rejected. With no yes or no
 * vote at all a proposal that reached quorum is rejected.
 */
export function tallyOutcome(tally: Tally, params: GovParams): TallyOutcome {
  const scale = BigInt(BASIS_POINTS);
  const voted = tally.yes + tally.no + tally.abstain;
  if (voted * scale < BigInt(params.quorumBps) * tally.bonded) return 'no-quorum';
  const decided = tally.yes + tally.no;
  if (decided === 0n) return 'rejected';
  return tally.yes * scale > BigInt(params.thresholdBps) * decided ? 'passed' : 'rejected';
}

function requireFunds(state: ModuleStateReader, op: string, account: Uint8Array, cost: bigint) {
  const balance = readAmount(state, balanceKey(account));
  if (balance < cost) {
    throw new CaesarError(
      CaesarErrorCode.INSUFFICIENT_FUNDS,
      `${op}: balance ${balance} is below the ${cost} base units it needs`,
      { address: toHex(account), balance: balance.toString(), needed: cost.toString() },
    );
  }
  return balance;
}

/**
 * Refuses a change of `minDeposit` above `maxMinDeposit(supply)` (1 % of the total supply):
 * a deposit no account can gather could never be paid again, so no later proposal could undo
 * it and governance would be locked for good. Checked at submission and again at execution
 * (gov-end-block.ts), with the supply then: slashes and burnt deposits lower it in between.
 * Only a proposal that sets `minDeposit` is held to it: one changing other parameters is not
 * refused because the supply fell below 100 × the `minDeposit` in force, and one setting it back
 * within the bound passes. Throws `GOV_INVALID_PARAM`.
 */
export function requireMinDepositFits(
  changes: readonly ParamChange[],
  next: GovParams,
  supply: bigint,
): void {
  if (!changes.some(({ name }) => name === 'minDeposit')) return;
  const cap = maxMinDeposit(supply);
  if (next.minDeposit > cap) {
    throw new CaesarError(
      CaesarErrorCode.GOV_INVALID_PARAM,
      `proposal: minDeposit: ${next.minDeposit} is above ${MAX_MIN_DEPOSIT_BPS / 100} % of the total supply ${supply} (${cap}): later proposals could not be paid for`,
      { param: 'minDeposit', minDeposit: next.minDeposit.toString(), max: cap.toString() },
    );
  }
}

interface SubmitPlan {
  readonly proposer: Uint8Array;
  readonly balance: bigint;
  readonly gov: GovParams;
  readonly active: number[];
}

function planSubmit(
  state: ModuleStateReader,
  tx: SubmitProposal,
  proposer: Uint8Array,
): SubmitPlan {
  const { staking, gov } = requireGovernance(state, tx.op);
  const next = applyParamChanges(staking, gov, tx.changes);
  const stored = state.get(PARAMS_KEY);
  requireMinDepositFits(
    tx.changes,
    next.gov,
    stored === null ? 0n : decodeTokenParams(stored).supply,
  );
  if (tx.deposit < gov.minDeposit) {
    throw new CaesarError(
      CaesarErrorCode.GOV_DEPOSIT_TOO_SMALL,
      `${tx.op}: a deposit of ${tx.deposit} is below minDeposit ${gov.minDeposit}`,
      { deposit: tx.deposit.toString(), minDeposit: gov.minDeposit.toString() },
    );
  }
  const active = readActiveProposals(state);
  if (active.length >= MAX_ACTIVE_PROPOSALS) {
    throw new CaesarError(
      CaesarErrorCode.GOV_TOO_MANY_PROPOSALS,
      `${tx.op}: ${active.length} proposals are in voting or waiting for their timelock, the most there can be`,
    );
  }
  const balance = requireFunds(state, tx.op, proposer, tx.deposit + tx.fee);
  return { proposer, balance, gov, active };
}

interface VotePlan {
  readonly voter: Uint8Array;
  readonly balance: bigint;
  readonly votes: VoteRecord[];
}

function planVote(state: ModuleStateReader, tx: Vote, voter: Uint8Array, height: number) {
  requireGovernance(state, tx.op);
  const proposal = readProposal(state, tx.proposal);
  if (proposal === undefined) {
    throw new CaesarError(
      CaesarErrorCode.GOV_UNKNOWN_PROPOSAL,
      `${tx.op}: there is no proposal ${tx.proposal}`,
      { proposal: tx.proposal },
    );
  }
  if (proposal.status !== ProposalStatus.VOTING || height > proposal.votingEnd) {
    throw new CaesarError(
      CaesarErrorCode.GOV_VOTING_CLOSED,
      `${tx.op}: voting on proposal ${tx.proposal} ended with block ${proposal.votingEnd}`,
      { proposal: tx.proposal, votingEnd: proposal.votingEnd },
    );
  }
  if (new StakeView(state).stakeOf(voter) === 0n) {
    throw new CaesarError(
      CaesarErrorCode.GOV_NO_STAKE,
      `${tx.op}: account ${toHex(voter)} has no bonded stake; votes are weighed by bonded stake`,
      { voter: toHex(voter) },
    );
  }
  const votes = readVotes(state, tx.proposal);
  const known = votes.some((vote) => compareAddresses(vote.voter, voter) === 0);
  if (!known && votes.length >= MAX_PROPOSAL_VOTERS) {
    throw new CaesarError(
      CaesarErrorCode.GOV_TOO_MANY_VOTERS,
      `${tx.op}: proposal ${tx.proposal} has ${votes.length} voters, the most one proposal records`,
    );
  }
  const balance = requireFunds(state, tx.op, voter, tx.fee);
  return { voter, balance, votes } satisfies VotePlan;
}

function pay(state: ModuleState, account: Uint8Array, balance: bigint, cost: bigint, fee: bigint) {
  writeAmount(state, balanceKey(account), balance - cost);
  if (fee > 0n) writeAmount(state, FEE_POOL_KEY, readAmount(state, FEE_POOL_KEY) + fee);
}

/**
 * `check` for a governance transaction acting for `account`: its rules against the state,
 * nothing written.
 */
export function checkGovTx(
  state: ModuleStateReader,
  tx: GovTx,
  account: Uint8Array,
  height: number,
): void {
  if (tx.op === SUBMIT_PROPOSAL_OP) planSubmit(state, tx, account);
  else planVote(state, tx, account, height);
}

/**
 * `apply` for a governance transaction acting for `account`: the same rules, then the writes.
 * Returns the events of its receipt (docs/caesar.md, "Events").
 */
export function applyGovTx(
  state: ModuleState,
  tx: GovTx,
  account: Uint8Array,
  height: number,
): CaesarEvent[] {
  if (tx.op === VOTE_OP) {
    const { voter, balance, votes } = planVote(state, tx, account, height);
    pay(state, voter, balance, tx.fee, tx.fee);
    const others = votes.filter((vote) => compareAddresses(vote.voter, voter) !== 0);
    writeVotes(
      state,
      tx.proposal,
      [...others, { voter, option: tx.option }].sort((a, b) => compareAddresses(a.voter, b.voter)),
    );
    return [voteEvent(tx.proposal, voter, tx.option), ...feeEvents(voter, tx.fee)];
  }
  const { proposer, balance, gov, active } = planSubmit(state, tx, account);
  pay(state, proposer, balance, tx.deposit + tx.fee, tx.fee);
  writeAmount(state, GOV_DEPOSITS_KEY, readAmount(state, GOV_DEPOSITS_KEY) + tx.deposit);
  const id = readProposalCount(state) + 1;
  const votingEnd = height + gov.votingPeriod;
  const record: ProposalRecord = {
    id,
    proposer,
    title: tx.title,
    changes: tx.changes,
    deposit: tx.deposit,
    submitHeight: height,
    votingEnd,
    executeHeight: votingEnd + gov.timelock,
    status: ProposalStatus.VOTING,
  };
  writeProposal(state, record);
  writeProposalCount(state, id);
  writeActiveProposals(state, [...active, id]);
  return [
    submitProposalEvent(id, proposer, tx.title, tx.deposit, votingEnd, record.executeHeight),
    ...feeEvents(proposer, tx.fee),
  ];
}
