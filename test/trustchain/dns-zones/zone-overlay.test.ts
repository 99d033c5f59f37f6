import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  answer,
  decodeMessage,
  encodeMessage,
  type ResourceRecord,
} from '../../../src/trustchain/dns/index.js';
import {
  ConsensusZones,
  dnsNameRegister,
  dnsRecordsSet,
  dnsZonesStateReader,
} from '../../../src/trustchain/dns-zones/index.js';
import type { OverlayService } from '../../../src/trustchain/dns-zones/index.js';
import { makeSender } from '../../consensus/application/fixture.js';
import { clusterGenesis, dnsTx, openDnsNode } from './dns-zones-fixture.js';

/**
 * `ConsensusZones`' overlay (a second source of records, the service catalog): which of the two
 * sources keeps a name where they meet, and that no overlay record stops the zone compiling.
 */

const A = 1;
const SRV = 33;

const ask = (zones: ConsensusZones, name: string, type: number) => {
  const response = answer(encodeMessage({ id: 7, questions: [{ name, type, class: 1 }] }), zones, {
    transport: 'udp',
  });
  assert.ok(response !== null);
  return decodeMessage(response);
};

const addresses = (zones: ConsensusZones, name: string) =>
  ask(zones, name, A).answers.flatMap((rr) => (rr.type === 'A' ? [rr.data.address] : []));

const a = (name: string, address: string): ResourceRecord => ({
  name,
  type: 'A',
  class: 1,
  ttl: 5,
  data: { address },
});

const srv = (name: string, target: string): ResourceRecord => ({
  name,
  type: 'SRV',
  class: 1,
  ttl: 5,
  data: { priority: 0, weight: 0, port: 443, target },
});

/**
 * A `dns` node with the cluster zone, `w1.hypermesh.`'s name registered at height 2 with an A
 * record, and the zones followed with `overlay` (which the test may change, then `touch`).
 */
async function zoneWithName(name: string) {
  const alice = makeSender();
  const node = await openDnsNode(clusterGenesis([makeSender().publicKey]));
  let services: readonly OverlayService[] = [];
  const zones = ConsensusZones.load(dnsZonesStateReader(node.store.state), {
    height: null,
    overlay: () => services,
  });
  zones.applyBlock(1, node.executeAndCommit([]).changes);
  const block2 = node.executeAndCommit([
    dnsTx(alice, dnsNameRegister(name)),
    dnsTx(alice, dnsRecordsSet([{ name, type: 'A', ttl: 60, data: { address: '192.0.2.1' } }])),
  ]);
  assert.ok(block2.txResults.every((r) => r.code === 0));
  zones.applyBlock(2, block2.changes);
  return {
    node,
    zones,
    overlay(next: readonly OverlayService[]) {
      services = next;
      zones.touch('hypermesh.');
      return zones.compile();
    },
  };
}

describe('ConsensusZones overlay', () => {
  it('gives a name to the earlier claim: the dns name on a tie, the overlay when older', async () => {
    const { node, zones, overlay } = await zoneWithName('w1._web.hypermesh.');
    try {
      const web = (claimedAt: number, reserved = false): OverlayService => ({
        subtrees: ['_web.hypermesh.'],
        claimedAt,
        reserved,
        records: [a('w1._web.hypermesh.', '192.0.2.9'), a('w2._web.hypermesh.', '192.0.2.10')],
      });
      overlay([web(2)]);
      assert.deepEqual(addresses(zones, 'w1._web.hypermesh.'), ['192.0.2.1'], 'registered at 2');
      assert.deepEqual(addresses(zones, 'w2._web.hypermesh.'), [], 'none of the service is kept');
      overlay([web(1)]);
      assert.deepEqual(addresses(zones, 'w1._web.hypermesh.'), ['192.0.2.9']);
      assert.deepEqual(addresses(zones, 'w2._web.hypermesh.'), ['192.0.2.10']);
      overlay([web(5, true)]);
      assert.deepEqual(addresses(zones, 'w1._web.hypermesh.'), ['192.0.2.9'], 'reserved wins');
      overlay([]);
      assert.deepEqual(addresses(zones, 'w1._web.hypermesh.'), ['192.0.2.1']);
    } finally {
      await node.close();
    }
  });

  it('leaves out records no zone can hold, and compiles the rest', async () => {
    const { node, zones, overlay } = await zoneWithName('www.hypermesh.');
    try {
      const long = 'x'.repeat(63);
      const tooLong = `${[long, long, long, long].join('.')}.w1._web.hypermesh.`;
      const refresh = overlay([
        {
          subtrees: ['_web.hypermesh.', '_web._tcp.hypermesh.', `_${long}.hypermesh.`],
          claimedAt: 1,
          reserved: false,
          records: [
            a('w1._web.hypermesh.', '192.0.2.9'),
            srv('_web._tcp.hypermesh.', 'w1._web.hypermesh.'),
            srv('_web._tcp.hypermesh.', `${tooLong}`),
            a(tooLong, '192.0.2.66'),
            a(`w1._${long}.hypermesh.`, '192.0.2.66'),
            a('www.hypermesh.', '192.0.2.66'),
            a('w9.example.', '192.0.2.66'),
          ],
        },
        {
          subtrees: ['hypermesh.'],
          claimedAt: 0,
          reserved: true,
          records: [a('www.hypermesh.', '192.0.2.66')],
        },
      ]);
      assert.deepEqual(refresh.failed, []);
      assert.deepEqual([...zones.overlayFailures.keys()], []);
      assert.deepEqual(addresses(zones, 'w1._web.hypermesh.'), ['192.0.2.9']);
      assert.deepEqual(
        ask(zones, '_web._tcp.hypermesh.', SRV).answers.map(
          (rr) => rr.type === 'SRV' && rr.data.target,
        ),
        ['w1._web.hypermesh.'],
      );
      assert.deepEqual(
        addresses(zones, 'www.hypermesh.'),
        ['192.0.2.1'],
        'records outside their subtrees, or a claim on the apex, are left out',
      );
    } finally {
      await node.close();
    }
  });

  it("serves the zone's own names when it compiles only without the overlay", async () => {
    const { node, zones, overlay } = await zoneWithName('www.hypermesh.');
    try {
      const cname = (target: string): ResourceRecord => ({
        name: 'w1._web.hypermesh.',
        type: 'CNAME',
        class: 1,
        ttl: 5,
        data: { target },
      });
      const refresh = overlay([
        {
          subtrees: ['_web.hypermesh.'],
          claimedAt: 1,
          reserved: false,
          records: [cname('a.example.'), cname('b.example.')],
        },
      ]);
      assert.deepEqual(refresh, { height: 2, rebuilt: ['hypermesh.'], failed: [], pending: [] });
      assert.deepEqual([...zones.failures.keys()], []);
      assert.match(zones.overlayFailures.get('hypermesh.')?.message ?? '', /CNAME/);
      assert.deepEqual(addresses(zones, 'www.hypermesh.'), ['192.0.2.1']);
      overlay([]);
      assert.deepEqual([...zones.overlayFailures.keys()], []);
    } finally {
      await node.close();
    }
  });
});
