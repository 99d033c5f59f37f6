import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeCanonical } from '../../../src/codec/cbor.js';
import { decodeStateProof, encodeStateProof } from '../../../src/storage/index.js';
import type { RecordInput } from '../../../src/trustchain/dns/index.js';
import {
  DnsZonesError,
  DnsZonesErrorCode,
  DnsZonesStateError,
  DnsZonesStateErrorCode,
  MAX_NAMES_PER_OWNER,
  MAX_NAMES_PER_ZONE,
  MAX_ZONES,
  ZONES_KEY,
  createDnsZonesModule,
  dnsNameQuery,
  dnsNameRegister,
  dnsNameRelease,
  dnsNameTransfer,
  dnsOwnerQuery,
  dnsRecordsDelete,
  dnsRecordsSet,
  dnsZoneCreate,
  dnsZoneQuery,
  dnsZoneUpdate,
  dnsZonesInitialState,
  dnsZonesQuery,
  dnsZonesStateKey,
  verifyDnsName,
  verifyDnsOwner,
  verifyDnsZone,
  verifyDnsZones,
} from '../../../src/trustchain/dns-zones/index.js';
import { encodeZone } from '../../../src/trustchain/dns-zones/codec.js';
import { blockAt, makeSender, openNode } from '../../consensus/application/fixture.js';
import type { Sender, TestNode } from '../../consensus/application/fixture.js';
import {
  applied,
  clusterGenesis,
  dnsTx,
  openDnsNode,
  refused,
  zoneParams,
} from './dns-zones-fixture.js';

const C = DnsZonesErrorCode;

const A = (name: string, ...addresses: string[]): RecordInput[] =>
  addresses.map((address) => ({ name, type: 'A', ttl: 300, data: { address } }));
const TXT = (name: string, text: string): RecordInput[] => [
  { name, type: 'TXT', ttl: 300, data: { strings: [text] } },
];
const NS = (name: string, host: string): RecordInput[] => [
  { name, type: 'NS', ttl: 300, data: { host } },
];
const CNAME = (name: string, target: string): RecordInput[] => [
  { name, type: 'CNAME', ttl: 300, data: { target } },
];
const DS = (name: string): RecordInput[] => [
  {
    name,
    type: 'DS',
    ttl: 300,
    data: { keyTag: 1, algorithm: 13, digestType: 2, digest: 'ab'.repeat(32) },
  },
];

interface World {
  readonly node: TestNode;
  readonly admin: Sender;
  readonly alice: Sender;
  readonly bob: Sender;
}

async function world(
  genesis = (admin: Sender) => clusterGenesis([admin.publicKey]),
): Promise<World> {
  const admin = makeSender();
  const node = await openDnsNode(genesis(admin));
  node.executeAndCommit([]); // block 1 writes the genesis zones
  return { node, admin, alice: makeSender(), bob: makeSender() };
}

