import type { KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConsensusDriver,
  type CommitInfo,
  type ConsensusDriverOptions,
  type DriverEvents,
  type RejectionInfo,
  type RoundInfo,
} from '../../../src/consensus/driver/index.js';
import type { Application } from '../../../src/consensus/app.js';
import type {
  BlockProofs,
  ConsensusNetwork,
  GossipMessage,
  MempoolPort,
  SyncedBlock,
} from '../../../src/consensus/driver/ports.js';
import { assertGenesisDocument, type GenesisDocument } from '../../../src/consensus/genesis.js';
import { DEV_PROOF_PARAMS } from '../../../src/consensus/proof/params.js';
import type { TimeoutConfig } from '../../../src/consensus/timeouts.js';
import { validatorAddress } from '../../../src/consensus/validator-set.js';
import { generateEd25519KeyPair, ed25519RawPublicKey } from '../../../src/crypto/ed25519.js';
import { createFalcon, type FalconBackend } from '../../../src/crypto/falcon.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { openStore, type NodeStore } from '../../../src/storage/index.js';
import { waitForCondition } from '../../helpers/wait.js';
import { MemoryHub, type MemoryEndpoint } from './memory-network.js';
import { KvTestApp, TestMempool, TestProofs } from './test-app.js';

export const TEST_TIMEOUTS: TimeoutConfig = {
  proposeMs: 300,
  proposeDeltaMs: 100,
  prevoteMs: 150,
  prevoteDeltaMs: 50,
  precommitMs: 150,
  precommitDeltaMs: 50,
};

export interface ValidatorIdentity {
  readonly name: string;
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  readonly address: string;
  readonly pqPublicKey: Uint8Array;
  readonly pqSecretKey: Uint8Array;
}

/** The real FALCON-1024 adapter (PQClean). */
export const falcon: FalconBackend = createFalcon('pqclean');

export async function makeIdentities(count: number): Promise<ValidatorIdentity[]> {
  const identities: ValidatorIdentity[] = [];
  for (let i = 0; i < count; i++) {
    const pair = generateEd25519KeyPair();
    const publicKey = ed25519RawPublicKey(pair.publicKey);
    const pq = await falcon.generateKeyPair();
    identities.push({
      name: `node-${i}`,
      privateKey: pair.privateKey,
      publicKey,
      address: validatorAddress(publicKey),
      pqPublicKey: pq.publicKey,
      pqSecretKey: pq.secretKey,
    });
  }
  return identities;
}

export function makeGenesisDocument(
  identities: readonly ValidatorIdentity[],
  overrides: Partial<GenesisDocument['consensus']> = {},
  storageRoots: readonly Uint8Array[] = identities.map((identity) => sha256(identity.publicKey)),
): GenesisDocument {
  const genesis: GenesisDocument = {
    chainId: 'driver-test',
    genesisTime: Date.now(),
    validators: identities.map((identity, index) => ({
      name: identity.name,
      publicKey: identity.publicKey,
      pqPublicKey: identity.pqPublicKey,
      power: 10,
      storageRoot: storageRoots[index] as Uint8Array,
    })),
    consensus: {
      timeouts: TEST_TIMEOUTS,
      commitDelayMs: 10,
      maxBlockBytes: 64 * 1024,
      maxBlockTxs: 1_000,
      requirePq: true,
      ...overrides,
    },
    proof: DEV_PROOF_PARAMS,
  };
  assertGenesisDocument(genesis);
  return genesis;
}

/**
 * What the in-process tests wait on announces itself here: every event of a watched driver
 * (`watchDriver`; every `TestCluster` node is watched) and every message a cluster node sends
 * or receives. `waitUntil` re-checks its condition on each, never on a timer.
 */
const activity = new EventEmitter();
activity.setMaxListeners(0);
const ACTIVITY = 'activity';

function noteActivity(): void {
  activity.emit(ACTIVITY);
}

const DRIVER_EVENTS = [
  'signed',
  'commit',
  'round',
  'evidence',
  'rejected',
  'idle',
  'halted',
] as const satisfies readonly (keyof DriverEvents)[];

