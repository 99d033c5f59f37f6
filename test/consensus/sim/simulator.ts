import { createHash } from 'node:crypto';
import { toHex } from '../../../src/crypto/bytes.js';
import { ed25519KeyPairFromSeed, ed25519RawPublicKey } from '../../../src/crypto/ed25519.js';
import { createFalcon, type FalconBackend } from '../../../src/crypto/falcon.js';
import { sha256 } from '../../../src/crypto/hash.js';
import type { ConsensusAction, ConsensusEvent } from '../../../src/consensus/events.js';
import type { ConsensusConfig } from '../../../src/consensus/state.js';
import type { Vote } from '../../../src/consensus/types.js';
import {
  createValidatorSet,
  validatorAddress,
  type ValidatorSet,
} from '../../../src/consensus/validator-set.js';
import { MessageRejection, type SignatureVerifier } from '../../../src/consensus/verify.js';
import { ed25519Verify } from '../../../src/crypto/ed25519.js';
import { ByzantineAdversary } from './byzantine.js';
import { EventQueue } from './event-queue.js';
import { InvariantChecker, type Violation } from './invariants.js';
import {
  SimNode,
  type ConsensusMessage,
  type StoredBlock,
  type ValidatorKeys,
  type WireMessage,
  type World,
} from './node.js';
import type { SimulationOptions } from './options.js';
import { Prng } from './prng.js';
import { ValidatorPlan } from './validator-plan.js';
import type { HeightContext } from '../../../src/consensus/height-context.js';
import { plotOf, simGenesisDocument, SimProofs } from './proofs.js';

type SimEvent =
  | { kind: 'boot'; node: number }
  | { kind: 'deliver'; from: number; to: number; message: WireMessage }
  | { kind: 'local'; node: number; incarnation: number; event: ConsensusEvent }
  | { kind: 'gossip'; node: number }
  | { kind: 'catch-up'; node: number; incarnation: number }
  | { kind: 'crash'; node: number }
  | { kind: 'restart'; node: number };

export interface SimulationStats {
  events: number;
  messagesSent: number;
  messagesDropped: number;
  messagesDuplicated: number;
  commits: number;
  maxRound: number;
  evidenceFound: number;
  rejections: Record<string, number>;
  /** Faulty actions the adversary took, by behaviour (so a test can see a fault happened). */
  faults: Record<string, number>;
  /** Proposals correct and faulty nodes refused for their consensus proof, by `part/reason`. */
  proofRejections: Record<string, number>;
  /** Height reached by each node at the end. */
  heights: number[];
  simulatedMs: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly violations: readonly Violation[];
  /** SHA-256 over every processed event: equal for two runs of one seed. */
  readonly traceHash: string;
  readonly trace: readonly string[];
  readonly stats: SimulationStats;
  /** Every node's block store at the end. */
  readonly stores: readonly (readonly StoredBlock[])[];
  /** The genesis validator set. */
  readonly validators: ValidatorSet;
  /** Each node's validator address, by node index. */
  readonly addresses: readonly string[];
}

const GENESIS_TIME = 1_700_000_000_000;

/**
 * Validator keys, derived at test time from fixed seeds and made once per process: each run
 * picks its validators from the pool at random (so address order, which decides proposer
 * ties, varies with the seed) without paying for key generation every run.
 */
const KEY_POOL_SIZE = 16;
let pooledKeys: ValidatorKeys[] | undefined;

function keyPool(): ValidatorKeys[] {
  if (pooledKeys === undefined) {
    const prng = new Prng(0x6b657973);
    pooledKeys = Array.from({ length: KEY_POOL_SIZE }, () => {
      const pair = ed25519KeyPairFromSeed(prng.bytes(32));
      const publicKey = ed25519RawPublicKey(pair.publicKey);
      return { privateKey: pair.privateKey, publicKey, address: validatorAddress(publicKey) };
    });
  }
  return pooledKeys;
}

