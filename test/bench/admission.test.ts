import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdmissionLog } from '../../bench/caesar/admission.js';
import type { Submit } from '../../bench/consensus/load.js';

const txs: readonly Uint8Array[] = [new Uint8Array([0]), new Uint8Array([1]), new Uint8Array([2])];
const indexOf = (tx: Uint8Array): number | undefined => {
  const i = txs.indexOf(tx);
  return i < 0 ? undefined : i;
};

/** A submit that answers each transaction from its own script, one answer per call. */
function scripted(answers: ReadonlyMap<number, readonly (string | null)[]>): {
  submit: Submit;
  calls: number[];
} {
  const calls: number[] = [];
  const next = new Map<number, number>();
  const submit: Submit = (tx) => {
    const i = indexOf(tx) as number;
    calls.push(i);
    const n = next.get(i) ?? 0;
    next.set(i, n + 1);
    const answer = answers.get(i)?.[n];
    if (answer === undefined) throw new Error(`no scripted answer ${n} for transaction ${i}`);
    return Promise.resolve(answer);
  };
  return { submit, calls };
}

describe('AdmissionLog', () => {
  it('BUSY, BUSY, then admitted: admitted, no refusal', async () => {
    const log = new AdmissionLog(indexOf);
    const { submit, calls } = scripted(new Map([[0, ['MEMPOOL_BUSY', 'MEMPOOL_BUSY', null]]]));
    const wrapped = log.wrap(submit);
    // As runStep resends: the same transaction until it is admitted.
    assert.equal(await wrapped(txs[0] as Uint8Array, 'node-1', 0), 'MEMPOOL_BUSY');
    assert.equal(await wrapped(txs[0] as Uint8Array, 'node-1', 0), 'MEMPOOL_BUSY');
    assert.equal(await wrapped(txs[0] as Uint8Array, 'node-1', 0), null);
    assert.deepEqual(calls, [0, 0, 0]);
    assert.deepEqual(log.refusals(), new Map());
    assert.deepEqual(log.admitted(), [0]);
  });

  it('counts each transaction once, by its last answer', async () => {
    const log = new AdmissionLog(indexOf);
    const { submit } = scripted(
      new Map<number, (string | null)[]>([
        [0, ['MEMPOOL_BUSY', 'MEMPOOL_BUSY']],
        [1, ['MEMPOOL_BUSY', 'SEQUENCE_TOO_OLD']],
        [2, [null]],
      ]),
    );
    const wrapped = log.wrap(submit);
    for (const i of [0, 1, 0, 1, 2]) await wrapped(txs[i] as Uint8Array, 'node-2', 1);
    assert.deepEqual(
      log.refusals(),
      new Map([
        ['MEMPOOL_BUSY', 1],
        ['SEQUENCE_TOO_OLD', 1],
      ]),
    );
    assert.deepEqual(log.admitted(), [2]);
  });

  it('rejects a transaction the step did not build, without submitting it', async () => {
    const log = new AdmissionLog(indexOf);
    const { submit, calls } = scripted(new Map());
    await assert.rejects(log.wrap(submit)(new Uint8Array([9]), 'node-1', 0), /did not build/);
    assert.deepEqual(calls, []);
    assert.deepEqual(log.refusals(), new Map());
  });
});
