import { buildBlock, type BlockTemplate } from '../../../src/consensus/block.js';
import type { ConsensusAction } from '../../../src/consensus/events.js';
import { blockHash } from '../../../src/consensus/messages.js';
import { signProposal, signVote } from '../../../src/consensus/signer.js';
import type { Block, Proposal, Vote } from '../../../src/consensus/types.js';
import { forgeValue, PROOF_FORGERIES } from './bad-proof.js';
import type { ByzantineBehaviour } from './options.js';
import type { Prng } from './prng.js';
import { stampTransaction } from './proofs.js';
import {
  messageHeight,
  type Adversary,
  type ConsensusMessage,
  type SimNode,
  type WireMessage,
} from './node.js';

type Delivery = { to: number; message: WireMessage };

/**
 * The faulty validators. Each runs the honest engine (so it follows the chain) and the adversary
 * changes what it sends: it signs with its key directly, bypassing the double-sign guard.
 * The fork coalition shares its members' keys, as colluding validators would.
 */
export class ByzantineAdversary implements Adversary {
  private readonly replayLog = new Map<number, ConsensusMessage[]>();
  private readonly attacked = new Set<string>();
  /** Proposals each bad-proof proposer has forged (it takes the proof parts in turn). */
  private readonly forgeries = new Map<number, number>();

  constructor(
    private readonly nodes: () => readonly SimNode[],
    private readonly prng: Prng,
    /** For the fork coalition: the two groups of correct validators it shows different blocks. */
    private readonly forkGroups: readonly (readonly number[])[],
  ) {}

  private behaviour(node: SimNode): ByzantineBehaviour {
    return node.behaviour as ByzantineBehaviour;
  }

  private peers(node: SimNode): number[] {
    const peers: number[] = [];
    for (let i = 0; i < node.world.validatorCount; i++) if (i !== node.index) peers.push(i);
    return peers;
  }

  /** The peers in two disjoint random groups, the first of `size` (default half). */
  private split(node: SimNode, size?: number): [number[], number[]] {
    const shuffled = this.prng.shuffle(this.peers(node));
    const cut = size ?? Math.ceil(shuffled.length / 2);
    return [shuffled.slice(0, cut), shuffled.slice(cut)];
  }

  broadcast(node: SimNode, message: ConsensusMessage): readonly Delivery[] | undefined {
    const deliveries = this.misbehave(node, message);
    if (deliveries !== undefined) node.world.onFault(this.behaviour(node));
    return deliveries;
  }

  private misbehave(node: SimNode, message: ConsensusMessage): readonly Delivery[] | undefined {
    switch (this.behaviour(node)) {
      case 'silent':
        return [];
      case 'equivocating-proposer':
        return message.kind === 'proposal' ? this.equivocate(node, message.proposal) : undefined;
      case 'double-voter':
        return message.kind === 'vote' ? this.doubleVote(node, message.vote) : undefined;
      case 'forger':
        return this.forge(node, message);
      case 'fork-coalition':
        return this.forkAttack(node, message);
      case 'lock-breaker':
        return message.kind === 'vote'
          ? this.doubleVote(node, message.vote, message.vote.type === 'precommit' ? 1 : undefined)
          : this.freshProposal(node, message.proposal);
      default:
        return undefined;
    }
  }

  requestValue(node: SimNode, action: ConsensusAction & { type: 'request-value' }): boolean {
    if (this.behaviour(node) === 'bad-proof-proposer') {
      this.proposeBadProof(node, action);
      return true;
    }
    if (this.behaviour(node) !== 'invalid-proposer') return false;
    node.world.onFault('invalid-proposer');
    if (this.prng.chance(0.5)) {
      // A block the application rejects (a marked transaction; with proofs, a stamped one under
      // a real proof): the engine accepts it as its own value, every correct validator prevotes
      // nil for it.
      const content = node.app.buildContent(action.template, node.prng, true);
      node.world.scheduleAppAnswer(node, {
        type: 'value-proposed',
        height: action.height,
        round: action.round,
        block: node.buildValue(action.template, content),
      });
      return true;
    }
    // A block that breaks a consensus rule: signed and sent around the engine.
    const broken: BlockTemplate = this.prng.chance(0.5)
      ? { ...action.template, time: action.template.time + 1 + this.prng.int(0, 5000) }
      : { ...action.template, parentHash: this.prng.bytes(32) };
    // With consensus proofs the block carries a real proof, so only the broken rule is at fault.
    const block = node.buildValue(broken, node.app.buildContent(action.template, node.prng));
    const proposal = signProposal(
      node.world.chainId,
      {
        height: action.height,
        round: action.round,
        block,
        validRound: -1,
        proposer: node.keys.address,
      },
      node.keys.privateKey,
    );
    for (const to of this.peers(node))
      node.world.send(node.index, to, { kind: 'proposal', proposal });
    return true;
  }

