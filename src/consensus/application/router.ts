import { HyperMeshError } from '../../codec/error.js';
import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import type { StateReader } from '../../storage/index.js';
import {
  MAX_STATE_KEY_BYTES,
  MAX_STATE_VALUE_BYTES,
  StorageError,
  encodeStateProof,
} from '../../storage/index.js';
import type {
  Application,
  BlockExecutionInput,
  BlockExecutionResult,
  PreparedProposal,
  QueryRequest,
  QueryResponse,
  TxCheckResult,
  LastCommitInfo,
  TxEvent,
  TxResult,
  ValidatorUpdate,
} from '../app.js';
import { EVENT_LIMITS } from '../app.js';
import { ConsensusError, ConsensusErrorCode } from '../errors.js';
import { MAX_STAMP_DIFFICULTY } from '../proof/params.js';
import {
  ACCOUNT_PREFIX,
  MAX_SEQUENCE_ACCOUNT_BYTES,
  accountSequenceKey,
  decodeSequence,
  encodeSequence,
  sequenceKey,
  sequenceOwner,
} from './accounts.js';
import type { Envelope } from './envelope.js';
import {
  MAX_CHAIN_ID_LENGTH,
  MODULE_NAME_PATTERN,
  decodeTransaction,
  txSender,
  verifyTransaction,
} from './envelope.js';
import {
  ApplicationError,
  ApplicationErrorCode,
  ModuleError,
  TransactionError,
  TransactionErrorCode,
} from './errors.js';
import type { ForeignStateReaders, Module, ModuleStateReader } from './module.js';
import {
  BlockOverlay,
  CommittedState,
  DEFAULT_STATE_CACHE_ENTRIES,
  ModuleView,
  modulePrefix,
} from './overlay.js';
import { BoundedMap } from '../../codec/bounded-map.js';
import type { StateAccess } from './overlay.js';
import { DEFAULT_RECENT_RESULTS, RecentTxResults, encodeRecordedTxResult } from './tx-results.js';
import { VerificationCache } from './verification-cache.js';
import type { VerificationCacheOptions } from './verification-cache.js';

/** A state entry written by the first block, before its transactions (genesis state). */
export interface InitialStateEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface ApplicationOptions {
  readonly chainId: string;
  /** The node store's state (NodeStore.state): the latest committed state and its proofs. */
  readonly state: StateReader;
  readonly modules: readonly Module[];
  /** Leading zero bits every transaction's hashcash stamp must have (the chain's PoWork d). */
  readonly stampDifficulty: number;
  /** Full state keys written at height 1 (e.g. genesis balances); empty by default. */
  readonly initialState?: readonly InitialStateEntry[];
  /** How far ahead of a sender's next sequence checkTx admits (default 64). */
  readonly maxSequenceLead?: number;
  /** Committed transaction results kept for the `tx/result` query (default 100,000). */
  readonly recentResults?: number;
  readonly verificationCache?: VerificationCacheOptions;
  /** Committed state values kept in memory between calls (default 50,000). */
  readonly stateCacheEntries?: number;
  /** Decoded, verified transactions remembered by their bytes (default 50,000). */
  readonly admittedCacheEntries?: number;
}

/** Default of `admittedCacheEntries`: above the mempool's default limit of 20,000. */
export const DEFAULT_ADMITTED_CACHE_ENTRIES = 50_000;

/** Whose sequence numbers a transaction uses. */
interface SequenceDomain {
  /** The state key of its next sequence (accounts.ts). */
  readonly key: Uint8Array;
  /**
   * Who is accountable for it in the mempool (`TxAcceptance.sender`): the sender key's hex, or
   * `<module>:<account hex>` for a module's sequence account, so the two never coincide.
   */
  readonly owner: string;
}

/** What `refuseUsedSequence` decoded, for `admit` to go on with: the envelope and maybe the body. */
interface EarlyRead {
  readonly envelope: Envelope;
  /** The module's decoded body (only for a module with a sequence account hook). */
  readonly body?: { readonly value: unknown };
}

/** A sequence account of the form `Module.sequenceAccount` may return: 1 to 64 bytes. */
function validAccount(account: Uint8Array): boolean {
  return account.length >= 1 && account.length <= MAX_SEQUENCE_ACCOUNT_BYTES;
}

/** A transaction whose stateless checks passed: decoded, its module and sequence domain found. */
interface Admitted extends ModuleEntry {
  readonly envelope: Envelope;
  readonly domain: SequenceDomain;
}

export const DEFAULT_MAX_SEQUENCE_LEAD = 64;
/** Height whose block writes `initialState`. */
export const INITIAL_HEIGHT = 1;
/** Names the router keeps for itself (state prefixes and built-in query paths). */
export const RESERVED_MODULE_NAMES: readonly string[] = [ACCOUNT_PREFIX, 'tx', 'app'];
/** Built-in queries. */
export const TX_RESULT_QUERY = 'tx/result';
export const SEQUENCE_QUERY = 'acct/sequence';
/**
 * `acct/sequence/<module>` with the account's bytes: the next sequence of a module's sequence
 * account (`Module.sequenceAccount`, e.g. `acct/sequence/caesar` with a hybrid address).
 */
