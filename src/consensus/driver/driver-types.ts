import type { FalconBackend } from '../../crypto/falcon.js';
import type { NodeStore } from '../../storage/index.js';
import type { Application } from '../app.js';
import type { GenesisDocument } from '../genesis.js';
import type { SigningStep } from '../double-sign-guard.js';
import type { DuplicateVoteEvidence, RoundStep } from '../types.js';
import type { SignerCounters, ValidatorKeys } from './guarded-signer.js';
import type { SignerStateMissingPolicy } from './signer-state-missing.js';
import type { BlockProofs, ConsensusNetwork, MempoolPort } from './ports.js';
import type { TestEquivocation } from './test-equivocation.js';
import type { WalLogStats } from './wal-log.js';

/** The consensus driver's options, events and status (driver.ts). */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Structured logger: a message and machine-readable fields. */
export type DriverLogger = (
  level: LogLevel,
  message: string,
  fields?: Readonly<Record<string, unknown>>,
) => void;

export interface ConsensusDriverOptions {
  readonly genesis: GenesisDocument;
  /** Open node store; the driver reads and appends blocks, and never closes it. */
  readonly store: NodeStore;
  /** The consensus WAL file (created if missing). */
  readonly walPath: string;
  /** The signer's last-signed record (created on the first signature). */
  readonly signerStatePath: string;
  /**
   * When the node is a validator with stored blocks (or WAL records) but `signerStatePath` does
   * not exist: `'refuse'` (default) throws `SIGNER_STATE_MISSING` from `start`;
   * `{ waitHeights: N }` signs nothing up to N heights past what the node's files show
   * (signer-state-missing.ts).
   */
  readonly signerStateMissing?: SignerStateMissingPolicy;
  /**
   * Asked synchronously before every signature (the node's data-directory lock is still its
   * own); false refuses the signature. Absent: always signs.
   */
  readonly mayStillSign?: () => boolean;
  /** This validator's keys, or null for a node that follows without voting. */
  readonly self: ValidatorKeys | null;
  readonly app: Application;
  readonly mempool: MempoolPort;
  readonly network: ConsensusNetwork;
  readonly proofs: BlockProofs;
  /** FALCON-1024 backend that verifies precommits (default: `self.falcon`, else the fastest). */
  readonly falcon?: FalconBackend;
  /** Wall clock in ms since the Unix epoch (vote timestamps, latency). Default `Date.now`. */
  readonly now?: () => number;
  readonly log?: DriverLogger;
  /** Re-gossip period (default: the genesis propose timeout). */
  readonly gossipIntervalMs?: number;
  /** Messages of a height not started yet, per peer (default 256). */
  readonly maxBufferedPerPeer?: number;
  /** Blocks asked for in one sync request (default 64). */
  readonly syncBatchSize?: number;
  /**
   * Block sync gives up on a peer that stored no new block for this long (default 10,000 ms):
   * the fetch is aborted, the peer backs off and the next peer ahead is asked, or the engine
   * resumes. Bounds how long one peer lying about its height can hold this node.
   */
  readonly syncIdleTimeoutMs?: number;
  /** Block sync gives up on a page of `syncBatchSize` blocks after this long (default 60,000 ms). */
  readonly syncPageTimeoutMs?: number;
  /** Evidence items put in one proposal (default 16; at most `MAX_BLOCK_EVIDENCE`, 64). */
  readonly maxEvidencePerBlock?: number;
  /**
   * Idle pacing (CometBFT's `create_empty_blocks_interval`). After a decided block without
   * transactions, while this node's mempool and evidence pool are empty, the next height starts
   * this long after the decision instead of the genesis `commitDelayMs`. A transaction admitted
   * to the mempool ends the wait: the height starts `commitDelayMs` later (the window that lets
   * a burst share one block). A peer's proposal or vote of a later height ends it too: the height
   * starts `commitDelayMs` after the decision, or at once if that has passed. Timing only:
   * no block rule depends on it. 0 (default): off. Integer ms, at most 60,000.
   */
  readonly idleBlockIntervalMs?: number;
  /**
   * TEST BUILDS ONLY (test-equivocation.ts): beside each prevote it signs, the validator
   * broadcasts a conflicting one. Only a node started with `HYPERMESH_TEST_EQUIVOCATE=prevote`
   * and `HYPERMESH_TEST_BUILD=1` sets it; needs `self`.
   */
  readonly testEquivocation?: TestEquivocation;
}

