import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { ProofError } from '../proof/errors.js';
import { verifyStamp } from '../proof/hashcash.js';
import { failure, VALID, WorkFailure, type PartVerdict } from '../proof/verdict.js';
import { transactionsRoot } from '../messages.js';
import type { TransactionStamp } from './encoding.js';
import type { ProofSubject } from './subject.js';

/**
 * Reads a transaction's hashcash stamp from its envelope (src/consensus/application). It must
 * derive `txHash` from the transaction bytes themselves (never trust a field of the envelope),
 * and return undefined for bytes that are not a valid envelope. It should not throw; if it does,
 * the transaction is treated as having no stamp.
 */
export type StampOf = (tx: Uint8Array) => TransactionStamp | undefined;

/** Re-executes the block on the parent state and returns the resulting application state root. */
export type Reexecute = () => Uint8Array;

function stampOfSafely(stampOf: StampOf, tx: Uint8Array): TransactionStamp | undefined {
  try {
    return stampOf(tx);
  } catch {
    return undefined;
  }
}

/**
 * The stamps in the proof are exactly the block's transactions' stamps, in block order, each
 * with at least the genesis difficulty. Costs one hash per transaction plus the envelope reads.
 */
export function checkStamps(subject: ProofSubject, stampOf: StampOf): PartVerdict<'work'> {
  const { proof, block, genesis } = subject;
  if (proof instanceof ProofError) {
    return failure('work', WorkFailure.UNDECODABLE_PROOF, proof.message, { code: proof.code });
  }
  const { transactions } = block;
  const difficulty = genesis.proof.work.stampDifficulty;
  if (proof.stamps.length !== transactions.length) {
    return failure(
      'work',
      WorkFailure.STAMP_COUNT_MISMATCH,
      `the proof has ${proof.stamps.length} stamps for ${transactions.length} transactions`,
      { stamps: proof.stamps.length, transactions: transactions.length },
    );
  }
  for (const [index, tx] of transactions.entries()) {
    const own = stampOfSafely(stampOf, tx);
    if (own === undefined) {
      return failure(
        'work',
        WorkFailure.TRANSACTION_WITHOUT_STAMP,
        `transaction ${index} is not a valid envelope and carries no stamp`,
        { transaction: index },
      );
    }
    const claimed = proof.stamps[index] as TransactionStamp;
    if (!bytesEqual(claimed.txHash, own.txHash) || claimed.nonce !== own.nonce) {
      return failure(
        'work',
        WorkFailure.STAMP_MISMATCH,
        `stamp ${index} of the proof is not the stamp of transaction ${index}`,
        { transaction: index, txHash: toHex(own.txHash), claimedTxHash: toHex(claimed.txHash) },
      );
    }
    if (!verifyStamp(own.txHash, own.nonce, difficulty)) {
      return failure(
        'work',
        WorkFailure.INSUFFICIENT_STAMP_WORK,
        `transaction ${index}: its stamp has fewer than ${difficulty} leading zero bits`,
        { transaction: index, txHash: toHex(own.txHash), difficulty },
      );
    }
  }
  return VALID;
}

/** The header's transactions root is the Merkle root of the block's transactions. */
export function checkTransactionsRoot(subject: ProofSubject): PartVerdict<'work'> {
  const { header, transactions } = subject.block;
  const root = transactionsRoot(transactions);
  if (bytesEqual(root, header.transactionsRoot)) return VALID;
  return failure(
    'work',
    WorkFailure.TRANSACTIONS_ROOT_MISMATCH,
    "the transactions do not hash to the header's transactions root",
    { expected: toHex(root), claimed: toHex(header.transactionsRoot) },
  );
}

/** Re-execution reaches `header.appStateRoot` (the state after this block). */
export function checkStateTransition(
  subject: ProofSubject,
  reexecute: Reexecute,
): PartVerdict<'work'> {
  let stateRoot: unknown;
  try {
    stateRoot = reexecute();
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
  const claimed = subject.block.header.appStateRoot;
  if (bytesEqual(stateRoot, claimed)) return VALID;
  return failure(
    'work',
    WorkFailure.STATE_ROOT_MISMATCH,
    "re-executing the block gives another state root than the header's",
    { expected: toHex(stateRoot), claimed: toHex(claimed) },
  );
}