describe('dns module: genesis zones and proven queries', () => {
  it('serves the genesis zone, names and records with proofs; tampering fails', async () => {
    const { node, admin, alice } = await world();
    try {
      const zones = verifyDnsZones(node.app.query(dnsZonesQuery()));
      assert.deepEqual(zones, ['hypermesh.']);
      const zone = verifyDnsZone('HyperMesh', node.app.query(dnsZoneQuery('hypermesh.')));
      assert.ok(zone !== null);
      assert.equal(zone.kind, 'cluster');
      assert.equal(zone.serial, 1);
      assert.deepEqual(zone.admins, [admin.publicKey]);
      assert.deepEqual(zone.nameservers.hosts, ['ns1.hypermesh.', 'ns2.hypermesh.']);

      applied(node, alice, dnsNameRegister('www.hypermesh.'));
      const setAt = node.nextHeight();
      applied(node, alice, dnsRecordsSet(A('www.hypermesh.', '192.0.2.2', '192.0.2.1')));
      const response = node.app.query(dnsNameQuery('WWW.hypermesh.'));
      const entry = verifyDnsName('www.hypermesh.', response);
      assert.ok(entry !== null);
      assert.deepEqual(entry.owner, alice.publicKey);
      assert.equal(entry.registeredAt, setAt - 1);
      assert.equal(entry.updatedAt, setAt);
      assert.deepEqual(
        entry.records.map((rr) => (rr.type === 'A' ? rr.data.address : '')),
        ['192.0.2.1', '192.0.2.2'],
      );
      assert.equal(
        verifyDnsZone('hypermesh.', node.app.query(dnsZoneQuery('hypermesh.')))!.serial,
        setAt,
      );
      assert.deepEqual(
        verifyDnsOwner(alice.publicKey, node.app.query(dnsOwnerQuery(alice.publicKey))),
        ['www.hypermesh.'],
      );
      assert.equal(
        verifyDnsName('nope.hypermesh.', node.app.query(dnsNameQuery('nope.hypermesh.'))),
        null,
      );

      // Tampering: another value, another root, a proof of another key, no proof.
      const proofInvalid = (run: () => unknown) =>
        assert.throws(run, (error: unknown) => {
          assert.ok(error instanceof DnsZonesStateError);
          assert.equal(error.code, DnsZonesStateErrorCode.PROOF_INVALID);
          return true;
        });
      const value = Uint8Array.from(response.value!);
      value[value.length - 1]! ^= 1;
      proofInvalid(() => verifyDnsName('www.hypermesh.', { ...response, value }));
      const stateRoot = Uint8Array.from(response.stateRoot);
      stateRoot[0]! ^= 1;
      proofInvalid(() => verifyDnsName('www.hypermesh.', { ...response, stateRoot }));
      proofInvalid(() => verifyDnsName('web.hypermesh.', response));
      const { proof: _proof, ...bare } = response;
      proofInvalid(() => verifyDnsName('www.hypermesh.', bare));
      const reencoded = encodeStateProof(decodeStateProof(response.proof!));
      assert.ok(verifyDnsName('www.hypermesh.', { ...response, proof: reencoded }) !== null);
      const zoneResponse = node.app.query(dnsZoneQuery('hypermesh.'));
      proofInvalid(() => verifyDnsZone('hypermesh.', { ...zoneResponse, value: null }));
    } finally {
      await node.close();
    }
  });

  it('refuses bad query data', async () => {
    const { node } = await world();
    try {
      const invalid = (path: string, data: Uint8Array) =>
        assert.throws(
          () => node.app.query({ path: `dns/${path}`, data }),
          (error: unknown) => error instanceof DnsZonesError && error.code === C.INVALID_QUERY,
        );
      invalid('name', new Uint8Array(0));
      invalid('name', Uint8Array.of(0xff, 0xfe));
      invalid('name', new TextEncoder().encode('a..b'));
      invalid('zone', new TextEncoder().encode(`${'x'.repeat(64)}.`));
      invalid('zones', Uint8Array.of(1));
      invalid('owner', new Uint8Array(31));
      assert.throws(() => dnsOwnerQuery(new Uint8Array(3)), DnsZonesError);
    } finally {
      await node.close();
    }
  });
});

