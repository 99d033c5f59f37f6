import {
  DEFAULT_GOV_PARAMS,
  GOV_DEPOSITS_KEY,
  GOV_PARAMS_KEY,
  STAKING_PARAMS_KEY,
  caesarStateKey,
  decodeGovParams,
  decodeProposal,
  decodeStakingParams,
  decodeStoredAmount,
  decodeVotes,
  encodeGovTx,
  proposalKey,
  votesKey,
} from '../../src/caesar/index.js';
import type {
  GovParams,
  GovTx,
  ProposalRecord,
  StakingParams,
  VoteRecord,
} from '../../src/caesar/index.js';
import { tx } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';

/** Governance parameters for tests: short periods, a deposit of 100 base units. */
export const TEST_GOV: GovParams = {
  ...DEFAULT_GOV_PARAMS,
  minDeposit: 100n,
  votingPeriod: 3,
  timelock: 2,
};

/** A signed governance transaction from `sender` (its next sequence unless given). */
export function govTx(sender: Sender, body: GovTx, sequence?: number): Uint8Array {
  return tx(sender, encodeGovTx(body), {
    module: 'caesar',
    ...(sequence === undefined ? {} : { sequence }),
  });
}

const read = (node: TestNode, key: Uint8Array) => node.store.state.get(caesarStateKey(key));

export function proposalOf(node: TestNode, id: number): ProposalRecord | undefined {
  const value = read(node, proposalKey(id));
  return value === null ? undefined : decodeProposal(value);
}

export function votesOf(node: TestNode, id: number): VoteRecord[] {
  const value = read(node, votesKey(id));
  return value === null ? [] : decodeVotes(value);
}

export const depositsOf = (node: TestNode): bigint =>
  decodeStoredAmount(read(node, GOV_DEPOSITS_KEY));

export const stakingParamsOf = (node: TestNode): StakingParams =>
  decodeStakingParams(read(node, STAKING_PARAMS_KEY)!);

export function govParamsOf(node: TestNode): GovParams {
  const value = read(node, GOV_PARAMS_KEY);
  return value === null ? DEFAULT_GOV_PARAMS : decodeGovParams(value);
}
