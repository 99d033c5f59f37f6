import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CatalogView, discoveryStateKey } from '../../src/discovery/index.js';
import { serviceListing } from '../../src/node/discovery-node.js';
import { makeSender } from '../consensus/application/fixture.js';
import { openDiscoveryNode, registerTx } from './discovery-fixture.js';

/**
 * The discovery `list` answer (src/node/discovery-node.ts `serviceListing`): built once per
 * committed height and shared by every call at that height, rebuilt when a block moves the
 * catalog on.
 */
describe('discovery list answer', () => {
  it('is built once per height and follows the catalog from block to block', async () => {
    const node = await openDiscoveryNode();
    try {
      const reader = { get: (key: Uint8Array) => node.store.state.get(discoveryStateKey(key)) };
      const view = CatalogView.load(reader, null);
      let builds = 0;
      const listing = serviceListing(() => {
        return view;
      });
      const counted = () => {
        const services = view.services.bind(view);
        view.services = () => {
          builds++;
          return services();
        };
      };
      counted();
      const follow = (transactions: readonly Uint8Array[]) => {
        const height = node.nextHeight();
        view.applyBlock(height, node.executeAndCommit(transactions).changes);
      };
      const alice = makeSender();
      follow([registerTx(alice, { service: 'api', instance: 'a1' })]);
      const first = listing();
      assert.deepEqual(first.services, [{ service: 'api', live: 1, healthy: 1 }]);
      // Many calls at one height: one build, one shared answer.
      for (let i = 0; i < 100; i++) assert.equal(listing(), first);
      assert.equal(builds, 1);

      follow([registerTx(alice, { service: 'web', instance: 'w1' })]);
      const second = listing();
      assert.notEqual(second, first);
      assert.equal(second.height, (first.height ?? 0) + 1);
      assert.deepEqual(
        second.services.map((entry) => entry.service),
        ['api', 'web'],
      );
      assert.equal(builds, 2);
    } finally {
      await node.close();
    }
  });
});
