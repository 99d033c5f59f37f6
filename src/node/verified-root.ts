import { checkQuorumCertificate } from '../consensus/commit.js';
import { genesisValidatorSet, type GenesisDocument } from '../consensus/genesis.js';
import { blockHash } from '../consensus/messages.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import type { ValidatorSet } from '../consensus/validator-set.js';
import { pqSignatureVerifier } from '../consensus/verify.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import { fetchCommittedBlock, type FetchedBlock } from './block-verify.js';
import { CliError } from './cli-error.js';
import {
  followSetTrail,
  highestPossibleHeight,
  type TrustedSetAnchor,
} from './validator-set-trail.js';

/**
 * A state root a node names is trusted only once the validator quorum is seen to commit it
 * (docs/discovery.md, "Proven answers"; docs/application.md, "Queries"). Blocks are executed
 * immediately (docs/consensus-proof.md): the state a query answers at height H is the state
 * after block H, and its root is `appStateRoot` of block H's own header. So for an answer
 * (H, R) the check refuses an H the chain cannot have reached yet (`highestPossibleHeight`),
 * fetches block H and its commit from the node and requires
 *
 *   1. the header to be of the genesis chain and of height H,
 *   2. `header.appStateRoot` = R,
 *   3. the validator set of height H: the genesis set when the header names it (no extra
 *      request), otherwise the set derived from the nearest lower height already verified (or
 *      the genesis) and the node's validator updates in between, each change accepted by the
 *      light-client rule (`followSetTrail`, validator-set-trail.ts; consensus/set-handover.ts)
 *      — and the header must name it,
 *   4. the commit to be a quorum certificate of the header by that set: precommits of more than
 *      2/3 of its power, Ed25519 and (when the genesis requires it) FALCON-1024, checked by the
 *      engine's own `checkQuorumCertificate`.
 *
 * Verified headers (with their sets, the handover blocks' too) are cached by height, so every
 * read of one command at one height pays once and a later height starts its set derivation from
 * them; a handover block never pushes out a higher height (`remember`). The cache may be shared by the checkers of several nodes: only verified headers go in,
 * and a check under way is the node's own, so no node can make another's check wait for, or
 * fail with, its answers.
 */

/** Typed codes of the refusals (shown in brackets after the message). */
export enum CommittedRootErrorCode {
  /** The answer names no height: nothing was committed when it was read. */
  NO_HEIGHT = 'ROOT_NO_HEIGHT',
  /** The node did not send the block of the height (or sent one that does not decode). */
  BLOCK_UNAVAILABLE = 'ROOT_BLOCK_UNAVAILABLE',
  /** The header is of another chain than the genesis names. */
  WRONG_CHAIN = 'ROOT_WRONG_CHAIN',
  /** The committed header carries another state root than the answer. */
  ROOT_MISMATCH = 'ROOT_MISMATCH',
  /** The validator set of the height cannot be trusted (a refused handover or updates). */
  VALIDATOR_SET_UNVERIFIED = 'ROOT_VALIDATOR_SET_UNVERIFIED',
  /** The commit is not a quorum certificate of the header; `reason` is the engine's. */
  INVALID_COMMIT = 'ROOT_INVALID_COMMIT',
  /** A read asked for one height and the node answered from another. */
  HEIGHT_MISMATCH = 'ROOT_HEIGHT_MISMATCH',
}

/** A refused state root; the message names the height and the reason, then the code. */
export class CommittedRootError extends CliError {
  constructor(
    readonly code: CommittedRootErrorCode,
    readonly height: number | null,
    reason: string,
    readonly detail: Readonly<Record<string, unknown>> = {},
  ) {
    super(
      `state root at height ${height ?? '-'} is not committed by the validator quorum: ${reason} [${code}]`,
      1,
    );
    this.name = 'CommittedRootError';
  }
}

/**
 * Refuses an answer from another height than the read asked for. A committed root proves the
 * answer is the chain's state at the height it names, not at the one the caller wanted: a node
 * could answer an old height's genuine "absent" to a read of a later one.
 */
export function checkAnsweredHeight(requested: number | undefined, answered: number | null): void {
  if (requested === undefined || answered === requested) return;
  throw new CommittedRootError(
    CommittedRootErrorCode.HEIGHT_MISMATCH,
    answered,
    `the read asked for height ${requested}`,
    { requested },
  );
}

/** What the check needs of a node: its committed blocks and the validator updates. */
export type CommittedBlockSource = Pick<NodeRpcClient, 'getBlock' | 'validatorUpdates'>;

/** What a verified header of height H vouches for: its state root and its (BFT) time. */
export interface CommittedHeader {
  readonly appStateRoot: Uint8Array;
  /** `header.time` (ms since the epoch), committed with the header. */
  readonly time: number;
  /** The validator set of height H, whose commit of the header was checked. */
  readonly validators: ValidatorSet;
}

/**
 * Verified headers by height: shared by every node a command asks (they are the chain's,
 * whichever node sent them). Only headers whose commit checked out are in it.
 */
