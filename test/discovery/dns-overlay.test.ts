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
  type InstanceRegistration,
  type PortProtocol,
} from '../../src/discovery/index.js';
import { Rcode, answer, decodeMessage, encodeMessage } from '../../src/trustchain/dns/index.js';
import {
  ConsensusZones,
  createDnsZonesModule,
  dnsNameRegister,
  dnsNameRelease,
  dnsRecordsSet,
  dnsZonesInitialState,
  dnsZonesStateReader,
} from '../../src/trustchain/dns-zones/index.js';
import { genesisApplication } from '../../src/node/validator-node.js';
import { makeSender, openNode, type TestNode } from '../consensus/application/fixture.js';
import { dnsTx, zoneParams } from '../trustchain/dns-zones/dns-zones-fixture.js';
import { discoveryTx, registerTx } from './discovery-fixture.js';

/**
 * The catalog in DNS: the `app.discovery` genesis section, the records a catalog publishes, and
 * the `ConsensusZones` overlay that compiles them into the cluster zone next to the `dns`
 * module's own names (which win where the two would meet, except over a reserved service).
 */

const A = 1;
const TXT = 16;
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

interface CatalogZone {
  readonly node: TestNode;
  readonly zones: ConsensusZones;
  /** Executes and commits a block whose transactions must all apply; returns its height. */
  follow(transactions: readonly Uint8Array[]): number;
  /** The catalog's records now, and those of a catalog loaded afresh from the state. */
  published(): ReturnType<typeof catalogRecords>;
  reloaded(): ReturnType<typeof catalogRecords>;
}

/**
 * A node running the `dns` and `discovery` modules with the open zone `apex`, and the zones
 * compiled from its committed state with the catalog as overlay, followed block by block as
 * discovery-node.ts and validator-node.ts do. `nodeKeys` reserve the `hypermesh-` services.
 */
async function openCatalogZone(
  apex: string,
  nodeKeys?: readonly Uint8Array[],
): Promise<CatalogZone> {
  const node = await openNode({
    modules: [
      createDnsZonesModule(),
      createDiscoveryModule(
        nodeKeys === undefined ? {} : { nodeKeys: { genesisValidators: nodeKeys, caesar: false } },
      ),
    ],
    initialState: dnsZonesInitialState({ zones: [zoneParams(apex, [makeSender().publicKey])] }),
  });
  const reader = { get: (key: Uint8Array) => node.store.state.get(discoveryStateKey(key)) };
  const view = CatalogView.load(reader, null);
  const zones = ConsensusZones.load(dnsZonesStateReader(node.store.state), {
    height: null,
    overlay: (at) => (at === apex ? catalogRecords(view, apex) : []),
  });
  return {
    node,
    zones,
    follow: (transactions) => {
      const height = node.nextHeight();
      const result = node.executeAndCommit(transactions);
      assert.ok(
        result.txResults.every((r) => r.code === 0),
        JSON.stringify(result.txResults),
      );
      if (view.applyBlock(height, result.changes).services.length > 0) zones.touch(apex);
      zones.applyBlock(height, result.changes);
      return height;
    },
    published: () => catalogRecords(view, apex),
    reloaded: () => catalogRecords(CatalogView.load(reader, node.nextHeight() - 1), apex),
  };
}

/** The transactions that register `name` in the dns module and set each RRset of `sets`. */
function dnsName(
  sender: ReturnType<typeof makeSender>,
  name: string,
  ...sets: Array<Parameters<typeof dnsRecordsSet>[0]>
): Uint8Array[] {
  return [
    dnsTx(sender, dnsNameRegister(name)),
    ...sets.map((records) => dnsTx(sender, dnsRecordsSet(records))),
  ];
}

/** The TXT strings answered for `name`, as text. */
function txtAt(zones: ConsensusZones, name: string): string[][] {
  return ask(zones, name, TXT).answers.flatMap((rr) =>
    rr.type === 'TXT' ? [rr.data.strings.map((bytes) => Buffer.from(bytes).toString())] : [],
  );
}

