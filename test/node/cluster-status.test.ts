import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeRpcClient, NodeStatusRecord } from '../../src/consensus/net/index.js';
import { currentValidatorSet } from '../../src/node/cluster-status.js';
import { makeGenesisDocument, makeIdentities } from '../consensus/driver/fixtures.js';

/**
 * `hypermesh status` takes the validator set from the node at the median reported height, so
 * one node claiming a height far ahead (or not an integer) can neither be the only source of
 * the set nor make the command ask for validator updates for ever.
 */
describe('status: the validator set source', () => {
  it('asks the node at the median height, and ignores heights that are not safe integers', async () => {
    const genesis = makeGenesisDocument(await makeIdentities(4));
    const asked: { node: string; from: number; to: number }[] = [];
    const session = {
      client: (node: string) =>
        ({
          validatorUpdates: (from: number, to: number) => {
            asked.push({ node, from, to });
            return Promise.resolve([]);
          },
        }) as unknown as NodeRpcClient,
    };
    const view = (name: string, committedHeight: unknown) => ({
      name,
      status: { committedHeight } as unknown as NodeStatusRecord,
    });

    const { source } = await currentValidatorSet(
      genesis,
      session,
      [
        view('node-1', 10),
        view('node-2', 12),
        view('node-3', 9e15),
        view('node-4', 1.5),
        view('node-5', -3),
      ],
      1_000,
    );
    assert.deepEqual(asked, [{ node: 'node-2', from: 1, to: 11 }]);
    assert.deepEqual(source, { from: 'chain', node: 'node-2', height: 13 });

    asked.length = 0;
    const none = await currentValidatorSet(genesis, session, [view('node-4', 1.5)], 1_000);
    assert.equal(none.source.from, 'genesis');
    assert.deepEqual(asked, []);
  });
});
