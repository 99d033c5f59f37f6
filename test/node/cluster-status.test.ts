import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeRpcClient, NodeStatusRecord } from '../../src/consensus/net/index.js';
import {
  currentValidatorSet,
  formatClusterStatus,
  type ClusterStatus,
} from '../../src/node/cluster-status.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
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

  it('gives up on the validator updates after one overall deadline, however fast a liar answers', async () => {
    const genesis = makeGenesisDocument(await makeIdentities(4));
    let signal: AbortSignal | undefined;
    const session = {
      client: () =>
        ({
          // Pages until the caller's signal ends it, as a node claiming 2^53 heights would.
          validatorUpdates: async (
            _from: number,
            _to: number,
            options: { signal?: AbortSignal } = {},
          ) => {
            signal = options.signal;
            if (signal === undefined)
              throw new Error('no overall signal: this would page for ever');
            if (!signal.aborted) {
              await new Promise((resolve) => signal!.addEventListener('abort', resolve));
            }
            throw new StoqError(StoqErrorCode.CANCELLED, 'call cancelled');
          },
        }) as unknown as NodeRpcClient,
    };
    const liar = { name: 'node-1', status: { committedHeight: 2 ** 53 - 1 } as NodeStatusRecord };
    // AbortSignal.timeout's timer does not hold the event loop (a real call's socket does).
    const hold = setInterval(() => undefined, 1_000);
    const result = await currentValidatorSet(genesis, session, [liar], 50).finally(() =>
      clearInterval(hold),
    );
    assert.ok(signal?.aborted, 'the overall deadline ended the paging');
    assert.equal(result.source.from, 'genesis');
  });
});

describe('status: the report', () => {
  it('escapes control characters in what nodes answered', () => {
    const evil = '\u001b]0;pwned\u0007\u001b[2J';
    const status: ClusterStatus = {
      chainId: 'c',
      validatorSet: { from: 'genesis', reason: `r${evil}` },
      validators: [],
      height: 1,
      lastCommitTime: null,
      validatorsOnline: [],
      onlinePower: 0,
      totalPower: 0,
      reachable: 1,
      nodes: [
        {
          name: 'node-1',
          id: 'id',
          stoq: '127.0.0.1:1',
          role: 'follower',
          power: 0,
          reachable: true,
          error: null,
          rttMs: 1,
          status: {
            committedHeight: 1,
            step: `prevote${evil}`,
            halted: `halt${evil}`,
            peersConnected: [`peer${evil}`],
          } as unknown as NodeStatusRecord,
        },
        {
          name: 'node-2',
          id: 'id2',
          stoq: '127.0.0.1:2',
          role: 'follower',
          power: 0,
          reachable: false,
          error: `UNAVAILABLE: ${evil}`,
          rttMs: null,
          status: null,
        },
      ],
    };
    const text = formatClusterStatus(status, 0).join('\n');
    assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    assert.match(text, /prevote\\u001b\]0;pwned\\u0007/);
    assert.match(text, /unreachable: UNAVAILABLE: \\u001b/);
  });
});
