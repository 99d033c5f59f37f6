/**
 * Native issuance through the cluster: pre-built `ca` `request` transactions (build-worker.ts)
 * submitted one per `issue` call of `hypermesh.trustchain.ca.v1`, and each certificate followed
 * to the block that publishes it.
 *
 * Publication is read from the blocks themselves: the observer's (node-1's) committed blocks are
 * fetched; a `request` transaction of the load committed in block h is published by the first
 * `publish` transaction naming h (docs/ca.md "Publication": one batch per block, one FALCON
 * batch signature). The count is checked against the proven `ca/published` answer of that
 * block. Latency = the observer's commit time of the publishing block − the time the
 * transaction was handed to the client (block time of the certificate's availability in state,
 * and of its CT log append on every node).
 */
import { toHex } from '../../src/crypto/bytes.js';
import {
  TX_RESULT_QUERY,
  decodeRecordedTxResult,
  decodeTransaction,
} from '../../src/consensus/application/index.js';
import { decodeBlock } from '../../src/consensus/wire.js';
import { certificateSerial } from '../../src/trustchain/ca/issue.js';
import { StoqError } from '../../src/stoq/index.js';
import {
  CA_MODULE_NAME,
  CaStateReader,
  caQuery,
  decodeCaBody,
  verifiedCaValue,
} from '../../src/trustchain/ca-module/index.js';
import { publishedKey } from '../../src/trustchain/ca-module/state.js';
import { CommitTracker, type Submit, type Submitted } from '../consensus/load.js';
import { describeLatency, percentileCountingMissing } from '../percentile.js';
import { prepareLoad, type PreparedLoad } from '../consensus/transactions.js';
import type { TrustchainCluster } from './cluster.js';

/** `BuildJob.params` of build-worker.ts. */
export interface IssueParams {
  readonly cluster: string;
  readonly tag: string;
}

/**
 * Certificates per sender account in one step: below the genesis default rate limit of 100
 * issuances per account and hour (docs/ca.md), so a step is never refused for it, and below the
 * router's 64-transaction sequence lead at any moment.
 */
export const PER_ACCOUNT = 60;
const BUILDER = new URL('./build-worker.ts', import.meta.url);

export function prepareIssuance(options: {
  readonly chainId: string;
  readonly cluster: string;
  readonly stampDifficulty: number;
  readonly count: number;
  readonly tag: string;
  /** Sender accounts (default: enough for PER_ACCOUNT each, at least 8). */
  readonly senders?: number;
}): Promise<PreparedLoad> {
  const params: IssueParams = { cluster: options.cluster, tag: options.tag };
  return prepareLoad({
    chainId: options.chainId,
    stampDifficulty: options.stampDifficulty,
    senders: options.senders ?? Math.max(8, Math.ceil(options.count / PER_ACCOUNT)),
    count: options.count,
    tag: options.tag,
    builder: BUILDER,
    params,
  });
}

const SUBMIT_DEADLINE_MS = 15_000;

/** One `issue` call of `hypermesh.trustchain.ca.v1` per transaction. */
export function caIssueSubmit(cluster: TrustchainCluster): Submit {
  return async (tx, node, connection) => {
    try {
      const answer = await cluster
        .ca(connection, node)
        .call('issue', { tx }, { deadlineMs: SUBMIT_DEADLINE_MS });
      return answer.accepted ? null : (answer.code ?? 'refused');
    } catch (error) {
      return error instanceof StoqError ? `call failed: ${error.code}` : 'call failed';
    }
  };
}

/** A CommitTracker that keeps the step's submission records (their hand-over times). */
export class RecordingTracker extends CommitTracker {
  records: ReadonlyMap<string, Submitted> = new Map();
  override track(hashes: ReadonlyMap<string, Submitted>): void {
    this.records = hashes;
    super.track(hashes);
  }
}

