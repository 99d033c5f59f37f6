import { toHex } from '../crypto/bytes.js';
import { blockTemplate, checkBlock, checkBlockBody } from './block.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { duplicateVoteEvidence, evidenceKey } from './evidence.js';
import type { ConsensusAction, StepResult } from './events.js';
import type { HeightContext } from './height-context.js';
import { blockHash } from './messages.js';
import { proposerAt } from './proposer.js';
import {
  DEFAULT_MAX_FUTURE_ROUNDS,
  initialState,
  ownVoteKey,
  proposalRoundLead,
  type Decision,
  type ReceivedProposal,
  type TendermintState,
  type Validity,
} from './state.js';
import { timeoutDuration } from './timeouts.js';
import type { Block, Proposal, RoundStep, TimeoutStep, Vote, VoteType } from './types.js';
import { applyUponRules } from './upon-rules.js';
import { votingPower } from './validator-set.js';
import {
  checkProposal,
  checkVote,
  isWellFormedVote,
  MessageRejection,
  type VerificationContext,
} from './verify.js';
import {
  addVote,
  classifyVote,
  emptyVoteSet,
  firstVote,
  hasOneThirdFor,
  NIL_KEY,
  sameValue,
  valueKey,
} from './vote-set.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The state's maps and sets: copied on first write within a step. */
type CollectionKey = {
  [K in keyof TendermintState]: TendermintState[K] extends
    ReadonlyMap<unknown, unknown> | ReadonlySet<unknown>
    ? K
    : never;
}[keyof TendermintState];

type Writable<T> =
  T extends ReadonlyMap<infer A, infer B>
    ? Map<A, B>
    : T extends ReadonlySet<infer A>
      ? Set<A>
      : never;

/**
 * The work of one `step` (tendermint.ts): a shallow copy of the state whose collections are
 * copied on first write, and the actions emitted so far. It takes in messages and answers,
 * and runs StartRound, the timeouts and the broadcasts of Algorithm 1; the upon-rules are in
 * upon-rules.ts. The state it was built from is never changed.
 */
export class Transition {
  private readonly s: Mutable<TendermintState>;
  private readonly actions: ConsensusAction[] = [];
  private readonly copied = new Set<string>();

  constructor(state: TendermintState) {
    this.s = { ...state };
  }

  finish(): StepResult<TendermintState> {
    return { state: this.s, actions: this.actions };
  }

  emit(action: ConsensusAction): void {
    this.actions.push(action);
  }

  reject(reason: MessageRejection, height?: number, error?: ConsensusError): void {
    this.emit({
      type: 'message-rejected',
      reason,
      ...(height === undefined ? {} : { height }),
      ...(error === undefined ? {} : { error }),
    });
  }

  get state(): TendermintState {
    return this.s;
  }

  /** The collection `key`, copied the first time this step writes to it. */
  private writable<K extends CollectionKey>(key: K): Writable<TendermintState[K]> {
    if (!this.copied.has(key)) {
      const current: unknown = this.s[key];
      const copy = current instanceof Map ? new Map(current) : new Set(current as Set<unknown>);
      (this.s as Record<CollectionKey, unknown>)[key] = copy;
      this.copied.add(key);
    }
    return this.s[key] as Writable<TendermintState[K]>;
  }

  private get validators() {
    return this.s.context.schedule.validators;
  }

  get totalPower(): number {
    return this.validators.totalPower;
  }

  private verification(): VerificationContext {
    return {
      chainId: this.s.config.chainId,
      validators: this.validators,
      verifier: this.s.config.verifier,
      requirePq: this.s.config.requirePq,
    };
  }

  /** `maxProposalRoundLead`, checked when the state was made (state.ts). */
  private get roundLead(): number {
    return proposalRoundLead(this.s.config);
  }

  private isSelfValidator(): boolean {
    const self = this.s.config.self;
    return self !== null && this.validators.indexOf.has(self);
  }

  // --- Heights and rounds -------------------------------------------------------------------

  /** Lines 52-54: the next height starts with fresh variables and StartRound(0). */
  startHeight(context: HeightContext): void {
    if (context.height <= this.s.height) {
      throw new ConsensusError(
        ConsensusErrorCode.INVALID_CONFIG,
        'start-height must move to a later height',
        { height: context.height, current: this.s.height },
      );
    }
    Object.assign(this.s, initialState(this.s.config, context));
    this.copied.clear();
    this.startRound(0);
  }

