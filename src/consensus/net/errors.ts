import { HyperMeshError } from '../../codec/error.js';

/** Typed errors of the consensus network (gossip and block sync over STOQ). */
export enum ConsensusNetworkErrorCode {
  /** Options the network cannot run with (peer table, limits, lifecycle). */
  INVALID_OPTIONS = 'CONSENSUS_NET_INVALID_OPTIONS',
  /** A peer id that is neither in the configured peer table nor a discovered peer. */
  UNKNOWN_PEER = 'CONSENSUS_NET_UNKNOWN_PEER',
  /** A peer answered a block-sync request with heights that were not asked for, or out of order. */
  SYNC_OUT_OF_ORDER = 'CONSENSUS_NET_SYNC_OUT_OF_ORDER',
  /** `fetchBlocks` arguments out of range. */
  INVALID_RANGE = 'CONSENSUS_NET_INVALID_RANGE',
  /**
   * A discovered peer (`setDiscoveredPeers`) with a bad id, address or key, naming this node,
   * listed twice, or already a configured peer.
   */
  INVALID_PEER = 'CONSENSUS_NET_INVALID_PEER',
  /** More discovered peers than the unlisted policy's `maxDiscoveredPeers`. */
  TOO_MANY_PEERS = 'CONSENSUS_NET_TOO_MANY_PEERS',
}

export class ConsensusNetworkError extends HyperMeshError<ConsensusNetworkErrorCode> {}
