import { z } from 'zod';
import { HyperMeshError } from '../../codec/error.js';
import { bytes } from '../../codec/schema.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  StoqError,
  StoqErrorCode,
  createClient,
  defineService,
  unary,
  type CallContext,
  type CallOptions,
  type RpcClient,
  type RpcClientOptions,
  type ServiceDefinition,
  type ServiceHandlers,
  type SessionSource,
  type StoqEndpoint,
} from '../../stoq/index.js';
import { MAX_STATE_WITNESS_BYTES, type StoredValidatorUpdates } from '../../storage/index.js';
import { EVENT_LIMITS, type QueryRequest, type QueryResponse } from '../app.js';
import { MAX_SEQUENCE_ACCOUNT_BYTES } from '../application/accounts.js';
import { MODULE_NAME_PATTERN } from '../application/envelope.js';
import type { SyncedBlock } from '../driver/ports.js';
import { MAX_BLOCK_WIRE_BYTES, MAX_COMMIT_WIRE_BYTES, MAX_TX_BYTES } from '../wire.js';

/**
 * The node's client-facing API over STOQ (`hypermesh.node.api.v1`): submit a transaction (or a
 * batch of them), ask for its status, query application state, read the node's status and fetch
 * a committed block. Every request and response is schema-checked at both ends with the limits
 * below; a handler's failure reaches the caller as a typed STOQ status (see `wireError`).
 */
export const NODE_API_SERVICE_NAME = 'hypermesh.node.api.v1';

/** Bytes of query data a client may send. */
export const MAX_QUERY_DATA_BYTES = 64 * 1024;
/** Bytes of a query's value or proof in a response. */
export const MAX_QUERY_RESULT_BYTES = 1024 * 1024;
/** Most heights one `validatorUpdates` request may span. */
export const MAX_VALIDATOR_UPDATE_SPAN = 100_000;
/**
 * Bytes of encoded updates one `validatorUpdates` response carries: the server stops at the
 * first block that would exceed it and says where to continue (`nextHeight`).
 */
export const MAX_VALIDATOR_UPDATE_RESPONSE_BYTES = 2 * 1024 * 1024;
/** Most receipts one `accountHistory` page returns. */
export const MAX_HISTORY_PAGE_SIZE = 100;
/** Entries in a node status record, and items in one of its lists. */
export const MAX_STATUS_ENTRIES = 256;
/** Most transactions in one `submitTxs` call. */
export const MAX_SUBMIT_BATCH = 1_024;
/**
 * Most transaction bytes in one `submitTxs` call: the default STOQ message limit (4 MiB) less
 * 16 KiB for the rest of the request frame — the CBOR heads of up to 1,024 byte strings (at most
 * 5 bytes each) and the call header (method name, kind, deadline), about 5 KiB together. An
 * endpoint configured with a smaller `maxMessageBytes` refuses larger frames (FRAME_TOO_LARGE).
 */
export const MAX_SUBMIT_BATCH_BYTES = DEFAULT_MAX_MESSAGE_BYTES - 16 * 1024;

/**
 * Why a client refused a `submitTxs` batch before sending it: a `StoqError` with code
 * INVALID_ARGUMENT and this as `detail.reason`. The server's request schema refuses the same
 * batches (INVALID_ARGUMENT naming the field `txs`).
 */
export enum SubmitBatchRefusal {
  EMPTY = 'batch-empty',
  /** More than `MAX_SUBMIT_BATCH` transactions. */
  TOO_MANY_TXS = 'batch-too-many-txs',
  /** More than `MAX_SUBMIT_BATCH_BYTES` bytes of transactions. */
  TOO_MANY_BYTES = 'batch-too-many-bytes',
}

const anyone = ['validator', 'node', 'client'] as const;
const height = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
const txHash = bytes({ length: 32 });
const code = z.string().min(1).max(128);
const text = z.string().max(4096);

const transaction = bytes({ min: 1, max: MAX_TX_BYTES });

const submitResponse = z.discriminatedUnion('ok', [
  z.strictObject({
    ok: z.literal(true),
    txHash,
    /**
     * The transaction was already pending (the same bytes, or the same txHash): nothing new was
     * admitted. Sent only to a request with `reportDuplicate` (a client from before it gets the
     * answer it knew).
     */
    duplicate: z.boolean().optional(),
  }),
  z.strictObject({ ok: z.literal(false), txHash: txHash.optional(), code, message: text }),
]);