  /** StartRound(round), lines 11-21. */
  startRound(round: number): void {
    this.s.round = round; // line 12
    this.s.step = 'propose'; // line 13
    // Line 21 schedules timeoutPropose for non-proposers; the proposer schedules it too, because
    // its getValue() is asynchronous here.
    this.scheduleTimeout('propose');
    const self = this.s.config.self;
    if (self === null || !this.isSelfValidator()) return;
    if (proposerAt(this.s.context.schedule, round).address !== self) return; // line 14
    if (this.s.validValue !== null) {
      this.propose(this.s.validValue, this.s.validRound); // lines 15-16, 19
    } else if (!this.s.valueRequests.has(round)) {
      // Line 18: proposal ← getValue(); the answer arrives as `value-proposed`.
      this.writable('valueRequests').add(round);
      this.emit({
        type: 'request-value',
        height: this.s.height,
        round,
        template: blockTemplate(this.s.config.chainId, this.s.context, self),
      });
    }
  }

  scheduleTimeout(stepName: TimeoutStep): void {
    this.emit({
      type: 'schedule-timeout',
      height: this.s.height,
      round: this.s.round,
      step: stepName,
      durationMs: timeoutDuration(this.s.config.timeouts, stepName, this.s.round),
    });
  }

  /** Line 19: broadcast ⟨PROPOSAL, h_p, round_p, proposal, validRound_p⟩, once signed. */
  private propose(block: Block, validRound: number): void {
    const round = this.s.round;
    const self = this.s.config.self;
    if (self === null || this.s.ownProposals.has(round)) return; // one proposal per round
    const request = { height: this.s.height, round, block, validRound, proposer: self };
    const hash = blockHash(block.header);
    this.writable('ownProposals').set(round, { request, blockHash: hash, signed: null });
    this.emit({ type: 'sign-proposal', request, blockHash: hash });
  }

  /**
   * broadcast ⟨PREVOTE|PRECOMMIT, h_p, round_p, value⟩: asks the signer, and broadcasts when the
   * signed vote comes back. At most one vote per round and type is ever requested.
   */
  castVote(type: VoteType, value: ReceivedProposal | null): void {
    const self = this.s.config.self;
    if (self === null || !this.isSelfValidator()) return;
    const key = ownVoteKey(this.s.round, type);
    if (this.s.ownVotes.has(key)) return;
    const blockHashValue = value === null ? null : value.hash;
    // A vote's timestamp is after the parent's time, and after the time of the block it is for,
    // so the BFT time of the next block grows (commit.ts, bftTime).
    const parentTime = this.s.context.parent.time;
    const blockTime = value === null ? parentTime : value.proposal.block.header.time;
    const request = {
      type,
      height: this.s.height,
      round: this.s.round,
      blockHash: blockHashValue,
      validator: self,
      notBefore: Math.max(parentTime, blockTime) + 1,
      pq: this.s.config.requirePq && type === 'precommit' && blockHashValue !== null,
    };
    this.writable('ownVotes').set(key, { request, signed: null });
    this.emit({ type: 'sign-vote', request });
  }

  /**
   * After a restart from the write-ahead log: in the propose step, StartRound's work is redone
   * (the timeout and, for the proposer, the proposal or the getValue() request whose answer was
   * lost); in later steps lines 34 and 47 schedule their timeouts again once their quorums are
   * seen again.
   */
  resumeRound(): void {
    if (this.s.step !== 'propose') return;
    if (this.s.valueRequests.has(this.s.round) && !this.s.ownProposals.has(this.s.round)) {
      this.writable('valueRequests').delete(this.s.round);
    }
    this.startRound(this.s.round);
  }

  // --- Incoming messages --------------------------------------------------------------------

