import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GossipMessage } from '../../../src/consensus/driver/ports.js';
import { defineConsensusPeerService } from '../../../src/consensus/net/index.js';
import { bytesEqual } from '../../../src/crypto/bytes.js';
import { StoqErrorCode } from '../../../src/stoq/errors.js';
import { createClient } from '../../../src/stoq/rpc/client.js';
import { isStoqError } from '../../helpers/stoq-error.js';
import {
  Cluster,
  metricValue,
  status,
  syncedBlocks,
  until,
  type RunningEndpoint,
  type TestNode,
} from './net-fixture.js';

/**
 * Peers a node does not list (docs/stoq-auth.md "Consensus
 * peers"): a node added to a running cluster lists the existing nodes, which do not list it. With
 * an `UnlistedPeerPolicy` they accept its stream (it opens it, whichever id sorts first: they
 * cannot dial it), serve it blocks, deliver its statuses and transactions, and deliver its
 * proposals and votes only while the policy says its key is a validator. Clients stay refused.
 */

let cluster: Cluster;

/** Unlisted `node` certificates that connect one after the other, each under its own name. */
const FOLLOWERS = Array.from({ length: 6 }, (_, index) => `follower-${index}`);

before(async () => {
  cluster = await Cluster.create('memory', [
    'a',
    'b',
    { name: 'joiner', role: 'node' },
    { name: 'second', role: 'node' },
    { name: 'spy', role: 'client' },
    ...FOLLOWERS.map((name) => ({ name, role: 'node' as const })),
  ]);
});

after(async () => {
  await cluster.close();
});

const peerService = defineConsensusPeerService(['validator', 'node', 'client']);

function vote(height: number): GossipMessage {
  return {
    kind: 'vote',
    vote: {
      type: 'prevote',
      height,
      round: 0,
      blockHash: null,
      timestamp: 1,
      validator: '11'.repeat(20),
      signature: new Uint8Array(64),
    },
  };
}

