import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { invalidInput } from './errors.js';
import { verifyStamp } from './hashcash.js';
import type { ProofHeader } from './header.js';
import { transactionsRoot } from './header.js';
import type { WorkParams } from './params.js';
import type { PartVerdict } from './verdict.js';
import { failure, VALID, WorkFailure } from './verdict.js';

/**
 * PoWork ("what"): the block's transactions, each with the hashcash stamp its client minted,
 * and the state root every validator reaches by re-executing them.
 */
export interface TransactionStamp {
  /** Hash of the transaction without its stamp; the leaf of `header.transactionsRoot`. */
  readonly txHash: Uint8Array;
  readonly nonce: number;
}

export interface WorkProof {
  /** One stamp per transaction, in block order. */
  readonly stamps: readonly TransactionStamp[];
}

/**
 * Re-executes the block the header describes against the parent state and returns the
 * resulting application state root (32 bytes). Provided by the application layer; it may throw
 * if the block cannot be executed.
 */
export type StateTransition = (header: ProofHeader) => Uint8Array;

export interface WorkVerification {
  readonly header: ProofHeader;
  readonly params: WorkParams;
  readonly reexecute: StateTransition;
}

/** Builds the work part; throws `PROOF_INVALID_INPUT` for a stamp below the difficulty. */
export function buildWorkProof(stamps: readonly TransactionStamp[], params: WorkParams): WorkProof {
  for (const [i, stamp] of stamps.entries()) {
    if (!verifyStamp(stamp.txHash, stamp.nonce, params.stampDifficulty)) {
      throw invalidInput(`transaction ${i} has no stamp of ${params.stampDifficulty} bits`, {
        transaction: i,
      });
    }
  }
  return { stamps: stamps.map((stamp) => ({ txHash: stamp.txHash.slice(), nonce: stamp.nonce })) };
}

/**
 * Checks the stamps are exactly the header's transactions (their Merkle root), each stamp's
 * work, and finally — the expensive step — that re-executing the block yields the header's
 * state root.
 */
export function verifyWorkProof(
  work: WorkProof,
  verification: WorkVerification,
): PartVerdict<'work'> {
  const { header, params, reexecute } = verification;
  const root = transactionsRoot(work.stamps.map((stamp) => stamp.txHash));
  if (!bytesEqual(root, header.transactionsRoot)) {
    return failure(
      'work',
      WorkFailure.TRANSACTIONS_ROOT_MISMATCH,
      "the stamped transactions do not hash to the header's transactions root",
      { expected: toHex(header.transactionsRoot), actual: toHex(root) },
    );
  }
  for (const [i, stamp] of work.stamps.entries()) {
    if (!verifyStamp(stamp.txHash, stamp.nonce, params.stampDifficulty)) {
      return failure(
        'work',
        WorkFailure.INSUFFICIENT_STAMP_WORK,
        `transaction ${i}: its stamp has fewer than ${params.stampDifficulty} leading zero bits`,
        { transaction: i, txHash: toHex(stamp.txHash), difficulty: params.stampDifficulty },
      );
    }
  }
  let stateRoot: Uint8Array;
  try {
    stateRoot = reexecute(header);
  } catch (error) {
    return failure(
      'work',
      WorkFailure.REEXECUTION_FAILED,
      `re-executing the block failed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  if (!(stateRoot instanceof Uint8Array) || stateRoot.length !== 32) {
    return failure(
      'work',
      WorkFailure.REEXECUTION_FAILED,
      're-executing the block did not produce a 32-byte state root',
    );
  }
  if (!bytesEqual(stateRoot, header.stateRoot)) {
    return failure(
      'work',
      WorkFailure.STATE_ROOT_MISMATCH,
      "re-executing the block gives another state root than the header's",
      { expected: toHex(stateRoot), claimed: toHex(header.stateRoot) },
    );
  }
  return VALID;
}
