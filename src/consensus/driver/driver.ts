import { EventEmitter } from 'node:events';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import type { BlockExecutionResult } from '../app.js';
import { blockReceipts } from '../application/tx-results.js';
import type { ConsensusAction, ConsensusEvent, StepResult } from '../events.js';
import { checkValidatorUpdates, nextHeightContext, type HeightContext } from '../height-context.js';
import { encodeValidatorUpdates } from '../validator-updates.js';
import { blockHash } from '../messages.js';
import { proposerAt } from '../proposer.js';
import type { ConsensusConfig, TendermintState } from '../state.js';
import { startTendermint, step } from '../tendermint.js';
import type {
  Block,
  DuplicateVoteEvidence,
  ProposalRequest,
  QuorumCertificate,
  TimeoutStep,
  Vote,
  VoteRequest,
} from '../types.js';
import type { ValidatorSet } from '../validator-set.js';
import { MessageRejection } from '../verify.js';
import type { SigningStep } from '../double-sign-guard.js';
import { restoreTendermint } from '../wal.js';
import {
  decodeBlock,
  decodeQuorumCertificate,
  encodeBlock,
  encodeQuorumCertificate,
} from '../wire.js';
import {
  BlockRefusal,
  blockSizeError,
  checkAndExecute,
  lastCommitInfo,
  storedEvidence,
  verifySyncedBlock,
  type BlockCheckDeps,
} from './block-checks.js';
import { BlockSync } from './block-sync.js';
import { loadChain } from './chain.js';
import { resolveDriverConfig } from './driver-config.js';
import {
  DriverRejection,
  type CommitInfo,
  type ConsensusDriverOptions,
  type DriverEvents,
  type DriverLogger,
  type DriverStatus,
  type RoundInfo,
} from './driver-types.js';
import { DriverError, DriverErrorCode } from './errors.js';
import { EvidencePool } from './evidence-pool.js';
import { bufferSlot, FutureMessages } from './future-messages.js';
import { heldMessages, rebroadcastMessages } from './gossip.js';
import { GuardedSigner } from './guarded-signer.js';
import { decideMissingSignerState } from './signer-state-missing.js';
import { CommitGathering } from './late-precommits.js';
import type { GossipMessage, SyncedBlock } from './ports.js';
import { buildProposal } from './proposal.js';
import { conflictingPrevote } from './test-equivocation.js';
import { Timers } from './timers.js';
import { openConsensusLog, walSigningHistory, type ConsensusLog } from './wal-log.js';

/** Events stepped before one WAL append (group commit of a burst of votes). */
const MAX_STEP_BATCH = 64;
/** Execution results kept per height (a faulty proposer cannot make it grow further). */
const MAX_CACHED_RESULTS = 16;
const START_HEIGHT_TIMER = 'start-height';

interface QueuedEvent {
  readonly event: ConsensusEvent;
  readonly peer: string | null;
}

function isSafeCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** Actions whose effect leaves the process (see `afterSteps`). */
function isOutward(action: ConsensusAction): boolean {
  return (
    action.type === 'broadcast-proposal' ||
    action.type === 'broadcast-vote' ||
    action.type === 'sign-vote' ||
    action.type === 'sign-proposal'
  );
}

function timeoutTimer(height: number, round: number, stepName: TimeoutStep): string {
  return `timeout/${height}/${round}/${stepName}`;
}

/**
 * The consensus driver: runs the pure Tendermint state machine (tendermint.ts) against the world.
 *
 * - One queue serializes every input — gossip, timers, the application's and the signer's
 *   answers — so the engine is never re-entered. A burst of queued events is stepped together;
 *   the resulting WAL record is appended (fsync) once, before any of their actions runs.
 * - Signatures go through the double-sign guard with the last-signed record persisted first;
 *   FALCON-1024 signing runs off the loop and comes back as an event.
 * - A decided block is stored (with its commit, evidence and state changes, fsynced) before
 *   anything else happens; after `commitDelayMs` the next height starts. Precommits for the
 *   decided block that arrive meanwhile are verified and added to the commit this node puts in
 *   its next proposal as `lastCommit` (late-precommits.ts); the stored commit stays the decision.
 * - A node that is behind fetches committed blocks from a peer ahead and verifies each one
 *   (consensus rules, quorum certificate, proofs, re-execution) before storing it.
 */
export class ConsensusDriver extends EventEmitter<DriverEvents> {
  private readonly chainId: string;
  private readonly config: ConsensusConfig;
  private readonly checks: BlockCheckDeps;
  private readonly now: () => number;
  private readonly logger: DriverLogger;
  private readonly selfAddress: string | null;
  private readonly gossipIntervalMs: number;
  private readonly idleBlockIntervalMs: number;
  /** While the next height waits out the idle interval: when the decision was stored. */
  private idleSince: number | null = null;
  private readonly idleWaits = { started: 0, woken: 0 };
  private unsubscribeAdmitted: (() => void) | null = null;
  private readonly timers = new Timers();
  private readonly future: FutureMessages;
  private readonly queue: QueuedEvent[] = [];
  private readonly results = new Map<string, BlockExecutionResult>();
  private readonly evidence: EvidencePool;
  /**
   * Per connected peer, when we last sent it our status outside the gossip tick; a peer's entry
   * goes at the first gossip tick after it disconnects (`forgetDisconnectedPeers`).
   */
  private readonly statusSentAt = new Map<string, number>();
  /**
   * Per peer, when we last sent it our held messages and for which height; a peer that
   * reconnects again within a gossip period is owed them until the next gossip tick instead.
   */
  private readonly heldSentAt = new Map<string, { height: number; at: number }>();
  private readonly heldOwed = new Set<string>();
  private readonly rejections = new Map<string, number>();
  private signer: GuardedSigner | null = null;
  private wal: ConsensusLog | null = null;
  private walClose: (() => void) | null = null;
  private state: TendermintState | null = null;
  /** The next height to decide: committed + 1 (the engine may still be at an earlier one). */
  private context: HeightContext | null = null;
  private committedHeight = 0;
  private lastCommitTime: number | null = null;
  private lastBlockTime: number | null = null;
  private heightStartedAt = 0;
  private announced: RoundInfo | null = null;
  private draining = false;
  private started = false;
  private running = false;
  private haltReason: string | null = null;
  private readonly sync: BlockSync;
  private gossipTimer: NodeJS.Timeout | null = null;
  private lastGossipHeight = 0;
  /** The commit of the height just decided, while the commit delay lasts (validators only). */
  private gathering: CommitGathering | null = null;
  /** Late precommits added to a commit since start (`status().latePrecommits`). */
  private latePrecommits = 0;

