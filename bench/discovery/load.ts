/**
 * The discovery benchmark's loads: pre-built `register` transactions (build-worker.ts), and
 * `resolve` timed call by call beside the node API's `status` on the same client connection.
 */
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import type { DiscoveryRpcClient } from '../../src/faces/discovery-rpc.js';
import { prepareLoad, type PreparedLoad } from '../consensus/transactions.js';

/** `BuildJob.params` of build-worker.ts. */
export interface RegisterParams {
  /** One service for every instance (the resolved one); default: one service per sender. */
  readonly service?: string;
  /** TTL in blocks: longer than the run, so nothing expires while it is measured. */
  readonly ttl: number;
}

/** Instances one sender key may own (docs/discovery.md, Limits). */
export const INSTANCES_PER_KEY = 32;
const TTL_BLOCKS = 100_000;
const BUILDER = new URL('./build-worker.ts', import.meta.url);

/**
 * `count` register transactions. For one `service`, from ⌈count / 32⌉ senders (a key owns at
 * most 32 instances); otherwise from at least 64 senders, each registering at most 16 instances
 * of its own service.
 */
export function prepareRegistrations(options: {
  readonly chainId: string;
  readonly stampDifficulty: number;
  readonly count: number;
  readonly tag: string;
  readonly service?: string;
}): Promise<PreparedLoad> {
  const { count, service } = options;
  const senders =
    service === undefined
      ? Math.max(64, Math.ceil(count / 16))
      : Math.ceil(count / INSTANCES_PER_KEY);
  const params: RegisterParams =
    service === undefined ? { ttl: TTL_BLOCKS } : { service, ttl: TTL_BLOCKS };
  return prepareLoad({
    chainId: options.chainId,
    stampDifficulty: options.stampDifficulty,
    senders,
    count,
    tag: options.tag,
    builder: BUILDER,
    params,
  });
}

export interface LatencySamples {
  /** Milliseconds per `resolve` call (proof checks in the client included). */
  readonly resolve: number[];
  /** Milliseconds per `status` call. */
  readonly status: number[];
}

/**
 * `calls` rounds of one `resolve(service)` and one `status()`, one call at a time, alternating
 * so load from elsewhere on the machine falls on both alike; stops early at `deadline`
 * (performance.now() time). Each resolve must return `expected` instances.
 */
export async function timeResolve(options: {
  readonly discovery: DiscoveryRpcClient;
  readonly api: NodeRpcClient;
  readonly service: string;
  readonly expected: number;
  readonly calls: number;
  readonly deadline: number;
}): Promise<LatencySamples> {
  const samples: LatencySamples = { resolve: [], status: [] };
  const callOptions = { deadlineMs: 10_000 };
  for (let i = 0; i < options.calls && performance.now() < options.deadline; i++) {
    let started = performance.now();
    const resolved = await options.discovery.resolve(options.service, undefined, callOptions);
    samples.resolve.push(performance.now() - started);
    if (resolved.instances.length !== options.expected) {
      throw new Error(
        `resolve(${options.service}) returned ${resolved.instances.length} instances, expected ${options.expected}`,
      );
    }
    started = performance.now();
    await options.api.status(callOptions);
    samples.status.push(performance.now() - started);
  }
  return samples;
}
