import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resending, type Submit } from '../../bench/consensus/load.js';

/** A submit function that answers with `answers` in turn, recording each call's arguments. */
function scripted(answers: readonly (string | null)[]): { submit: Submit; calls: string[] } {
  const calls: string[] = [];
  let next = 0;
  const submit: Submit = (_tx, node, connection) => {
    calls.push(`${node}/${connection}`);
    return Promise.resolve(answers[next++] ?? null);
  };
  return { submit, calls };
}

test('resending: MEMPOOL_BUSY and RESOURCE_EXHAUSTED are sent again to the same node until admitted', async () => {
  const { submit, calls } = scripted(['MEMPOOL_BUSY', 'call failed: RESOURCE_EXHAUSTED', null]);
  const resends = { count: 0 };
  const code = await resending(submit, resends)(new Uint8Array(1), 'node-2', 3);
  assert.equal(code, null);
  assert.equal(resends.count, 2);
  assert.deepEqual(calls, ['node-2/3', 'node-2/3', 'node-2/3']);
});

test('resending: any other refusal is final at once', async () => {
  const { submit, calls } = scripted(['SEQUENCE_USED', null]);
  const resends = { count: 0 };
  const code = await resending(submit, resends)(new Uint8Array(1), 'node-1', 0);
  assert.equal(code, 'SEQUENCE_USED');
  assert.equal(resends.count, 0);
  assert.equal(calls.length, 1);
});
