import type { KeyObject } from 'node:crypto';
import {
  CAESAR_MODULE_NAME,
  ProposalStatus,
  caesarBondedQuery,
  caesarDelegationQuery,
  caesarDelegatorIndexQuery,
  caesarGovCountQuery,
  caesarGovParamsQuery,
  caesarProposalQuery,
  caesarStakingParamsQuery,
  caesarValidatorQuery,
  caesarVotesQuery,
  countVotes,
  encodeGovTx,
  sharesValue,
  tallyOutcome,
  verifyCaesarBonded,
  verifyCaesarDelegation,
  verifyCaesarDelegatorIndex,
  verifyCaesarGovCount,
  verifyCaesarGovParams,
  verifyCaesarProposal,
  verifyCaesarStakingParams,
  verifyCaesarValidator,
  verifyCaesarVotes,
} from '../caesar/index.js';
import type {
  GovParams,
  GovTx,
  ProposalRecord,
  Tally,
  TallyOutcome,
  ValidatorRecord,
  VoteRecord,
} from '../caesar/index.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import type { FalconKeyPair } from '../crypto/falcon.js';
import { ProvenReader, StakeCliError, StakeErrorCode } from './stake-ledger.js';
import { submitTransaction, type SubmitOutcome } from './tx-submit.js';
import { ledgerSubmission } from './wallet-ledger.js';

/**
 * The ledger side of `hypermesh gov`: proven reads of the governance parameters, proposals,
 * votes and the tally so far (docs/caesar.md, "Governance"), and governance transactions
 * through a node's API with `submitTransaction` (as `wallet send` does).
 */

export interface ProposalView {
  readonly record: ProposalRecord;
  readonly votes: readonly VoteRecord[];
  /** For a proposal still in voting: the votes weighed by the stake at the height read. */
  readonly tallySoFar?: Tally;
  /** What the tally so far would decide if voting ended at the height read. */
  readonly outcomeSoFar?: TallyOutcome;
}

export interface ProvenProposals {
  readonly height: number | null;
  readonly stateRoot: string;
  readonly params: GovParams;
  /** Proposals submitted so far (ids 1 to it). */
  readonly count: number;
  /** Newest first. */
  readonly proposals: readonly ProposalView[];
}

/**
 * The governance parameters and the newest `limit` proposals with their votes, each answer's
 * proof checked, all at one height; for proposals in voting also the tally so far, from proven
 * validator records and delegations (the same weighing the end of block applies).
 */
export async function readProvenProposals(
  client: NodeRpcClient,
  options: { readonly height?: number; readonly limit?: number } = {},
): Promise<ProvenProposals> {
  const reader = new ProvenReader(client, options.height);
  const staking = await reader.read(caesarStakingParamsQuery, verifyCaesarStakingParams);
  if (staking === null) {
    throw new StakeCliError(
      StakeErrorCode.STAKING_OFF,
      'the node proves that its chain has no staking, so no governance',
      1,
    );
  }
  const params = await reader.read(caesarGovParamsQuery, verifyCaesarGovParams);
  const count = await reader.read(caesarGovCountQuery, verifyCaesarGovCount);
  const lowest = Math.max(1, count - (options.limit ?? count) + 1);
  let stake: ((voter: Uint8Array) => Promise<bigint>) | undefined;
  const proposals: ProposalView[] = [];
  for (let id = count; id >= lowest; id--) {
    const record = await reader.read(
      (at) => caesarProposalQuery(id, at),
      (response) => verifyCaesarProposal(id, response),
    );
    if (record === null) {
      throw new StakeCliError(
        StakeErrorCode.PROOF_INVALID,
        `the node counts ${count} proposals but proves proposal ${id} absent`,
        1,
      );
    }
    const votes = await reader.read(
      (at) => caesarVotesQuery(id, at),
      (response) => verifyCaesarVotes(id, response),
    );
    if (record.status !== ProposalStatus.VOTING) {
      proposals.push({ record, votes });
      continue;
    }
    stake ??= provenStake(reader);
    const weights = new Map<string, bigint>();
    for (const vote of votes) weights.set(toHex(vote.voter), await stake(vote.voter));
    const counted = countVotes(votes, (voter) => weights.get(toHex(voter)) ?? 0n);
    const bonded = await reader.read(caesarBondedQuery, verifyCaesarBonded);
    const tallySoFar = { ...counted, bonded };
    proposals.push({
      record,
      votes,
      tallySoFar,
      outcomeSoFar: tallyOutcome(tallySoFar, params),
    });
  }
  return { height: reader.height ?? null, stateRoot: reader.stateRoot, params, count, proposals };
}

