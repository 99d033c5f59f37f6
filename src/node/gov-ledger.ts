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
import { submitTransaction, type SubmitOptions, type SubmitOutcome } from './tx-submit.js';
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

/** Proven reads `readProvenProposals` has in flight at most while it weighs votes. */
export const GOV_READ_CONCURRENCY = 16;
/** How long `readProvenProposals` may take by default (`hypermesh gov list --timeout-ms`). */
export const DEFAULT_GOV_LIST_TIMEOUT_MS = 120_000;

export interface ReadProposalsOptions {
  readonly height?: number;
  readonly limit?: number;
  /**
   * The time the whole read may take (default `DEFAULT_GOV_LIST_TIMEOUT_MS`); past it the read
   * stops with `StakeErrorCode.DEADLINE_EXCEEDED`. Weighing a proposal's votes costs one proven
   * read per voter and one per delegation of each (up to 2,000 voters × 33).
   */
  readonly timeoutMs?: number;
}

/**
 * The governance parameters and the newest `limit` proposals with their votes, each answer's
 * proof checked, all at one height; for proposals in voting also the tally so far, from proven
 * validator records and delegations (the same weighing the end of block applies). The voters'
 * stakes are read `GOV_READ_CONCURRENCY` reads at a time; the whole read is bounded by
 * `timeoutMs`.
 */
export async function readProvenProposals(
  client: NodeRpcClient,
  options: ReadProposalsOptions = {},
): Promise<ProvenProposals> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_GOV_LIST_TIMEOUT_MS;
  const stop = new AbortController();
  const progress = { reads: 0 };
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      stop.abort();
      reject(
        new StakeCliError(
          StakeErrorCode.DEADLINE_EXCEEDED,
          `the proposals were not read within ${timeoutMs} ms (${progress.reads} proven reads so far, ${GOV_READ_CONCURRENCY} at a time while weighing votes); read fewer with --limit or allow more time with --timeout-ms`,
          1,
        ),
      );
    }, timeoutMs);
  });
  const work = readProposals(client, options, stop.signal, progress);
  // Past the deadline its late failure (the reads it stopped) is not anyone's to handle.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
    // Whatever is still queued does not start (a failed read, or the deadline, ended the read).
    stop.abort();
  }
}

async function readProposals(
  client: NodeRpcClient,
  options: ReadProposalsOptions,
  signal: AbortSignal,
  progress: { reads: number },
): Promise<ProvenProposals> {
  const reader = new ProvenReader(client, options.height);
  const read: ProvenReader['read'] = (build, check) => {
    signal.throwIfAborted();
    progress.reads++;
    return reader.read(build, check);
  };
  const staking = await read(caesarStakingParamsQuery, verifyCaesarStakingParams);
  if (staking === null) {
    throw new StakeCliError(
      StakeErrorCode.STAKING_OFF,
      'the node proves that its chain has no staking, so no governance',
      1,
    );
  }
  const params = await read(caesarGovParamsQuery, verifyCaesarGovParams);
  const count = await read(caesarGovCountQuery, verifyCaesarGovCount);
  const lowest = Math.max(1, count - (options.limit ?? count) + 1);
  let stake: ((voter: Uint8Array) => Promise<bigint>) | undefined;
  const proposals: ProposalView[] = [];
  for (let id = count; id >= lowest; id--) {
    const record = await read(
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
    const votes = await read(
      (at) => caesarVotesQuery(id, at),
      (response) => verifyCaesarVotes(id, response),
    );
    if (record.status !== ProposalStatus.VOTING) {
      proposals.push({ record, votes });
      continue;
    }
    // The height is fixed by the first read: the weighing's reads all ask for it.
    stake ??= provenStake(bounded(read, GOV_READ_CONCURRENCY, signal));
    const weighed = await Promise.all(votes.map((vote) => stake!(vote.voter)));
    const weights = new Map(votes.map((vote, i) => [toHex(vote.voter), weighed[i]!]));
    const counted = countVotes(votes, (voter) => weights.get(toHex(voter)) ?? 0n);
    const bonded = await read(caesarBondedQuery, verifyCaesarBonded);
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
 * `read` with at most `limit` reads in flight; the others wait in order, and none starts once
 * `signal` aborts.
 */
function bounded(
  read: ProvenReader['read'],
  limit: number,
  signal: AbortSignal,
): ProvenReader['read'] {
  let active = 0;
  const waiting: (() => void)[] = [];
  const acquire = (): Promise<void> => {
    if (active < limit) {
      active++;
      return Promise.resolve();
    }
    // The slot is handed over by `release`, without counting it free in between.
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next === undefined) active--;
    else next();
  };
  return async (build, check) => {
    await acquire();
    try {
      signal.throwIfAborted();
      return await read(build, check);
    } finally {
      release();
    }
  };
}

/**
 * An account's bonded stake from proven answers: its proven delegator index, then the worth of
 * its delegation at each validator the index names (at most `MAX_DELEGATIONS_PER_ACCOUNT`), as
 * the end of block weighs it. Records are read once, and each voter once per reader, however
 * many ask at once.
 */
function provenStake(read: ProvenReader['read']): (voter: Uint8Array) => Promise<bigint> {
  const records = new Map<string, Promise<ValidatorRecord>>();
  const stakes = new Map<string, Promise<bigint>>();
  const readRecord = async (address: Uint8Array): Promise<ValidatorRecord> => {
    const record = await read(
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
    return record;
  };
  const recordOf = (address: Uint8Array): Promise<ValidatorRecord> => {
    let record = records.get(toHex(address));
    if (record === undefined) {
      record = readRecord(address);
      records.set(toHex(address), record);
    }
    return record;
  };
  const readStake = async (voter: Uint8Array): Promise<bigint> => {
    const index = await read(
      (at) => caesarDelegatorIndexQuery(voter, at),
      (response) => verifyCaesarDelegatorIndex(voter, response),
    );
    const worths = await Promise.all(
      index.map(async (address) => {
        const [shares, record] = await Promise.all([
          read(
            (at) => caesarDelegationQuery(address, voter, at),
            (response) => verifyCaesarDelegation(address, voter, response),
          ),
          recordOf(address),
        ]);
        return sharesValue(record, shares);
      }),
    );
    return worths.reduce((total, worth) => total + worth, 0n);
  };
  return (voter) => {
    let stake = stakes.get(toHex(voter));
    if (stake === undefined) {
      stake = readStake(voter);
      stakes.set(toHex(voter), stake);
    }
    return stake;
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
  /** Told as soon as the node admits the transaction, before waiting. */
  readonly onAdmitted?: SubmitOptions['onAdmitted'];
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
    onAdmitted: request.onAdmitted,
  });
}
