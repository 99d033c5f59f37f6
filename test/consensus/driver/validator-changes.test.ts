import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type {
  BlockExecutionInput,
  BlockExecutionResult,
  ValidatorUpdate,
} from '../../../src/consensus/app.js';
import {
  BlockRefusal,
  checkAndExecute,
  verifySyncedBlock,
  type BlockCheckDeps,
} from '../../../src/consensus/driver/block-checks.js';
import { loadChain } from '../../../src/consensus/driver/chain.js';
import { DriverErrorCode } from '../../../src/consensus/driver/errors.js';
import { genesisHeightContext } from '../../../src/consensus/genesis.js';
import { ValidatorUpdateRejection } from '../../../src/consensus/validator-set.js';
import { decodeValidatorUpdates } from '../../../src/consensus/validator-updates.js';
import { pqSignatureVerifier } from '../../../src/consensus/verify.js';
import { decodeBlock, decodeQuorumCertificate } from '../../../src/consensus/wire.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { openStore, type NodeStore } from '../../../src/storage/index.js';
import {
  chainSummary,
  conflictingMessages,
  falcon,
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  waitUntil,
  type TestNode,
  type ValidatorIdentity,
} from './fixtures.js';
import { KvTestApp, kvTx, TestProofs, type TestMempool } from './test-app.js';

const VALIDATOR_TX = /^val(\d)$/;

/**
 * The test application plus staking in miniature: a transaction `valN=P` makes the block return
 * a validator update giving identity N power P (0 removes it), with its FALCON key and storage
 * root (the genesis document's, so a re-weighted genesis validator keeps them).
 */
class StakingTestApp extends KvTestApp {
  constructor(
    store: NodeStore,
    private readonly identities: readonly ValidatorIdentity[],
  ) {
    super(store);
  }

  override executeBlock(block: BlockExecutionInput): BlockExecutionResult {
    const result = super.executeBlock(block);
    const validatorUpdates: ValidatorUpdate[] = [];
    for (const tx of block.transactions) {
      const [key, value] = new TextDecoder().decode(tx).split('=') as [string, string];
      const match = VALIDATOR_TX.exec(key);
      const identity = match === null ? undefined : this.identities[Number(match[1])];
      if (identity === undefined) continue;
      validatorUpdates.push({
        publicKey: identity.publicKey,
        power: Number(value),
        pqPublicKey: identity.pqPublicKey,
        storageRoot: sha256(identity.publicKey),
      });
    }
    return { ...result, validatorUpdates };
  }
}

/** The heights (of `node`'s store, up to `upTo`) whose block carries `tx`. */
function heightsWith(node: TestNode, tx: Uint8Array, upTo = node.height): number[] {
  const heights: number[] = [];
  for (let height = 1; height <= upTo; height++) {
    const stored = node.store.blocks.byHeight(height);
    if (stored === null) continue;
    if (decodeBlock(stored.bytes).transactions.some((t) => toHex(t) === toHex(tx))) {
      heights.push(height);
    }
  }
  return heights;
}

/** Puts `tx` in every running node's mempool. */
function submit(cluster: TestCluster, tx: Uint8Array): void {
  for (const node of cluster.running()) (node.mempool as TestMempool).add(tx);
}

function signersAt(node: TestNode, height: number): string[] {
  const commit = node.store.blocks.commitAt(height);
  assert.ok(commit !== null, `commit ${height}`);
  return decodeQuorumCertificate(commit).precommits.map((vote) => vote.validator);
}

function validatorsHashAt(node: TestNode, height: number): string {
  const stored = node.store.blocks.byHeight(height);
  assert.ok(stored !== null);
  return toHex(decodeBlock(stored.bytes).header.validatorsHash);
}