/** A registration of `service`/`instance` with one port, checked there, at `address`. */
function instanceAt(
  service: string,
  instance: string,
  protocol: PortProtocol,
  port: number,
  address = '192.0.2.66',
): Partial<InstanceRegistration> {
  const timing = { interval: 5_000, timeout: 1_000, rise: 2, fall: 3 };
  return {
    service,
    instance,
    addresses: [address],
    ports: [{ protocol, port }],
    check:
      protocol === 'stoq'
        ? { kind: 'stoq-ping', port, ...timing }
        : { kind: 'tcp', port, ...timing },
    ttl: 20,
  };
}

/** The SRV targets answered for `name`. */
function srvTargets(zones: ConsensusZones, name: string): string[] {
  return ask(zones, name, SRV).answers.flatMap((rr) => (rr.type === 'SRV' ? [rr.data.target] : []));
}

/** The addresses answered for `name` (A), or its rcode if it has none. */
function addressesAt(zones: ConsensusZones, name: string): string[] | number {
  const response = ask(zones, name, A);
  const found = response.answers.flatMap((rr) => (rr.type === 'A' ? [rr.data.address] : []));
  return found.length > 0 ? found : response.rcode;
}

describe('the catalog in the cluster zone', () => {
  it('publishes healthy instances as SRV and A/AAAA, follows changes, and gives way to dns names', async () => {
    const alice = makeSender();
    const carol = makeSender();
    const mallory = makeSender();
    const { node, zones, follow, published, reloaded } = await openCatalogZone('hypermesh.');
    try {
      follow([]);
      assert.equal(ask(zones, '_api._stoq.hypermesh.', SRV).rcode, Rcode.NXDOMAIN);

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
        registerTx(carol, instanceAt('web', 'w1', 'tcp', 80, '192.0.2.30')),
      ]);
      assert.deepEqual(
        published().map(({ subtrees, reserved }) => ({ subtrees, reserved })),
        [
          {
            subtrees: ['_api.hypermesh.', '_api._https.hypermesh.', '_api._stoq.hypermesh.'],
            reserved: false,
          },
          { subtrees: ['_web.hypermesh.', '_web._tcp.hypermesh.'], reserved: false },
        ],
      );
      const srv = ask(zones, '_api._stoq.hypermesh.', SRV);
      assert.equal(srv.rcode, Rcode.NOERROR);
      assert.deepEqual(
        srv.answers.map((rr) => rr.type === 'SRV' && [rr.ttl, rr.data]),
        [[DISCOVERY_DNS_TTL, { priority: 0, weight: 0, port: 9292, target: 'a1._api.hypermesh.' }]],
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
      assert.deepEqual(srvTargets(zones, '_web._tcp.hypermesh.'), ['w1._web.hypermesh.']);

      // Warning: still served, at a lower priority.
      follow([discoveryTx(alice, discoveryRenew('api', 'a1', 'warning'))]);
      const degraded = ask(zones, '_api._stoq.hypermesh.', SRV).answers[0];
      assert.equal(degraded?.type === 'SRV' && degraded.data.priority, 1);

      // Mallory registers a name where the catalog publishes `api` (an open zone): the dns
      // module's name wins, and `api` is left out of DNS whole; `web` is not touched.
      follow(
        dnsName(mallory, '_api._stoq.hypermesh.', [
          {
            name: '_api._stoq.hypermesh.',
            type: 'CNAME',
            ttl: 60,
            data: { target: 'evil.example.' },
          },
        ]),
      );
      assert.deepEqual([...zones.failures.keys()], []);
      assert.deepEqual([...zones.overlayFailures.keys()], []);
      const squatted = ask(zones, '_api._stoq.hypermesh.', SRV);
      assert.deepEqual(
        squatted.answers.map((rr) => rr.type === 'CNAME' && rr.data.target),
        ['evil.example.'],
        "the dns module's name is served",
      );
      assert.equal(ask(zones, '_api._https.hypermesh.', SRV).rcode, Rcode.NXDOMAIN);
      assert.equal(addressesAt(zones, 'a1._api.hypermesh.'), Rcode.NXDOMAIN);
      assert.deepEqual(srvTargets(zones, '_web._tcp.hypermesh.'), ['w1._web.hypermesh.']);
      assert.deepEqual(addressesAt(zones, 'w1._web.hypermesh.'), ['192.0.2.30']);
      assert.deepEqual(
        published().map((service) => service.subtrees[0]),
        ['_api.hypermesh.', '_web.hypermesh.'],
        'the catalog still holds both',
      );

      // Released, the name no longer keeps `api` out.
      follow([dnsTx(mallory, dnsNameRelease('_api._stoq.hypermesh.'))]);
      assert.deepEqual(srvTargets(zones, '_api._stoq.hypermesh.'), ['a1._api.hypermesh.']);
      assert.deepEqual(addressesAt(zones, 'a1._api.hypermesh.'), ['192.0.2.10']);

      // Critical: gone.
      follow([discoveryTx(alice, discoveryRenew('api', 'a1', 'critical'))]);
      assert.equal(ask(zones, '_api._stoq.hypermesh.', SRV).rcode, Rcode.NXDOMAIN);

      // A node that loads afresh publishes the same.
      assert.deepEqual(
        published().map((service) => service.subtrees[0]),
        ['_web.hypermesh.'],
      );
      assert.deepEqual(reloaded(), published());
    } finally {
      await node.close();
    }
  });

  it('leaves out instances whose names DNS cannot carry; the zone keeps following the state', async () => {
    // 3 labels of 62 bytes: 190 bytes in wire form, so a 63-byte instance label under `_api`
    // makes a 259-byte name.
    const apex = `${['a', 'b', 'c'].map((c) => c.repeat(62)).join('.')}.`;
    const alice = makeSender();
    const mallory = makeSender();
    const bob = makeSender();
    const { node, zones, follow, published, reloaded } = await openCatalogZone(apex);
    try {
      const wide = `s${'x'.repeat(62)}`;
      const tall = `i${'y'.repeat(62)}`;
      follow([
        registerTx(alice, instanceAt('api', 'a1', 'tcp', 80)),
        // `_<63 characters>` is a 64-byte label.
        registerTx(mallory, { service: wide, instance: 'm1' }),
      ]);
      follow([registerTx(mallory, instanceAt('api', tall, 'tcp', 81))]);
      assert.deepEqual([...zones.failures.keys()], [], 'the zone compiles');
      assert.deepEqual([...zones.overlayFailures.keys()], [], 'with the catalog');
      assert.deepEqual(srvTargets(zones, `_api._tcp.${apex}`), [`a1._api.${apex}`]);
      assert.deepEqual(
        published().map((service) => service.subtrees[0]),
        [`_api.${apex}`],
        'the 63-character service has no publishable instance',
      );
      assert.deepEqual(reloaded(), published());

      follow(
        dnsName(bob, `www.${apex}`, [
          { name: `www.${apex}`, type: 'A', ttl: 60, data: { address: '192.0.2.80' } },
        ]),
      );
      assert.deepEqual(
        ask(zones, `www.${apex}`, A).answers.map((rr) => rr.type === 'A' && rr.data.address),
        ['192.0.2.80'],
        "a later change of the dns module's names is served",
      );
      assert.deepEqual(srvTargets(zones, `_api._tcp.${apex}`), [`a1._api.${apex}`]);
    } finally {
      await node.close();
    }
  });

  it('keeps a dns name registered before a service: nobody takes a name over', async () => {
    const bob = makeSender();
    const mallory = makeSender();
    const { node, zones, follow, published } = await openCatalogZone('hypermesh.');
    try {
      follow([
        ...dnsName(bob, '_smtp._tls.hypermesh.', [
          {
            name: '_smtp._tls.hypermesh.',
            type: 'TXT',
            ttl: 300,
            data: { strings: ['v=TLSRPTv1'] },
          },
        ]),
        ...dnsName(bob, 'sel1._domainkey.hypermesh.', [
          {
            name: 'sel1._domainkey.hypermesh.',
            type: 'TXT',
            ttl: 300,
            data: { strings: ['v=DKIM1; p=bob'] },
          },
        ]),
      ]);
      follow([
        registerTx(mallory, instanceAt('smtp', 'm1', 'tls', 465)),
        registerTx(mallory, instanceAt('domainkey', 'sel1', 'tcp', 25)),
      ]);
      assert.equal(published().length, 2, 'the catalog publishes both services');
      assert.deepEqual([...zones.failures.keys()], []);
      assert.deepEqual(txtAt(zones, '_smtp._tls.hypermesh.'), [['v=TLSRPTv1']]);
      assert.deepEqual(txtAt(zones, 'sel1._domainkey.hypermesh.'), [['v=DKIM1; p=bob']]);
      assert.deepEqual(srvTargets(zones, '_smtp._tls.hypermesh.'), []);
      assert.deepEqual(ask(zones, 'm1._smtp.hypermesh.', A).answers, []);
      assert.deepEqual(ask(zones, 'sel1._domainkey.hypermesh.', A).answers, []);
      assert.deepEqual(
        srvTargets(zones, '_domainkey._tcp.hypermesh.'),
        [],
        'a service that loses one name publishes none',
      );
    } finally {
      await node.close();
    }
  });

  it('keeps a dns name against a service that publishes a new protocol later', async () => {
    const alice = makeSender();
    const bob = makeSender();
    const mallory = makeSender();
    const { node, zones, follow } = await openCatalogZone('hypermesh.');
    try {
      follow([registerTx(alice, instanceAt('smtp', 'a1', 'tcp', 25, '192.0.2.10'))]);
      follow(
        dnsName(bob, '_smtp._tls.hypermesh.', [
          {
            name: '_smtp._tls.hypermesh.',
            type: 'TXT',
            ttl: 300,
            data: { strings: ['v=TLSRPTv1'] },
          },
        ]),
      );
      assert.deepEqual(txtAt(zones, '_smtp._tls.hypermesh.'), [['v=TLSRPTv1']]);
      assert.deepEqual(srvTargets(zones, '_smtp._tcp.hypermesh.'), ['a1._smtp.hypermesh.']);

      // Alice's instance is older than Bob's name, Mallory's `tls` port is not.
      follow([registerTx(mallory, instanceAt('smtp', 'm1', 'tls', 465))]);
      assert.deepEqual([...zones.failures.keys()], []);
      assert.deepEqual(txtAt(zones, '_smtp._tls.hypermesh.'), [['v=TLSRPTv1']]);
      assert.deepEqual(srvTargets(zones, '_smtp._tls.hypermesh.'), []);
      assert.deepEqual(srvTargets(zones, '_smtp._tcp.hypermesh.'), [], 'smtp is left out whole');
      assert.equal(addressesAt(zones, 'a1._smtp.hypermesh.'), Rcode.NXDOMAIN);
    } finally {
      await node.close();
    }
  });

  it('keeps a dns name against a dormant instance that wakes up', async () => {
    const bob = makeSender();
    const mallory = makeSender();
    const { node, zones, follow, published } = await openCatalogZone('hypermesh.');
    try {
      follow([registerTx(mallory, instanceAt('smtp', 'm1', 'tls', 465))]);
      follow([discoveryTx(mallory, discoveryRenew('smtp', 'm1', 'critical'))]);
      assert.deepEqual(published(), [], 'critical: not published');
      follow(
        dnsName(bob, '_smtp._tls.hypermesh.', [
          {
            name: '_smtp._tls.hypermesh.',
            type: 'TXT',
            ttl: 300,
            data: { strings: ['v=TLSRPTv1'] },
          },
        ]),
      );
      // The renewal keeps the instance's first registration height.
      follow([discoveryTx(mallory, discoveryRenew('smtp', 'm1', 'passing'))]);
      assert.equal(published().length, 1, 'the catalog publishes it again');
      assert.deepEqual(txtAt(zones, '_smtp._tls.hypermesh.'), [['v=TLSRPTv1']]);
      assert.deepEqual(srvTargets(zones, '_smtp._tls.hypermesh.'), []);
      assert.equal(addressesAt(zones, 'm1._smtp.hypermesh.'), Rcode.NXDOMAIN);
    } finally {
      await node.close();
    }
  });

  it('keeps a delegation above a service and leaves out that service only', async () => {
    const alice = makeSender();
    const bob = makeSender();
    const { node, zones, follow } = await openCatalogZone('hypermesh.');
    try {
      follow(
        dnsName(bob, '_tcp.hypermesh.', [
          { name: '_tcp.hypermesh.', type: 'NS', ttl: 60, data: { host: 'ns.bob.example.' } },
        ]),
      );
      follow([
        registerTx(alice, instanceAt('web', 'w1', 'tcp', 80, '192.0.2.10')),
        registerTx(alice, instanceAt('api', 'a1', 'stoq', 9292, '192.0.2.20')),
      ]);
      assert.deepEqual([...zones.failures.keys()], []);
      assert.deepEqual([...zones.overlayFailures.keys()], []);
      const referral = ask(zones, '_web._tcp.hypermesh.', SRV);
      assert.equal(referral.authoritative, false, "Bob's delegation is served");
      assert.deepEqual(
        referral.authority.map((rr) => rr.type === 'NS' && rr.data.host),
        ['ns.bob.example.'],
      );
      assert.equal(addressesAt(zones, 'w1._web.hypermesh.'), Rcode.NXDOMAIN, 'web is left out');
      assert.deepEqual(srvTargets(zones, '_api._stoq.hypermesh.'), ['a1._api.hypermesh.']);
      assert.deepEqual(addressesAt(zones, 'a1._api.hypermesh.'), ['192.0.2.20']);
    } finally {
      await node.close();
    }
  });

  it('lets a reserved service win over an earlier dns name', async () => {
    const validator = makeSender();
    const mallory = makeSender();
    const eve = makeSender();
    const { node, zones, follow } = await openCatalogZone('hypermesh.', [validator.publicKey]);
    try {
      follow([
        ...dnsName(mallory, '_hypermesh-node._stoq.hypermesh.', [
          {
            name: '_hypermesh-node._stoq.hypermesh.',
            type: 'SRV',
            ttl: 60,
            data: { priority: 0, weight: 0, port: 9292, target: 'evil.example.' },
          },
        ]),
        ...dnsName(mallory, 'v1._hypermesh-node.hypermesh.', [
          {
            name: 'v1._hypermesh-node.hypermesh.',
            type: 'A',
            ttl: 60,
            data: { address: '192.0.2.66' },
          },
        ]),
        ...dnsName(eve, '_tcp.hypermesh.', [
          { name: '_tcp.hypermesh.', type: 'NS', ttl: 60, data: { host: 'ns.evil.example.' } },
        ]),
      ]);
      assert.deepEqual(srvTargets(zones, '_hypermesh-node._stoq.hypermesh.'), ['evil.example.']);
      follow([
        registerTx(validator, {
          ...instanceAt('hypermesh-node', 'v1', 'stoq', 9292, '192.0.2.1'),
          ports: [
            { protocol: 'stoq', port: 9292 },
            { protocol: 'tcp', port: 9293 },
          ],
        }),
      ]);
      assert.deepEqual([...zones.failures.keys()], []);
      assert.deepEqual(srvTargets(zones, '_hypermesh-node._stoq.hypermesh.'), [
        'v1._hypermesh-node.hypermesh.',
      ]);
      assert.deepEqual(
        ask(zones, 'v1._hypermesh-node.hypermesh.', A).answers.map(
          (rr) => rr.type === 'A' && rr.data.address,
        ),
        ['192.0.2.1'],
      );
      const tcp = ask(zones, '_hypermesh-node._tcp.hypermesh.', SRV);
      assert.equal(tcp.authoritative, true, 'not referred to the delegation above');
      assert.deepEqual(
        tcp.answers.map((rr) => rr.type === 'SRV' && rr.data.port),
        [9293],
      );
      const cut = ask(zones, '_tcp.hypermesh.', 2);
      assert.equal(cut.authoritative, true, 'the NS above it is stripped');
      assert.deepEqual(cut.answers, []);
    } finally {
      await node.close();
    }
  });
});
