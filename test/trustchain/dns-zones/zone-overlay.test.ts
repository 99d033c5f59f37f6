import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Rcode,
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
 * `ConsensusZones`' overlay (a second source of records, the service catalog): the zone's own
 * names win over a service unless it is reserved, and no overlay record stops the zone compiling.
 */

const A = 1;
const NS = 2;
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

const srvs = (zones: ConsensusZones, name: string) =>
  ask(zones, name, SRV).answers.flatMap((rr) => (rr.type === 'SRV' ? [rr.data.target] : []));

/**
 * A `dns` node with the cluster zone, `name` registered at height 2 with an A record (or with
 * `records`), and the zones followed with `overlay` (which the test may change, then `touch`).
 */
async function zoneWithName(
  name: string,
  records: Parameters<typeof dnsRecordsSet>[0] = [
    { name, type: 'A', ttl: 60, data: { address: '192.0.2.1' } },
  ],
) {
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
    dnsTx(alice, dnsRecordsSet(records)),
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

/** The service `name` with one instance, `w1` at `address`, and one port over `protocol`. */
const service = (
  name: string,
  protocol: string,
  address: string,
  reserved = false,
): OverlayService => ({
  subtrees: [`_${name}.hypermesh.`, `_${name}._${protocol}.hypermesh.`],
  reserved,
  records: [
    srv(`_${name}._${protocol}.hypermesh.`, `w1._${name}.hypermesh.`),
    a(`w1._${name}.hypermesh.`, address),
  ],
});

describe('ConsensusZones overlay', () => {
  it("keeps the zone's names and leaves out the whole service met; a reserved one wins", async () => {
    const { node, zones, overlay } = await zoneWithName('w1._web.hypermesh.');
    try {
      const web = (reserved: boolean): OverlayService => ({
        subtrees: ['_web.hypermesh.', '_web._tcp.hypermesh.'],
        reserved,
        records: [
          a('w1._web.hypermesh.', '192.0.2.9'),
          a('w2._web.hypermesh.', '192.0.2.10'),
          srv('_web._tcp.hypermesh.', 'w2._web.hypermesh.'),
        ],
      });
      overlay([web(false), service('api', 'stoq', '192.0.2.20')]);
      assert.deepEqual(addresses(zones, 'w1._web.hypermesh.'), ['192.0.2.1'], 'the name stays');
      assert.deepEqual(addresses(zones, 'w2._web.hypermesh.'), [], 'none of the service is kept');
      assert.deepEqual(srvs(zones, '_web._tcp.hypermesh.'), []);
      assert.deepEqual(srvs(zones, '_api._stoq.hypermesh.'), ['w1._api.hypermesh.']);
      assert.deepEqual(addresses(zones, 'w1._api.hypermesh.'), ['192.0.2.20'], 'only that one');
      overlay([web(true)]);
      assert.deepEqual(addresses(zones, 'w1._web.hypermesh.'), ['192.0.2.9'], 'reserved wins');
      assert.deepEqual(srvs(zones, '_web._tcp.hypermesh.'), ['w2._web.hypermesh.']);
      overlay([]);
      assert.deepEqual(addresses(zones, 'w1._web.hypermesh.'), ['192.0.2.1']);
    } finally {
      await node.close();
    }
  });

  it('leaves out a service below a delegation, and strips the delegation for a reserved one', async () => {
    const { node, zones, overlay } = await zoneWithName('_tcp.hypermesh.', [
      { name: '_tcp.hypermesh.', type: 'NS', ttl: 60, data: { host: 'ns.example.' } },
    ]);
    try {
      const refresh = overlay([
        service('web', 'tcp', '192.0.2.9'),
        service('api', 'stoq', '192.0.2.20'),
      ]);
      assert.deepEqual(refresh.failed, []);
      assert.deepEqual([...zones.overlayFailures.keys()], []);
      const referral = ask(zones, '_web._tcp.hypermesh.', SRV);
      assert.equal(referral.authoritative, false, 'the delegation is served');
      assert.deepEqual(
        referral.authority.map((rr) => rr.type === 'NS' && rr.data.host),
        ['ns.example.'],
      );
      assert.equal(
        ask(zones, 'w1._web.hypermesh.', A).rcode,
        Rcode.NXDOMAIN,
        'none of the service is kept, its names outside the delegation neither',
      );
      assert.deepEqual(srvs(zones, '_api._stoq.hypermesh.'), ['w1._api.hypermesh.']);

      overlay([
        service('web', 'tcp', '192.0.2.9'),
        service('hypermesh-node', 'tcp', '192.0.2.1', true),
      ]);
      assert.deepEqual([...zones.overlayFailures.keys()], []);
      const reserved = ask(zones, '_hypermesh-node._tcp.hypermesh.', SRV);
      assert.equal(reserved.authoritative, true);
      assert.deepEqual(
        reserved.answers.map((rr) => rr.type === 'SRV' && rr.data.target),
        ['w1._hypermesh-node.hypermesh.'],
      );
      const cut = ask(zones, '_tcp.hypermesh.', NS);
      assert.equal(cut.authoritative, true, 'the NS above the reserved service is stripped');
      assert.deepEqual(cut.answers, []);
      assert.equal(
        ask(zones, 'w1._web.hypermesh.', A).rcode,
        Rcode.NXDOMAIN,
        'the registered delegation still keeps the other service out',
      );
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
