/**
 * `npm run bench -- consensus-proof [--quick]`: the four-part consensus proof over real engine
 * blocks, per parameter set (DEV_PROOF_PARAMS, and DEFAULT_PROOF_PARAMS without --quick):
 * - building a validator's storage plot, saving and reloading it (loading re-checks every block);
 * - per block, 4 validators with FALCON-1024 keys: the proposer's `build`, a validator's
 *   `checkProposal`, one FALCON-1024 precommit signature, `verifyCommittedBlock` with a full and
 *   with a sampled hash-chain check, and the size of `header.consensusProof`;
 * - baseline: the same verification with the hash chain alone (what the chain costs of it).
 * Transactions use a toy envelope `u64(nonce) || 64 random bytes` stamped at the chain's
 * difficulty; the application is a toy that hashes the transactions.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { defaultFalcon, type FalconKeyPair } from '../../src/crypto/falcon.js';
import { taggedHash } from '../../src/crypto/hash.js';
import { blockTemplate, buildBlock } from '../../src/consensus/block.js';
import {
  DEFAULT_PROOF_PARAMS,
  DEV_PROOF_PARAMS,
  genesisHash,
  genesisHeightContext,
  type GenesisDocument,
} from '../../src/consensus/genesis.js';
import { nextHeightContext } from '../../src/consensus/height-context.js';
import { blockHash } from '../../src/consensus/messages.js';
import {
  buildStoragePlotFor,
  createBlockProofs,
  loadStoragePlot,
  saveStoragePlot,
  verifyCommittedBlock,
  type StampOf,
} from '../../src/consensus/pos/index.js';
import { mintStamp } from '../../src/consensus/proof/hashcash.js';
import type { ConsensusProofParams } from '../../src/consensus/proof/params.js';
import {
  computeSequentialWork,
  sequentialWorkSeed,
} from '../../src/consensus/proof/sequential-work.js';
import type { StoragePlot } from '../../src/consensus/proof/storage-plot.js';
import { nextHeightProposerSchedule, proposerAt } from '../../src/consensus/proposer.js';
import { precommitPqMessage, signVote } from '../../src/consensus/signer.js';
import { DEFAULT_TIMEOUTS } from '../../src/consensus/timeouts.js';
import type { Block, QuorumCertificate } from '../../src/consensus/types.js';
import { validatorAddress } from '../../src/consensus/validator-set.js';
import type { BenchContext } from '../report.js';
import {
  WitnessState,
  decodeStateWitness,
  encodeStateProof,
  encodeStateWitness,
  openStore,
} from '../../src/storage/index.js';

const CHAIN_ID = 'bench-consensus-proof';

const stampOf: StampOf = (tx) => {
  if (tx.length < 9) return undefined;
  return {
    txHash: taggedHash('bench/tx', tx.subarray(8)),
    nonce: Number(new DataView(tx.buffer, tx.byteOffset, 8).getBigUint64(0)),
  };
};

function transactions(count: number, difficulty: number): Uint8Array[] {
  return Array.from({ length: count }, () => {
    const payload = randomBytes(64);
    const tx = new Uint8Array(72);
    new DataView(tx.buffer).setBigUint64(
      0,
      BigInt(mintStamp(taggedHash('bench/tx', payload), difficulty)),
    );
    tx.set(payload, 8);
    return tx;
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function timed<T>(run: () => T): [T, number] {
  const start = performance.now();
  const result = run();
  return [result, performance.now() - start];
}

interface BenchValidator {
  readonly privateKey: ReturnType<typeof generateEd25519KeyPair>['privateKey'];
  readonly publicKey: Uint8Array;
  readonly address: string;
  readonly pq: FalconKeyPair;
}

async function signCommit(
  validators: readonly BenchValidator[],
  block: Block,
): Promise<{ commit: QuorumCertificate; falconMs: number }> {
  const falcon = defaultFalcon();
  const id = blockHash(block.header);
  const precommits = [];
  let falconMs = 0;
  for (const [i, validator] of validators.entries()) {
    const vote = signVote(
      CHAIN_ID,
      {
        type: 'precommit',
        height: block.header.height,
        round: 0,
        blockHash: id,
        validator: validator.address,
        notBefore: block.header.time + 1,
        pq: true,
      },
      block.header.time + 1000 + i,
      validator.privateKey,
    );
    const start = performance.now();
    const pqSignature = await falcon.sign(
      precommitPqMessage(CHAIN_ID, vote) as Uint8Array,
      validator.pq.secretKey,
    );
    falconMs += performance.now() - start;
    precommits.push({ ...vote, pqSignature });
  }
  precommits.sort((a, b) => (a.validator < b.validator ? -1 : 1));
  return {
    commit: { height: block.header.height, round: 0, blockHash: id, precommits },
    falconMs: falconMs / validators.length,
  };
}

/**
 * Measures at height 2 (so the last commit, with its FALCON signatures, is checked too). Only
 * the height-2 proposer needs a plot: a DEFAULT plot takes minutes to build, and block 1 is
 * only the parent here, so its proof is left empty and never verified.
 */