export const ACCOUNT_SEQUENCE_QUERY_PREFIX = `${SEQUENCE_QUERY}/`;

/** The query for the next sequence of module `module`'s sequence account `account`. */
export function accountSequenceQuery(
  module: string,
  account: Uint8Array,
): { readonly path: string; readonly data: Uint8Array } {
  return { path: `${ACCOUNT_SEQUENCE_QUERY_PREFIX}${module}`, data: account };
}

/**
 * The smallest possible encoded transaction: array head 1, version 1, one-character chain id 2,
 * sender 34, sequence 1, one-letter module 2, empty body 1, nonce 1, signature 66. The proposer
 * stops looking at candidates when less room than this is left.
 */
const MIN_TRANSACTION_BYTES = 109;

function invalidConfig(message: string, detail: Record<string, unknown> = {}): never {
  throw new ApplicationError(ApplicationErrorCode.INVALID_CONFIG, message, detail);
}

function invalidQuery(message: string, detail: Record<string, unknown> = {}): never {
  throw new ApplicationError(ApplicationErrorCode.INVALID_QUERY, message, detail);
}

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function checkOptions(options: ApplicationOptions): void {
  const { chainId, modules, stampDifficulty } = options;
  if (typeof chainId !== 'string' || chainId.length < 1 || chainId.length > MAX_CHAIN_ID_LENGTH) {
    invalidConfig(`chainId must be a string of 1 to ${MAX_CHAIN_ID_LENGTH} characters`);
  }
  if (!isUint(stampDifficulty) || stampDifficulty > MAX_STAMP_DIFFICULTY) {
    invalidConfig(`stampDifficulty must be an integer in [0, ${MAX_STAMP_DIFFICULTY}]`);
  }
  for (const name of [
    'maxSequenceLead',
    'recentResults',
    'stateCacheEntries',
    'admittedCacheEntries',
  ] as const) {
    const value = options[name];
    if (value !== undefined && !isUint(value)) {
      invalidConfig(`${name} must be a non-negative integer`);
    }
  }
  const names = new Set<string>();
  for (const module of modules) {
    const { name } = module;
    if (typeof name !== 'string' || !MODULE_NAME_PATTERN.test(name)) {
      invalidConfig(`module name ${String(name)} does not match ${MODULE_NAME_PATTERN.source}`);
    }
    if (RESERVED_MODULE_NAMES.includes(name)) {
      invalidConfig(`module name ${name} is reserved by the router`, { module: name });
    }
    if (names.has(name)) invalidConfig(`two modules are named ${name}`, { module: name });
    names.add(name);
  }
  for (const { name, reads } of modules) {
    if (reads === undefined) continue;
    if (!Array.isArray(reads)) {
      invalidConfig(`module ${name}: reads must be a list of module names`, { module: name });
    }
    const seen = new Set<string>();
    for (const read of reads as readonly unknown[]) {
      const wrong =
        typeof read !== 'string' || !names.has(read)
          ? 'no module of this application'
          : read === name
            ? 'itself'
            : seen.has(read)
              ? 'listed twice'
              : null;
      if (wrong !== null) {
        invalidConfig(`module ${name} reads ${JSON.stringify(read)}, which is ${wrong}`, {
          module: name,
          reads: String(read),
        });
      }
      seen.add(read as string);
    }
  }
  const keys = new Set<string>();
  for (const [i, entry] of (options.initialState ?? []).entries()) {
    const { key, value } = entry;
    if (!(key instanceof Uint8Array) || key.length < 1 || key.length > MAX_STATE_KEY_BYTES) {
      invalidConfig(`initialState[${i}].key must be 1 to ${MAX_STATE_KEY_BYTES} bytes`);
    }
    if (!(value instanceof Uint8Array) || value.length > MAX_STATE_VALUE_BYTES) {
      invalidConfig(`initialState[${i}].value must be at most ${MAX_STATE_VALUE_BYTES} bytes`);
    }
    const id = toHex(key);
    if (keys.has(id)) invalidConfig(`initialState names key ${id} twice`, { key: id });
    keys.add(id);
  }
}

type BlockContext = Omit<BlockExecutionInput, 'transactions'>;

/** An installed module: its state prefix and the prefixes of the modules it declares it reads. */
interface ModuleEntry {
  readonly module: Module;
  readonly prefix: Uint8Array;
  readonly reads: ReadonlyMap<string, Uint8Array>;
}

/**
 * `ctx.foreign` for one call of `entry`'s module over `access` (module.ts
 * `ForeignStateReaders`): read-only views of the declared modules, closed by `close()` when
 * the call returns. The reader handed out has only `get`, and its view refuses writes too.
 */