export type VerifiedRootCache = Map<number, CommittedHeader>;

/**
 * Heights a cache keeps by default: a long-lived checker (a node following a discovery catalog)
 * meets a new height with every block, so the cache forgets the heights it took in first.
 */
export const DEFAULT_MAX_VERIFIED_ROOTS = 256;

/** Time (ms) one check may spend deriving the validator set of its height (`followSetTrail`). */
export const DEFAULT_SET_TRAIL_DEADLINE_MS = 60_000;

export interface CommittedRootsOptions {
  readonly falcon?: FalconBackend;
  /** A cache to share with other checkers of the same chain (default: its own). */
  readonly cache?: VerifiedRootCache;
  /**
   * Most heights kept in the cache (default DEFAULT_MAX_VERIFIED_ROOTS); past it, the height
   * taken in first is forgotten (asked again if it is read again), and for a handover block of a
   * set derivation the lowest height.
   */
  readonly maxCached?: number;
  /** Time (ms) one check may spend deriving its height's set (default 60 s). */
  readonly setTrailDeadlineMs?: number;
  /** The clock (ms since the epoch) heights are judged possible by (default `Date.now`). */
  readonly now?: () => number;
}

export class CommittedRoots {
  private readonly genesisSet: ValidatorSet;
  private readonly falcon: FalconBackend;
  private readonly cache: VerifiedRootCache;
  private readonly maxCached: number;
  private readonly setTrailDeadlineMs: number;
  private readonly now: () => number;
  /** Checks under way, of this node's answers only (see the module comment). */
  private readonly pending = new Map<number, Promise<CommittedHeader>>();

  constructor(
    private readonly node: CommittedBlockSource,
    private readonly genesis: GenesisDocument,
    options: CommittedRootsOptions = {},
  ) {
    this.genesisSet = genesisValidatorSet(genesis);
    this.falcon = options.falcon ?? defaultFalcon();
    this.cache = options.cache ?? new Map();
    this.maxCached = options.maxCached ?? DEFAULT_MAX_VERIFIED_ROOTS;
    this.setTrailDeadlineMs = options.setTrailDeadlineMs ?? DEFAULT_SET_TRAIL_DEADLINE_MS;
    this.now = options.now ?? Date.now;
    if (!(Number.isSafeInteger(this.maxCached) && this.maxCached >= 1)) {
      throw new RangeError(`maxCached must be a positive integer, got ${this.maxCached}`);
    }
  }

  /** Resolves when `stateRoot` is block `height`'s committed state root; else `CommittedRootError`. */
  async check(height: number | null, stateRoot: Uint8Array): Promise<void> {
    if (height === null) {
      throw new CommittedRootError(
        CommittedRootErrorCode.NO_HEIGHT,
        null,
        'the answer names no committed height, so no header can vouch for it',
      );
    }
    const root = (await this.committed(height)).appStateRoot;
    if (!bytesEqual(root, stateRoot)) {
      throw new CommittedRootError(
        CommittedRootErrorCode.ROOT_MISMATCH,
        height,
        `the answer's root ${toHex(stateRoot)} is not ${toHex(root)}, the root block ${height}'s committed header carries`,
        { stateRoot: toHex(stateRoot), committed: toHex(root) },
      );
    }
  }

  /**
   * The time (ms) block `height`'s committed header carries, verified as `check` verifies its
   * root (and from the same cache): how old an answer as of that height is.
   */
  async blockTime(height: number): Promise<number> {
    return (await this.committed(height)).time;
  }

  private committed(height: number): Promise<CommittedHeader> {
    const verified = this.cache.get(height);
    if (verified !== undefined) return Promise.resolve(verified);
    let pending = this.pending.get(height);
    if (pending === undefined) {
      // A refusal is not remembered: the next read asks again (perhaps another node).
      pending = this.committedHeader(height).finally(() => this.pending.delete(height));
      this.pending.set(height, pending);
    }
    return pending;
  }

