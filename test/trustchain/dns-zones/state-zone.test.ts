import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ModuleStateReader } from '../../../src/consensus/application/module.js';
import {
  MemoryZone,
  emptyLookup,
  keyToWire,
  lookupName,
  nameKey,
} from '../../../src/trustchain/dns/index.js';
import type { RecordInput } from '../../../src/trustchain/dns/index.js';
import {
  ConsensusZones,
  StateZoneTree,
  dnsNameRegister,
  dnsNameRelease,
  dnsRecordsDelete,
  dnsRecordsSet,
  dnsZonesStateKey,
  dnsZonesStateReader,
} from '../../../src/trustchain/dns-zones/index.js';
import type { StateZoneNode } from '../../../src/trustchain/dns-zones/index.js';
import { dataBelowKey } from '../../../src/trustchain/dns-zones/state.js';
import { makeSender } from '../../consensus/application/fixture.js';
import type { Sender, TestNode } from '../../consensus/application/fixture.js';
import { applied, clusterGenesis, openDnsNode } from './dns-zones-fixture.js';

/**
 * `StateZoneTree` (what the `ca` module's CAA check walks) decides whether a name without
 * records exists from `dns/data-below`, one read, where it read the zone's whole index (256
 * buckets and every name) before; it agrees with the zone the servers compile.
 */

const APEX = 'hypermesh.';
const A = (name: string): RecordInput[] => [
  { name, type: 'A', ttl: 300, data: { address: '192.0.2.1' } },
];
const TXT = (name: string): RecordInput[] => [
  { name, type: 'TXT', ttl: 300, data: { strings: ['from the wildcard'] } },
];

/** A tree over the committed state that counts the keys it reads. */
function countingTree(node: TestNode): { tree: StateZoneTree; reads: () => number } {
  const state = dnsZonesStateReader(node.store.state);
  let reads = 0;
  const counted: ModuleStateReader = {
    get: (key) => {
      reads++;
      return state.get(key);
    },
  };
  return { tree: new StateZoneTree(counted, nameKey(APEX)), reads: () => reads };
}

/** The zone the servers compile from the committed state. */
function compiled(node: TestNode): MemoryZone {
  const zones = ConsensusZones.load(dnsZonesStateReader(node.store.state), {
    height: node.nextHeight() - 1,
  });
  const zone = zones.zone(APEX);
  assert.ok(zone instanceof MemoryZone);
  return zone;
}

const stored = (node: TestNode, key: Uint8Array): boolean =>
  node.store.state.get(dnsZonesStateKey(key)) !== null;

describe('dns zones: StateZoneTree', () => {
  let node: TestNode;
  let admin: Sender;
  let alice: Sender;

  before(async () => {
    admin = makeSender();
    alice = makeSender();
    node = await openDnsNode(clusterGenesis([admin.publicKey]));
    node.executeAndCommit([]); // block 1 writes the genesis zone
    applied(node, admin, dnsNameRegister('*.hypermesh.'));
    applied(node, admin, dnsRecordsSet(TXT('*.hypermesh.')));
    // Names to fill the index: the walk used to read all of them.
    for (let i = 0; i < 20; i++) applied(node, alice, dnsNameRegister(`n${i}.hypermesh.`));
    applied(node, alice, dnsNameRegister('a.x.hypermesh.'));
  });
  after(async () => {
    await node.close();
  });

  /** Looks `x.hypermesh.` up; asserts it agrees with the compiled zone and reads a few keys. */
  function lookupX(): { exists: boolean; synthesised: boolean } {
    const key = nameKey('x.hypermesh.');
    const { tree, reads } = countingTree(node);
    assert.ok(tree.wildcardDataAbove(key), 'the wildcard holds records');
    const found = lookupName(tree, key, false, emptyLookup<StateZoneNode>());
    // x, its data-below count, the apex, the apex's wildcard, and those above x once each.
    assert.ok(reads() <= 6, `${reads()} state reads for one lookup`);
    const zone = compiled(node);
    const expected = lookupName(zone, key, false, emptyLookup());
    assert.equal(
      found.node !== undefined,
      expected.node !== undefined,
      'x exists in both or neither',
    );
    assert.equal(found.wildcard !== undefined, expected.wildcard !== undefined, 'synthesis agrees');
    return { exists: found.node !== undefined, synthesised: found.wildcard !== undefined };
  }

  it('a name with a registered name below it that holds no records does not exist', () => {
    assert.deepEqual(lookupX(), { exists: false, synthesised: true });
    assert.ok(!stored(node, dataBelowKey(keyToWire(nameKey('x.hypermesh.')))));
  });

  it('an A record below makes it an empty non-terminal, which blocks the wildcard', () => {
    applied(node, alice, dnsRecordsSet(A('a.x.hypermesh.')));
    assert.deepEqual(lookupX(), { exists: true, synthesised: false });
  });

  it('deleting the records, or releasing the name, takes the count back to no key', () => {
    applied(node, alice, dnsRecordsDelete('a.x.hypermesh.', 1));
    assert.deepEqual(lookupX(), { exists: false, synthesised: true });
    applied(node, alice, dnsRecordsSet(A('a.x.hypermesh.')));
    assert.deepEqual(lookupX(), { exists: true, synthesised: false });
    assert.ok(stored(node, dataBelowKey(keyToWire(nameKey('x.hypermesh.')))));
    applied(node, alice, dnsNameRelease('a.x.hypermesh.'));
    assert.deepEqual(lookupX(), { exists: false, synthesised: true });
    assert.ok(!stored(node, dataBelowKey(keyToWire(nameKey('x.hypermesh.')))));
  });
});
