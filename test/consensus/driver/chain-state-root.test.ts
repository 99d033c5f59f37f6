import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isHyperMeshError } from '../../../src/codec/error.js';
import { loadChain, storedBlockStateRoot } from '../../../src/consensus/driver/chain.js';
import { DriverErrorCode } from '../../../src/consensus/driver/errors.js';
import { decodeBlock } from '../../../src/consensus/wire.js';
import { toHex } from '../../../src/crypto/bytes.js';
import {
  StorageErrorCode,
  openStore,
  openStoreFromSnapshot,
  type NodeStore,
} from '../../../src/storage/index.js';
import {
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  type ValidatorIdentity,
} from './fixtures.js';

/**
 * A store whose latest state is another height's (a damaged or tampered copy) must not start a
 * node or restore: the header of the latest block commits to the state after that block.
 */
describe('the stored state against the chain (loadChain, snapshots)', () => {
  let identities: ValidatorIdentity[];
  let genesis: ReturnType<typeof makeGenesisDocument>;
  let cluster: TestCluster;
  let storePath: string;
  let latest: number;

  before(async () => {
    // One validator decides alone: a quick source of a real chain (KvTestApp writes
    // `meta/height` in every block, so every block changes the state root).
    identities = await makeIdentities(1);
    genesis = makeGenesisDocument(identities);
    cluster = new TestCluster(identities, genesis);
    await cluster.startAll();
    await cluster.waitForHeight(3);
    storePath = cluster.paths(0).store;
    await cluster.stop(0);
    const store = openStore(storePath, { readonly: true });
    latest = store.blocks.latestHeight() as number;
    store.close();
  });
  after(() => cluster.close());

  /** A copy of the node's store whose latest height holds the state of the height before. */
  async function previousStateCopy(name: string): Promise<string> {
    const source = openStore(storePath, { readonly: true });
    const copy = `${cluster.dir}/${name}`;
    try {
      await source.backup(copy);
    } finally {
      source.close();
    }
    const db = new Database(copy);
    db.prepare(
      `UPDATE state_root SET (root, root_id, key_count) =
         (SELECT root, root_id, key_count FROM state_root WHERE height = ?) WHERE height = ?`,
    ).run(latest - 1, latest);
    db.prepare('DELETE FROM state_value WHERE height = ?').run(latest);
    db.close();
    return copy;
  }

  it('storedBlockStateRoot reads the root a real header commits to, the state after the block', () => {
    const store = openStore(storePath, { readonly: true });
    try {
      for (let height = 1; height <= latest; height++) {
        const block = store.blocks.byHeight(height);
        assert.ok(block !== null);
        assert.equal(toHex(storedBlockStateRoot(block)), toHex(store.state.root(height)));
        assert.equal(
          toHex(storedBlockStateRoot(block)),
          toHex(decodeBlock(block.bytes).header.appStateRoot),
        );
      }
      assert.notEqual(toHex(store.state.root(latest)), toHex(store.state.root(latest - 1)));
      assert.equal(loadChain(genesis, store).committedHeight, latest);
      const report = store.verifyIntegrity({ headerStateRoot: storedBlockStateRoot });
      assert.equal(report.headerChecked, true);
    } finally {
      store.close();
    }
  });

  it('loadChain refuses a store whose latest state is not the one its header commits to', async () => {
    const copy = await previousStateCopy('previous-state.sqlite');
    const store: NodeStore = openStore(copy);
    try {
      // Every check that does not read the header passes.
      assert.equal(store.verifyIntegrity().headerChecked, false);
      assert.throws(
        () => loadChain(genesis, store),
        (error: unknown) =>
          isHyperMeshError(error, DriverErrorCode.STORE_INCONSISTENT) &&
          error.detail.height === latest &&
          /not the state its header commits to/.test(error.message),
      );
      assert.throws(
        () => store.verifyIntegrity({ headerStateRoot: storedBlockStateRoot }),
        (error: unknown) => isHyperMeshError(error, StorageErrorCode.HEADER_STATE_MISMATCH),
      );
    } finally {
      store.close();
    }
  });

  it('a node does not start on such a store', async () => {
    const copy = await previousStateCopy('node-start.sqlite');
    // A cluster whose node 0 runs on the tampered copy (its own fresh store file is dropped).
    const tampered = new TestCluster(identities, genesis, {
      store: (opened) => {
        opened.close();
        return openStore(copy);
      },
    });
    try {
      await assert.rejects(tampered.start(0), (error: unknown) =>
        isHyperMeshError(error, DriverErrorCode.STORE_INCONSISTENT),
      );
      assert.equal(tampered.node(0).store.blocks.latestHeight(), latest, 'nothing was stored');
    } finally {
      await tampered.close();
    }
  });

  it('openStoreFromSnapshot with the consensus header reader restores the chain and refuses the copy', async () => {
    const good = `${cluster.dir}/good-snapshot.sqlite`;
    const source = openStore(storePath, { readonly: true });
    try {
      await source.backup(good);
    } finally {
      source.close();
    }
    const restored = await openStoreFromSnapshot(good, `${cluster.dir}/restored.sqlite`, {
      headerStateRoot: storedBlockStateRoot,
    });
    try {
      assert.equal(loadChain(genesis, restored).committedHeight, latest);
    } finally {
      restored.close();
    }
    const copy = await previousStateCopy('previous-state-snapshot.sqlite');
    const target = `${cluster.dir}/restored-from-copy.sqlite`;
    await assert.rejects(
      openStoreFromSnapshot(copy, target, { headerStateRoot: storedBlockStateRoot }),
      (error: unknown) =>
        isHyperMeshError(error, StorageErrorCode.HEADER_STATE_MISMATCH) &&
        error.detail.height === latest,
    );
    assert.equal(existsSync(target), false);
  });
});