interface PublicationBlock {
  readonly height: number;
  readonly time: number;
  /** Certificates the block published (its proven `ca/published` serials). */
  readonly certificates: number;
}

function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/**
 * Follows the observer's blocks: the block each request was committed in, the block that
 * published each batch, and — from the node's proven `ca/published` answer for that block —
 * which serials it published. A request counts as published only when its serial (derived from
 * chain, height and transaction hash, as the module derives it) is in that list: a request
 * refused at execution (e.g. a full batch) is committed but never published.
 */
export class PublicationFollower {
  private readonly observer: string;
  private chain: Promise<void> = Promise.resolve();
  private lastLogged = 0;
  private lastProcessed = 0;
  private readonly times = new Map<number, number>();
  /** txHash (hex) → height of the block that committed the request. */
  private readonly requestHeights = new Map<string, number>();
  /** Batch height → the blocks holding a `publish` naming it (one may be refused). */
  private readonly publishedIn = new Map<number, number[]>();
  /** Block height → serials (hex) it published. */
  private readonly serialsAt = new Map<number, Set<string>>();
  private readonly publications: PublicationBlock[] = [];
  /** txHash → the refusal code of a request committed but refused at execution. */
  private readonly refusals = new Map<string, string>();
  readonly errors: string[] = [];

  constructor(private readonly cluster: TrustchainCluster) {
    this.observer = cluster.names[0] as string;
    cluster.onCommit((event) => {
      if (event.node !== this.observer || event.height <= this.lastLogged) return;
      this.lastLogged = event.height;
      const { height, time } = event;
      this.chain = this.chain.then(() => this.read(height, time));
    });
  }

  private async read(height: number, time: number): Promise<void> {
    try {
      const client = this.cluster.client(0, this.observer);
      const synced = await client.getBlock(height, { deadlineMs: 30_000 });
      this.times.set(height, time);
      const batches: number[] = [];
      for (const bytes of decodeBlock(synced.block).transactions) {
        const tx = decodeTransaction(bytes);
        if (tx.module !== CA_MODULE_NAME) continue;
        const body = decodeCaBody(tx.body);
        if (body.op === 'request' || body.op === 'renew') {
          this.requestHeights.set(toHex(tx.txHash), height);
        } else if (body.op === 'publish') {
          batches.push(body.height);
        }
      }
      if (batches.length === 0) return;
      const value = verifiedCaValue(
        publishedKey(height),
        await client.query(caQuery('published', u64(height))),
      );
      const record =
        value === null ? null : new CaStateReader({ get: () => value }).published(height);
      if (record === null) {
        this.errors.push(`block ${height} carries a publish transaction but ca/published is empty`);
        return;
      }
      this.serialsAt.set(height, new Set(record.serials.map((serial) => toHex(serial))));
      for (const batch of batches) {
        this.publishedIn.set(batch, [...(this.publishedIn.get(batch) ?? []), height]);
      }
      this.publications.push({ height, time, certificates: record.serials.length });
    } catch (error) {
      this.errors.push(`block ${height}: ${(error as Error).message}`);
    } finally {
      this.lastProcessed = Math.max(this.lastProcessed, height);
    }
  }

  /**
   * The observer's commit time of the block publishing request `txHash`; null while it is not
   * published (or when it was refused at execution).
   */
  publishedAt(txHash: string): number | null {
    const height = this.requestHeights.get(txHash);
    if (height === undefined) return null;
    const serial = toHex(
      certificateSerial(
        this.cluster.genesis.chainId,
        height,
        Uint8Array.from(Buffer.from(txHash, 'hex')),
      ),
    );
    for (const at of this.publishedIn.get(height) ?? []) {
      if (this.serialsAt.get(at)?.has(serial) === true) return this.times.get(at) ?? null;
    }
    return null;
  }

  /** The refusal code when `txHash` was committed but refused at execution (once asked). */
  refusal(txHash: string): string | undefined {
    return this.refusals.get(txHash);
  }

