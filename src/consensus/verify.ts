import type { KeyObject } from 'node:crypto';
import { ed25519Verify } from '../crypto/ed25519.js';
import type { FalconBackend } from '../crypto/falcon.js';
import {
  BLOCK_HASH_BYTES,
  precommitPqSignBytes,
  proposalSignBytes,
  voteSignBytes,
} from './messages.js';
import { proposerAt, type ProposerSchedule } from './proposer.js';
import type { Proposal, Vote } from './types.js';
import type { ValidatorSet } from './validator-set.js';

/**
 * Signature checks the engine runs on every message. Verification is pure (Ed25519 and FALCON
 * verification use no clock or randomness), so the state machine may call it; a driver may
 * inject a memoising or batching verifier with the same answers.
 */
export interface SignatureVerifier {
  ed25519(signature: Uint8Array, message: Uint8Array, publicKey: KeyObject): boolean;
  /** FALCON-1024 verification; without it precommits are accepted without `pqSignature`. */
  falcon?(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

export const ed25519SignatureVerifier: SignatureVerifier = {
  ed25519: (signature, message, publicKey) => ed25519Verify(signature, message, publicKey),
};

/** Ed25519 plus FALCON-1024 through one backend of the crypto layer's adapter. */
export function pqSignatureVerifier(falcon: FalconBackend): SignatureVerifier {
  return {
    ed25519: ed25519SignatureVerifier.ed25519,
    falcon: (signature, message, publicKey) => falcon.verify(signature, message, publicKey),
  };
}

/** Why the engine ignored a message. Reported in `message-rejected` actions for metrics. */
export enum MessageRejection {
  MALFORMED = 'MALFORMED',
  WRONG_HEIGHT = 'WRONG_HEIGHT',
  FUTURE_ROUND_LIMIT = 'FUTURE_ROUND_LIMIT',
  /** A proposal more than `maxProposalRoundLead` rounds above round_p (state.ts). */
  PROPOSAL_ROUND_TOO_FAR = 'PROPOSAL_ROUND_TOO_FAR',
  UNKNOWN_VALIDATOR = 'UNKNOWN_VALIDATOR',
  BAD_SIGNATURE = 'BAD_SIGNATURE',
  MISSING_PQ_SIGNATURE = 'MISSING_PQ_SIGNATURE',
  BAD_PQ_SIGNATURE = 'BAD_PQ_SIGNATURE',
  NOT_PROPOSER = 'NOT_PROPOSER',
  /** A fresh proposal (vr = -1) whose block names another validator as its proposer. */
  NOT_BLOCK_PROPOSER = 'NOT_BLOCK_PROPOSER',
  INVALID_VALID_ROUND = 'INVALID_VALID_ROUND',
  CONFLICTING_PROPOSAL = 'CONFLICTING_PROPOSAL',
  /** The proposal is kept (correct validators prevote nil for it) but its block is invalid. */
  INVALID_BLOCK = 'INVALID_BLOCK',
  UNREQUESTED = 'UNREQUESTED',
}

/** Largest round the engine accepts (rounds are signed as CBOR integers; keep them small). */
export const MAX_ROUND = 2 ** 31 - 1;

export interface VerificationContext {
  readonly chainId: string;
  readonly validators: ValidatorSet;
  readonly verifier: SignatureVerifier;
  /** Precommits for a block must carry a valid FALCON-1024 signature. */
  readonly requirePq: boolean;
}

function isHeight(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

function isRound(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_ROUND;
}

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === BLOCK_HASH_BYTES;
}

/** A lone UTF-16 surrogate (high not followed by low, or low not preceded by high). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A string that canonical CBOR can encode: one without lone surrogates, which have no UTF-8
 * form (`encodeCanonical` refuses them, so a vote or header holding one could not be hashed).
 */
export function isEncodableText(value: unknown): value is string {
  return typeof value === 'string' && !LONE_SURROGATE.test(value);
}

/** Shape of a vote: types and ranges the sign bytes and the commit hash can encode. */
export function isWellFormedVote(vote: Vote): boolean {
  return (
    typeof vote === 'object' &&
    vote !== null &&
    (vote.type === 'prevote' || vote.type === 'precommit') &&
    isHeight(vote.height) &&
    isRound(vote.round) &&
    (vote.blockHash === null || isHash(vote.blockHash)) &&
    Number.isSafeInteger(vote.timestamp) &&
    vote.timestamp >= 0 &&
    isEncodableText(vote.validator) &&
    vote.signature instanceof Uint8Array &&
    (vote.pqSignature === undefined || vote.pqSignature instanceof Uint8Array)
  );
}

/**
 * Checks a vote's signer and signatures (Ed25519 always; FALCON-1024 on precommits for a block
 * when the verifier has FALCON, required when `requirePq`). Returns the reason it is not
 * acceptable, or undefined.
 */
export function checkVote(context: VerificationContext, vote: Vote): MessageRejection | undefined {
  if (!isWellFormedVote(vote)) return MessageRejection.MALFORMED;
  const index = context.validators.indexOf.get(vote.validator);
  if (index === undefined) return MessageRejection.UNKNOWN_VALIDATOR;
  const key = context.validators.verificationKeys[index] as KeyObject;
  if (!context.verifier.ed25519(vote.signature, voteSignBytes(context.chainId, vote), key)) {
    return MessageRejection.BAD_SIGNATURE;
  }
  if (vote.type === 'precommit' && vote.blockHash !== null) {
    const falcon = context.verifier.falcon;
    const pqKey = context.validators.validators[index]?.pqPublicKey;
    if (vote.pqSignature === undefined) {
      if (context.requirePq) return MessageRejection.MISSING_PQ_SIGNATURE;
    } else if (falcon !== undefined) {
      const message = precommitPqSignBytes(context.chainId, {
        height: vote.height,
        round: vote.round,
        blockHash: vote.blockHash,
      });
      if (pqKey === undefined || !falcon(vote.pqSignature, message, pqKey)) {
        return MessageRejection.BAD_PQ_SIGNATURE;
      }
    } else if (context.requirePq) {
      return MessageRejection.BAD_PQ_SIGNATURE;
    }
  } else if (vote.pqSignature !== undefined) {
    return MessageRejection.MALFORMED;
  }
  return undefined;
}

/**
 * Checks that a proposal is from proposer(h, r) (paper lines 22, 28, 36, 49: "from
 * proposer(h_p, r)"), that vr is -1 or below r, and the proposer's signature over the block
 * hash. Computing proposer(h, r) costs up to r elections (proposer.ts), so the caller bounds r
 * first (the engine: `maxProposalRoundLead`). The block's content is checked separately (block.ts), since an invalid block in a
 * correctly signed proposal still makes correct validators prevote nil (line 26).
 */
export function checkProposal(
  context: VerificationContext,
  schedule: ProposerSchedule,
  proposal: Proposal,
  hash: Uint8Array,
): MessageRejection | undefined {
  if (
    typeof proposal !== 'object' ||
    proposal === null ||
    !isHeight(proposal.height) ||
    !isRound(proposal.round) ||
    !Number.isSafeInteger(proposal.validRound) ||
    typeof proposal.proposer !== 'string' ||
    !(proposal.signature instanceof Uint8Array)
  ) {
    return MessageRejection.MALFORMED;
  }
  if (proposal.validRound < -1 || proposal.validRound >= proposal.round) {
    return MessageRejection.INVALID_VALID_ROUND;
  }
  const proposer = proposerAt(schedule, proposal.round);
  if (proposal.proposer !== proposer.address) return MessageRejection.NOT_PROPOSER;
  // A fresh proposal (vr = -1) is the proposer's own getValue(): its block must name it, or a
  // later round's proposer could pass off an earlier proposer's space and time proofs (which
  // bind the header's proposer, not the round) with transactions of its own choosing. A
  // re-proposal (vr >= 0) keeps the block's original proposer; it needs a polka on that block.
  if (proposal.validRound === -1 && proposal.block?.header?.proposer !== proposal.proposer) {
    return MessageRejection.NOT_BLOCK_PROPOSER;
  }
  const index = context.validators.indexOf.get(proposer.address) as number;
  const key = context.validators.verificationKeys[index] as KeyObject;
  const message = proposalSignBytes(context.chainId, {
    height: proposal.height,
    round: proposal.round,
    blockHash: hash,
    validRound: proposal.validRound,
    proposer: proposal.proposer,
  });
  if (!context.verifier.ed25519(proposal.signature, message, key)) {
    return MessageRejection.BAD_SIGNATURE;
  }
  return undefined;
}
