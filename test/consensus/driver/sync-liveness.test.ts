import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { isHyperMeshError } from '../../../src/codec/error.js';
import { readSyncedBlocks } from '../../../src/consensus/driver/block-checks.js';
import { SyncDeadline, SyncTimeoutError } from '../../../src/consensus/driver/block-sync.js';
import { DriverRejection } from '../../../src/consensus/driver/driver-types.js';
import { ConsensusDriver, DriverErrorCode } from '../../../src/consensus/driver/index.js';
import type { SyncedBlock } from '../../../src/consensus/driver/ports.js';
import { openStore } from '../../../src/storage/index.js';
import {
  chainSummary,
  falcon,
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  waitUntil,
  type TestNode,
  type ValidatorIdentity,
} from './fixtures.js';
import { KvTestApp, TestMempool, TestProofs } from './test-app.js';

const MALLORY = 'mallory';
const IDLE_MS = 250;

/** What Mallory's `blocks` stream does for a node asking for `from..`. */
type LyingStream = (cluster: TestCluster, from: number) => AsyncIterable<SyncedBlock>;

/** Never sends a block, and ignores the abort signal (the worst case for the asking node). */
const silent: LyingStream = async function* () {
  await new Promise<never>(() => undefined);
};

/** One valid block when an honest node has it, then silence. */
const trickling: LyingStream = async function* (cluster, from) {
  const [real] = readSyncedBlocks(cluster.node(0).store, from, from);
  if (real !== undefined) yield real;
  await new Promise<never>(() => undefined);
};

interface LiarCall {
  readonly asker: string;
  readonly from: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * Mallory, a connected peer, answers every status with one claiming 1,000 more committed
 * heights, and `node`'s fetches from her get `stream` (the honest peers serve as usual).
 */
function lieTo(node: TestNode, cluster: TestCluster, stream: LyingStream, calls: LiarCall[]): void {
  const endpoint = node.endpoint;
  const honest = endpoint.fetchBlocks.bind(endpoint);
  endpoint.fetchBlocks = (peer, from, to, signal) => {
    if (peer !== MALLORY) return honest(peer, from, to, signal);
    calls.push({ asker: node.id, from, signal });
    return stream(cluster, from);
  };
}

function timedOutOn(node: TestNode, peer: string): boolean {
  return node.rejections.some(
    (rejection) =>
      rejection.reason === DriverRejection.SYNC_FAILED &&
      rejection.peer === peer &&
      rejection.error instanceof SyncTimeoutError &&
      rejection.error.code === SyncDeadline.IDLE,
  );
}

describe('ConsensusDriver: block sync from a peer that lies about its height', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(4);
  });

  it('refuses sync deadlines that are not whole ms from 1 to 2^31 - 1', () => {
    const genesis = makeGenesisDocument(identities);
    const cluster = new TestCluster(identities, genesis);
    const store = openStore(join(cluster.dir, 'options.sqlite'));
    try {
      const base = {
        genesis,
        store,
        walPath: join(cluster.dir, 'wal'),
        signerStatePath: join(cluster.dir, 'signer'),
        self: null,
        falcon,
        app: new KvTestApp(store),
        mempool: new TestMempool(),
        network: cluster.hub.join('probe', store),
        proofs: new TestProofs(),
      };
      for (const name of ['syncIdleTimeoutMs', 'syncPageTimeoutMs'] as const) {
        for (const value of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
          assert.throws(
            () => new ConsensusDriver({ ...base, [name]: value }),
            (error: unknown) =>
              isHyperMeshError(error, DriverErrorCode.INVALID_OPTIONS) &&
              (error as Error).message.startsWith(name),
            `${name} ${value}`,
          );
        }
        assert.ok(new ConsensusDriver({ ...base, [name]: 2 ** 31 - 1 }));
      }
    } finally {
      store.close();
      rmSync(cluster.dir, { recursive: true, force: true });
    }
  });

  // The timeout: without the fix a node's sync never ends, so neither does stopping it.
  for (const [name, stream] of [
    ['never answers', silent],
    ['trickles one block and stalls', trickling],
  ] as const) {
    it(
      `keeps committing, and a node behind syncs from an honest peer, when the liar ${name}`,
      { timeout: 120_000 },
      async () => {
        const genesis = makeGenesisDocument(identities);
        const cluster = new TestCluster(identities, genesis, {
          options: { syncIdleTimeoutMs: IDLE_MS, syncPageTimeoutMs: 10_000 },
        });
        const calls: LiarCall[] = [];
        try {
          await cluster.startAll();
          await cluster.waitForHeight(2);
          await cluster.stop(3);
          const honest = cluster.running();
          for (const node of honest) lieTo(node, cluster, stream, calls);
          const mallory = cluster.hub.join(MALLORY, null);
          mallory.onMessage((peer, message) => {
            if (message.kind !== 'status') return;
            const claimed = message.committedHeight + 1_000;
            mallory.send(peer, {
              kind: 'status',
              committedHeight: claimed,
              height: claimed + 1,
              round: 0,
            });
          });

          // Every honest validator is lied to, abandons Mallory's fetch and keeps deciding.
          await waitUntil(
            () => honest.every((node) => timedOutOn(node, MALLORY)),
            () => `every honest node to give up on Mallory (calls: ${calls.length})`,
          );
          const base = Math.max(...honest.map((node) => node.height));
          await cluster.waitForHeight(base + 3, 20_000, honest);
          for (const node of honest) {
            assert.ok(
              calls.some((call) => call.asker === node.id),
              `${node.id} asked Mallory for blocks`,
            );
          }

          // Node 3 returns behind, first linked to Mallory only: she is asked first.
          const warnings: Record<string, unknown>[] = [];
          for (const other of honest) cluster.hub.setLink('node-3', other.id, false);
          const late = cluster.create(3, {
            log: (level, message, fields) => {
              if (level === 'warn' && message === 'block sync from a peer timed out') {
                warnings.push({ ...fields });
              }
            },
          });
          lieTo(late, cluster, stream, calls);
          const from = late.height + 1;
          await late.driver.start();
          await waitUntil(
            () => calls.some((call) => call.asker === late.id),
            'node-3 to ask Mallory for blocks',
          );
          for (const other of honest) cluster.hub.setLink('node-3', other.id, true);

          const target = cluster.node(0).height + 2;
          await cluster.waitForHeight(target);
          assert.ok(timedOutOn(late, MALLORY), 'node-3 gave up on Mallory');
          const first = calls.find((call) => call.asker === late.id) as LiarCall;
          assert.equal(first.from, from);
          assert.equal(first.signal?.aborted, true, 'the abandoned fetch was aborted');
          assert.ok(
            warnings.some(
              (fields) =>
                fields.peer === MALLORY && fields.reason === `no new block within ${IDLE_MS} ms`,
            ),
            JSON.stringify(warnings),
          );
          const synced = late.commits.filter((commit) => commit.source === 'sync');
          assert.ok(synced.length >= 2, `node-3 synced ${synced.length} blocks`);
          if (stream === trickling) {
            assert.equal(synced[0]?.height, from, 'the one block Mallory sent was stored');
          }
          const reference = chainSummary(cluster.node(0).store, target);
          for (const node of cluster.running()) {
            assert.deepEqual(chainSummary(node.store, target), reference, `${node.id} agrees`);
            assert.equal(node.driver.status().halted, null);
          }
        } finally {
          await cluster.close();
        }
      },
    );
  }
});
