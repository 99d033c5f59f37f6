import type { StateChange } from '../storage/index.js';
import type { DuplicateVoteEvidence, ValidatorAddress } from './types.js';

/**
 * The application interface (ABCI-like). Consensus orders opaque transactions; the application
 * checks them, executes blocks deterministically and answers queries. The driver calls it; the
 * mempool calls `checkTx`. Blocks are executed immediately: the proposer executes its block
 * before proposing and puts the resulting state root in the header; every validator re-executes
 * the block before it prevotes and refuses a block whose root differs (PoWork).
 */

/** Why a transaction was refused; `code` is stable (metrics label, wire error), `message` human. */
export interface TxRejection {
  readonly ok: false;
  readonly code: string;
  readonly message: string;
}

export interface TxAcceptance {
  readonly ok: true;
  /** 32-byte transaction id (what the mempool deduplicates by and clients look up). */
  readonly txHash: Uint8Array;
  /**
   * Who is accountable for it (the hex public key, or `<module>:<account hex>` for a module's
   * sequence account, src/consensus/application/router.ts); the mempool limits per sender.
   */
  readonly sender: string;
  /**
   * The sender's sequence number of this transaction. The mempool keeps each sender's
   * transactions in sequence order and offers them to the proposer in that order.
   */
  readonly sequence: number;
  /**
   * Optional: the sender's next sequence in the state the check ran against. With it the
   * mempool tells ready transactions (a run of sequences from this one) from those waiting for
   * an earlier sequence that is not pending, offers only the ready ones to proposers and
   * limits the waiting ones (`MempoolOptions.maxWaitingTxs`). Without it every pending
   * transaction counts as ready.
   */
  readonly nextSequence?: number;
}

export type TxCheckResult = TxAcceptance | TxRejection;

/** One validator of the set that committed the previous block, and whether it signed. */
export interface CommitVoteInfo {
  readonly validator: ValidatorAddress;
  /** Its voting power in that set. */
  readonly power: number;
  /** Its precommit for the block is in the commit this block carries (`Block.lastCommit`). */
  readonly signed: boolean;
}

/**
 * Who signed the previous block's commit (CometBFT's `LastCommitInfo`): for block h, every
 * validator of set(h − 1) — the set that decided block h − 1 — in address order, each with its
 * power in that set and whether its precommit for block h − 1 is among the precommits of the
 * quorum certificate block h carries as `lastCommit`. It must be derived from the block itself
 * (its `lastCommit` and the set of height h − 1), never from precommits a node happened to
 * receive later, so that every node executing block h sees the same list. Absent at height 1
 * (no previous block) and wherever the driver does not supply it.
 */
export interface LastCommitInfo {
  /** The height of the committed block: this block's height − 1. */
  readonly height: number;
  readonly votes: readonly CommitVoteInfo[];
}

/** The block being executed, as the application sees it. */
export interface BlockExecutionInput {
  readonly chainId: string;
  readonly height: number;
  /** BFT time of the block (ms since the Unix epoch). */
  readonly time: number;
  readonly proposer: ValidatorAddress;
  readonly transactions: readonly Uint8Array[];
  readonly evidence: readonly DuplicateVoteEvidence[];
  /** Who signed the previous block's commit; optional (see `LastCommitInfo`). */
  readonly lastCommit?: LastCommitInfo;
}

/**
 * A fact about what an applied transaction did, for its receipt: `caesar/transfer` with its
 * amount, `caesar/fee`, ... Events are not replicated state (no proof, not in any root): every
 * node derives the same ones by executing the block, and keeps them for receipts and account
 * history (src/node/tx-index.ts); modules emit them through `ExecutionContext.emit`. A refused transaction (code ≠ 0) has none.
 */
export interface TxEvent {
  /** `<module>/<name>`: the router prefixes the emitting module's name. */
  readonly type: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** The accounts the event concerns (raw addresses), for account history. */
  readonly accounts: readonly Uint8Array[];
}

/** Limits on what one transaction may emit; exceeding them is a module bug (a fault). */
export const EVENT_LIMITS = {
  eventsPerTx: 32,
  attributesPerEvent: 16,
  accountsPerEvent: 8,
  valueChars: 512,
  accountBytes: 64,
} as const;

