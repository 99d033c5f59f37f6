/**
 * The contract between the application router and its modules (like a Cosmos SDK module: a
 * module owns its transaction bodies, their validation, their application to state and its
 * queries). A module sees only its own keys: the router gives it state views in which key `k`
 * means state key `<name>/k`, so no module can read or write another module's state.
 *
 * Everything a module does must be deterministic: the same body, sender and state give the same
 * outcome and the same writes on every node. No clock, no randomness, no I/O, no iteration over
 * unordered collections whose order could differ.
 */

import type { LastCommitInfo, ValidatorUpdate } from '../app.js';
export type { TxEvent } from '../app.js';
import type { DuplicateVoteEvidence, ValidatorAddress } from '../types.js';

/** Read access to one module's keys. */
export interface ModuleStateReader {
  get(key: Uint8Array): Uint8Array | null;
}

/**
 * Read and write access to one module's keys during one transaction. Writes are buffered and
 * kept only if `apply` returns normally; a `ModuleError` thrown by `apply` discards them.
 */
export interface ModuleState extends ModuleStateReader {
  /** Stores `value` (at most 16 MiB); the full key (`<name>/` + key) is at most 1024 bytes. */
  set(key: Uint8Array, value: Uint8Array): void;
  delete(key: Uint8Array): void;
}

/**
 * Read-only access to the state of the modules a module declares in `reads`, over the same state
 * its own view reads: the committed state at admission, the transaction's scope in a block (so
 * the writes of the block's earlier transactions are visible). `foreign(name)` is `name`'s view
 * (key `k` means state key `<name>/k`); it has no write method, and it stops working when the
 * call it was given to returns. Naming a module not declared in `reads` throws
 * `ApplicationError INVALID_CONFIG`: a programming error of the module, never a refusal.
 */
export type ForeignStateReaders = (module: string) => ModuleStateReader;

/** What `check` may look at: the state the transaction would run on, read-only. */
export interface CheckContext {
  readonly chainId: string;
  /**
   * The height the transaction would execute at: at admission (`checkTx`) the latest committed
   * height + 1; in a block, the block's height.
   */
  readonly height: number;
  readonly txHash: Uint8Array;
  readonly state: ModuleStateReader;
  /**
   * The declared modules' state (`Module.reads`). The router always supplies it; absent where
   * a test builds the context by hand.
   */
  readonly foreign?: ForeignStateReaders;
}

/**
 * What `sequenceAccount` may look at: what the envelope's bytes say, nothing of the state.
 */
export interface SequenceAccountContext {
  readonly chainId: string;
  readonly txHash: Uint8Array;
  /** The envelope's sequence number. */
  readonly sequence: number;
}

/** What `apply` runs with: the block being executed and the module's writable state. */
export interface ExecutionContext {
  readonly chainId: string;
  readonly height: number;
  /** BFT time of the block, ms since the Unix epoch. */
  readonly time: number;
  readonly txHash: Uint8Array;
  readonly state: ModuleState;
  /** As `CheckContext.foreign`: the declared modules' state, read-only, on the same state. */
  readonly foreign?: ForeignStateReaders;
  /**
   * Records an event of this transaction (`name`: lowercase letters, digits and dashes; kept
   * only if the transaction applies). Absent where nothing collects events (module unit tests).
   */
  readonly emit?: (
    name: string,
    attributes: Readonly<Record<string, string>>,
    accounts?: readonly Uint8Array[],
  ) => void;
}

/**
 * What `endBlock` runs with: the block, after all its transactions, and the module's writable
 * state on top of them. Everything in it is the same on every node executing the block.
 */
export interface EndBlockContext {
  readonly chainId: string;
  readonly height: number;
  /** BFT time of the block, ms since the Unix epoch. */
  readonly time: number;
  /** The block's proposer (validator address, consensus/types.ts). */
  readonly proposer: ValidatorAddress;
  /** Equivocation evidence included in the block (already verified by consensus). */
  readonly evidence: readonly DuplicateVoteEvidence[];
  /** Who signed the previous block's commit; undefined when the driver does not supply it. */
  readonly lastCommit: LastCommitInfo | undefined;
  readonly state: ModuleState;
}

