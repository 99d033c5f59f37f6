import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSigning, type SignedRecord } from '../../src/consensus/double-sign-guard.js';

describe('double-sign guard', () => {
  const hash = new Uint8Array(32).fill(1);
  const last: SignedRecord<string> = {
    height: 5,
    round: 2,
    step: 'prevote',
    blockHash: hash,
    signed: 'sig',
  };

  it('signs anything later', () => {
    for (const request of [
      { height: 6, round: 0, step: 'propose' as const, blockHash: null },
      { height: 5, round: 3, step: 'propose' as const, blockHash: null },
      { height: 5, round: 2, step: 'precommit' as const, blockHash: null },
    ]) {
      assert.deepEqual(checkSigning(last, request), { kind: 'sign' });
    }
    assert.deepEqual(
      checkSigning(null, { height: 1, round: 0, step: 'prevote', blockHash: null }),
      { kind: 'sign' },
    );
  });

  it('returns the stored signature for the same value at the same step', () => {
    assert.deepEqual(
      checkSigning(last, { height: 5, round: 2, step: 'prevote', blockHash: hash.slice() }),
      {
        kind: 'reuse',
        signed: 'sig',
      },
    );
  });

  it('refuses a conflicting value and anything earlier', () => {
    const refuse = (request: Parameters<typeof checkSigning>[1]) => {
      const decision = checkSigning(last, request);
      return decision.kind === 'refuse' ? decision.reason : decision.kind;
    };
    assert.equal(refuse({ height: 5, round: 2, step: 'prevote', blockHash: null }), 'conflict');
    assert.equal(
      refuse({ height: 5, round: 2, step: 'prevote', blockHash: new Uint8Array(32) }),
      'conflict',
    );
    assert.equal(
      refuse({ height: 5, round: 2, step: 'propose', blockHash: hash }),
      'step-regression',
    );
    assert.equal(
      refuse({ height: 5, round: 1, step: 'precommit', blockHash: hash }),
      'round-regression',
    );
    assert.equal(
      refuse({ height: 4, round: 9, step: 'precommit', blockHash: hash }),
      'height-regression',
    );
  });
});