function foreignReaders(
  entry: ModuleEntry,
  access: StateAccess | ModuleStateReader,
): { foreign: ForeignStateReaders; close(): void } {
  const views = new Map<string, ModuleView>();
  const readers = new Map<string, ModuleStateReader>();
  return {
    foreign: (name) => {
      const known = readers.get(name);
      if (known !== undefined) return known;
      const prefix = typeof name === 'string' ? entry.reads.get(name) : undefined;
      if (prefix === undefined) {
        throw new ApplicationError(
          ApplicationErrorCode.INVALID_CONFIG,
          `module ${entry.module.name} read module ${String(name)}'s state, which it does not declare in reads`,
          { module: entry.module.name, reads: String(name) },
        );
      }
      const view = new ModuleView(access, prefix, name, false);
      const reader: ModuleStateReader = Object.freeze({ get: (key: Uint8Array) => view.get(key) });
      views.set(name, view);
      readers.set(name, reader);
      return reader;
    },
    close: () => {
      for (const view of views.values()) view.close();
    },
  };
}

/** A key no module can own (modules' keys start with `<name>/`); read for its height only. */
const HEIGHT_PROBE_KEY = new TextEncoder().encode(`${ACCOUNT_PREFIX}/`);

/** A view of the committed state at one height (or the latest). */
function committedReader(state: StateReader, height?: number): ModuleStateReader {
  return { get: (key) => state.get(key, height) };
}

/**
 * The application router: checks transaction envelopes, keeps every sender's sequence (and
 * every module sequence account's, `Module.sequenceAccount`), and hands bodies to the module the
 * envelope names. See docs/application.md.
 */
class Router implements Application {
  private readonly chainId: string;
  private readonly state: StateReader;
  private readonly stampDifficulty: number;
  private readonly modules: ReadonlyMap<string, ModuleEntry>;
  private readonly initialState: readonly InitialStateEntry[];
  private readonly maxSequenceLead: number;
  private readonly cache: VerificationCache;
  private readonly recent: RecentTxResults;
  private readonly committedState: CommittedState;
  private readonly admitted: BoundedMap<string, Admitted>;
  /**
   * The transactions of each block result this router produced, so that `committed` can drop
   * them from `admitted`: a committed transaction is never checked or executed again (the
   * mempool remembers its bytes as committed), so the cache holds what is pending.
   */
  private readonly executed = new WeakMap<BlockExecutionResult, readonly Uint8Array[]>();
  /** The latest committed height as last learned (null: none stored; undefined: not known). */
  private knownHeight: number | null | undefined;
  private knownHeightRoot: string | undefined;

  constructor(options: ApplicationOptions) {
    checkOptions(options);
    this.chainId = options.chainId;
    this.state = options.state;
    this.stampDifficulty = options.stampDifficulty;
    this.modules = new Map(
      options.modules.map((module) => [
        module.name,
        {
          module,
          prefix: modulePrefix(module.name),
          reads: new Map((module.reads ?? []).map((name) => [name, modulePrefix(name)])),
        },
      ]),
    );
    this.initialState = (options.initialState ?? []).map(({ key, value }) => ({
      key: key.slice(),
      value: value.slice(),
    }));
    this.maxSequenceLead = options.maxSequenceLead ?? DEFAULT_MAX_SEQUENCE_LEAD;
    this.cache = new VerificationCache(options.verificationCache);
    this.recent = new RecentTxResults(options.recentResults ?? DEFAULT_RECENT_RESULTS);
    this.committedState = new CommittedState(
      options.state,
      options.stateCacheEntries ?? DEFAULT_STATE_CACHE_ENTRIES,
    );
    this.admitted = new BoundedMap(options.admittedCacheEntries ?? DEFAULT_ADMITTED_CACHE_ENTRIES);
  }

  /**
   * Decoding, chain, stamp, signature and module: everything but the sequence. These depend only
   * on the bytes, so the outcome is remembered by a SHA-256 of all the bytes (not by a hash of
   * some of them, nor by the array object, which a caller could modify): the mempool's re-check
   * after every block and the proposer's execution of its own candidates skip the decoding,
   * hashing and signature work. Not by the bytes as a string: a key as long as the transaction
   * held its size twice, and V8 hashes strings above 16,383 characters by length alone, so large
   * transactions of one size made every lookup walk one collision chain.
   */
  private admit(tx: Uint8Array, id: string = admittedId(tx), early?: EarlyRead): Admitted {
    // Not bytes: the decoder gives the precise refusal.
    if (!(tx instanceof Uint8Array)) return this.admitUncached(tx);
    const known = this.admitted.get(id);
    if (known !== undefined) return known;
    const checked = this.admitUncached(tx, early);
    this.admitted.set(id, checked);
    return checked;
  }

