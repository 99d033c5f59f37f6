import type { KeyObject } from 'node:crypto';
import {
  CAESAR_MODULE_NAME,
  caesarBalanceQuery,
  caesarGenesisFromApp,
  encodeTransfer,
  verifyCaesarBalance,
} from '../caesar/index.js';
import type { TokenParams } from '../caesar/index.js';
import { toHex } from '../crypto/bytes.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import { HyperMeshError } from '../codec/error.js';
import { CliError } from './cli-error.js';
import { submitTransaction, type SubmitOutcome } from './tx-submit.js';

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
 * it names (`verifyCaesarBalance`). Like `query kv`, the root is the answering node's; `hypermesh
 * block verify HEIGHT` checks the block that commits to it.
 */
export async function readProvenBalance(
  client: NodeRpcClient,
  address: Uint8Array,
  height?: number,
): Promise<ProvenBalance> {
  const response = await client.query(caesarBalanceQuery(address, height));
  let balance: bigint;
  try {
    balance = verifyCaesarBalance(address, response);
  } catch (error) {
    throw new CliError(`the node's answer does not verify: ${(error as Error).message}`, 1);
  }
  return { height: response.height, stateRoot: toHex(response.stateRoot), balance };
}

export interface TransferRequest {
  readonly client: NodeRpcClient;
  readonly genesis: GenesisDocument;
  readonly privateKey: KeyObject;
  readonly to: Uint8Array;
  /** Base units, at least 1. */
  readonly amount: bigint;
  /** Base units. */
  readonly fee: bigint;
  readonly memo?: Uint8Array;
  readonly wait: boolean;
  readonly timeoutMs: number;
}

/** Signs and submits a Caesar transfer (and waits for its commit when asked). */
export function sendTransfer(request: TransferRequest): Promise<SubmitOutcome> {
  const { client, genesis, privateKey, to, amount, fee, memo, wait, timeoutMs } = request;
  return submitTransaction({
    client,
    genesis,
    privateKey,
    module: CAESAR_MODULE_NAME,
    body: encodeTransfer({ to, amount, fee, ...(memo === undefined ? {} : { memo }) }),
    wait,
    timeoutMs,
  });
}