describe('dns module: ownership', () => {
  it('register, transfer, release, and subdomain control', async () => {
    const { node, admin, alice, bob } = await world();
    try {
      applied(node, alice, dnsNameRegister('www.hypermesh.'));
      refused(node, bob, dnsNameRegister('www.hypermesh.'), C.ALREADY_OWNED);
      refused(node, alice, dnsNameRegister('hypermesh.'), C.IS_APEX);
      refused(node, alice, dnsNameRegister('www.example.'), C.NOT_IN_ZONE);
      // Owning www.hypermesh. gives control of the names below it, registered or not.
      refused(node, bob, dnsNameRegister('api.www.hypermesh.'), C.ANCESTOR_OWNED);
      refused(node, bob, dnsNameRegister('deep.api.www.hypermesh.'), C.ANCESTOR_OWNED);
      applied(node, alice, dnsNameRegister('api.www.hypermesh.'));
      applied(node, alice, dnsNameTransfer('api.www.hypermesh.', bob.publicKey));
      // ... but not of their records: api now belongs to bob alone.
      refused(node, alice, dnsRecordsSet(A('api.www.hypermesh.', '192.0.2.9')), C.NOT_OWNER);
      applied(node, bob, dnsRecordsSet(A('api.www.hypermesh.', '192.0.2.9')));
      // Below api, bob decides now (the closest registered ancestor's owner).
      refused(node, alice, dnsNameRegister('v1.api.www.hypermesh.'), C.ANCESTOR_OWNED);
      applied(node, bob, dnsNameRegister('v1.api.www.hypermesh.'));

      // Wildcards: `*.X` is registered by whoever controls X; at the top, the zone's admins.
      refused(node, alice, dnsNameRegister('*.hypermesh.'), C.NOT_ZONE_ADMIN);
      refused(node, bob, dnsNameRegister('*.www.hypermesh.'), C.ANCESTOR_OWNED);
      applied(node, alice, dnsNameRegister('*.www.hypermesh.'));
      applied(node, admin, dnsNameRegister('*.hypermesh.'));

      refused(node, bob, dnsNameTransfer('www.hypermesh.', bob.publicKey), C.NOT_OWNER);
      refused(node, alice, dnsNameTransfer('www.hypermesh.', alice.publicKey), C.SELF_TRANSFER);
      refused(node, alice, dnsNameTransfer('free.hypermesh.', bob.publicKey), C.NOT_REGISTERED);
      refused(node, admin, dnsNameTransfer('hypermesh.', bob.publicKey), C.IS_APEX);
      refused(node, admin, dnsNameRelease('hypermesh.'), C.IS_APEX);
      refused(node, bob, dnsNameRelease('www.hypermesh.'), C.NOT_OWNER);
      refused(node, bob, dnsNameRelease('free.hypermesh.'), C.NOT_REGISTERED);
      refused(node, bob, dnsRecordsSet(A('free.hypermesh.', '192.0.2.1')), C.NOT_REGISTERED);

      applied(node, alice, dnsRecordsSet(A('www.hypermesh.', '192.0.2.1')));
      applied(node, alice, dnsNameRelease('www.hypermesh.'));
      assert.equal(
        verifyDnsName('www.hypermesh.', node.app.query(dnsNameQuery('www.hypermesh.'))),
        null,
      );
      // Names below stay with their owners; the released name is free for a key that owns
      // every name registered below it (alice's wildcard is there; see over-others.test.ts).
      assert.deepEqual(
        verifyDnsName('api.www.hypermesh.', node.app.query(dnsNameQuery('api.www.hypermesh.')))!
          .owner,
        bob.publicKey,
      );
      refused(node, bob, dnsNameRegister('www.hypermesh.'), C.DESCENDANT_OWNED);
      applied(node, alice, dnsNameRelease('*.www.hypermesh.'));
      applied(node, bob, dnsNameRegister('www.hypermesh.'));
      assert.deepEqual(
        verifyDnsName('www.hypermesh.', node.app.query(dnsNameQuery('www.hypermesh.')))!.records,
        [],
      );
      assert.deepEqual(
        verifyDnsOwner(alice.publicKey, node.app.query(dnsOwnerQuery(alice.publicKey))),
        [],
      );
    } finally {
      await node.close();
    }
  });

  it('an admins-only zone registers top names for its admins only', async () => {
    const { node, admin, alice } = await world((a) =>
      clusterGenesis([a.publicKey], { policy: 'admins' }),
    );
    try {
      refused(node, alice, dnsNameRegister('www.hypermesh.'), C.NOT_ZONE_ADMIN);
      applied(node, admin, dnsNameRegister('www.hypermesh.'));
      applied(node, admin, dnsNameTransfer('www.hypermesh.', alice.publicKey));
      applied(node, alice, dnsNameRegister('api.www.hypermesh.'));
    } finally {
      await node.close();
    }
  });
});

