import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeCanonical } from '../../../src/codec/cbor.js';
import {
  MemoryZone,
  Rcode,
  ZoneSet,
  ZoneSigner,
  answer,
  decodeMessage,
  encodeMessage,
  generateSigningKey,
  nameKey,
  nameToWire,
  parseRecord,
  rdataBytes,
} from '../../../src/trustchain/dns/index.js';
import {
  ConsensusZones,
  DnsZonesStateError,
  DnsZonesStateErrorCode,
  dnsNameRegister,
  dnsRecordsDelete,
  dnsRecordsSet,
  dnsZoneCreate,
  dnsZonesStateKey,
  dnsZonesStateReader,
  nameEntryKey,
} from '../../../src/trustchain/dns-zones/index.js';
import { encodeNameEntry } from '../../../src/trustchain/dns-zones/codec.js';
import { makeSender } from '../../consensus/application/fixture.js';
import { clusterGenesis, dnsTx, openDnsNode, zoneParams } from './dns-zones-fixture.js';

const ask = (zones: ConsensusZones | ZoneSet, name: string, type: number) => {
  const response = answer(encodeMessage({ id: 7, questions: [{ name, type, class: 1 }] }), zones, {
    transport: 'udp',
  });
  assert.ok(response !== null);
  return decodeMessage(response);
};

const stateError = (code: DnsZonesStateErrorCode) => (error: unknown) => {
  assert.ok(
    error instanceof DnsZonesStateError,
    `expected DnsZonesStateError, got ${String(error)}`,
  );
  assert.equal(error.code, code, error.message);
  return true;
};

const wire = (name: string) => new Uint8Array(nameToWire(name));

