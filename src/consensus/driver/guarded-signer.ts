import type { KeyObject } from 'node:crypto';
import type { FalconBackend } from '../../crypto/falcon.js';
import { checkSigning, type GuardDecision, type SigningStep } from '../double-sign-guard.js';
import { precommitPqMessage, signProposal, signVote } from '../signer.js';
import type { Proposal, ProposalRequest, Vote, VoteRequest } from '../types.js';
import {
  readSignerRecord,
  writeSignerFence,
  writeSignerState,
  type LastSigned,
} from './signer-state.js';

/** A validator's signing keys: Ed25519 for every vote and proposal, FALCON-1024 for precommits. */
export interface ValidatorKeys {
  readonly privateKey: KeyObject;
  readonly falconSecretKey: Uint8Array;
  readonly falcon: FalconBackend;
}

export type SignOutcome<T> =
  | { readonly kind: 'signed' | 'reused'; readonly value: T }
  | { readonly kind: 'refused'; readonly reason: SignRefusal };

export type SignRefusal =
  | Extract<GuardDecision<unknown>, { kind: 'refuse' }>['reason']
  /** Same height/round as a signed proposal, same block, but another valid round. */
  | 'valid-round-conflict'
  /** The last-signed record could not be persisted; the signer refuses from then on. */
  | 'persist-failed'
  | 'signing-failed'
  /**
   * At or below the fence a validator started without its signer state was given
   * (signer-state-missing.ts): what it signed there before is unknown.
   */
  | 'fenced'
  /** The node no longer holds its data directory (`mayStillSign`): another process signs now. */
  | 'not-holder'
  | 'closed';

export interface SignerCounters {
  /** New signatures released. */
  signed: number;
  /** Repeated requests answered with the stored signature. */
  reused: number;
  /** Requests the guard refused (an earlier step, round or height, or another value). */
  refused: number;
  /** Requests that failed (signing or persisting the record failed). */
  failed: number;
}

const FAILURES: ReadonlySet<SignRefusal> = new Set(['persist-failed', 'signing-failed']);

/**
 * The validator's signer: the double-sign guard (`checkSigning`, CometBFT FilePV rules) in front
 * of the keys, with its last-signed record made durable before any signature is returned.
 * Requests run one at a time, in the order they were made — a FALCON-1024 signature (~13 ms)
 * delays later requests but never the caller's event loop — so the persisted record only ever
 * moves forward.
 */
export class GuardedSigner {
  private queue: Promise<unknown> = Promise.resolve();
  private broken: Error | undefined;
  private closed = false;
  readonly counters: SignerCounters = { signed: 0, reused: 0, refused: 0, failed: 0 };

  private constructor(
    private readonly chainId: string,
    readonly address: string,
    private readonly keys: ValidatorKeys,
    private readonly path: string,
    private last: LastSigned | null,
    private fence: number | null,
    private readonly now: () => number,
    private readonly mayStillSign: (() => boolean) | undefined,
  ) {}

  /**
   * Loads the last-signed record or fence (throws `SIGNER_STATE_CORRUPT` / `SIGNER_STATE_FOREIGN`).
   * Writes nothing. A signer with neither (`hasRecord()` false) signs like a new key; whether
   * that is safe is the driver's decision first (signer-state-missing.ts).
   */
  static async open(options: {
    readonly chainId: string;
    readonly address: string;
    readonly keys: ValidatorKeys;
    readonly path: string;
    readonly now: () => number;
    /** Asked synchronously before every signature; false refuses it (`not-holder`). */
    readonly mayStillSign?: () => boolean;
  }): Promise<GuardedSigner> {
    const record = await readSignerRecord(options.path, options.address);
    return new GuardedSigner(
      options.chainId,
      options.address,
      options.keys,
      options.path,
      record?.kind === 'signed' ? record.last : null,
      record?.kind === 'fence' ? record.fenceHeight : null,
      options.now,
      options.mayStillSign,
    );
  }

  /** The last thing this key signed, as persisted. */
  lastSigned(): LastSigned | null {
    return this.last;
  }

  /** Heights up to this one are refused (`fenced`); null when there is no fence. */
  fenceHeight(): number | null {
    return this.last === null ? this.fence : null;
  }

  /** Whether the signer-state file held a record or fence when opened, or one was written since. */
  hasRecord(): boolean {
    return this.last !== null || this.fence !== null;
  }

  /**
   * Persists a fence: nothing at a height up to `height` is signed by this key from now on,
   * across restarts, until a signature above it replaces the file. Only for a signer with no
   * record (throws `SIGNER_STATE_WRITE_FAILED` when the file cannot be written).
   */
  setFence(height: number): void {
    if (this.hasRecord()) throw new RangeError('the signer has a record already');
    if (!Number.isSafeInteger(height) || height < 0) {
      throw new RangeError(`a fence height must be a non-negative integer, got ${height}`);
    }
    writeSignerFence(this.path, this.address, height);
    this.fence = height;
  }