  /**
   * Before the stateless checks of bytes not admitted yet: refuses a sequence already used
   * (`SEQUENCE_USED`), read from the committed state of the sequence the transaction claims —
   * the sender's, or the module's sequence account it names (`claimedSequenceAccount`) — so a
   * committed transaction submitted again, stamp and signature valid, costs no signature
   * check. Returns what it decoded for `admit` to go on with; undefined when it could not
   * tell (not a transaction, an unknown module, a module with a sequence account it cannot
   * name cheaply): `admit` then gives the precise refusal or the answer.
   */
  private refuseUsedSequence(tx: Uint8Array): EarlyRead | undefined {
    let envelope: Envelope;
    try {
      envelope = decodeTransaction(tx);
    } catch (error) {
      if (error instanceof TransactionError) return undefined;
      throw error;
    }
    const entry = this.modules.get(envelope.module);
    if (entry === undefined) return { envelope };
    const { module } = entry;
    let key = sequenceKey(envelope.sender);
    let body: { value: unknown } | undefined;
    if (module.sequenceAccount !== undefined) {
      if (module.claimedSequenceAccount === undefined) return { envelope };
      try {
        body = { value: module.decodeBody(envelope.body) };
      } catch (error) {
        if (!(error instanceof ModuleError)) throw error;
      }
      const claimed =
        body === undefined ? undefined : module.claimedSequenceAccount(body.value, envelope.sender);
      if (claimed instanceof Uint8Array && validAccount(claimed)) {
        key = accountSequenceKey(module.name, claimed);
      } else if (claimed !== undefined) {
        return { envelope, ...(body === undefined ? {} : { body }) };
      }
    }
    const next = decodeSequence(this.committedState.get(key));
    if (envelope.sequence < next) {
      throw new TransactionError(
        TransactionErrorCode.SEQUENCE_USED,
        `sequence ${envelope.sequence} is already used; the sender's next is ${next}`,
        { sequence: envelope.sequence, next },
      );
    }
    return { envelope, ...(body === undefined ? {} : { body }) };
  }

  private admitUncached(tx: Uint8Array, early?: EarlyRead): Admitted {
    const envelope = early?.envelope ?? decodeTransaction(tx);
    verifyTransaction(envelope, {
      chainId: this.chainId,
      stampDifficulty: this.stampDifficulty,
      cache: this.cache,
    });
    const entry = this.modules.get(envelope.module);
    if (entry === undefined) {
      throw new TransactionError(
        TransactionErrorCode.UNKNOWN_MODULE,
        `no module named ${envelope.module} is installed`,
        { module: envelope.module },
      );
    }
    return { envelope, ...entry, domain: this.sequenceDomain(envelope, entry, early?.body) };
  }

  /**
   * The sender's own sequence, or the module's sequence account the body proves
   * (`Module.sequenceAccount`). A body the module cannot decode uses the sender's: its module
   * refuses it later, as it would without the hook. A `ModuleError` from the hook makes the
   * transaction inadmissible (`BAD_ACCOUNT_PROOF`); any other exception, or an account of the
   * wrong form, is a fault of the module.
   */
  private sequenceDomain(
    envelope: Envelope,
    entry: ModuleEntry,
    decoded?: { value: unknown },
  ): SequenceDomain {
    const own = { key: sequenceKey(envelope.sender), owner: txSender(envelope) };
    const { module } = entry;
    if (module.sequenceAccount === undefined) return own;
    let body: unknown;
    if (decoded !== undefined) body = decoded.value;
    else {
      try {
        body = module.decodeBody(envelope.body);
      } catch (error) {
        if (error instanceof ModuleError) return own;
        throw error;
      }
    }
    let account: Uint8Array | undefined;
    try {
      account = module.sequenceAccount(
        { chainId: this.chainId, txHash: envelope.txHash, sequence: envelope.sequence },
        body,
        envelope.sender,
      );
    } catch (error) {
      if (!(error instanceof ModuleError)) throw error;
      throw new TransactionError(
        TransactionErrorCode.BAD_ACCOUNT_PROOF,
        `module ${module.name} refused the account the body acts for: ${error.code}: ${error.message}`,
        { module: module.name, reason: error.code },
        { cause: error },
      );
    }
    if (account === undefined) return own;
    if (!(account instanceof Uint8Array) || !validAccount(account)) {
      throw new Error(
        `module ${module.name} returned a sequence account that is not 1 to ${MAX_SEQUENCE_ACCOUNT_BYTES} bytes`,
      );
    }
    return {
      key: accountSequenceKey(module.name, account),
      owner: sequenceOwner({ module: module.name, account }),
    };
  }

  /**
   * The latest committed height, for `CheckContext.height` at admission. `committed()` tells
   * it after every block; otherwise (a fresh router, or the state moved without a `committed`
   * call) it is read from the store once per state root.
   */
  private committedHeight(): number {
    const root = this.committedState.currentRoot();
    if (this.knownHeight === undefined || this.knownHeightRoot !== root) {
      this.knownHeight = this.state.getWithProof(HEIGHT_PROBE_KEY).height;
      this.knownHeightRoot = root;
    }
    return this.knownHeight ?? 0;
  }

