import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The `peer` label of every peer that is not in the configured peer table (unlisted and
 * discovered peers). Under the unlisted peer policy any `node` certificate of the cluster may
 * connect, so labelling them by certificate name would add a series per name for good. No
 * certificate name contains `<`, so a listed peer never shares it.
 */
export const UNLISTED_PEER_LABEL = '<unlisted>';

/**
 * Metrics of the consensus network, on a registry the caller passes in (prefix
 * `hypermesh_consensus_net_`). Peer labels are bounded by the configured peer table: a listed
 * peer is labelled by its id, every other one `UNLISTED_PEER_LABEL`.
 */
export interface ConsensusNetworkMetrics {
  /** Gossip messages by direction (`in`, `out`) and kind (`proposal`, `vote`, `txs`, `status`). */
  readonly messages: Counter<'direction' | 'kind'>;
  /**
   * Outgoing gossip not sent, by kind and reason: `queue_full` (the peer's bounded queue
   * overflowed), `too_large`, `encode_failed`, `not_connected` (`send` to a peer without a
   * stream), `stream_closed` (queued when the stream ended).
   */
  readonly dropped: Counter<'kind' | 'reason'>;
  /**
   * Incoming gossip that failed to decode or broke the stream's framing, by peer (listed id or
   * `UNLISTED_PEER_LABEL`).
   */
  readonly malformed: Counter<'peer'>;
  /**
   * Gossip streams established, by peer (listed id or `UNLISTED_PEER_LABEL`; each reconnection
   * counts).
   */
  readonly connects: Counter<'peer'>;
  /** Peers with a gossip stream now. */
  readonly connectedPeers: Gauge;
  /**
   * Hellos answered (a peer whose stream this node opens says it is up), by what they caused:
   * `connected`, `opening`, `woken` (the backoff was cut short), `dropped_stale` (a stream to the
   * peer's previous process was dropped), `too_soon` (ignored: the previous one acted just now),
   * `unlisted` (the caller is not in the peer table: it was told to open the stream itself).
   */
  readonly hellos: Counter<'outcome'>;
  /**
   * Proposals and votes from an unlisted peer whose key is not a validator of the height being
   * decided or the next, dropped unread (docs/stoq-auth.md "Consensus peers"), by kind.
   */
  readonly unlistedRefused: Counter<'kind'>;
  /** Blocks served to syncing peers. */
  readonly blocksServed: Counter;
  /** Blocks received from peers by `fetchBlocks`. */
  readonly blocksFetched: Counter;
}

export function createConsensusNetworkMetrics(registry: Registry): ConsensusNetworkMetrics {
  const registers = [registry];
  const prefix = 'hypermesh_consensus_net_';
  return {
    messages: new Counter({
      name: `${prefix}gossip_messages_total`,
      help: 'Consensus gossip messages by direction (in, out) and kind',
      labelNames: ['direction', 'kind'],
      registers,
    }),
    dropped: new Counter({
      name: `${prefix}gossip_dropped_total`,
      help: 'Outgoing consensus gossip dropped, by kind and reason',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    malformed: new Counter({
      name: `${prefix}gossip_malformed_total`,
      help: 'Incoming consensus gossip that failed to decode, by peer',
      labelNames: ['peer'],
      registers,
    }),
    connects: new Counter({
      name: `${prefix}peer_connects_total`,
      help: 'Consensus gossip streams established, by peer',
      labelNames: ['peer'],
      registers,
    }),
    connectedPeers: new Gauge({
      name: `${prefix}connected_peers`,
      help: 'Consensus peers with an established gossip stream',
      registers,
    }),
    hellos: new Counter({
      name: `${prefix}hellos_total`,
      help: 'Hellos from (re)started consensus peers answered, by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    unlistedRefused: new Counter({
      name: `${prefix}unlisted_refused_total`,
      help: 'Proposals and votes from unlisted peers that are not validators, dropped',
      labelNames: ['kind'],
      registers,
    }),
    blocksServed: new Counter({
      name: `${prefix}sync_blocks_served_total`,
      help: 'Committed blocks served to syncing peers',
      registers,
    }),
    blocksFetched: new Counter({
      name: `${prefix}sync_blocks_fetched_total`,
      help: 'Committed blocks received from peers by block sync',
      registers,
    }),
  };
}
