import { decodeCanonical, encodeCanonical } from '../codec/cbor.js';
import type { ModuleState, ModuleStateReader } from '../consensus/application/module.js';
import { concatBytes } from '../crypto/bytes.js';
import { ADDRESS_BYTES } from './address.js';
import { MAX_AMOUNT_BYTES, bigintToBytes, bytesToBigint } from './amount.js';
import { CaesarStateError, CaesarStateErrorCode } from './errors.js';
import { isGovernableParam } from './gov-changes.js';
import type { ParamChange } from './gov-changes.js';
import { MAX_TITLE_LENGTH, TITLE_PATTERN, VoteOption } from './gov-tx.js';
import { readAmount, writeAmount } from './state.js';

/**
 * Caesar's governance state, under `caesar/` (docs/caesar.md, "Governance state"):
 *
 *   gov/params            governance parameters (gov-params.ts); absent: the defaults
 *   gov/count             proposals submitted so far (stored like an amount); ids are 1..count
 *   gov/active            CBOR array of the ids in voting or waiting for their timelock, ascending
 *   gov/deposits          deposits held, total (stored like an amount)
 *   gov/p/<id u64 BE>     the proposal record (below)
 *   gov/v/<id u64 BE>     CBOR array of [voter 32, option] sorted by voter
 *
 * Nothing is written while nobody uses governance, so a chain's state before its first
 * proposal is what it was before governance existed.
 */

const encoder = new TextEncoder();
export const GOV_COUNT_KEY = encoder.encode('gov/count');
export const GOV_ACTIVE_KEY = encoder.encode('gov/active');
export const GOV_DEPOSITS_KEY = encoder.encode('gov/deposits');
const PROPOSAL_PREFIX = encoder.encode('gov/p/');
const VOTES_PREFIX = encoder.encode('gov/v/');

/** Most proposals in voting or waiting for their timelock at once (the end of block reads each). */
export const MAX_ACTIVE_PROPOSALS = 32;
/** Most voters one proposal records (the votes are one value, rewritten by each vote). */
export const MAX_PROPOSAL_VOTERS = 2_000;

export enum ProposalStatus {
  /** Accepting votes until the end of block `votingEnd`. */
  VOTING = 0,
  /** Passed; its changes apply at the end of block `executeHeight`. */
  PASSED = 1,
  /** Quorum reached but not the threshold; the deposit was returned. */
  REJECTED = 2,
  /** Too little stake voted; the deposit was burnt. */
  REJECTED_NO_QUORUM = 3,
  /** Passed and applied at `executeHeight`. */
  APPLIED = 4,
  /** Passed, but at `executeHeight` its changes no longer fit the parameters then in force. */
  FAILED = 5,
}

export interface Tally {
  readonly yes: bigint;
  readonly no: bigint;
  readonly abstain: bigint;
  /** Total bonded stake when the votes were counted. */
  readonly bonded: bigint;
}

export interface ProposalRecord {
  readonly id: number;
  /** The proposer's account address (32 bytes). */
  readonly proposer: Uint8Array;
  readonly title: string;
  readonly changes: readonly ParamChange[];
  readonly deposit: bigint;
  readonly submitHeight: number;
  /** The last height whose block accepts votes; the tally is at the end of this block. */
  readonly votingEnd: number;
  /** votingEnd + timelock (timelock as at submission): where a passed proposal applies. */
  readonly executeHeight: number;
  readonly status: ProposalStatus;
  /** The final tally; absent while voting. */
  readonly tally?: Tally;
}

export interface VoteRecord {
  readonly voter: Uint8Array;
  readonly option: VoteOption;
}

function corrupt(what: string, why: string): never {
  throw new CaesarStateError(CaesarStateErrorCode.CORRUPT_VALUE, `${what}: ${why}`);
}

function idBytes(id: number): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(id / 2 ** 32));
  view.setUint32(4, id >>> 0);
  return out;
}

/** The 8-byte big-endian form of a proposal id (what the proposal queries take). */
export const proposalIdBytes = idBytes;

export function proposalIdFromBytes(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getUint32(0) * 2 ** 32 + view.getUint32(4);
}

export const proposalKey = (id: number): Uint8Array => concatBytes(PROPOSAL_PREFIX, idBytes(id));
export const votesKey = (id: number): Uint8Array => concatBytes(VOTES_PREFIX, idBytes(id));

function decode(value: Uint8Array, what: string): unknown {
  try {
    return decodeCanonical(value);
  } catch (error) {
    return corrupt(what, error instanceof Error ? error.message : String(error));
  }
}

const isHeight = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

function storedBigint(value: unknown, what: string): bigint {
  if (!(value instanceof Uint8Array) || value.length > MAX_AMOUNT_BYTES || value[0] === 0) {
    corrupt(what, 'an amount is at most 16 big-endian bytes without a leading zero');
  }
  return bytesToBigint(value);
}

