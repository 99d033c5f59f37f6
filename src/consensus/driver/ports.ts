import type { BlockTemplate } from '../block.js';
import type { ConsensusError } from '../errors.js';
import type { HeightContext } from '../height-context.js';
import type { Block, Proposal, Vote } from '../types.js';

/**
 * What the consensus driver needs from the world around it, as interfaces: the network (STOQ in
 * a node, an in-memory network in tests), the mempool and the consensus-proof builder/checker.
 */

/** Messages peers exchange over the consensus gossip stream (encoded by ../wire.ts). */
export type GossipMessage =
  | { readonly kind: 'proposal'; readonly proposal: Proposal }
  | { readonly kind: 'vote'; readonly vote: Vote }
  /** Mempool gossip: transactions the sender admitted. */
  | { readonly kind: 'txs'; readonly txs: readonly Uint8Array[] }
  /**
   * The sender's progress: its latest committed height (0 before the first block) and the
   * height/round it is deciding. A peer that is behind syncs blocks from a peer that is ahead.
   */
  | {
      readonly kind: 'status';
      readonly committedHeight: number;
      readonly height: number;
      readonly round: number;
    };

/** A committed block as a syncing peer receives it: wire-encoded block and its commit. */
export interface SyncedBlock {
  readonly height: number;
  /** `encodeBlock` bytes (../wire.ts), as stored in NodeStore.blocks. */
  readonly block: Uint8Array;
  /** `encodeQuorumCertificate` bytes. */
  readonly commit: Uint8Array;
}

export interface ConsensusNetwork {
  /** Sends to every connected peer; never throws (a failed peer is skipped). */
  broadcast(message: GossipMessage): void;
  /** Sends to one peer; never throws. */
  send(peer: string, message: GossipMessage): void;
  /** One handler; messages are already decoded and schema-checked, not signature-checked. */
  onMessage(handler: (peer: string, message: GossipMessage) => void): void;
  /** Called when an authenticated peer connection is (re)established. */
  onPeerConnected(handler: (peer: string) => void): void;
  /** Currently connected peers. */
  peers(): readonly string[];
  /**
   * Committed blocks `from..to` (inclusive, ascending) from `peer`'s store; the caller verifies
   * every block and commit. Ends early if the peer has fewer.
   */
  fetchBlocks(
    peer: string,
    from: number,
    to: number,
    signal?: AbortSignal,
  ): AsyncIterable<SyncedBlock>;
  /**
   * Whether `fetchBlocks` can reach `peer` (a peer that dialled this node but that this node
   * cannot dial, such as an unlisted one, cannot serve sync). Absent: every connected peer can.
   */
  canFetchFrom?(peer: string): boolean;
}

export interface MempoolPort {
  /** Transactions in the order a proposer should try them. */
  candidates(): Iterable<Uint8Array>;
  /** After a block is committed and executed: drop its transactions, re-check the rest. */
  update(height: number, committed: readonly Uint8Array[]): void;
  /** Admits transactions gossiped by a peer (results are not reported back). */
  addFromPeer(peer: string, txs: readonly Uint8Array[]): void;
  size(): number;
  /**
   * Optional: how many of them `candidates` offers (the mempool's ready transactions). Idle
   * pacing treats a mempool with none ready as empty; without it, `size()` is used.
   */
  readySize?(): number;
  /**
   * Calls `listener` after each newly admitted transaction; returns the unsubscribe function.
   * Optional: without it idle pacing ends only on a peer's message of the next height.
   */
  onAdmitted?(listener: () => void): () => void;
}

/** The four-part consensus proof as the driver uses it (src/consensus/pos). */
export interface BlockProofs {
  /** Proposer: the `consensusProof` header bytes for a block on `template` with these txs. */
  build(template: BlockTemplate, transactions: readonly Uint8Array[]): Uint8Array;
  /**
   * Validator, before its prevote: checks the proposer's parts (PoSpace answers and signed
   * address, hashcash stamps of every transaction, the sequential hash chain from the parent).
   */
  checkProposal(context: HeightContext, block: Block): ConsensusError | undefined;
}