/** Bytes of the transactions in `txs`; entries that are not byte strings count nothing. */
function batchBytes(txs: readonly unknown[]): number {
  let total = 0;
  for (const tx of txs) if (tx instanceof Uint8Array) total += tx.length;
  return total;
}

const submitBatchRequest = z.strictObject({
  txs: z
    .array(transaction)
    .min(1)
    .max(MAX_SUBMIT_BATCH)
    .refine((txs) => batchBytes(txs) <= MAX_SUBMIT_BATCH_BYTES, {
      message: `at most ${MAX_SUBMIT_BATCH_BYTES} bytes of transactions`,
    }),
});

/** One result per transaction of the request, in its order. */
const submitBatchResponse = z.strictObject({
  results: z.array(submitResponse).min(1).max(MAX_SUBMIT_BATCH),
});

const txStatusResponse = z.discriminatedUnion('status', [
  z.strictObject({
    status: z.literal('unknown'),
    /**
     * Why the mempool dropped it, when its re-check after a block refused it (the refusal's code
     * and message). Sent only to a request with `reportEviction`.
     */
    evicted: z.strictObject({ code, message: text }).optional(),
  }),
  z.strictObject({ status: z.literal('pending') }),
  z.strictObject({
    status: z.literal('committed'),
    height,
    /** Position of the transaction in its block. */
    index: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    /** The application's result code: 0 applied, otherwise refused by its module. */
    code: z.int().min(0).max(0xffff_ffff),
    log: text,
  }),
]);

/** `<module>/<query>`: a lowercase module name, a slash, then printable ASCII. */
const queryPath = z
  .string()
  .max(256)
  .regex(/^[a-z][a-z0-9_-]{0,62}\/[\x21-\x7e]{1,192}$/, 'expected <module>/<query>');

const txEvent = z.strictObject({
  type: z.string().min(1).max(128),
  attributes: z
    .record(z.string().min(1).max(64), z.string().max(EVENT_LIMITS.valueChars))
    .refine((record) => Object.keys(record).length <= EVENT_LIMITS.attributesPerEvent, {
      message: `at most ${EVENT_LIMITS.attributesPerEvent} attributes`,
    }),
  accounts: z
    .array(bytes({ min: 1, max: EVENT_LIMITS.accountBytes }))
    .max(EVENT_LIMITS.accountsPerEvent),
});

const txReceipt = z.strictObject({
  txHash,
  height,
  index: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  code: z.int().min(0).max(0xffff_ffff),
  log: text,
  events: z.array(txEvent).max(EVENT_LIMITS.eventsPerTx),
});

