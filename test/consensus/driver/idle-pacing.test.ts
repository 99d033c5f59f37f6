import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isHyperMeshError } from '../../../src/codec/error.js';
import { ConsensusDriver } from '../../../src/consensus/driver/driver.js';
import { DriverErrorCode } from '../../../src/consensus/driver/errors.js';
import type { MempoolPort } from '../../../src/consensus/driver/ports.js';
import { decodeBlock } from '../../../src/consensus/wire.js';
import { openStore } from '../../../src/storage/index.js';
import {
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  TEST_TIMEOUTS,
  waitUntil,
  type ValidatorIdentity,
} from './fixtures.js';
import { KvTestApp, kvTx, TestMempool } from './test-app.js';

/**
 * Idle pacing (`idleBlockIntervalMs`): after an empty block with nothing pending, the next
 * height waits out the idle interval; a transaction admitted to the mempool, or a peer's
 * message of the next height, ends the wait. The interval here is a minute, so every height
 * the tests see after an idle wait was started by one of those wake-ups, not by the timer.
 */

const IDLE_MS = 60_000;
const COMMIT_DELAY_MS = 50;

/** TestMempool that tells listeners about each transaction added, as the node's mempool does. */
class NotifyingMempool extends TestMempool implements MempoolPort {
  private readonly listeners = new Set<() => void>();

  override add(tx: Uint8Array): void {
    super.add(tx);
    for (const listener of this.listeners) listener();
  }

  onAdmitted(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Pending transactions that wait for an earlier sequence: counted, never offered. */
  private waiting = 0;

  addWaiting(): void {
    this.waiting += 1;
    for (const listener of this.listeners) listener();
  }

  override size(): number {
    return super.size() + this.waiting;
  }

  readySize(): number {
    return super.size();
  }
}

describe('consensus driver: idle pacing', () => {
  let identities: ValidatorIdentity[];

  before(async () => {
    identities = await makeIdentities(4);
  });

  describe('a 4-validator cluster with a one-minute idle interval', () => {
    let cluster: TestCluster;

    before(async () => {
      const genesis = makeGenesisDocument(identities, {
        timeouts: TEST_TIMEOUTS,
        commitDelayMs: COMMIT_DELAY_MS,
      });
      cluster = new TestCluster(identities, genesis, {
        mempool: () => new NotifyingMempool(),
        options: { idleBlockIntervalMs: IDLE_MS },
      });
      await cluster.startAll();
    });

    after(async () => {
      await cluster.close();
    });

    const allIdleAt = (height: number): boolean =>
      cluster.running().every((node) => node.driver.status().idle && node.height === height);

    it('stops after an empty block until something is pending', async () => {
      await waitUntil(
        () => cluster.running().every((node) => node.driver.status().idle),
        () =>
          `every node waiting out the idle interval: ${cluster
            .running()
            .map((node) => `${node.id}@${node.height} idle=${node.driver.status().idle}`)
            .join(', ')}`,
      );
      const height = cluster.node(0).height;
      assert.ok(allIdleAt(height), 'all idle at the same stored height');
      for (const node of cluster.running()) {
        const status = node.driver.status();
        assert.ok(status.idleWaits.started >= 1, node.id);
        // The next height has not started: the engine is still at the stored height.
        assert.equal(status.committedHeight, height, node.id);
      }
    });

    it('a transaction that waits for an earlier sequence does not wake it', () => {
      const node = cluster.node(0);
      const before = node.driver.status();
      assert.ok(before.idle, 'idle before');
      (node.mempool as NotifyingMempool).addWaiting();
      // The admission listener runs synchronously: a wake would show at once.
      const after = node.driver.status();
      assert.ok(after.idle, 'still idle');
      assert.equal(after.idleWaits.woken, before.idleWaits.woken);
      // It stays pending for the rest of this cluster's tests: the next test's "idle again"
      // holds only because idleness counts ready transactions.
      assert.equal(after.mempoolSize, 1);
    });

    it('a transaction on one node wakes it; its messages wake the others', async () => {
      const start = cluster.node(0).height;
      const woken = cluster.running().map((node) => node.driver.status().idleWaits.woken);
      const tx = kvTx('idlewake', randomBytes(4).toString('hex'));
      (cluster.node(0).mempool as NotifyingMempool).add(tx);
      // The transaction is only in node 0's mempool: it gets into a block when node 0 proposes,
      // so the cluster must move through heights woken by node 0's messages until then.
      await waitUntil(
        () => {
          for (let h = start + 1; h <= cluster.node(1).height; h++) {
            const stored = cluster.node(1).store.blocks.byHeight(h);
            if (stored === null) continue;
            const { transactions } = decodeBlock(stored.bytes);
            if (transactions.some((t) => Buffer.from(t).equals(tx))) return true;
          }
          return false;
        },
        () =>
          `the transaction committed: ${cluster
            .running()
            .map((node) => {
              const st = node.driver.status();
              return `${node.id}@${node.height} h=${st.height}/${st.round}/${st.step} idle=${st.idle} waits=${JSON.stringify(st.idleWaits)} mempool=${st.mempoolSize}`;
            })
            .join('; ')}`,
        20_000,
      );
      const now = cluster.running().map((node) => node.driver.status().idleWaits.woken);
      assert.ok((now[0] as number) > (woken[0] as number), 'node 0 woken by its own admission');
      assert.ok(
        now.slice(1).some((count, i) => count > (woken[i + 1] as number)),
        `another node woken by a peer's message of the next height: ${now.join(', ')}`,
      );
      // After the block with the transaction the commit delay applies, then idle again.
      const withTx = cluster.node(1).height;
      await waitUntil(
        () => cluster.running().every((node) => node.driver.status().idle),
        'idle again after the transaction',
      );
      assert.ok(cluster.node(1).height >= withTx, 'no height lost');
    });
  });

  it('is off by default: empty blocks follow at the commit delay', async () => {
    const genesis = makeGenesisDocument(identities, {
      timeouts: TEST_TIMEOUTS,
      commitDelayMs: COMMIT_DELAY_MS,
    });
    const cluster = new TestCluster(identities, genesis, {
      mempool: () => new NotifyingMempool(),
    });
    try {
      await cluster.startAll();
      await cluster.waitForHeight(4);
      for (const node of cluster.running()) {
        assert.deepEqual(node.driver.status().idleWaits, { started: 0, woken: 0 }, node.id);
      }
    } finally {
      await cluster.close();
    }
  });

  it('refuses an idle interval that is not a whole number of ms from 0 to 60,000', () => {
    const genesis = makeGenesisDocument(identities, { timeouts: TEST_TIMEOUTS });
    const cluster = new TestCluster(identities, genesis);
    try {
      const paths = cluster.paths(0);
      const store = openStore(paths.store);
      try {
        for (const value of [-1, 1.5, 60_001, Number.NaN]) {
          assert.throws(
            () =>
              new ConsensusDriver({
                genesis,
                store,
                walPath: paths.wal,
                signerStatePath: paths.signer,
                self: null,
                app: new KvTestApp(store),
                mempool: new TestMempool(),
                network: cluster.hub.join('probe', store),
                proofs: { build: () => new Uint8Array(32), checkProposal: () => undefined },
                idleBlockIntervalMs: value,
              }),
            (error: unknown) =>
              isHyperMeshError(error, DriverErrorCode.INVALID_OPTIONS) &&
              /idleBlockIntervalMs/.test((error as Error).message),
            String(value),
          );
        }
      } finally {
        store.close();
      }
    } finally {
      void cluster.close();
    }
  });
});
