import type { Application, BlockExecutionResult, LastCommitInfo } from '../app.js';
import { buildBlock, type BlockTemplate } from '../block.js';
import type { Block, DuplicateVoteEvidence } from '../types.js';
import type { BlockProofs, MempoolPort } from './ports.js';

/** What getValue() needs (paper line 18): the application, the mempool and the proof builder. */
export interface ProposalSources {
  readonly app: Application;
  readonly mempool: MempoolPort;
  readonly proofs: BlockProofs;
  readonly maxBlockBytes: number;
  readonly maxBlockTxs: number;
}

/**
 * getValue(): the application picks and executes transactions from the mempool's candidates on
 * the latest committed state (its state root goes in the header: the block is executed before
 * it is proposed), the proof builder adds the consensus proof, and the block is built on the
 * engine's template. Returns the block with its execution result, kept for the commit.
 */
export function buildProposal(
  sources: ProposalSources,
  template: BlockTemplate,
  evidence: readonly DuplicateVoteEvidence[],
  lastCommit?: LastCommitInfo,
): { readonly block: Block; readonly result: BlockExecutionResult } {
  const prepared = sources.app.prepareProposal(
    {
      chainId: template.chainId,
      height: template.height,
      time: template.time,
      proposer: template.proposer,
      evidence,
      ...(lastCommit === undefined ? {} : { lastCommit }),
    },
    sources.mempool.candidates(),
    sources.maxBlockBytes,
    sources.maxBlockTxs,
  );
  const block = buildBlock(template, {
    transactions: prepared.transactions,
    evidence,
    appStateRoot: prepared.result.stateRoot,
    consensusProof: sources.proofs.build(template, prepared.transactions),
  });
  return { block, result: prepared.result };
}
