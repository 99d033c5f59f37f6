/**
 * A HyperMesh node serving the benchmark zone from consensus state, for the DNS benchmark's
 * "against one node" measurement (issue 5 §3): a one-validator cluster made by the genesis
 * ceremony (`cluster init` with the cluster zone `hypermesh.` in `app.dns`, the zone signed as
 * `cluster init` signs it, no service catalog and no CA), one `hypermesh node start` child (the
 * built bin), and the benchmark zone written into its state as signed `dns` transactions:
 * every name registered (`name-register`), then every RRset set (`records-set`), the apex ones
 * by the operator (the zone's admin). The SOA and apex NS come from the genesis, with the same
 * fields as bench/dns/zone.ts (the serial is the height of the last change).
 *
 * Once every transaction is committed and the node answers the last record written, the node
 * process (all its threads) is pinned to SERVER_CPU with `taskset`, like the other servers.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  DEFAULT_MAX_SEQUENCE_LEAD,
  buildTransaction,
} from '../../src/consensus/application/index.js';
import { DEV_PROOF_PARAMS } from '../../src/consensus/genesis.js';
import { MAX_SUBMIT_BATCH, type NodeRpcClient } from '../../src/consensus/net/index.js';
import { toHex } from '../../src/crypto/bytes.js';
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { initCluster } from '../../src/node/cluster-init.js';
import { operatorKey } from '../../src/node/kv-tools.js';
import { openOperatorSession, type OperatorSession } from '../../src/node/operator.js';
import { provenSequence } from '../../src/node/tx-submit.js';
import type { RecordInput } from '../../src/trustchain/dns/index.js';
import {
  DNS_ZONES_MODULE_NAME,
  MAX_NAMES_PER_OWNER,
  MAX_RECORDS_PER_NAME,
  dnsNameRegister,
  dnsRecordsSet,
} from '../../src/trustchain/dns-zones/index.js';
import { ensureBuilt, spawnBenchCluster } from '../consensus/cluster.js';
import { SERVER_CPU, type RunningServer } from './tools.js';
import { BENCH_ZONE, benchZone } from './zone.js';

const run = promisify(execFile);

const CHAIN_ID = 'bench-dns';
const STAMP_DIFFICULTY = 4;
const NODE = 'node-1';
/**
 * Transactions one sender has in flight at most: a node refuses a sequence more than
 * DEFAULT_MAX_SEQUENCE_LEAD ahead of the sender's next (TX_SEQUENCE_TOO_FAR), so each key owns
 * few enough names that its registrations, then its RRsets, each fit in one window.
 */
const PER_SENDER = Math.min(DEFAULT_MAX_SEQUENCE_LEAD, MAX_NAMES_PER_OWNER);

/**
 * The benchmark zone as the node holds it: bench/dns/zone.ts's records but the SOA and apex NS
 * (the genesis sets those), and the SRV set cut to the module's MAX_RECORDS_PER_NAME (it has
 * one record per host; the query mix never asks for it). Knot gets the same records for the
 * node comparison.
 */
export function nodeZone(hosts: number): RecordInput[] {
  let srv = 0;
  return benchZone(hosts).filter((record) => {
    if (record.type !== 'SRV') return true;
    srv += 1;
    return srv <= MAX_RECORDS_PER_NAME;
  });
}

/** The records the transactions write: `nodeZone` without the genesis-managed SOA and apex NS. */
function writtenRecords(hosts: number): RecordInput[] {
  return nodeZone(hosts).filter(
    (record) => !(record.name === BENCH_ZONE && (record.type === 'SOA' || record.type === 'NS')),
  );
}

/** RRsets in zone order: the records of one name and type together. */
function rrsets(records: readonly RecordInput[]): RecordInput[][] {
  const sets = new Map<string, RecordInput[]>();
  for (const record of records) {
    const key = `${record.name} ${record.type}`;
    const set = sets.get(key);
    if (set === undefined) sets.set(key, [record]);
    else set.push(record);
  }
  return [...sets.values()];
}

interface Sender {
  readonly privateKey: ReturnType<typeof ed25519PrivateKeyFromSeed>;
  next: number;
}

interface SignedTx {
  readonly bytes: Uint8Array;
  readonly txHash: Uint8Array;
}

