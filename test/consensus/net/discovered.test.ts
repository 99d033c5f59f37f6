import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GossipMessage } from '../../../src/consensus/driver/ports.js';
import {
  ConsensusNetworkError,
  ConsensusNetworkErrorCode,
  DEFAULT_MAX_DISCOVERED_PEERS,
  type DiscoveredPeerConfig,
} from '../../../src/consensus/net/index.js';
import { bytesEqual, toHex } from '../../../src/crypto/bytes.js';
import { StoqErrorCode } from '../../../src/stoq/errors.js';
import {
  Cluster,
  formatAddress,
  metricValue,
  status,
  syncedBlocks,
  until,
  type RunningEndpoint,
  type TestNode,
} from './net-fixture.js';

/**
 * Discovered peers (`setDiscoveredPeers`): peers a node does not list but dials anyway — in the
 * node, validators found in the service catalog (docs/consensus.md "Validator-set changes").
 * Neither side lists the other here, so without the call they would never connect.
 */

let cluster: Cluster;

before(async () => {
  cluster = await Cluster.create('memory', [
    'a',
    'b',
    'm',
    'x',
    'z',
    { name: 'f1', role: 'node' },
    { name: 'f2', role: 'node' },
  ]);
});

after(async () => {
  await cluster.close();
});

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

function keyOf(name: string): Uint8Array {
  return cluster.identity(name).transportKey.publicKey;
}

function discovered(peer: RunningEndpoint, publicKey = keyOf(peer.name)): DiscoveredPeerConfig {
  return { id: peer.name, address: formatAddress(peer.address), publicKey };
}

function refusedWith(code: ConsensusNetworkErrorCode): (error: unknown) => boolean {
  return (error) => error instanceof ConsensusNetworkError && error.code === code;
}

