import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { buildTransaction } from '../../../src/consensus/application/index.js';
import type { Mempool } from '../../../src/consensus/mempool.js';
import { generateEd25519KeyPair } from '../../../src/crypto/ed25519.js';
import { kvGetQuery, kvSet, verifyKvGet } from '../../../src/kv/index.js';
import { chainSummary, conflictingMessages, waitUntil } from './fixtures.js';
import {
  makeProvingValidators,
  realPartsCluster,
  type ProvingValidators,
} from './real-parts-fixture.js';

describe('ConsensusDriver with the real application, mempool and consensus proofs', () => {
  let validators: ProvingValidators;
  before(async () => {
    validators = await makeProvingValidators(4);
  });

  it('commits a signed, stamped kv transaction with four-part proofs on every block', async () => {
    const { cluster, genesis } = realPartsCluster(validators);
    try {
      await cluster.startAll();
      await cluster.waitForHeight(1);
      const client = generateEd25519KeyPair().privateKey;
      const tx = buildTransaction({
        chainId: genesis.chainId,
        privateKey: client,
        sequence: 0,
        module: 'kv',
        body: kvSet('greeting', 'hello'),
        stampDifficulty: genesis.proof.work.stampDifficulty,
      });
      for (const node of cluster.running()) {
        const added = (node.mempool as Mempool).add(tx.bytes);
        assert.equal(added.ok, true, JSON.stringify(added));
      }
      const query = kvGetQuery('greeting');
      await waitUntil(
        () => cluster.running().every((node) => node.app.query(query).value !== null),
        'the transaction to be committed everywhere',
      );
      const target = cluster.node(0).height + 1;
      await cluster.waitForHeight(target);
      const reference = chainSummary(cluster.node(0).store, target);
      for (const node of cluster.running()) {
        assert.deepEqual(chainSummary(node.store, target), reference, `${node.id} agrees`);
        const entry = verifyKvGet(new TextEncoder().encode('greeting'), node.app.query(query));
        assert.equal(new TextDecoder().decode(entry!.value), 'hello');
        assert.equal(node.mempool.size(), 0);
      }
      assert.deepEqual(conflictingMessages(cluster.hub), []);
    } finally {
      await cluster.close();
    }
  });
});
