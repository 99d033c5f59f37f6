import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Rcode,
  answer,
  decodeMessage,
  encodeMessage,
  nameToWire,
} from '../../../src/trustchain/dns/index.js';
import type { RecordInput } from '../../../src/trustchain/dns/index.js';
import {
  ConsensusZones,
  DnsZonesErrorCode,
  dnsNameQuery,
  dnsNameRegister,
  dnsNameRelease,
  dnsNameTransfer,
  dnsRecordsDelete,
  dnsRecordsSet,
  dnsZonesStateKey,
  dnsZonesStateReader,
  verifyDnsName,
} from '../../../src/trustchain/dns-zones/index.js';
import { namesBelowKey, ownedBelowKey } from '../../../src/trustchain/dns-zones/state.js';
import { makeSender } from '../../consensus/application/fixture.js';
import type { Sender, TestNode } from '../../consensus/application/fixture.js';
import { applied, clusterGenesis, openDnsNode, refused } from './dns-zones-fixture.js';

/**
 * Issue 5: a name registered above another key's name must not take it over. Before the rule,
 * anyone could register the free parent `b.hypermesh.` of alice's `a.b.hypermesh.` and set NS
 * there, and lookups for alice's name went to the registrant's name servers.
 */

const C = DnsZonesErrorCode;

const A = (name: string, address: string): RecordInput[] => [
  { name, type: 'A', ttl: 300, data: { address } },
];
const TXT = (name: string, text: string): RecordInput[] => [
  { name, type: 'TXT', ttl: 300, data: { strings: [text] } },
];
const NS = (name: string, host: string): RecordInput[] => [
  { name, type: 'NS', ttl: 300, data: { host } },
];

interface World {
  readonly node: TestNode;
  readonly admin: Sender;
  readonly alice: Sender;
  readonly bob: Sender;
}

async function world(): Promise<World> {
  const admin = makeSender();
  const node = await openDnsNode(clusterGenesis([admin.publicKey]));
  node.executeAndCommit([]); // block 1 writes the genesis zone
  return { node, admin, alice: makeSender(), bob: makeSender() };
}

/** What the DNS servers answer for `name` from the committed state (a fresh bridge). */
function served(node: TestNode, name: string, type: number) {
  const zones = ConsensusZones.load(dnsZonesStateReader(node.store.state), {
    height: node.nextHeight() - 1,
  });
  const query = encodeMessage({ id: 1, questions: [{ name, type, class: 1 }] });
  const response = answer(query, zones, { transport: 'udp' });
  assert.ok(response !== null);
  return decodeMessage(response);
}

/** `name` answered authoritatively with exactly `values` (A addresses or TXT strings). */
function assertServed(node: TestNode, name: string, type: number, values: string[]): void {
  const response = served(node, name, type);
  assert.equal(response.rcode, Rcode.NOERROR);
  assert.ok(response.authoritative, `${name} is answered, not referred`);
  assert.deepEqual(
    response.answers.map((rr) =>
      rr.type === 'A'
        ? rr.data.address
        : rr.type === 'TXT'
          ? Buffer.concat(rr.data.strings).toString()
          : rr.type,
    ),
    values,
  );
}

const stored = (node: TestNode, key: Uint8Array) =>
  node.store.state.get(dnsZonesStateKey(key)) !== null;
const wire = (name: string) => new Uint8Array(nameToWire(name));