/** Outcome of one transaction in an executed block (deterministic; part of the state). */
export interface TxResult {
  readonly txHash: Uint8Array;
  /** 0 = applied; any other value = refused by the module, state untouched except fees/seq. */
  readonly code: number;
  readonly log: string;
  /** What the applied transaction did (`TxEvent`); absent when none. */
  readonly events?: readonly TxEvent[];
  /**
   * The envelope's sender (raw Ed25519 key), whose sequence the transaction used, applied or
   * refused. Nodes index the receipt under the sender's account as well as under the accounts
   * its events name (`blockReceipts`); no hash covers it. The router always sets it; absent
   * where a result is built by hand.
   */
  readonly sender?: Uint8Array;
}

/** A validator's new voting power (0 removes it), returned by a block's execution. */
export interface ValidatorUpdate {
  readonly publicKey: Uint8Array;
  readonly power: number;
  readonly pqPublicKey?: Uint8Array;
  readonly storageRoot?: Uint8Array;
}

export interface BlockExecutionResult {
  /** State root after the block, computed over the latest committed state plus `changes`. */
  readonly stateRoot: Uint8Array;
  /** Writes to persist atomically with the block (NodeStore.saveBlock). */
  readonly changes: readonly StateChange[];
  readonly txResults: readonly TxResult[];
  /**
   * Validator-set changes taking effect at height + 2: what the modules' `endBlock` hooks
   * returned, in module order (empty when no module changes the set).
   */
  readonly validatorUpdates: readonly ValidatorUpdate[];
}

/** A proposer's choice for its block. */
export interface PreparedProposal {
  readonly transactions: readonly Uint8Array[];
  readonly result: BlockExecutionResult;
}

export interface QueryRequest {
  /** `<module>/<query>`, e.g. `kv/get`. */
  readonly path: string;
  readonly data: Uint8Array;
  /** Height to read (default: latest committed). */
  readonly height?: number;
}

export interface QueryResponse {
  readonly height: number | null;
  readonly value: Uint8Array | null;
  /** Encoded state proof (storage/state-proof.ts) of the key read, against `stateRoot`. */
  readonly proof?: Uint8Array;
  readonly stateRoot: Uint8Array;
}

export interface Application {
  /**
   * Mempool admission against the latest committed state: decoding, signature, hashcash stamp,
   * chain id, sequence not already used, module-level validity. Must not throw for bad input.
   */
  checkTx(tx: Uint8Array): TxCheckResult;
  /**
   * Optional: the mempool keeps no copy of these bytes although `checkTx` accepted them (a
   * duplicate of a pending transaction, refused by a mempool limit, expired or displaced), so
   * whatever `checkTx` remembered of them may go. Without it, a sender re-signing one pending
   * transaction again and again (each copy other bytes, one txHash) would fill those caches.
   */
  forgetCheck?(tx: Uint8Array): void;
  /**
   * Proposer: execute `candidates` in order on top of the latest committed state, skipping any
   * that fail `checkTx`-level rules, are out of sequence or that a module defers (a deferrable
   * `ModuleError`: no room in this block; they stay in the mempool), and stopping at `maxBytes`
   * of transactions or `maxTxs` transactions (no count limit when omitted). Evidence is
   * included as given.
   */
  prepareProposal(
    block: Omit<BlockExecutionInput, 'transactions'>,
    candidates: Iterable<Uint8Array>,
    maxBytes: number,
    maxTxs?: number,
  ): PreparedProposal;
  /**
   * Validator: execute a proposed block on top of the latest committed state. Throws
   * `ConsensusError(INVALID_BLOCK)` when a transaction is not admissible (bad signature, stamp,
   * sequence, encoding): such a block is invalid. Deterministic.
   */
  executeBlock(block: BlockExecutionInput): BlockExecutionResult;
  /** Called after the driver stored the block and its changes; drop caches, update indexes. */
  committed(height: number, result: BlockExecutionResult): void;
  query(request: QueryRequest): QueryResponse;
}
