/**
 * The consensus network over STOQ: peer gossip and block sync (`createStoqConsensusNetwork`)
 * and the node's client-facing API (`registerNodeRpc`, `createNodeRpcClient`).
 */
export { ConsensusNetworkError, ConsensusNetworkErrorCode } from './errors.js';
export { stderrNetworkLogger, type ConsensusNetworkLogger } from './log.js';
export { createConsensusNetworkMetrics, type ConsensusNetworkMetrics } from './metrics.js';
export {
  DEFAULT_CONSENSUS_NETWORK_LIMITS,
  DEFAULT_MAX_DISCOVERED_PEERS,
  DEFAULT_MAX_FOLLOWER_PEERS,
  createStoqConsensusNetwork,
  type BlockSource,
  type ConsensusNetworkLimits,
  type DiscoveredPeersChange,
  type StoqConsensusNetwork,
  type StoqConsensusNetworkOptions,
  type UnlistedPeerPolicy,
} from './network.js';
export {
  CONSENSUS_MAX_MESSAGE_BYTES,
  CONSENSUS_SERVICE_NAME,
  SYNC_MAX_BLOCKS_PER_REQUEST,
  defineConsensusPeerService,
  type ConsensusPeerService,
  type HelloAnswer,
  type HelloRequest,
} from './peer-service.js';
export {
  dialsFirst,
  parseDiscoveredPeers,
  parsePeerAddress,
  parsePeerTable,
  type ConsensusPeer,
  type ConsensusPeerConfig,
  type DiscoveredPeer,
  type DiscoveredPeerConfig,
} from './peers.js';
export { GossipSendQueue, type QueuedGossip, type SendQueueLimits } from './send-queue.js';
export * from './node-rpc.js';
