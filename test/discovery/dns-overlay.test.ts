import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SchemaError } from '../../src/codec/schema.js';
import {
  CatalogView,
  DISCOVERY_DNS_TTL,
  catalogRecords,
  createDiscoveryModule,
  discoveryGenesisFromApp,
  discoveryRenew,
  discoveryStateKey,
} from '../../src/discovery/index.js';
import {
  Rcode,
  answer,
  decodeMessage,
  encodeMessage,
  type ResourceRecord,
} from '../../src/trustchain/dns/index.js';
import {
  ConsensusZones,
  createDnsZonesModule,
  dnsNameRegister,
  dnsRecordsSet,
  dnsZonesInitialState,
  dnsZonesStateReader,
} from '../../src/trustchain/dns-zones/index.js';
import { genesisApplication } from '../../src/node/validator-node.js';
import { makeSender, openNode } from '../consensus/application/fixture.js';
import { clusterGenesis, dnsTx } from '../trustchain/dns-zones/dns-zones-fixture.js';
import { discoveryTx, registerTx } from './discovery-fixture.js';

/**
 * The catalog in DNS: the `app.discovery` genesis section, the records a catalog publishes, and
 * the `ConsensusZones` overlay that compiles them into the cluster zone next to the `dns`
 * module's own names (which give way where the two would meet).
 */

const SRV = 33;

function ask(zones: ConsensusZones, name: string, type: number) {
  const query = encodeMessage({ id: 9, questions: [{ name, type, class: 1 }] });
  const response = answer(query, zones, { transport: 'udp' });
  assert.ok(response !== null);
  return decodeMessage(response);
}

describe('app.discovery genesis section', () => {
  it('reads the zone in canonical form, null, or no section; refuses anything else', () => {
    assert.equal(discoveryGenesisFromApp(undefined), undefined);
    assert.equal(discoveryGenesisFromApp({ caesar: {} }), undefined);
    assert.deepEqual(discoveryGenesisFromApp({ discovery: { dnsZone: 'HyperMesh' } }), {
      dnsZone: 'hypermesh.',
    });
    assert.deepEqual(discoveryGenesisFromApp({ discovery: { dnsZone: null } }), { dnsZone: null });
    for (const bad of [{}, { dnsZone: 1 }, { dnsZone: 'a..b' }, { dnsZone: null, extra: true }]) {
      assert.throws(
        () =>
          discoveryGenesisFromApp({ discovery: bad } as Parameters<
            typeof discoveryGenesisFromApp
          >[0]),
        (error: unknown) =>
          error instanceof SchemaError && error.message.startsWith('app.discovery'),
        JSON.stringify(bad),
      );
    }
  });

  it('installs the module on the node only when the section is there', () => {
    const base = { app: undefined, validators: [] } as unknown as Parameters<
      typeof genesisApplication
    >[0];
    const names = (app: unknown) =>
      genesisApplication({ ...base, app } as Parameters<typeof genesisApplication>[0]).modules.map(
        (module) => module.name,
      );
    assert.deepEqual(names(undefined), ['kv']);
    assert.deepEqual(names({ discovery: { dnsZone: null } }), ['kv', 'discovery']);
  });
});

