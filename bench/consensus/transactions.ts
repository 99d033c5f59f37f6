import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { startTsWorker } from './ts-worker.js';

/**
 * Pre-built load: signed, stamped `kv` set transactions (key `<sender label>/<sequence>`, a short
 * value), from many fresh sender keys, built on every core before a measurement starts. Each
 * sender's transactions have consecutive sequence numbers from 0, so a step of the benchmark
 * never depends on what an earlier step left behind.
 */
export interface BuildJob {
  readonly chainId: string;
  readonly stampDifficulty: number;
  readonly perSender: number;
  readonly senders: readonly {
    readonly index: number;
    readonly label: string;
    readonly seed: Uint8Array;
    readonly firstSequence: number;
  }[];
  /** What a builder other than build-worker.ts needs (prepareLoad's `params`). */
  readonly params?: unknown;
}

export interface BuiltBatch {
  readonly senders: { index: number; txs: Uint8Array[]; hashes: Uint8Array[] }[];
}

/** The load of one step: `txs[i]` is sent i-th, by sender `i % senders`. */
export interface PreparedLoad {
  readonly senders: number;
  readonly txs: readonly Uint8Array[];
  readonly hashes: readonly string[];
  /** Sender of each transaction (its index). */
  senderOf(i: number): number;
  /** Mean encoded size. */
  readonly meanBytes: number;
}

const KV_BUILDER = new URL('./build-worker.ts', import.meta.url);

function runBuild(job: BuildJob, builder: URL): Promise<BuiltBatch> {
  return new Promise((resolve, reject) => {
    const worker = startTsWorker(builder, job);
    worker.once('message', (batch: BuiltBatch) => resolve(batch));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`transaction builder exited with ${code}`));
    });
  });
}

export async function prepareLoad(options: {
  readonly chainId: string;
  readonly stampDifficulty: number;
  readonly senders: number;
  readonly count: number;
  readonly tag: string;
  /** The senders' Ed25519 seeds, `senders` of them (default: fresh random keys). */
  readonly seeds?: readonly Uint8Array[];
  /**
   * The worker module that signs the transactions (default: build-worker.ts, kv sets). It gets
   * a `BuildJob` as its workerData and posts a `BuiltBatch`.
   */
  readonly builder?: URL;
  /** Handed to the builder as `BuildJob.params` (structured-cloned). */
  readonly params?: unknown;
}): Promise<PreparedLoad> {
  const { senders, count, seeds } = options;
  if (seeds !== undefined && seeds.length !== senders) {
    throw new RangeError(`${seeds.length} seeds given for ${senders} senders`);
  }
  const perSender = Math.ceil(count / senders);
  const keys = Array.from({ length: senders }, (_, index) => ({
    index,
    label: `${options.tag}-${index}`,
    seed: seeds?.[index] ?? new Uint8Array(randomBytes(32)),
    firstSequence: 0,
  }));
  const workers = Math.max(1, Math.min(availableParallelism(), senders));
  const shares = Array.from({ length: workers }, (_, w) =>
    keys.filter((_, i) => i % workers === w),
  );
  const batches = await Promise.all(
    shares.map((share) =>
      runBuild(
        {
          chainId: options.chainId,
          stampDifficulty: options.stampDifficulty,
          perSender,
          senders: share,
          ...(options.params === undefined ? {} : { params: options.params }),
        },
        options.builder ?? KV_BUILDER,
      ),
    ),
  );
  const bySender: { txs: Uint8Array[]; hashes: Uint8Array[] }[] = new Array(senders);
  for (const batch of batches) for (const sender of batch.senders) bySender[sender.index] = sender;
  const txs: Uint8Array[] = [];
  const hashes: string[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const sender = bySender[i % senders];
    const position = Math.floor(i / senders);
    const tx = sender?.txs[position];
    const hash = sender?.hashes[position];
    if (tx === undefined || hash === undefined) throw new Error(`transaction ${i} was not built`);
    txs.push(tx);
    hashes.push(Buffer.from(hash).toString('hex'));
    bytes += tx.length;
  }
  return {
    senders,
    txs,
    hashes,
    senderOf: (i) => i % senders,
    meanBytes: count === 0 ? 0 : bytes / count,
  };
}