export function encodeProposal(record: ProposalRecord): Uint8Array {
  const { tally } = record;
  return encodeCanonical({
    id: record.id,
    proposer: record.proposer,
    title: record.title,
    changes: record.changes.map(({ name, value }) => [name, bigintToBytes(value)]),
    deposit: bigintToBytes(record.deposit),
    submit: record.submitHeight,
    end: record.votingEnd,
    execute: record.executeHeight,
    status: record.status,
    tally:
      tally === undefined
        ? []
        : [tally.yes, tally.no, tally.abstain, tally.bonded].map((v) => bigintToBytes(v)),
  });
}

export function decodeProposal(value: Uint8Array): ProposalRecord {
  const what = 'proposal record';
  const map = decode(value, what) as Record<string, unknown> | null;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) corrupt(what, 'not a map');
  if (Object.keys(map).length !== 10) corrupt(what, 'expected 10 fields');
  const { id, proposer, title, changes, deposit, submit, end, execute, status, tally } = map;
  if (!isHeight(id) || id < 1) corrupt(what, 'bad id');
  if (!(proposer instanceof Uint8Array) || proposer.length !== ADDRESS_BYTES) {
    corrupt(what, 'bad proposer');
  }
  if (typeof title !== 'string' || title.length > MAX_TITLE_LENGTH || !TITLE_PATTERN.test(title)) {
    corrupt(what, 'bad title');
  }
  if (!isHeight(submit) || !isHeight(end) || !isHeight(execute)) corrupt(what, 'bad heights');
  if (!isHeight(status) || status > ProposalStatus.FAILED) corrupt(what, 'bad status');
  if (!Array.isArray(changes) || changes.length === 0) corrupt(what, 'bad changes');
  const parsed = changes.map((item: unknown): ParamChange => {
    if (!Array.isArray(item) || item.length !== 2) corrupt(what, 'a change is not 2 fields');
    const [name, bytes] = item as unknown[];
    if (typeof name !== 'string' || !isGovernableParam(name)) corrupt(what, 'bad parameter');
    return { name, value: storedBigint(bytes, what) };
  });
  if (!Array.isArray(tally) || (tally.length !== 0 && tally.length !== 4)) {
    corrupt(what, 'bad tally');
  }
  const counted = (tally as unknown[]).map((item) => storedBigint(item, what));
  const record: ProposalRecord = {
    id,
    proposer,
    title,
    changes: parsed,
    deposit: storedBigint(deposit, what),
    submitHeight: submit,
    votingEnd: end,
    executeHeight: execute,
    status: status as ProposalStatus,
  };
  if (counted.length === 0) return record;
  const [yes, no, abstain, bonded] = counted as [bigint, bigint, bigint, bigint];
  return { ...record, tally: { yes, no, abstain, bonded } };
}

export function readProposal(state: ModuleStateReader, id: number): ProposalRecord | undefined {
  const value = state.get(proposalKey(id));
  return value === null ? undefined : decodeProposal(value);
}

export function writeProposal(state: ModuleState, record: ProposalRecord): void {
  state.set(proposalKey(record.id), encodeProposal(record));
}

export function encodeVotes(votes: readonly VoteRecord[]): Uint8Array {
  return encodeCanonical(votes.map(({ voter, option }) => [voter, option]));
}

export function decodeVotes(value: Uint8Array): VoteRecord[] {
  const what = 'votes';
  const list = decode(value, what);
  if (!Array.isArray(list)) corrupt(what, 'not an array');
  return list.map((item: unknown): VoteRecord => {
    if (!Array.isArray(item) || item.length !== 2) corrupt(what, 'a vote is not 2 fields');
    const [voter, option] = item as unknown[];
    if (!(voter instanceof Uint8Array) || voter.length !== ADDRESS_BYTES) {
      corrupt(what, 'bad voter');
    }
    if (option !== VoteOption.YES && option !== VoteOption.NO && option !== VoteOption.ABSTAIN) {
      corrupt(what, 'bad option');
    }
    return { voter, option };
  });
}

export function readVotes(state: ModuleStateReader, id: number): VoteRecord[] {
  const value = state.get(votesKey(id));
  return value === null ? [] : decodeVotes(value);
}

export function writeVotes(state: ModuleState, id: number, votes: readonly VoteRecord[]): void {
  if (votes.length === 0) state.delete(votesKey(id));
  else state.set(votesKey(id), encodeVotes(votes));
}

export function decodeProposalIds(value: Uint8Array): number[] {
  const list = decode(value, 'active proposals');
  if (!Array.isArray(list) || !list.every((id) => isHeight(id) && id >= 1)) {
    corrupt('active proposals', 'expected an array of proposal ids');
  }
  return list as number[];
}

export function readActiveProposals(state: ModuleStateReader): number[] {
  const value = state.get(GOV_ACTIVE_KEY);
  return value === null ? [] : decodeProposalIds(value);
}

export function writeActiveProposals(state: ModuleState, ids: readonly number[]): void {
  if (ids.length === 0) state.delete(GOV_ACTIVE_KEY);
  else state.set(GOV_ACTIVE_KEY, encodeCanonical([...ids].sort((a, b) => a - b)));
}

export const readProposalCount = (state: ModuleStateReader): number =>
  Number(readAmount(state, GOV_COUNT_KEY));

export function writeProposalCount(state: ModuleState, count: number): void {
  writeAmount(state, GOV_COUNT_KEY, BigInt(count));
}
