import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { defaultFalcon, type FalconBackend, type FalconKeyPair } from '../../src/crypto/falcon.js';
import { taggedHash } from '../../src/crypto/hash.js';
import { blockTemplate, buildBlock } from '../../src/consensus/block.js';
import {
  genesisHash,
  genesisHeightContext,
  type GenesisDocument,
} from '../../src/consensus/genesis.js';
import { nextHeightContext, type HeightContext } from '../../src/consensus/height-context.js';
import { blockHash } from '../../src/consensus/messages.js';
import { createBlockProofs, type StampOf } from '../../src/consensus/pos/index.js';
import { mintStamp } from '../../src/consensus/proof/hashcash.js';
import type { ConsensusProofParams } from '../../src/consensus/proof/params.js';
import { StoragePlot } from '../../src/consensus/proof/storage-plot.js';
import { proposerAt } from '../../src/consensus/proposer.js';
import { precommitPqMessage, signVote } from '../../src/consensus/signer.js';
import { DEFAULT_TIMEOUTS } from '../../src/consensus/timeouts.js';
import type { Block, QuorumCertificate, Vote } from '../../src/consensus/types.js';
import { validatorAddress } from '../../src/consensus/validator-set.js';

/**
 * A small chain with real keys for the consensus-proof tests: Ed25519 and FALCON-1024 keys and
 * PoSpace plots generated at test time, a toy transaction envelope and a toy application.
 */

/** Small parameters so every check runs in milliseconds; each one still bites. */
export const TEST_PROOF_PARAMS: ConsensusProofParams = {
  space: { blockCount: 16, slotsPerBlock: 4, slotDifficulty: 6, challengeCount: 3 },
  work: { stampDifficulty: 6 },
  time: { iterations: 256, checkpointInterval: 16 },
};

export const CHAIN_ID = 'hypermesh-pos-test';
export const GENESIS_TIME = 1_700_000_000_000;

export interface PosValidator {
  readonly name: string;
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  readonly address: string;
  readonly pq: FalconKeyPair;
  readonly plot: StoragePlot;
  readonly networkAddress: string;
}

/**
 * The toy envelope: `u64(nonce) || payload`; the stamp binds SHA-256 of the payload (the
 * transaction without its stamp). Anything shorter than 9 bytes is not an envelope.
 */