  /**
   * Records a vote from the network (or this validator's own, once signed). Duplicates are
   * dropped before any signature check; a second, different vote of one validator at one
   * height/round/type becomes duplicate-vote evidence.
   */
  receiveVote(vote: Vote): boolean {
    if (!isWellFormedVote(vote)) {
      this.reject(MessageRejection.MALFORMED);
      return false;
    }
    if (vote.height !== this.s.height) {
      this.reject(MessageRejection.WRONG_HEIGHT, vote.height);
      return false;
    }
    const power = votingPower(this.validators, vote.validator);
    if (power === 0) {
      this.reject(MessageRejection.UNKNOWN_VALIDATOR, vote.height);
      return false;
    }
    const key = vote.type === 'prevote' ? 'prevotes' : 'precommits';
    const current = this.s[key].get(vote.round) ?? emptyVoteSet(vote.type, vote.height, vote.round);
    const classification = classifyVote(current, vote);
    if (classification === 'duplicate') return true;
    if (!this.futureRoundAllowed(vote.validator, vote.round)) {
      this.reject(MessageRejection.FUTURE_ROUND_LIMIT, vote.height);
      return false;
    }
    const rejection = checkVote(this.verification(), vote);
    if (rejection !== undefined) {
      this.reject(rejection, vote.height);
      return false;
    }
    if (classification === 'conflict') {
      const first = firstVote(current, vote.validator) as Vote;
      const evidence = duplicateVoteEvidence(first, vote);
      const offence = evidenceKey(evidence);
      if (!this.s.reportedEvidence.has(offence)) {
        this.writable('reportedEvidence').add(offence);
        this.emit({ type: 'evidence-found', evidence });
      }
      // An equivocator's further value is counted only if it may matter, which bounds memory.
      if (!this.admissible(vote.round, valueKey(vote.blockHash))) return true;
    }
    this.writable(key).set(vote.round, addVote(current, vote, power));
    return true;
  }

  /**
   * Values a second vote of one validator is counted for: nil, a block proposed in that round,
   * or a block with more than 1/3 of the power behind it (some correct validator voted for it).
   * There are few such values per round, however many a faulty validator signs.
   */
  private admissible(round: number, key: string): boolean {
    return (
      key === NIL_KEY ||
      this.proposalsIn(round).some((received) => received.key === key) ||
      hasOneThirdFor(this.s.prevotes.get(round), key, this.totalPower) ||
      hasOneThirdFor(this.s.precommits.get(round), key, this.totalPower)
    );
  }

  /**
   * A validator's messages may occupy at most `maxFutureRounds` rounds above round_p, so a
   * faulty one cannot fill memory with far-future rounds. Rounds at or below round_p are free:
   * this node has been there, and lines 28 and 49 may need them.
   */
  private futureRoundAllowed(validator: string, round: number): boolean {
    if (round <= this.s.round) return true;
    const limit = this.s.config.maxFutureRounds ?? DEFAULT_MAX_FUTURE_ROUNDS;
    const occupied = new Set<number>();
    for (const sets of [this.s.prevotes, this.s.precommits]) {
      for (const [r, set] of sets) {
        if (r > this.s.round && set.votes.has(validator)) {
          occupied.add(r);
        }
      }
    }
    for (const [r, proposals] of this.s.proposals) {
      if (r > this.s.round && proposals.some((p) => p.proposal.proposer === validator)) {
        occupied.add(r);
      }
    }
    return occupied.has(round) || occupied.size < limit;
  }

