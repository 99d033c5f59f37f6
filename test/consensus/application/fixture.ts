import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import type {
  Application,
  BlockExecutionInput,
  BlockExecutionResult,
} from '../../../src/consensus/app.js';
import { buildTransaction, createApplication } from '../../../src/consensus/application/index.js';
import type { ApplicationOptions, Module } from '../../../src/consensus/application/index.js';
import { generateEd25519KeyPair, ed25519RawPublicKey } from '../../../src/crypto/ed25519.js';
import { createKvModule } from '../../../src/kv/index.js';
import { openStore } from '../../../src/storage/index.js';
import type { NodeStore } from '../../../src/storage/index.js';
import { nextBlock, temporaryDirectory } from '../../storage/chain-fixture.js';

export const CHAIN_ID = 'test-chain';
/** Low, so minting costs ~16 hashes; a stamp check is one hash whatever the difficulty. */
export const DIFFICULTY = 4;

export interface Sender {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  /** The next sequence `tx()` will use. */
  sequence: number;
}

export function makeSender(): Sender {
  const { privateKey } = generateEd25519KeyPair();
  return { privateKey, publicKey: ed25519RawPublicKey(privateKey), sequence: 0 };
}

export interface TxOptions {
  readonly module?: string;
  readonly sequence?: number;
  readonly chainId?: string;
  readonly stampDifficulty?: number;
}

/** A signed, stamped transaction from `sender`; takes the sender's next sequence by default. */
export function tx(sender: Sender, body: Uint8Array, options: TxOptions = {}): Uint8Array {
  const sequence = options.sequence ?? sender.sequence++;
  return buildTransaction({
    chainId: options.chainId ?? CHAIN_ID,
    privateKey: sender.privateKey,
    sequence,
    module: options.module ?? 'kv',
    body,
    stampDifficulty: options.stampDifficulty ?? DIFFICULTY,
  }).bytes;
}

export function blockAt(height: number, transactions: readonly Uint8Array[]): BlockExecutionInput {
  return {
    chainId: CHAIN_ID,
    height,
    time: 1_700_000_000_000 + height * 1000,
    proposer: 'validator-0',
    transactions,
    evidence: [],
  };
}

/** One node: a store in a temporary directory and the application over it. */
export interface TestNode {
  readonly store: NodeStore;
  readonly app: Application;
  /** Saves the block as the driver would (saveBlock, then committed) and returns its height. */
  commit(result: BlockExecutionResult): number;
  /** executeBlock at the next height, then commit. */
  executeAndCommit(transactions: readonly Uint8Array[]): BlockExecutionResult;
  nextHeight(): number;
  close(): Promise<void>;
}

export async function openNode(
  options: Partial<Omit<ApplicationOptions, 'state'>> & { modules?: readonly Module[] } = {},
): Promise<TestNode> {
  const dir = await temporaryDirectory('application');
  const store = openStore(dir.file('node.db'));
  const app = createApplication({
    chainId: CHAIN_ID,
    stampDifficulty: DIFFICULTY,
    modules: [createKvModule()],
    ...options,
    state: store.state,
  });
  const nextHeight = (): number => (store.blocks.latestHeight() ?? 0) + 1;
  const commit = (result: BlockExecutionResult): number => {
    const input = nextBlock(store, { stateChanges: result.changes });
    assert.deepEqual(input.stateRoot, result.stateRoot, 'the store computes the same root');
    store.saveBlock(input);
    app.committed(input.block.height, result);
    return input.block.height;
  };
  return {
    store,
    app,
    commit,
    nextHeight,
    executeAndCommit: (transactions) => {
      const result = app.executeBlock(blockAt(nextHeight(), transactions));
      commit(result);
      return result;
    },
    close: async () => {
      store.close();
      await dir.cleanup();
    },
  };
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