/** Rejections a correct validator's own, correctly signed message must never get. */
const FORGERY_REJECTIONS = new Set<MessageRejection>([
  MessageRejection.BAD_SIGNATURE,
  MessageRejection.BAD_PQ_SIGNATURE,
  MessageRejection.MISSING_PQ_SIGNATURE,
  MessageRejection.UNKNOWN_VALIDATOR,
  MessageRejection.NOT_PROPOSER,
  MessageRejection.NOT_BLOCK_PROPOSER,
  MessageRejection.MALFORMED,
  MessageRejection.INVALID_VALID_ROUND,
]);

/**
 * Memoised signature verification: every node verifies the same votes, and verification is a
 * pure function, so caching it changes no answer (the key includes message and public key).
 */
function memoisingVerifier(falcon: FalconBackend | undefined): SignatureVerifier {
  const ed25519Cache = new Map<string, boolean>();
  // Keys are KeyObjects shared by every node (one validator set), so their identity names them.
  const keyIds = new WeakMap<object, number>();
  let nextKeyId = 0;
  const keyId = (publicKey: object): number => {
    let id = keyIds.get(publicKey);
    if (id === undefined) keyIds.set(publicKey, (id = nextKeyId++));
    return id;
  };
  const falconCache = new Map<string, boolean>();
  return {
    ed25519(signature, message, publicKey) {
      const key = `${toHex(signature)}|${keyId(publicKey)}|${toHex(message)}`;
      let result = ed25519Cache.get(key);
      if (result === undefined) {
        result = ed25519Verify(signature, message, publicKey);
        ed25519Cache.set(key, result);
      }
      return result;
    },
    ...(falcon === undefined
      ? {}
      : {
          falcon(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) {
            const key = `${toHex(sha256(signature))}|${toHex(sha256(message))}|${toHex(sha256(publicKey))}`;
            let result = falconCache.get(key);
            if (result === undefined) {
              result = falcon.verify(signature, message, publicKey);
              falconCache.set(key, result);
            }
            return result;
          },
        }),
  };
}

/**
 * One deterministic run: N validators in one process over a simulated network and clock.
 * Everything random comes from `options.seed`, so a run replays exactly.
 */
export class Simulation implements World {
  readonly chainId: string;
  readonly genesis: { hash: Uint8Array; time: number };
  readonly gossipIntervalMs: number;
  readonly validatorCount: number;
  validatorPlan: ValidatorPlan | undefined;
  proofs: SimProofs | undefined;
  readonly checkProofs: boolean;
  private readonly queue = new EventQueue<SimEvent>();
  private time = 0;
  private readonly prng: Prng;
  private readonly networkPrng: Prng;
  private readonly nodes: SimNode[] = [];
  private validators!: ValidatorSet;
  private checker!: InvariantChecker;
  private readonly traceHash = createHash('sha256');
  private readonly traceLines: string[] = [];
  private readonly stats: SimulationStats = {
    events: 0,
    messagesSent: 0,
    messagesDropped: 0,
    messagesDuplicated: 0,
    commits: 0,
    maxRound: 0,
    evidenceFound: 0,
    rejections: {},
    faults: {},
    proofRejections: {},
    heights: [],
    simulatedMs: 0,
  };
  private falcon: FalconBackend | undefined;

  constructor(private readonly options: SimulationOptions) {
    this.chainId = `sim-${options.seed}`;
    this.genesis = {
      hash: sha256(new TextEncoder().encode(`hypermesh-sim/genesis/${options.seed}`)),
      time: GENESIS_TIME,
    };
    this.gossipIntervalMs = options.gossipIntervalMs;
    this.validatorCount = options.powers.length;
    this.checkProofs = options.checkProofs ?? true;
    this.prng = new Prng(options.seed);
    this.networkPrng = this.prng.fork();
  }