const txPosition = z.strictObject({
  height,
  index: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** A module's sequence account (`acct/sequence/<module>`), as the router names modules. */
const sequenceAccount = z.strictObject({
  module: z.string().regex(MODULE_NAME_PATTERN),
  account: bytes({ min: 1, max: MAX_SEQUENCE_ACCOUNT_BYTES }),
});

const queryResponse = z.strictObject({
  height: height.nullable(),
  value: bytes({ max: MAX_QUERY_RESULT_BYTES }).nullable(),
  proof: bytes({ max: MAX_QUERY_RESULT_BYTES }).optional(),
  stateRoot: bytes({ length: 32 }),
});

const statusScalar = z.union([
  z.string().max(4096),
  z.number(),
  z.boolean(),
  z.null(),
  bytes({ max: 4096 }),
]);
const statusKey = z.string().min(1).max(64);
const statusValue = z.union([
  statusScalar,
  z.array(statusScalar).max(MAX_STATUS_ENTRIES),
  z
    .record(statusKey, statusScalar)
    .refine((record) => Object.keys(record).length <= MAX_STATUS_ENTRIES, {
      message: `at most ${MAX_STATUS_ENTRIES} entries`,
    }),
]);
const statusRecord = z
  .record(statusKey, statusValue)
  .refine((record) => Object.keys(record).length <= MAX_STATUS_ENTRIES, {
    message: `at most ${MAX_STATUS_ENTRIES} entries`,
  });

export const nodeApiService = defineService({
  name: NODE_API_SERVICE_NAME,
  methods: {
    submitTx: unary({
      request: z.strictObject({ tx: transaction, reportDuplicate: z.literal(true).optional() }),
      response: submitResponse,
      allow: anyone,
    }),
    submitTxs: unary({
      request: submitBatchRequest,
      response: submitBatchResponse,
      allow: anyone,
    }),
    txStatus: unary({
      request: z.strictObject({ txHash, reportEviction: z.literal(true).optional() }),
      response: txStatusResponse,
      allow: anyone,
    }),
    pendingSequence: unary({
      request: z.union([
        z.strictObject({ sender: bytes({ length: 32 }) }),
        z.strictObject({ account: sequenceAccount }),
      ]),
      response: z.strictObject({ next: z.int().min(0).max(Number.MAX_SAFE_INTEGER).nullable() }),
      allow: anyone,
    }),
    query: unary({
      request: z.strictObject({
        path: queryPath,
        data: bytes({ max: MAX_QUERY_DATA_BYTES }),
        height: height.optional(),
      }),
      response: queryResponse,
      allow: anyone,
    }),
    status: unary({
      request: z.strictObject({}),
      response: statusRecord,
      allow: anyone,
    }),
    receipt: unary({
      request: z.strictObject({ txHash }),
      response: txReceipt,
      allow: anyone,
    }),
    accountHistory: unary({
      request: z.strictObject({
        account: bytes({ min: 1, max: EVENT_LIMITS.accountBytes }),
        before: txPosition.optional(),
        limit: z.int().min(1).max(MAX_HISTORY_PAGE_SIZE),
      }),
      response: z.strictObject({
        receipts: z.array(txReceipt).max(MAX_HISTORY_PAGE_SIZE),
        next: txPosition.nullable(),
      }),
      allow: anyone,
    }),
    validatorUpdates: unary({
      request: z
        .strictObject({ fromHeight: height, toHeight: height })
        .refine(
          (range) =>
            range.toHeight >= range.fromHeight &&
            range.toHeight - range.fromHeight < MAX_VALIDATOR_UPDATE_SPAN,
          {
            message: `toHeight must be fromHeight .. fromHeight + ${MAX_VALIDATOR_UPDATE_SPAN - 1}`,
          },
        ),
      response: z.strictObject({
        updates: z
          .array(
            z.strictObject({
              height,
              updates: bytes({ min: 1, max: MAX_VALIDATOR_UPDATE_RESPONSE_BYTES }),
            }),
          )
          .max(MAX_VALIDATOR_UPDATE_SPAN),
        nextHeight: height.nullable(),
      }),
      allow: anyone,
    }),
    getBlock: unary({
      request: z.strictObject({ height }),
      response: z.strictObject({
        height,
        block: bytes({ min: 1, max: MAX_BLOCK_WIRE_BYTES }),
        commit: bytes({ min: 1, max: MAX_COMMIT_WIRE_BYTES }),
      }),
      allow: anyone,
    }),
    blockWitness: unary({
      request: z.strictObject({ height }),
      response: z.strictObject({
        height,
        witness: bytes({ min: 1, max: MAX_STATE_WITNESS_BYTES }),
      }),
      allow: anyone,
    }),
  },
});

export type NodeApiService = typeof nodeApiService;

/** A committed transaction's receipt as the node API carries it. */
export type TxReceiptView = z.output<typeof txReceipt>;
/** A page of an account's history, newest first; `next` continues it (null: no more). */
export interface AccountHistoryPage {
  readonly receipts: readonly TxReceiptView[];
  readonly next: { readonly height: number; readonly index: number } | null;
}
/**
 * Who submits, for the node's intake queue (its per-caller share and turns): a consensus peer
 * by its certificate name (its `txs` gossip and its own calls are one caller), any other
 * identity by its URI.
 */
export function peerSubmitter(name: string): string {
  return `peer/${name}`;
}

/** `peerSubmitter` for a `validator` or `node` certificate, the identity URI for any other. */
export function submitterOf(peer: {
  readonly role: string;
  readonly name: string;
  readonly uri: string;
}): string {
  return peer.role === 'validator' || peer.role === 'node' ? peerSubmitter(peer.name) : peer.uri;
}

/** The outcome of `submitTx`: admitted to the mempool, or refused with a stable code. */
export type TxSubmitResult = z.output<typeof submitResponse>;
export type TxStatus = z.output<typeof txStatusResponse>;
/**
 * Whose pending transactions `pendingSequence` asks about: a sender key's own sequence, or a
 * module's sequence account (a Caesar hybrid account).
 */
export type PendingSequenceOwner =
  | { readonly sender: Uint8Array }
  | { readonly account: { readonly module: string; readonly account: Uint8Array } };
/** A node status record: a flat map the node fills (heights, peers, version, ...). */
export type NodeStatusRecord = z.output<typeof statusRecord>;

type Awaitable<T> = T | Promise<T>;

/**
 * What the node provides. Each handler does one thing; schemas, authorization and error
 * mapping are done around it. Results may carry extra fields (an application's
 * `TxAcceptance` has `sender` and `sequence`): only the fields of the response schema are sent.
 */
export interface NodeRpcHandlers {
  /** Mempool admission (`mempool.add`): the transaction's check result. */
  submitTx(tx: Uint8Array, ctx: CallContext): Awaitable<TxSubmitResult>;
  /**
   * Admission of a batch (1..`MAX_SUBMIT_BATCH` transactions): one result per transaction, in
   * order, each what `submitTx` would answer for it — every transaction is admitted on its own.
   */
  submitTxs(txs: readonly Uint8Array[], ctx: CallContext): Awaitable<readonly TxSubmitResult[]>;
  /**
   * The transaction's status; an `unknown` one may say why the mempool evicted it (`evicted`,
   * sent only to callers that ask for it).
   */
  txStatus(txHash: Uint8Array, ctx: CallContext): Awaitable<TxStatus>;
  /**
   * The sequence after the owner's transactions ready in this node's mempool
   * (`Mempool.nextSequenceAfterPending`), or null when it holds none: what a client's next
   * transaction takes so as not to collide with its pending ones. The mempool's word, not proven.
   */
  pendingSequence(owner: PendingSequenceOwner, ctx: CallContext): Awaitable<number | null>;
  query(request: QueryRequest, ctx: CallContext): Awaitable<QueryResponse>;
  status(ctx: CallContext): Awaitable<NodeStatusRecord>;
  /** The committed block at `height`, or null when the node has none (→ NOT_FOUND). */
  getBlock(height: number, ctx: CallContext): Awaitable<SyncedBlock | null>;
  /** The receipt of a committed transaction, or null (→ NOT_FOUND). */
  receipt(txHash: Uint8Array, ctx: CallContext): Awaitable<TxReceiptView | null>;
  /**
   * The encoded state witness (storage/state-witness.ts) for re-executing committed block
   * `height` on the state after block `height − 1`, or null when the node has no such block
   * (→ NOT_FOUND).
   */
  blockWitness(height: number, ctx: CallContext): Awaitable<Uint8Array | null>;
  /**
   * The receipts of transactions whose events name `account`, newest first, strictly before
   * `before` (default: from the newest), at most `limit`.
   */
  accountHistory(
    account: Uint8Array,
    before: { readonly height: number; readonly index: number } | undefined,
    limit: number,
    ctx: CallContext,
  ): Awaitable<AccountHistoryPage>;
  /**
   * The encoded validator updates (consensus/validator-updates.ts) that committed blocks
   * `fromHeight..toHeight` returned, ascending, only blocks that returned any.
   */
  validatorUpdates(
    fromHeight: number,
    toHeight: number,
    ctx: CallContext,
  ): Awaitable<readonly StoredValidatorUpdates[]>;
}

export interface RegisterNodeRpcOptions {
  /**
   * The STOQ code a domain error (a `HyperMeshError` that is not a `StoqError`) is reported
   * with; `undefined` falls back to `defaultWireCode`.
   */
  readonly wireCode?: (error: HyperMeshError) => StoqErrorCode | undefined;
}

/** Anything services are registered on: a `StoqEndpoint` or an `RpcServer`. */
export interface ServiceRegistry {
  register<S extends ServiceDefinition>(service: S, handlers: ServiceHandlers<S>): void;
}

/** Registers the node API on `server`, wrapping every handler with result and error mapping. */
export function registerNodeRpc(
  server: ServiceRegistry,
  handlers: NodeRpcHandlers,
  options: RegisterNodeRpcOptions = {},
): void {
  const run = async <T>(work: () => Awaitable<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw wireError(error, options.wireCode);
    }
  };
  server.register(nodeApiService, {
    submitTx: (request, ctx) =>
      run(async () =>
        submitResult(await handlers.submitTx(request.tx, ctx), request.reportDuplicate === true),
      ),
    submitTxs: (request, ctx) =>
      run(async () => {
        const results = await handlers.submitTxs(request.txs, ctx);
        if (results.length !== request.txs.length) {
          throw new StoqError(
            StoqErrorCode.INTERNAL,
            `submitTxs answered ${results.length} results for ${request.txs.length} transactions`,
          );
        }
        return { results: results.map((result) => submitResult(result, false)) };
      }),
    txStatus: (request, ctx) =>
      run(async () =>
        txStatusResult(
          await handlers.txStatus(request.txHash, ctx),
          request.reportEviction === true,
        ),
      ),
    pendingSequence: (request, ctx) =>
      run(async () => ({ next: await handlers.pendingSequence(request, ctx) })),
    query: (request, ctx) =>
      run(async () => {
        const response = await handlers.query(
          {
            path: request.path,
            data: request.data,
            ...(request.height === undefined ? {} : { height: request.height }),
          },
          ctx,
        );
        return {
          height: response.height,
          value: response.value,
          ...(response.proof === undefined ? {} : { proof: response.proof }),
          stateRoot: response.stateRoot,
        };
      }),
    status: (_request, ctx) => run(() => handlers.status(ctx)),
    getBlock: (request, ctx) =>
      run(async () => {
        const found = await handlers.getBlock(request.height, ctx);
        if (!found) {
          throw new StoqError(StoqErrorCode.NOT_FOUND, `no committed block at ${request.height}`, {
            reason: 'no-block',
            height: request.height,
          });
        }
        return { height: found.height, block: found.block, commit: found.commit };
      }),
    blockWitness: (request, ctx) =>
      run(async () => {
        const witness = await handlers.blockWitness(request.height, ctx);
        if (witness === null) {
          throw new StoqError(StoqErrorCode.NOT_FOUND, `no committed block at ${request.height}`, {
            reason: 'no-block',
            height: request.height,
          });
        }
        return { height: request.height, witness };
      }),
    receipt: (request, ctx) =>
      run(async () => {
        const found = await handlers.receipt(request.txHash, ctx);
        if (found === null) {
          throw new StoqError(StoqErrorCode.NOT_FOUND, 'no receipt for this transaction', {
            reason: 'no-receipt',
          });
        }
        return receiptView(found);
      }),
    accountHistory: (request, ctx) =>
      run(async () => {
        const page = await handlers.accountHistory(
          request.account,
          request.before,
          request.limit,
          ctx,
        );
        return { receipts: page.receipts.map(receiptView), next: page.next };
      }),
    validatorUpdates: (request, ctx) =>
      run(async () => {
        const stored = await handlers.validatorUpdates(request.fromHeight, request.toHeight, ctx);
        return pageOfUpdates(stored);
      }),
  });
}

/**
 * The response for the stored updates of a range: as many blocks as fit in
 * `MAX_VALIDATOR_UPDATE_RESPONSE_BYTES` (at least one), and the height to continue from.
 */
function pageOfUpdates(stored: readonly StoredValidatorUpdates[]): {
  updates: { height: number; updates: Uint8Array }[];
  nextHeight: number | null;
} {
  const updates: { height: number; updates: Uint8Array }[] = [];
  let total = 0;
  for (const entry of stored) {
    total += entry.bytes.length;
    if (updates.length > 0 && total > MAX_VALIDATOR_UPDATE_RESPONSE_BYTES) {
      return { updates, nextHeight: entry.height };
    }
    updates.push({ height: entry.height, updates: entry.bytes });
  }
  return { updates, nextHeight: null };
}

/** Only the fields of the response schema (a stored receipt may carry more). */
function receiptView(receipt: TxReceiptView): TxReceiptView {
  const { txHash: hash, height: at, index, code: result, log, events } = receipt;
  return {
    txHash: hash,
    height: at,
    index,
    code: result,
    log,
    events: events.map((event) => ({
      type: event.type,
      attributes: { ...event.attributes },
      accounts: [...event.accounts],
    })),
  };
}

/** Only the fields of the response schema; `duplicate` when the caller asked for it. */
function submitResult(result: TxSubmitResult, reportDuplicate: boolean): TxSubmitResult {
  if (result.ok) {
    return reportDuplicate
      ? { ok: true, txHash: result.txHash, duplicate: result.duplicate === true }
      : { ok: true, txHash: result.txHash };
  }
  return {
    ok: false,
    code: result.code,
    message: result.message,
    ...(result.txHash === undefined ? {} : { txHash: result.txHash }),
  };
}

/** Only the fields of the response schema; `evicted` when the caller asked for it. */
function txStatusResult(status: TxStatus, reportEviction: boolean): TxStatus {
  if (status.status === 'unknown') {
    const { evicted } = status;
    return reportEviction && evicted !== undefined
      ? { status: 'unknown', evicted: { code: evicted.code, message: evicted.message } }
      : { status: 'unknown' };
  }
  if (status.status !== 'committed') return { status: status.status };
  const { height, index, code, log } = status;
  return { status: 'committed', height, index, code, log };
}

/**
 * The STOQ code for a domain error, from its code's words: `…NOT_FOUND`/`…UNKNOWN…` →
 * NOT_FOUND; `…INVALID…`, `…MALFORMED…`, `…TOO_LARGE…`, `…NOT_CANONICAL…`, `…WRONG…` →
 * INVALID_ARGUMENT; `…FULL…`, `…LIMIT…`, `…EXHAUSTED…` → RESOURCE_EXHAUSTED; `…UNAVAILABLE…`,
 * `…NOT_READY…`, `…SYNCING…` → UNAVAILABLE; anything else INTERNAL.
 */
export function defaultWireCode(error: HyperMeshError): StoqErrorCode {
  const words = error.code.toUpperCase();
  const has = (...parts: string[]): boolean => parts.some((part) => words.includes(part));
  if (has('NOT_FOUND', 'UNKNOWN')) return StoqErrorCode.NOT_FOUND;
  if (has('INVALID', 'MALFORMED', 'TOO_LARGE', 'NOT_CANONICAL', 'WRONG')) {
    return StoqErrorCode.INVALID_ARGUMENT;
  }
  if (has('FULL', 'LIMIT', 'EXHAUSTED')) return StoqErrorCode.RESOURCE_EXHAUSTED;
  if (has('UNAVAILABLE', 'NOT_READY', 'SYNCING')) return StoqErrorCode.UNAVAILABLE;
  return StoqErrorCode.INTERNAL;
}

/**
 * A handler's failure as the caller sees it. A `StoqError` passes unchanged. A domain error
 * becomes a `StoqError` with its message and `detail.domainCode` (the original stable code), so
 * clients switch on either; an INTERNAL one keeps only the code (internals are not sent). Any
 * other exception is left to the RPC server, which logs it and answers INTERNAL.
 */
export function wireError(
  error: unknown,
  wireCode?: (error: HyperMeshError) => StoqErrorCode | undefined,
): unknown {
  if (error instanceof StoqError || !(error instanceof HyperMeshError)) return error;
  const mapped = wireCode?.(error) ?? defaultWireCode(error);
  if (mapped === StoqErrorCode.INTERNAL) {
    return new StoqError(
      StoqErrorCode.INTERNAL,
      `internal error (${error.code})`,
      { domainCode: error.code },
      { cause: error },
    );
  }
  return new StoqError(
    mapped,
    error.message,
    { ...error.detail, domainCode: error.code },
    { cause: error },
  );
}

/**
 * Refuses a `submitTxs` batch that is empty or over `MAX_SUBMIT_BATCH` transactions or
 * `MAX_SUBMIT_BATCH_BYTES` bytes (a `StoqError` INVALID_ARGUMENT with a `SubmitBatchRefusal` as
 * `detail.reason`). Anything else wrong with it (a transaction that is not a byte string, empty
 * or over `MAX_TX_BYTES`) is left to the request schema.
 */
export function checkSubmitBatch(txs: readonly Uint8Array[]): void {
  if (!Array.isArray(txs)) return;
  if (txs.length === 0) {
    throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, 'a batch needs at least one transaction', {
      reason: SubmitBatchRefusal.EMPTY,
    });
  }
  if (txs.length > MAX_SUBMIT_BATCH) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `a batch of ${txs.length} transactions exceeds the limit of ${MAX_SUBMIT_BATCH}`,
      { reason: SubmitBatchRefusal.TOO_MANY_TXS, count: txs.length, limit: MAX_SUBMIT_BATCH },
    );
  }
  const total = batchBytes(txs);
  if (total > MAX_SUBMIT_BATCH_BYTES) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `a batch of ${total} transaction bytes exceeds the limit of ${MAX_SUBMIT_BATCH_BYTES}`,
      { reason: SubmitBatchRefusal.TOO_MANY_BYTES, bytes: total, limit: MAX_SUBMIT_BATCH_BYTES },
    );
  }
}