  checkTx(tx: Uint8Array): TxCheckResult {
    const id = tx instanceof Uint8Array ? admittedId(tx) : '';
    try {
      this.committedState.sync();
      const early =
        tx instanceof Uint8Array && this.admitted.peek(id) === undefined
          ? this.refuseUsedSequence(tx)
          : undefined;
      const admitted = this.admit(tx, id, early);
      const { envelope, module, prefix, domain } = admitted;
      const next = decodeSequence(this.committedState.get(domain.key));
      if (envelope.sequence < next) {
        throw new TransactionError(
          TransactionErrorCode.SEQUENCE_USED,
          `sequence ${envelope.sequence} is already used; the sender's next is ${next}`,
          { sequence: envelope.sequence, next },
        );
      }
      if (envelope.sequence - next > this.maxSequenceLead) {
        throw new TransactionError(
          TransactionErrorCode.SEQUENCE_TOO_FAR,
          `sequence ${envelope.sequence} is more than ${this.maxSequenceLead} ahead of the sender's next, ${next}`,
          { sequence: envelope.sequence, next, lead: this.maxSequenceLead },
        );
      }
      const body = module.decodeBody(envelope.body);
      // Stateful rules are checked against the committed state only for the sender's next
      // transaction: a later one runs after the sender's earlier ones, on a state not known yet.
      // The mempool re-checks its transactions after every commit.
      if (envelope.sequence === next) {
        const view = new ModuleView(this.committedState, prefix, module.name, false);
        const foreign = foreignReaders(admitted, this.committedState);
        try {
          module.check(
            {
              chainId: this.chainId,
              height: this.committedHeight() + 1,
              txHash: envelope.txHash,
              state: view,
              foreign: foreign.foreign,
            },
            body,
            envelope.sender,
          );
        } catch (error) {
          // A deferrable refusal is about capacity, not this transaction: it is admitted and
          // waits in the mempool (the proposer leaves it out until a block has room), and the
          // mempool's re-check after a block keeps it rather than evicting it.
          if (!(error instanceof ModuleError && error.deferrable)) throw error;
        } finally {
          view.close();
          foreign.close();
        }
      }
      return {
        ok: true,
        txHash: envelope.txHash,
        sender: domain.owner,
        sequence: envelope.sequence,
        nextSequence: next,
      };
    } catch (error) {
      // Only what the mempool keeps is worth remembering: a refused transaction (a sequence
      // far ahead, a module's refusal) would otherwise pin its decoded envelope until evicted.
      this.admitted.delete(id);
      return rejection(error);
    }
  }

  /**
   * Executes one transaction on `overlay`. Throws `TransactionError` if it is not admissible
   * there (nothing written); a module's refusal is a result with a non-zero code. When
   * `proposing`, a deferrable `ModuleError` is thrown instead (nothing written, the sequence
   * unused): the proposer leaves the transaction for a later block. Any other exception is a
   * fault of the module or the store, and nothing of the transaction is kept.
   */
  private execute(
    overlay: BlockOverlay,
    tx: Uint8Array,
    block: BlockContext,
    proposing: boolean,
  ): TxResult {
    const admitted = this.admit(tx);
    const { envelope } = admitted;
    const seqKey = admitted.domain.key;
    const next = decodeSequence(overlay.get(seqKey));
    if (envelope.sequence !== next) {
      const used = envelope.sequence < next;
      throw new TransactionError(
        used ? TransactionErrorCode.SEQUENCE_USED : TransactionErrorCode.SEQUENCE_GAP,
        used
          ? `sequence ${envelope.sequence} is already used; the sender's next is ${next}`
          : `sequence ${envelope.sequence} skips ahead of the sender's next, ${next}`,
        { sequence: envelope.sequence, next },
      );
    }
    const scope = overlay.beginTx();
    const { code, log, events } = this.runModule(admitted, scope, block, proposing);
    if (code === 0) scope.merge();
    overlay.put(seqKey, encodeSequence(next + 1));
    const { txHash, sender } = envelope;
    return events.length === 0
      ? { txHash, code, log, sender }
      : { txHash, code, log, events, sender };
  }

  private runModule(
    admitted: Admitted,
    scope: StateAccess,
    block: BlockContext,
    proposing: boolean,
  ): { code: number; log: string; events: readonly TxEvent[] } {
    const { envelope, module, prefix } = admitted;
    const { txHash, sender } = envelope;
    const reader = new ModuleView(scope, prefix, module.name, false);
    const writer = new ModuleView(scope, prefix, module.name, true);
    // The same scope as the module's own views: the block's earlier transactions are visible.
    const { foreign, close } = foreignReaders(admitted, scope);
    const events: TxEvent[] = [];
    try {
      const body = module.decodeBody(envelope.body);
      module.check(
        { chainId: this.chainId, height: block.height, txHash, state: reader, foreign },
        body,
        sender,
      );
      module.apply(
        {
          chainId: this.chainId,
          height: block.height,
          time: block.time,
          txHash,
          state: writer,
          foreign,
          emit: (name, attributes, accounts = []) =>
            events.push(checkedEvent(module.name, events.length, name, attributes, accounts)),
        },
        body,
        sender,
      );
      return { code: 0, log: '', events };
    } catch (error) {
      if (error instanceof ModuleError) {
        // Proposing, "not now" (this block's capacity) leaves the transaction out rather than
        // spending its sequence on a refusal; in a block every validator records the refusal.
        if (proposing && error.deferrable) throw error;
        return { code: error.resultCode, log: `${error.code}: ${error.message}`, events: [] };
      }
      throw error;
    } finally {
      reader.close();
      writer.close();
      close();
    }
  }