describe('dns module: a name above another key name cannot take it over (issue 5)', () => {
  it('refuses the register of the hijack; the victim keeps its name and its records', async () => {
    const { node, admin, alice, bob } = await world();
    try {
      applied(node, alice, dnsNameRegister('a.b.hypermesh.'));
      applied(node, alice, dnsRecordsSet(A('a.b.hypermesh.', '192.0.2.7')));

      const log = refused(node, bob, dnsNameRegister('b.hypermesh.'), C.DESCENDANT_OWNED);
      assert.match(log, /b\.hypermesh\.: 1 registered name\(s\) below it belong to other keys/);
      // Empty non-terminals in between count too.
      applied(node, alice, dnsNameRegister('d.e.f.hypermesh.'));
      refused(node, bob, dnsNameRegister('e.f.hypermesh.'), C.DESCENDANT_OWNED);
      refused(node, bob, dnsNameRegister('f.hypermesh.'), C.DESCENDANT_OWNED);

      // The victim still controls its name: records are served, TXT can be added and removed.
      applied(node, alice, dnsRecordsSet(TXT('a.b.hypermesh.', 'mine')));
      assertServed(node, 'a.b.hypermesh.', 1, ['192.0.2.7']);
      assertServed(node, 'a.b.hypermesh.', 16, ['mine']);
      applied(node, alice, dnsRecordsDelete('a.b.hypermesh.', 'TXT'));

      // A zone admin may register above it (the admins set the apex's records already) ...
      applied(node, admin, dnsNameRegister('b.hypermesh.'));
      // ... but nobody delegates over another key's name, neither the admin nor a recipient.
      const ns = NS('b.hypermesh.', 'ns.attacker.example.');
      const nsLog = refused(node, admin, dnsRecordsSet(ns), C.DESCENDANT_OWNED);
      assert.match(
        nsLog,
        /b\.hypermesh\. NS: 1 registered name\(s\) below it belong to other keys/,
      );
      applied(node, admin, dnsNameTransfer('b.hypermesh.', bob.publicKey));
      refused(node, bob, dnsRecordsSet(ns), C.DESCENDANT_OWNED);
      assertServed(node, 'a.b.hypermesh.', 1, ['192.0.2.7']);
      applied(node, alice, dnsRecordsSet(TXT('a.b.hypermesh.', 'still mine')));
      applied(node, alice, dnsRecordsDelete('a.b.hypermesh.', 'TXT'));

      // Handing the name to the parent's owner makes the delegation that owner's to make.
      applied(node, alice, dnsNameTransfer('a.b.hypermesh.', bob.publicKey));
      applied(node, bob, dnsRecordsSet(ns));
      const referral = served(node, 'a.b.hypermesh.', 1);
      assert.equal(referral.authoritative, false);
      assert.deepEqual(
        referral.authority.map((rr) => rr.type),
        ['NS'],
      );
      assert.deepEqual(
        verifyDnsName('a.b.hypermesh.', node.app.query(dnsNameQuery('a.b.hypermesh.')))!.owner,
        bob.publicKey,
      );
    } finally {
      await node.close();
    }
  });

  it('release and transfer keep the counts: the parent frees up, a delegation follows owners', async () => {
    const { node, alice, bob } = await world();
    try {
      applied(node, alice, dnsNameRegister('p.q.hypermesh.'));
      assert.ok(stored(node, namesBelowKey(wire('q.hypermesh.'))));
      assert.ok(stored(node, ownedBelowKey(wire('q.hypermesh.'), alice.publicKey)));
      refused(node, bob, dnsNameRegister('q.hypermesh.'), C.DESCENDANT_OWNED);
      // Once the child is released, the parent is free again, and no count is left behind.
      applied(node, alice, dnsNameRelease('p.q.hypermesh.'));
      assert.ok(!stored(node, namesBelowKey(wire('q.hypermesh.'))));
      assert.ok(!stored(node, ownedBelowKey(wire('q.hypermesh.'), alice.publicKey)));
      applied(node, bob, dnsNameRegister('q.hypermesh.'));

      // Names the registrant owns itself do not count, for register and for NS.
      applied(node, bob, dnsNameRegister('y.x.hypermesh.'));
      applied(node, bob, dnsNameRegister('x.hypermesh.'));
      const ns = NS('x.hypermesh.', 'ns.example.');
      applied(node, bob, dnsRecordsSet(ns));
      // The owner of a delegation may hand on a name below it; it then cannot set NS again
      // until the name is back (or released): checked at NS, not at the transfer.
      applied(node, bob, dnsRecordsDelete('x.hypermesh.', 'NS'));
      applied(node, bob, dnsNameTransfer('y.x.hypermesh.', alice.publicKey));
      assert.ok(stored(node, ownedBelowKey(wire('x.hypermesh.'), alice.publicKey)));
      assert.ok(!stored(node, ownedBelowKey(wire('x.hypermesh.'), bob.publicKey)));
      refused(node, bob, dnsRecordsSet(ns), C.DESCENDANT_OWNED);
      applied(node, alice, dnsNameTransfer('y.x.hypermesh.', bob.publicKey));
      applied(node, bob, dnsRecordsSet(ns));

      // The released parent goes to whoever owns every name below it.
      applied(node, bob, dnsRecordsDelete('x.hypermesh.', 'NS'));
      applied(node, bob, dnsNameTransfer('y.x.hypermesh.', alice.publicKey));
      applied(node, bob, dnsNameRelease('x.hypermesh.'));
      refused(node, bob, dnsNameRegister('x.hypermesh.'), C.DESCENDANT_OWNED);
      applied(node, alice, dnsNameRegister('x.hypermesh.'));
    } finally {
      await node.close();
    }
  });
});
