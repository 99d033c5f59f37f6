import type { KeyObject } from 'node:crypto';
import { buildBlock, type BlockContent, type BlockTemplate } from '../../../src/consensus/block.js';
import { checkSigning, type SignedRecord } from '../../../src/consensus/double-sign-guard.js';
import type { ConsensusAction, ConsensusEvent } from '../../../src/consensus/events.js';
import {
  checkValidatorUpdates,
  genesisContext,
  nextHeightContext,
  type HeightContext,
} from '../../../src/consensus/height-context.js';
import { precommitPqMessage, signProposal, signVote } from '../../../src/consensus/signer.js';
import type { ConsensusConfig, TendermintState } from '../../../src/consensus/state.js';
import { startTendermint, step } from '../../../src/consensus/tendermint.js';
import type { Block, Proposal, QuorumCertificate, Vote } from '../../../src/consensus/types.js';
import type { MessageRejection } from '../../../src/consensus/verify.js';
import {
  restoreTendermint,
  walRecord,
  type ConsensusWalRecord,
} from '../../../src/consensus/wal.js';
import { SimApplication } from './application.js';
import type { ByzantineBehaviour } from './options.js';
import type { Prng } from './prng.js';
import type { SimProofs } from './proofs.js';
import type { ValidatorPlan } from './validator-plan.js';

export type ConsensusMessage =
  | { readonly kind: 'proposal'; readonly proposal: Proposal }
  | { readonly kind: 'vote'; readonly vote: Vote };

/**
 * What nodes send each other: consensus messages, and a status announcing the sender's height
 * (Tendermint's NewRoundStep), sent by a node that knows it is behind so peers send it commits.
 */
export type WireMessage = ConsensusMessage | { readonly kind: 'status'; readonly height: number };

export function messageHeight(message: WireMessage): number {
  switch (message.kind) {
    case 'proposal':
      return message.proposal.height;
    case 'vote':
      return message.vote.height;
    case 'status':
      return message.height;
  }
}

export interface StoredBlock {
  readonly block: Block;
  readonly commit: QuorumCertificate;
  readonly proposal: Proposal;
}

export interface ValidatorKeys {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  readonly address: string;
  readonly pq?: { readonly publicKey: Uint8Array; readonly secretKey: Uint8Array };
  /** With consensus proofs: the root of the validator's PoSpace plot (proofs.ts). */
  readonly storageRoot?: Uint8Array;
}

/** What a node needs from the simulated world. */
export interface World {
  readonly chainId: string;
  readonly genesis: { readonly hash: Uint8Array; readonly time: number };
  readonly gossipIntervalMs: number;
  readonly validatorCount: number;
  /** The run's validator-set changes, if any (carried by the application's blocks). */
  readonly validatorPlan: ValidatorPlan | undefined;
  /** The consensus-proof code of runs with `options.proofs` (proofs.ts). */
  readonly proofs: SimProofs | undefined;
  /** Correct validators check the proof of every proposal (off only in the negative control). */
  readonly checkProofs: boolean;
  now(): number;
  localTime(node: number): number;
  /** Global duration of `localMs` on this node's clock. */
  globalDuration(node: number, localMs: number): number;
  send(from: number, to: number, message: WireMessage): void;
  scheduleTimeout(node: SimNode, action: ConsensusAction & { type: 'schedule-timeout' }): void;
  scheduleAppAnswer(node: SimNode, event: ConsensusEvent): void;
  /** Calls `node.sendCatchUp()` a little later. */
  scheduleCatchUp(node: SimNode): void;
  pqSign(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array>;
  onCommit(node: SimNode, stored: StoredBlock): void;
  /** A node has the context of a new height (after a commit, or rebuilt at boot). */
  onContext(node: SimNode, context: HeightContext): void;
  onSigned(node: SimNode, vote: Vote): void;
  onRejected(
    node: SimNode,
    reason: MessageRejection,
    from: number,
    message: ConsensusMessage,
  ): void;
  onEvidence(node: SimNode): void;
  /** A node refused a proposal whose consensus proof failed its check. */
  onProofRejected(node: SimNode, error: Error): void;
  /** A faulty node did something faulty (counted per behaviour). */
  onFault(behaviour: string): void;
  trace(line: string): void;
}

/** Hooks a faulty node's adversary uses to change what the node sends. */
export interface Adversary {
  /** Deliveries replacing a broadcast, or undefined to broadcast normally. */
  broadcast(
    node: SimNode,
    message: ConsensusMessage,
  ): readonly { to: number; message: WireMessage }[] | undefined;
  /** Handles getValue() instead of the application; true when it did. */
  requestValue(node: SimNode, action: ConsensusAction & { type: 'request-value' }): boolean;
  received(node: SimNode, message: ConsensusMessage): void;
  gossip(node: SimNode): void;
}

/**
 * One validator process in the simulation: the pure engine plus the driver around it — the
 * double-sign guard, the write-ahead log, the block store and the application. Durable fields
 * survive a crash; the rest is rebuilt on restart.
 */
export class SimNode {
  state: TendermintState | null = null;
  incarnation = 0;
  // Durable: what a disk would hold.
  readonly store: StoredBlock[] = [];
  wal: ConsensusWalRecord | null = null;
  signerRecord: SignedRecord<Vote | Proposal> | null = null;
  // Volatile.
  app: SimApplication;
  context: HeightContext | null = null;
  private buffered: { from: number; message: ConsensusMessage }[] = [];
  private readonly local: { event: ConsensusEvent; from: number }[] = [];
  /** Height at the last gossip tick: a node still at it re-sends its messages. */
  private lastGossipHeight = 0;
  /** Highest height each peer has shown in a message. */
  private readonly peerHeights = new Map<number, number>();
  /** Peers that sent a message of a height this node has committed, with that height. */
  private readonly stalePeers = new Map<number, number>();
  private catchUpScheduled = false;

