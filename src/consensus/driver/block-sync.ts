import type { DriverLogger, PeerProgress } from './driver-types.js';
import type { ConsensusNetwork, SyncedBlock } from './ports.js';
import type { Timers } from './timers.js';

/** Longest back-off of a failing peer, in back-off units (gossip periods). */
const MAX_BACKOFF_UNITS = 64;
const GRACE_TIMER = 'sync-grace';

/** What block sync needs from the driver. */
export interface SyncHost {
  readonly network: ConsensusNetwork;
  readonly now: () => number;
  readonly logger: DriverLogger;
  readonly timers: Timers;
  /** How long a peer may be one block ahead before we fetch that block (a propose timeout). */
  readonly graceMs: number;
  /** First back-off of a failing peer (a gossip period); it doubles on each further failure. */
  readonly backoffUnitMs: number;
  /** Blocks asked for in one request. */
  readonly batchSize: number;
  /** False once the driver stopped or halted. */
  active(): boolean;
  committedHeight(): number;
  /**
   * Verifies and stores a block fetched for the next height; throws when the block is bad.
   * False when storing failed and the driver halted.
   */
  store(peer: string, synced: SyncedBlock): boolean;
  /** A sync request to `peer` failed (counted as a rejection). */
  failed(peer: string, height: number, error?: Error): void;
  /** A sync run ended (the driver restarts its engine at the new height). */
  finished(): void;
}

/**
 * Block sync (CometBFT's blocksync, simplified): peers announce their latest stored height in
 * `status` messages; a node that is behind fetches the missing committed blocks from the most
 * advanced peer and hands each one to the driver, which verifies it like a proposal plus its
 * commit before storing it.
 */
export class BlockSync {
  private readonly progress = new Map<string, PeerProgress>();
  private readonly backoff = new Map<string, { failures: number; until: number }>();
  private run: Promise<void> | null = null;
  private abort: AbortController | null = null;

  constructor(private readonly host: SyncHost) {}

  get syncing(): boolean {
    return this.run !== null;
  }

  progressOf(peer: string): PeerProgress | undefined {
    return this.progress.get(peer);
  }

  /** Records a peer's status; starts syncing if it is ahead (see `consider`). */
  peerStatus(progress: PeerProgress): void {
    this.progress.set(progress.peer, progress);
    if (progress.committedHeight > this.host.committedHeight()) this.consider();
  }

  /**
   * Sync when a peer stored a height beyond the one we are deciding, or stored the one we are
   * deciding and we still have not decided it `graceMs` later (usually its precommits reach us
   * first and the engine decides by itself).
   */
  consider(): void {
    const host = this.host;
    if (!host.active() || this.run !== null) return;
    const ahead = this.peersAhead();
    if (ahead.length === 0) {
      host.timers.clear(GRACE_TIMER);
      return;
    }
    const committed = host.committedHeight();
    if ((ahead[0] as PeerProgress).committedHeight > committed + 1) {
      this.start();
      return;
    }
    if (!host.timers.has(GRACE_TIMER)) {
      host.timers.set(GRACE_TIMER, host.graceMs, () => {
        if (host.committedHeight() === committed && this.peersAhead().length > 0) this.start();
      });
    }
  }

  /** Cancels a running sync and waits for it to end. */
  async stop(): Promise<void> {
    this.abort?.abort();
    await this.run?.catch(() => undefined);
  }

  /**
   * Connected peers that stored more than we did, can serve blocks and are not backing off, most
   * advanced first.
   */
  private peersAhead(): PeerProgress[] {
    const network = this.host.network;
    const connected = new Set(
      network.peers().filter((peer) => network.canFetchFrom?.(peer) ?? true),
    );
    const committed = this.host.committedHeight();
    const now = this.host.now();
    return [...this.progress.values()]
      .filter(
        (progress) =>
          connected.has(progress.peer) &&
          progress.committedHeight > committed &&
          (this.backoff.get(progress.peer)?.until ?? 0) <= now,
      )
      .sort((a, b) => b.committedHeight - a.committedHeight);
  }

  /**
   * A peer whose blocks failed verification, or that sent none of the blocks its status
   * claimed, is not asked again for a while — twice as long after each further failure — so a
   * peer lying about its height cannot keep this node busy.
   */
  private penalize(peer: string): void {
    const failures = (this.backoff.get(peer)?.failures ?? 0) + 1;
    const units = Math.min(2 ** (failures - 1), MAX_BACKOFF_UNITS);
    this.backoff.set(peer, { failures, until: this.host.now() + units * this.host.backoffUnitMs });
  }

  private start(): void {
    if (!this.host.active() || this.run !== null) return;
    this.host.timers.clear(GRACE_TIMER);
    const abort = new AbortController();
    this.abort = abort;
    this.run = this.fetchAll(abort.signal).finally(() => {
      this.run = null;
      this.abort = null;
      if (this.host.active()) {
        this.host.finished();
        this.consider();
      }
    });
  }

  /** Fetches from the most advanced peer until no peer is ahead or every one failed. */
  private async fetchAll(signal: AbortSignal): Promise<void> {
    const host = this.host;
    host.logger('info', 'block sync started', { committedHeight: host.committedHeight() });
    while (host.active() && !signal.aborted) {
      const peer = this.peersAhead()[0];
      if (peer === undefined) break;
      const from = host.committedHeight() + 1;
      const to = Math.min(peer.committedHeight, from + host.batchSize - 1);
      let stored = 0;
      try {
        for await (const synced of host.network.fetchBlocks(peer.peer, from, to, signal)) {
          if (!host.active() || signal.aborted) break;
          // A block this node stored meanwhile (its engine decided it) is skipped.
          if (typeof synced?.height === 'number' && synced.height <= host.committedHeight()) {
            continue;
          }
          if (!host.store(peer.peer, synced)) return;
          stored++;
        }
      } catch (error) {
        if (!host.active() || signal.aborted) break;
        this.penalize(peer.peer);
        host.logger('warn', 'block sync from a peer failed', {
          peer: peer.peer,
          from,
          error: (error as Error).message,
        });
        host.failed(peer.peer, from, error as Error);
        continue;
      }
      if (stored === 0) {
        this.penalize(peer.peer);
        host.failed(peer.peer, from);
      } else {
        this.backoff.delete(peer.peer);
      }
    }
    host.logger('info', 'block sync finished', { committedHeight: host.committedHeight() });
  }
}