/** A typed client for the node API; failures are `StoqError`s carrying the server's status. */
export interface NodeRpcClient {
  /** Admission; `duplicate` says whether the transaction was already pending. */
  submitTx(tx: Uint8Array, options?: CallOptions): Promise<TxSubmitResult>;
  /**
   * Submits 1..`MAX_SUBMIT_BATCH` transactions in one call; resolves with one result per
   * transaction, in order. An empty or oversized batch is refused before anything is sent
   * (`checkSubmitBatch`).
   */
  submitTxs(txs: readonly Uint8Array[], options?: CallOptions): Promise<TxSubmitResult[]>;
  /** The status; an `unknown` one carries `evicted` when the node knows why it dropped it. */
  txStatus(txHash: Uint8Array, options?: CallOptions): Promise<TxStatus>;
  /**
   * `NodeRpcHandlers.pendingSequence`: the sequence after the owner's transactions pending in
   * the node's mempool, or null. Not proven. A node from before the method rejects with
   * NOT_FOUND (`detail.method` set).
   */
  pendingSequence(owner: PendingSequenceOwner, options?: CallOptions): Promise<number | null>;
  query(request: QueryRequest, options?: CallOptions): Promise<QueryResponse>;
  status(options?: CallOptions): Promise<NodeStatusRecord>;
  /** Rejects with NOT_FOUND (`detail.reason` `no-block`) when the node has no such block. */
  getBlock(height: number, options?: CallOptions): Promise<SyncedBlock>;
  /**
   * The encoded state witness for re-executing block `height` (not trusted: the caller checks
   * it against the parent's state root, `WitnessState.verify`). NOT_FOUND (`no-block`) when
   * the node has no such block.
   */
  blockWitness(height: number, options?: CallOptions): Promise<Uint8Array>;
  /** Rejects with NOT_FOUND (`detail.reason` `no-receipt`) for an unknown transaction. */
  receipt(txHash: Uint8Array, options?: CallOptions): Promise<TxReceiptView>;
  /** One page of an account's history (see `NodeRpcHandlers.accountHistory`). */
  accountHistory(
    request: {
      readonly account: Uint8Array;
      readonly before?: { readonly height: number; readonly index: number };
      readonly limit: number;
    },
    options?: CallOptions,
  ): Promise<AccountHistoryPage>;
  /**
   * Every validator update blocks `fromHeight..toHeight` returned (ascending; blocks without
   * updates are absent), fetched page by page. As the node states them: a verifier checks them
   * against the chain (block-verify's set-change check), not on the node's word.
   * `options.deadlineMs` is the time of all the pages together, each request getting what is
   * left; with `options.onPage`, each page goes to it as it arrives (awaited before the next
   * request, which a rejection stops) and is not kept: the result is then empty.
   */
  validatorUpdates(
    fromHeight: number,
    toHeight: number,
    options?: ValidatorUpdatesOptions,
  ): Promise<StoredValidatorUpdates[]>;
}