  private async setup(): Promise<void> {
    const { options } = this;
    const keyPrng = this.prng.fork();
    if (options.pq) this.falcon = createFalcon();
    const keys: ValidatorKeys[] = [];
    const pool = keyPool();
    for (const index of keyPrng.shuffle(pool.map((_, i) => i)).slice(0, options.powers.length)) {
      const key = pool[index] as ValidatorKeys;
      const pq = this.falcon === undefined ? undefined : await this.falcon.generateKeyPair();
      keys.push({
        ...key,
        ...(pq === undefined ? {} : { pq }),
        ...(options.proofs === true ? { storageRoot: plotOf(key.publicKey).root } : {}),
      });
    }
    this.validators = createValidatorSet(
      keys.flatMap((key, i) =>
        options.powers[i] === 0
          ? []
          : [
              {
                publicKey: key.publicKey,
                power: options.powers[i] as number,
                ...(key.pq === undefined ? {} : { pqPublicKey: key.pq.publicKey }),
                ...(key.storageRoot === undefined ? {} : { storageRoot: key.storageRoot }),
              },
            ],
      ),
    );
    const plan =
      options.validatorChanges === undefined
        ? undefined
        : new ValidatorPlan(options.validatorChanges, keys, options.powers, options.proofs);
    this.validatorPlan = plan;
    if (options.proofs === true) {
      const genesisDocument = simGenesisDocument({
        chainId: this.chainId,
        genesisTime: GENESIS_TIME,
        validators: keys.flatMap((key, i) =>
          options.powers[i] === 0 ? [] : [{ keys: key, power: options.powers[i] as number }],
        ),
        timeouts: options.timeouts,
        requirePq: options.pq,
      });
      this.proofs = new SimProofs(genesisDocument, this.genesis.hash);
    }
    const verifier = memoisingVerifier(this.falcon);
    this.checker = new InvariantChecker(
      this.chainId,
      plan === undefined ? this.validators : (height) => plan.setAt(height),
      (node) => !options.byzantine.has(node),
      verifier.ed25519,
    );
    const forkGroups = options.partitions[0]?.groups ?? [];
    const adversary = new ByzantineAdversary(() => this.nodes, this.prng.fork(), forkGroups);
    for (let i = 0; i < keys.length; i++) {
      const config: ConsensusConfig = {
        chainId: this.chainId,
        self: keys[i]!.address,
        timeouts: options.timeouts,
        verifier,
        requirePq: options.pq,
      };
      const behaviour = options.byzantine.get(i);
      this.nodes.push(
        new SimNode(
          i,
          keys[i]!,
          config,
          this,
          this.prng.fork(),
          behaviour,
          behaviour === undefined ? undefined : adversary,
        ),
      );
    }
    for (let i = 0; i < this.nodes.length; i++) {
      this.queue.push(this.networkPrng.float() * 5, { kind: 'boot', node: i });
      this.queue.push(this.gossipIntervalMs * (1 + this.networkPrng.float()), {
        kind: 'gossip',
        node: i,
      });
    }
    for (const crash of options.crashes) {
      this.queue.push(crash.atMs, { kind: 'crash', node: crash.node });
      this.queue.push(crash.restartAtMs, { kind: 'restart', node: crash.node });
    }
  }

  // --- World --------------------------------------------------------------------------------

  now(): number {
    return this.time;
  }

  localTime(node: number): number {
    const clock = this.options.clocks[node] ?? { offsetMs: 0, rate: 1 };
    return GENESIS_TIME + this.time * clock.rate + clock.offsetMs;
  }

  globalDuration(node: number, localMs: number): number {
    return localMs / (this.options.clocks[node]?.rate ?? 1);
  }

  private partitioned(from: number, to: number): boolean {
    for (const partition of this.options.partitions) {
      if (this.time < partition.fromMs || this.time >= partition.untilMs) continue;
      const groupOf = (node: number) => partition.groups.findIndex((group) => group.includes(node));
      const a = groupOf(from);
      const b = groupOf(to);
      if (a !== -1 && b !== -1 && a !== b) return true;
    }
    return false;
  }

