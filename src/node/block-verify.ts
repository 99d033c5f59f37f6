import { toHex } from '../crypto/bytes.js';
import { defaultFalcon } from '../crypto/falcon.js';
import { stampOf } from '../consensus/application/index.js';
import { genesisHash, genesisHeightContext, type GenesisDocument } from '../consensus/genesis.js';
import type { HeightContext } from '../consensus/height-context.js';
import { blockHash } from '../consensus/messages.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import { verifyCommittedBlock, type BlockProofVerdict } from '../consensus/pos/index.js';
import { nextHeightProposerSchedule } from '../consensus/proposer.js';
import type { Block, QuorumCertificate } from '../consensus/types.js';
import { decodeBlock, decodeQuorumCertificate } from '../consensus/wire.js';
import { CliError } from './cli-error.js';

/**
 * `hypermesh block verify`: fetches a committed block, its commit and its parent from a node
 * and runs the same four-part check a node runs on every block (consensus/pos verify-block.ts),
 * plus the engine's block rules. The operator has no application state, so PoWork checks the
 * hashcash stamps and the transactions root but cannot re-execute the block: that part is
 * reported as `stamps-only`, not as fully verified.
 */
export interface BlockVerifyReport {
  readonly height: number;
  readonly chainId: string;
  readonly blockHash: string;
  readonly proposer: string;
  readonly transactions: number;
  readonly verdict: BlockProofVerdict;
}

interface FetchedBlock {
  readonly block: Block;
  readonly commit: QuorumCertificate;
}

async function fetchBlock(client: NodeRpcClient, height: number): Promise<FetchedBlock> {
  const fetched = await client.getBlock(height, { deadlineMs: 15_000 });
  let block: Block;
  let commit: QuorumCertificate;
  try {
    block = decodeBlock(fetched.block);
    commit = decodeQuorumCertificate(fetched.commit);
  } catch (error) {
    throw new CliError(
      `the node sent block ${height} in a form that does not decode: ${(error as Error).message}`,
      1,
    );
  }
  if (block.header.height !== height) {
    throw new CliError(`asked for block ${height}, the node sent block ${block.header.height}`, 1);
  }
  return { block, commit };
}

/**
 * The height context of `height` as every node derives it (driver/chain.ts): the genesis
 * validator set with the proposer schedule advanced once per earlier height, and the parent
 * block — hashed here, not taken on the node's word — with its commit.
 */
function contextFor(
  genesis: GenesisDocument,
  height: number,
  parent: FetchedBlock | null,
): HeightContext {
  const base = genesisHeightContext(genesis);
  if (height === 1 || parent === null) return base;
  let schedule = base.schedule;
  for (let h = 1; h < height; h++) schedule = nextHeightProposerSchedule(schedule);
  return {
    height,
    schedule,
    parent: {
      kind: 'block',
      height: height - 1,
      hash: blockHash(parent.block.header),
      time: parent.block.header.time,
      commit: parent.commit,
      validators: base.schedule.validators,
    },
  };
}

export async function verifyBlockFromNode(
  client: NodeRpcClient,
  genesis: GenesisDocument,
  height: number,
): Promise<BlockVerifyReport> {
  const target = await fetchBlock(client, height);
  const parent = height > 1 ? await fetchBlock(client, height - 1) : null;
  const verdict = verifyCommittedBlock({
    genesis,
    genesisHash: genesisHash(genesis),
    block: target.block,
    commit: target.commit,
    context: contextFor(genesis, height, parent),
    stampOf,
    falcon: defaultFalcon(),
  });
  return {
    height,
    chainId: target.block.header.chainId,
    blockHash: toHex(blockHash(target.block.header)),
    proposer: target.block.header.proposer,
    transactions: target.block.transactions.length,
    verdict,
  };
}

const PART_NAMES = {
  space: 'PoSpace: challenge answers and Merkle paths to the registered storage root',
  stake: 'PoStake: precommits of > 2/3 of the voting power, Ed25519 + FALCON-1024',
  work: 'PoWork: transactions root and every hashcash stamp',
  time: 'PoTime: BFT median time and the sequential hash chain from the parent',
} as const;

/** The human-readable report: one line per check and a final verdict. */
export function formatBlockVerify(report: BlockVerifyReport, node: string): string[] {
  const { verdict } = report;
  const row = (part: string, outcome: string, coverage: string, text: string): string =>
    `  ${part.padEnd(6)} ${outcome.padEnd(7)} ${coverage.padEnd(11)} ${text}`;
  const lines = [
    `block ${report.height} of chain ${report.chainId} from ${node}`,
    `  hash ${report.blockHash}, proposer ${report.proposer}, ${report.transactions} transaction(s)`,
    verdict.block.ok
      ? row(
          'rules',
          'ok',
          '',
          'chain, height, parent, validator set, proposer, time, last commit, roots, evidence',
        )
      : row('rules', 'INVALID', '', verdict.block.message),
  ];
  for (const part of verdict.parts) {
    if (part.ok) {
      const note =
        part.coverage === 'stamps-only'
          ? ' — not re-executed here (no local state), so the state root is unchecked'
          : part.coverage === 'sampled'
            ? ' — sampled segments of the hash chain'
            : '';
      lines.push(row(part.part, 'ok', part.coverage, `${PART_NAMES[part.part]}${note}`));
    } else {
      lines.push(row(part.part, 'INVALID', part.reason, part.message));
    }
  }
  lines.push(verdict.ok ? 'valid' : 'INVALID');
  return lines;
}

export function blockVerifyJson(report: BlockVerifyReport, node: string): unknown {
  return JSON.parse(
    JSON.stringify({ node, ...report }, (_key, value: unknown) =>
      value instanceof Uint8Array
        ? toHex(value)
        : typeof value === 'bigint'
          ? value.toString()
          : value,
    ),
  );
}
