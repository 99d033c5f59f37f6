import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import { decodeStoredAmount } from './amount.js';
import { verifiedValue } from './client.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import { DEFAULT_GOV_PARAMS, GOV_PARAMS_KEY, decodeGovParams } from './gov-params.js';
import type { GovParams } from './gov-params.js';
import {
  GOV_ACTIVE_QUERY,
  GOV_COUNT_QUERY,
  GOV_DEPOSITS_QUERY,
  GOV_PARAMS_QUERY,
  GOV_PROPOSAL_QUERY,
  GOV_VOTES_QUERY,
} from './gov-query.js';
import {
  GOV_ACTIVE_KEY,
  GOV_COUNT_KEY,
  GOV_DEPOSITS_KEY,
  decodeProposal,
  decodeProposalIds,
  decodeVotes,
  proposalIdBytes,
  proposalKey,
  votesKey,
} from './gov-state.js';
import type { ProposalRecord, VoteRecord } from './gov-state.js';
import { CAESAR_MODULE_NAME } from './state.js';

/**
 * Governance queries and their proof-checking readers (docs/caesar.md, "Queries"). Each reader
 * verifies the answer against its state root (which the caller must trust, e.g. from a
 * committed header) and throws `CaesarStateError PROOF_INVALID` when it does not verify.
 */

function request(path: string, data: Uint8Array, height?: number): QueryRequest {
  const full = `${CAESAR_MODULE_NAME}/${path}`;
  return height === undefined ? { path: full, data } : { path: full, data, height };
}

function idData(id: number): Uint8Array {
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new CaesarError(CaesarErrorCode.INVALID_QUERY, `a proposal id is 1 or more, got ${id}`);
  }
  return proposalIdBytes(id);
}

const none = new Uint8Array(0);

export const caesarGovParamsQuery = (height?: number): QueryRequest =>
  request(GOV_PARAMS_QUERY, none, height);
export const caesarGovCountQuery = (height?: number): QueryRequest =>
  request(GOV_COUNT_QUERY, none, height);
export const caesarGovActiveQuery = (height?: number): QueryRequest =>
  request(GOV_ACTIVE_QUERY, none, height);
export const caesarGovDepositsQuery = (height?: number): QueryRequest =>
  request(GOV_DEPOSITS_QUERY, none, height);
export const caesarProposalQuery = (id: number, height?: number): QueryRequest =>
  request(GOV_PROPOSAL_QUERY, idData(id), height);
export const caesarVotesQuery = (id: number, height?: number): QueryRequest =>
  request(GOV_VOTES_QUERY, idData(id), height);

/** The proven governance parameters; the defaults when none are stored (proven absent). */
export function verifyCaesarGovParams(response: QueryResponse): GovParams {
  const value = verifiedValue(GOV_PARAMS_KEY, response);
  return value === null ? DEFAULT_GOV_PARAMS : decodeGovParams(value);
}

/** The proven number of proposals submitted so far (ids 1 to it). */
export function verifyCaesarGovCount(response: QueryResponse): number {
  return Number(decodeStoredAmount(verifiedValue(GOV_COUNT_KEY, response)));
}

/** The proven ids of the proposals in voting or waiting for their timelock. */
export function verifyCaesarGovActive(response: QueryResponse): number[] {
  const value = verifiedValue(GOV_ACTIVE_KEY, response);
  return value === null ? [] : decodeProposalIds(value);
}

/** The proven total of deposits held by proposals in voting. */
export function verifyCaesarGovDeposits(response: QueryResponse): bigint {
  return decodeStoredAmount(verifiedValue(GOV_DEPOSITS_KEY, response));
}

/** The proven proposal; null when there is none with that id (proven absent). */
export function verifyCaesarProposal(id: number, response: QueryResponse): ProposalRecord | null {
  const value = verifiedValue(proposalKey(id), response);
  return value === null ? null : decodeProposal(value);
}

/** The proven votes on a proposal, sorted by voter. */
export function verifyCaesarVotes(id: number, response: QueryResponse): VoteRecord[] {
  const value = verifiedValue(votesKey(id), response);
  return value === null ? [] : decodeVotes(value);
}