  /**
   * A fresh block with a forged consensus proof, the proof parts taken in turn (bad-proof.ts).
   * A block whose only fault is in the proof bytes or the state root goes through the engine,
   * which proposes it and prevotes for it; one that breaks a header rule is signed and sent
   * around the engine, like the invalid proposer's.
   */
  private proposeBadProof(node: SimNode, action: ConsensusAction & { type: 'request-value' }) {
    // The first forgery's part is drawn, so that short runs cover every part across seeds.
    const count = this.forgeries.get(node.index) ?? this.prng.int(0, PROOF_FORGERIES.length - 1);
    this.forgeries.set(node.index, count + 1);
    const kind = PROOF_FORGERIES[count % PROOF_FORGERIES.length]!;
    const forged = forgeValue(kind, {
      template: action.template,
      content: node.app.buildContent(action.template, node.prng),
      context: node.context!,
      prove: (template, transactions) => node.proveBlock(template, transactions),
      prng: this.prng,
    });
    node.world.onFault('bad-proof-proposer');
    node.world.onFault(`bad-proof:${forged.name}`);
    node.world.trace(`forge ${node.index} h=${action.height} r=${action.round} ${forged.name}`);
    if (forged.viaEngine) {
      node.world.scheduleAppAnswer(node, {
        type: 'value-proposed',
        height: action.height,
        round: action.round,
        block: forged.block,
      });
      return;
    }
    const proposal = signProposal(
      node.world.chainId,
      {
        height: action.height,
        round: action.round,
        block: forged.block,
        validRound: -1,
        proposer: node.keys.address,
      },
      node.keys.privateKey,
    );
    for (const to of this.peers(node)) {
      node.world.send(node.index, to, { kind: 'proposal', proposal });
    }
  }

  /** The replayer keeps what it hears and now and then sends an old message back out. */
  received(node: SimNode, message: ConsensusMessage): void {
    if (this.behaviour(node) !== 'replayer') return;
    const log = this.replayLog.get(node.index) ?? [];
    this.replayLog.set(node.index, log);
    if (log.length < 256) log.push(message);
    else log[this.prng.int(0, log.length - 1)] = message;
    if (this.prng.chance(0.2)) this.replay(node, 1);
  }

  gossip(node: SimNode): void {
    if (this.behaviour(node) === 'replayer') this.replay(node, 3);
  }

  /** Sends `count` messages of heights this node has committed to random peers. */
  private replay(node: SimNode, count: number): void {
    const old = (this.replayLog.get(node.index) ?? []).filter(
      (message) => messageHeight(message) <= node.height,
    );
    if (old.length === 0) return;
    node.world.onFault('replayer');
    for (let i = 0; i < count; i++) {
      node.world.send(node.index, this.prng.pick(this.peers(node)), this.prng.pick(old));
    }
  }

  /**
   * A second block for the same round: same header fields, one more transaction (with
   * consensus proofs, a stamped one and the proof rebuilt when the block is this node's).
   */
  private variant(node: SimNode, block: Block): Block {
    const template: BlockTemplate = {
      chainId: block.header.chainId,
      height: block.header.height,
      time: block.header.time,
      parentHash: block.header.parentHash,
      lastCommit: block.lastCommit,
      validatorsHash: block.header.validatorsHash,
      proposer: block.header.proposer,
    };
    const extra = this.prng.bytes(12).map((byte) => byte & 0x7f);
    const proofs = node.world.proofs !== undefined;
    const transactions = [...block.transactions, proofs ? stampTransaction(extra) : extra];
    return buildBlock(template, {
      transactions,
      evidence: block.evidence,
      appStateRoot: block.header.appStateRoot,
      consensusProof:
        proofs && template.proposer === node.keys.address
          ? node.proveBlock(template, transactions)
          : block.header.consensusProof,
    });
  }

  private equivocate(node: SimNode, proposal: Proposal): Delivery[] {
    const other = signProposal(
      node.world.chainId,
      { ...proposal, block: this.variant(node, proposal.block) },
      node.keys.privateKey,
    );
    const [first, second] = this.split(node);
    return [
      ...first.map((to) => ({ to, message: { kind: 'proposal', proposal } as WireMessage })),
      ...second.map((to) => ({
        to,
        message: { kind: 'proposal', proposal: other } as WireMessage,
      })),
    ];
  }

  /**
   * Instead of re-proposing a valid value (vr ≥ 0), a fresh block with vr = -1, and its own
   * prevote for it: a correct validator locked on the valid value must prevote nil (line 23).
   */
  private freshProposal(node: SimNode, proposal: Proposal): Delivery[] | undefined {
    if (proposal.validRound < 0) return undefined;
    const fresh = signProposal(
      node.world.chainId,
      { ...proposal, block: this.variant(node, proposal.block), validRound: -1 },
      node.keys.privateKey,
    );
    const prevote = signVote(
      node.world.chainId,
      {
        type: 'prevote',
        height: proposal.height,
        round: proposal.round,
        blockHash: blockHash(fresh.block.header),
        validator: node.keys.address,
        notBefore: fresh.block.header.time + 1,
        pq: false,
      },
      node.world.localTime(node.index),
      node.keys.privateKey,
    );
    return this.peers(node).flatMap((to) => [
      { to, message: { kind: 'proposal', proposal: fresh } as WireMessage },
      { to, message: { kind: 'vote', vote: prevote } as WireMessage },
    ]);
  }