export const stampOf: StampOf = (tx) => {
  if (tx.length < 9) return undefined;
  const nonce = new DataView(tx.buffer, tx.byteOffset, 8).getBigUint64(0);
  if (nonce > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { txHash: taggedHash('test/tx', tx.subarray(8)), nonce: Number(nonce) };
};

/** An envelope around `payload` with the given nonce (default: the first valid one). */
export function envelope(payload: Uint8Array, nonce?: number): Uint8Array {
  const stampNonce =
    nonce ?? mintStamp(taggedHash('test/tx', payload), TEST_PROOF_PARAMS.work.stampDifficulty);
  const tx = new Uint8Array(8 + payload.length);
  new DataView(tx.buffer).setBigUint64(0, BigInt(stampNonce));
  tx.set(payload, 8);
  return tx;
}

export function randomTransactions(count: number): Uint8Array[] {
  return Array.from({ length: count }, () => envelope(new Uint8Array(randomBytes(24))));
}

/** The toy application: the state root hashes the parent root and the transactions. */
export function toyStateRoot(parentRoot: Uint8Array, txs: readonly Uint8Array[]): Uint8Array {
  return taggedHash('test/state', parentRoot, ...txs);
}

export interface TestChain {
  readonly validators: readonly PosValidator[];
  readonly genesis: GenesisDocument;
  readonly genesisHash: Uint8Array;
  readonly falcon: FalconBackend;
}

export async function makeTestChain(count = 4): Promise<TestChain> {
  const falcon = defaultFalcon();
  const validators: PosValidator[] = [];
  for (let i = 0; i < count; i++) {
    const { privateKey } = generateEd25519KeyPair();
    const publicKey = ed25519RawPublicKey(privateKey);
    validators.push({
      name: `node-${i + 1}`,
      privateKey,
      publicKey,
      address: validatorAddress(publicKey),
      pq: await falcon.generateKeyPair(),
      plot: StoragePlot.build(publicKey, TEST_PROOF_PARAMS.space),
      // Addresses are data inside the proof; nothing connects to them.
      networkAddress: `stoq://node-${i + 1}.test:9292`,
    });
  }
  const genesis: GenesisDocument = {
    chainId: CHAIN_ID,
    genesisTime: GENESIS_TIME,
    validators: validators.map((validator) => ({
      name: validator.name,
      publicKey: validator.publicKey,
      pqPublicKey: validator.pq.publicKey,
      power: 10,
      storageRoot: validator.plot.root,
    })),
    consensus: {
      timeouts: DEFAULT_TIMEOUTS,
      commitDelayMs: 0,
      maxBlockBytes: 1 << 20,
      maxBlockTxs: 10_000,
      requirePq: true,
    },
    proof: TEST_PROOF_PARAMS,
  };
  return { validators, genesis, genesisHash: genesisHash(genesis), falcon };
}

export function validatorOf(chain: TestChain, address: string): PosValidator {
  const validator = chain.validators.find((v) => v.address === address);
  if (validator === undefined) throw new Error(`no test validator ${address}`);
  return validator;
}

export function blockProofsOf(chain: TestChain, validator?: PosValidator) {
  return createBlockProofs({
    genesis: chain.genesis,
    genesisHash: chain.genesisHash,
    stampOf,
    ...(validator === undefined
      ? {}
      : {
          self: {
            privateKey: validator.privateKey,
            plot: validator.plot,
            networkAddress: validator.networkAddress,
          },
        }),
  });
}

export interface CommitPlan {
  /** Signing validators (default all). */
  readonly signers?: readonly PosValidator[];
  readonly round?: number;
  /** Clock reading of each signer (default block time + 1 s + 10 ms per position). */
  readonly now?: (position: number) => number;
  /** Sign for this hash instead of the block's. */
  readonly blockHash?: Uint8Array;
}

/** A precommit by `validator`, Ed25519- and FALCON-signed. */
export async function precommit(
  chain: TestChain,
  validator: PosValidator,
  height: number,
  round: number,
  hash: Uint8Array,
  now: number,
  notBefore: number,
): Promise<Vote> {
  const vote = signVote(
    CHAIN_ID,
    {
      type: 'precommit',
      height,
      round,
      blockHash: hash,
      validator: validator.address,
      notBefore,
      pq: true,
    },
    now,
    validator.privateKey,
  );
  const message = precommitPqMessage(CHAIN_ID, vote) as Uint8Array;
  return { ...vote, pqSignature: await chain.falcon.sign(message, validator.pq.secretKey) };
}

/** The commit of `block` by the plan's signers, precommits in address order. */
export async function signCommit(
  chain: TestChain,
  block: Block,
  plan: CommitPlan = {},
): Promise<QuorumCertificate> {
  const { height, time } = block.header;
  const round = plan.round ?? 0;
  const hash = plan.blockHash ?? blockHash(block.header);
  const signers = [...(plan.signers ?? chain.validators)].sort((a, b) =>
    a.address < b.address ? -1 : 1,
  );
  const precommits = await Promise.all(
    signers.map((validator, position) =>
      precommit(
        chain,
        validator,
        height,
        round,
        hash,
        plan.now?.(position) ?? time + 1000 + 10 * position,
        time + 1,
      ),
    ),
  );
  return { height, round, blockHash: hash, precommits };
}

export interface ChainBlock {
  readonly context: HeightContext;
  readonly block: Block;
  readonly commit: QuorumCertificate;
  /** State root before and after the block. */
  readonly parentStateRoot: Uint8Array;
  readonly stateRoot: Uint8Array;
}

/** A block for `context` by its round-0 proposer, with an honest proof. */
export function proposeBlock(
  chain: TestChain,
  context: HeightContext,
  transactions: readonly Uint8Array[],
  parentStateRoot: Uint8Array,
): Block {
  const proposer = validatorOf(chain, proposerAt(context.schedule, 0).address);
  const template = blockTemplate(CHAIN_ID, context, proposer.address);
  return buildBlock(template, {
    transactions,
    evidence: [],
    appStateRoot: toyStateRoot(parentStateRoot, transactions),
    consensusProof: blockProofsOf(chain, proposer).build(template, transactions),
  });
}

/** `count` honest blocks from genesis, each committed by every validator. */
export async function buildChain(chain: TestChain, count: number): Promise<ChainBlock[]> {
  const blocks: ChainBlock[] = [];
  let context = genesisHeightContext(chain.genesis);
  let stateRoot: Uint8Array = new Uint8Array(32);
  for (let i = 0; i < count; i++) {
    const block = proposeBlock(chain, context, randomTransactions(i + 2), stateRoot);
    const commit = await signCommit(chain, block);
    blocks.push({
      context,
      block,
      commit,
      parentStateRoot: stateRoot,
      stateRoot: block.header.appStateRoot,
    });
    stateRoot = block.header.appStateRoot;
    context = nextHeightContext(context, block, commit);
  }
  return blocks;
}
