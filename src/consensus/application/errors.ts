import { HyperMeshError } from '../../codec/error.js';

/**
 * Why a transaction envelope is not admissible. These are the `code`s of a `TxRejection`
 * (metrics label, wire error) and the reason in an `INVALID_BLOCK` error: a block holding such
 * a transaction is invalid, whereas a module's refusal is only a non-zero `TxResult.code`.
 */
export enum TransactionErrorCode {
  /** More bytes than `MAX_TRANSACTION_BYTES`, or a body above `MAX_BODY_BYTES`. */
  TOO_LARGE = 'TX_TOO_LARGE',
  /** Not one well-formed CBOR item. */
  MALFORMED = 'TX_MALFORMED',
  /** Well-formed CBOR, but not in deterministic encoding (RFC 8949 §4.2.1). */
  NOT_CANONICAL = 'TX_NOT_CANONICAL',
  /** A version this node does not know. */
  UNSUPPORTED_VERSION = 'TX_UNSUPPORTED_VERSION',
  /** A field of the wrong type, size or range. */
  INVALID_FIELD = 'TX_INVALID_FIELD',
  /** Signed for another chain. */
  WRONG_CHAIN = 'TX_WRONG_CHAIN',
  /** The Ed25519 signature does not verify under the sender's key. */
  BAD_SIGNATURE = 'TX_BAD_SIGNATURE',
  /** The hashcash stamp has fewer leading zero bits than the chain requires. */
  INSUFFICIENT_STAMP = 'TX_INSUFFICIENT_STAMP',
  /** The sequence number is below the sender's next one: already used (a replay). */
  SEQUENCE_USED = 'TX_SEQUENCE_USED',
  /** In a block: the sequence number is above the sender's next one (a gap). */
  SEQUENCE_GAP = 'TX_SEQUENCE_GAP',
  /** At admission: the sequence number is further ahead of the next one than allowed. */
  SEQUENCE_TOO_FAR = 'TX_SEQUENCE_TOO_FAR',
  /** No module of that name is installed. */
  UNKNOWN_MODULE = 'TX_UNKNOWN_MODULE',
  /**
   * The body claims a sequence account of its module (`Module.sequenceAccount`, e.g. a Caesar
   * hybrid account) whose proof does not hold (e.g. its FALCON signature does not verify).
   */
  BAD_ACCOUNT_PROOF = 'TX_BAD_ACCOUNT_PROOF',
}

export class TransactionError extends HyperMeshError<TransactionErrorCode> {}

/** Errors of the application router itself: configuration, queries, misbehaving modules. */
export enum ApplicationErrorCode {
  INVALID_CONFIG = 'APP_INVALID_CONFIG',
  /** A query path no module or built-in answers. */
  UNKNOWN_QUERY = 'APP_UNKNOWN_QUERY',
  /** Query data that does not have the form the query needs. */
  INVALID_QUERY = 'APP_INVALID_QUERY',
  /** A module wrote a key or value the state cannot hold. */
  INVALID_STATE_WRITE = 'APP_INVALID_STATE_WRITE',
  /** A module's state view was used outside the call it was given to. */
  STATE_VIEW_CLOSED = 'APP_STATE_VIEW_CLOSED',
  /** A module's `endBlock` returned validator updates of the wrong form, or two naming one key. */
  INVALID_VALIDATOR_UPDATES = 'APP_INVALID_VALIDATOR_UPDATES',
  /** checkTx hit an error that is not about the transaction (e.g. the store failed). */
  INTERNAL = 'APP_INTERNAL',
}

export class ApplicationError extends HyperMeshError<ApplicationErrorCode> {}

/** `ModuleError` options: the `cause`, and whether the refusal is deferrable. */
export interface ModuleErrorOptions extends ErrorOptions {
  readonly deferrable?: boolean;
}

/**
 * A module's refusal of a transaction. `code` is the module's stable string code (e.g.
 * `KV_NOT_OWNER`); `resultCode` is the non-zero number recorded in the block's `TxResult`
 * when the refusal happens during execution. Thrown from `decodeBody`, `check` or `apply`;
 * the router turns it into a `TxRejection` (admission) or a refused `TxResult` (execution).
 *
 * `deferrable` marks a "not now": a capacity the block (or the work still pending) has used up,
 * which says nothing about the transaction itself — e.g. the `ca` module's `CA_BLOCK_FULL`. A
 * module throws it only after every check about the transaction has passed. The proposer then
 * leaves the transaction out (its sequence unused) and it waits in the mempool for a later
 * block; `checkTx` admits it; in a block some proposer made, it is a refusal like any other.
 */
export class ModuleError<Code extends string = string> extends HyperMeshError<Code> {
  readonly resultCode: number;
  readonly deferrable: boolean;

  constructor(
    code: Code,
    resultCode: number,
    message: string,
    detail: Record<string, unknown> = {},
    options: ModuleErrorOptions = {},
  ) {
    const { deferrable = false, ...errorOptions } = options;
    super(code, message, detail, errorOptions);
    if (!Number.isSafeInteger(resultCode) || resultCode < 1 || resultCode > 0xffff_ffff) {
      throw new RangeError(
        `a module result code must be an integer in [1, 2^32), got ${resultCode}`,
      );
    }
    this.resultCode = resultCode;
    this.deferrable = deferrable === true;
  }
}