async function paramSet(
  context: BenchContext,
  label: string,
  params: ConsensusProofParams,
  validators: readonly BenchValidator[],
  txCounts: readonly number[],
  runs: number,
  plotBuilds: number,
): Promise<void> {
  const falcon = defaultFalcon();
  const note = `${label} params, 4 validators, ${falcon.name}`;
  const draft: GenesisDocument = {
    chainId: CHAIN_ID,
    genesisTime: 1_700_000_000_000,
    validators: validators.map((validator, i) => ({
      name: `node-${i + 1}`,
      publicKey: validator.publicKey,
      pqPublicKey: validator.pq.publicKey,
      power: 1,
      storageRoot: new Uint8Array(randomBytes(32)),
    })),
    consensus: {
      timeouts: DEFAULT_TIMEOUTS,
      commitDelayMs: 0,
      maxBlockBytes: 1 << 24,
      maxBlockTxs: 1_000_000,
      requirePq: true,
    },
    proof: params,
  };
  // Storage roots do not take part in proposer selection: the schedule of the draft is final.
  const firstContext = genesisHeightContext(draft);
  const secondProposer = proposerAt(nextHeightProposerSchedule(firstContext.schedule), 0).address;
  const proposer = validators.find((v) => v.address === secondProposer) as BenchValidator;

  context.progress(`${label}: building the proposer's plot ${plotBuilds} time(s)`);
  const buildTimes: number[] = [];
  let plot: StoragePlot | undefined;
  for (let i = 0; i < plotBuilds; i++) {
    const [built, ms] = timed(() => buildStoragePlotFor(params.space, proposer.publicKey));
    plot = built;
    buildTimes.push(ms);
  }
  if (plot === undefined) throw new Error('no plot built');
  context.emit({ metric: `${label}_plot_build_ms`, value: median(buildTimes), unit: 'ms', note });
  const directory = await mkdtemp(join(tmpdir(), 'bench-plot-'));
  try {
    const path = join(directory, 'plot');
    const saveStart = performance.now();
    await saveStoragePlot(path, plot);
    const saveMs = performance.now() - saveStart;
    const loadStart = performance.now();
    await loadStoragePlot(path, params.space, plot.root);
    const loadMs = performance.now() - loadStart;
    context.emit({ metric: `${label}_plot_save_ms`, value: saveMs, unit: 'ms', note });
    context.emit({ metric: `${label}_plot_load_ms`, value: loadMs, unit: 'ms', note });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }

  const genesis: GenesisDocument = {
    ...draft,
    validators: draft.validators.map((entry) =>
      entry.publicKey === proposer.publicKey ? { ...entry, storageRoot: plot.root } : entry,
    ),
  };
  const hash = genesisHash(genesis);
  const genesisContext = genesisHeightContext(genesis);
  const first = buildBlock(
    blockTemplate(CHAIN_ID, genesisContext, proposerAt(genesisContext.schedule, 0).address),
    {
      transactions: [],
      evidence: [],
      appStateRoot: new Uint8Array(32),
      consensusProof: new Uint8Array(0),
    },
  );
  const heightContext = nextHeightContext(
    genesisContext,
    first,
    (await signCommit(validators, first)).commit,
  );
  const builder = createBlockProofs({
    genesis,
    genesisHash: hash,
    stampOf,
    self: { privateKey: proposer.privateKey, plot, networkAddress: 'stoq://proposer.bench:9292' },
  });
  const checker = createBlockProofs({ genesis, genesisHash: hash, stampOf });
  const template = blockTemplate(CHAIN_ID, heightContext, proposer.address);

  for (const txCount of txCounts) {
    context.progress(`${label}: minting ${txCount} stamps at ${params.work.stampDifficulty} bits`);
    const txs = transactions(txCount, params.work.stampDifficulty);
    const samples: Record<'build' | 'check' | 'falcon' | 'verify' | 'sampled' | 'chain', number[]> =
      { build: [], check: [], falcon: [], verify: [], sampled: [], chain: [] };
    let size = 0;
    for (let run = 0; run < runs; run++) {
      const [proof, buildMs] = timed(() => builder.build(template, txs));
      const block = buildBlock(template, {
        transactions: txs,
        evidence: [],
        appStateRoot: taggedHash('bench/state', ...txs),
        consensusProof: proof,
      });
      size = proof.length;
      const [error, checkMs] = timed(() => checker.checkProposal(heightContext, block));
      if (error !== undefined) throw error;
      const { commit, falconMs } = await signCommit(validators, block);
      const input = {
        genesis,
        genesisHash: hash,
        block,
        commit,
        context: heightContext,
        stampOf,
        reexecute: () => taggedHash('bench/state', ...txs),
        falcon,
      };
      const [verdict, verifyMs] = timed(() => verifyCommittedBlock(input));
      if (!verdict.ok) throw new Error(`bench block does not verify: ${JSON.stringify(verdict)}`);
      const [, sampledMs] = timed(() =>
        verifyCommittedBlock({ ...input, sequentialWork: { mode: 'sampled', segments: 8 } }),
      );
      const seed = sequentialWorkSeed({
        chainId: CHAIN_ID,
        height: 2,
        parentHash: block.header.parentHash,
        previousProofOutput: randomBytes(32),
        proposer: proposer.publicKey,
      });
      const [, chainMs] = timed(() => computeSequentialWork(seed, params.time));
      samples.build.push(buildMs);
      samples.check.push(checkMs);
      samples.falcon.push(falconMs);
      samples.verify.push(verifyMs);
      samples.sampled.push(sampledMs);
      samples.chain.push(chainMs);
    }
    const tag = `${label}_${txCount}tx`;
    const chain = median(samples.chain);
    const emit = (metric: string, key: keyof typeof samples, withBaseline = false) =>
      context.emit({
        metric: `${tag}_${metric}`,
        value: median(samples[key]),
        unit: 'ms',
        ...(withBaseline ? { baseline: { name: 'hash chain alone', value: chain } } : {}),
        note,
      });
    emit('proposer_build_ms', 'build', true);
    emit('check_proposal_ms', 'check', true);
    emit('precommit_falcon_sign_ms', 'falcon');
    emit('verify_committed_full_ms', 'verify', true);
    emit('verify_committed_sampled8_ms', 'sampled');
    context.emit({ metric: `${tag}_proof_bytes`, value: size, unit: 'bytes', note });
  }
}

