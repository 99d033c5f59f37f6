import assert from 'node:assert/strict';
import { once } from 'node:events';
import { before, describe, it } from 'node:test';
import type { BlockExecutionInput, PreparedProposal } from '../../../src/consensus/app.js';
import { DriverErrorCode } from '../../../src/consensus/driver/errors.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { StorageError, StorageErrorCode, type NodeStore } from '../../../src/storage/index.js';
import {
  chainSummary,
  conflictingMessages,
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  waitUntil,
  type ValidatorIdentity,
} from './fixtures.js';
import { KvTestApp } from './test-app.js';

const LIAR = 0;

/** An application that claims a made-up state root for the blocks it proposes. */
class LyingApp extends KvTestApp {
  override prepareProposal(
    block: Omit<BlockExecutionInput, 'transactions'>,
    candidates: Iterable<Uint8Array>,
    maxBytes: number,
  ): PreparedProposal {
    const honest = super.prepareProposal(block, candidates, maxBytes);
    return { ...honest, result: { ...honest.result, stateRoot: sha256(honest.result.stateRoot) } };
  }
}

describe('ConsensusDriver: refusals', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(4);
  });

  it('refuses blocks whose state root re-execution does not reproduce (PoWork)', async () => {
    const cluster = new TestCluster(identities, makeGenesisDocument(identities), {
      app: (store, index) => (index === LIAR ? new LyingApp(store) : new KvTestApp(store)),
    });
    try {
      await cluster.startAll();
      const honest = cluster.running().filter((node) => node.index !== LIAR);
      await waitUntil(
        () => honest.every((node) => (node.driver.status().rejected.STATE_ROOT_MISMATCH ?? 0) > 0),
        'every honest validator to refuse a block of the lying proposer',
      );
      const target = cluster.node(1).height + 2;
      await cluster.waitForHeight(target);
      const reference = chainSummary(cluster.node(1).store, target);
      for (const node of cluster.running()) {
        assert.deepEqual(chainSummary(node.store, target), reference, `${node.id} agrees`);
      }
      // No stored block came from the liar: each one's header root is the state after it.
      const liar = identities[LIAR]!.address;
      for (let height = 1; height <= target; height++) {
        const committed = cluster.node(1).driver.committedBlock(height)!;
        assert.notEqual(committed.block.header.proposer, liar, `block ${height}`);
      }
      assert.deepEqual(conflictingMessages(cluster.hub), []);
    } finally {
      await cluster.close();
    }
  });

  it('halts, without crashing, when a decided block cannot be stored', async () => {
    const failing = 3;
    const cluster = new TestCluster(identities, makeGenesisDocument(identities), {
      store: (store, index) =>
        index !== failing
          ? store
          : ({
              ...store,
              blocks: store.blocks,
              state: store.state,
              saveBlock: (input) => {
                if (input.block.height >= 2) {
                  throw new StorageError(StorageErrorCode.CORRUPT, 'disk on fire');
                }
                return store.saveBlock(input);
              },
              close: () => store.close(),
            } satisfies NodeStore),
    });
    try {
      await cluster.startAll();
      const node = cluster.node(failing);
      const [error] = (await once(node.driver, 'halted')) as [Error & { code: string }];
      assert.equal(error.code, DriverErrorCode.COMMIT_FAILED);
      const status = node.driver.status();
      assert.equal(status.running, false);
      assert.match(status.halted ?? '', /disk on fire/);
      assert.equal(status.committedHeight, 1);
      // The other three keep deciding.
      await cluster.waitForHeight(
        4,
        20_000,
        [0, 1, 2].map((index) => cluster.node(index)),
      );
    } finally {
      await cluster.close();
    }
  });
});