  private startBlock(height: number): BlockOverlay {
    this.committedState.sync();
    const overlay = new BlockOverlay(this.committedState);
    if (height === INITIAL_HEIGHT) {
      for (const { key, value } of this.initialState) overlay.put(key, value);
    }
    return overlay;
  }

  /**
   * Runs every module's `endBlock` on the block's state after its transactions, in module
   * order, and collects their validator updates. Whatever a hook throws propagates: a fault,
   * never a refusal (the proposer cannot propose the block, a validator refuses it).
   */
  private endBlock(overlay: BlockOverlay, block: BlockContext): ValidatorUpdate[] {
    const updates: ValidatorUpdate[] = [];
    const keys = new Set<string>();
    for (const { module, prefix } of this.modules.values()) {
      if (module.endBlock === undefined) continue;
      const view = new ModuleView(overlay, prefix, module.name, true);
      let returned: readonly ValidatorUpdate[];
      try {
        returned = module.endBlock({
          chainId: this.chainId,
          height: block.height,
          time: block.time,
          proposer: block.proposer,
          evidence: block.evidence,
          lastCommit: block.lastCommit,
          state: view,
        });
      } finally {
        view.close();
      }
      for (const update of checkedUpdates(module.name, returned)) {
        const id = toHex(update.publicKey);
        if (keys.has(id)) {
          throw new ApplicationError(
            ApplicationErrorCode.INVALID_VALIDATOR_UPDATES,
            `module ${module.name} returned a validator update for key ${id}, which another update of this block already names`,
            { module: module.name, publicKey: id },
          );
        }
        keys.add(id);
        updates.push(update);
      }
    }
    return updates;
  }

  private finish(
    overlay: BlockOverlay,
    txResults: TxResult[],
    block: BlockContext,
    transactions: readonly Uint8Array[],
  ): BlockExecutionResult {
    const validatorUpdates = this.endBlock(overlay, block);
    const changes = overlay.changes();
    const result: BlockExecutionResult = {
      stateRoot: this.state.computeRoot(changes),
      changes,
      txResults,
      validatorUpdates,
    };
    this.executed.set(result, transactions);
    return result;
  }

  prepareProposal(
    block: Omit<BlockExecutionInput, 'transactions'>,
    candidates: Iterable<Uint8Array>,
    maxBytes: number,
    maxTxs: number = Number.MAX_SAFE_INTEGER,
  ): PreparedProposal {
    this.checkBlock(block);
    if (!isUint(maxBytes)) {
      invalidConfig(`maxBytes must be a non-negative integer, got ${String(maxBytes)}`);
    }
    if (!isUint(maxTxs)) {
      invalidConfig(`maxTxs must be a non-negative integer, got ${String(maxTxs)}`);
    }
    const overlay = this.startBlock(block.height);
    const transactions: Uint8Array[] = [];
    const txResults: TxResult[] = [];
    let used = 0;
    for (const tx of candidates) {
      if (maxBytes - used < MIN_TRANSACTION_BYTES || transactions.length >= maxTxs) break;
      if (!(tx instanceof Uint8Array) || used + tx.length > maxBytes) continue;
      try {
        const result = this.execute(overlay, tx, block, true);
        transactions.push(tx);
        txResults.push(result);
        used += tx.length;
      } catch (error) {
        // A store failure is this node's problem, not the candidate's: stop proposing.
        if (error instanceof StorageError) throw error;
        // Inadmissible here, deferred by its module (no room in this block) or a module fault:
        // leave it out, the overlay is unchanged; it stays in the mempool.
      }
    }
    return { transactions, result: this.finish(overlay, txResults, block, transactions) };
  }

  executeBlock(block: BlockExecutionInput): BlockExecutionResult {
    this.checkBlock(block);
    const overlay = this.startBlock(block.height);
    const txResults: TxResult[] = [];
    block.transactions.forEach((tx, index) => {
      try {
        txResults.push(this.execute(overlay, tx, block, false));
      } catch (error) {
        if (!(error instanceof TransactionError)) throw error;
        throw new ConsensusError(
          ConsensusErrorCode.INVALID_BLOCK,
          `block ${block.height}, transaction ${index}: ${error.message}`,
          { height: block.height, index, reason: error.code },
          { cause: error },
        );
      }
    });
    return this.finish(overlay, txResults, block, block.transactions);
  }

  private checkBlock(block: Omit<BlockExecutionInput, 'transactions'>): void {
    if (block.chainId !== this.chainId) {
      throw new ConsensusError(
        ConsensusErrorCode.INVALID_BLOCK,
        `block is for chain "${String(block.chainId)}", this application runs "${this.chainId}"`,
        { chainId: block.chainId, expected: this.chainId },
      );
    }
    if (!isUint(block.height) || block.height < INITIAL_HEIGHT || !isUint(block.time)) {
      throw new ConsensusError(
        ConsensusErrorCode.INVALID_BLOCK,
        'block height must be a positive integer and its time a non-negative integer',
        { height: block.height, time: block.time },
      );
    }
    if (block.lastCommit !== undefined) checkLastCommit(block.lastCommit, block.height);
  }

