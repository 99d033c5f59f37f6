import type { KeyObject } from 'node:crypto';
import { toHex } from '../crypto/bytes.js';
import { readKeyFile } from '../crypto/keyfile.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { NodeRpcClient, TxStatus } from '../consensus/net/index.js';
import { KV_MODULE_NAME, kvGetQuery, kvSet, verifyKvGet } from '../kv/index.js';
import { CliError } from './cli-error.js';
import { checkAnsweredHeight, committedRootsOf } from './verified-root.js';
import { submitTransaction } from './tx-submit.js';

/**
 * The operator's key-value tools (`hypermesh tx kv-set`, `hypermesh query kv`): a signed,
 * stamped `kv` transaction submitted through a node's API, and a proven `kv/get` read.
 */
export async function operatorKey(keyFile: string): Promise<KeyObject> {
  try {
    const identity = await readKeyFile(keyFile, { kind: 'node-identity' });
    return identity.keys.ed25519.privateKey;
  } catch (error) {
    throw new CliError(`cannot read the operator key ${keyFile}: ${(error as Error).message}`, 1);
  }
}

export interface KvSetOutcome {
  readonly txHash: string;
  readonly sequence: number;
  /** The final status, or the last one seen when not waiting / timed out. */
  readonly status: TxStatus;
}

/** Builds, submits and (optionally) waits for a `kv` set transaction (tx-submit.ts). */
export async function submitKvSet(options: {
  client: NodeRpcClient;
  genesis: GenesisDocument;
  privateKey: KeyObject;
  key: string;
  value: string;
  wait: boolean;
  timeoutMs: number;
}): Promise<KvSetOutcome> {
  const { client, genesis, privateKey, wait, timeoutMs } = options;
  const outcome = await submitTransaction({
    client,
    genesis,
    privateKey,
    wait,
    timeoutMs,
    module: KV_MODULE_NAME,
    body: kvSet(options.key, options.value),
  });
  if (!outcome.admitted) {
    throw new CliError(`the node refused the transaction: ${outcome.code}: ${outcome.message}`, 1);
  }
  return { txHash: outcome.txHash, sequence: outcome.sequence, status: outcome.status };
}

export interface KvReadOutcome {
  readonly height: number | null;
  readonly stateRoot: string;
  /** null: the key is absent (and the proof shows it). */
  readonly owner: string | null;
  readonly value: Uint8Array | null;
}

/**
 * Reads `key` and checks the answer's Merkle proof against the state root it names, and that root
 * against the block's committed header (verified-root.ts).
 */
export async function readKv(
  client: NodeRpcClient,
  key: string,
  height?: number,
): Promise<KvReadOutcome> {
  const roots = committedRootsOf(client);
  const request = kvGetQuery(key, height);
  const response = await client.query(request);
  checkAnsweredHeight(height, response.height);
  let entry;
  try {
    entry = verifyKvGet(request.data, response);
  } catch (error) {
    throw new CliError(`the node's answer does not verify: ${(error as Error).message}`, 1);
  }
  // The root the proof checks against must be one the validator quorum committed.
  await roots.check(response.height, response.stateRoot);
  return {
    height: response.height,
    stateRoot: toHex(response.stateRoot),
    owner: entry === null ? null : toHex(entry.owner),
    value: entry === null ? null : entry.value,
  };
}

/** A value as text when it is printable UTF-8, else as hex. */
export function displayValue(value: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch {
    return `0x${toHex(value)}`;
  }
  const printable = [...text].every((char) => {
    const code = char.codePointAt(0) as number;
    return code >= 0x20 || char === '\t' || char === '\n' || char === '\r';
  });
  return printable ? JSON.stringify(text) : `0x${toHex(value)}`;
}
