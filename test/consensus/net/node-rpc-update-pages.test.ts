import assert from 'node:assert/strict';
import { after, before, describe, it, mock } from 'node:test';
import {
  MAX_VALIDATOR_UPDATE_RESPONSE_BYTES,
  createNodeRpcClient,
  registerNodeRpc,
  type NodeRpcClient,
  type NodeRpcHandlers,
} from '../../../src/consensus/net/node-rpc.js';
import { StoqErrorCode } from '../../../src/stoq/errors.js';
import type { StoredValidatorUpdates } from '../../../src/storage/block-store.js';
import { isStoqError } from '../../helpers/stoq-error.js';
import { Cluster } from './net-fixture.js';

/**
 * `NodeRpcClient.validatorUpdates` over many pages: one deadline for all of them, and with
 * `onPage` each page handed over as it arrives instead of kept (a node that pages a window a
 * 2 MiB entry at a time made a client hold every page until the window ended).
 */

let cluster: Cluster;
let client: NodeRpcClient;
/** Heights 1..5 each returned updates of just over half a response: one entry a page. */
const entry = (height: number): StoredValidatorUpdates => ({
  height,
  bytes: new Uint8Array(MAX_VALIDATOR_UPDATE_RESPONSE_BYTES / 2 + 1).fill(height),
});
const served: string[] = [];

before(async () => {
  cluster = await Cluster.create('memory', ['n1', { name: 'carol', role: 'client' }]);
  const server = await cluster.endpoint('n1');
  // Only `validatorUpdates` is called here.
  const handlers: Pick<NodeRpcHandlers, 'validatorUpdates'> = {
    validatorUpdates: (from, to) => {
      served.push(`${from}..${to}`);
      return [1, 2, 3, 4, 5].filter((at) => at >= from && at <= to).map(entry);
    },
  };
  registerNodeRpc(server.endpoint, handlers as NodeRpcHandlers);
  const caller = await cluster.endpoint('carol', undefined, { n1: [server.address] });
  client = createNodeRpcClient({ endpoint: caller.endpoint, peer: 'n1' });
});

after(async () => {
  await cluster.close();
});

describe('validator updates page by page', { timeout: 20_000 }, () => {
  it('hands each page to onPage before asking for the next, keeping none', async () => {
    served.length = 0;
    const seen: { heights: number[]; requests: number }[] = [];
    const kept = await client.validatorUpdates(1, 10, {
      onPage: (page) => {
        seen.push({ heights: page.map((e) => e.height), requests: served.length });
      },
    });
    assert.deepEqual(kept, []);
    assert.deepEqual(seen, [
      { heights: [1], requests: 1 },
      { heights: [2], requests: 2 },
      { heights: [3], requests: 3 },
      { heights: [4], requests: 4 },
      { heights: [5], requests: 5 },
    ]);
    // A rejection of onPage stops the paging.
    served.length = 0;
    await assert.rejects(
      client.validatorUpdates(1, 10, {
        onPage: () => {
          throw new Error('enough');
        },
      }),
      /enough/,
    );
    assert.deepEqual(served, ['1..10']);
  });

  it('spends one deadline on all the pages of a range', async () => {
    served.length = 0;
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    try {
      await assert.rejects(
        client.validatorUpdates(1, 10, {
          deadlineMs: 1_000,
          // Each page takes the node 600 ms of the client's clock: the third is never asked.
          onPage: () => mock.timers.tick(600),
        }),
        isStoqError(StoqErrorCode.DEADLINE_EXCEEDED),
      );
    } finally {
      mock.timers.reset();
    }
    assert.deepEqual(served, ['1..10', '2..10']);
  });
});