export interface CommitInfo {
  readonly height: number;
  readonly round: number;
  readonly txs: number;
  /** From the start of the height (or of the sync request) to the block being durable. */
  readonly latencyMs: number;
  /** Hex of the block hash. */
  readonly blockHash: string;
  readonly stateRoot: string;
  /** `consensus`: decided here; `sync`: fetched from a peer and verified. */
  readonly source: 'consensus' | 'sync';
}

export interface RoundInfo {
  readonly height: number;
  readonly round: number;
  readonly step: RoundStep;
}

export interface RejectionInfo {
  /** A `MessageRejection` of the engine, or one of the driver's `DriverRejection`s. */
  readonly reason: string;
  readonly peer: string | null;
  readonly height?: number;
  readonly error?: Error;
}

/** A signature the signer released (its record already durable), before the engine has it. */
export interface SignedInfo {
  readonly height: number;
  readonly round: number;
  readonly step: SigningStep;
  /** The signer's stored signature for a repeated request, not a new one. */
  readonly reused: boolean;
}

/** Events a `ConsensusDriver` emits (metrics and tests listen to them). */
export interface DriverEvents {
  signed: [SignedInfo];
  commit: [CommitInfo];
  /** The engine's height, round or step changed (emitted after the WAL record is durable). */
  round: [RoundInfo];
  evidence: [DuplicateVoteEvidence];
  rejected: [RejectionInfo];
  /**
   * Idle pacing: `waiting` when the next height starts waiting out `idleBlockIntervalMs` after
   * an empty block (the stored height given), `woken` when a transaction or a peer's message of
   * the next height ends that wait early.
   */
  idle: [{ readonly height: number; readonly phase: 'waiting' | 'woken' }];
  /** The driver stopped deciding: a decided block could not be stored, or the WAL failed. */
  halted: [Error];
}

/** Reasons the driver itself counts, next to the engine's `MessageRejection`s. */
export enum DriverRejection {
  MALFORMED_GOSSIP = 'MALFORMED_GOSSIP',
  STALE_HEIGHT = 'STALE_HEIGHT',
  FUTURE_HEIGHT = 'FUTURE_HEIGHT',
  BUFFER_FULL = 'BUFFER_FULL',
  MEMPOOL_REFUSED = 'MEMPOOL_REFUSED',
  SYNC_FAILED = 'SYNC_FAILED',
  SIGN_REFUSED = 'SIGN_REFUSED',
  STEP_FAILED = 'STEP_FAILED',
}

export interface PeerProgress {
  readonly peer: string;
  readonly committedHeight: number;
  readonly height: number;
  readonly round: number;
}

export interface DriverStatus {
  readonly running: boolean;
  /** Why the driver halted, or null. */
  readonly halted: string | null;
  readonly height: number;
  readonly round: number;
  readonly step: RoundStep;
  readonly committedHeight: number;
  /** Local clock when the latest block was stored, or null since start. */
  readonly lastCommitTime: number | null;
  /** BFT time of the latest stored block, or null before the first. */
  readonly lastBlockTime: number | null;
  /** This node's validator address, or null for a follower. */
  readonly validator: string | null;
  readonly validators: {
    readonly count: number;
    readonly totalPower: number;
    readonly hash: string;
    readonly proposer: string;
  };
  readonly peers: readonly PeerProgress[];
  readonly mempoolSize: number;
  readonly syncing: boolean;
  readonly pendingEvidence: number;
  readonly bufferedMessages: number;
  /**
   * Precommits added to a decided height's commit during the commit delay, since start: they
   * go into this node's next proposal as `lastCommit` (late-precommits.ts).
   */
  readonly latePrecommits: number;
  /** The next height waits out the idle interval (`idleBlockIntervalMs`) right now. */
  readonly idle: boolean;
  /** Heights started after an idle wait since start, and how many of those waits ended early. */
  readonly idleWaits: { readonly started: number; readonly woken: number };
  readonly rejected: Readonly<Record<string, number>>;
  readonly signer: Readonly<SignerCounters> | null;
  readonly wal: Readonly<WalLogStats>;
}
