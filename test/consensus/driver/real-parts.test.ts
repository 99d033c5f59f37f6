import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  createApplication,
  buildTransaction,
  stampOf,
} from '../../../src/consensus/application/index.js';
import { genesisHash } from '../../../src/consensus/genesis.js';
import { Mempool } from '../../../src/consensus/mempool.js';
import { buildStoragePlotFor, createBlockProofs } from '../../../src/consensus/pos/index.js';
import type { StoragePlot } from '../../../src/consensus/proof/storage-plot.js';
import { DEV_PROOF_PARAMS } from '../../../src/consensus/proof/params.js';
import { generateEd25519KeyPair } from '../../../src/crypto/ed25519.js';
import { createKvModule, kvGetQuery, kvSet, verifyKvGet } from '../../../src/kv/index.js';
import {
  chainSummary,
  conflictingMessages,
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  waitUntil,
  type ValidatorIdentity,
} from './fixtures.js';

describe('ConsensusDriver with the real application, mempool and consensus proofs', () => {
  let identities: ValidatorIdentity[];
  let plots: StoragePlot[];
  before(async () => {
    identities = await makeIdentities(4);
    plots = identities.map((identity) =>
      buildStoragePlotFor(DEV_PROOF_PARAMS.space, identity.publicKey),
    );
  });

  it('commits a signed, stamped kv transaction with four-part proofs on every block', async () => {
    const genesis = makeGenesisDocument(
      identities,
      {},
      plots.map((plot) => plot.root),
    );
    const hash = genesisHash(genesis);
    const cluster = new TestCluster(identities, genesis, {
      app: (store) =>
        createApplication({
          chainId: genesis.chainId,
          state: store.state,
          modules: [createKvModule()],
          stampDifficulty: genesis.proof.work.stampDifficulty,
        }),
      mempool: (app) => new Mempool(app),
      proofs: (index) =>
        createBlockProofs({
          genesis,
          genesisHash: hash,
          stampOf,
          self: {
            privateKey: identities[index]!.privateKey,
            plot: plots[index]!,
            networkAddress: `stoq://127.0.0.1:${9300 + index}`,
          },
        }),
    });
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