describe('dns module: zones and their admins', () => {
  it('cluster admins create delegated zones; zone admins update them', async () => {
    const { node, admin, alice, bob } = await world();
    try {
      const corp = zoneParams('corp.example.', [alice.publicKey]);
      refused(node, alice, dnsZoneCreate(corp), C.NOT_ZONE_ADMIN);
      const createdAt = node.nextHeight();
      applied(node, admin, dnsZoneCreate(corp));
      const zone = verifyDnsZone('corp.example.', node.app.query(dnsZoneQuery('corp.example.')))!;
      assert.equal(zone.kind, 'delegated');
      assert.equal(zone.createdAt, createdAt);
      assert.equal(zone.serial, createdAt);
      assert.deepEqual(verifyDnsZones(node.app.query(dnsZonesQuery())), [
        'corp.example.',
        'hypermesh.',
      ]);
      refused(node, admin, dnsZoneCreate(corp), C.ZONE_EXISTS);
      refused(
        node,
        admin,
        dnsZoneCreate(zoneParams('a.corp.example.', [admin.publicKey])),
        C.ZONE_OVERLAP,
      );
      refused(
        node,
        admin,
        dnsZoneCreate(zoneParams('example.', [admin.publicKey])),
        C.ZONE_OVERLAP,
      );
      refused(
        node,
        admin,
        dnsZoneCreate(zoneParams('sub.hypermesh.', [admin.publicKey])),
        C.ZONE_OVERLAP,
      );
      // An admin of a delegated zone is not a cluster admin.
      refused(
        node,
        alice,
        dnsZoneCreate(zoneParams('other.example.', [alice.publicKey])),
        C.NOT_ZONE_ADMIN,
      );
      refused(node, admin, dnsZoneUpdate(corp), C.NOT_ZONE_ADMIN);
      refused(
        node,
        alice,
        dnsZoneUpdate(zoneParams('nope.example.', [alice.publicKey])),
        C.NO_SUCH_ZONE,
      );

      // Apex records belong to the zone's admins; SOA and the apex NS come from its parameters.
      refused(node, bob, dnsRecordsSet(TXT('corp.example.', 'v=spf1 -all')), C.NOT_ZONE_ADMIN);
      applied(node, alice, dnsRecordsSet(TXT('corp.example.', 'v=spf1 -all')));
      refused(node, alice, dnsRecordsSet(NS('corp.example.', 'ns9.corp.example.')), C.MANAGED_TYPE);
      refused(node, alice, dnsRecordsDelete('corp.example.', 'NS'), C.MANAGED_TYPE);
      refused(node, alice, dnsRecordsSet(CNAME('corp.example.', 'x.example.')), C.CNAME_CONFLICT);
      refused(node, alice, dnsRecordsSet(DS('corp.example.')), C.DS_NOT_AT_DELEGATION);
      const apex = verifyDnsName('corp.example.', node.app.query(dnsNameQuery('corp.example.')))!;
      assert.equal(apex.owner, null);
      assert.equal(apex.records.length, 1);
      applied(node, alice, dnsRecordsDelete('corp.example.', 'TXT'));
      assert.equal(
        verifyDnsName('corp.example.', node.app.query(dnsNameQuery('corp.example.'))),
        null,
      );
      refused(node, alice, dnsRecordsDelete('corp.example.', 'TXT'), C.NO_SUCH_RRSET);

      // Handing the zone over: the old admin loses every right at once.
      applied(node, alice, dnsZoneUpdate({ ...corp, admins: [bob.publicKey], policy: 'admins' }));
      refused(node, alice, dnsRecordsSet(TXT('corp.example.', 'x')), C.NOT_ZONE_ADMIN);
      refused(node, alice, dnsNameRegister('www.corp.example.'), C.NOT_ZONE_ADMIN);
      applied(node, bob, dnsNameRegister('www.corp.example.'));
      const updated = verifyDnsZone(
        'corp.example.',
        node.app.query(dnsZoneQuery('corp.example.')),
      )!;
      assert.equal(updated.kind, 'delegated');
      assert.equal(updated.names, 1);
      assert.equal(updated.createdAt, createdAt);
    } finally {
      await node.close();
    }
  });

  it('ZONE_LIMIT and ZONE_FULL', async () => {
    const admin = makeSender();
    const zones = Array.from({ length: MAX_ZONES }, (_, i) =>
      zoneParams(`z${i}.example.`, [admin.publicKey]),
    );
    const node = await openDnsNode({ zones });
    try {
      node.executeAndCommit([]);
      refused(
        node,
        admin,
        dnsZoneCreate(zoneParams('one-more.example.', [admin.publicKey])),
        C.ZONE_LIMIT,
      );
    } finally {
      await node.close();
    }
    // A zone at its name limit, written directly as genesis state.
    const full = zoneParams('hypermesh.', [admin.publicKey]);
    const initialState = dnsZonesInitialState({ zones: [full] }).map((entry) =>
      entry.key.length > ZONES_KEY.length + 4
        ? {
            key: entry.key,
            value: encodeZone({
              ...full,
              kind: 'cluster',
              serial: 1,
              createdAt: 1,
              names: MAX_NAMES_PER_ZONE,
            }),
          }
        : entry,
    );
    const crowded = await openNode({ modules: [createDnsZonesModule()], initialState });
    try {
      crowded.executeAndCommit([]);
      refused(crowded, makeSender(), dnsNameRegister('www.hypermesh.'), C.ZONE_FULL);
    } finally {
      await crowded.close();
    }
  });
});

