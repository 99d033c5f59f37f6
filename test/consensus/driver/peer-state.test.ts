import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ConsensusDriver } from '../../../src/consensus/driver/index.js';
import {
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  waitUntil,
  type ValidatorIdentity,
} from './fixtures.js';

const GOSSIP_MS = 50;

/**
 * Per-peer state of the driver follows the connected peers: under the unlisted peer policy any
 * `node` certificate of the cluster may connect and send statuses, so each name that ever did
 * must not stay in the driver's maps (docs/consensus.md, "Block sync").
 */
describe('ConsensusDriver: per-peer state of peers that left', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(2);
  });

  function sizes(driver: ConsensusDriver): string {
    return JSON.stringify(driver.peerStateSizes());
  }

  it('drops the status pacing and sync progress of peers that disconnected', async () => {
    const cluster = new TestCluster(identities, makeGenesisDocument(identities), {
      options: { gossipIntervalMs: GOSSIP_MS },
    });
    try {
      await cluster.startAll();
      const [node, other] = [cluster.node(0), cluster.node(1)];
      const listed = { statusSentAt: 1, syncProgress: 1, syncBackoff: 0 };
      await waitUntil(
        () => sizes(node.driver) === JSON.stringify(listed),
        () => `node-0 to track its one validator peer (${sizes(node.driver)})`,
      );

      // Peers under ever new names connect, send their status and leave, a few at a time.
      const names = Array.from({ length: 12 }, (_, index) => `unlisted-${index}`);
      for (let first = 0; first < names.length; first += 4) {
        const batch = names.slice(first, first + 4);
        for (const name of batch) {
          const endpoint = cluster.hub.join(name, null);
          endpoint.broadcast({ kind: 'status', committedHeight: 0, height: 1, round: 0 });
        }
        const joined = {
          statusSentAt: 1 + batch.length,
          syncProgress: 1 + batch.length,
          syncBackoff: 0,
        };
        await waitUntil(
          () => sizes(node.driver) === JSON.stringify(joined),
          () => `node-0 to track ${batch.join(', ')} (${sizes(node.driver)})`,
        );
        for (const name of batch) cluster.hub.leave(name);
        await waitUntil(
          () => sizes(node.driver) === JSON.stringify(listed),
          () => `node-0 to forget ${batch.join(', ')} (${sizes(node.driver)})`,
        );
      }
      // The listed validator's state is untouched: it is still reported and synced from.
      const peers = node.driver.status().peers;
      assert.deepEqual(
        peers.map((peer) => peer.peer),
        [other.id],
      );
      await cluster.waitForHeight(node.height + 1);
    } finally {
      await cluster.close();
    }
  });
});