  constructor(private readonly options: ConsensusDriverOptions) {
    super();
    const config = resolveDriverConfig(options);
    const { genesis } = options;
    this.chainId = genesis.chainId;
    this.config = config.engine;
    this.selfAddress = config.selfAddress;
    this.gossipIntervalMs = config.gossipIntervalMs;
    this.idleBlockIntervalMs = config.idleBlockIntervalMs;
    this.now = options.now ?? Date.now;
    this.logger = options.log ?? (() => undefined);
    this.future = new FutureMessages({
      messagesPerPeer: config.maxBufferedPerPeer,
      bytesPerPeer: config.maxBufferedBytesPerPeer,
    });
    this.evidence = new EvidencePool({
      store: options.store,
      maxPerBlock: config.maxEvidencePerBlock,
      log: this.logger,
    });
    this.checks = {
      chainId: this.chainId,
      verifier: config.verifier,
      requirePq: genesis.consensus.requirePq,
      app: options.app,
      proofs: options.proofs,
      store: options.store,
      maxBlockTxs: genesis.consensus.maxBlockTxs,
      maxBlockBytes: genesis.consensus.maxBlockBytes,
    };
    this.sync = new BlockSync({
      network: options.network,
      now: this.now,
      logger: this.logger,
      timers: this.timers,
      graceMs: genesis.consensus.timeouts.proposeMs,
      backoffUnitMs: this.gossipIntervalMs,
      batchSize: config.syncBatchSize,
      idleTimeoutMs: config.syncIdleTimeoutMs,
      pageTimeoutMs: config.syncPageTimeoutMs,
      active: () => this.running,
      committedHeight: () => this.committedHeight,
      store: (_peer, synced) => this.storeSynced(synced),
      failed: (peer, height, error) =>
        this.reject(DriverRejection.SYNC_FAILED, peer, height, error),
      finished: () => this.startNextHeight(),
    });
  }

  // --- Lifecycle ----------------------------------------------------------------------------

  /**
   * Reads the chain position and the pending evidence from the store, loads the signer's
   * record, replays the WAL (the height in progress is restored, locks and own votes included)
   * and starts deciding.
   */
  async start(): Promise<void> {
    if (this.started) {
      throw new DriverError(DriverErrorCode.WRONG_LIFECYCLE, 'the driver was started already');
    }
    this.started = true;
    const position = loadChain(this.options.genesis, this.options.store);
    this.context = position.context;
    this.committedHeight = position.committedHeight;
    this.lastBlockTime = position.lastBlockTime;
    this.evidence.load(position.context, this.checks);
    if (this.options.self !== null && this.selfAddress !== null) {
      this.signer = await GuardedSigner.open({
        chainId: this.chainId,
        address: this.selfAddress,
        keys: this.options.self,
        path: this.options.signerStatePath,
        now: this.now,
        ...(this.options.mayStillSign === undefined
          ? {}
          : { mayStillSign: this.options.mayStillSign }),
      });
      this.checkSignerState(this.signer, this.selfAddress, position.context);
    }
    const context = position.context;
    const opened = openConsensusLog(this.options.walPath, this.committedHeight, (message, fields) =>
      this.logger('warn', message, fields),
    );
    this.wal = opened.log;
    this.walClose = opened.close;
    const replayed = opened.record;
    let result: StepResult<TendermintState>;
    try {
      result =
        replayed === null
          ? startTendermint(this.config, context)
          : restoreTendermint(this.config, context, replayed);
    } catch (error) {
      this.walClose = null;
      opened.close();
      throw error;
    }
    if (replayed !== null) {
      this.logger('info', 'consensus restored from the WAL', {
        height: context.height,
        round: replayed.round,
        step: replayed.step,
      });
    }
    this.state = result.state;
    this.heightStartedAt = this.now();
    this.running = true;
    this.options.network.onMessage((peer, message) => this.receive(peer, message));
    this.options.network.onPeerConnected((peer) => this.peerConnected(peer));
    this.gossipTimer = setInterval(() => this.gossipTick(), this.gossipIntervalMs);
    if (this.idleBlockIntervalMs > 0 && this.options.mempool.onAdmitted !== undefined) {
      // A transaction that waits for an earlier sequence gives a block nothing to include.
      this.unsubscribeAdmitted = this.options.mempool.onAdmitted(() => {
        let ready = 1;
        try {
          ready = this.readyTransactions();
        } catch {
          // A failing mempool port: wake anyway, as before ready counts existed.
        }
        if (ready > 0) this.endIdleWait('transaction');
      });
    }
    this.draining = true;
    try {
      this.afterSteps([{ actions: result.actions, peer: null }]);
    } finally {
      this.draining = false;
    }
    if (this.running) this.broadcastStatus();
    this.drain();
  }

