import type { KeyObject } from 'node:crypto';
import {
  CAESAR_MODULE_NAME,
  caesarBalanceQuery,
  caesarGenesisFromApp,
  encodeTransfer,
  formatTokenAmount,
  hybridAddress,
  signHybridTx,
  verifyCaesarBalance,
} from '../caesar/index.js';
import type { TokenParams } from '../caesar/index.js';
import { toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import { defaultFalcon } from '../crypto/falcon.js';
import type { FalconKeyPair } from '../crypto/falcon.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { AccountHistoryPage, NodeRpcClient, TxReceiptView } from '../consensus/net/index.js';
import { StoqError, StoqErrorCode } from '../stoq/index.js';
import { HyperMeshError } from '../codec/error.js';
import { CliError } from './cli-error.js';
import { checkAnsweredHeight, committedRootsOf } from './verified-root.js';
import { submitTransaction, type SubmitOptions, type SubmitOutcome } from './tx-submit.js';
import { visible } from './io.js';

/**
 * The ledger side of `hypermesh wallet`: the token a chain's genesis defines, proven balance
 * reads and transfers through a node's API (docs/caesar.md, docs/cli.md).
 */

/** The chain's token, from its genesis file; a CliError if the chain has no Caesar ledger. */
export function ledgerToken(genesis: GenesisDocument, genesisFile: string): TokenParams {
  let caesar;
  try {
    caesar = caesarGenesisFromApp(genesis.app);
  } catch (error) {
    if (error instanceof HyperMeshError) {
      throw new CliError(`invalid Caesar section in ${genesisFile}: ${error.message}`, 1);
    }
    throw error;
  }
  if (caesar === undefined) {
    throw new CliError(
      `chain "${genesis.chainId}" has no Caesar ledger: ${genesisFile} has no app.${CAESAR_MODULE_NAME} section`,
      1,
    );
  }
  return caesar.token;
}

export interface ProvenBalance {
  /** Height of the state read (null before the first block). */
  readonly height: number | null;
  readonly stateRoot: string;
  /** Base units; an address without an account is proven absent and reads 0. */
  readonly balance: bigint;
}

/**
 * Reads an address's balance and checks the Merkle proof in the answer against the state root
 * it names (`verifyCaesarBalance`), and that root against block H's committed header and its
 * quorum certificate (verified-root.ts; the client must carry that check, `withCommittedRoots`).
 */
export async function readProvenBalance(
  client: NodeRpcClient,
  address: Uint8Array,
  height?: number,
): Promise<ProvenBalance> {
  const roots = committedRootsOf(client);
  const response = await client.query(caesarBalanceQuery(address, height));
  checkAnsweredHeight(height, response.height);
  let balance: bigint;
  try {
    balance = verifyCaesarBalance(address, response);
  } catch (error) {
    throw new CliError(`the node's answer does not verify: ${(error as Error).message}`, 1);
  }
  await roots.check(response.height, response.stateRoot);
  return { height: response.height, stateRoot: toHex(response.stateRoot), balance };
}

export interface TransferRequest {
  readonly client: NodeRpcClient;
  readonly genesis: GenesisDocument;
  readonly privateKey: KeyObject;
  /** A hybrid wallet's FALCON key: the transfer is sent from the hybrid account, signed by both. */
  readonly falcon?: FalconKeyPair;
  readonly to: Uint8Array;
  /** Base units, at least 1. */
  readonly amount: bigint;
  /** Base units. */
  readonly fee: bigint;
  readonly memo?: Uint8Array;
  readonly wait: boolean;
  readonly timeoutMs: number;
  /** Told as soon as the node admits the transfer, before waiting (`SubmitOptions.onAdmitted`). */
  readonly onAdmitted?: SubmitOptions['onAdmitted'];
}

/**
 * What to submit for a Caesar transaction `body` from `privateKey`: the body itself, or with a
 * hybrid wallet's `falcon` key, how to wrap it in a hybrid body FALCON-signed for the hybrid
 * account's next sequence (src/caesar/hybrid.ts), and that account as the sequence account
 * (the router keeps a hybrid account's sequence apart from its Ed25519 key's).
 */
export function ledgerSubmission(
  genesis: GenesisDocument,
  privateKey: KeyObject,
  body: Uint8Array,
  falcon: FalconKeyPair | undefined,
): Pick<SubmitOptions, 'body' | 'sequenceAccount'> {
  if (falcon === undefined) return { body };
  const sender = ed25519RawPublicKey(privateKey);
  return {
    body: (sequence) =>
      signHybridTx({
        chainId: genesis.chainId,
        sender,
        sequence,
        body,
        falcon,
        backend: defaultFalcon(),
      }),
    sequenceAccount: {
      module: CAESAR_MODULE_NAME,
      account: hybridAddress(sender, falcon.publicKey),
    },
  };
}

/**
 * Signs and submits a Caesar transfer (and waits for its commit when asked). With `falcon`, the
 * transfer is wrapped in a hybrid body FALCON-signed for the hybrid account's next sequence.
 */
export function sendTransfer(request: TransferRequest): Promise<SubmitOutcome> {
  const { client, genesis, privateKey, falcon, to, amount, fee, memo, wait, timeoutMs } = request;
  const transfer = encodeTransfer({ to, amount, fee, ...(memo === undefined ? {} : { memo }) });
  return submitTransaction({
    client,
    genesis,
    privateKey,
    module: CAESAR_MODULE_NAME,
    ...ledgerSubmission(genesis, privateKey, transfer, falcon),
    wait,
    timeoutMs,
    onAdmitted: request.onAdmitted,
  });
}

/** Where a page of history starts: strictly before this transaction (`HEIGHT.INDEX`). */
export interface HistoryPosition {
  readonly height: number;
  readonly index: number;
}

const POSITION = /^([1-9][0-9]{0,15})\.(0|[1-9][0-9]{0,8})$/;

/** Parses `--before HEIGHT.INDEX` (e.g. `57.0`); a CliError (exit 2) for anything else. */
export function parseHistoryPosition(text: string): HistoryPosition {
  const match = POSITION.exec(text);
  const height = match === null ? NaN : Number(match[1]);
  if (match === null || !Number.isSafeInteger(height)) {
    throw new CliError(
      `--before "${text}" is not a position HEIGHT.INDEX such as 57.0 (the "next page" line prints it)`,
    );
  }
  return { height, index: Number(match[2]) };
}

export const formatHistoryPosition = (position: HistoryPosition): string =>
  `${position.height}.${position.index}`;

const DIGITS = /^(0|[1-9][0-9]*)$/;

/** An amount attribute in tokens (`1.5 CSR`), or the text as it is if it is not base units. */
function tokens(value: string | undefined, token: TokenParams): string {
  if (value === undefined || !DIGITS.test(value) || value.length > 40) return `${value ?? '?'}`;
  return `${formatTokenAmount(BigInt(value), token.decimals)} ${token.symbol}`;
}

function percent(bps: string | undefined): string {
  if (bps === undefined || !DIGITS.test(bps) || bps.length > 6) return `${bps ?? '?'} bps`;
  return `${(Number(bps) / 100).toFixed(2)}%`;
}

/**
 * One readable line for a receipt event, from the point of view of `account` (its hex form):
 * `sent 1.5 CSR to …`, `received …`, `fee 0.01 CSR`, … Events of other modules, or of kinds
 * this version does not know, are shown as `type key=value …`.
 */
export function describeEvent(
  event: TxReceiptView['events'][number],
  account: string,
  token: TokenParams,
): string {
  return visible(eventText(event, account, token));
}

function eventText(
  event: TxReceiptView['events'][number],
  account: string,
  token: TokenParams,
): string {
  const a = event.attributes;
  const me = (field: string): boolean => a[field] === account;
  switch (event.type) {
    case `${CAESAR_MODULE_NAME}/transfer`:
      if (me('from')) return `sent ${tokens(a['amount'], token)} to ${a['to']}`;
      if (me('to')) return `received ${tokens(a['amount'], token)} from ${a['from']}`;
      return `transfer of ${tokens(a['amount'], token)} from ${a['from']} to ${a['to']}`;
    case `${CAESAR_MODULE_NAME}/fee`:
      return me('payer')
        ? `fee ${tokens(a['amount'], token)}`
        : `fee ${tokens(a['amount'], token)} paid by ${a['payer']}`;
    case `${CAESAR_MODULE_NAME}/create-validator`:
      return `created validator ${a['validator']} with a self-bond of ${tokens(a['bond'], token)}, commission ${percent(a['commissionBps'])}`;
    case `${CAESAR_MODULE_NAME}/delegate`:
      return me('delegator')
        ? `delegated ${tokens(a['amount'], token)} to validator ${a['validator']}`
        : `${a['delegator']} delegated ${tokens(a['amount'], token)} to validator ${a['validator']}`;
    case `${CAESAR_MODULE_NAME}/unbond`: {
      const who = me('delegator') ? 'unbonded' : `${a['delegator']} unbonded`;
      return `${who} ${tokens(a['amount'], token)} from validator ${a['validator']}, paid out at the end of block ${a['completionHeight']}`;
    }
    case `${CAESAR_MODULE_NAME}/unjail`:
      return `unjailed validator ${a['validator']}`;
    case `${CAESAR_MODULE_NAME}/edit-validator`:
      return `changed the commission of validator ${a['validator']} from ${percent(a['oldCommissionBps'])} to ${percent(a['newCommissionBps'])}`;
    case `${CAESAR_MODULE_NAME}/submit-proposal`:
      return `proposed #${a['proposal']} "${a['title']}" with a deposit of ${tokens(a['deposit'], token)} (voting ends with block ${a['votingEnd']})`;
    case `${CAESAR_MODULE_NAME}/vote`:
      return `voted ${a['option']} on proposal #${a['proposal']}`;
    default:
      return [event.type, ...Object.entries(a).map(([key, value]) => `${key}=${value}`)].join(' ');
  }
}

/**
 * The name of a refused transaction's result code, from its log (`CODE_NAME: message`, as the
 * router writes a module's refusal), or null when applied or the log names none.
 */
export function resultCodeName(receipt: Pick<TxReceiptView, 'code' | 'log'>): string | null {
  if (receipt.code === 0) return null;
  return /^([A-Z][A-Z0-9_]*): /.exec(receipt.log)?.[1] ?? null;
}

/**
 * How a receipt's result reads: `applied`, or `refused CODE_NAME (code N): message` (the log
 * after its code name; `refused (code N): log` when the log names no code).
 */
export function describeResult(receipt: Pick<TxReceiptView, 'code' | 'log'>): string {
  if (receipt.code === 0) return 'applied';
  const name = resultCodeName(receipt);
  return visible(
    name === null
      ? `refused (code ${receipt.code}): ${receipt.log}`
      : `refused ${name} (code ${receipt.code}): ${receipt.log.slice(name.length + 2)}`,
  );
}

/**
 * One page of `address`'s history from the node's receipts (newest first) and where the next
 * page starts. Receipts have no proof: they are the node's word (docs/caesar.md, "Events").
 */
export function readHistory(
  client: NodeRpcClient,
  address: Uint8Array,
  before: HistoryPosition | undefined,
  limit: number,
): Promise<AccountHistoryPage> {
  return client.accountHistory({
    account: address,
    limit,
    ...(before === undefined ? {} : { before }),
  });
}

/**
 * The receipt of a committed transaction, or null when the node keeps none for it (a block
 * stored before receipts existed).
 */
export async function readReceipt(
  client: NodeRpcClient,
  txHash: Uint8Array,
): Promise<TxReceiptView | null> {
  try {
    return await client.receipt(txHash);
  } catch (error) {
    if (error instanceof StoqError && error.code === StoqErrorCode.NOT_FOUND) return null;
    throw error;
  }
}
