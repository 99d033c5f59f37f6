import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type {
  BlockExecutionInput,
  BlockExecutionResult,
  LastCommitInfo,
  PreparedProposal,
} from '../../../src/consensus/app.js';
import { decodeBlock } from '../../../src/consensus/wire.js';
import type { NodeStore } from '../../../src/storage/index.js';
import {
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  type ValidatorIdentity,
} from './fixtures.js';
import { KvTestApp } from './test-app.js';

/** Records what the driver hands the application: per height, for proposals and executions. */
class RecordingApp extends KvTestApp {
  readonly executed = new Map<number, LastCommitInfo | undefined>();
  readonly proposed = new Map<number, LastCommitInfo | undefined>();

  constructor(store: NodeStore) {
    super(store);
  }

  override prepareProposal(
    block: Omit<BlockExecutionInput, 'transactions'>,
    candidates: Iterable<Uint8Array>,
    maxBytes: number,
    maxTxs?: number,
  ): PreparedProposal {
    this.proposed.set(block.height, block.lastCommit);
    return super.prepareProposal(block, candidates, maxBytes, maxTxs);
  }

  override executeBlock(block: BlockExecutionInput): BlockExecutionResult {
    if (!this.executed.has(block.height)) this.executed.set(block.height, block.lastCommit);
    return super.executeBlock(block);
  }
}

describe('lastCommit: who signed the previous block, as the application sees it', () => {
  let identities: ValidatorIdentity[];
  let cluster: TestCluster;
  const apps: RecordingApp[] = [];
  before(async () => {
    identities = await makeIdentities(4);
    cluster = new TestCluster(identities, makeGenesisDocument(identities), {
      app: (store, index) => {
        const app = new RecordingApp(store);
        apps[index] = app;
        return app;
      },
    });
  });
  after(() => cluster.close());

  it('lists set(h − 1) in address order with the signers of the block’s own lastCommit, alike on every node', async () => {
    await cluster.startAll();
    await cluster.waitForHeight(5);
    const node = cluster.node(0);
    const validators = node.driver.status().validators;
    for (let height = 1; height <= 4; height++) {
      const stored = node.store.blocks.byHeight(height);
      assert.ok(stored !== null);
      const block = decodeBlock(stored.bytes);
      const infos = apps.map((app) => app.executed.get(height) ?? app.proposed.get(height));
      if (height === 1) {
        for (const info of infos) assert.equal(info, undefined);
        continue;
      }
      const commit = block.lastCommit;
      assert.ok(commit !== null);
      const signers = new Set(commit.precommits.map((vote) => vote.validator));
      const expected: LastCommitInfo = {
        height: height - 1,
        votes: [...identities]
          .map((identity) => identity.address)
          .sort()
          .map((validator) => ({ validator, power: 10, signed: signers.has(validator) })),
      };
      for (const [index, info] of infos.entries()) {
        assert.deepEqual(info, expected, `node ${index} at height ${height}`);
      }
      const signedPower = expected.votes.filter((vote) => vote.signed).length * 10;
      assert.ok(3 * signedPower > 2 * validators.totalPower, `quorum signed at ${height - 1}`);
    }
    // The proposer of each height saw in prepareProposal what everyone executed.
    for (const app of apps) {
      for (const [height, info] of app.proposed) {
        if (height > 4) continue;
        assert.deepEqual(info, apps[(apps.indexOf(app) + 1) % apps.length]!.executed.get(height));
      }
    }
  });
});
