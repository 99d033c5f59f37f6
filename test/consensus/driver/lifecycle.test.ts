import assert from 'node:assert/strict';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { MAX_BLOCK_EVIDENCE } from '../../../src/consensus/block.js';
import { resolveDriverConfig } from '../../../src/consensus/driver/driver-config.js';
import { ConsensusDriver, DriverErrorCode } from '../../../src/consensus/driver/index.js';
import { openStore } from '../../../src/storage/index.js';
import {
  chainSummary,
  makeGenesisDocument,
  falcon,
  makeIdentities,
  tempDir,
  TestCluster,
  waitUntil,
  watchDriver,
  type ValidatorIdentity,
} from './fixtures.js';
import { KvTestApp, TestMempool, TestProofs } from './test-app.js';

describe('ConsensusDriver: lifecycle', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(4);
  });

  it('follows without voting, refuses a foreign store, and starts over a WAL ahead of its store', async () => {
    const genesis = makeGenesisDocument(identities);
    const cluster = new TestCluster(identities, genesis);
    try {
      await cluster.startAll();
      // A follower: no keys, it decides from the validators' messages and syncs.
      const followerStore = openStore(join(cluster.dir, 'follower.sqlite'));
      const follower = new ConsensusDriver({
        genesis,
        store: followerStore,
        walPath: join(cluster.dir, 'follower.wal'),
        signerStatePath: join(cluster.dir, 'follower.signer'),
        self: null,
        app: new KvTestApp(followerStore),
        mempool: new TestMempool(),
        network: cluster.hub.join('follower', followerStore),
        proofs: new TestProofs(),
      });
      watchDriver(follower);
      assert.throws(() => follower.status(), { code: DriverErrorCode.WRONG_LIFECYCLE });
      await follower.start();
      await assert.rejects(follower.start(), { code: DriverErrorCode.WRONG_LIFECYCLE });
      await cluster.waitForHeight(3);
      await waitUntil(() => (followerStore.blocks.latestHeight() ?? 0) >= 3, 'the follower');
      assert.deepEqual(chainSummary(followerStore, 3), chainSummary(cluster.node(0).store, 3));
      const status = follower.status();
      assert.equal(status.validator, null);
      assert.equal(status.signer, null);
      assert.ok(
        !cluster.hub.sent.some(
          ({ from, message }) => from === 'follower' && message.kind === 'vote',
        ),
        'a follower never votes',
      );
      await follower.stop();
      cluster.hub.leave('follower');

      // A store of another genesis is refused.
      const other = makeGenesisDocument(identities, { commitDelayMs: 11 });
      const foreign = new ConsensusDriver({
        genesis: other,
        store: followerStore,
        walPath: join(cluster.dir, 'foreign.wal'),
        signerStatePath: join(cluster.dir, 'foreign.signer'),
        self: null,
        app: new KvTestApp(followerStore),
        mempool: new TestMempool(),
        network: cluster.hub.join('foreign', null),
        proofs: new TestProofs(),
      });
      await assert.rejects(foreign.start(), { code: DriverErrorCode.GENESIS_MISMATCH });
      cluster.hub.leave('foreign');

      // A validator whose WAL is newer than its store (the store came back from an older copy)
      // starts over with a fresh WAL and catches up; its signer record still guards it.
      const victim = 3;
      const paths = cluster.paths(victim);
      await cluster.stop(victim);
      const older = join(cluster.dir, 'older.sqlite');
      copyFileSync(paths.store, older);
      await cluster.start(victim);
      await cluster.waitForHeight(cluster.node(0).height + 2);
      await cluster.stop(victim);
      copyFileSync(older, paths.store);
      writeFileSync(`${paths.store}-wal`, new Uint8Array(0));
      const warnings: string[] = [];
      const restarted = await cluster.start(victim, {
        log: (level, message) => {
          if (level === 'warn') warnings.push(message);
        },
      });
      assert.ok(warnings.some((message) => message.includes('WAL is ahead of the store')));
      const target = cluster.node(0).height + 2;
      await cluster.waitForHeight(target);
      assert.deepEqual(
        chainSummary(restarted.store, target),
        chainSummary(cluster.node(0).store, target),
      );
      followerStore.close();
    } finally {
      await cluster.close();
    }
  });

  it('refuses options it cannot run with', () => {
    const genesis = makeGenesisDocument(identities);
    const dir = tempDir();
    const store = openStore(join(dir, 'options.sqlite'));
    const base = {
      genesis,
      store,
      walPath: '/nonexistent/wal',
      signerStatePath: '/nonexistent/signer',
      app: new KvTestApp(store),
      mempool: new TestMempool(),
      network: new TestCluster(identities, genesis).hub.join('x', null),
      proofs: new TestProofs(),
    };
    const identity = identities[0]!;
    const self = {
      privateKey: identity.privateKey,
      falconSecretKey: identity.pqSecretKey,
      falcon,
    };
    assert.throws(() => new ConsensusDriver({ ...base, self, gossipIntervalMs: 0 }), {
      code: DriverErrorCode.INVALID_OPTIONS,
    });
    assert.throws(
      () => new ConsensusDriver({ ...base, self: { ...self, privateKey: 'key' as never } }),
      { code: DriverErrorCode.INVALID_OPTIONS },
    );
    assert.throws(
      () => new ConsensusDriver({ ...base, self: { ...self, falconSecretKey: new Uint8Array(5) } }),
      { code: DriverErrorCode.INVALID_OPTIONS },
    );
    // More evidence than a valid block carries: every peer would refuse this node's proposals.
    assert.throws(
      () => new ConsensusDriver({ ...base, self, maxEvidencePerBlock: MAX_BLOCK_EVIDENCE + 1 }),
      (error: Error & { code?: string }) =>
        error.code === DriverErrorCode.INVALID_OPTIONS &&
        /maxEvidencePerBlock must be at most 64/.test(error.message),
    );
    assert.equal(
      resolveDriverConfig({ ...base, self, maxEvidencePerBlock: MAX_BLOCK_EVIDENCE })
        .maxEvidencePerBlock,
      MAX_BLOCK_EVIDENCE,
    );
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