  constructor(
    readonly index: number,
    readonly keys: ValidatorKeys,
    readonly config: ConsensusConfig,
    readonly world: World,
    readonly prng: Prng,
    readonly behaviour: ByzantineBehaviour | undefined,
    readonly adversary: Adversary | undefined,
  ) {
    this.app = new SimApplication(world.validatorPlan, world.proofs !== undefined);
  }

  get alive(): boolean {
    return this.state !== null;
  }

  get height(): number {
    return this.store.length;
  }

  /** Boot, or reboot after a crash: replay the store into the application, then the WAL. */
  async boot(genesisValidators: HeightContext['schedule']['validators']): Promise<void> {
    this.app = new SimApplication(this.world.validatorPlan, this.world.proofs !== undefined);
    let context = genesisContext(genesisValidators, this.world.genesis);
    for (const stored of this.store) {
      this.app.execute(stored.block);
      context = nextHeightContext(
        context,
        stored.block,
        stored.commit,
        this.app.updatesOf(stored.block),
      );
    }
    this.context = context;
    this.world.onContext(this, context);
    this.buffered = [];
    this.lastGossipHeight = 0;
    this.peerHeights.clear();
    this.stalePeers.clear();
    this.catchUpScheduled = false;
    const result =
      this.wal !== null && this.wal.height === context.height
        ? restoreTendermint(this.config, context, this.wal)
        : startTendermint(this.config, context);
    this.state = result.state;
    this.wal = walRecord(result.state);
    this.world.trace(`boot ${this.index} h=${context.height} r=${result.state.round}`);
    for (const action of result.actions) await this.execute(action);
    await this.drain();
  }

  crash(): void {
    this.state = null;
    this.context = null;
    this.incarnation++;
    this.local.length = 0;
    this.buffered = [];
    this.world.trace(`crash ${this.index}`);
  }

  /** A message from the network. */
  async receive(from: number, message: WireMessage): Promise<void> {
    if (this.state === null) return;
    const height = messageHeight(message);
    if (height > (this.peerHeights.get(from) ?? 0)) this.peerHeights.set(from, height);
    if (height < this.state.height) {
      // The sender may be behind: unless it shows a newer height soon, send it commits.
      const stale = this.stalePeers.get(from);
      if (stale === undefined || height < stale) this.stalePeers.set(from, height);
      if (!this.catchUpScheduled) {
        this.catchUpScheduled = true;
        this.world.scheduleCatchUp(this);
      }
    }
    if (message.kind === 'status') return;
    this.adversary?.received(this, message);
    if (height > this.state.height) {
      // The next height's messages wait until this node gets there; later ones are gossiped again.
      if (
        height === this.state.height + 1 &&
        this.buffered.length < 16 * this.world.validatorCount
      ) {
        this.buffered.push({ from, message });
      }
      return;
    }
    if (height < this.state.height) return;
    await this.process(
      message.kind === 'proposal'
        ? { type: 'proposal-received', proposal: message.proposal }
        : { type: 'vote-received', vote: message.vote },
      from,
    );
  }

  async fire(event: ConsensusEvent): Promise<void> {
    if (this.state === null) return;
    await this.process(event, this.index);
  }

  /** Steps the engine, logs the new state (WAL) before acting, then runs the actions. */
  private async process(event: ConsensusEvent, from: number): Promise<void> {
    this.local.push({ event, from });
    await this.drain();
  }

  private currentFrom = -1;
  private currentMessage: ConsensusMessage | null = null;