  /**
   * Records ⟨PROPOSAL, h_p, r, v, vr⟩ from proposer(h_p, r); one more than `maxProposalRoundLead`
   * rounds above round_p is refused unread (state.ts). The first proposal of a round is
   * kept; a different one from an equivocating proposer is kept only once more than 1/3 of the
   * power voted for its block in that round (some correct validator saw it), so memory stays
   * bounded while a value that may be decided is never missed.
   */
  receiveProposal(proposal: Proposal): boolean {
    if (
      typeof proposal !== 'object' ||
      proposal === null ||
      typeof proposal.block !== 'object' ||
      proposal.block === null ||
      typeof proposal.block.header !== 'object' ||
      proposal.block.header === null
    ) {
      this.reject(MessageRejection.MALFORMED);
      return false;
    }
    if (proposal.height !== this.s.height) {
      this.reject(
        MessageRejection.WRONG_HEIGHT,
        Number.isSafeInteger(proposal.height) ? proposal.height : undefined,
      );
      return false;
    }
    // Before anything that grows with the round: checkProposal computes proposer(h_p, r).
    if (typeof proposal.round === 'number' && proposal.round > this.s.round + this.roundLead) {
      this.reject(MessageRejection.PROPOSAL_ROUND_TOO_FAR, proposal.height);
      return false;
    }
    if (this.isKnownProposal(proposal)) return true;
    let hash: Uint8Array;
    try {
      hash = blockHash(proposal.block.header);
    } catch (error) {
      this.reject(
        MessageRejection.MALFORMED,
        proposal.height,
        new ConsensusError(ConsensusErrorCode.INVALID_BLOCK, 'block header cannot be encoded', {
          cause: (error as Error).message,
        }),
      );
      return false;
    }
    const rejection = checkProposal(this.verification(), this.s.context.schedule, proposal, hash);
    if (rejection !== undefined) {
      this.reject(rejection, proposal.height);
      return false;
    }
    // Refusals that read only the state (round, header hash, proposer) come before the body is
    // hashed: the proposer signs as many conflicting proposals as it likes, and each would
    // otherwise cost every validator the roots over a body of up to 16 MiB. None records
    // anything, and a body-swapped copy of a held proposal changes nothing by being ignored.
    const key = toHex(hash);
    const { round } = proposal;
    const existing = this.s.proposals.get(round) ?? [];
    if (existing.some((received) => received.key === key)) return true;
    if (
      existing.length > 0 &&
      !hasOneThirdFor(this.s.prevotes.get(round), key, this.totalPower) &&
      !hasOneThirdFor(this.s.precommits.get(round), key, this.totalPower)
    ) {
      this.reject(MessageRejection.CONFLICTING_PROPOSAL, proposal.height);
      return false;
    }
    if (!this.futureRoundAllowed(proposal.proposer, round)) {
      this.reject(MessageRejection.FUTURE_ROUND_LIMIT, proposal.height);
      return false;
    }
    // The signature covers the header only: a copy of a genuine proposal with another body
    // must leave no trace under its hash (no stored proposal, no cached validity), or the
    // genuine one arriving next would be taken for it and the block never voted for here.
    // Evidence over MAX_BLOCK_EVIDENCE is refused here too, before its root is computed.
    const bodyError = checkBlockBody(proposal.block);
    if (bodyError !== undefined) {
      this.reject(MessageRejection.MALFORMED, proposal.height, bodyError);
      return false;
    }
    this.writable('proposals').set(round, [...existing, { proposal, hash, key }]);
    this.requestValidity(proposal, hash, key);
    return true;
  }

  /**
   * A re-delivered proposal: same round, proposer, vr and signature as one already held. It is
   * ignored without hashing or verifying it — even a tampered copy, since ignoring changes
   * nothing.
   */
  private isKnownProposal(proposal: Proposal): boolean {
    if (!(proposal.signature instanceof Uint8Array)) return false;
    return this.proposalsIn(proposal.round).some(
      ({ proposal: held }) =>
        held.proposer === proposal.proposer &&
        held.validRound === proposal.validRound &&
        sameValue(held.signature, proposal.signature),
    );
  }

  /** valid(v): the consensus rules here, then the application's through `validate-value`. */
  private requestValidity(proposal: Proposal, hash: Uint8Array, key: string): void {
    if (this.s.validity.has(key)) return;
    const error = checkBlock(
      {
        chainId: this.s.config.chainId,
        verifier: this.s.config.verifier,
        requirePq: this.s.config.requirePq,
      },
      this.s.context,
      proposal.block,
    );
    if (error !== undefined) {
      this.writable('validity').set(key, 'invalid');
      this.reject(MessageRejection.INVALID_BLOCK, proposal.height, error);
      return;
    }
    this.writable('validity').set(key, 'pending');
    this.emit({
      type: 'validate-value',
      height: proposal.height,
      round: proposal.round,
      blockHash: hash,
      block: proposal.block,
    });
  }

  // --- Answers from the driver --------------------------------------------------------------

  /** Lines 57-67: OnTimeoutPropose, OnTimeoutPrevote, OnTimeoutPrecommit. */
  timeout(height: number, round: number, stepName: TimeoutStep): void {
    if (height !== this.s.height || round !== this.s.round) return;
    if (stepName === 'propose' && this.s.step === 'propose') {
      this.castVote('prevote', null); // line 59
      this.s.step = 'prevote'; // line 60
    } else if (stepName === 'prevote' && this.s.step === 'prevote') {
      this.castVote('precommit', null); // line 63
      this.s.step = 'precommit'; // line 64
    } else if (stepName === 'precommit' && this.s.step !== 'commit') {
      this.startRound(this.s.round + 1); // line 67
    }
  }

