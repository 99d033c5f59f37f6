import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GOV_PARAMS_KEY } from '../../src/caesar/index.js';
import { unknownParam } from '../../src/caesar/gov-changes.js';
import { govQueryKey } from '../../src/caesar/gov-query.js';
import { ApplicationError, ApplicationErrorCode } from '../../src/consensus/application/index.js';
import { bytesEqual } from '../../src/crypto/bytes.js';
import { TEST_GOV } from './gov-fixture.js';
import { makeValidator, openStakingNode, runBlock, stakingGenesis } from './staking-fixture.js';

/**
 * Query paths are untrusted strings: a name an object inherits from its prototype is no query
 * (APP_UNKNOWN_QUERY through the router), not a proven read of a meaningless key nor a crash.
 */

const INHERITED = [
  'constructor',
  'toString',
  'hasOwnProperty',
  '__proto__',
  'valueOf',
  'isPrototypeOf',
  '__defineGetter__',
];

describe('caesar queries: paths inherited from Object.prototype', () => {
  it('answers APP_UNKNOWN_QUERY for caesar/constructor, caesar/toString, caesar/hasOwnProperty, caesar/__proto__, …', async () => {
    const v = [makeValidator(), makeValidator()] as const;
    const node = await openStakingNode({
      ...stakingGenesis({
        validators: v.map((validator) => ({ validator, selfBond: 1_000n })),
        balances: [],
      }),
      governance: TEST_GOV,
    });
    try {
      runBlock(node);
      for (const name of INHERITED) {
        for (const data of [new Uint8Array(0), new Uint8Array(8)]) {
          assert.equal(govQueryKey(name, data), undefined, name);
          assert.throws(
            () => node.app.query({ path: `caesar/${name}`, data }),
            (error: unknown) =>
              error instanceof ApplicationError &&
              error.code === ApplicationErrorCode.UNKNOWN_QUERY,
            `caesar/${name} with ${data.length} bytes`,
          );
        }
      }
      // The real single-key governance query still answers with its key.
      const answer = node.app.query({ path: 'caesar/gov-params', data: new Uint8Array(0) });
      assert.ok(answer.value !== null);
      assert.ok(bytesEqual(govQueryKey('gov-params', new Uint8Array(0))!.key, GOV_PARAMS_KEY));
    } finally {
      await node.close();
    }
  });

  it("names an inherited parameter name as unknown, not with Object.prototype's member", () => {
    for (const name of INHERITED) {
      assert.throws(
        () => unknownParam(name),
        (error: unknown) =>
          error instanceof Error &&
          /is not a governable parameter \(governable: /.test(error.message),
        name,
      );
    }
  });
});
