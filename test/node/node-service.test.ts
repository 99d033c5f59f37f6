import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { nodeServiceHandlers } from '../../src/node/node-service.js';
import type { CallContext } from '../../src/stoq/index.js';

const facts = {
  name: 'node-1',
  uri: 'spiffe://test/validator/node-1',
  version: '0.0.0',
  transport: 'tls',
  authMode: 'mtls',
  heartbeatMs: 1,
};

function contextOf(signal: AbortSignal): CallContext {
  return {
    peer: { uri: 'spiffe://test/client/c', role: 'client' },
    method: 'hypermesh.node.v1/heartbeat',
    signal,
    deadline: null,
  } as CallContext;
}

describe('node service heartbeat', () => {
  it('leaves no abort listener behind on the call signal after each beat', async () => {
    const controller = new AbortController();
    const beats = nodeServiceHandlers(facts).heartbeat({ count: 20 }, contextOf(controller.signal));
    const seqs: number[] = [];
    for await (const beat of beats) {
      seqs.push(beat.seq);
      assert.ok(
        getEventListeners(controller.signal, 'abort').length <= 1,
        `abort listeners after beat ${beat.seq}: ${getEventListeners(controller.signal, 'abort').length}`,
      );
    }
    assert.deepEqual(
      seqs,
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  it('ends the stream early when the caller cancels', async () => {
    const controller = new AbortController();
    const beats = nodeServiceHandlers({ ...facts, heartbeatMs: 60_000 }).heartbeat(
      { count: 5 },
      contextOf(controller.signal),
    );
    const seqs: number[] = [];
    for await (const beat of beats) {
      seqs.push(beat.seq);
      // The next beat waits a minute unless the cancellation ends the wait.
      controller.abort();
    }
    assert.deepEqual(seqs, [0]);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });
});