  send(from: number, to: number, message: WireMessage): void {
    this.stats.messagesSent++;
    const { network } = this.options;
    if (this.partitioned(from, to) || this.networkPrng.chance(network.dropRate)) {
      this.stats.messagesDropped++;
      return;
    }
    const copies = this.networkPrng.chance(network.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.messagesDuplicated++;
    const slow = network.slowVotes;
    const extra =
      slow !== undefined &&
      message.kind === 'vote' &&
      slow.types.includes(message.vote.type) &&
      this.time < slow.untilMs &&
      this.networkPrng.chance(slow.probability)
        ? this.networkPrng.exponential(slow.meanExtraMs)
        : 0;
    for (let i = 0; i < copies; i++) {
      const delay = network.minDelayMs + this.networkPrng.exponential(network.meanJitterMs) + extra;
      this.queue.push(this.time + delay, { kind: 'deliver', from, to, message });
    }
  }

  scheduleTimeout(node: SimNode, action: ConsensusAction & { type: 'schedule-timeout' }): void {
    this.stats.maxRound = Math.max(this.stats.maxRound, action.round);
    this.queue.push(this.time + this.globalDuration(node.index, action.durationMs), {
      kind: 'local',
      node: node.index,
      incarnation: node.incarnation,
      event: {
        type: 'timeout-fired',
        height: action.height,
        round: action.round,
        step: action.step,
      },
    });
  }

  scheduleAppAnswer(node: SimNode, event: ConsensusEvent): void {
    const [low, high] = this.options.appDelayMs;
    this.queue.push(this.time + low + this.networkPrng.float() * (high - low), {
      kind: 'local',
      node: node.index,
      incarnation: node.incarnation,
      event,
    });
  }

  scheduleCatchUp(node: SimNode): void {
    this.queue.push(this.time + this.gossipIntervalMs / 8, {
      kind: 'catch-up',
      node: node.index,
      incarnation: node.incarnation,
    });
  }

  pqSign(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array> {
    if (this.falcon === undefined) throw new Error('FALCON signing needs options.pq');
    return this.falcon.sign(message, secretKey);
  }

  onCommit(node: SimNode, stored: StoredBlock): void {
    this.stats.commits++;
    this.record(
      `commit ${node.index} h=${stored.block.header.height} r=${stored.commit.round} ${toHex(stored.commit.blockHash).slice(0, 16)}`,
    );
    this.checker.onCommit(node.index, stored.block, stored.commit, this.time);
    const proofs = this.proofs;
    if (proofs !== undefined) {
      this.checker.checkCommittedProof(
        node.index,
        stored.block,
        (stateRootBefore) =>
          proofs.verifyCommitted(node.context!, stored.block, stored.commit, stateRootBefore),
        this.time,
      );
    }
  }

  onContext(node: SimNode, context: HeightContext): void {
    this.checker.onContext(node.index, context, this.time);
  }

  onSigned(node: SimNode, vote: Vote): void {
    this.checker.onSigned(node.index, node.keys.address, vote, this.time);
  }

  onRejected(
    node: SimNode,
    reason: MessageRejection,
    from: number,
    message: ConsensusMessage,
  ): void {
    this.stats.rejections[reason] = (this.stats.rejections[reason] ?? 0) + 1;
    const origin = message.kind === 'vote' ? message.vote.validator : message.proposal.proposer;
    const sender = this.nodes[from];
    if (
      FORGERY_REJECTIONS.has(reason) &&
      sender !== undefined &&
      sender.behaviour === undefined &&
      origin === sender.keys.address
    ) {
      this.checker.onLivenessFailure(
        `node ${node.index} rejected a message correct node ${from} signed: ${reason}`,
        this.time,
      );
    }
  }

  onEvidence(): void {
    this.stats.evidenceFound++;
  }

  onProofRejected(node: SimNode, error: Error): void {
    // A ConsensusError names the failed part and reason (pos/block-proofs.ts `invalidBlock`).
    const detail = (error as { detail?: Record<string, unknown> }).detail ?? {};
    const key = `${String(detail.part ?? 'check')}/${String(detail.reason ?? error.message)}`;
    this.stats.proofRejections[key] = (this.stats.proofRejections[key] ?? 0) + 1;
    this.record(`proof-rejected ${node.index} ${key}`);
  }

  onFault(behaviour: string): void {
    this.stats.faults[behaviour] = (this.stats.faults[behaviour] ?? 0) + 1;
  }

  trace(line: string): void {
    this.record(line);
  }

  private record(line: string): void {
    const stamped = `${this.time.toFixed(3)} ${line}`;
    this.traceHash.update(stamped).update('\n');
    if (this.options.recordTrace) this.traceLines.push(stamped);
  }

  // --- Run ----------------------------------------------------------------------------------

  /** Stabilisation: partitions healed, crashed nodes restarted, slow votes over. */
  private stableFromMs(): number {
    let stable = 0;
    for (const partition of this.options.partitions) stable = Math.max(stable, partition.untilMs);
    for (const crash of this.options.crashes) stable = Math.max(stable, crash.restartAtMs);
    return Math.max(stable, this.options.network.slowVotes?.untilMs ?? 0);
  }

  private honestNodes(): SimNode[] {
    return this.nodes.filter((node) => node.behaviour === undefined);
  }

  async run(): Promise<SimulationResult> {
    await this.setup();
    const stableFrom = this.stableFromMs();
    const deadline = stableFrom + this.options.livenessBoundMs;
    let target: number | undefined;
    for (;;) {
      const next = this.queue.pop();
      if (next === undefined || next.time > deadline) break;
      this.time = next.time;
      if (target === undefined && this.time >= stableFrom) {
        const reached = Math.max(0, ...this.honestNodes().map((node) => node.height));
        target = Math.max(reached + this.options.progressHeights, this.options.minFinalHeight ?? 0);
      }
      this.stats.events++;
      await this.handle(next.item);
      for (const node of this.nodes) this.checker.checkStore(node.index, node.store, this.time);
      if (this.checker.violations.length > 0) break;
      if (
        target !== undefined &&
        this.honestNodes().every((node) => node.height >= (target as number))
      ) {
        break;
      }
    }
    const honestHeights = this.honestNodes().map((node) => node.height);
    if (
      this.options.checkLiveness &&
      this.checker.violations.length === 0 &&
      (target === undefined || honestHeights.some((height) => height < (target as number)))
    ) {
      this.checker.onLivenessFailure(
        `correct nodes reached heights [${honestHeights.join(', ')}], needed ${target ?? '?'} within ${this.options.livenessBoundMs} ms after ${stableFrom} ms`,
        this.time,
      );
    }
    this.checker.checkStoresFully(
      new Map(this.nodes.map((node) => [node.index, node.store])),
      this.time,
    );
    this.stats.heights = this.nodes.map((node) => node.height);
    this.stats.simulatedMs = this.time;
    return {
      seed: this.options.seed,
      violations: this.checker.violations,
      traceHash: this.traceHash.digest('hex'),
      trace: this.traceLines,
      stats: this.stats,
      stores: this.nodes.map((node) => node.store),
      validators: this.validators,
      addresses: this.nodes.map((node) => node.keys.address),
    };
  }

  private async handle(event: SimEvent): Promise<void> {
    switch (event.kind) {
      case 'boot': {
        const node = this.nodes[event.node]!;
        if (!node.alive) await node.boot(this.validators);
        return;
      }
      case 'deliver': {
        const node = this.nodes[event.to]!;
        if (!node.alive) return;
        this.record(`deliver ${event.from}>${event.to} ${describe(event.message)}`);
        await node.receive(event.from, event.message);
        return;
      }
      case 'local': {
        const node = this.nodes[event.node]!;
        if (!node.alive || node.incarnation !== event.incarnation) return;
        this.record(`local ${event.node} ${event.event.type}`);
        await node.fire(event.event);
        return;
      }
      case 'gossip': {
        const node = this.nodes[event.node]!;
        node.gossip();
        this.queue.push(this.time + this.globalDuration(event.node, this.gossipIntervalMs), event);
        return;
      }
      case 'catch-up': {
        const node = this.nodes[event.node]!;
        if (node.alive && node.incarnation === event.incarnation) node.sendCatchUp();
        return;
      }
      case 'crash':
        this.nodes[event.node]!.crash();
        return;
      case 'restart': {
        const node = this.nodes[event.node]!;
        if (!node.alive) await node.boot(this.validators);
        return;
      }
    }
  }
}

function describe(message: WireMessage): string {
  if (message.kind === 'status') return `status h=${message.height}`;
  if (message.kind === 'proposal') {
    const { proposal } = message;
    return `proposal h=${proposal.height} r=${proposal.round} vr=${proposal.validRound} ${proposal.proposer.slice(0, 6)}`;
  }
  const { vote } = message;
  const value = vote.blockHash === null ? 'nil' : toHex(vote.blockHash).slice(0, 8);
  return `${vote.type} h=${vote.height} r=${vote.round} ${value} ${vote.validator.slice(0, 6)}`;
}

export async function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  return new Simulation(options).run();
}
