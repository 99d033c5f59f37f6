import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GossipMessage } from '../../src/consensus/driver/ports.js';
import { MAX_TXS_PER_GOSSIP } from '../../src/consensus/wire.js';
import { createTxGossip } from '../../src/node/tx-gossip.js';

/** Client transactions handed to gossip: coalesced per event-loop turn, split at the limits. */

interface RecordingNetwork {
  readonly sent: GossipMessage[];
  broadcast(message: GossipMessage): void;
  /** Resolves once `count` messages were broadcast; fails after a deadline. */
  sentCount(count: number): Promise<void>;
}

function recordingNetwork(): RecordingNetwork {
  const sent: GossipMessage[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  return {
    sent,
    broadcast(message) {
      sent.push(message);
      for (const waiter of waiters.filter((w) => sent.length >= w.count)) waiter.resolve();
    },
    sentCount(count) {
      if (sent.length >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const deadline = setTimeout(
          () => reject(new Error(`expected ${count} gossip messages, got ${sent.length}`)),
          5_000,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(deadline);
            resolve();
          },
        });
      });
    },
  };
}

const sizes = (network: RecordingNetwork): number[][] =>
  network.sent.map((message) => {
    assert.equal(message.kind, 'txs');
    return message.kind === 'txs' ? message.txs.map((tx) => tx.length) : [];
  });

describe('tx gossip', () => {
  it('sends what is handed over in one turn together, split at MAX_TXS_PER_GOSSIP', async () => {
    const network = recordingNetwork();
    const gossip = createTxGossip(network);
    const batch = Array.from({ length: MAX_TXS_PER_GOSSIP + 200 }, (_, i) =>
      Uint8Array.of(i >> 8, i & 0xff),
    );
    gossip.push(batch.slice(0, 300));
    gossip.push([]);
    gossip.push(batch.slice(300));
    // A full message goes out at once; the rest at the end of the turn.
    assert.equal(network.sent.length, 1);
    await network.sentCount(2);
    const sent = network.sent.map((message) => (message.kind === 'txs' ? message.txs : []));
    assert.deepEqual(
      sent.map((txs) => txs.length),
      [MAX_TXS_PER_GOSSIP, 200],
    );
    assert.deepEqual(sent.flat(), batch);
  });

  it('splits at the byte limit and drops what is queued when closed', async () => {
    const network = recordingNetwork();
    const gossip = createTxGossip(network, 10);
    gossip.push([new Uint8Array(6), new Uint8Array(4), new Uint8Array(1)]);
    await network.sentCount(2);
    assert.deepEqual(sizes(network), [[6, 4], [1]]);

    gossip.push([Uint8Array.of(1)]);
    gossip.close();
    gossip.push([Uint8Array.of(2)]);
    gossip.flush();
    assert.equal(network.sent.length, 2, 'nothing is sent after close');
  });
});
