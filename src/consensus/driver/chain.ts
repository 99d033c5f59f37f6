import { bytesEqual, toHex } from '../../crypto/bytes.js';
import type { NodeStore } from '../../storage/index.js';
import { genesisHash, genesisHeightContext, type GenesisDocument } from '../genesis.js';
import type { HeightContext } from '../height-context.js';
import { nextHeightProposerSchedule } from '../proposer.js';
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
 * Rebuilds the height context from the genesis document and the store. The validator set is
 * fixed at genesis, so only the proposer priorities move: one election per stored height
 * (`nextHeightProposerSchedule`, a few bigint additions per validator). The parent is the latest
 * stored block with its commit, which the next proposer puts in its block as `lastCommit`.
 * Throws `GENESIS_MISMATCH` when the store's chain starts from another genesis or chain, and
 * `STORE_INCONSISTENT` when the latest block or its commit cannot be read back.
 */
export function loadChain(genesis: GenesisDocument, store: NodeStore): ChainPosition {
  const base = genesisHeightContext(genesis);
  const latest = store.blocks.latestHeight();
  if (latest === null || latest === 0) {
    return { committedHeight: 0, context: base, lastBlockTime: null };
  }
  const earliest = store.blocks.earliestHeight();
  if (earliest === 1) {
    const first = store.blocks.byHeight(1);
    if (first === null || !bytesEqual(first.parentHash, genesisHash(genesis))) {
      throw new DriverError(
        DriverErrorCode.GENESIS_MISMATCH,
        'the store holds a chain that does not start at this genesis document',
        { genesisHash: toHex(genesisHash(genesis)) },
      );
    }
  }
  const stored = store.blocks.byHeight(latest);
  const commitBytes = store.blocks.commitAt(latest);
  if (stored === null || commitBytes === null) {
    throw inconsistent(`stored block ${latest} or its commit is missing`, { height: latest });
  }
  let commit;
  let chainId;
  try {
    commit = decodeQuorumCertificate(commitBytes);
    chainId = decodeBlock(stored.bytes).header.chainId;
  } catch (error) {
    throw inconsistent(
      `stored block ${latest} or its commit cannot be decoded`,
      { height: latest },
      error,
    );
  }
  if (chainId !== genesis.chainId) {
    throw new DriverError(
      DriverErrorCode.GENESIS_MISMATCH,
      `the store holds blocks of chain ${JSON.stringify(chainId)}, not ${JSON.stringify(genesis.chainId)}`,
      { chainId },
    );
  }
  if (commit.height !== latest || !bytesEqual(commit.blockHash, stored.hash)) {
    throw inconsistent(`the stored commit of block ${latest} certifies another block`, {
      height: latest,
    });
  }
  let schedule = base.schedule;
  for (let height = 1; height <= latest; height++) schedule = nextHeightProposerSchedule(schedule);
  return {
    committedHeight: latest,
    lastBlockTime: stored.timeMs,
    context: {
      height: latest + 1,
      schedule,
      parent: {
        kind: 'block',
        height: latest,
        hash: stored.hash,
        time: stored.timeMs,
        commit,
        validators: base.schedule.validators,
      },
    },
  };
}
