import { BoundedMap } from '../../codec/bounded-map.js';
import { HyperMeshError } from '../../codec/error.js';
import type { DriverLogger, PeerProgress } from './driver-types.js';
import type { ConsensusNetwork, SyncedBlock } from './ports.js';
import type { Timers } from './timers.js';

/**
 * Longest back-off of a failing peer, in back-off units (gossip periods: ~17 min at 1 s). A peer
 * that claims heights it never serves stalls this node for one idle deadline per back-off, so
 * the cap bounds that cost (10 s in ~17 min once it is reached).
 */
const MAX_BACKOFF_UNITS = 1024;
/** `sync-busy` answers in a row taken for a busy server; one more is penalized as a failure. */
export const MAX_BUSY_IN_A_ROW = 3;
/**
 * Peers whose back-off block sync remembers (least recently penalized forgotten first). Only peers
 * this node can fetch from (listed and discovered ones) are ever penalized, so the bound is far
 * above a cluster's peer count; it only stops churn of discovered peers from growing the map.
 */
export const DEFAULT_MAX_BACKED_OFF_PEERS = 1024;
const GRACE_TIMER = 'sync-grace';
const IDLE_TIMER = 'sync-idle';
const PAGE_TIMER = 'sync-page';

/** Which deadline a peer missed while serving a page of blocks. */
export enum SyncDeadline {
  /** No new block stored within `idleTimeoutMs` (a silent or trickling peer). */
  IDLE = 'SYNC_IDLE_TIMEOUT',
  /** The page was not complete within `pageTimeoutMs`. */
  PAGE = 'SYNC_PAGE_TIMEOUT',
}

/** A page fetch abandoned at a deadline (the `error` of the `SYNC_FAILED` rejection). */
export class SyncTimeoutError extends HyperMeshError<SyncDeadline> {}

/** The network's refusal of a serving node at its limit (`RESOURCE_EXHAUSTED`, `sync-busy`). */
function isSyncBusy(error: unknown): boolean {
  return (
    error instanceof HyperMeshError &&
    error.code === 'RESOURCE_EXHAUSTED' &&
    error.detail.reason === 'sync-busy'
  );
}

/** The named timers block sync sets (the driver's `Timers`; a test may drive them by hand). */
export type SyncTimers = Pick<Timers, 'set' | 'has' | 'clear'>;

/** How one page fetch ended. */
interface PageOutcome {
  /** Blocks of this page verified and stored. */
  readonly stored: number;
  /** The deadline that ended it, or null. */
  readonly expired: SyncDeadline | null;
  /** Storing failed and the driver halted. */
  readonly halted: boolean;
}

/** What block sync needs from the driver. */
export interface SyncHost {
  readonly network: ConsensusNetwork;
  readonly now: () => number;
  readonly logger: DriverLogger;
  readonly timers: SyncTimers;
  /** How long a peer may be one block ahead before we fetch that block (a propose timeout). */
  readonly graceMs: number;
  /** A page fetch is abandoned when no new block was stored for this long. */
  readonly idleTimeoutMs: number;
  /** A page fetch is abandoned when it is not complete after this long. */
  readonly pageTimeoutMs: number;
  /** First back-off of a failing peer (a gossip period); it doubles on each further failure. */
  readonly backoffUnitMs: number;
  /** Blocks asked for in one request. */
  readonly batchSize: number;
  /** Peers whose back-off is remembered (default `DEFAULT_MAX_BACKED_OFF_PEERS`). */
  readonly maxBackedOffPeers?: number;
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
  /** The latest status of each connected peer (`forgetDisconnected` drops the others'). */
  private readonly progress = new Map<string, PeerProgress>();
  /**
   * Back-off of failing peers. It outlives a peer's connection — a peer that reconnects must not
   * clear its own back-off — so it is bounded by size instead.
   */
  /** Per peer: failures so far, `sync-busy` answers in a row, and when it may be asked again. */
  private readonly backoff: BoundedMap<string, { failures: number; busy: number; until: number }>;
  private run: Promise<void> | null = null;
  private abort: AbortController | null = null;

  constructor(private readonly host: SyncHost) {
    this.backoff = new BoundedMap(host.maxBackedOffPeers ?? DEFAULT_MAX_BACKED_OFF_PEERS);
  }

  get syncing(): boolean {
    return this.run !== null;
  }

  progressOf(peer: string): PeerProgress | undefined {
    return this.progress.get(peer);
  }

  /** How many peers' progress and back-off block sync holds (diagnostics and tests). */
  get trackedPeers(): { readonly progress: number; readonly backoff: number } {
    return { progress: this.progress.size, backoff: this.backoff.size };
  }

