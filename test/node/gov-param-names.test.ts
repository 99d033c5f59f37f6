import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseParamChanges } from '../../src/node/commands/gov.js';

describe('gov propose --param names', () => {
  it('answers a name from Object.prototype as any other unknown parameter', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      assert.throws(
        () => parseParamChanges([`${name}=1`]),
        (error: Error) =>
          error.message.startsWith(`--param "${name}" is not a governable parameter (governable: `),
        name,
      );
    }
  });

  it('still says why a known parameter is not governable', () => {
    assert.throws(
      () => parseParamChanges(['unbondingBlocks=5']),
      /--param "unbondingBlocks" is not governable: /,
    );
  });
});