  /**
   * For a request committed in a block whose batch has a publication but that is not in it:
   * asks node-1 for the transaction's recorded result and remembers a refusal's code.
   */
  async checkRefused(txHash: string): Promise<void> {
    const height = this.requestHeights.get(txHash);
    if (height === undefined || this.refusals.has(txHash)) return;
    if ((this.publishedIn.get(height) ?? []).length === 0 || this.publishedAt(txHash) !== null) {
      return;
    }
    const answer = await this.cluster
      .client(0, this.observer)
      .query({ path: TX_RESULT_QUERY, data: Uint8Array.from(Buffer.from(txHash, 'hex')) });
    if (answer.value === null) return;
    const result = decodeRecordedTxResult(answer.value);
    if (result.code === 0) return;
    const colon = result.log.indexOf(': ');
    this.refusals.set(txHash, colon === -1 ? result.log : result.log.slice(0, colon));
  }

  /** Waits until every block logged so far is read (at most `ms`). */
  async settle(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.lastProcessed < this.lastLogged && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Certificates published in blocks committed in [from, to). */
  publishedBetween(from: number, to: number): number {
    return this.blocksBetween(from, to).reduce((sum, block) => sum + block.certificates, 0);
  }

  /** Publication blocks with a commit time in [from, to). */
  blocksBetween(from: number, to: number): readonly PublicationBlock[] {
    return this.publications.filter((block) => block.time >= from && block.time < to);
  }
}

export interface PublicationResult {
  /** Certificates of the step published per second in the window (block-aligned). */
  readonly publishedRate: number;
  /**
   * Hand-over → publishing block commit, ms, for every in-window transaction published;
   * percentiles count the `unpublished` ones too (`publicationLatency`).
   */
  readonly latencies: readonly number[];
  /** In-window transactions not published by the end of the wait. */
  readonly unpublished: number;
  /** In-window transactions committed but refused at execution, by refusal code. */
  readonly refused: ReadonlyMap<string, number>;
  readonly publicationBlocks: number;
  readonly meanBatch: number;
}

/**
 * After a step: waits (up to `waitMs`) until the window's committed requests are published,
 * then measures. The window is [first hand-over + warm-up, + window).
 */
export async function measurePublication(options: {
  readonly follower: PublicationFollower;
  readonly records: ReadonlyMap<string, Submitted>;
  readonly warmupSeconds: number;
  readonly windowSeconds: number;
  readonly waitMs: number;
}): Promise<PublicationResult> {
  const { follower, records } = options;
  const sent = [...records].filter(([, record]) => record.at > 0);
  const start = Math.min(...sent.map(([, record]) => record.at));
  const windowStart = start + options.warmupSeconds * 1000;
  const windowEnd = windowStart + options.windowSeconds * 1000;
  const inWindow = sent.filter(([, record]) => record.at >= windowStart && record.at < windowEnd);
  const deadline = Date.now() + options.waitMs;
  const waitingFor = (): Array<[string, Submitted]> =>
    inWindow.filter(
      ([hash, record]) =>
        record.committedAt !== null &&
        follower.publishedAt(hash) === null &&
        follower.refusal(hash) === undefined,
    );
  for (let waiting = waitingFor(); waiting.length > 0; waiting = waitingFor()) {
    for (const [hash] of waiting) await follower.checkRefused(hash);
    if (Date.now() >= deadline) break;
    await follower.settle(5_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await follower.settle(10_000);
  const latencies: number[] = [];
  for (const [hash, record] of inWindow) {
    const at = follower.publishedAt(hash);
    if (at !== null) latencies.push(at - record.at);
  }
  const blocks = follower.blocksBetween(windowStart, windowEnd);
  let publishedRate = 0;
  const first = blocks[0];
  const last = blocks[blocks.length - 1];
  const certificates = (block: PublicationBlock): number => block.certificates;
  if (first !== undefined && last !== undefined && last.time > first.time) {
    // Block-aligned, as runStep counts commits: the blocks after the first over the time span.
    const count = blocks.slice(1).reduce((sum, block) => sum + certificates(block), 0);
    publishedRate = count / ((last.time - first.time) / 1000);
  } else if (first !== undefined) {
    publishedRate = certificates(first) / options.windowSeconds;
  }
  return {
    publishedRate,
    latencies,
    unpublished: inWindow.length - latencies.length,
    refused: inWindow.reduce((codes, [hash]) => {
      const code = follower.refusal(hash);
      if (code !== undefined) codes.set(code, (codes.get(code) ?? 0) + 1);
      return codes;
    }, new Map<string, number>()),
    publicationBlocks: blocks.length,
    meanBatch:
      blocks.length === 0
        ? 0
        : blocks.reduce((sum, block) => sum + certificates(block), 0) / blocks.length,
  };
}

/**
 * The p-th issuance latency percentile over every request handed over in the window, one never
 * published (not committed, refused at execution, or not published by the end of the wait)
 * counted as +Infinity (percentileCountingMissing).
 */
export function publicationLatency(
  result: Pick<PublicationResult, 'latencies' | 'unpublished'>,
  p: number,
): number {
  return percentileCountingMissing(result.latencies, result.unpublished, p);
}

export function describeCodes(codes: ReadonlyMap<string, number>): string {
  return [...codes].map(([code, n]) => `${n}x ${code}`).join(', ');
}

export function describePublication(result: PublicationResult): string {
  return (
    `published ${result.publishedRate.toFixed(0)}/s in ${result.publicationBlocks} publication blocks ` +
    `(mean ${result.meanBatch.toFixed(0)} certificates per block), issuance p50 ` +
    `${describeLatency(publicationLatency(result, 50))}, p99 ${describeLatency(publicationLatency(result, 99))}, ` +
    `unpublished ${result.unpublished}` +
    (result.refused.size === 0 ? '' : ` (refused at execution: ${describeCodes(result.refused)})`)
  );
}

export interface ClosedLoopResult {
  readonly completed: number;
  readonly failures: ReadonlyMap<string, number>;
  /** Hand-over → the follower has read the publishing block, ms. */
  readonly latencies: readonly number[];
  readonly rate: number;
}

/**
 * `clients` clients, each issuing its certificates one after the other: submit (one `issue`
 * call), then wait until the observer's publishing block has been read. `load` must have been
 * built with `senders` = `clients`, so client w sends sender w's transactions in sequence order.
 */
export async function runClosedLoop(options: {
  readonly cluster: TrustchainCluster;
  readonly follower: PublicationFollower;
  readonly load: PreparedLoad;
  readonly clients: number;
  readonly submit: Submit;
  readonly deadline: number;
  readonly perCertificateTimeoutMs: number;
}): Promise<ClosedLoopResult> {
  const { cluster, follower, load, clients } = options;
  const latencies: number[] = [];
  const failures = new Map<string, number>();
  const fail = (message: string): void => {
    failures.set(message, (failures.get(message) ?? 0) + 1);
  };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, w) => {
      const node = cluster.names[w % cluster.names.length] as string;
      for (let i = w; i < load.txs.length; i += clients) {
        if (Date.now() >= options.deadline) return;
        const at = Date.now();
        const code = await options.submit(load.txs[i] as Uint8Array, node, w);
        if (code !== null) {
          fail(code);
          // The sender's later sequences cannot be admitted after a refusal.
          return;
        }
        const hash = load.hashes[i] as string;
        const giveUp = at + options.perCertificateTimeoutMs;
        while (follower.publishedAt(hash) === null && Date.now() < giveUp) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        if (follower.publishedAt(hash) === null) {
          fail(`not published within ${options.perCertificateTimeoutMs} ms`);
          return;
        }
        latencies.push(Date.now() - at);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { completed: latencies.length, failures, latencies, rate: latencies.length / seconds };
}