  private async drain(): Promise<void> {
    while (this.local.length > 0 && this.state !== null) {
      const { event, from } = this.local.shift()!;
      this.currentFrom = from;
      this.currentMessage =
        event.type === 'proposal-received'
          ? { kind: 'proposal', proposal: event.proposal }
          : event.type === 'vote-received'
            ? { kind: 'vote', vote: event.vote }
            : null;
      const result = step(this.state, event);
      this.state = result.state;
      this.wal = walRecord(result.state);
      for (const action of result.actions) await this.execute(action);
    }
  }

  private async execute(action: ConsensusAction): Promise<void> {
    const world = this.world;
    switch (action.type) {
      case 'broadcast-proposal':
        this.broadcast({ kind: 'proposal', proposal: action.proposal });
        return;
      case 'broadcast-vote':
        this.broadcast({ kind: 'vote', vote: action.vote });
        return;
      case 'schedule-timeout':
        world.scheduleTimeout(this, action);
        return;
      case 'request-value': {
        if (this.adversary?.requestValue(this, action)) return;
        const content = this.app.buildContent(action.template, this.prng);
        world.scheduleAppAnswer(this, {
          type: 'value-proposed',
          height: action.height,
          round: action.round,
          block: this.buildValue(action.template, content),
        });
        return;
      }
      case 'validate-value': {
        // The node's checks before its prevote (driver/block-checks.ts): the proposer's parts of
        // the consensus proof, then the application.
        const proofError =
          world.proofs !== undefined && world.checkProofs
            ? world.proofs.checkProposal(this.context!, action.block)
            : undefined;
        if (proofError !== undefined) world.onProofRejected(this, proofError);
        world.scheduleAppAnswer(this, {
          type: 'value-validated',
          height: action.height,
          blockHash: action.blockHash,
          valid:
            proofError === undefined &&
            this.app.validate(action.block) &&
            checkValidatorUpdates(this.context!, this.app.updatesOf(action.block)) === undefined,
        });
        return;
      }
      case 'sign-vote':
        await this.signVote(action.request);
        return;
      case 'sign-proposal':
        this.signProposal(action.request, action.blockHash);
        return;
      case 'commit-block':
        this.commit({ block: action.block, commit: action.commit, proposal: action.proposal });
        return;
      case 'evidence-found':
        this.app.addEvidence(action.evidence);
        world.onEvidence(this);
        return;
      case 'message-rejected':
        if (this.currentMessage !== null) {
          world.onRejected(this, action.reason, this.currentFrom, this.currentMessage);
        }
        return;
    }
  }

  /**
   * The consensus-proof bytes this validator attaches to a block on `template` with
   * `transactions` (empty without `options.proofs`).
   */
  proveBlock(template: BlockTemplate, transactions: readonly Uint8Array[]): Uint8Array {
    const proofs = this.world.proofs;
    return proofs === undefined
      ? new Uint8Array(0)
      : proofs.build(this.keys, template, transactions);
  }

  /** The block of `content` on `template`, with this validator's proof attached. */
  buildValue(template: BlockTemplate, content: BlockContent): Block {
    return buildBlock(template, {
      ...content,
      consensusProof: this.proveBlock(template, content.transactions),
    });
  }

  /** The signer: double-sign guard first, its record durable before the signature leaves. */
  private async signVote(request: Parameters<typeof signVote>[1]): Promise<void> {
    const decision = checkSigning(this.signerRecord, {
      height: request.height,
      round: request.round,
      step: request.type,
      blockHash: request.blockHash,
    });
    if (decision.kind === 'refuse') {
      this.world.trace(
        `refuse ${this.index} ${request.type} h=${request.height} r=${request.round} ${decision.reason}`,
      );
      return;
    }
    let vote: Vote;
    if (decision.kind === 'reuse') {
      vote = decision.signed as Vote;
    } else {
      vote = signVote(
        this.world.chainId,
        request,
        this.world.localTime(this.index),
        this.keys.privateKey,
      );
      if (request.pq && this.keys.pq !== undefined) {
        const message = precommitPqMessage(this.world.chainId, vote);
        if (message !== null) {
          vote = { ...vote, pqSignature: await this.world.pqSign(message, this.keys.pq.secretKey) };
        }
      }
      this.signerRecord = {
        height: request.height,
        round: request.round,
        step: request.type,
        blockHash: request.blockHash,
        signed: vote,
      };
      this.world.onSigned(this, vote);
    }
    this.local.push({ event: { type: 'vote-signed', vote }, from: this.index });
  }

