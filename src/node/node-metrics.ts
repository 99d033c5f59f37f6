import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The node's consensus metrics (Prometheus, on the registry the node serves at /metrics).
 * Values that are cheap to read are sampled at scrape time through `collect`, so they are never
 * stale; per-block values are updated from the driver's commit events.
 */
export interface NodeMetricSources {
  /** Latest committed height (0 before the first block). */
  committedHeight(): number;
  /** The height and round the node is deciding now. */
  progress(): { height: number; round: number };
  /**
   * Peers with a live consensus connection: those whose authenticated key is a validator's of
   * the height being decided or the next, and the others (`connectedPeerCounts`).
   */
  connectedPeers(): ConnectedPeerCounts;
  /** Voting power of this node plus its connected peers, and of the whole validator set. */
  votingPower(): { online: number; total: number };
  mempoolSize(): number;
  /** Of those, transactions waiting for an earlier sequence of their sender (src/consensus/mempool.ts). */
  mempoolWaiting(): number;
  /** The intake queue in front of the mempool (src/node/tx-intake.ts). */
  intake(): { queued: number; busy: number; droppedFromPeers: number };
  walBytes(): number;
  storeBytes(): { database: number; wal: number };
  /**
   * The driver's evidence pool (equivocations waiting for a block, kept in the store) and the
   * precommits it added to a commit during the commit delay since start (`status()`).
   */
  driver(): { pendingEvidence: number; latePrecommits: number };
}

export interface ConnectedPeerCounts {
  readonly validators: number;
  readonly followers: number;
}

/**
 * Counts `network`'s connected peers by the key their STOQ authentication proved: a listed
 * peer whose key left the validator set counts as a follower, a validator that joined later
 * (unlisted or discovered) as a validator.
 */
export function connectedPeerCounts(
  network: { peers(): readonly string[]; peerKey(peer: string): Uint8Array | undefined },
  isValidator: (publicKey: Uint8Array) => boolean,
): ConnectedPeerCounts {
  let validators = 0;
  let followers = 0;
  for (const peer of network.peers()) {
    const key = network.peerKey(peer);
    if (key !== undefined && isValidator(key)) validators++;
    else followers++;
  }
  return { validators, followers };
}

export interface NodeMetrics {
  /** Records one committed block: its latency, transactions and evidence. */
  committed(block: { latencySeconds: number; txs: number; evidence: number }): void;
}

export function createNodeMetrics(registry: Registry, sources: NodeMetricSources): NodeMetrics {
  const registers = [registry];
  new Gauge({
    name: 'hypermesh_consensus_height',
    help: 'Latest committed block height',
    registers,
    collect() {
      this.set(sources.committedHeight());
    },
  });
  new Gauge({
    name: 'hypermesh_consensus_round',
    help: 'Round of the height being decided (0 when the first round succeeds)',
    registers,
    collect() {
      this.set(sources.progress().round);
    },
  });
  new Gauge({
    name: 'hypermesh_consensus_peers_connected',
    help: 'Validators (of the height being decided or the next) this node has a live consensus connection with',
    registers,
    collect() {
      this.set(sources.connectedPeers().validators);
    },
  });
  new Gauge({
    name: 'hypermesh_consensus_followers_connected',
    help: 'Peers whose key is no validator of the height being decided or the next that this node has a live consensus connection with',
    registers,
    collect() {
      this.set(sources.connectedPeers().followers);
    },
  });
  new Gauge({
    name: 'hypermesh_consensus_online_voting_power',
    help: 'Voting power of this node and the peers it is connected to',
    registers,
    collect() {
      this.set(sources.votingPower().online);
    },
  });
  new Gauge({
    name: 'hypermesh_consensus_total_voting_power',
    help: 'Voting power of the whole validator set',
    registers,
    collect() {
      this.set(sources.votingPower().total);
    },
  });
  new Gauge({
    name: 'hypermesh_mempool_size',
    help: 'Transactions waiting in the mempool',
    registers,
    collect() {
      this.set(sources.mempoolSize());
    },
  });
  new Gauge({
    name: 'hypermesh_mempool_waiting',
    help: 'Mempool transactions waiting for an earlier sequence of their sender that is not pending (not offered to proposers)',
    registers,
    collect() {
      this.set(sources.mempoolWaiting());
    },
  });
  new Gauge({
    name: 'hypermesh_tx_intake_queued',
    help: 'Transactions waiting for mempool admission in the intake queue',
    registers,
    collect() {
      this.set(sources.intake().queued);
    },
  });
  new Gauge({
    name: 'hypermesh_tx_intake_refused',
    help: 'Transactions turned away because the intake queue was full, since start: client ones refused with MEMPOOL_BUSY, peer ones dropped',
    labelNames: ['origin'],
    registers,
    collect() {
      const stats = sources.intake();
      this.set({ origin: 'client' }, stats.busy);
      this.set({ origin: 'peer' }, stats.droppedFromPeers);
    },
  });
  new Gauge({
    name: 'hypermesh_consensus_evidence_pending',
    help: 'Equivocation offences this node found that no block has included yet (kept across restarts)',
    registers,
    collect() {
      this.set(sources.driver().pendingEvidence);
    },
  });
  new Gauge({
    name: 'hypermesh_consensus_late_precommits',
    help: 'Precommits that arrived during the commit delay and were added to the commit this node proposes with, since start',
    registers,
    collect() {
      this.set(sources.driver().latePrecommits);
    },
  });
  new Gauge({
    name: 'hypermesh_consensus_wal_bytes',
    help: 'Size of the consensus write-ahead log',
    registers,
    collect() {
      this.set(sources.walBytes());
    },
  });
  new Gauge({
    name: 'hypermesh_store_bytes',
    help: 'Size of the node store: the SQLite database and its -wal file',
    labelNames: ['file'],
    registers,
    collect() {
      const sizes = sources.storeBytes();
      this.set({ file: 'database' }, sizes.database);
      this.set({ file: 'wal' }, sizes.wal);
    },
  });
  const latency = new Histogram({
    name: 'hypermesh_consensus_commit_latency_seconds',
    help: 'Time from the start of a height to its commit on this node',
    buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
    registers,
  });
  const blocks = new Counter({
    name: 'hypermesh_consensus_blocks_committed_total',
    help: 'Blocks this node committed',
    registers,
  });
  const txs = new Counter({
    name: 'hypermesh_consensus_txs_committed_total',
    help: 'Transactions in blocks this node committed',
    registers,
  });
  const evidence = new Counter({
    name: 'hypermesh_consensus_evidence_total',
    help: 'Evidence of misbehaviour (duplicate votes) included in committed blocks',
    registers,
  });
  return {
    committed: (block) => {
      latency.observe(block.latencySeconds);
      blocks.inc();
      txs.inc(block.txs);
      evidence.inc(block.evidence);
    },
  };
}