  /**
   * A validator whose files show a past (stored blocks, WAL records) but no signer state must
   * not sign as if it were new (signer-state-missing.ts): refused before anything is written,
   * or fenced when the options allow it.
   */
  private checkSignerState(signer: GuardedSigner, address: string, context: HeightContext): void {
    const path = this.options.signerStatePath;
    const policy = this.options.signerStateMissing ?? 'refuse';
    const decision = decideMissingSignerState({
      hasRecord: signer.hasRecord(),
      isValidator:
        context.schedule.validators.indexOf.has(address) ||
        (context.nextSchedule?.validators.indexOf.has(address) ?? false),
      committedHeight: this.committedHeight,
      wal: signer.hasRecord()
        ? { checkpointHeight: null, signedHeight: null }
        : walSigningHistory(this.options.walPath),
      policy,
    });
    if (decision.kind === 'start') return;
    if (decision.kind === 'mark') {
      signer.setFence(0);
      return;
    }
    if (decision.kind === 'refuse') {
      throw new DriverError(
        DriverErrorCode.SIGNER_STATE_MISSING,
        `validator ${address} has no signer state at ${path}, but this node reached height ` +
          `${decision.knownHeight} before (store or consensus WAL): what its key signed there is ` +
          `unknown, and signing now could equivocate. Copy ${path} from the old host after its ` +
          `node stopped (never from a backup taken while it ran: a stale record is as ` +
          `dangerous as none), or start with signerStateMissing { waitHeights: N } ` +
          `(node config consensus.signerStateMissing) to sign nothing up to height ` +
          `${decision.knownHeight} + N, N more than the blocks committed since the backup ` +
          `(docs/consensus.md "Signer state")`,
        { path, validator: address, knownHeight: decision.knownHeight },
      );
    }
    signer.setFence(decision.fenceHeight);
    this.logger('warn', 'no signer state: signing nothing up to the fence height', {
      path,
      knownHeight: decision.knownHeight,
      fenceHeight: decision.fenceHeight,
    });
  }