/** Makes every event of `driver` wake `waitUntil` (for drivers built outside a TestCluster). */
export function watchDriver(driver: ConsensusDriver): void {
  for (const event of DRIVER_EVENTS) driver.on(event, noteActivity);
}

/**
 * Resolves once `condition` holds. It is checked now and then again after each driver event or
 * network message (see `activity`); fails with `message` (a function is called then, so it can
 * tell the state at the deadline) if it does not hold within `timeoutMs`.
 */
export async function waitUntil(
  condition: () => boolean,
  message: string | (() => string),
  timeoutMs = 15_000,
): Promise<void> {
  if (condition()) return;
  await waitForCondition(activity, ACTIVITY, condition, message, timeoutMs);
}

/**
 * The network a cluster node's driver is given: the node's memory endpoint, announcing every
 * message the node sends and every message and connection it is handed (after the driver's
 * handler ran) to `waitUntil`.
 */
class ObservedNetwork implements ConsensusNetwork {
  constructor(private readonly inner: MemoryEndpoint) {}

  broadcast(message: GossipMessage): void {
    this.inner.broadcast(message);
    noteActivity();
  }

  send(peer: string, message: GossipMessage): void {
    this.inner.send(peer, message);
    noteActivity();
  }

  onMessage(handler: (peer: string, message: GossipMessage) => void): void {
    this.inner.onMessage((peer, message) => {
      try {
        handler(peer, message);
      } finally {
        noteActivity();
      }
    });
  }

  onPeerConnected(handler: (peer: string) => void): void {
    this.inner.onPeerConnected((peer) => {
      try {
        handler(peer);
      } finally {
        noteActivity();
      }
    });
  }

  peers(): readonly string[] {
    return this.inner.peers();
  }

  fetchBlocks(
    peer: string,
    from: number,
    to: number,
    signal?: AbortSignal,
  ): AsyncIterable<SyncedBlock> {
    return this.inner.fetchBlocks(peer, from, to, signal);
  }
}

/** Replacements for the test application, mempool and proofs (node index given). */
export interface NodeParts {
  readonly app?: (store: NodeStore, index: number) => Application;
  readonly mempool?: (app: Application, index: number) => MempoolPort;
  readonly proofs?: (index: number) => BlockProofs;
  readonly options?: Partial<ConsensusDriverOptions>;
  /** Wraps a node's store (to inject storage failures). */
  readonly store?: (store: NodeStore, index: number) => NodeStore;
}

export class TestNode {
  readonly commits: CommitInfo[] = [];
  readonly rounds: RoundInfo[] = [];
  readonly rejections: RejectionInfo[] = [];

  constructor(
    readonly index: number,
    readonly id: string,
    readonly driver: ConsensusDriver,
    readonly store: NodeStore,
    readonly app: Application,
    readonly mempool: MempoolPort,
    readonly endpoint: MemoryEndpoint,
  ) {
    driver.on('commit', (info) => this.commits.push(info));
    driver.on('round', (info) => this.rounds.push(info));
    driver.on('rejected', (info) => this.rejections.push(info));
    watchDriver(driver);
  }

  get height(): number {
    return this.store.blocks.latestHeight() ?? 0;
  }
}

/**
 * N validators in one process: real SQLite stores, WAL and signer files in a temporary
 * directory, real Ed25519 and FALCON-1024 keys, the in-memory network.
 */
export class TestCluster {
  readonly hub = new MemoryHub();
  readonly dir = mkdtempSync(join(tmpdir(), 'hypermesh-driver-'));
  readonly nodes: (TestNode | null)[];

  constructor(
    readonly identities: readonly ValidatorIdentity[],
    readonly genesis: GenesisDocument,
    private readonly parts: NodeParts = {},
  ) {
    this.nodes = identities.map(() => null);
  }

  paths(index: number): { store: string; wal: string; signer: string } {
    const base = join(this.dir, `node-${index}`);
    mkdirSync(base, { recursive: true });
    return {
      store: join(base, 'store.sqlite'),
      wal: join(base, 'consensus.wal'),
      signer: join(base, 'signer-state.cbor'),
    };
  }

