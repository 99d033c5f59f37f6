/**
 * Application throughput: checkTx/s, executeBlock tx/s and prepareProposal tx/s for blocks of
 * small KV transactions, on a real SQLite store in a temporary directory. One core, one process.
 *
 *   node --import tsx bench/application.ts [--blocks 5] [--txs 2000] [--senders 500]
 *
 * Prints one JSON line per metric (bench/report.ts format); progress goes to stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeCanonical } from '../src/codec/cbor.js';
import { sha256 } from '../src/crypto/hash.js';
import { ed25519Sign, ed25519Verify, generateEd25519KeyPair } from '../src/crypto/ed25519.js';
import { buildTransaction, createApplication } from '../src/consensus/application/index.js';
import type { BlockExecutionInput, BlockExecutionResult } from '../src/consensus/app.js';
import { openStore } from '../src/storage/index.js';
import type { NodeStore } from '../src/storage/index.js';
import { createKvModule, kvSet } from '../src/kv/index.js';
import { formatResult } from './report.js';

const { values } = parseArgs({
  options: {
    blocks: { type: 'string', default: '5' },
    txs: { type: 'string', default: '2000' },
    senders: { type: 'string', default: '500' },
  },
});
const BLOCKS = Number(values.blocks);
const TXS = Number(values.txs);
const SENDERS = Number(values.senders);
const CHAIN_ID = 'bench-chain';
const DIFFICULTY = 8;

const emit = (metric: string, value: number, unit: string, note?: string): void => {
  process.stdout.write(
    `${formatResult('application', { metric, value, unit, ...(note ? { note } : {}) })}\n`,
  );
};
const progress = (message: string): void => {
  process.stderr.write(`[bench application] ${message}\n`);
};

/** Wall-clock and CPU seconds of `task` (CPU time is what a loaded machine distorts least). */
function timed<T>(task: () => T): { value: T; wall: number; cpu: number } {
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  const value = task();
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  return { value, wall, cpu: (cpu.user + cpu.system) / 1e6 };
}

interface Samples {
  wall: number[];
  cpu: number[];
}

const samples = (): Samples => ({ wall: [], cpu: [] });