  /**
   * Keeps a verified header past `maxCached` by forgetting the one taken in first; a handover
   * block of a trail (`onTrail`) forgets the lowest height instead, itself when it is the lowest.
   * A trail to an old height (any node may answer at one) may be hundreds of handovers long:
   * taken in first-in-first-out, they would push out every recent height, and the next check
   * near the tip would derive its set again from that old height.
   */
  private remember(height: number, header: CommittedHeader, onTrail = false): void {
    if (this.cache.has(height)) return;
    if (onTrail && this.cache.size >= this.maxCached) {
      let lowest = height;
      for (const at of this.cache.keys()) lowest = Math.min(lowest, at);
      if (lowest === height) return;
      this.cache.delete(lowest);
    }
    this.cache.set(height, header);
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= this.maxCached) break;
      this.cache.delete(oldest);
    }
  }

  /** The verified set of the highest height below `height` in the cache, else the genesis set. */
  private anchorBelow(height: number): TrustedSetAnchor {
    let anchor: TrustedSetAnchor = { height: 1, validators: this.genesisSet };
    for (const [at, header] of this.cache) {
      if (at < height && at > anchor.height) anchor = { height: at, validators: header.validators };
    }
    return anchor;
  }

  /** Block `height`'s state root, time and set, after its header and commit verified. */
  private async committedHeader(height: number): Promise<CommittedHeader> {
    const possible = highestPossibleHeight(this.genesis, this.now());
    if (height > possible) {
      throw new CommittedRootError(
        CommittedRootErrorCode.BLOCK_UNAVAILABLE,
        height,
        `no block of this chain can have that height yet: blocks are at least 1 ms apart, so the chain can be at most at height ${possible} (its genesis time and a day of clock error)`,
        { highestPossible: possible },
      );
    }
    const target = await this.fetch(height);
    const { header } = target.block;
    if (header.chainId !== this.genesis.chainId) {
      throw new CommittedRootError(
        CommittedRootErrorCode.WRONG_CHAIN,
        height,
        `block ${height} is of chain ${JSON.stringify(header.chainId)}, not ${JSON.stringify(this.genesis.chainId)}`,
      );
    }
    const validators = await this.validatorSetOf(target);
    const refusal = checkQuorumCertificate(
      {
        chainId: this.genesis.chainId,
        validators,
        verifier: pqSignatureVerifier(this.falcon),
        requirePq: this.genesis.consensus.requirePq,
      },
      target.commit,
      { height, blockHash: blockHash(header) },
    );
    if (refusal !== undefined) {
      throw new CommittedRootError(
        CommittedRootErrorCode.INVALID_COMMIT,
        height,
        `the commit of block ${height}: ${refusal.message}`,
        { ...refusal.detail },
      );
    }
    const committed = { appStateRoot: header.appStateRoot, time: header.time, validators };
    this.remember(height, committed);
    return committed;
  }

  /** The set that decides the block's height (see the module comment, step 3). */
  private async validatorSetOf(target: FetchedBlock): Promise<ValidatorSet> {
    const { height, validatorsHash } = target.block.header;
    if (bytesEqual(validatorsHash, this.genesisSet.hash)) return this.genesisSet;
    const from = this.anchorBelow(height);
    const trail = await followSetTrail({
      client: this.node,
      genesis: this.genesis,
      from,
      height,
      blockAt: (at) => (at === height ? Promise.resolve(target) : this.fetch(at)),
      falcon: this.falcon,
      deadlineMs: this.setTrailDeadlineMs,
      now: this.now,
      // A handover block that checked out is a verified header too, and a later anchor.
      onHandover: ({ block }, validators) => {
        const at = block.header.height;
        if (at === height || block.header.chainId !== this.genesis.chainId) return;
        const { appStateRoot, time } = block.header;
        this.remember(at, { appStateRoot, time, validators }, true);
      },
    }).catch((error: unknown) => {
      if (error instanceof CommittedRootError) throw error;
      throw new CommittedRootError(
        CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED,
        height,
        `the validator updates of blocks ${Math.max(1, from.height - 1)}..${height - 2}: ${(error as Error).message}`,
      );
    });
    if (!trail.ok) {
      throw new CommittedRootError(
        CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED,
        height,
        `the validator set of height ${height} cannot be trusted (${trail.reason} at height ${trail.height}): ${trail.message}`,
      );
    }
    const set = trail.validators;
    if (!bytesEqual(validatorsHash, set.hash)) {
      throw new CommittedRootError(
        CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED,
        height,
        `block ${height} names validator set ${toHex(validatorsHash)}, the chain's updates give ${toHex(set.hash)}`,
      );
    }
    return set;
  }

  private async fetch(height: number): Promise<FetchedBlock> {
    try {
      return await fetchCommittedBlock(this.node, height);
    } catch (error) {
      throw new CommittedRootError(
        CommittedRootErrorCode.BLOCK_UNAVAILABLE,
        height,
        `block ${height} and its commit: ${(error as Error).message}`,
      );
    }
  }
}

/** Where a client that checks roots keeps its checker (see `withCommittedRoots`). */
const COMMITTED_ROOTS: unique symbol = Symbol('hypermesh.committedRoots');

/** A node API client that carries the checker of the roots its answers name. */
export type CommittedStateClient = NodeRpcClient & { readonly [COMMITTED_ROOTS]: CommittedRoots };

/** `client` with a checker of its answers' roots (asking the same node for blocks). */
export function withCommittedRoots(
  client: NodeRpcClient,
  genesis: GenesisDocument,
  options: CommittedRootsOptions = {},
): CommittedStateClient {
  return { ...client, [COMMITTED_ROOTS]: new CommittedRoots(client, genesis, options) };
}

/**
 * The checker a client carries. Proven readers refuse a client without one: an answer whose
 * root nobody checked is the node's word, not a proof.
 */
export function committedRootsOf(client: NodeRpcClient): CommittedRoots {
  const roots = (client as Partial<CommittedStateClient>)[COMMITTED_ROOTS];
  if (roots === undefined) {
    throw new CliError(
      'a proven read needs a client that checks state roots against committed headers (withCommittedRoots)',
      2,
    );
  }
  return roots;
}