  forgetCheck(tx: Uint8Array): void {
    if (tx instanceof Uint8Array) this.admitted.delete(admittedId(tx));
  }

  /** Transactions whose stateless checks are remembered (diagnostics and tests). */
  admittedCacheSize(): number {
    return this.admitted.size;
  }

  committed(height: number, result: BlockExecutionResult): void {
    this.knownHeight = height;
    this.knownHeightRoot = Buffer.from(result.stateRoot).toString('hex');
    this.recent.record(height, result.txResults);
    for (const { txHash } of result.txResults) this.cache.forget(txHash);
    for (const tx of this.executed.get(result) ?? []) {
      if (tx instanceof Uint8Array) this.admitted.delete(admittedId(tx));
    }
  }

  query(request: QueryRequest): QueryResponse {
    const { path, data, height } = request;
    if (typeof path !== 'string') invalidQuery('query path must be a string');
    if (!(data instanceof Uint8Array)) invalidQuery('query data must be a byte string');
    if (height !== undefined && !isUint(height)) {
      invalidQuery('query height must be a non-negative integer');
    }
    if (path === TX_RESULT_QUERY) return this.queryTxResult(data);
    if (path === SEQUENCE_QUERY) {
      if (data.length !== 32) invalidQuery('acct/sequence takes a 32-byte sender public key');
      return this.provenRead(sequenceKey(data), height);
    }
    if (path.startsWith(ACCOUNT_SEQUENCE_QUERY_PREFIX)) {
      const name = path.slice(ACCOUNT_SEQUENCE_QUERY_PREFIX.length);
      if (this.modules.get(name)?.module.sequenceAccount === undefined) {
        throw new ApplicationError(ApplicationErrorCode.UNKNOWN_QUERY, `no query ${path}`, {
          path: path.slice(0, 128),
        });
      }
      if (data.length < 1 || data.length > MAX_SEQUENCE_ACCOUNT_BYTES) {
        invalidQuery(`${path} takes an account of 1 to ${MAX_SEQUENCE_ACCOUNT_BYTES} bytes`);
      }
      return this.provenRead(accountSequenceKey(name, data), height);
    }
    const slash = path.indexOf('/');
    const name = slash === -1 ? path : path.slice(0, slash);
    const entry = this.modules.get(name);
    if (slash === -1 || entry === undefined) {
      throw new ApplicationError(ApplicationErrorCode.UNKNOWN_QUERY, `no query ${path}`, {
        path: path.slice(0, 128),
      });
    }
    const { module, prefix } = entry;
    const view = new ModuleView(committedReader(this.state, height), prefix, name, false);
    let answer;
    try {
      answer = module.query(path.slice(slash + 1), data, view);
    } finally {
      view.close();
    }
    if (answer === undefined) {
      throw new ApplicationError(ApplicationErrorCode.UNKNOWN_QUERY, `no query ${path}`, {
        path: path.slice(0, 128),
      });
    }
    const key = new Uint8Array(prefix.length + answer.key.length);
    key.set(prefix, 0);
    key.set(answer.key, prefix.length);
    return this.provenRead(key, height);
  }

  private provenRead(key: Uint8Array, height: number | undefined): QueryResponse {
    const read = this.state.getWithProof(key, height);
    return {
      height: read.height,
      value: read.value,
      proof: encodeStateProof(read.proof),
      stateRoot: read.root,
    };
  }

  private queryTxResult(txHash: Uint8Array): QueryResponse {
    if (txHash.length !== 32) invalidQuery('tx/result takes a 32-byte txHash');
    const found = this.recent.get(txHash);
    if (found === undefined) {
      return { height: null, value: null, stateRoot: this.state.root() };
    }
    return {
      height: found.height,
      value: encodeRecordedTxResult(found),
      stateRoot: this.state.root(found.height),
    };
  }
}

/**
 * The form of `lastCommit` (the driver's input, app.ts `LastCommitInfo`): the previous height,
 * validators in strictly increasing address order, safe-integer powers, boolean `signed`.
 */
function checkLastCommit(lastCommit: LastCommitInfo, height: number): void {
  const bad = (message: string): never => {
    throw new ConsensusError(ConsensusErrorCode.INVALID_BLOCK, `lastCommit: ${message}`, {
      height,
    });
  };
  if (typeof lastCommit !== 'object' || lastCommit === null) bad('not a record');
  if (lastCommit.height !== height - 1) {
    bad(`names height ${String(lastCommit.height)}, not the previous height ${height - 1}`);
  }
  if (!Array.isArray(lastCommit.votes)) bad('votes is not a list');
  let previous = '';
  for (const [i, vote] of lastCommit.votes.entries()) {
    if (typeof vote !== 'object' || vote === null) bad(`votes[${i}] is not a record`);
    const { validator, power, signed } = vote;
    if (typeof validator !== 'string' || validator <= previous) {
      bad(`votes[${i}].validator must be an address after the previous one`);
    }
    if (!isUint(power) || typeof signed !== 'boolean') {
      bad(`votes[${i}] needs a non-negative integer power and a boolean signed`);
    }
    previous = validator;
  }
}

