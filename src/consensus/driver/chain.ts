import { bytesEqual, toHex } from '../../crypto/bytes.js';
import type { NodeStore, StoredBlock } from '../../storage/index.js';
import { genesisHash, genesisHeightContext, type GenesisDocument } from '../genesis.js';
import {
  nextHeightSchedules,
  type HeightContext,
  type HeightSchedules,
} from '../height-context.js';
import { applyValidatorUpdates, type ValidatorSetUpdate } from '../validator-set.js';
import { decodeValidatorUpdates } from '../validator-updates.js';
import { decodeBlock, decodeQuorumCertificate } from '../wire.js';
import { DriverError, DriverErrorCode } from './errors.js';

/** Where the stored chain ends: the next height to decide and its context. */
export interface ChainPosition {
  /** Latest stored height, 0 before the first block. */
  readonly committedHeight: number;
  readonly context: HeightContext;
  /** BFT time of the latest stored block, or null before the first. */
  readonly lastBlockTime: number | null;
}

function inconsistent(message: string, detail: Record<string, unknown> = {}, cause?: unknown) {
  return new DriverError(
    DriverErrorCode.STORE_INCONSISTENT,
    message,
    detail,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Rebuilds the height context from the genesis document and the store: the genesis context,
 * then one step per stored height (`nextHeightSchedules`: one election, and the validator
 * updates the store kept for that block, which take effect two heights later). The parent is
 * the latest stored block with its commit, which the next proposer puts in its block as
 * `lastCommit`. The replayed set of the latest height must be the one its header names, and
 * the stored state at that height the one its header commits to (`appStateRoot`, the state
 * after executing the block): the node executes the next block on that state.
 * Throws `GENESIS_MISMATCH` when the store's chain starts from another genesis or chain, and
 * `STORE_INCONSISTENT` when the latest block, its commit, its state or the stored updates cannot
 * be read back or do not reproduce what the stored chain's headers commit to.
 */
export function loadChain(genesis: GenesisDocument, store: NodeStore): ChainPosition {
  const base = genesisHeightContext(genesis);
  const latest = store.blocks.latestHeight();
  if (latest === null || latest === 0) {
    return { committedHeight: 0, context: base, lastBlockTime: null };
  }
  // Stores are never pruned and start at height 1 (the block store refuses any other first
  // block), so block 1 is always there to tie the chain to this genesis.
  const first = store.blocks.earliestHeight() === 1 ? store.blocks.byHeight(1) : null;
  if (first === null || !bytesEqual(first.parentHash, genesisHash(genesis))) {
    throw new DriverError(
      DriverErrorCode.GENESIS_MISMATCH,
      'the store holds a chain that does not start at this genesis document',
      { genesisHash: toHex(genesisHash(genesis)) },
    );
  }
  const stored = store.blocks.byHeight(latest);
  const commitBytes = store.blocks.commitAt(latest);
  if (stored === null || commitBytes === null) {
    throw inconsistent(`stored block ${latest} or its commit is missing`, { height: latest });
  }
  let commit;
  let header;
  try {
    commit = decodeQuorumCertificate(commitBytes);
    header = decodeBlock(stored.bytes).header;
  } catch (error) {
    throw inconsistent(
      `stored block ${latest} or its commit cannot be decoded`,
      { height: latest },
      error,
    );
  }
  if (header.chainId !== genesis.chainId) {
    throw new DriverError(
      DriverErrorCode.GENESIS_MISMATCH,
      `the store holds blocks of chain ${JSON.stringify(header.chainId)}, not ${JSON.stringify(genesis.chainId)}`,
      { chainId: header.chainId },
    );
  }
  if (commit.height !== latest || !bytesEqual(commit.blockHash, stored.hash)) {
    throw inconsistent(`the stored commit of block ${latest} certifies another block`, {
      height: latest,
    });
  }
  checkStateAgainstHeader(store, latest, header.appStateRoot);
  const updates = storedUpdates(store, latest);
  let schedules: HeightSchedules = base;
  let parentValidators = base.schedule.validators;
  for (let height = 1; height <= latest; height++) {
    parentValidators = schedules.schedule.validators;
    try {
      schedules = nextHeightSchedules(schedules, updates.get(height) ?? []);
    } catch (error) {
      throw inconsistent(
        `the stored validator updates of block ${height} cannot be applied`,
        { height },
        error,
      );
    }
  }
  if (!bytesEqual(header.validatorsHash, parentValidators.hash)) {
    throw inconsistent(
      `the stored validator updates do not give the validator set block ${latest} names`,
      {
        height: latest,
        header: toHex(header.validatorsHash),
        replayed: toHex(parentValidators.hash),
      },
    );
  }
  return {
    committedHeight: latest,
    lastBlockTime: stored.timeMs,
    context: {
      ...schedules,
      parent: {
        kind: 'block',
        height: latest,
        hash: stored.hash,
        time: stored.timeMs,
        commit,
        validators: parentValidators,
      },
    },
  };
}

/**
 * The state root block `height`'s header commits to: the application state after executing
 * the block (block-checks.ts refuses a block whose execution gives another root). The store
 * keeps blocks as opaque bytes; this is how it learns what a header commits to
 * (`openStoreFromSnapshot`'s and `verifyIntegrity`'s `headerStateRoot`). Throws for bytes that
 * are not an encoded block.
 */
export function storedBlockStateRoot(block: StoredBlock): Uint8Array {
  return decodeBlock(block.bytes).header.appStateRoot;
}

/**
 * A store restored from a damaged or tampered copy can hold the state of another height under
 * the latest one (every other store check passes): this node would then execute, and vote on,
 * blocks from a state the chain never agreed on.
 */
function checkStateAgainstHeader(store: NodeStore, height: number, committed: Uint8Array): void {
  let stored: Uint8Array;
  try {
    stored = store.state.root(height);
  } catch (error) {
    throw inconsistent(`the store holds no state for block ${height}`, { height }, error);
  }
  if (!bytesEqual(stored, committed)) {
    throw inconsistent(
      `the stored state after block ${height} is not the state its header commits to`,
      { height, header: toHex(committed), stored: toHex(stored) },
    );
  }
}

/**
 * The parent as the context of stored block `height` had it (`HeightContext.parent`): stored
 * block `height − 1` with its commit and the set that decided it, or the genesis for height 1 —
 * what executing the block again needs (`executionInput`: its `lastCommit` list). The set comes
 * from the genesis set with the stored updates of blocks 1..`height − 3` applied in order
 * (set(h + 2) = set(h + 1) with updates(h), height-context.ts), so the cost follows the number of
 * stored updates, not the height. Throws `STORE_INCONSISTENT` when the parent, its commit or the
 * updates cannot be read back or applied.
 */
export function storedParent(
  genesis: GenesisDocument,
  store: NodeStore,
  height: number,
): Pick<HeightContext, 'parent'> {
  const base = genesisHeightContext(genesis);
  if (height === 1) return { parent: base.parent };
  const parentHeight = height - 1;
  const parent = store.blocks.byHeight(parentHeight);
  const commitBytes = store.blocks.commitAt(parentHeight);
  if (parent === null || commitBytes === null) {
    throw inconsistent(`stored block ${parentHeight} or its commit is missing`, {
      height: parentHeight,
    });
  }
  let commit;
  try {
    commit = decodeQuorumCertificate(commitBytes);
  } catch (error) {
    throw inconsistent(
      `the stored commit of block ${parentHeight} cannot be decoded`,
      { height: parentHeight },
      error,
    );
  }
  let validators = base.schedule.validators;
  if (parentHeight > 2) {
    for (const [at, updates] of [...storedUpdates(store, parentHeight - 2)].sort(
      ([a], [b]) => a - b,
    )) {
      try {
        validators = applyValidatorUpdates(validators, updates).validators;
      } catch (error) {
        throw inconsistent(
          `the stored validator updates of block ${at} cannot be applied`,
          { height: at },
          error,
        );
      }
    }
  }
  return {
    parent: {
      kind: 'block',
      height: parentHeight,
      hash: parent.hash,
      time: parent.timeMs,
      commit,
      validators,
    },
  };
}

/** The stored validator updates of blocks 1..latest, decoded, by height. */
function storedUpdates(store: NodeStore, latest: number): Map<number, ValidatorSetUpdate[]> {
  const updates = new Map<number, ValidatorSetUpdate[]>();
  for (const row of store.blocks.validatorUpdatesRange(1, latest)) {
    try {
      updates.set(row.height, decodeValidatorUpdates(row.bytes));
    } catch (error) {
      throw inconsistent(
        `the stored validator updates of block ${row.height} cannot be decoded`,
        { height: row.height },
        error,
      );
    }
  }
  return updates;
}