  /**
   * Drops the progress of peers that are no longer connected: under the unlisted peer policy any
   * `node` certificate of the cluster may connect and send statuses, so each certificate name
   * would otherwise stay for good. Only connected peers are synced from, and a peer sends its
   * status again when it reconnects. Back-offs are kept.
   */
  forgetDisconnected(connected: ReadonlySet<string>): void {
    for (const peer of this.progress.keys()) {
      if (!connected.has(peer)) this.progress.delete(peer);
    }
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
          (this.backoff.peek(progress.peer)?.until ?? 0) <= now,
      )
      .sort((a, b) => b.committedHeight - a.committedHeight);
  }

  /**
   * A peer whose blocks failed verification, or that sent none of the blocks its status
   * claimed, is not asked again for a while — twice as long after each further failure — so a
   * peer lying about its height cannot keep this node busy.
   */
  private penalize(peer: string): void {
    const previous = this.backoff.peek(peer);
    const failures = (previous?.failures ?? 0) + 1;
    const units = Math.min(2 ** (failures - 1), MAX_BACKOFF_UNITS);
    this.backoff.set(peer, {
      failures,
      busy: previous?.busy ?? 0,
      until: this.host.now() + units * this.host.backoffUnitMs,
    });
  }

  /**
   * A peer that refused with `sync-busy` waits one back-off unit before it is asked again, its
   * failure count unchanged: a busy server is not a faulty one. Only `MAX_BUSY_IN_A_ROW` times
   * in a row, though (false: penalize it as a failure): the reason is the peer's own word, and
   * a peer claiming far ahead and answering nothing but "busy" would otherwise be asked every
   * back-off unit for ever, each run holding off the next height.
   */
  private busy(peer: string): boolean {
    const previous = this.backoff.peek(peer);
    const busy = (previous?.busy ?? 0) + 1;
    if (busy > MAX_BUSY_IN_A_ROW) {
      this.backoff.set(peer, { failures: previous?.failures ?? 0, busy, until: 0 });
      return false;
    }
    this.backoff.set(peer, {
      failures: previous?.failures ?? 0,
      busy,
      until: this.host.now() + this.host.backoffUnitMs,
    });
    return true;
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

  /**
   * Fetches from the most advanced peer until no peer is ahead or every one failed or is backing
   * off; then the run ends and the driver's engine resumes at the stored height. A peer that
   * misses a page deadline is penalized like one that sent bad blocks, so a peer that claims a
   * height and then never answers (or trickles) holds the node for one deadline at a time.
   */
  private async fetchAll(signal: AbortSignal): Promise<void> {
    const host = this.host;
    host.logger('info', 'block sync started', { committedHeight: host.committedHeight() });
    while (host.active() && !signal.aborted) {
      const peer = this.peersAhead()[0];
      if (peer === undefined) break;
      const from = host.committedHeight() + 1;
      const to = Math.min(peer.committedHeight, from + host.batchSize - 1);
      let page: PageOutcome;
      try {
        page = await this.fetchPage(peer.peer, from, to, signal);
      } catch (error) {
        if (!host.active() || signal.aborted) break;
        if (isSyncBusy(error) && this.busy(peer.peer)) {
          // A server busy serving others is not at fault: ask the others, and it again soon.
          host.logger('info', 'block sync: the peer is busy serving others', {
            peer: peer.peer,
            from,
          });
          continue;
        }
        this.penalize(peer.peer);
        host.logger('warn', 'block sync from a peer failed', {
          peer: peer.peer,
          from,
          error: (error as Error).message,
        });
        host.failed(peer.peer, from, error as Error);
        continue;
      }
      if (page.halted) return;
      if (!host.active() || signal.aborted) break;
      if (page.expired !== null) {
        this.timedOut(peer.peer, from, to, page);
      } else if (page.stored === 0) {
        // The blocks it sent may all be ones this node's engine decided meanwhile (skipped
        // in `fetchPage`): that is our progress, not the peer's fault. A peer serving nothing
        // is still penalized, and it cannot repeat this without this node committing anew.
        if (host.committedHeight() < from) {
          this.penalize(peer.peer);
          host.failed(peer.peer, from);
        }
      } else if (host.committedHeight() >= to) {
        this.backoff.delete(peer.peer);
      } else {
        // It served some blocks and then stopped short of the page its status claimed: its
        // claim is lowered to what this node now has, and it backs off like any failure — a
        // peer that keeps claiming far ahead and serving one block at a time (each as the
        // others decide it) would otherwise hold this node in sync, out of consensus, forever.
        this.shortPage(peer.peer, from, to, page.stored);
      }
    }
    host.logger('info', 'block sync finished', { committedHeight: host.committedHeight() });
  }

  private shortPage(peer: string, from: number, to: number, stored: number): void {
    const host = this.host;
    const reached = host.committedHeight();
    const claimed = this.progress.get(peer);
    if (claimed !== undefined && claimed.committedHeight > reached) {
      this.progress.set(peer, { ...claimed, committedHeight: reached });
    }
    this.penalize(peer);
    host.logger('warn', 'block sync from a peer stopped short of its claim', {
      peer,
      from,
      to,
      stored,
      reached,
    });
    host.failed(
      peer,
      reached + 1,
      new Error(
        `block sync from ${peer}: blocks ${from}..${to} asked, it stopped after ${reached}`,
      ),
    );
  }

  private timedOut(peer: string, from: number, to: number, page: PageOutcome): void {
    const host = this.host;
    const idle = page.expired === SyncDeadline.IDLE;
    const reason = idle
      ? `no new block within ${host.idleTimeoutMs} ms`
      : `blocks ${from}..${to} not complete within ${host.pageTimeoutMs} ms`;
    this.penalize(peer);
    host.logger('warn', 'block sync from a peer timed out', {
      peer,
      from,
      to,
      stored: page.stored,
      reason,
    });
    const error = new SyncTimeoutError(
      page.expired as SyncDeadline,
      `block sync from ${peer}: ${reason}`,
      { peer, from, to, stored: page.stored },
    );
    host.failed(peer, host.committedHeight() + 1, error);
  }

  /**
   * Fetches blocks `from..to` from `peer` and stores each new one, under two deadlines: no new
   * block stored for `idleTimeoutMs`, and the whole page not done after `pageTimeoutMs`. The
   * fetch gets its own abort signal, chained to the run's; a deadline or the run's abort ends
   * the wait for the next block even if the network ignores the signal.
   */
  private async fetchPage(
    peer: string,
    from: number,
    to: number,
    runSignal: AbortSignal,
  ): Promise<PageOutcome> {
    const host = this.host;
    const fetch = new AbortController();
    let expired: SyncDeadline | null = null;
    let wake: () => void = () => undefined;
    const ended = new Promise<null>((resolve) => {
      wake = () => resolve(null);
    });
    const end = (): void => {
      fetch.abort();
      wake();
    };
    const expire = (deadline: SyncDeadline) => (): void => {
      expired ??= deadline;
      end();
    };
    const outcome = (stored: number, halted = false): PageOutcome => ({
      stored,
      expired,
      halted,
    });
    runSignal.addEventListener('abort', end, { once: true });
    host.timers.set(PAGE_TIMER, host.pageTimeoutMs, expire(SyncDeadline.PAGE));
    host.timers.set(IDLE_TIMER, host.idleTimeoutMs, expire(SyncDeadline.IDLE));
    let iterator: AsyncIterator<SyncedBlock> | null = null;
    let done = false;
    let stored = 0;
    try {
      iterator = host.network.fetchBlocks(peer, from, to, fetch.signal)[Symbol.asyncIterator]();
      for (;;) {
        if (runSignal.aborted) end();
        const next = await Promise.race([iterator.next(), ended]);
        if (next === null || fetch.signal.aborted) return outcome(stored);
        if (next.done === true) {
          done = true;
          return outcome(stored);
        }
        if (!host.active()) return outcome(stored);
        const synced = next.value;
        // A block this node stored meanwhile (its engine decided it) is skipped; it does not
        // count as progress, so a peer cannot hold the node with blocks it already has.
        if (typeof synced?.height === 'number' && synced.height <= host.committedHeight()) {
          continue;
        }
        if (!host.store(peer, synced)) return outcome(stored, true);
        stored++;
        host.timers.set(IDLE_TIMER, host.idleTimeoutMs, expire(SyncDeadline.IDLE));
      }
    } catch (error) {
      // A network that honours the abort may throw it before `ended` wins the race.
      if (expired !== null || runSignal.aborted) return outcome(stored);
      throw error;
    } finally {
      host.timers.clear(IDLE_TIMER);
      host.timers.clear(PAGE_TIMER);
      runSignal.removeEventListener('abort', end);
      if (!done && iterator !== null) {
        fetch.abort();
        // Not awaited: a peer that never answers may never let its stream finish either.
        const closing = iterator;
        void Promise.resolve()
          .then(() => closing.return?.())
          .catch(() => undefined);
      }
    }
  }
}