function signed(sender: Sender, body: Uint8Array): SignedTx {
  const built = buildTransaction({
    chainId: CHAIN_ID,
    privateKey: sender.privateKey,
    sequence: sender.next,
    module: DNS_ZONES_MODULE_NAME,
    body,
    stampDifficulty: STAMP_DIFFICULTY,
  });
  sender.next += 1;
  return built;
}

/** Submits `txs` in `submitTxs` batches, in order; any refusal stops the benchmark. */
async function submitAll(client: NodeRpcClient, txs: readonly SignedTx[]): Promise<void> {
  for (let start = 0; start < txs.length; start += MAX_SUBMIT_BATCH) {
    const batch = txs.slice(start, start + MAX_SUBMIT_BATCH).map((tx) => tx.bytes);
    const results = await client.submitTxs(batch, { deadlineMs: 30_000 });
    results.forEach((result, i) => {
      if (!result.ok) {
        throw new Error(
          `loading the zone: transaction ${start + i} refused: ${result.code} ${result.message}`,
        );
      }
    });
  }
}

/**
 * Counts the transactions committed from now on (the cluster runs nothing else). The returned
 * function resolves once `total` of them are committed, or rejects after `timeoutMs`.
 */
function committedCounter(
  onCommit: (listener: (event: { txs: number }) => void) => void,
): (total: number, timeoutMs: number, progress: (message: string) => void) => Promise<void> {
  let committed = 0;
  const waiters = new Set<() => void>();
  onCommit((event) => {
    committed += event.txs;
    for (const waiter of waiters) waiter();
  });
  return (total, timeoutMs, progress) =>
    new Promise((resolve, reject) => {
      let reported = committed;
      const check = (): void => {
        if (committed >= total) {
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        } else if (committed - reported >= 500) {
          reported = committed;
          progress(`zone load: ${committed} of ${total} transactions committed`);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(
            `loading the zone: ${committed} of ${total} transactions committed after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      waiters.add(check);
      check();
    });
}

/**
 * Checks that every transaction was applied (`txStatus` committed with code 0), not only
 * committed: a records-set its module refused is in a block too, and its records are not.
 */
async function checkApplied(client: NodeRpcClient, txs: readonly SignedTx[]): Promise<void> {
  const parallel = 64;
  for (let start = 0; start < txs.length; start += parallel) {
    const statuses = await Promise.all(
      txs.slice(start, start + parallel).map((tx) => client.txStatus(tx.txHash)),
    );
    statuses.forEach((status, i) => {
      if (status.status !== 'committed' || status.code !== 0) {
        throw new Error(
          `loading the zone: transaction ${start + i} not applied: ${JSON.stringify(status)}`,
        );
      }
    });
  }
}

/** Asks the node's DNS port for `name AAAA` with dig until it answers `address`. */
async function waitForRecord(
  host: string,
  port: number,
  name: string,
  address: string,
  timeoutMs: number,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { stdout } = await run('dig', [
      `@${host}`,
      '-p',
      String(port),
      name,
      'AAAA',
      '+tries=1',
      '+time=1',
      '+short',
    ]).catch(() => ({ stdout: '' }));
    if (stdout.trim() === address) return;
    if (Date.now() > until) {
      throw new Error(`the node does not answer ${name} AAAA ${address} after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface RunningNode extends RunningServer {
  /** The node's DNS port (UDP and TCP). */
  readonly port: number;
  /** Transactions that wrote the zone. */
  readonly transactions: number;
  /** Seconds from the first submission until the node answered the last record. */
  readonly loadSeconds: number;
}

/**
 * Starts the one-validator cluster in `dir`, writes `nodeZone(hosts)` into its state and pins the
 * node to SERVER_CPU. `timeoutMs` bounds the start and each loading phase.
 */
export async function startDnsNode(options: {
  readonly dir: string;
  readonly host: string;
  readonly hosts: number;
  readonly progress: (message: string) => void;
  readonly timeoutMs?: number;
}): Promise<RunningNode> {
  const { progress, hosts } = options;
  const timeoutMs = options.timeoutMs ?? 180_000;
  await ensureBuilt(progress);
  const layout = await initCluster({
    out: path.join(options.dir, 'cluster'),
    validators: 1,
    chainId: CHAIN_ID,
    host: options.host,
    basePort: 0,
    metricsBasePort: 0,
    proofParams: { ...DEV_PROOF_PARAMS, work: { stampDifficulty: STAMP_DIFFICULTY } },
    dns: true,
    discovery: false,
    ca: false,
  });
  const dnsAddress = layout.nodes[0]?.dns;
  if (dnsAddress === null || dnsAddress === undefined) {
    throw new Error('cluster init wrote no DNS address for node-1');
  }
  // The node's own log lines are kept in its node.log, not echoed: a block is logged per commit.
  const cluster = await spawnBenchCluster<OperatorSession>(layout, {
    connections: 1,
    progress: () => undefined,
    open: openOperatorSession,
    startTimeoutMs: timeoutMs,
  });
  try {
    const pid = cluster.processes[0]?.child.pid;
    if (pid === undefined) throw new Error('the node process has no pid');
    const client = cluster.sessions[0]!.client(NODE);

    const sets = rrsets(writtenRecords(hosts));
    const names = [...new Set(sets.map((set) => set[0]!.name))].filter((n) => n !== BENCH_ZONE);
    const setsAt = new Map<string, number>();
    for (const set of sets) setsAt.set(set[0]!.name, (setsAt.get(set[0]!.name) ?? 0) + 1);
    const senders: Sender[] = [];
    const ownerOf = new Map<string, Sender>();
    let owned = { names: PER_SENDER, sets: PER_SENDER };
    for (const name of names) {
      const count = setsAt.get(name) ?? 0;
      if (owned.names + 1 > PER_SENDER || owned.sets + count > PER_SENDER) {
        senders.push({
          privateKey: ed25519PrivateKeyFromSeed(new Uint8Array(randomBytes(32))),
          next: 0,
        });
        owned = { names: 0, sets: 0 };
      }
      owned = { names: owned.names + 1, sets: owned.sets + count };
      ownerOf.set(name, senders[senders.length - 1]!);
    }
    const operatorPrivate = await operatorKey(layout.operator.keyFile);
    const operator: Sender = {
      privateKey: operatorPrivate,
      next: (await provenSequence(client, ed25519RawPublicKey(operatorPrivate))).sequence,
    };

    const waitCommitted = committedCounter((listener) => cluster.onCommit(listener));
    const started = performance.now();
    progress(
      `zone load: ${names.length} names by ${senders.length} keys, then ${sets.length} RRsets ` +
        `(apex ones by the operator ${toHex(ed25519RawPublicKey(operatorPrivate)).slice(0, 8)}…)`,
    );
    const registers = names.map((name) => signed(ownerOf.get(name)!, dnsNameRegister(name)));
    await submitAll(client, registers);
    await waitCommitted(registers.length, timeoutMs, progress);
    // A records-set is checked against the latest state, so it goes in once its name is owned.
    const records = sets.map((set) => {
      const name = set[0]!.name;
      return signed(name === BENCH_ZONE ? operator : ownerOf.get(name)!, dnsRecordsSet(set));
    });
    await submitAll(client, records);
    await waitCommitted(registers.length + records.length, timeoutMs, progress);
    await checkApplied(client, [...registers, ...records]);
    const last = hosts - 1;
    await waitForRecord(
      dnsAddress.host,
      dnsAddress.port,
      `host-${last}.${BENCH_ZONE}`,
      `fd00::${last.toString(16)}`,
      timeoutMs,
    );
    const loadSeconds = (performance.now() - started) / 1000;
    progress(
      `zone load: ${registers.length + records.length} transactions committed and served in ${loadSeconds.toFixed(1)} s`,
    );
    // -a: every thread of the running node (its worker threads too), as taskset-started servers.
    await run('taskset', ['-a', '-p', '-c', SERVER_CPU, String(pid)]);
    const affinity = await readFile(`/proc/${pid}/status`, 'utf8');
    const allowed = /Cpus_allowed_list:\s*(\S+)/.exec(affinity)?.[1];
    if (allowed !== SERVER_CPU)
      throw new Error(`the node is on CPUs ${allowed}, not ${SERVER_CPU}`);
    return {
      pid,
      port: dnsAddress.port,
      transactions: registers.length + records.length,
      loadSeconds,
      stop: () => cluster.close(),
    };
  } catch (error) {
    await cluster.close();
    throw error;
  }
}
