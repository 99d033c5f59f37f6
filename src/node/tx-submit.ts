import type { KeyObject } from 'node:crypto';
import { toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import {
  SEQUENCE_QUERY,
  accountSequenceKey,
  accountSequenceQuery,
  buildTransaction,
  decodeSequence,
  sequenceKey,
} from '../consensus/application/index.js';
import type { QueryResponse } from '../consensus/app.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import { MempoolRejectionCode } from '../consensus/mempool.js';
import type { NodeRpcClient, TxStatus } from '../consensus/net/index.js';
import { StoqError } from '../stoq/index.js';
import { decodeStateProof, verifyStateProof } from '../storage/index.js';
import { CliError } from './cli-error.js';
import { visible } from './io.js';
import { committedRootsOf } from './verified-root.js';

/**
 * What the transaction tools (`hypermesh tx kv-set`, `hypermesh wallet send`) share: build a
 * signed, stamped transaction with the sender's next sequence number — after its transactions
 * already pending in the node's mempool — submit it through a node's API, and optionally wait
 * until it is committed.
 */
export type SubmitOutcome =
  | {
      /** The node refused it at admission (`checkTx`); nothing was submitted to consensus. */
      readonly admitted: false;
      readonly txHash: string;
      readonly sequence: number;
      /** The stable refusal code (`TX_…`, `CAESAR_INSUFFICIENT_FUNDS`, `MEMPOOL_BUSY`, …). */
      readonly code: string;
      readonly message: string;
    }
  | (Admission & {
      readonly admitted: true;
      /**
       * The final status, or the last one seen when not waiting / not committed in time.
       * `unknown` while waiting: the node's mempool dropped it (with `evicted`, the refusal
       * of the re-check after a block), and waiting stopped.
       */
      readonly status: TxStatus;
    });

/** A transaction the node admitted (or already held). */
export interface Admission {
  readonly txHash: string;
  readonly sequence: number;
  /**
   * The node already held this very transaction (the same bytes or txHash): nothing new was
   * admitted, e.g. a resubmission of one still pending. False from a node that does not say.
   */
  readonly duplicate: boolean;
}

/**
 * A module's sequence account (`Module.sequenceAccount`, e.g. a Caesar hybrid account: module
 * `caesar`, its hybrid address), whose own sequence numbers its transactions use.
 */
export interface SequenceAccount {
  readonly module: string;
  readonly account: Uint8Array;
}

export interface SubmitOptions {
  /**
   * The node's API; it must check state roots against committed headers (`withCommittedRoots`,
   * as operator sessions' clients do), since the sender's sequence is a proven read.
   */
  readonly client: NodeRpcClient;
  readonly genesis: GenesisDocument;
  readonly privateKey: KeyObject;
  readonly module: string;
  /** The body, or how to make it for the sender's next sequence (a hybrid account signs it). */
  readonly body: Uint8Array | ((sequence: number) => Promise<Uint8Array>);
  /**
   * The module's sequence account the body acts for (a hybrid account), whose next sequence
   * the transaction takes; absent, the sender key's.
   */
  readonly sequenceAccount?: SequenceAccount | undefined;
  readonly wait: boolean;
  readonly timeoutMs: number;
  /**
   * Called once the node admitted the transaction, before any waiting: so that the caller can
   * say what was sent even if waiting fails.
   */
  readonly onAdmitted?: ((admission: Admission) => void) | undefined;
}

/** How often the status is asked while waiting: the node API has no subscription yet. */
const STATUS_POLL_MS = 100;

/**
 * The sender's next sequence from a node's `acct/sequence` answer (with `account`, the next
 * sequence of that module's sequence account, `acct/sequence/<module>`), once its Merkle proof
 * checks against the state root it names and that root against the committed header of its
 * height (verified-root.ts). Taken on the node's word, a sequence one too high would have the sender
 * sign a transaction that waits in mempools for the sequence before it and executes once that
 * one is used — perhaps long after the sender gave it up. Throws `CliError` when the answer does
 * not verify, `CommittedRootError` when its root is not committed.
 */
export async function provenSequence(
  client: NodeRpcClient,
  sender: Uint8Array,
  account?: SequenceAccount,
): Promise<{ readonly sequence: number; readonly height: number | null }> {
  const roots = committedRootsOf(client);
  const answer = await client.query(
    account === undefined
      ? { path: SEQUENCE_QUERY, data: sender }
      : accountSequenceQuery(account.module, account.account),
  );
  const sequence = verifiedSequence(sender, account, answer);
  await roots.check(answer.height, answer.stateRoot);
  return { sequence, height: answer.height };
}

function verifiedSequence(
  sender: Uint8Array,
  account: SequenceAccount | undefined,
  answer: QueryResponse,
): number {
  const whose =
    account === undefined ? toHex(sender) : `${account.module} account ${toHex(account.account)}`;
  const refuse = (reason: string): never => {
    throw new CliError(
      `the node's answer for the sequence of ${whose} does not verify: ${reason}`,
      1,
    );
  };
  if (answer.proof === undefined) return refuse('it carries no proof');
  let proven: boolean;
  try {
    proven = verifyStateProof(
      answer.stateRoot,
      account === undefined
        ? sequenceKey(sender)
        : accountSequenceKey(account.module, account.account),
      answer.value,
      decodeStateProof(answer.proof),
    );
  } catch (error) {
    return refuse((error as Error).message);
  }
  if (!proven) return refuse('its proof does not verify against its state root');
  try {
    return decodeSequence(answer.value);
  } catch (error) {
    return refuse((error as Error).message);
  }
}

/**
 * Signs with the proven committed sequence and sends once. The sequence is never moved past the
 * sender's pending transactions nor retried on `MEMPOOL_SEQUENCE_TAKEN`: that the node holds
 * pending ones is its word, unproven, and each re-signed transaction would be one more valid
 * transaction a dishonest node could keep and relay later (a "taken" answer four times would
 * have yielded four transfers), and a command run again after a lost answer must build the same
 * bytes, which the mempool answers as a duplicate (`duplicate`: "already pending, not sent
 * again"). A taken sequence is reported with what the node says is pending, and the advice to
 * wait for the pending transaction to commit.
 */
export async function submitTransaction(options: SubmitOptions): Promise<SubmitOutcome> {
  const { client, genesis, privateKey } = options;
  const sender = ed25519RawPublicKey(privateKey);
  // Nothing is signed before the sequence is proven.
  const { sequence } = await provenSequence(client, sender, options.sequenceAccount);
  const body = typeof options.body === 'function' ? await options.body(sequence) : options.body;
  const tx = buildTransaction({
    chainId: genesis.chainId,
    privateKey,
    sequence,
    module: options.module,
    body,
    stampDifficulty: genesis.proof.work.stampDifficulty,
  });
  const txHash = toHex(tx.txHash);
  const submitted = await client.submitTx(tx.bytes);
  if (!submitted.ok) {
    const message =
      submitted.code === MempoolRejectionCode.SEQUENCE_TAKEN
        ? await takenAdvice(client, sender, options.sequenceAccount, sequence, submitted.message)
        : submitted.message;
    return { admitted: false, txHash, sequence, code: submitted.code, message };
  }
  const admission: Admission = { txHash, sequence, duplicate: submitted.duplicate === true };
  options.onAdmitted?.(admission);
  const status = options.wait
    ? await waitForCommit(client, tx.txHash, options.timeoutMs)
    : { status: 'pending' as const };
  return { admitted: true, ...admission, status };
}

/** The refusal of a taken sequence, with the node's (unproven) count of pending ones. */
async function takenAdvice(
  client: NodeRpcClient,
  sender: Uint8Array,
  account: SequenceAccount | undefined,
  sequence: number,
  refusal: string,
): Promise<string> {
  // Only for the message: the node's word, unproven (a node without the method: nothing said).
  const pending = await client
    .pendingSequence(account === undefined ? { sender } : { account })
    .catch(() => null);
  const held =
    pending !== null && pending > sequence
      ? `the node says ${pending - sequence} transaction(s) of the sender are pending from sequence ${sequence} on; `
      : '';
  return `${refusal} (${held}wait for the pending transaction to commit, e.g. with --wait, and run the command again)`;
}

/**
 * Polls the status of an admitted transaction until it is committed, `timeoutMs` passes, or it
 * turns `unknown`: it was pending (admitted), so the node's mempool dropped it — evicted by the
 * re-check after a block (`evicted` says why), expired, displaced, or lost in a restart — and it
 * will not commit from this node's mempool.
 */
async function waitForCommit(
  client: NodeRpcClient,
  txHash: Uint8Array,
  timeoutMs: number,
): Promise<TxStatus> {
  let status: TxStatus = { status: 'pending' };
  const deadline = Date.now() + timeoutMs;
  while (status.status === 'pending' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, STATUS_POLL_MS));
    status = await client.txStatus(txHash);
  }
  return status;
}

/**
 * Why an admitted transaction waited for is not committed (`status` not `committed`): the
 * mempool of `node` (the node's, unnamed) dropped it — evicted by its re-check after a block,
 * with the refusal, or expired, displaced or lost in a restart — or it was still pending when
 * `timeoutMs` ran out. The node's text is escaped (`visible`).
 */
export function notCommittedReason(status: TxStatus, timeoutMs: number, node?: string): string {
  const mempool = node === undefined ? "the node's mempool" : `${node}'s mempool`;
  if (status.status === 'unknown') {
    return status.evicted === undefined
      ? `dropped from ${mempool} without being committed (expired, displaced, or lost in a restart)`
      : `evicted from ${mempool} without being committed: ${visible(status.evicted.code)}: ${visible(status.evicted.message)}`;
  }
  return `not committed within ${timeoutMs} ms (status: ${status.status})`;
}

/** Turns a STOQ failure of a call to `node` into a CliError naming the node and the code. */
export function stoqFailure(node: string) {
  return (error: unknown): never => {
    if (error instanceof StoqError) {
      throw new CliError(`${node}: ${error.code}: ${error.message}`, 1);
    }
    throw error;
  };
}