/** A query's answer: the module-relative key whose value answers it. */
export interface ModuleQueryAnswer {
  /**
   * The router reads this key (as `<name>/key`) at the requested height and returns its value
   * with a state proof, so every answer can be checked against a block's state root.
   */
  readonly key: Uint8Array;
}

export interface Module<Tx = unknown> {
  /** Matches `MODULE_NAME_PATTERN`; the `module` field of its transactions. */
  readonly name: string;
  /**
   * Optional: the other modules whose state `check` and `apply` read through `ctx.foreign`.
   * The router refuses at construction (`ApplicationError INVALID_CONFIG`) a name that is not
   * one of its modules, the module's own name, or a name listed twice.
   */
  readonly reads?: readonly string[];
  /**
   * Stateless validity: parses the transaction body (at most 32 KiB) into the module's typed
   * transaction, enforcing every size and form rule. Throws `ModuleError` for a bad body.
   */
  decodeBody(body: Uint8Array): Tx;
  /**
   * Optional, stateless: the account whose sequence numbers the transaction uses, when its body
   * proves that it acts for an account of the module's own rather than for the envelope's
   * sender key (a Caesar hybrid account: the Ed25519 sender key and a FALCON key, both
   * signing). The router calls it once per transaction bytes, when it admits them, with the
   * decoded body (not at all when `decodeBody` refuses the body), and keeps the transaction's
   * sequence at `acct/<name>/<account hex>/seq` rather than the sender's `acct/<key hex>/seq`:
   * transactions that do not prove the same account cannot use, skip or refuse its sequence
   * numbers. The account (1 to 64 bytes) is also the mempool's sender of the transaction.
   * Returns undefined for a body that uses the sender's own sequence.
   *
   * Throws `ModuleError` when the body claims an account its proof does not establish (e.g. a
   * signature that does not verify): the transaction is then not admissible
   * (`TransactionError BAD_ACCOUNT_PROOF`), so a block holding it is invalid and it uses no
   * sequence number at all. Must depend only on its arguments, like `decodeBody`.
   */
  sequenceAccount?(ctx: SequenceAccountContext, tx: Tx, sender: Uint8Array): Uint8Array | undefined;
  /**
   * Optional, with `sequenceAccount`, cheap and unverified: the account `sequenceAccount` names
   * for this body if its proof holds (undefined: the sender's own sequence). The router reads
   * that account's sequence before any signature is checked, so a transaction whose sequence
   * is already used (a committed one submitted again) is refused without the signature work.
   * Must agree with `sequenceAccount` whenever that does not throw.
   */
  claimedSequenceAccount?(tx: Tx, sender: Uint8Array): Uint8Array | undefined;
  /**
   * Stateful validity against `ctx.state` (read-only), e.g. "the sender owns this key". The
   * mempool refuses a transaction that fails here; in a block it is recorded as refused.
   * Throws `ModuleError`; a capacity limit of the block (not of the transaction) throws it with
   * `deferrable: true`, so the proposer leaves the transaction for a later block (errors.ts).
   */
  check(ctx: CheckContext, tx: Tx, sender: Uint8Array): void;
  /**
   * Applies a transaction that passed `check` on the same state. Writes go through
   * `ctx.state`. Throws `ModuleError` to refuse it: its writes are discarded and the block
   * records the error's `resultCode`. Any other exception is a module fault, not a refusal.
   */
  apply(ctx: ExecutionContext, tx: Tx, sender: Uint8Array): void;
  /**
   * Answers the query `<name>/<path>` with `data` (untrusted: check it, throw `ModuleError`),
   * reading state through `view` at the requested height. Returns undefined for a path the
   * module does not have.
   */
  query(path: string, data: Uint8Array, view: ModuleStateReader): ModuleQueryAnswer | undefined;
  /**
   * Optional: runs once per block, after the block's transactions, in both `prepareProposal`
   * and `executeBlock` (so identically on the proposer and every validator), in the order the
   * modules were given to the router. Writes go through `ctx.state`; returns the validator-set
   * changes the module wants (the router concatenates every module's into
   * `BlockExecutionResult.validatorUpdates`). There is no refusal here: any exception, a
   * `ModuleError` included, is a module fault that fails the block.
   */
  endBlock?(ctx: EndBlockContext): readonly ValidatorUpdate[];
}