describe('the catalog in the cluster zone', () => {
  it('publishes healthy instances as SRV and A/AAAA, follows changes, and wins conflicts', async () => {
    const admin = makeSender();
    const alice = makeSender();
    const mallory = makeSender();
    const node = await openNode({
      modules: [createDnsZonesModule(), createDiscoveryModule()],
      initialState: dnsZonesInitialState(clusterGenesis([admin.publicKey])),
    });
    try {
      const reader = { get: (key: Uint8Array) => node.store.state.get(discoveryStateKey(key)) };
      let view = CatalogView.load(reader, null);
      const overlay = (apex: string): readonly ResourceRecord[] =>
        apex === 'hypermesh.' ? catalogRecords(view, apex) : [];
      const zones = ConsensusZones.load(dnsZonesStateReader(node.store.state), {
        height: null,
        overlay,
      });
      const follow = (transactions: readonly Uint8Array[]) => {
        const height = node.nextHeight();
        const result = node.executeAndCommit(transactions);
        assert.ok(
          result.txResults.every((r) => r.code === 0),
          JSON.stringify(result.txResults),
        );
        if (view.applyBlock(height, result.changes).services.length > 0) {
          zones.touch('hypermesh.');
        }
        zones.applyBlock(height, result.changes);
        return height;
      };
      follow([]);
      assert.equal(ask(zones, '_api._stoq.hypermesh.', SRV).rcode, Rcode.NXDOMAIN);

      // Mallory squats the name the catalog will use, in the dns module (an open zone).
      follow([
        dnsTx(mallory, dnsNameRegister('_api._stoq.hypermesh.')),
        dnsTx(
          mallory,
          dnsRecordsSet([
            {
              name: '_api._stoq.hypermesh.',
              type: 'CNAME',
              ttl: 60,
              data: { target: 'evil.example.' },
            },
          ]),
        ),
      ]);
      assert.equal(ask(zones, '_api._stoq.hypermesh.', SRV).answers[0]?.type, 'CNAME');

      follow([
        registerTx(alice, {
          service: 'api',
          instance: 'a1',
          addresses: ['192.0.2.10', '2001:db8::10'],
          ports: [
            { protocol: 'stoq', port: 9292 },
            { protocol: 'https', port: 9443 },
          ],
          ttl: 20,
        }),
      ]);
      const srv = ask(zones, '_api._stoq.hypermesh.', SRV);
      assert.equal(srv.rcode, Rcode.NOERROR);
      assert.deepEqual(
        srv.answers.map((rr) => rr.type === 'SRV' && [rr.ttl, rr.data]),
        [[DISCOVERY_DNS_TTL, { priority: 0, weight: 0, port: 9292, target: 'a1._api.hypermesh.' }]],
        'the catalog replaces the squatted CNAME',
      );
      assert.deepEqual(
        srv.additional.map((rr) =>
          rr.type === 'A' || rr.type === 'AAAA' ? rr.data.address : rr.type,
        ),
        ['192.0.2.10', '2001:db8::10'],
        'the target addresses come in the additional section',
      );
      const https = ask(zones, '_api._https.hypermesh.', SRV).answers[0];
      assert.equal(https?.type === 'SRV' && https.data.port, 9443);

      // Mallory registers names above the catalog's and delegates them to her own server: an NS
      // at `_api.hypermesh.` would make the instance `a1._api.hypermesh.` glue answered by her
      // server, and one at `_https.hypermesh.` would occlude the SRV and freeze the zone.
      follow([
        dnsTx(mallory, dnsNameRegister('_api.hypermesh.')),
        dnsTx(mallory, dnsNameRegister('_https.hypermesh.')),
        dnsTx(
          mallory,
          dnsRecordsSet([
            { name: '_api.hypermesh.', type: 'NS', ttl: 60, data: { host: 'ns.evil.example.' } },
          ]),
        ),
        dnsTx(
          mallory,
          dnsRecordsSet([
            { name: '_https.hypermesh.', type: 'NS', ttl: 60, data: { host: 'ns.evil.example.' } },
          ]),
        ),
      ]);
      assert.deepEqual([...zones.failures.keys()], [], 'the zone still compiles');
      const instance = ask(zones, 'a1._api.hypermesh.', 1);
      assert.equal(instance.rcode, Rcode.NOERROR);
      assert.equal(instance.authoritative, true, 'answered with authority, not referred');
      assert.deepEqual(
        instance.answers.map((rr) => rr.type === 'A' && rr.data.address),
        ['192.0.2.10'],
      );
      const httpsAgain = ask(zones, '_api._https.hypermesh.', SRV).answers[0];
      assert.equal(httpsAgain?.type === 'SRV' && httpsAgain.data.port, 9443);
      // The name stays hers; only the cut above the catalog's names is left out.
      const cut = ask(zones, '_api.hypermesh.', 2);
      assert.equal(cut.authoritative, true);
      assert.deepEqual(cut.answers, []);

      // Warning: still served, at a lower priority. Critical: gone.
      follow([discoveryTx(alice, discoveryRenew('api', 'a1', 'warning'))]);
      const degraded = ask(zones, '_api._stoq.hypermesh.', SRV).answers[0];
      assert.equal(degraded?.type === 'SRV' && degraded.data.priority, 1);
      follow([discoveryTx(alice, discoveryRenew('api', 'a1', 'critical'))]);
      const gone = ask(zones, '_api._stoq.hypermesh.', SRV);
      assert.equal(gone.answers[0]?.type, 'CNAME', "the dns module's name is back");
      // With no instance left under it, Mallory's delegation of her name applies again.
      const referred = ask(zones, 'a1._api.hypermesh.', 1);
      assert.deepEqual(referred.answers, []);
      assert.equal(referred.authoritative, false);
      assert.equal(referred.authority[0]?.type, 'NS');

      // A node that loads afresh publishes the same.
      view = CatalogView.load(reader, node.nextHeight() - 1);
      assert.deepEqual(catalogRecords(view, 'hypermesh.'), []);
    } finally {
      await node.close();
    }
  });
});
