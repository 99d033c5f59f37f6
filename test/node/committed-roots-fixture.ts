import { randomBytes } from 'node:crypto';
import { genesisValidatorSet } from '../../src/consensus/genesis.js';
import type { StoredValidatorUpdates } from '../../src/storage/block-store.js';
import type { SyncedBlock } from '../../src/consensus/driver/ports.js';
import type { Block, BlockHeader, QuorumCertificate } from '../../src/consensus/types.js';
import { encodeBlock, encodeQuorumCertificate } from '../../src/consensus/wire.js';
import { emptyRoot } from '../../src/crypto/merkle.js';
import type { CommittedBlockSource } from '../../src/node/verified-root.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import {
  makeTestChain,
  signCommit,
  type CommitPlan,
  type TestChain,
} from '../consensus/pos-fixture.js';

/**
 * A node's committed blocks as a root checker fetches them (`getBlock`, `validatorUpdates`):
 * headers over chosen state roots, committed by a test chain's validators with real Ed25519 and
 * FALCON-1024 precommits. The test serves tampered blocks with `serve`.
 */
export class CommittedBlocks implements CommittedBlockSource {
  private readonly blocks = new Map<number, SyncedBlock>();
  private readonly pending = new Map<number, Promise<void>>();
  /** Heights asked for with `getBlock`, in order. */
  readonly fetched: number[] = [];
  /** Validator updates the node claims (none unless a test sets them). */
  updates: StoredValidatorUpdates[] = [];

  private constructor(readonly chain: TestChain) {}

  static async create(validators = 4): Promise<CommittedBlocks> {
    return new CommittedBlocks(await makeTestChain(validators));
  }

  /** A header of this chain at `height` carrying `stateRoot`, decided by the genesis set. */
  header(height: number, stateRoot: Uint8Array, overrides: Partial<BlockHeader> = {}): BlockHeader {
    return {
      chainId: this.chain.genesis.chainId,
      height,
      time: this.chain.genesis.genesisTime + height * 1000,
      parentHash: randomBytes(32),
      transactionsRoot: emptyRoot(),
      evidenceRoot: emptyRoot(),
      lastCommitHash: randomBytes(32),
      appStateRoot: stateRoot,
      validatorsHash: genesisValidatorSet(this.chain.genesis).hash,
      proposer: this.chain.validators[0]!.address,
      consensusProof: new Uint8Array(0),
      ...overrides,
    };
  }

  /**
   * Block `height` over `stateRoot`, committed by the plan's signers (default: all). Until the
   * signatures are made, `getBlock(height)` waits for them: like a node, which stores a block
   * before its state answers queries.
   */
  commit(height: number, stateRoot: Uint8Array, plan: CommitPlan = {}): Promise<Block> {
    const block = blockOf(this.header(height, stateRoot));
    const signed = signCommit(this.chain, block, plan).then((commit) => {
      this.serve(block, commit);
      return block;
    });
    this.pending.set(
      height,
      signed.then(
        () => undefined,
        () => undefined,
      ),
    );
    return signed;
  }

  /** Serves `block` with `commit` at the block's height, whatever they hold. */
  serve(block: Block, commit: QuorumCertificate): void {
    const height = block.header.height;
    this.blocks.set(height, {
      height,
      block: encodeBlock(block),
      commit: encodeQuorumCertificate(commit),
    });
  }

  async getBlock(height: number): Promise<SyncedBlock> {
    this.fetched.push(height);
    await this.pending.get(height);
    const found = this.blocks.get(height);
    if (found === undefined) {
      throw new StoqError(StoqErrorCode.NOT_FOUND, `no block ${height}`, { reason: 'no-block' });
    }
    return found;
  }

  validatorUpdates(fromHeight: number, toHeight: number): Promise<StoredValidatorUpdates[]> {
    return Promise.resolve(
      this.updates.filter((entry) => entry.height >= fromHeight && entry.height <= toHeight),
    );
  }
}

export function blockOf(header: BlockHeader): Block {
  return { header, transactions: [], evidence: [], lastCommit: null };
}