/** Milliseconds `task` takes, median of `runs`; each run gets its index. */
function medianMs(runs: number, task: (run: number) => void): number {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    task(run);
    times.push(performance.now() - start);
  }
  return median(times);
}

/**
 * PoWork re-execution without state (`hypermesh block verify`, storage/state-witness.ts): over a
 * store of `keys` keys, a block that reads and changes 1,000 keys (half existing, half new).
 * Node side: `stateWitness` (the tree nodes on the touched paths, and the values read) and its
 * encoding; verifier side: decode, check against the root, answer the reads and compute the
 * new root. Baseline: `computeRoot` on the store itself (what a node with the state does), and
 * for the size, the same keys' state proofs one by one.
 */
async function stateWitness(context: BenchContext, runs: number): Promise<void> {
  const keys = context.quick ? 20_000 : 100_000;
  const perBlock = 1000;
  const dir = await mkdtemp(join(tmpdir(), 'hypermesh-bench-witness-'));
  const store = openStore(join(dir, 'store.sqlite'));
  try {
    context.progress(`state witness: filling a store with ${keys} keys`);
    const encoder = new TextEncoder();
    const key = (i: number): Uint8Array => encoder.encode(`bench/key/${i}`);
    for (let from = 0; from < keys; from += 5000) {
      const stateChanges = Array.from({ length: Math.min(5000, keys - from) }, (_, i) => ({
        key: key(from + i),
        value: randomBytes(48),
      }));
      const height = (store.blocks.latestHeight() ?? 0) + 1;
      const stateRoot = store.state.computeRoot(stateChanges);
      const bytes = randomBytes(64);
      store.saveBlock({
        block: {
          height,
          hash: taggedHash('bench/block', bytes),
          parentHash: height === 1 ? new Uint8Array(32) : store.blocks.byHeight(height - 1)!.hash,
          timeMs: 1_700_000_000_000 + height,
          bytes,
        },
        commit: randomBytes(64),
        evidence: [],
        stateChanges,
        stateRoot,
      });
    }
    const height = store.blocks.latestHeight() as number;
    const root = store.state.root(height);
    // Run r touches keys r·1000 .. (existing half) and `new/r/...` (new half): no plan reuse.
    const block = (run: number) => {
      const existing = Array.from({ length: perBlock / 2 }, (_, i) =>
        key((run * perBlock + i * 7) % keys),
      );
      const fresh = Array.from({ length: perBlock / 2 }, (_, i) =>
        encoder.encode(`bench/new/${run}/${i}`),
      );
      const touched = [...existing, ...fresh];
      return { reads: touched, changes: touched.map((k) => ({ key: k, value: randomBytes(48) })) };
    };
    const blocks = Array.from({ length: runs }, (_, run) => block(run));
    const encoded: Uint8Array[] = [];
    const buildMs = medianMs(runs, (run) => {
      const { reads, changes } = blocks[run]!;
      encoded[run] = encodeStateWitness(store.stateWitness(height, reads, changes).witness);
    });
    const verifyMs = medianMs(runs, (run) => {
      const state = WitnessState.verify(decodeStateWitness(encoded[run]!), root);
      for (const read of blocks[run]!.reads) state.get(read);
      state.computeRoot(blocks[run]!.changes);
    });
    const baselineMs = medianMs(runs, (run) => {
      const { reads, changes } = blocks[run]!;
      for (const read of reads) store.state.get(read);
      store.state.computeRoot(changes);
    });
    const proofBytes = blocks[0]!.reads.reduce(
      (sum, read) => sum + encodeStateProof(store.state.getWithProof(read).proof).length,
      0,
    );
    const note = `${keys} keys, a block reading and changing ${perBlock} (half new), median of ${runs}`;
    context.emit({
      metric: 'state_witness_build_ms',
      value: buildMs,
      unit: 'ms',
      baseline: { name: 'reads + computeRoot on the store', value: baselineMs },
      note: `node side, with encoding; ${note}`,
    });
    context.emit({
      metric: 'state_witness_verify_and_root_ms',
      value: verifyMs,
      unit: 'ms',
      baseline: { name: 'reads + computeRoot on the store', value: baselineMs },
      note: `verifier side: decode, check against the root, reads, new root; ${note}`,
    });
    context.emit({
      metric: 'state_witness_bytes',
      value: encoded[0]!.length,
      unit: 'bytes',
      baseline: { name: "the same keys' state proofs one by one", value: proofBytes },
      note,
    });
  } finally {
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export default async function consensusProof(context: BenchContext): Promise<void> {
  const falcon = defaultFalcon();
  context.progress('generating 4 validators (Ed25519 + FALCON-1024)');
  const validators: BenchValidator[] = [];
  for (let i = 0; i < 4; i++) {
    const { privateKey } = generateEd25519KeyPair();
    const publicKey = ed25519RawPublicKey(privateKey);
    validators.push({
      privateKey,
      publicKey,
      address: validatorAddress(publicKey),
      pq: await falcon.generateKeyPair(),
    });
  }
  const runs = context.quick ? 5 : 11;
  await stateWitness(context, runs);
  await paramSet(context, 'dev', DEV_PROOF_PARAMS, validators, [0, 1000], runs, runs);
  if (!context.quick) {
    // A DEFAULT stamp costs ~2^16 hashes to mint: 100 transactions, not 1000.
    await paramSet(context, 'default', DEFAULT_PROOF_PARAMS, validators, [0, 100], runs, 1);
  }
}