  private conflictingVote(node: SimNode, vote: Vote, blockHashValue: Uint8Array | null): Vote {
    return signVote(
      node.world.chainId,
      {
        type: vote.type,
        height: vote.height,
        round: vote.round,
        blockHash: blockHashValue,
        validator: node.keys.address,
        notBefore: vote.timestamp,
        pq: false,
      },
      vote.timestamp,
      node.keys.privateKey,
    );
  }

  /** Sends `vote` to `firstShare` peers (default half) and a conflicting vote to the others. */
  private doubleVote(node: SimNode, vote: Vote, firstShare?: number): Delivery[] {
    // The other value: nil for a block vote; for a nil vote, a block this node has seen proposed
    // in the round, or a made-up hash.
    let other: Uint8Array | null = null;
    if (vote.blockHash === null) {
      const seen = node.state?.proposals.get(vote.round) ?? [];
      other = seen.length > 0 ? this.prng.pick(seen).hash : this.prng.bytes(32);
    }
    const conflicting = this.conflictingVote(node, vote, other);
    const [first, second] = this.split(node, firstShare);
    return [
      ...first.map((to) => ({ to, message: { kind: 'vote', vote } as WireMessage })),
      ...second.map((to) => ({ to, message: { kind: 'vote', vote: conflicting } as WireMessage })),
    ];
  }

  /** The real message, plus forgeries the receivers must reject. */
  private forge(node: SimNode, message: ConsensusMessage): Delivery[] {
    const deliveries: Delivery[] = this.peers(node).map((to) => ({ to, message }));
    const validators = node.state?.context.schedule.validators.validators ?? [];
    const victim = this.prng.pick(validators.filter((v) => v.address !== node.keys.address));
    if (message.kind === 'vote') {
      const vote = message.vote;
      const inVictimsName: Vote = {
        ...this.conflictingVote(node, vote, this.prng.bytes(32)),
        validator: victim.address,
      };
      const garbage: Vote = {
        ...vote,
        blockHash: this.prng.bytes(32),
        signature: this.prng.bytes(64),
      };
      for (const to of this.peers(node)) {
        deliveries.push({ to, message: { kind: 'vote', vote: inVictimsName } });
        deliveries.push({ to, message: { kind: 'vote', vote: garbage } });
      }
    } else {
      const proposal = message.proposal;
      const inVictimsName: Proposal = {
        ...signProposal(
          node.world.chainId,
          { ...proposal, block: this.variant(node, proposal.block), proposer: victim.address },
          node.keys.privateKey,
        ),
      };
      for (const to of this.peers(node)) {
        deliveries.push({ to, message: { kind: 'proposal', proposal: inVictimsName } });
      }
    }
    return deliveries;
  }

  /**
   * The attack that breaks agreement once faulty power exceeds 1/3: when a coalition member
   * proposes, group 1 sees block A and group 2 block B, and every coalition member prevotes and
   * precommits A towards group 1 and B towards group 2.
   */
  private forkAttack(node: SimNode, message: ConsensusMessage): Delivery[] {
    const [groupA, groupB] = [this.forkGroups[0] ?? [], this.forkGroups[1] ?? []];
    if (message.kind === 'vote') {
      const key = `${message.vote.height}/${message.vote.round}`;
      // Votes of attacked rounds were already sent per group; others go out normally.
      return this.attacked.has(key) ? [] : this.peers(node).map((to) => ({ to, message }));
    }
    const proposal = message.proposal;
    const key = `${proposal.height}/${proposal.round}`;
    if (this.attacked.has(key)) return [];
    this.attacked.add(key);
    const proposalB = signProposal(
      node.world.chainId,
      { ...proposal, block: this.variant(node, proposal.block) },
      node.keys.privateKey,
    );
    const deliveries: Delivery[] = [];
    const coalition = this.nodes().filter((member) => member.behaviour === 'fork-coalition');
    for (const to of groupA) deliveries.push({ to, message: { kind: 'proposal', proposal } });
    for (const to of groupB)
      deliveries.push({ to, message: { kind: 'proposal', proposal: proposalB } });
    for (const member of coalition) {
      for (const type of ['prevote', 'precommit'] as const) {
        for (const [group, value] of [
          [groupA, blockHash(proposal.block.header)],
          [groupB, blockHash(proposalB.block.header)],
        ] as const) {
          const vote = signVote(
            node.world.chainId,
            {
              type,
              height: proposal.height,
              round: proposal.round,
              blockHash: value,
              validator: member.keys.address,
              notBefore: proposal.block.header.time + 1,
              pq: false,
            },
            member.world.localTime(member.index),
            member.keys.privateKey,
          );
          for (const to of group) deliveries.push({ to, message: { kind: 'vote', vote } });
        }
      }
    }
    return deliveries;
  }
}