describe('dns module: records and the zone rules', () => {
  it('CNAME, delegations, DS, and limits', async () => {
    const { node, alice, bob } = await world();
    try {
      for (const name of ['www', 'dlg', 'txt', 'up', 'big'].map((n) => `${n}.hypermesh.`)) {
        applied(node, alice, dnsNameRegister(name));
      }
      applied(node, alice, dnsRecordsSet(A('www.hypermesh.', '192.0.2.1')));
      refused(node, alice, dnsRecordsSet(CNAME('www.hypermesh.', 'x.example.')), C.CNAME_CONFLICT);
      applied(node, alice, dnsRecordsDelete('www.hypermesh.', 'A'));
      applied(node, alice, dnsRecordsSet(CNAME('www.hypermesh.', 'x.example.')));
      refused(node, alice, dnsRecordsSet(TXT('www.hypermesh.', 'hi')), C.CNAME_CONFLICT);
      refused(node, alice, dnsRecordsDelete('www.hypermesh.', 'TXT'), C.NO_SUCH_RRSET);
      refused(node, bob, dnsRecordsDelete('www.hypermesh.', 'CNAME'), C.NOT_OWNER);

      // A delegation: below it only A/AAAA glue, at it only NS, DS and glue.
      applied(node, alice, dnsRecordsSet(NS('dlg.hypermesh.', 'ns.dlg.hypermesh.')));
      applied(node, alice, dnsNameRegister('ns.dlg.hypermesh.'));
      applied(node, alice, dnsRecordsSet(A('ns.dlg.hypermesh.', '192.0.2.53')));
      refused(node, alice, dnsRecordsSet(TXT('ns.dlg.hypermesh.', 'hidden')), C.OCCLUDED_DATA);
      refused(node, alice, dnsRecordsSet(TXT('dlg.hypermesh.', 'hidden')), C.OCCLUDED_DATA);
      applied(node, alice, dnsRecordsSet(A('dlg.hypermesh.', '192.0.2.54')));
      applied(node, alice, dnsRecordsSet(DS('dlg.hypermesh.')));
      refused(node, alice, dnsRecordsDelete('dlg.hypermesh.', 'NS'), C.DS_NOT_AT_DELEGATION);
      refused(node, alice, dnsRecordsSet(DS('txt.hypermesh.')), C.DS_NOT_AT_DELEGATION);

      // NS over data: at the name, and below it (the `below` counts).
      applied(node, alice, dnsRecordsSet(TXT('txt.hypermesh.', 'hello')));
      refused(node, alice, dnsRecordsSet(NS('txt.hypermesh.', 'ns.example.')), C.OCCLUDED_DATA);
      applied(node, alice, dnsNameRegister('c.b.up.hypermesh.'));
      applied(node, alice, dnsRecordsSet(TXT('c.b.up.hypermesh.', 'deep')));
      refused(node, alice, dnsRecordsSet(NS('up.hypermesh.', 'ns.example.')), C.OCCLUDED_DATA);
      applied(node, alice, dnsRecordsDelete('c.b.up.hypermesh.', 'TXT'));
      applied(node, alice, dnsRecordsSet(A('c.b.up.hypermesh.', '192.0.2.3')));
      applied(node, alice, dnsRecordsSet(NS('up.hypermesh.', 'ns.example.')));
      refused(node, alice, dnsRecordsSet(TXT('c.b.up.hypermesh.', 'deep')), C.OCCLUDED_DATA);
      applied(node, alice, dnsRecordsDelete('up.hypermesh.', 'NS'));
      applied(node, alice, dnsRecordsSet(TXT('c.b.up.hypermesh.', 'deep')));
      // Releasing a name with data below a would-be cut lowers the count again.
      applied(node, alice, dnsNameRelease('c.b.up.hypermesh.'));
      applied(node, alice, dnsRecordsSet(NS('up.hypermesh.', 'ns.example.')));

      // Limits: 32 records and 16 KiB of RDATA per name.
      const twenty = A('big.hypermesh.', ...Array.from({ length: 20 }, (_, i) => `10.0.0.${i}`));
      applied(node, alice, dnsRecordsSet(twenty));
      const aaaa = Array.from({ length: 13 }, (_, i) => ({
        name: 'big.hypermesh.',
        type: 'AAAA',
        ttl: 300,
        data: { address: `2001:db8::${i + 1}` },
      }));
      refused(node, alice, dnsRecordsSet(aaaa), C.RECORDS_LIMIT);
      applied(node, alice, dnsRecordsSet(aaaa.slice(0, 12)));
      applied(node, alice, dnsRecordsDelete('big.hypermesh.', 'A'));
      applied(node, alice, dnsRecordsDelete('big.hypermesh.', 'AAAA'));
      const blob = (type: string): RecordInput[] => [
        { name: 'big.hypermesh.', type, ttl: 60, data: { rdata: 'ab'.repeat(3900) } },
      ];
      for (const type of ['TYPE65280', 'TYPE65281', 'TYPE65282', 'TYPE65283']) {
        applied(node, alice, dnsRecordsSet(blob(type)));
      }
      refused(node, alice, dnsRecordsSet(blob('TYPE65284')), C.RECORDS_LIMIT);
    } finally {
      await node.close();
    }
  });

  it('no delegation at a wildcard: NS and DS at `*.X` are refused (RFC 4592 §4.2)', async () => {
    const { node, admin, alice } = await world();
    try {
      applied(node, alice, dnsNameRegister('a.hypermesh.'));
      applied(node, alice, dnsNameRegister('*.a.hypermesh.'));
      applied(node, admin, dnsNameRegister('*.hypermesh.'));
      const log = refused(
        node,
        alice,
        dnsRecordsSet(NS('*.a.hypermesh.', 'ns.example.')),
        C.INVALID_RECORD,
      );
      assert.match(log, /\*\.a\.hypermesh\. NS: a wildcard cannot be a delegation/);
      refused(node, alice, dnsRecordsSet(DS('*.a.hypermesh.')), C.INVALID_RECORD);
      refused(node, admin, dnsRecordsSet(NS('*.hypermesh.', 'ns.example.')), C.INVALID_RECORD);
      // Other data at the wildcard, and NS at its parent, are still fine.
      applied(node, alice, dnsRecordsSet(A('*.a.hypermesh.', '192.0.2.7')));
      const entry = verifyDnsName('*.a.hypermesh.', node.app.query(dnsNameQuery('*.a.hypermesh.')));
      assert.deepEqual(
        entry?.records.map((rr) => rr.type),
        ['A'],
      );
    } finally {
      await node.close();
    }
  });

  it('OWNER_LIMIT on register and on transfer', async () => {
    const { node, alice, bob } = await world();
    try {
      const names = Array.from({ length: MAX_NAMES_PER_OWNER }, (_, i) => `n${i}.hypermesh.`);
      const result = node.executeAndCommit(
        names.map((name) => dnsTx(alice, dnsNameRegister(name))),
      );
      assert.ok(result.txResults.every((r) => r.code === 0));
      refused(node, alice, dnsNameRegister('one-more.hypermesh.'), C.OWNER_LIMIT);
      applied(node, bob, dnsNameRegister('bobs.hypermesh.'));
      refused(node, bob, dnsNameTransfer('bobs.hypermesh.', alice.publicKey), C.OWNER_LIMIT);
      applied(node, alice, dnsNameRelease('n0.hypermesh.'));
      applied(node, bob, dnsNameTransfer('bobs.hypermesh.', alice.publicKey));
    } finally {
      await node.close();
    }
  });
});

describe('dns module: damaged state', () => {
  it('a stored value that does not decode is a fault, not a refusal', async () => {
    const initialState = [
      { key: dnsZonesStateKey(ZONES_KEY), value: encodeCanonical(['not bytes']) },
    ];
    const node = await openNode({ modules: [createDnsZonesModule()], initialState });
    try {
      node.executeAndCommit([]);
      const sender = makeSender();
      assert.throws(
        () => node.executeAndCommit([dnsTx(sender, dnsNameRegister('www.hypermesh.'))]),
        (error: unknown) =>
          error instanceof DnsZonesStateError &&
          error.code === DnsZonesStateErrorCode.CORRUPT_VALUE,
      );
      // The proposer leaves such a transaction out rather than fail its block.
      const { transactions } = node.app.prepareProposal(
        blockAt(node.nextHeight(), []),
        [dnsTx(sender, dnsNameRegister('www.hypermesh.'), 0)],
        Number.MAX_SAFE_INTEGER,
      );
      assert.deepEqual(transactions, []);
    } finally {
      await node.close();
    }
  });
});