  private signProposal(request: Parameters<typeof signProposal>[1], hash: Uint8Array): void {
    const decision = checkSigning(this.signerRecord, {
      height: request.height,
      round: request.round,
      step: 'propose',
      blockHash: hash,
    });
    if (decision.kind === 'refuse') {
      this.world.trace(
        `refuse ${this.index} proposal h=${request.height} r=${request.round} ${decision.reason}`,
      );
      return;
    }
    let proposal: Proposal;
    if (decision.kind === 'reuse') {
      proposal = decision.signed as Proposal;
    } else {
      proposal = signProposal(this.world.chainId, request, this.keys.privateKey, hash);
      this.signerRecord = {
        height: request.height,
        round: request.round,
        step: 'propose',
        blockHash: hash,
        signed: proposal,
      };
    }
    this.local.push({ event: { type: 'proposal-signed', proposal }, from: this.index });
  }

  /** The block is durable before anything else happens; then the next height starts. */
  private commit(stored: StoredBlock): void {
    this.store.push(stored);
    this.world.onCommit(this, stored);
    this.app.execute(stored.block);
    const context = nextHeightContext(
      this.context!,
      stored.block,
      stored.commit,
      this.app.updatesOf(stored.block),
    );
    this.context = context;
    this.world.onContext(this, context);
    // Behind its peers (it decided from a catch-up): say so, and they send the next commit.
    if (
      this.behaviour !== 'silent' &&
      [...this.peerHeights.values()].some((h) => h > context.height)
    ) {
      for (let to = 0; to < this.world.validatorCount; to++) {
        if (to !== this.index)
          this.world.send(this.index, to, { kind: 'status', height: context.height });
      }
    }
    this.local.push({ event: { type: 'start-height', context }, from: this.index });
    const waiting = this.buffered;
    this.buffered = [];
    for (const { from, message } of waiting) {
      if (messageHeight(message) !== context.height) continue;
      this.local.push({
        event:
          message.kind === 'proposal'
            ? { type: 'proposal-received', proposal: message.proposal }
            : { type: 'vote-received', vote: message.vote },
        from,
      });
    }
  }

  broadcast(message: ConsensusMessage): void {
    const custom = this.adversary?.broadcast(this, message);
    if (custom !== undefined) {
      for (const { to, message: sent } of custom) this.world.send(this.index, to, sent);
      return;
    }
    for (let to = 0; to < this.world.validatorCount; to++) {
      if (to !== this.index) this.world.send(this.index, to, message);
    }
  }

  /**
   * Catch-up: a peer that sent a message of a height this node has committed, and has shown
   * nothing newer since, gets that height's deciding proposal and commit, which let it decide by
   * line 49.
   */
  sendCatchUp(): void {
    this.catchUpScheduled = false;
    if (this.state === null || this.behaviour === 'silent') return;
    for (const [peer, height] of this.stalePeers) {
      if ((this.peerHeights.get(peer) ?? 0) > height) continue;
      const stored = this.store[height - 1];
      if (stored === undefined) continue;
      this.world.send(this.index, peer, { kind: 'proposal', proposal: stored.proposal });
      for (const vote of stored.commit.precommits) {
        this.world.send(this.index, peer, { kind: 'vote', vote });
      }
    }
    this.stalePeers.clear();
  }

  /**
   * Gossip: a node that is still at the height it was at on the last tick sends again every
   * message it signed at this height and the proposals it holds for the current round, so
   * every correct node eventually hears every correct node once the network heals (the paper's
   * gossip assumption, §2) — including the prevotes of an earlier round that line 28 needs.
   */
  gossip(): void {
    const state = this.state;
    if (state === null) return;
    this.adversary?.gossip(this);
    this.sendCatchUp();
    if (state.height !== this.lastGossipHeight) {
      this.lastGossipHeight = state.height;
      return;
    }
    if (
      this.behaviour !== 'silent' &&
      !state.context.schedule.validators.indexOf.has(this.keys.address)
    ) {
      // Not a validator of this height (not yet added, or removed): it sends no votes that
      // would show it is behind, so it says its height, and peers ahead send it commits.
      for (let to = 0; to < this.world.validatorCount; to++) {
        if (to !== this.index)
          this.world.send(this.index, to, { kind: 'status', height: state.height });
      }
    }
    for (const own of state.ownProposals.values()) {
      if (own.signed !== null) this.broadcast({ kind: 'proposal', proposal: own.signed });
    }
    for (const received of state.proposals.get(state.round) ?? []) {
      if (received.proposal.proposer !== this.keys.address) {
        this.broadcast({ kind: 'proposal', proposal: received.proposal });
      }
    }
    for (const own of state.ownVotes.values()) {
      if (own.signed !== null) this.broadcast({ kind: 'vote', vote: own.signed });
    }
  }
}