describe('discovered consensus peers (memory transport)', { timeout: 20_000 }, () => {
  it('dials a discovered peer that lists nobody, counts its votes only as a validator’s, and drops it when removed', async () => {
    const validators = new Set<string>();
    const policy = {
      isValidator: (key: Uint8Array) => validators.has(Buffer.from(key).toString('hex')),
    };
    const z = cluster.network(await cluster.endpoint('z'), [], {
      unlisted: policy,
      blocks: syncedBlocks(3),
    });
    const a = cluster.network(await cluster.endpoint('a'), [], { unlisted: policy });
    assert.equal(a.network.maxDiscoveredPeers, DEFAULT_MAX_DISCOVERED_PEERS);
    // "a" sorts first: it opens the stream, as it would to a listed peer.
    assert.deepEqual(a.network.setDiscoveredPeers([discovered(z)]), {
      added: ['z'],
      removed: [],
    });
    assert.deepEqual(a.network.discoveredPeers(), ['z']);
    await until(
      () => a.network.peers().includes('z') && z.network.peers().includes('a'),
      'a to dial z',
    );
    assert.ok(
      a.logger.lines.some(
        (line) =>
          line.message === 'consensus peer connected' &&
          line.fields.peer === 'z' &&
          line.fields.side === 'opener' &&
          line.fields.discovered === true,
      ),
    );
    assert.ok(bytesEqual(a.network.peerKey('z') as Uint8Array, keyOf('z')));
    // It has an address: block sync may use it.
    assert.equal(a.network.canFetchFrom('z'), true);
    const fetched: number[] = [];
    for await (const block of a.network.fetchBlocks('z', 1, 3)) fetched.push(block.height);
    assert.deepEqual(fetched, [1, 2, 3]);

    // Authenticated like an unlisted peer: its votes count only while its key is a validator's.
    z.network.send('a', vote(3));
    z.network.send('a', { kind: 'txs', txs: [Uint8Array.of(7)] });
    await until(
      () => a.received.some((entry) => entry.peer === 'z' && entry.message.kind === 'txs'),
      'z’s transactions to reach a',
    );
    assert.ok(!a.received.some((entry) => entry.message.kind === 'vote'));
    assert.equal(
      await metricValue(a.registry, 'hypermesh_consensus_net_unlisted_refused_total', {
        kind: 'vote',
      }),
      1,
    );
    validators.add(Buffer.from(keyOf('z')).toString('hex'));
    z.network.send('a', vote(4));
    await until(
      () => a.received.some((entry) => entry.peer === 'z' && entry.message.kind === 'vote'),
      'the validator z’s vote to reach a',
    );

    // The same set again changes nothing; an empty one drops z and closes its stream.
    assert.deepEqual(a.network.setDiscoveredPeers([discovered(z)]), { added: [], removed: [] });
    assert.deepEqual(a.network.setDiscoveredPeers([]), { added: [], removed: ['z'] });
    await until(
      () => a.network.peers().length === 0 && z.network.peers().length === 0,
      'the stream between a and z to close',
    );
    assert.equal(a.network.canFetchFrom('z'), false);
    await a.network.close();
    await z.network.close();
  });

  it('greets a discovered peer that sorts first, which then opens the stream', async () => {
    const policy = { isValidator: () => true };
    const a = cluster.network(await cluster.endpoint('a'), [], { unlisted: policy });
    const m = cluster.network(await cluster.endpoint('m'), [], { unlisted: policy });
    // m sorts after a: it says hello; a does not know m and tells it to open the stream.
    m.network.setDiscoveredPeers([discovered(a)]);
    await until(
      () => a.network.peers().includes('m') && m.network.peers().includes('a'),
      'm and a to connect',
    );
    // Both now know each other: a opens the stream, as the pair rule says.
    a.network.setDiscoveredPeers([discovered(m)]);
    await until(
      () =>
        a.logger.lines.some(
          (line) =>
            line.message === 'consensus peer connected' &&
            line.fields.peer === 'm' &&
            line.fields.side === 'opener',
        ) && a.network.peers().includes('m'),
      'a to open its own stream to m',
    );
    await a.network.close();
    await m.network.close();
  });

  it('refuses a peer that authenticates with another key than the one discovered', async () => {
    const policy = { isValidator: () => true };
    const z = cluster.network(await cluster.endpoint('z'), [], { unlisted: policy });
    const a = cluster.network(await cluster.endpoint('a'), [], { unlisted: policy });
    a.network.setDiscoveredPeers([discovered(z, keyOf('b'))]);
    await until(
      () =>
        a.logger.lines.some(
          (line) =>
            line.message === 'cannot open gossip stream' &&
            line.fields.peer === 'z' &&
            line.fields.code === StoqErrorCode.UNAUTHENTICATED,
        ),
      'a to refuse z’s key',
    );
    assert.deepEqual(a.network.peers(), []);
    await a.network.close();
    await z.network.close();
  });

  it('refuses a stream from a certificate with a discovered peer’s name but another key that is no validator’s', async () => {
    const policy = { isValidator: (key: Uint8Array) => !bytesEqual(key, keyOf('m')) };
    const m = await cluster.endpoint('m');
    const a = cluster.network(await cluster.endpoint('a'), [], { unlisted: policy });
    // The catalog says m's key is b's: the real m (its own key, a follower's) is not that peer,
    // and taken as an unlisted one it could replace the discovered peer's stream.
    a.network.setDiscoveredPeers([discovered(m, keyOf('b'))]);
    const mNode = cluster.network(m, [a]);
    await until(
      () =>
        mNode.logger.lines.some(
          (line) =>
            line.message === 'cannot open gossip stream' &&
            line.fields.code === StoqErrorCode.PERMISSION_DENIED,
        ),
      'a to refuse m’s stream',
    );
    assert.deepEqual(a.network.peers(), []);
    await mNode.network.close();
    await a.network.close();
  });

  it('takes the real validator whose name another validator holds in the catalog, and keeps its stream when discovery drops the entry', async () => {
    // Any validator key may register an unowned `hypermesh-node/m`: b did, so a discovered m
    // with b's key at b's address. The certificate, not the catalog, says who m is.
    const policy = { isValidator: () => true };
    const b = await cluster.endpoint('b');
    const a = cluster.network(await cluster.endpoint('a'), [], { unlisted: policy });
    a.network.setDiscoveredPeers([{ ...discovered(b), id: 'm' }]);
    const m = cluster.network(await cluster.endpoint('m'), [a]);
    await until(
      () => a.network.peers().includes('m') && m.network.peers().includes('a'),
      'the real m to connect to a',
    );
    assert.ok(bytesEqual(a.network.peerKey('m') as Uint8Array, keyOf('m')));
    // What the certificates told a: m's key is m's, and dialling "m" at b's address met b.
    assert.equal(a.network.certifiedNames().get(toHex(keyOf('m'))), 'm');
    await until(
      () => a.network.certifiedNames().get(toHex(keyOf('b'))) === 'b',
      'a to learn b’s name from dialling the catalog’s address',
    );
    // Discovery leaves the entry out from then on; the real m's stream is not the entry's.
    assert.deepEqual(a.network.setDiscoveredPeers([]), { added: [], removed: ['m'] });
    assert.deepEqual(a.network.peers(), ['m']);
    a.network.send('m', status(2));
    await until(
      () => m.received.some((entry) => entry.peer === 'a' && entry.message.kind === 'status'),
      'a’s status to reach m on the stream it kept',
    );
    await m.network.close();
    await a.network.close();
    await b.stop();
  });

  it('takes every validator’s stream past any number of discovered peers and a full follower quota; refuses followers beyond maxFollowers', async () => {
    const validators = new Set([toHex(keyOf('x'))]);
    const policy = {
      isValidator: (key: Uint8Array) => validators.has(toHex(key)),
      maxFollowers: 1,
    };
    const a = cluster.network(await cluster.endpoint('a'), [], { unlisted: policy });
    // 17 other validators that joined, found in the catalog (they need not be up): more than
    // the 16 discovered peers a node used to take, which also took every unlisted slot.
    const joined = Array.from({ length: 17 }, (_, index) => ({
      id: `j${String(index).padStart(2, '0')}`,
      address: `nowhere-${index}.test:1`,
      publicKey: new Uint8Array(32).fill(index + 1),
    }));
    assert.equal(a.network.setDiscoveredPeers(joined).added.length, 17);
    const f1 = cluster.network(await cluster.endpoint('f1'), [a]);
    await until(() => a.network.peers().includes('f1'), 'a to take the first follower');
    const f2 = cluster.network(await cluster.endpoint('f2'), [a]);
    await until(
      () =>
        f2.logger.lines.some(
          (line) =>
            line.message === 'cannot open gossip stream' &&
            line.fields.code === StoqErrorCode.RESOURCE_EXHAUSTED,
        ),
      'a to refuse the second follower',
    );
    // x, a validator a neither lists nor discovered, lists a: a takes it all the same.
    const x = cluster.network(await cluster.endpoint('x'), [a]);
    await until(
      () => a.network.peers().includes('x') && x.network.peers().includes('a'),
      'a to take the validator x',
    );
    assert.deepEqual(a.network.peers(), ['f1', 'x']);
    for (const node of [x, f2, f1, a]) await node.network.close();
  });

  it('refuses bad sets whole, changing nothing', async () => {
    const b = await cluster.endpoint('b');
    const z = await cluster.endpoint('z');
    const a: TestNode = cluster.network(await cluster.endpoint('a'), [b], {
      unlisted: { isValidator: () => true, maxDiscoveredPeers: 2 },
    });
    a.network.setDiscoveredPeers([discovered(z)]);
    const good = discovered(z);
    const cases: [DiscoveredPeerConfig[], ConsensusNetworkErrorCode][] = [
      [[{ ...good, id: 'no/slash' }], ConsensusNetworkErrorCode.INVALID_PEER],
      [[{ ...good, id: '' }], ConsensusNetworkErrorCode.INVALID_PEER],
      [[{ ...good, address: 'z.test' }], ConsensusNetworkErrorCode.INVALID_PEER],
      [[{ ...good, address: 'z.test:0' }], ConsensusNetworkErrorCode.INVALID_PEER],
      [[{ ...good, id: 'a' }], ConsensusNetworkErrorCode.INVALID_PEER],
      [[{ ...good, id: 'b' }], ConsensusNetworkErrorCode.INVALID_PEER],
      [[good, good], ConsensusNetworkErrorCode.INVALID_PEER],
      [[{ ...good, publicKey: new Uint8Array(31) }], ConsensusNetworkErrorCode.INVALID_PEER],
      [
        [good, { ...good, id: 'm' }, { ...good, id: 'n' }],
        ConsensusNetworkErrorCode.TOO_MANY_PEERS,
      ],
    ];
    for (const [peers, code] of cases) {
      assert.throws(() => a.network.setDiscoveredPeers(peers), refusedWith(code));
      assert.deepEqual(a.network.discoveredPeers(), ['z'], JSON.stringify(peers));
    }
    await a.network.close();
    assert.throws(
      () => a.network.setDiscoveredPeers([]),
      refusedWith(ConsensusNetworkErrorCode.INVALID_OPTIONS),
    );
    // Without an unlisted policy a discovered peer's votes could not be checked.
    const plain = cluster.network(await cluster.endpoint('m'), []);
    assert.throws(
      () => plain.network.setDiscoveredPeers([discovered(z)]),
      refusedWith(ConsensusNetworkErrorCode.INVALID_OPTIONS),
    );
    assert.deepEqual(plain.network.discoveredPeers(), []);
    await plain.network.close();
  });
});