  signVote(request: VoteRequest): Promise<SignOutcome<Vote>> {
    return this.serially(() => this.voteNow(request));
  }

  signProposal(request: ProposalRequest, blockHash: Uint8Array): Promise<SignOutcome<Proposal>> {
    return this.serially(() => this.proposalNow(request, blockHash));
  }

  /** Resolves once every request made so far has been answered. */
  async idle(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  /** Refuses every later request; requests already running finish (see `idle`). */
  close(): void {
    this.closed = true;
  }

  private serially<T>(work: () => Promise<SignOutcome<T>>): Promise<SignOutcome<T>> {
    const run = this.queue.then(
      () => work(),
      () => work(),
    );
    this.queue = run;
    return run;
  }

  private refuse<T>(reason: SignRefusal): SignOutcome<T> {
    if (FAILURES.has(reason)) this.counters.failed++;
    else if (reason !== 'closed') this.counters.refused++;
    return { kind: 'refused', reason };
  }

  private guard(
    height: number,
    round: number,
    step: SigningStep,
    blockHash: Uint8Array | null,
  ): GuardDecision<LastSigned['signed']> | SignRefusal {
    if (this.closed) return 'closed';
    if (this.broken !== undefined) return 'persist-failed';
    if (this.mayStillSign !== undefined && !this.mayStillSign()) return 'not-holder';
    if (this.last === null && this.fence !== null && height <= this.fence) return 'fenced';
    return checkSigning(this.last, { height, round, step, blockHash });
  }

  private async voteNow(request: VoteRequest): Promise<SignOutcome<Vote>> {
    const decision = this.guard(request.height, request.round, request.type, request.blockHash);
    if (typeof decision === 'string') return this.refuse(decision);
    if (decision.kind === 'refuse') return this.refuse(decision.reason);
    if (decision.kind === 'reuse') {
      if (decision.signed.kind !== 'vote') return this.refuse('conflict');
      const vote = decision.signed.vote;
      if (!request.pq || vote.pqSignature !== undefined || vote.blockHash === null) {
        this.counters.reused++;
        return { kind: 'reused', value: vote };
      }
      // The same vote without its FALCON attestation (signed before `pq` was asked for): the
      // attestation covers height, round and block only, so adding it signs nothing new.
      return this.finishVote(request, vote);
    }
    let vote: Vote;
    try {
      vote = signVote(this.chainId, request, this.now(), this.keys.privateKey);
    } catch {
      return this.refuse('signing-failed');
    }
    return this.finishVote(request, vote);
  }

  private async finishVote(request: VoteRequest, unsigned: Vote): Promise<SignOutcome<Vote>> {
    let vote = unsigned;
    if (request.pq) {
      const message = precommitPqMessage(this.chainId, vote);
      if (message !== null) {
        try {
          const pqSignature = await this.keys.falcon.sign(message, this.keys.falconSecretKey);
          vote = { ...vote, pqSignature };
        } catch {
          return this.refuse('signing-failed');
        }
      }
    }
    if (this.closed) return this.refuse('closed');
    const persisted = await this.persist({
      height: vote.height,
      round: vote.round,
      step: vote.type,
      blockHash: vote.blockHash,
      signed: { kind: 'vote', vote },
    });
    if (!persisted) return this.refuse('persist-failed');
    this.counters.signed++;
    return { kind: 'signed', value: vote };
  }

  private async proposalNow(
    request: ProposalRequest,
    blockHash: Uint8Array,
  ): Promise<SignOutcome<Proposal>> {
    const decision = this.guard(request.height, request.round, 'propose', blockHash);
    if (typeof decision === 'string') return this.refuse(decision);
    if (decision.kind === 'refuse') return this.refuse(decision.reason);
    if (decision.kind === 'reuse') {
      const signed = decision.signed;
      if (signed.kind !== 'proposal') return this.refuse('conflict');
      if (signed.validRound !== request.validRound) return this.refuse('valid-round-conflict');
      this.counters.reused++;
      // Rebuilt around the request's own block object: the engine matches its request by identity.
      return { kind: 'reused', value: { ...request, signature: signed.signature } };
    }
    let proposal: Proposal;
    try {
      proposal = signProposal(this.chainId, request, this.keys.privateKey, blockHash);
    } catch {
      return this.refuse('signing-failed');
    }
    const persisted = await this.persist({
      height: request.height,
      round: request.round,
      step: 'propose',
      blockHash,
      signed: { kind: 'proposal', validRound: request.validRound, signature: proposal.signature },
    });
    if (!persisted) return this.refuse('persist-failed');
    this.counters.signed++;
    return { kind: 'signed', value: proposal };
  }

  private async persist(record: LastSigned): Promise<boolean> {
    try {
      await writeSignerState(this.path, this.address, record);
      this.last = record;
      return true;
    } catch (error) {
      // Whether the rename happened is unknown: never sign again in this process.
      this.broken = error as Error;
      return false;
    }
  }
}