/** `NodeRpcClient.validatorUpdates`'s options (see there). */
export interface ValidatorUpdatesOptions extends CallOptions {
  readonly onPage?: (page: StoredValidatorUpdates[]) => void | Promise<void>;
}

/** Where the client's calls go: a peer name on an endpoint (pooled, redialled), or a session. */
export type NodeRpcTarget =
  { readonly endpoint: StoqEndpoint; readonly peer: string } | { readonly session: SessionSource };

export function createNodeRpcClient(
  target: NodeRpcTarget,
  options: RpcClientOptions = {},
): NodeRpcClient {
  const rpc: RpcClient<NodeApiService> =
    'endpoint' in target
      ? target.endpoint.client(nodeApiService, target.peer, options)
      : createClient(nodeApiService, target.session, options);
  return {
    submitTx: (tx, callOptions) => rpc.call('submitTx', { tx, reportDuplicate: true }, callOptions),
    submitTxs: async (txs, callOptions) => {
      checkSubmitBatch(txs);
      const { results } = await rpc.call('submitTxs', { txs: txs as Uint8Array[] }, callOptions);
      if (results.length !== txs.length) {
        // A response that does not fit its request is a broken server, as a schema mismatch is.
        throw new StoqError(
          StoqErrorCode.INTERNAL,
          `response does not match its request: ${results.length} results for ${txs.length} transactions`,
          { reason: 'schema' },
        );
      }
      return results;
    },
    txStatus: (hash, callOptions) =>
      rpc.call('txStatus', { txHash: hash, reportEviction: true }, callOptions),
    pendingSequence: async (owner, callOptions) => {
      const request =
        'sender' in owner
          ? { sender: owner.sender }
          : { account: { module: owner.account.module, account: owner.account.account } };
      return (await rpc.call('pendingSequence', request, callOptions)).next;
    },
    query: async (request, callOptions) => {
      const response = await rpc.call(
        'query',
        {
          path: request.path,
          data: request.data,
          ...(request.height === undefined ? {} : { height: request.height }),
        },
        callOptions,
      );
      return {
        height: response.height,
        value: response.value,
        ...(response.proof === undefined ? {} : { proof: response.proof }),
        stateRoot: response.stateRoot,
      };
    },
    status: (callOptions) => rpc.call('status', {}, callOptions),
    getBlock: (blockHeight, callOptions) =>
      rpc.call('getBlock', { height: blockHeight }, callOptions),
    blockWitness: async (blockHeight, callOptions) => {
      const response = await rpc.call('blockWitness', { height: blockHeight }, callOptions);
      if (response.height !== blockHeight) {
        throw new StoqError(
          StoqErrorCode.INTERNAL,
          `response does not match its request: the witness of block ${response.height}, not ${blockHeight}`,
          { reason: 'schema' },
        );
      }
      return response.witness;
    },
    receipt: (hash, callOptions) => rpc.call('receipt', { txHash: hash }, callOptions),
    accountHistory: (request, callOptions) =>
      rpc.call(
        'accountHistory',
        {
          account: request.account,
          limit: request.limit,
          ...(request.before === undefined ? {} : { before: request.before }),
        },
        callOptions,
      ),
    validatorUpdates: async (fromHeight, toHeight, callOptions) => {
      if (toHeight < fromHeight) {
        throw new StoqError(
          StoqErrorCode.INVALID_ARGUMENT,
          `toHeight ${toHeight} is below fromHeight ${fromHeight}`,
        );
      }
      const all: StoredValidatorUpdates[] = [];
      const { onPage, ...pageOptions } = callOptions ?? {};
      // One deadline for every page: a node paging one entry at a time must not reset it.
      const deadlineAt =
        pageOptions.deadlineMs === undefined ? undefined : Date.now() + pageOptions.deadlineMs;
      let from = fromHeight;
      for (;;) {
        // Windows of at most MAX_VALIDATOR_UPDATE_SPAN heights, each paged by size.
        const to = Math.min(toHeight, from + MAX_VALIDATOR_UPDATE_SPAN - 1);
        const left = deadlineAt === undefined ? undefined : deadlineAt - Date.now();
        if (left !== undefined && left <= 0) {
          throw new StoqError(
            StoqErrorCode.DEADLINE_EXCEEDED,
            `the validator updates of ${fromHeight}..${toHeight} were not all sent within ${pageOptions.deadlineMs} ms (at ${from})`,
          );
        }
        const page = await rpc.call(
          'validatorUpdates',
          { fromHeight: from, toHeight: to },
          left === undefined ? pageOptions : { ...pageOptions, deadlineMs: left },
        );
        const end = page.nextHeight === null ? to : page.nextHeight - 1;
        const broken =
          (page.nextHeight !== null &&
            (page.nextHeight <= from || page.nextHeight > to || page.updates.length === 0)) ||
          page.updates.some(
            (entry, i) =>
              entry.height < from ||
              entry.height > end ||
              (i > 0 && entry.height <= (page.updates[i - 1]?.height ?? 0)),
          );
        if (broken) {
          // A response that does not fit its request is a broken server, as a schema mismatch is.
          throw new StoqError(
            StoqErrorCode.INTERNAL,
            `response does not match its request: updates outside ${from}..${end}, out of order, or a bad continuation`,
            { reason: 'schema' },
          );
        }
        const entries = page.updates.map((entry) => ({
          height: entry.height,
          bytes: entry.updates,
        }));
        if (onPage !== undefined) await onPage(entries);
        else for (const entry of entries) all.push(entry);
        if (end === toHeight) return all;
        from = end + 1;
      }
    },
  };
}