describe('unlisted consensus peers (memory transport)', { timeout: 20_000 }, () => {
  it('admits a node-role peer that a and b do not list: it opens the streams, follows, and counts only as a validator', async () => {
    const validators = new Set<string>();
    const joinerKey = cluster.identity('joiner').transportKey.publicKey;
    const policy = {
      isValidator: (key: Uint8Array) => validators.has(Buffer.from(key).toString('hex')),
    };
    const endpoints = await Promise.all(['a', 'b'].map((name) => cluster.endpoint(name)));
    const [a, b] = endpoints.map((running) =>
      cluster.network(
        running,
        endpoints.filter((other) => other !== running),
        { unlisted: policy, blocks: syncedBlocks(5) },
      ),
    ) as [TestNode, TestNode];
    await until(() => a.network.peers().length === 1, 'a and b to connect');
    // The joiner sorts after a and b, so by the pair rule it would wait for them to dial it;
    // their hello answers tell it to open the streams itself.
    const joiner = cluster.network(await cluster.endpoint('joiner'), [a, b]);
    await until(
      () =>
        a.network.peers().includes('joiner') &&
        b.network.peers().includes('joiner') &&
        joiner.network.peers().length === 2,
      'a and b to accept the joiner',
    );
    assert.deepEqual(joiner.network.peers(), ['a', 'b']);
    assert.ok(bytesEqual(a.network.peerKey('joiner') as Uint8Array, joinerKey));
    assert.equal(a.network.canFetchFrom('joiner'), false);
    assert.equal(joiner.network.canFetchFrom('a'), true);
    assert.equal(
      await metricValue(a.registry, 'hypermesh_consensus_net_hellos_total', {
        outcome: 'unlisted',
      }),
      1,
    );

    // It follows: statuses both ways, and blocks from a peer that does not list it.
    a.network.broadcast(status(4));
    joiner.network.broadcast(status(2));
    await until(
      () =>
        joiner.received.some((entry) => entry.peer === 'a') &&
        a.received.some((entry) => entry.peer === 'joiner'),
      'statuses between a and the joiner',
    );
    const fetched: number[] = [];
    for await (const block of joiner.network.fetchBlocks('b', 1, 5)) fetched.push(block.height);
    assert.deepEqual(fetched, [1, 2, 3, 4, 5]);

    // Its votes are dropped while it is not a validator, delivered once it is.
    joiner.network.send('a', vote(3));
    joiner.network.send('a', { kind: 'txs', txs: [Uint8Array.of(9)] });
    await until(
      () => a.received.some((entry) => entry.message.kind === 'txs'),
      'the joiner’s transactions to reach a',
    );
    assert.ok(!a.received.some((entry) => entry.message.kind === 'vote'));
    assert.equal(
      await metricValue(a.registry, 'hypermesh_consensus_net_unlisted_refused_total', {
        kind: 'vote',
      }),
      1,
    );
    validators.add(Buffer.from(joinerKey).toString('hex'));
    joiner.network.send('a', vote(4));
    await until(
      () => a.received.some((entry) => entry.peer === 'joiner' && entry.message.kind === 'vote'),
      'the validator joiner’s vote to reach a',
    );
    // A listed peer's votes never depend on the policy.
    validators.clear();
    b.network.send('a', vote(5));
    await until(
      () => a.received.some((entry) => entry.peer === 'b' && entry.message.kind === 'vote'),
      'b’s vote to reach a',
    );
  });

  it('refuses more followers than maxFollowers, never a validator, and clients whatever the policy', async () => {
    const bKey = cluster.identity('b').transportKey.publicKey;
    const policy = { isValidator: (key: Uint8Array) => bytesEqual(key, bKey), maxFollowers: 1 };
    const a = cluster.network(await cluster.endpoint('a'), [], { unlisted: policy });
    const first = cluster.network(await cluster.endpoint('joiner'), [a]);
    await until(() => a.network.peers().includes('joiner'), 'a to accept the first');
    const second = cluster.network(await cluster.endpoint('second'), [a]);
    await until(
      () =>
        second.logger.lines.some(
          (line) =>
            line.message === 'cannot open gossip stream' &&
            line.fields.code === StoqErrorCode.RESOURCE_EXHAUSTED,
        ),
      'a to refuse the second follower',
    );
    assert.deepEqual(a.network.peers(), ['joiner']);
    assert.deepEqual(first.network.peers(), ['a']);
    // The follower quota is full, but b's key is a validator's: a takes its stream.
    const b = cluster.network(await cluster.endpoint('b'), [a]);
    await until(() => a.network.peers().includes('b'), 'a to accept the validator b');
    assert.deepEqual(a.network.peers(), ['b', 'joiner']);
    await b.network.close();

    const spy: RunningEndpoint = await cluster.endpoint('spy');
    const session = await spy.endpoint.connect(a.address);
    try {
      const channel = await createClient(peerService, session).openMessageStream('gossip');
      await assert.rejects(async () => {
        for await (const _ of channel) void _;
      }, isStoqError(StoqErrorCode.PERMISSION_DENIED));
      await assert.rejects(async () => {
        for await (const _ of createClient(peerService, session).stream('blocks', {
          from: 1,
          to: 2,
        }))
          void _;
      }, isStoqError(StoqErrorCode.PERMISSION_DENIED));
      await assert.rejects(
        createClient(peerService, session).call('hello', {}),
        isStoqError(StoqErrorCode.PERMISSION_DENIED),
      );
    } finally {
      session.connection.close();
    }
  });

  it('takes more followers while it catches up, and closes those beyond the quota once it has', async () => {
    // b's key is a validator of a height a has not reached yet: to a, b is a follower.
    let catchingUp = true;
    const policy = {
      isValidator: () => false,
      maxFollowers: 1,
      maxCatchUpFollowers: 1,
      catchingUp: () => catchingUp,
    };
    const a = cluster.network(await cluster.endpoint('a'), [], { unlisted: policy });
    cluster.network(await cluster.endpoint('joiner'), [a]);
    await until(() => a.network.peers().includes('joiner'), 'a to accept the first follower');
    const b = cluster.network(await cluster.endpoint('b'), [a]);
    await until(() => a.network.peers().includes('b'), 'a, catching up, to accept b too');
    const refused = (node: TestNode): boolean =>
      node.logger.lines.some(
        (line) =>
          line.message === 'cannot open gossip stream' &&
          line.fields.code === StoqErrorCode.RESOURCE_EXHAUSTED,
      );
    const third = cluster.network(await cluster.endpoint('second'), [a]);
    await until(() => refused(third), 'a to refuse a follower beyond both quotas');
    assert.equal(a.network.closeExcessFollowers(), 0, 'nothing is closed while catching up');
    assert.deepEqual(a.network.peers(), ['b', 'joiner']);
    // Caught up, and b's key is still no validator's: the newest follower goes.
    catchingUp = false;
    assert.equal(a.network.closeExcessFollowers(), 1);
    await until(() => !a.network.peers().includes('b'), 'a to close b’s stream');
    await until(() => refused(b), 'a to refuse b when it comes back');
    assert.deepEqual(a.network.peers(), ['joiner']);
    assert.equal(a.network.closeExcessFollowers(), 0);
  });

  it('forgets unlisted peers whose stream ended, and labels their metrics `<unlisted>`', async () => {
    // a dials b (it sorts first), so b remembers having accepted a's stream.
    const policy = { isValidator: () => false, maxFollowers: 2 };
    const [aEndpoint, bEndpoint] = await Promise.all([
      cluster.endpoint('a'),
      cluster.endpoint('b'),
    ]);
    const b = cluster.network(bEndpoint, [aEndpoint], { unlisted: policy });
    cluster.network(aEndpoint, [bEndpoint], { unlisted: policy });
    await until(() => b.network.peers().includes('a'), 'a to open its stream to b');
    assert.equal(b.network.acceptedPeers(), 1);

    // More distinct unlisted names than b has slots: each one's stream ends before the next.
    for (const name of FOLLOWERS) {
      const follower = await cluster.endpoint(name);
      const session = await follower.endpoint.connect(b.address);
      try {
        const channel = await createClient(peerService, session).openMessageStream('gossip');
        const incoming = channel[Symbol.asyncIterator]();
        assert.deepEqual((await incoming.next()).value, { welcome: true });
        await until(() => b.network.peers().includes(name), `b to accept ${name}`);
        assert.equal(b.network.acceptedPeers(), 2, `b remembers ${name} while it is connected`);
        channel.send(Uint8Array.of(0xff));
        await until(
          () =>
            b.logger.lines.some(
              (line) =>
                line.message === 'malformed gossip message dropped' && line.fields.peer === name,
            ),
          `b to drop ${name}’s malformed message`,
        );
      } finally {
        session.connection.close();
      }
      await until(
        () =>
          b.logger.lines.some(
            (line) => line.message === 'consensus peer disconnected' && line.fields.peer === name,
          ),
        `b to see ${name} disconnect`,
      );
      assert.deepEqual(b.network.peers(), ['a']);
      assert.equal(b.network.acceptedPeers(), 1, `b forgot ${name}`);
      await follower.stop();
    }

    // One series for every unlisted peer together; listed peers keep theirs.
    const peerLabels = async (metric: string): Promise<Map<string, number>> => {
      const found = b.registry.getSingleMetric(`hypermesh_consensus_net_${metric}`);
      assert.ok(found, metric);
      const { values } = await found.get();
      return new Map(values.map((value) => [String(value.labels.peer), value.value]));
    };
    assert.deepEqual(
      await peerLabels('peer_connects_total'),
      new Map([
        ['a', 1],
        ['<unlisted>', FOLLOWERS.length],
      ]),
    );
    assert.deepEqual(
      await peerLabels('gossip_malformed_total'),
      new Map([['<unlisted>', FOLLOWERS.length]]),
    );
  });

  it('without a policy, an unlisted node-role peer gets nothing', async () => {
    const a = cluster.network(await cluster.endpoint('a'), [], { blocks: syncedBlocks(2) });
    const joiner = cluster.network(await cluster.endpoint('joiner'), [a]);
    await until(
      () => joiner.logger.lines.some((line) => line.message === 'consensus peer refused hello'),
      'a to refuse the joiner’s hello',
    );
    await assert.rejects(async () => {
      for await (const _ of joiner.network.fetchBlocks('a', 1, 2)) void _;
    }, isStoqError(StoqErrorCode.PERMISSION_DENIED));
    assert.deepEqual(a.network.peers(), []);
  });
});
