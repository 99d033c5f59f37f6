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
import type { NodeRpcClient, TxStatus } from '../consensus/net/index.js';
import { StoqError } from '../stoq/index.js';
import { decodeStateProof, verifyStateProof } from '../storage/index.js';
import { CliError } from './cli-error.js';
import { committedRootsOf } from './verified-root.js';

/**
 * What the transaction tools (`hypermesh tx kv-set`, `hypermesh wallet send`) share: build a
 * signed, stamped transaction with the sender's next sequence number, submit it through a node's
 * API, and optionally wait until it is committed.
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
  | {
      readonly admitted: true;
      readonly txHash: string;
      readonly sequence: number;
      /** The final status, or the last one seen when not waiting / not committed in time. */
      readonly status: TxStatus;
    };

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
    return { admitted: false, txHash, sequence, code: submitted.code, message: submitted.message };
  }
  let status: TxStatus = { status: 'pending' };
  if (!options.wait) return { admitted: true, txHash, sequence, status };
  const deadline = Date.now() + options.timeoutMs;
  while (status.status !== 'committed' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, STATUS_POLL_MS));
    status = await client.txStatus(tx.txHash);
  }
  return { admitted: true, txHash, sequence, status };
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