  node(index: number): TestNode {
    const node = this.nodes[index];
    if (node === null || node === undefined) throw new Error(`node ${index} is not running`);
    return node;
  }

  running(): TestNode[] {
    return this.nodes.filter((node): node is TestNode => node !== null);
  }

  /** Builds node `index` (without starting it), connected to the hub. */
  create(index: number, extra: Partial<ConsensusDriverOptions> = {}): TestNode {
    const identity = this.identities[index] as ValidatorIdentity;
    const paths = this.paths(index);
    const opened = openStore(paths.store);
    const store = this.parts.store?.(opened, index) ?? opened;
    const id = identity.name;
    const endpoint = this.hub.join(id, store);
    const app = this.parts.app?.(store, index) ?? new KvTestApp(store);
    const mempool = this.parts.mempool?.(app, index) ?? new TestMempool();
    const driver = new ConsensusDriver({
      genesis: this.genesis,
      store,
      walPath: paths.wal,
      signerStatePath: paths.signer,
      self: { privateKey: identity.privateKey, falconSecretKey: identity.pqSecretKey, falcon },
      app,
      mempool,
      network: new ObservedNetwork(endpoint),
      proofs: this.parts.proofs?.(index) ?? new TestProofs(),
      ...this.parts.options,
      ...extra,
    });
    const node = new TestNode(index, id, driver, store, app, mempool, endpoint);
    this.nodes[index] = node;
    return node;
  }

  async start(index: number, extra: Partial<ConsensusDriverOptions> = {}): Promise<TestNode> {
    const node = this.create(index, extra);
    await node.driver.start();
    return node;
  }

  async startAll(): Promise<void> {
    for (let i = 0; i < this.identities.length; i++) await this.start(i);
  }

  /** Stops node `index` like a crash: nothing more is written; the store is closed. */
  async stop(index: number): Promise<void> {
    const node = this.nodes[index];
    if (node === null || node === undefined) return;
    this.nodes[index] = null;
    this.hub.leave(node.id);
    await node.driver.stop();
    node.store.close();
  }

  async close(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) await this.stop(i);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Waits until every running node stored at least `height`. */
  async waitForHeight(height: number, timeoutMs = 20_000, nodes = this.running()): Promise<void> {
    await waitUntil(
      () => nodes.every((node) => node.height >= height),
      () =>
        `nodes ${nodes.map((node) => `${node.id}@${node.height}`).join(', ')} to reach height ${height}`,
      timeoutMs,
    );
  }
}

/** Asserts-friendly view of a stored block: its hash and the state root after it. */
export function chainSummary(store: NodeStore, upTo: number): string[] {
  const summary: string[] = [];
  for (let height = 1; height <= upTo; height++) {
    const block = store.blocks.byHeight(height);
    if (block === null) throw new Error(`block ${height} missing`);
    summary.push(
      `${height}:${Buffer.from(block.hash).toString('hex')}:${Buffer.from(store.state.root(height)).toString('hex')}`,
    );
  }
  return summary;
}

/**
 * Every vote and proposal any node broadcast, grouped by signer and (height, round, type):
 * returns the keys where one signer sent two different values.
 */
export function conflictingMessages(hub: MemoryHub): string[] {
  const seen = new Map<string, string>();
  const conflicts: string[] = [];
  for (const { message } of hub.sent) {
    let key: string;
    let value: string;
    if (message.kind === 'vote') {
      const { vote } = message;
      key = `${vote.validator}/${vote.height}/${vote.round}/${vote.type}`;
      // The signature too: a re-sent vote must be the very same vote, not a re-signed one.
      value = Buffer.from(vote.signature).toString('hex');
    } else if (message.kind === 'proposal') {
      const { proposal } = message;
      key = `${proposal.proposer}/${proposal.height}/${proposal.round}/proposal`;
      value = `${Buffer.from(proposal.signature).toString('hex')}`;
    } else {
      continue;
    }
    const earlier = seen.get(key);
    if (earlier === undefined) seen.set(key, value);
    else if (earlier !== value) conflicts.push(key);
  }
  return conflicts;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'hypermesh-driver-'));
}
