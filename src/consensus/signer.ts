import type { KeyObject } from 'node:crypto';
import { ed25519Sign } from '../crypto/ed25519.js';
import { precommitPqSignBytes, proposalSignBytes, voteSignBytes, blockHash } from './messages.js';
import type { Proposal, ProposalRequest, Vote, VoteRequest } from './types.js';

/**
 * Signing helpers for a driver that answers `sign-vote` and `sign-proposal` actions. They do not
 * guard against equivocation by themselves: run `checkSigning` (double-sign-guard.ts) first.
 */

/** Signs `request` with the timestamp max(`now`, request.notBefore). */
export function signVote(
  chainId: string,
  request: VoteRequest,
  now: number,
  privateKey: KeyObject,
): Vote {
  const unsigned = {
    type: request.type,
    height: request.height,
    round: request.round,
    blockHash: request.blockHash,
    timestamp: Math.max(Math.floor(now), request.notBefore),
    validator: request.validator,
  };
  return { ...unsigned, signature: ed25519Sign(voteSignBytes(chainId, unsigned), privateKey) };
}

/** The bytes a precommit's FALCON-1024 signature covers (sign them with the FALCON adapter). */
export function precommitPqMessage(chainId: string, vote: Vote): Uint8Array | null {
  if (vote.type !== 'precommit' || vote.blockHash === null) return null;
  return precommitPqSignBytes(chainId, vote as Vote & { blockHash: Uint8Array });
}

/** Signs a proposal; `hash` is the block hash when the caller has it already. */
export function signProposal(
  chainId: string,
  request: ProposalRequest,
  privateKey: KeyObject,
  hash: Uint8Array = blockHash(request.block.header),
): Proposal {
  const message = proposalSignBytes(chainId, {
    height: request.height,
    round: request.round,
    blockHash: hash,
    validRound: request.validRound,
    proposer: request.proposer,
  });
  return { ...request, signature: ed25519Sign(message, privateKey) };
}