function record<T>(into: Samples, count: number, task: () => T): T {
  const { value, wall, cpu } = timed(task);
  into.wall.push(count / wall);
  into.cpu.push(count / cpu);
  return value;
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function save(store: NodeStore, height: number, result: BlockExecutionResult): void {
  const latest = store.blocks.latestHeight();
  const parentHash = latest === null ? new Uint8Array(32) : store.blocks.byHeight(latest)!.hash;
  const bytes = encodeCanonical({ height, parentHash, stateRoot: result.stateRoot });
  store.saveBlock({
    block: { height, hash: sha256(bytes), parentHash, timeMs: 1_700_000_000_000 + height, bytes },
    commit: encodeCanonical({ height }),
    evidence: [],
    stateChanges: [...result.changes],
    stateRoot: result.stateRoot,
  });
}

const dir = mkdtempSync(join(tmpdir(), 'hypermesh-bench-app-'));
try {
  const senders = Array.from({ length: SENDERS }, () => generateEd25519KeyPair().privateKey);
  const sequences = new Array<number>(SENDERS).fill(0);
  let counter = 0;
  const makeBlock = (): Uint8Array[] =>
    Array.from({ length: TXS }, (_, i) => {
      const s = i % SENDERS;
      const tx = buildTransaction({
        chainId: CHAIN_ID,
        privateKey: senders[s]!,
        sequence: sequences[s]!++,
        module: 'kv',
        body: kvSet(`key-${counter++}`, `a small value ${i}`),
        stampDifficulty: DIFFICULTY,
      });
      return tx.bytes;
    });

  progress(`building ${BLOCKS} blocks of ${TXS} transactions from ${SENDERS} senders`);
  const blocks = Array.from({ length: BLOCKS }, makeBlock);
  const bytesPerTx = blocks[0]!.reduce((sum, tx) => sum + tx.length, 0) / TXS;

  // Node A: checkTx then executeBlock (the validator path), then commit.
  // Node B: executeBlock without having seen the transactions (cold signature checks).
  // Node C: prepareProposal (the proposer path).
  const storeA = openStore(join(dir, 'a.db'));
  const storeB = openStore(join(dir, 'b.db'));
  const storeC = openStore(join(dir, 'c.db'));
  const options = { chainId: CHAIN_ID, modules: [createKvModule()], stampDifficulty: DIFFICULTY };
  const appA = createApplication({ ...options, state: storeA.state });
  const appB = createApplication({ ...options, state: storeB.state });
  const appC = createApplication({ ...options, state: storeC.state });
  const check = samples();
  const warm = samples();
  const cold = samples();
  const prepare = samples();
  const root = samples();
  for (const [index, transactions] of blocks.entries()) {
    const height = index + 1;
    const block: BlockExecutionInput = {
      chainId: CHAIN_ID,
      height,
      time: 1_700_000_000_000 + height,
      proposer: 'bench',
      transactions,
      evidence: [],
    };
    record(check, TXS, () => {
      for (const tx of transactions) {
        if (!appA.checkTx(tx).ok) throw new Error('checkTx refused a valid transaction');
      }
    });
    const warmResult = record(warm, TXS, () => appA.executeBlock(block));
    const coldResult = record(cold, TXS, () => appB.executeBlock(block));
    const proposed = record(prepare, TXS, () =>
      appC.prepareProposal(block, transactions, 64 * 1024 * 1024),
    );
    // The state-tree part alone (reordered, so the store's plan cache does not answer it).
    record(root, TXS, () => storeA.state.computeRoot([...warmResult.changes].reverse()));
    if (proposed.transactions.length !== TXS) throw new Error('the proposer left out transactions');
    if (warmResult.txResults.some((result) => result.code !== 0))
      throw new Error('a set was refused');
    const roots = [warmResult.stateRoot, coldResult.stateRoot, proposed.result.stateRoot].map(
      (root) => Buffer.from(root).toString('hex'),
    );
    if (new Set(roots).size !== 1) throw new Error('nodes disagree on the state root');
    save(storeA, height, warmResult);
    save(storeB, height, coldResult);
    save(storeC, height, proposed.result);
    appA.committed(height, warmResult);
    appB.committed(height, coldResult);
    appC.committed(height, proposed.result);
    progress(`block ${height}: ${storeA.state.keyCount()} state keys`);
  }
  const note = `${TXS}-tx blocks, ${SENDERS} senders, kv set ~${Math.round(bytesPerTx)} B/tx, median of ${BLOCKS} blocks`;
  const report = (metric: string, from: Samples): void => {
    emit(`${metric}, wall clock`, median(from.wall), 'tx/s', note);
    emit(`${metric}, per CPU second`, median(from.cpu), 'tx/s', note);
  };
  report('checkTx', check);
  report('executeBlock after checkTx (signatures cached)', warm);
  report('executeBlock of unseen transactions', cold);
  report('prepareProposal', prepare);
  report('state root of a block (computeRoot alone)', root);
  const combined = (from: 'wall' | 'cpu'): number =>
    1 / (1 / median(check[from]) + 1 / median(warm[from]));
  emit('checkTx + executeBlock, wall clock', combined('wall'), 'tx/s', note);
  emit('checkTx + executeBlock, per CPU second', combined('cpu'), 'tx/s', note);
  // The floor under every unseen transaction: one Ed25519 verification with a cached key.
  const { privateKey, publicKey } = generateEd25519KeyPair();
  const message = new Uint8Array(230);
  const signature = ed25519Sign(message, privateKey);
  const verifies = samples();
  record(verifies, 2000, () => {
    for (let i = 0; i < 2000; i++) ed25519Verify(signature, message, publicKey);
  });
  emit('Ed25519 verify alone (baseline), wall clock', median(verifies.wall), 'verify/s', note);
  emit('Ed25519 verify alone (baseline), per CPU second', median(verifies.cpu), 'verify/s', note);
  emit('load average at the end', loadavg()[0] ?? 0, 'runnable', 'os.loadavg()[0]');
  storeA.close();
  storeB.close();
  storeC.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
