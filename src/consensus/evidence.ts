import { ConsensusError, ConsensusErrorCode } from './errors.js';
import type { DuplicateVoteEvidence, Vote } from './types.js';
import { checkVote, isWellFormedVote, type VerificationContext } from './verify.js';
import { sameValue, valueKey } from './vote-set.js';

/**
 * Duplicate-vote evidence (paper §5 "accountability"; Tendermint's DuplicateVoteEvidence): two
 * votes signed by one validator at one height, round and type for different values. No correct
 * validator signs both, so the pair proves misbehaviour to anyone holding the validator's key —
 * a later block includes it and the ledger slashes the validator.
 */

/** Evidence from two conflicting votes, in canonical order (by value: block hashes, then nil). */
export function duplicateVoteEvidence(first: Vote, second: Vote): DuplicateVoteEvidence {
  const a = withoutPq(first);
  const b = withoutPq(second);
  return valueKey(a.blockHash) < valueKey(b.blockHash)
    ? { voteA: a, voteB: b }
    : { voteA: b, voteB: a };
}

/**
 * A vote as this node puts it into evidence: without its FALCON signature, which proves nothing
 * here (the Ed25519 signature alone names the signer).
 */
function withoutPq(vote: Vote): Vote {
  if (vote.pqSignature === undefined) return vote;
  const { pqSignature: _dropped, ...rest } = vote;
  return rest;
}

/**
 * The evidence with both votes' FALCON signatures removed: what identifies its bytes for the
 * "already included" rule. That field is not checked here, so anyone could re-encode one offence
 * under new bytes by changing it; blocks still carry evidence as proposed (with or without it,
 * as earlier nodes built it), but it is stored and looked up by this form.
 */
export function canonicalEvidence(evidence: DuplicateVoteEvidence): DuplicateVoteEvidence {
  return { voteA: withoutPq(evidence.voteA), voteB: withoutPq(evidence.voteB) };
}

/** Identifies the offence (validator, height, round, type) so it is reported once. */
export function evidenceKey(evidence: DuplicateVoteEvidence): string {
  const { voteA } = evidence;
  return `${voteA.validator}/${voteA.height}/${voteA.round}/${voteA.type}`;
}

function invalid(message: string, detail: Record<string, unknown> = {}): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.INVALID_EVIDENCE, message, detail);
}

/**
 * Checks that `evidence` proves an equivocation by a validator of `context.validators` at a
 * height below `beforeHeight`. Returns the reason it does not, or undefined.
 */
export function checkDuplicateVoteEvidence(
  context: VerificationContext,
  evidence: DuplicateVoteEvidence,
  beforeHeight: number,
): ConsensusError | undefined {
  if (typeof evidence !== 'object' || evidence === null) return invalid('evidence is not a record');
  const { voteA, voteB } = evidence;
  if (typeof voteA !== 'object' || voteA === null || typeof voteB !== 'object' || voteB === null) {
    return invalid('evidence needs two votes');
  }
  // Before any comparison: `sameValue` and `valueKey` take a block hash or null, and evidence
  // from a block may hold anything (a string block hash would make them throw).
  if (!isWellFormedVote(voteA) || !isWellFormedVote(voteB)) {
    return invalid('evidence votes are not well formed');
  }
  if (
    voteA.validator !== voteB.validator ||
    voteA.type !== voteB.type ||
    voteA.height !== voteB.height ||
    voteA.round !== voteB.round
  ) {
    return invalid('votes are not by one validator at one height, round and type');
  }
  if (sameValue(voteA.blockHash, voteB.blockHash)) {
    return invalid('votes are for the same value');
  }
  if (valueKey(voteA.blockHash) > valueKey(voteB.blockHash)) {
    return invalid('votes are not in canonical order');
  }
  if (!(Number.isSafeInteger(voteA.height) && voteA.height < beforeHeight)) {
    return invalid('evidence is not from an earlier height', { height: voteA.height });
  }
  // Only the Ed25519 signatures matter here: they alone prove who signed what.
  const signatures: VerificationContext = { ...context, requirePq: false };
  for (const vote of [voteA, voteB]) {
    const rejection = checkVote(signatures, { ...vote, pqSignature: undefined });
    if (rejection !== undefined) {
      return invalid(`vote in evidence rejected: ${rejection}`, { validator: vote.validator });
    }
  }
  return undefined;
}