describe('ConsensusZones: the bridge from committed state to the DNS servers', () => {
  it('follows the chain block by block and answers from the committed zones', async () => {
    const admin = makeSender();
    const alice = makeSender();
    const node = await openDnsNode(clusterGenesis([admin.publicKey]));
    try {
      const bridge = ConsensusZones.load(dnsZonesStateReader(node.store.state), { height: null });
      assert.equal(bridge.zone('hypermesh.'), undefined);
      assert.deepEqual(bridge.apexes(), []);

      const genesis = node.executeAndCommit([]);
      assert.deepEqual(bridge.applyBlock(1, genesis.changes), {
        height: 1,
        rebuilt: ['hypermesh.'],
        failed: [],
        pending: [],
      });
      const nx = ask(bridge, 'www.hypermesh.', 1);
      assert.equal(nx.rcode, Rcode.NXDOMAIN);
      assert.equal(nx.authority[0]!.type === 'SOA' && nx.authority[0]!.data.serial, 1);

      const block2 = node.executeAndCommit([
        dnsTx(alice, dnsNameRegister('www.hypermesh.')),
        dnsTx(
          alice,
          dnsRecordsSet([
            { name: 'www.hypermesh.', type: 'A', ttl: 60, data: { address: '192.0.2.80' } },
          ]),
        ),
        dnsTx(admin, dnsZoneCreate(zoneParams('corp.example.', [admin.publicKey]))),
      ]);
      assert.deepEqual(
        block2.txResults.map((r) => r.code),
        [0, 0, 0],
      );
      // Another module's keys in the same change list are skipped.
      const kv = { key: new TextEncoder().encode('kv/www.hypermesh.'), value: Uint8Array.of(1) };
      const refresh = bridge.applyBlock(2, [...block2.changes, kv]);
      assert.deepEqual([...refresh.rebuilt].sort(), ['corp.example.', 'hypermesh.']);
      const www = ask(bridge, 'WWW.hypermesh.', 1);
      assert.equal(www.rcode, Rcode.NOERROR);
      assert.deepEqual(
        www.answers.map((rr) => (rr.type === 'A' ? rr.data.address : rr.type)),
        ['192.0.2.80'],
      );
      assert.equal(ask(bridge, 'corp.example.', 6).answers[0]!.type, 'SOA');
      assert.equal(bridge.height, 2);

      // Only the zone a block touches is compiled again.
      const before = bridge.zone('corp.example.');
      const block3 = node.executeAndCommit([
        dnsTx(
          alice,
          dnsRecordsSet([
            { name: 'www.hypermesh.', type: 'TXT', ttl: 60, data: { strings: ['v'] } },
          ]),
        ),
      ]);
      assert.deepEqual(bridge.applyBlock(3, block3.changes).rebuilt, ['hypermesh.']);
      assert.equal(bridge.zone('corp.example.'), before);

      // Deferred compilation: the changes are held, the zone served stays until compile().
      const served = bridge.zone('hypermesh.');
      const block4 = node.executeAndCommit([
        dnsTx(alice, dnsRecordsDelete('www.hypermesh.', 'TXT')),
      ]);
      const deferred = bridge.applyBlock(4, block4.changes, { compile: false });
      assert.deepEqual(deferred, { height: 4, rebuilt: [], failed: [], pending: ['hypermesh.'] });
      assert.equal(bridge.zone('hypermesh.'), served);
      assert.equal(ask(bridge, 'www.hypermesh.', 16).answers.length, 1);
      assert.deepEqual(bridge.compile().rebuilt, ['hypermesh.']);
      assert.deepEqual(bridge.pending(), []);
      assert.equal(ask(bridge, 'www.hypermesh.', 16).answers.length, 0);

      // The same state loaded from scratch serves the same zones.
      const fresh = ConsensusZones.load(dnsZonesStateReader(node.store.state), { height: 4 });
      for (const apex of ['hypermesh.', 'corp.example.']) {
        const a = bridge.zone(apex);
        const b = fresh.zone(apex);
        assert.ok(a instanceof MemoryZone && b instanceof MemoryZone);
        assert.deepEqual(b.records, a.records);
      }
      // ... and so does an earlier height, read through the store's history.
      const atTwo = ConsensusZones.load(dnsZonesStateReader(node.store.state, 2), { height: 2 });
      assert.deepEqual(ask(atTwo, 'www.hypermesh.', 16).answers, []);
      const atThree = ConsensusZones.load(dnsZonesStateReader(node.store.state, 3), { height: 3 });
      assert.equal(ask(atThree, 'www.hypermesh.', 16).answers.length, 1);
    } finally {
      await node.close();
    }
  });

  it('refuses blocks out of order and changes that do not decode, changing nothing', async () => {
    const admin = makeSender();
    const node = await openDnsNode(clusterGenesis([admin.publicKey]));
    try {
      node.executeAndCommit([]);
      const bridge = ConsensusZones.load(dnsZonesStateReader(node.store.state), { height: 1 });
      const zone = bridge.zone('hypermesh.');
      assert.ok(zone !== undefined);
      assert.throws(
        () => bridge.applyBlock(3, []),
        stateError(DnsZonesStateErrorCode.OUT_OF_ORDER),
      );
      assert.throws(
        () => bridge.applyBlock(1, []),
        stateError(DnsZonesStateErrorCode.OUT_OF_ORDER),
      );
      const outside = {
        key: dnsZonesStateKey(nameEntryKey(wire('www.example.'))),
        value: encodeNameEntry({
          owner: admin.publicKey,
          registeredAt: 2,
          updatedAt: 2,
          rrsets: [],
        }),
      };
      assert.throws(
        () => bridge.applyBlock(2, [outside]),
        stateError(DnsZonesStateErrorCode.CORRUPT_VALUE),
      );
      const garbage = {
        key: dnsZonesStateKey(nameEntryKey(wire('www.hypermesh.'))),
        value: encodeCanonical({ x: 1 }),
      };
      assert.throws(
        () => bridge.applyBlock(2, [garbage]),
        stateError(DnsZonesStateErrorCode.CORRUPT_VALUE),
      );
      assert.equal(bridge.height, 1);
      assert.equal(bridge.zone('hypermesh.'), zone);
      assert.deepEqual(bridge.applyBlock(2, []), {
        height: 2,
        rebuilt: [],
        failed: [],
        pending: [],
      });
    } finally {
      await node.close();
    }
  });

  it('keeps serving the last good zone when the new state does not compile', async () => {
    const admin = makeSender();
    const node = await openDnsNode(clusterGenesis([admin.publicKey]));
    try {
      const shared = new ZoneSet([
        MemoryZone.build('static.test.', [
          parseRecord({
            name: 'static.test.',
            type: 'SOA',
            ttl: 60,
            data: {
              mname: 'ns.static.test.',
              rname: 'h.static.test.',
              serial: 1,
              refresh: 1,
              retry: 1,
              expire: 1,
              minimum: 1,
            },
          }),
          parseRecord({
            name: 'static.test.',
            type: 'NS',
            ttl: 60,
            data: { host: 'ns.static.test.' },
          }),
        ]),
      ]);
      const bridge = ConsensusZones.load(dnsZonesStateReader(node.store.state), {
        height: null,
        into: shared,
      });
      bridge.applyBlock(1, node.executeAndCommit([]).changes);
      assert.ok(
        bridge.findZone(nameKey('static.test.')) !== undefined,
        'zones of the shared set stay',
      );
      const good = bridge.zone('hypermesh.');
      // A CNAME next to an A at one name: the module never writes this; the bridge must cope.
      const rdata = (input: Parameters<typeof parseRecord>[0]) => rdataBytes(parseRecord(input));
      const broken = {
        key: dnsZonesStateKey(nameEntryKey(wire('www.hypermesh.'))),
        value: encodeNameEntry({
          owner: admin.publicKey,
          registeredAt: 2,
          updatedAt: 2,
          rrsets: [
            {
              type: 1,
              ttl: 60,
              rdata: [
                rdata({
                  name: 'www.hypermesh.',
                  type: 'A',
                  ttl: 60,
                  data: { address: '192.0.2.1' },
                }),
              ],
            },
            {
              type: 5,
              ttl: 60,
              rdata: [
                rdata({
                  name: 'www.hypermesh.',
                  type: 'CNAME',
                  ttl: 60,
                  data: { target: 'x.test.' },
                }),
              ],
            },
          ],
        }),
      };
      const refresh = bridge.applyBlock(2, [broken]);
      assert.deepEqual(refresh.failed, ['hypermesh.']);
      assert.match(bridge.failures.get('hypermesh.')!.message, /CNAME/);
      assert.equal(bridge.zone('hypermesh.'), good);
      // The next good state clears the failure.
      const repaired = bridge.applyBlock(3, [{ key: broken.key, value: null }]);
      assert.deepEqual(repaired.rebuilt, ['hypermesh.']);
      assert.equal(bridge.failures.size, 0);
    } finally {
      await node.close();
    }
  });

  it('signs the zones it compiles when given a signer per apex', async () => {
    const admin = makeSender();
    const node = await openDnsNode(clusterGenesis([admin.publicKey]));
    try {
      const signer = new ZoneSigner({ apex: 'hypermesh.', key: generateSigningKey() });
      const bridge = ConsensusZones.load(dnsZonesStateReader(node.store.state), {
        height: null,
        buildOptions: (apex) => (apex === 'hypermesh.' ? { signer } : {}),
      });
      bridge.applyBlock(1, node.executeAndCommit([]).changes);
      const zone = bridge.zone('hypermesh.');
      assert.ok(zone instanceof MemoryZone && zone.dnssec !== undefined, 'the zone is signed');
      assert.ok(zone.records.some((rr) => rr.type === 'DNSKEY'));
      assert.equal(bridge.failures.size, 0);
    } finally {
      await node.close();
    }
  });
});
