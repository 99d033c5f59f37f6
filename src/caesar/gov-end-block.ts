import type { ModuleState } from '../consensus/application/module.js';
import { CaesarError } from './errors.js';
import { applyParamChanges, changesScopes } from './gov-changes.js';
import { GOV_PARAMS_KEY, encodeGovParams, readGovParams } from './gov-params.js';
import {
  GOV_DEPOSITS_KEY,
  ProposalStatus,
  readActiveProposals,
  readProposal,
  readVotes,
  writeActiveProposals,
  writeProposal,
} from './gov-state.js';
import type { ProposalRecord } from './gov-state.js';
import { StakeView, countVotes, requireMinDepositFits, tallyOutcome } from './gov.js';
import { decodeTokenParams, encodeTokenParams } from './params.js';
import { decodeStakingParams, encodeStakingParams } from './staking-params.js';
import {
  ACTIVE_SET_KEY,
  BONDED_KEY,
  STAKING_PARAMS_KEY,
  missedKey,
  readValidator,
  readValidatorList,
  writeValidator,
} from './staking-state.js';
import { PARAMS_KEY, balanceKey, readAmount, writeAmount } from './state.js';

/**
 * Governance at the end of a block (docs/caesar.md, "Proposal lifecycle"), after staking's part,
 * in two steps over the active proposals in id order:
 *
 * 1. tally: each proposal whose voting ends at this height is counted with every voter's bonded
 *    stake now (after this block's rewards and slashes) against the total bonded stake now,
 *    with the governance parameters in force before this step. Without quorum the deposit is
 *    burnt (the supply falls by it); otherwise it returns to the proposer, and the proposal is
 *    passed or rejected;
 * 2. execute: each passed proposal whose `executeHeight` is this height has its changes merged
 *    over the parameters then in force and checked again (an earlier proposal may have changed
 *    them, and the supply bounding `minDeposit` may have fallen): valid, they are written
 *    (APPLIED); otherwise nothing changes (FAILED). A change of
 *    `signedWindow` clears every missed-commit window.
 *
 * Changes written here are in this block's state (a query at this height proves them) and rule
 * every block after it. Without active proposals this reads one key and writes nothing.
 */
export function governanceEndBlock(state: ModuleState, height: number): void {
  const active = readActiveProposals(state);
  if (active.length === 0) return;
  const params = readGovParams(state);
  const stake = new StakeView(state);
  const heldBefore = readAmount(state, GOV_DEPOSITS_KEY);
  let held = heldBefore;
  let burnt = 0n;
  const records = new Map<number, ProposalRecord>();
  for (const id of active) {
    let record = readProposal(state, id)!;
    if (record.status === ProposalStatus.VOTING && record.votingEnd === height) {
      const counted = countVotes(readVotes(state, id), (voter) => stake.stakeOf(voter));
      const tally = { ...counted, bonded: readAmount(state, BONDED_KEY) };
      const outcome = tallyOutcome(tally, params);
      held -= record.deposit;
      if (outcome === 'no-quorum') {
        burnt += record.deposit;
      } else {
        const key = balanceKey(record.proposer);
        writeAmount(state, key, readAmount(state, key) + record.deposit);
      }
      const status =
        outcome === 'passed'
          ? ProposalStatus.PASSED
          : outcome === 'rejected'
            ? ProposalStatus.REJECTED
            : ProposalStatus.REJECTED_NO_QUORUM;
      record = { ...record, status, tally };
      writeProposal(state, record);
    }
    records.set(id, record);
  }
  // The supply at execution: after staking's part of this end of block and this block's burnt
  // deposits.
  const supply = decodeTokenParams(state.get(PARAMS_KEY)!).supply - burnt;
  for (const id of active) {
    const record = records.get(id)!;
    if (record.status !== ProposalStatus.PASSED || record.executeHeight !== height) continue;
    writeProposal(state, { ...record, status: execute(state, record, supply) });
  }
  const still = active.filter((id) => {
    const { status } = readProposal(state, id)!;
    return status === ProposalStatus.VOTING || status === ProposalStatus.PASSED;
  });
  if (still.length !== active.length) writeActiveProposals(state, still);
  if (held !== heldBefore) writeAmount(state, GOV_DEPOSITS_KEY, held);
  if (burnt > 0n) {
    const token = decodeTokenParams(state.get(PARAMS_KEY)!);
    state.set(PARAMS_KEY, encodeTokenParams({ ...token, supply: token.supply - burnt }));
  }
}

/**
 * Writes a passed proposal's changes if they still fit, by the rules a submission is checked
 * with (gov.ts `planSubmit`) at this height: the schemas over the parameters in force and the
 * `minDeposit` bound over `supply`, the total supply now. APPLIED, or FAILED with nothing written.
 */
function execute(state: ModuleState, record: ProposalRecord, supply: bigint): ProposalStatus {
  const staking = decodeStakingParams(state.get(STAKING_PARAMS_KEY)!);
  const gov = readGovParams(state);
  let next;
  try {
    next = applyParamChanges(staking, gov, record.changes);
    requireMinDepositFits(record.changes, next.gov, supply);
  } catch (error) {
    if (error instanceof CaesarError) return ProposalStatus.FAILED;
    throw error;
  }
  const scopes = changesScopes(record.changes);
  if (scopes.staking) {
    state.set(STAKING_PARAMS_KEY, encodeStakingParams(next.staking));
    if (next.staking.powerUnit !== staking.powerUnit) keepBacking(state, staking.powerUnit);
    // The bitmaps are indexed by height mod signedWindow: under another window their bits
    // would name other heights, so every window starts empty.
    if (next.staking.signedWindow !== staking.signedWindow) {
      for (const address of readValidatorList(state)) state.delete(missedKey(address));
    }
  }
  if (scopes.gov) state.set(GOV_PARAMS_KEY, encodeGovParams(next.gov));
  return ProposalStatus.APPLIED;
}

/**
 * Before `powerUnit` changes: a validator in this module's set (`stk/set`) whose record has no `backing` has the
 * stake behind its power read as power × `powerUnit` (staking-state.ts `backingAt`), which
 * would then use the new unit for a power computed with `unit`. So it gets the entry that says
 * so (`from` 0), and slashing still measures an offence before the next epoch with `unit`.
 */
function keepBacking(state: ModuleState, unit: bigint): void {
  for (const address of readValidatorList(state, ACTIVE_SET_KEY)) {
    const record = readValidator(state, address)!;
    if (record.backing !== undefined || record.power === 0) continue;
    writeValidator(state, {
      ...record,
      backing: [{ from: 0, stake: BigInt(record.power) * unit }],
    });
  }
}