/**
 * An account's bonded stake from proven answers: its proven delegator index, then the worth of
 * its delegation at each validator the index names (at most `MAX_DELEGATIONS_PER_ACCOUNT`), as
 * the end of block weighs it. Records are read once, and each voter once per reader.
 */
function provenStake(reader: ProvenReader): (voter: Uint8Array) => Promise<bigint> {
  const records = new Map<string, ValidatorRecord>();
  const stakes = new Map<string, bigint>();
  const recordOf = async (address: Uint8Array): Promise<ValidatorRecord> => {
    const known = records.get(toHex(address));
    if (known !== undefined) return known;
    const record = await reader.read(
      (at) => caesarValidatorQuery(address, at),
      (response) => verifyCaesarValidator(address, response),
    );
    if (record === null) {
      throw new StakeCliError(
        StakeErrorCode.PROOF_INVALID,
        `the node proves a delegation to validator ${toHex(address)}, which it proves has no record`,
        1,
      );
    }
    records.set(toHex(address), record);
    return record;
  };
  return async (voter) => {
    const known = stakes.get(toHex(voter));
    if (known !== undefined) return known;
    const index = await reader.read(
      (at) => caesarDelegatorIndexQuery(voter, at),
      (response) => verifyCaesarDelegatorIndex(voter, response),
    );
    let total = 0n;
    for (const address of index) {
      const shares = await reader.read(
        (at) => caesarDelegationQuery(address, voter, at),
        (response) => verifyCaesarDelegation(address, voter, response),
      );
      total += sharesValue(await recordOf(address), shares);
    }
    stakes.set(toHex(voter), total);
    return total;
  };
}

/**
 * The proposal `proposer` submitted at `height` (the newest of them), proven at that height;
 * undefined when there is none.
 */
export async function findSubmittedProposal(
  client: NodeRpcClient,
  proposer: Uint8Array,
  height: number,
): Promise<ProposalRecord | undefined> {
  const reader = new ProvenReader(client, height);
  const count = await reader.read(caesarGovCountQuery, verifyCaesarGovCount);
  for (let id = count; id >= 1; id--) {
    const record = await reader.read(
      (at) => caesarProposalQuery(id, at),
      (response) => verifyCaesarProposal(id, response),
    );
    if (record === null || record.submitHeight < height) return undefined;
    if (bytesEqual(record.proposer, proposer)) return record;
  }
  return undefined;
}

/** The status as a word: voting, passed, rejected, rejected-no-quorum, applied, failed. */
export function statusName(status: ProposalStatus): string {
  return ProposalStatus[status].toLowerCase().replaceAll('_', '-');
}

export interface GovTxRequest {
  readonly client: NodeRpcClient;
  readonly genesis: GenesisDocument;
  readonly privateKey: KeyObject;
  /** A hybrid wallet's FALCON key: the proposal or vote is the hybrid account's. */
  readonly falcon?: FalconKeyPair | undefined;
  readonly tx: GovTx;
  readonly wait: boolean;
  readonly timeoutMs: number;
}

/** Signs and submits a governance transaction (and waits for its commit when asked). */
export function sendGovTx(request: GovTxRequest): Promise<SubmitOutcome> {
  const { client, genesis, privateKey, falcon, tx, wait, timeoutMs } = request;
  return submitTransaction({
    client,
    genesis,
    privateKey,
    module: CAESAR_MODULE_NAME,
    ...ledgerSubmission(genesis, privateKey, encodeGovTx(tx), falcon),
    wait,
    timeoutMs,
  });
}