  /**
   * Stops deciding: timers cleared, sync cancelled, queued events dropped; waits for signatures
   * being made (which are then not released) and closes the WAL. The store stays open.
   * Safe to call from an event listener, where it acts at once like a crash at that point.
   */
  async stop(): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    this.queue.length = 0;
    this.timers.clearAll();
    if (this.gossipTimer !== null) clearInterval(this.gossipTimer);
    this.gossipTimer = null;
    this.unsubscribeAdmitted?.();
    this.unsubscribeAdmitted = null;
    this.idleSince = null;
    const syncStopped = this.sync.stop();
    this.signer?.close();
    if (!wasRunning && this.walClose === null) return;
    await this.signer?.idle();
    await syncStopped;
    const close = this.walClose;
    this.walClose = null;
    close?.();
  }

  private halt(error: Error): void {
    if (this.haltReason !== null) return;
    this.haltReason = error.message;
    this.running = false;
    this.queue.length = 0;
    this.timers.clearAll();
    this.idleSince = null;
    this.signer?.close();
    void this.sync.stop();
    this.logger('error', 'consensus halted', { error: error.message });
    this.notify('halted', error);
  }

  /** Emits to listeners; a listener that throws is logged and never disturbs the driver. */
  private notify<K extends keyof DriverEvents>(event: K, ...args: DriverEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: DriverEvents[K]) => boolean).call(this, event, ...args);
    } catch (error) {
      this.logger('error', 'a driver event listener threw', {
        event,
        error: (error as Error).message,
      });
    }
  }

  // --- Serving ------------------------------------------------------------------------------

  status(): DriverStatus {
    const state = this.requireState();
    const validators = state.context.schedule.validators;
    const connected = new Set(this.options.network.peers());
    let mempoolSize = 0;
    try {
      mempoolSize = this.options.mempool.size();
    } catch {
      mempoolSize = -1;
    }
    const proposer = proposerAt(state.context.schedule, state.round).address;
    return {
      running: this.running,
      halted: this.haltReason,
      height: state.height,
      round: state.round,
      step: state.step,
      committedHeight: this.committedHeight,
      lastCommitTime: this.lastCommitTime,
      lastBlockTime: this.lastBlockTime,
      validator: this.selfAddress,
      validators: {
        count: validators.validators.length,
        totalPower: validators.totalPower,
        hash: toHex(validators.hash),
        proposer,
      },
      peers: [...connected].map(
        (peer) => this.sync.progressOf(peer) ?? { peer, committedHeight: 0, height: 0, round: 0 },
      ),
      mempoolSize,
      syncing: this.sync.syncing,
      pendingEvidence: this.evidence.size,
      bufferedMessages: this.future.size,
      latePrecommits: this.latePrecommits,
      idle: this.idleSince !== null,
      idleWaits: { ...this.idleWaits },
      rejected: Object.fromEntries(this.rejections),
      signer: this.signer === null ? null : { ...this.signer.counters },
      wal: { ...(this.wal?.stats ?? { appended: 0, unchanged: 0, internal: 0, bytes: 0 }) },
    };
  }

  /**
   * How many peers the driver holds per-peer state for: status pacing, sync progress and sync
   * back-off (diagnostics and tests; the first two follow the connected peers).
   */
  peerStateSizes(): {
    readonly statusSentAt: number;
    readonly syncProgress: number;
    readonly syncBackoff: number;
  } {
    const sync = this.sync.trackedPeers;
    return {
      statusSentAt: this.statusSentAt.size,
      syncProgress: sync.progress,
      syncBackoff: sync.backoff,
    };
  }

  /**
   * The validator sets of the next height to decide (`current`) and of the one after it
   * (`next`, already fixed: docs/consensus.md "Validator-set changes").
   */
  validatorSets(): { readonly current: ValidatorSet; readonly next: ValidatorSet } {
    const context = this.context;
    if (context === null) {
      throw new DriverError(DriverErrorCode.WRONG_LIFECYCLE, 'the driver has not been started');
    }
    const current = context.schedule.validators;
    return { current, next: context.nextSchedule?.validators ?? current };
  }

  /** A committed block and its commit from the store, or null when not stored. */
  committedBlock(height: number): { block: Block; commit: QuorumCertificate } | null {
    if (!Number.isSafeInteger(height) || height < 1) return null;
    const stored = this.options.store.blocks.byHeight(height);
    const commit = this.options.store.blocks.commitAt(height);
    if (stored === null || commit === null) return null;
    return { block: decodeBlock(stored.bytes), commit: decodeQuorumCertificate(commit) };
  }

  private requireState(): TendermintState {
    if (this.state === null) {
      throw new DriverError(DriverErrorCode.WRONG_LIFECYCLE, 'the driver has not been started');
    }
    return this.state;
  }

  // --- The event loop -----------------------------------------------------------------------

  private enqueue(event: ConsensusEvent, peer: string | null = null): void {
    if (!this.running) return;
    this.queue.push({ event, peer });
    this.drain();
  }

  /** Steps queued events in batches; each batch's WAL record is durable before its actions. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.running && this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_STEP_BATCH);
        const stepped: { actions: readonly ConsensusAction[]; peer: string | null }[] = [];
        for (const { event, peer } of batch) {
          const state = this.state as TendermintState;
          if (!this.engineAccepts(state, event)) {
            this.gatherDropped(event, peer);
            continue;
          }
          try {
            const result = step(state, event);
            this.state = result.state;
            stepped.push({ actions: result.actions, peer });
          } catch (error) {
            this.logger('error', 'the engine refused an event', {
              event: event.type,
              error: (error as Error).message,
            });
            this.reject(DriverRejection.STEP_FAILED, peer, undefined, error as Error);
          }
        }
        this.afterSteps(stepped);
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * WAL first, then the round announcement, then the actions. The record must be durable
   * before any action whose effect outlives the process — a message leaving for the network,
   * or the signer recording a signature — so after a crash the engine never contradicts what
   * others saw or what the signer remembers. Steps whose actions stay inside the process
   * (timers, building or checking a value, counting a rejection) need no append: losing them in
   * a crash is the same as crashing just before them. Committing needs none either: the stored
   * block is the durable record of the decision, and the next height starts from the store.
   */
  private afterSteps(
    stepped: readonly { actions: readonly ConsensusAction[]; peer: string | null }[],
  ): void {
    const state = this.state as TendermintState;
    try {
      if (stepped.some(({ actions }) => actions.some(isOutward))) this.wal?.log(state);
      else this.wal?.notNeeded();
    } catch (error) {
      this.halt(
        new DriverError(
          DriverErrorCode.COMMIT_FAILED,
          `cannot append to the consensus WAL: ${(error as Error).message}`,
          {},
          { cause: error },
        ),
      );
      return;
    }
    this.announce(state);
    for (const { actions, peer } of stepped) {
      for (const action of actions) {
        if (!this.running) return;
        try {
          this.execute(action, peer);
        } catch (error) {
          this.logger('error', 'consensus action failed', {
            action: action.type,
            error: (error as Error).message,
          });
        }
      }
    }
  }

  /**
   * Events for a height the engine has left, or while it waits for the next one, are dropped;
   * so are this node's own late answers (a timer, a block, a signature) for another height.
   */
  private engineAccepts(state: TendermintState, event: ConsensusEvent): boolean {
    const context = this.context as HeightContext;
    switch (event.type) {
      case 'start-height':
        return event.context.height > state.height;
      case 'timeout-fired':
      case 'value-proposed':
      case 'value-validated':
        return state.height === context.height && event.height === state.height;
      case 'vote-signed':
        return state.height === context.height && event.vote.height === state.height;
      case 'proposal-signed':
        return state.height === context.height && event.proposal.height === state.height;
      default:
        return state.height === context.height;
    }
  }

  private announce(state: TendermintState): void {
    const previous = this.announced;
    if (
      previous !== null &&
      previous.height === state.height &&
      previous.round === state.round &&
      previous.step === state.step
    ) {
      return;
    }
    const info = { height: state.height, round: state.round, step: state.step };
    this.announced = info;
    this.logger('debug', 'step', info);
    this.notify('round', info);
  }

  private execute(action: ConsensusAction, peer: string | null): void {
    switch (action.type) {
      case 'broadcast-proposal':
        this.options.network.broadcast({ kind: 'proposal', proposal: action.proposal });
        return;
      case 'broadcast-vote':
        this.options.network.broadcast({ kind: 'vote', vote: action.vote });
        return;
      case 'schedule-timeout': {
        const { height, round, step: stepName } = action;
        this.timers.set(timeoutTimer(height, round, stepName), action.durationMs, () =>
          this.enqueue({ type: 'timeout-fired', height, round, step: stepName }),
        );
        return;
      }
      case 'request-value':
        this.proposeValue(action);
        return;
      case 'validate-value':
        this.validateValue(action);
        return;
      case 'sign-vote':
        this.requestVote(action.request);
        return;
      case 'sign-proposal':
        this.requestProposal(action.request, action.blockHash);
        return;
      case 'commit-block':
        this.commitDecided(action.block, action.commit);
        return;
      case 'evidence-found':
        this.addEvidence(action.evidence);
        return;
      case 'message-rejected':
        this.reject(action.reason, peer, action.height, action.error);
        return;
    }
  }

  private reject(reason: string, peer: string | null, height?: number, error?: Error): void {
    this.rejections.set(reason, (this.rejections.get(reason) ?? 0) + 1);
    this.notify('rejected', {
      reason,
      peer,
      ...(height === undefined ? {} : { height }),
      ...(error === undefined ? {} : { error }),
    });
  }

  // --- getValue() and valid(v) --------------------------------------------------------------

  private proposeValue(action: ConsensusAction & { type: 'request-value' }): void {
    const { template } = action;
    const started = performance.now();
    let proposal: ReturnType<typeof buildProposal>;
    try {
      proposal = buildProposal(
        {
          app: this.options.app,
          mempool: this.options.mempool,
          proofs: this.options.proofs,
          maxBlockBytes: this.options.genesis.consensus.maxBlockBytes,
          maxBlockTxs: this.options.genesis.consensus.maxBlockTxs,
        },
        template,
        this.evidence.forBlock(template.height),
        lastCommitInfo(template.lastCommit, this.requireState().context),
      );
    } catch (error) {
      // No answer: the round's propose timeout moves everyone on.
      this.logger('error', 'cannot build a proposal', {
        height: template.height,
        round: action.round,
        error: (error as Error).message,
      });
      return;
    }
    const { block, result } = proposal;
    const updatesError = checkValidatorUpdates(
      (this.state as TendermintState).context,
      result.validatorUpdates,
    );
    if (updatesError !== undefined) {
      // Every correct validator would refuse the block: propose nothing, the timeout moves on.
      this.logger('error', 'the application returned validator updates that cannot be applied', {
        height: template.height,
        round: action.round,
        error: updatesError.message,
      });
      return;
    }
    this.logger('debug', 'proposal built', {
      height: action.height,
      round: action.round,
      txs: block.transactions.length,
      ms: Math.round(performance.now() - started),
    });
    this.cacheResult(toHex(blockHash(block.header)), result);
    this.enqueue({ type: 'value-proposed', height: action.height, round: action.round, block });
  }

  private validateValue(action: ConsensusAction & { type: 'validate-value' }): void {
    const state = this.state as TendermintState;
    const key = toHex(action.blockHash);
    const started = performance.now();
    const outcome = checkAndExecute(this.checks, state.context, action.block);
    this.logger('debug', 'proposal checked', {
      height: action.height,
      round: action.round,
      txs: action.block.transactions.length,
      ok: outcome.ok,
      ms: Math.round(performance.now() - started),
    });
    if (outcome.ok) {
      this.cacheResult(key, outcome.result);
    } else {
      this.logger('warn', 'proposed block refused', {
        height: action.height,
        round: action.round,
        reason: outcome.refusal,
        error: outcome.error.message,
      });
      this.reject(outcome.refusal, null, action.height, outcome.error);
    }
    this.enqueue({
      type: 'value-validated',
      height: action.height,
      blockHash: action.blockHash,
      valid: outcome.ok,
    });
  }

  private cacheResult(key: string, result: BlockExecutionResult): void {
    this.results.delete(key);
    this.results.set(key, result);
    while (this.results.size > MAX_CACHED_RESULTS) {
      const oldest = this.results.keys().next();
      if (oldest.done === true) break;
      this.results.delete(oldest.value);
    }
  }

  // --- Signing ------------------------------------------------------------------------------

  private requestVote(request: VoteRequest): void {
    const signer = this.signer;
    if (signer === null || request.height !== this.context?.height) return;
    void signer.signVote(request).then((outcome) => {
      if (outcome.kind === 'refused') {
        this.signRefused(request.height, request.round, request.type, outcome.reason);
        return;
      }
      const vote = outcome.value;
      this.emitSigned(vote.height, vote.round, vote.type, outcome.kind === 'reused');
      if (this.options.testEquivocation === 'prevote' && vote.type === 'prevote' && this.running) {
        this.equivocate(vote);
      }
      if (vote.height < (this.context as HeightContext).height) {
        // Signed after this node stored the height (others' precommits decided it first): the
        // vote still helps a peer that has not decided yet, and the signer has recorded it.
        if (this.running) {
          this.gatherLate(vote, null);
          this.options.network.broadcast({ kind: 'vote', vote });
        }
        return;
      }
      this.enqueue({ type: 'vote-signed', vote });
    });
  }

  /** TEST BUILDS ONLY (test-equivocation.ts): a conflicting prevote, broadcast, never counted. */
  private equivocate(vote: Vote): void {
    const keys = this.options.self;
    if (keys === null) return;
    const conflicting = conflictingPrevote(this.chainId, vote, keys.privateKey);
    this.logger('warn', 'TEST BUILD: broadcasting a conflicting prevote', {
      height: vote.height,
      round: vote.round,
    });
    this.options.network.broadcast({ kind: 'vote', vote: conflicting });
  }

  private requestProposal(request: ProposalRequest, hash: Uint8Array): void {
    const signer = this.signer;
    if (signer === null || request.height !== this.context?.height) return;
    void signer.signProposal(request, hash).then((outcome) => {
      if (outcome.kind === 'refused') {
        this.signRefused(request.height, request.round, 'propose', outcome.reason);
        return;
      }
      this.emitSigned(request.height, request.round, 'propose', outcome.kind === 'reused');
      this.enqueue({ type: 'proposal-signed', proposal: outcome.value });
    });
  }

  private emitSigned(height: number, round: number, step: SigningStep, reused: boolean): void {
    if (this.running) this.notify('signed', { height, round, step, reused });
  }

  private signRefused(height: number, round: number, kind: string, reason: string): void {
    if (reason === 'closed') return;
    this.logger('warn', 'the signer refused', { height, round, kind, reason });
    this.reject(DriverRejection.SIGN_REFUSED, null, height);
  }

  // --- Evidence -----------------------------------------------------------------------------

  private addEvidence(evidence: DuplicateVoteEvidence): void {
    if (this.evidence.add(evidence)) {
      this.logger('warn', 'equivocation detected', {
        validator: evidence.voteA.validator,
        height: evidence.voteA.height,
        round: evidence.voteA.round,
        type: evidence.voteA.type,
      });
    }
    this.notify('evidence', evidence);
  }

  // --- Commit -------------------------------------------------------------------------------

  /** decision_p[h_p] = v: store the block durably, then schedule the next height. */
  private commitDecided(block: Block, commit: QuorumCertificate): void {
    const context = this.context as HeightContext;
    const height = block.header.height;
    if (height !== context.height) {
      this.logger('debug', 'decision for a height already stored (by sync)', { height });
      return;
    }
    const key = toHex(commit.blockHash);
    let result = this.results.get(key);
    if (result === undefined) {
      // Validated before a restart (the WAL marks locked and valid values valid): execute again.
      const outcome = checkAndExecute(this.checks, context, block);
      if (!outcome.ok) {
        this.halt(
          new DriverError(
            DriverErrorCode.COMMIT_FAILED,
            `decided block ${height} fails re-execution: ${outcome.error.message}`,
            { height, refusal: outcome.refusal },
            { cause: outcome.error },
          ),
        );
        return;
      }
      result = outcome.result;
    }
    if (!this.persistBlock(block, commit.blockHash, commit, result, 'consensus')) return;
    this.startGathering(commit);
    const { commitDelayMs } = this.options.genesis.consensus;
    if (
      this.idleBlockIntervalMs > commitDelayMs &&
      block.transactions.length === 0 &&
      this.idle()
    ) {
      this.idleSince = this.now();
      this.idleWaits.started += 1;
      this.timers.set(START_HEIGHT_TIMER, this.idleBlockIntervalMs, () => this.startNextHeight());
      this.notify('idle', { height, phase: 'waiting' });
      return;
    }
    this.timers.set(START_HEIGHT_TIMER, commitDelayMs, () => this.startNextHeight());
  }

  /**
   * Nothing waits: no pending transaction, no pending evidence, and no peer's message of a later
   * height arrived already (peers that moved on must not wait for this node's idle interval).
   */
  private idle(): boolean {
    try {
      return this.readyTransactions() === 0 && this.evidence.size === 0 && this.future.size === 0;
    } catch {
      return false;
    }
  }

  /** Pending transactions a proposal could include (may throw: the mempool is a port). */
  private readyTransactions(): number {
    const { mempool } = this.options;
    return mempool.readySize === undefined ? mempool.size() : mempool.readySize();
  }

  /**
   * Ends an idle wait. A peer sent a message of a later height: the height starts
   * `commitDelayMs` after the decision, or now if that has passed. A transaction was admitted:
   * it starts `commitDelayMs` from now — the window a busy chain gives every transaction to be
   * joined by others in its block — or when the idle interval ends, if that is sooner.
   */
  private endIdleWait(reason: 'transaction' | 'peer'): void {
    if (this.idleSince === null || !this.running) return;
    const since = this.idleSince;
    this.idleSince = null;
    this.idleWaits.woken += 1;
    const { commitDelayMs } = this.options.genesis.consensus;
    const now = this.now();
    const remaining =
      reason === 'peer'
        ? since + commitDelayMs - now
        : Math.min(commitDelayMs, since + this.idleBlockIntervalMs - now);
    const height = this.committedHeight;
    this.logger('debug', 'idle wait ended', { height, remainingMs: remaining });
    this.timers.set(START_HEIGHT_TIMER, Math.max(0, remaining), () => this.startNextHeight());
    this.notify('idle', { height, phase: 'woken' });
  }

  /**
   * Stores a committed block — durable when `saveBlock` returns — and then tells the
   * application, the mempool and the WAL, in that order. False (and halted) when it failed.
   */
  private persistBlock(
    block: Block,
    hash: Uint8Array,
    commit: QuorumCertificate,
    result: BlockExecutionResult,
    source: CommitInfo['source'],
  ): boolean {
    const context = this.context as HeightContext;
    const { header } = block;
    const updates = result.validatorUpdates;
    let next: HeightContext;
    try {
      // Before storing: refused updates would leave a stored block this node cannot follow.
      // (The block checks refused such a block already; a decision needs more than 2/3.)
      next = nextHeightContext(context, block, commit, updates);
    } catch (error) {
      this.halt(
        new DriverError(
          DriverErrorCode.COMMIT_FAILED,
          `the validator updates of block ${header.height} cannot be applied: ${(error as Error).message}`,
          { height: header.height },
          { cause: error },
        ),
      );
      return false;
    }
    try {
      this.options.store.saveBlock({
        block: {
          height: header.height,
          hash,
          parentHash: header.parentHash,
          timeMs: header.time,
          bytes: encodeBlock(block),
        },
        commit: encodeQuorumCertificate(commit),
        evidence: block.evidence.map(storedEvidence),
        stateChanges: [...result.changes],
        stateRoot: result.stateRoot,
        ...(updates.length === 0 ? {} : { validatorUpdates: encodeValidatorUpdates(updates) }),
        receipts: blockReceipts(header.height, result.txResults),
      });
    } catch (error) {
      this.halt(
        new DriverError(
          DriverErrorCode.COMMIT_FAILED,
          `cannot store block ${header.height}: ${(error as Error).message}`,
          { height: header.height },
          { cause: error },
        ),
      );
      return false;
    }
    const latencyMs = this.now() - this.heightStartedAt;
    this.committedHeight = header.height;
    this.lastCommitTime = this.now();
    this.lastBlockTime = header.time;
    this.context = next;
    this.gathering = null;
    if (updates.length > 0) {
      this.logger('info', 'validator set changes', {
        height: header.height,
        effectiveHeight: header.height + 2,
        updates: updates.length,
        validators: next.nextSchedule?.validators.validators.length,
        totalPower: next.nextSchedule?.validators.totalPower,
      });
    }
    this.results.clear();
    this.timers.clearWhere((name) => name.startsWith('timeout/'));
    this.evidence.committed(block.evidence);
    try {
      this.options.app.committed(header.height, result);
    } catch (error) {
      this.logger('error', 'the application failed after a commit', {
        height: header.height,
        error: (error as Error).message,
      });
    }
    try {
      const started = performance.now();
      this.options.mempool.update(header.height, block.transactions);
      this.logger('debug', 'mempool updated', {
        height: header.height,
        pending: this.options.mempool.size(),
        ms: Math.round(performance.now() - started),
      });
    } catch (error) {
      this.logger('error', 'the mempool failed after a commit', {
        height: header.height,
        error: (error as Error).message,
      });
    }
    try {
      this.wal?.endHeight(header.height);
    } catch (error) {
      this.halt(
        new DriverError(
          DriverErrorCode.COMMIT_FAILED,
          `cannot rotate the consensus WAL after block ${header.height}: ${(error as Error).message}`,
          { height: header.height },
          { cause: error },
        ),
      );
      return false;
    }
    this.logger('info', 'block committed', {
      height: header.height,
      round: commit.round,
      txs: block.transactions.length,
      source,
    });
    this.notify('commit', {
      height: header.height,
      round: commit.round,
      txs: block.transactions.length,
      latencyMs,
      blockHash: toHex(hash),
      stateRoot: toHex(result.stateRoot),
      source,
    });
    this.broadcastStatus();
    return true;
  }

  /** Lines 52-54 of the paper: the engine moves to the stored chain's next height. */
  private startNextHeight(): void {
    this.idleSince = null;
    if (!this.running || this.sync.syncing) return;
    const state = this.state as TendermintState;
    const context = this.context as HeightContext;
    if (state.height >= context.height) return;
    this.timers.clear(START_HEIGHT_TIMER);
    this.heightStartedAt = this.now();
    const started = this.withGatheredCommit(context);
    this.context = started;
    this.queue.push({ event: { type: 'start-height', context: started }, peer: null });
    for (const { peer, event } of this.future.take(started.height))
      this.queue.push({ event, peer });
    this.drain();
  }

  // --- Late precommits (commit delay) ---------------------------------------------------------

  /**
   * Opens the gathering of late precommits for the height just stored — on a validator only,
   * since only a validator proposes. Precommits the engine stepped after its decision (later
   * events of the same batch) are offered first; those of validators already in the commit are
   * not (they would be refused as duplicates or not for the commit: at 10,000 validators the
   * decision's 6,667 are most of the round's).
   */
  private startGathering(commit: QuorumCertificate): void {
    const context = this.context as HeightContext;
    if (!this.running || this.signer === null || context.parent.kind !== 'block') return;
    const gathering = new CommitGathering(
      {
        chainId: this.chainId,
        validators: context.parent.validators,
        verifier: this.checks.verifier,
        requirePq: this.checks.requirePq,
      },
      commit,
    );
    this.gathering = gathering;
    const held = (this.state as TendermintState).precommits.get(commit.round);
    if (held === undefined) return;
    for (const validator of held.votes.keys()) {
      if (gathering.holds(validator)) continue;
      for (const vote of held.votes.get(validator) ?? []) this.gatherLate(vote, null);
    }
  }

  /**
   * Offers a vote of the stored height to the gathering. 'added'; a `MessageRejection` when it
   * is a precommit for the decided block that fails the engine's checks (a forgery); null when
   * nothing gathers or it is not a new precommit for the decided block and round.
   */
  private gatherLate(vote: Vote, peer: string | null): 'added' | MessageRejection | null {
    const gathering = this.gathering;
    if (gathering === null || typeof vote !== 'object' || vote === null) return null;
    if (vote.height !== gathering.height) return null;
    const result = gathering.offer(vote);
    if (!result.added) {
      if (result.reason === 'duplicate' || result.reason === 'not-for-commit') return null;
      this.logger('debug', 'late precommit refused', {
        height: gathering.height,
        validator: vote.validator,
        peer,
        reason: result.reason,
      });
      return result.reason;
    }
    this.latePrecommits++;
    this.logger('debug', 'late precommit added to the commit', {
      height: gathering.height,
      round: result.commit.round,
      validator: vote.validator,
      peer,
      precommits: result.commit.precommits.length,
    });
    return 'added';
  }

  /** A vote the engine no longer takes because it waits out the commit delay. */
  private gatherDropped(event: ConsensusEvent, peer: string | null): void {
    if (event.type === 'vote-received' || event.type === 'vote-signed') {
      const outcome = this.gatherLate(event.vote, peer);
      if (outcome !== null && outcome !== 'added') this.reject(outcome, peer, event.vote.height);
    }
  }

  /**
   * The context the next height starts with: the parent's commit with the precommits gathered
   * during the commit delay, if any were. The gathering ends here; a precommit arriving later
   * is stale. The stored commit stays the decision's (block sync serves that one).
   */
  private withGatheredCommit(context: HeightContext): HeightContext {
    const gathering = this.gathering;
    this.gathering = null;
    const { parent } = context;
    if (
      gathering === null ||
      gathering.added === 0 ||
      parent.kind !== 'block' ||
      parent.height !== gathering.height ||
      !bytesEqual(parent.hash, gathering.commit.blockHash)
    ) {
      return context;
    }
    this.logger('debug', 'late precommits join the last commit', {
      height: parent.height,
      added: gathering.added,
      precommits: gathering.commit.precommits.length,
    });
    return { ...context, parent: { ...parent, commit: gathering.commit } };
  }

  // --- Gossip -------------------------------------------------------------------------------

  private receive(peer: string, message: GossipMessage): void {
    if (!this.running) return;
    try {
      if (typeof message !== 'object' || message === null) {
        this.reject(DriverRejection.MALFORMED_GOSSIP, peer);
        return;
      }
      switch (message.kind) {
        case 'proposal':
          this.route(peer, message.proposal?.height, {
            type: 'proposal-received',
            proposal: message.proposal,
          });
          return;
        case 'vote':
          this.route(peer, message.vote?.height, { type: 'vote-received', vote: message.vote });
          return;
        case 'txs':
          if (!Array.isArray(message.txs) || !message.txs.every((tx) => tx instanceof Uint8Array)) {
            this.reject(DriverRejection.MALFORMED_GOSSIP, peer);
            return;
          }
          try {
            this.options.mempool.addFromPeer(peer, message.txs);
          } catch (error) {
            this.reject(DriverRejection.MEMPOOL_REFUSED, peer, undefined, error as Error);
          }
          return;
        case 'status':
          this.receiveStatus(peer, message);
          return;
        default:
          this.reject(DriverRejection.MALFORMED_GOSSIP, peer);
      }
    } catch (error) {
      this.logger('error', 'gossip handling failed', { peer, error: (error as Error).message });
      this.reject(DriverRejection.MALFORMED_GOSSIP, peer, undefined, error as Error);
    }
  }

  /**
   * A proposal or vote goes to the engine when it is for the height the engine is deciding;
   * one for the next height (or for this one while the engine has not started it) waits; an
   * older one is dropped, and its sender, which may be behind, gets our status.
   */
  private route(peer: string, height: unknown, event: ConsensusEvent): void {
    if (!Number.isSafeInteger(height) || (height as number) < 1) {
      this.reject(DriverRejection.MALFORMED_GOSSIP, peer);
      return;
    }
    const h = height as number;
    const state = this.state as TendermintState;
    const context = this.context as HeightContext;
    if (h < context.height) {
      // A precommit for the block just stored joins the next lastCommit (late-precommits.ts).
      const gathered = event.type === 'vote-received' ? this.gatherLate(event.vote, peer) : null;
      if (gathered === null) this.reject(DriverRejection.STALE_HEIGHT, peer, h);
      else if (gathered !== 'added') this.reject(gathered, peer, h);
      this.sendStatusTo(peer);
      return;
    }
    if (h === context.height && state.height === context.height) {
      this.enqueue(event, peer);
      return;
    }
    if (h > context.height + 1) {
      this.reject(DriverRejection.FUTURE_HEIGHT, peer, h);
      return;
    }
    this.buffer(peer, h, event);
  }

  /**
   * Parks a proposal or vote of a height not started yet (future-messages.ts), after checks that
   * cost no signature: its shape, its signer is a validator of that height, and a proposal's
   * block is within the genesis size limits (a larger one is invalid whoever signed it).
   */
  private buffer(peer: string, height: number, event: ConsensusEvent): void {
    const slot = bufferSlot(event);
    if (slot === null) {
      this.reject(DriverRejection.MALFORMED_GOSSIP, peer, height);
      return;
    }
    const context = this.context as HeightContext;
    const { validators } =
      height === context.height ? context.schedule : (context.nextSchedule ?? context.schedule);
    if (event.type === 'vote-received' || event.type === 'proposal-received') {
      const signer =
        event.type === 'vote-received' ? event.vote.validator : event.proposal.proposer;
      if (!validators.indexOf.has(signer)) {
        this.reject(MessageRejection.UNKNOWN_VALIDATOR, peer, height);
        return;
      }
    }
    if (event.type === 'proposal-received') {
      const sizeError = blockSizeError(this.checks, event.proposal.block);
      if (sizeError !== undefined) {
        this.reject(BlockRefusal.TOO_LARGE, peer, height, sizeError);
        return;
      }
    }
    switch (this.future.add({ peer, height, event }, slot)) {
      case 'added':
        // A peer already works on a later height: do not sit out the idle interval.
        this.endIdleWait('peer');
        return;
      case 'held':
        return;
      case 'conflicting':
      case 'full':
        this.reject(DriverRejection.BUFFER_FULL, peer, height);
        return;
    }
  }

  private receiveStatus(peer: string, message: GossipMessage & { kind: 'status' }): void {
    const { committedHeight, height, round } = message;
    if (!isSafeCount(committedHeight) || !isSafeCount(height) || !isSafeCount(round)) {
      this.reject(DriverRejection.MALFORMED_GOSSIP, peer);
      return;
    }
    this.sync.peerStatus({ peer, committedHeight, height, round });
  }

  private statusMessage(): GossipMessage {
    const state = this.state as TendermintState;
    return {
      kind: 'status',
      committedHeight: this.committedHeight,
      height: state.height,
      round: state.round,
    };
  }

  private broadcastStatus(): void {
    this.options.network.broadcast(this.statusMessage());
  }

  /** Our status to a peer that sent an old height, at most once per gossip period. */
  private sendStatusTo(peer: string): void {
    const now = this.now();
    const last = this.statusSentAt.get(peer);
    if (last !== undefined && now - last < this.gossipIntervalMs) return;
    this.statusSentAt.set(peer, now);
    this.options.network.send(peer, this.statusMessage());
  }

  /**
   * A (re)connected peer gets our status and every proposal and vote we hold for the height in
   * progress, latest round first: the engine accepts a validator's messages only a few rounds
   * ahead of its own (`maxFutureRounds`), and the latest round's votes make it skip there.
   *
   * The held messages (up to every proposal of the height, full blocks) go to one peer at most
   * once per gossip period and height: a peer that reconnects again sooner — a flapping link, or
   * a Byzantine peer opening stream after stream to make us re-encode them — gets them at the
   * next gossip tick, once however often it reconnected in between.
   */
  private peerConnected(peer: string): void {
    if (!this.running) return;
    const now = this.now();
    this.statusSentAt.set(peer, now);
    this.options.network.send(peer, this.statusMessage());
    const state = this.state as TendermintState;
    if (state.height !== (this.context as HeightContext).height) return;
    const last = this.heldSentAt.get(peer);
    if (
      last !== undefined &&
      last.height === state.height &&
      now - last.at < this.gossipIntervalMs
    ) {
      this.heldOwed.add(peer);
      return;
    }
    this.sendHeld(peer, state, now);
  }

  private sendHeld(peer: string, state: TendermintState, now: number): void {
    this.heldOwed.delete(peer);
    this.heldSentAt.set(peer, { height: state.height, at: now });
    for (const message of heldMessages(state)) this.options.network.send(peer, message);
  }

  /** The held messages owed to peers that reconnected too soon, if they are still connected. */
  private sendOwedHeld(state: TendermintState): void {
    const now = this.now();
    for (const [peer, last] of this.heldSentAt) {
      if (now - last.at >= this.gossipIntervalMs) this.heldSentAt.delete(peer);
    }
    if (this.heldOwed.size === 0) return;
    const owed = [...this.heldOwed];
    this.heldOwed.clear();
    if (state.height !== (this.context as HeightContext).height) return;
    const connected = new Set(this.options.network.peers());
    for (const peer of owed) if (connected.has(peer)) this.sendHeld(peer, state, now);
  }

  /**
   * Every gossip period: our status, and — while the height has lasted a whole period — our own
   * signed messages of this height and the current round's proposals again, so lost messages and
   * restarted peers do not stall the round (the paper's gossip assumption, §2).
   */
  private gossipTick(): void {
    if (!this.running) return;
    const state = this.state as TendermintState;
    this.forgetDisconnectedPeers();
    this.broadcastStatus();
    this.sendOwedHeld(state);
    const stuck = state.height === this.lastGossipHeight;
    this.lastGossipHeight = state.height;
    if (stuck && state.height === (this.context as HeightContext).height) {
      for (const message of rebroadcastMessages(state, this.selfAddress)) {
        this.options.network.broadcast(message);
      }
    }
    this.sync.consider();
  }

  /**
   * Drops the per-peer state of peers that are no longer connected. Under the unlisted peer
   * policy any `node` certificate of the cluster may connect, so each certificate name ever seen
   * would otherwise stay for good. The network port has no disconnect event: the gossip tick
   * compares with its connected peers instead. Sync back-offs are kept (block-sync.ts), or a peer
   * could reconnect to clear its own.
   */
  private forgetDisconnectedPeers(): void {
    const connected = new Set(this.options.network.peers());
    for (const peer of this.statusSentAt.keys()) {
      if (!connected.has(peer)) this.statusSentAt.delete(peer);
    }
    this.sync.forgetDisconnected(connected);
  }

  // --- Block sync ---------------------------------------------------------------------------

  /** Verifies a block fetched by block sync for the next height and stores it. */
  private storeSynced(synced: SyncedBlock): boolean {
    const verified = verifySyncedBlock(this.checks, this.context as HeightContext, synced);
    return this.persistBlock(
      verified.block,
      verified.hash,
      verified.commit,
      verified.result,
      'sync',
    );
  }
}
