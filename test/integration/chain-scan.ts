import { toHex } from '../../src/crypto/bytes.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import { blockHash } from '../../src/consensus/messages.js';
import { decodeBlock } from '../../src/consensus/wire.js';
import type { TestCluster } from './cluster-harness.js';

/** A committed block as a node serves it, with the ids an integration test compares. */
export interface ScannedBlock {
  readonly height: number;
  /** Hex block hash, recomputed here from the header (not taken on the node's word). */
  readonly hash: string;
  /** Hex application state root after the parent block (the header's `appStateRoot`). */
  readonly appStateRoot: string;
  /** Hex txHash of each transaction, in block order. */
  readonly txHashes: readonly string[];
}

export async function blockOn(
  cluster: TestCluster,
  node: string,
  height: number,
): Promise<ScannedBlock> {
  const synced = await cluster.client(node).getBlock(height, { deadlineMs: 5_000 });
  const block = decodeBlock(synced.block);
  if (block.header.height !== height) {
    throw new Error(`${node} served block ${block.header.height} for height ${height}`);
  }
  return {
    height,
    hash: toHex(blockHash(block.header)),
    appStateRoot: toHex(block.header.appStateRoot),
    txHashes: block.transactions.map((tx) => toHex(decodeTransaction(tx).txHash)),
  };
}

/** Blocks `from..to` of `node`, in order. */
export async function chainOn(
  cluster: TestCluster,
  node: string,
  from: number,
  to: number,
): Promise<ScannedBlock[]> {
  const blocks: ScannedBlock[] = [];
  for (let height = from; height <= to; height++) blocks.push(await blockOn(cluster, node, height));
  return blocks;
}

/** How many times each txHash occurs in `blocks`. */
export function txOccurrences(blocks: readonly ScannedBlock[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const block of blocks) {
    for (const hash of block.txHashes) counts.set(hash, (counts.get(hash) ?? 0) + 1);
  }
  return counts;
}