describe('validator-set changes through the driver (4 genesis validators and a joiner)', () => {
  let identities: ValidatorIdentity[];
  let cluster: TestCluster;
  before(async () => {
    identities = await makeIdentities(5);
    // Identities 0-3 are the genesis validators; 4 follows the chain until an update adds it.
    const genesis = makeGenesisDocument(identities.slice(0, 4));
    cluster = new TestCluster(identities, genesis, {
      app: (store) => new StakingTestApp(store, identities),
    });
  });
  after(() => cluster.close());

  it('adds a validator at h + 2, removes one, and a node restarted behind syncs across both', async () => {
    await cluster.startAll();
    await cluster.waitForHeight(2);
    const joiner = identities[4]!;
    const leaver = identities[0]!;

    // Identity 4 joins with power 10.
    const joinTx = kvTx('val4', '10');
    submit(cluster, joinTx);
    const observer = cluster.node(1);
    await waitUntil(
      () => heightsWith(observer, joinTx).length > 0,
      'the join transaction committed',
    );
    const joinedAt = heightsWith(observer, joinTx)[0]!;
    assert.ok(observer.store.blocks.validatorUpdatesAt(joinedAt) !== null, 'updates stored');
    assert.equal(
      decodeValidatorUpdates(observer.store.blocks.validatorUpdatesAt(joinedAt)!)[0]?.power,
      10,
    );
    // Its precommits count from joinedAt + 2 on: wait until a commit there holds one.
    await waitUntil(
      () => {
        for (let h = joinedAt + 2; h <= observer.height; h++) {
          if (signersAt(observer, h).includes(joiner.address)) return true;
        }
        return false;
      },
      () => `a commit signed by the joiner (joined at ${joinedAt}, at ${observer.height})`,
      30_000,
    );
    for (let h = 1; h <= joinedAt + 1; h++) {
      assert.ok(!signersAt(observer, h).includes(joiner.address), `height ${h} is before the join`);
    }
    assert.equal(validatorsHashAt(observer, joinedAt + 1), validatorsHashAt(observer, 1));
    assert.notEqual(validatorsHashAt(observer, joinedAt + 2), validatorsHashAt(observer, 1));

    // Node 3 goes down; identity 0 leaves while it is away.
    await cluster.stop(3);
    const leaveTx = kvTx('val0', '0');
    submit(cluster, leaveTx);
    await waitUntil(
      () => heightsWith(observer, leaveTx).length > 0,
      'the leave transaction committed',
      30_000,
    );
    const leftAt = heightsWith(observer, leaveTx)[0]!;
    await cluster.waitForHeight(leftAt + 4, 30_000);
    for (let h = leftAt + 2; h <= leftAt + 4; h++) {
      assert.ok(!signersAt(observer, h).includes(leaver.address), `height ${h} is after the leave`);
    }
    const status = observer.driver.status();
    assert.equal(status.validators.count, 4);
    assert.equal(status.validators.totalPower, 40);

    // Node 3 comes back: it syncs across both changes, verifying each commit against its set.
    const back = await cluster.start(3);
    const target = observer.height;
    await waitUntil(
      () => back.height >= target,
      () => `node 3 at ${back.height}, needs ${target}`,
      30_000,
    );
    assert.ok(back.commits.some((commit) => commit.source === 'sync'));
    assert.deepEqual(chainSummary(back.store, target), chainSummary(observer.store, target));
    await cluster.waitForHeight(target + 2, 30_000);
    assert.equal(
      back.driver.status().validators.hash,
      cluster.node(2).driver.status().validators.hash,
    );

    // The removed validator stopped signing; the joiner signs; no one signed twice.
    assert.deepEqual(conflictingMessages(cluster.hub), []);
    const heights = cluster.running().map((node) => node.height);
    const common = Math.min(...heights);
    for (const node of cluster.running()) {
      assert.deepEqual(chainSummary(node.store, common), chainSummary(observer.store, common));
    }

    // Every store, reopened, rebuilds the same schedule as every other at the same height.
    for (let i = 0; i < 5; i++) await cluster.stop(i);
    const positions = identities.map((_, i) => {
      const store = openStore(cluster.paths(i).store, { readonly: true });
      try {
        return loadChain(cluster.genesis, store);
      } finally {
        store.close();
      }
    });
    const byHeight = new Map<number, string>();
    for (const { committedHeight, context } of positions) {
      const fingerprint = [
        toHex(context.schedule.validators.hash),
        context.schedule.priorities.join(','),
        toHex(context.nextSchedule!.validators.hash),
        context.nextSchedule!.priorities.join(','),
        context.parent.kind === 'block' ? toHex(context.parent.validators.hash) : '',
      ].join('|');
      const seen = byHeight.get(committedHeight);
      if (seen === undefined) byHeight.set(committedHeight, fingerprint);
      else assert.equal(fingerprint, seen, `two stores at height ${committedHeight} disagree`);
      assert.equal(context.schedule.validators.validators.length, 4);
      assert.ok(!context.schedule.validators.indexOf.has(leaver.address));
      assert.ok(context.schedule.validators.indexOf.has(joiner.address));
    }
  });

  it('a store whose validator updates were lost does not restart with the wrong set', () => {
    const source = cluster.paths(1).store;
    const copy = join(cluster.dir, 'tampered.sqlite');
    copyFileSync(source, copy);
    const db = new Database(copy);
    db.exec('DELETE FROM validator_update');
    db.close();
    const store = openStore(copy, { readonly: true });
    try {
      assert.throws(
        () => loadChain(cluster.genesis, store),
        (error: Error & { code?: string }) =>
          error.code === DriverErrorCode.STORE_INCONSISTENT &&
          /validator set block \d+ names/.test(error.message),
      );
    } finally {
      store.close();
    }
  });

  it('a block whose updates cannot be applied is refused, as a proposal and when synced', () => {
    const source = openStore(cluster.paths(1).store, { readonly: true });
    const store = openStore(join(cluster.dir, 'refuse.sqlite'));
    try {
      const block = source.blocks.byHeight(1)!;
      const commit = source.blocks.commitAt(1)!;
      const stranger = identities[4]!;
      // Returns an update removing a validator that is not one.
      class RefusedUpdatesApp extends KvTestApp {
        override executeBlock(input: BlockExecutionInput): BlockExecutionResult {
          return {
            ...super.executeBlock(input),
            validatorUpdates: [{ publicKey: stranger.publicKey, power: 0 }],
          };
        }
      }
      const invalid = new RefusedUpdatesApp(store);
      const deps: BlockCheckDeps = {
        chainId: cluster.genesis.chainId,
        verifier: pqSignatureVerifier(falcon),
        requirePq: true,
        app: invalid,
        proofs: new TestProofs(),
        store,
        maxBlockTxs: cluster.genesis.consensus.maxBlockTxs,
        maxBlockBytes: cluster.genesis.consensus.maxBlockBytes,
      };
      const context = genesisHeightContext(cluster.genesis);
      const outcome = checkAndExecute(deps, context, decodeBlock(block.bytes));
      assert.equal(outcome.ok, false);
      assert.ok(!outcome.ok);
      assert.equal(outcome.refusal, BlockRefusal.INVALID_VALIDATOR_UPDATES);
      assert.equal(
        (outcome.error as Error & { detail: Record<string, unknown> }).detail.reason,
        ValidatorUpdateRejection.REMOVES_UNKNOWN,
      );
      assert.throws(
        () => verifySyncedBlock(deps, context, { height: 1, block: block.bytes, commit }),
        (error: Error & { code?: string }) =>
          error.code === DriverErrorCode.SYNC_INVALID_BLOCK &&
          /INVALID_VALIDATOR_UPDATES/.test(error.message),
      );
      assert.equal(store.blocks.latestHeight(), null, 'nothing written');
    } finally {
      source.close();
      store.close();
    }
  });
});