  /** The answer to getValue() (line 18), then line 19. */
  valueProposed(height: number, round: number, block: Block): void {
    if (
      height !== this.s.height ||
      round !== this.s.round ||
      !this.s.valueRequests.has(round) ||
      this.s.ownProposals.has(round) ||
      this.s.step === 'commit'
    ) {
      this.reject(MessageRejection.UNREQUESTED, height);
      return;
    }
    const error = checkBlock(
      {
        chainId: this.s.config.chainId,
        verifier: this.s.config.verifier,
        requirePq: this.s.config.requirePq,
      },
      this.s.context,
      block,
    );
    if (error !== undefined) {
      this.reject(MessageRejection.INVALID_BLOCK, height, error);
      return;
    }
    // The application built this block, so it is valid to it.
    this.writable('validity').set(toHex(blockHash(block.header)), 'valid');
    this.propose(block, -1);
  }

  valueValidated(height: number, hash: Uint8Array, valid: boolean): void {
    const key = hash instanceof Uint8Array ? toHex(hash) : '';
    if (height !== this.s.height || this.s.validity.get(key) !== 'pending') {
      this.reject(MessageRejection.UNREQUESTED, height);
      return;
    }
    this.writable('validity').set(key, valid === true ? 'valid' : 'invalid');
  }

  /** The signer's answer to `sign-vote`: record it like any vote, then broadcast it. */
  voteSigned(vote: Vote): void {
    const own =
      isWellFormedVote(vote) &&
      vote.height === this.s.height &&
      vote.validator === this.s.config.self
        ? this.s.ownVotes.get(ownVoteKey(vote.round, vote.type))
        : undefined;
    if (
      own === undefined ||
      own.signed !== null ||
      !sameValue(own.request.blockHash, vote.blockHash) ||
      vote.timestamp < own.request.notBefore
    ) {
      this.reject(MessageRejection.UNREQUESTED, vote?.height);
      return;
    }
    if (!this.receiveVote(vote)) return;
    this.writable('ownVotes').set(ownVoteKey(vote.round, vote.type), { ...own, signed: vote });
    this.emit({ type: 'broadcast-vote', vote });
  }

  /** The signer's answer to `sign-proposal`: record it like any proposal, then broadcast it. */
  proposalSigned(proposal: Proposal): void {
    const own =
      typeof proposal === 'object' && proposal !== null && proposal.height === this.s.height
        ? this.s.ownProposals.get(proposal.round)
        : undefined;
    if (
      own === undefined ||
      own.signed !== null ||
      proposal.block !== own.request.block ||
      proposal.validRound !== own.request.validRound
    ) {
      this.reject(MessageRejection.UNREQUESTED, proposal?.height);
      return;
    }
    if (!this.receiveProposal(proposal)) return;
    this.writable('ownProposals').set(proposal.round, { ...own, signed: proposal });
    this.emit({ type: 'broadcast-proposal', proposal });
  }

  // --- What the upon-rules change (upon-rules.ts) -------------------------------------------

  /** Runs the upon-rules until none is enabled (upon-rules.ts). */
  applyRules(): void {
    applyUponRules(this);
  }

  setStep(stepName: RoundStep): void {
    this.s.step = stepName;
  }

  /** Records that a "for the first time" rule fired (`line/round`). */
  markFired(mark: string): void {
    this.writable('fired').add(mark);
  }

  /** Lines 38-39. */
  lock(value: Block, round: number): void {
    this.s.lockedValue = value;
    this.s.lockedRound = round;
  }

  /** Lines 42-43. */
  setValidValue(value: Block, round: number): void {
    this.s.validValue = value;
    this.s.validRound = round;
  }

  /** Line 51: decision_p[h_p] = v, handed to the driver to commit. */
  decide(decision: Decision): void {
    this.s.decision = decision;
    this.s.step = 'commit';
    this.emit({ type: 'commit-block', ...decision });
  }

  // --- Reading the message log --------------------------------------------------------------

  proposalsIn(round: number): readonly ReceivedProposal[] {
    return this.s.proposals.get(round) ?? [];
  }

  findProposal(round: number, key: string): ReceivedProposal | undefined {
    return this.proposalsIn(round).find((received) => received.key === key);
  }

  validityOf(key: string): Validity | undefined {
    return this.s.validity.get(key);
  }

  lockedOn(key: string): boolean {
    return this.s.lockedValue !== null && toHex(blockHash(this.s.lockedValue.header)) === key;
  }
}