/** A module's `endBlock` result, checked for form and copied (its bytes are not shared). */
function checkedUpdates(module: string, returned: unknown): ValidatorUpdate[] {
  const bad = (message: string): never => {
    throw new ApplicationError(
      ApplicationErrorCode.INVALID_VALIDATOR_UPDATES,
      `module ${module} endBlock: ${message}`,
      { module },
    );
  };
  if (!Array.isArray(returned)) return bad('did not return a list of validator updates');
  return returned.map((update: unknown, i): ValidatorUpdate => {
    if (typeof update !== 'object' || update === null) return bad(`update ${i} is not a record`);
    const { publicKey, power, pqPublicKey, storageRoot } = update as Partial<ValidatorUpdate>;
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
      return bad(`update ${i}: publicKey must be a 32-byte Ed25519 key`);
    }
    if (!isUint(power)) return bad(`update ${i}: power must be a non-negative integer`);
    for (const [name, value] of [
      ['pqPublicKey', pqPublicKey],
      ['storageRoot', storageRoot],
    ] as const) {
      if (value !== undefined && !(value instanceof Uint8Array)) {
        bad(`update ${i}: ${name} must be bytes when present`);
      }
    }
    return {
      publicKey: publicKey.slice(),
      power,
      ...(pqPublicKey === undefined ? {} : { pqPublicKey: pqPublicKey.slice() }),
      ...(storageRoot === undefined ? {} : { storageRoot: storageRoot.slice() }),
    };
  });
}

/** A transaction refusal from whatever `checkTx` caught; never throws. */
function rejection(error: unknown): TxCheckResult {
  if (error instanceof TransactionError || error instanceof ModuleError) {
    return { ok: false, code: error.code, message: error.message };
  }
  const detail = error instanceof HyperMeshError ? ` (${error.code})` : '';
  const message = error instanceof Error ? error.message : String(error);
  return {
    ok: false,
    code: ApplicationErrorCode.INTERNAL,
    message: `checkTx failed${detail}: ${message}`,
  };
}

/**
 * The application for a chain: the router over `modules`, reading and proving state through
 * `state`. Throws `ApplicationError INVALID_CONFIG` for bad options.
 */
export function createApplication(options: ApplicationOptions): Application {
  return new Router(options);
}

const EVENT_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const ATTRIBUTE_KEY = /^[a-z][a-zA-Z0-9_]{0,31}$/;

/**
 * An event a module emitted, checked against `EVENT_LIMITS`: a module that breaks them has a
 * bug, which is a fault like any other exception it throws (not a refused transaction).
 */
function checkedEvent(
  moduleName: string,
  emitted: number,
  name: string,
  attributes: Readonly<Record<string, string>>,
  accounts: readonly Uint8Array[],
): TxEvent {
  const fault = (what: string): Error =>
    new Error(`module ${moduleName} emitted an invalid event ${JSON.stringify(name)}: ${what}`);
  if (emitted >= EVENT_LIMITS.eventsPerTx) {
    throw fault(`more than ${EVENT_LIMITS.eventsPerTx} events in one transaction`);
  }
  if (!EVENT_NAME.test(name)) throw fault('the name is not lowercase letters, digits and dashes');
  const entries = Object.entries(attributes);
  if (entries.length > EVENT_LIMITS.attributesPerEvent) {
    throw fault(`more than ${EVENT_LIMITS.attributesPerEvent} attributes`);
  }
  for (const [key, value] of entries) {
    if (!ATTRIBUTE_KEY.test(key)) throw fault(`attribute key ${JSON.stringify(key)}`);
    if (typeof value !== 'string' || value.length > EVENT_LIMITS.valueChars) {
      throw fault(
        `attribute ${key} is not a string of at most ${EVENT_LIMITS.valueChars} characters`,
      );
    }
  }
  if (
    accounts.length > EVENT_LIMITS.accountsPerEvent ||
    accounts.some(
      (account) =>
        !(account instanceof Uint8Array) ||
        account.length === 0 ||
        account.length > EVENT_LIMITS.accountBytes,
    )
  ) {
    throw fault(
      `accounts must be at most ${EVENT_LIMITS.accountsPerEvent} byte strings of 1..${EVENT_LIMITS.accountBytes} bytes`,
    );
  }
  return {
    type: `${moduleName}/${name}`,
    attributes: Object.fromEntries(entries),
    accounts: accounts.map((account) => Uint8Array.from(account)),
  };
}

/** The admitted cache's key: SHA-256 of all the transaction's bytes, as a 32-character string. */
function admittedId(tx: Uint8Array): string {
  if (!(tx instanceof Uint8Array)) return '';
  const digest = sha256(tx);
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('latin1');
}
