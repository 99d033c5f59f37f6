import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  MemoryZone,
  RR_TYPES,
  ZoneSet,
  answer,
  emptyLookup,
  encodeMessage,
  isSubdomain,
  keyToWire,
  lookupName,
  nameKey,
} from '../../../src/trustchain/dns/index.js';
import type { RecordInput } from '../../../src/trustchain/dns/index.js';
import {
  ConsensusZones,
  StateZoneTree,
  dnsNameQuery,
  dnsNameRegister,
  dnsNameRelease,
  dnsNameTransfer,
  dnsRecordsDelete,
  dnsRecordsSet,
  dnsZoneQuery,
  dnsZonesStateReader,
  verifyDnsName,
  verifyDnsZone,
} from '../../../src/trustchain/dns-zones/index.js';
import type { StateZoneNode } from '../../../src/trustchain/dns-zones/index.js';
import { readDataBelow } from '../../../src/trustchain/dns-zones/state.js';
import { blockAt, makeSender } from '../../consensus/application/fixture.js';
import type { Sender, TestNode } from '../../consensus/application/fixture.js';
import { clusterGenesis, dnsTx, openDnsNode } from './dns-zones-fixture.js';
import { ZoneModel, recordSet } from './model.js';
import type { Step } from './model.js';

/**
 * Random register / transfer / release / records-set / records-delete sequences over a few
 * senders (sender 0 is the zone's admin) and a small tree of names, executed by two nodes (one
 * proposes, the other re-executes). After every block: the same root and changes on both; every
 * result is what the reference model says; the bridge, fed each block's changes, serves exactly
 * the model's zone, and so does a bridge loaded from scratch; `answer()` gives byte-identical
 * responses from the bridged zone and from the model's zone for every query of a grid; the
 * `dns/data-below` counts are the model's, and the `ca` module's walk of the state finds what the
 * model's zone holds; and the proven `dns/name` answers match the model.
 */

const APEX = 'hypermesh.';
const NAMES = [
  APEX,
  'a.hypermesh.',
  'b.hypermesh.',
  'x.a.hypermesh.',
  'y.a.hypermesh.',
  '*.a.hypermesh.',
  '*.hypermesh.',
  'c.x.a.hypermesh.',
  'ns.b.hypermesh.',
] as const;
const SENDERS = 3;
const keys = Array.from({ length: SENDERS }, () => makeSender());
const genesis = clusterGenesis([keys[0]!.publicKey]);

const TYPES = ['A', 'AAAA', 'TXT', 'CNAME', 'NS', 'MX', 'DS'] as const;
type Kind = (typeof TYPES)[number];

function dataFor(kind: Kind, pick: number): unknown[] {
  const one = (values: readonly unknown[]) => values[pick % values.length];
  switch (kind) {
    case 'A':
      return pick % 3 === 0
        ? [{ address: '192.0.2.1' }, { address: '192.0.2.2' }]
        : [{ address: one(['192.0.2.3', '192.0.2.1']) }];
    case 'AAAA':
      return [{ address: one(['2001:db8::1', '2001:db8::2']) }];
    case 'TXT':
      return [{ strings: [one(['x', 'y'])] }];
    case 'CNAME':
      return [{ target: one([...NAMES, 'out.example.']) }];
    case 'NS':
      return [{ host: one(['ns.b.hypermesh.', 'ns.example.']) }];
    case 'MX':
      return [{ preference: 10, exchange: one(NAMES) }];
    case 'DS':
      return [{ keyTag: 7, algorithm: 13, digestType: 2, digest: 'cd'.repeat(32) }];
  }
}

const stepArb = fc.record({
  op: fc.constantFrom(
    'register',
    'register',
    'transfer',
    'release',
    'set',
    'set',
    'set',
    'set',
    'delete',
    'delete',
  ),
  name: fc.constantFrom(...NAMES),
  /** -1: the name's current owner (or the admin at the apex); else a sender index. */
  who: fc.constantFrom(-1, -1, -1, 0, 1, 2),
  to: fc.integer({ min: 0, max: SENDERS - 1 }),
  kind: fc.constantFrom(...TYPES),
  pick: fc.nat(),
  ttl: fc.constantFrom(60, 300),
  /** For every op but register: mostly a name that is registered (or the apex). */
  known: fc.constantFrom(true, true, true, false),
});
type GeneratedStep = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;

function resolve(model: ZoneModel, generated: GeneratedStep): Step {
  const { op, who, to, kind, pick, ttl, known } = generated;
  const stored = [...model.names.keys(), APEX].sort();
  const name = op !== 'register' && known ? stored[pick % stored.length]! : generated.name;
  const owner = name === APEX ? 0 : model.names.get(name)?.owner;
  const sender = who >= 0 ? who : (owner ?? pick % SENDERS);
  switch (op) {
    case 'register':
    case 'release':
      return { op, name, sender };
    case 'transfer':
      return { op, name, sender, to };
    case 'delete': {
      const held = [...(model.names.get(name)?.rrsets.keys() ?? [])];
      const type = known && held.length > 0 ? held[pick % held.length]! : RR_TYPES[kind];
      return { op, name, sender, type };
    }
    default: {
      const records = dataFor(kind, pick).map((data): RecordInput => ({
        name,
        type: kind,
        ttl,
        data,
      }));
      return { op: 'set', name, sender, records };
    }
  }
}

function body(step: Step): Uint8Array {
  switch (step.op) {
    case 'register':
      return dnsNameRegister(step.name);
    case 'transfer':
      return dnsNameTransfer(step.name, keys[step.to]!.publicKey);
    case 'release':
      return dnsNameRelease(step.name);
    case 'set':
      return dnsRecordsSet(step.records);
    case 'delete':
      return dnsRecordsDelete(step.name, step.type);
  }
}

const QUERY_NAMES = [
  ...NAMES,
  'nx.hypermesh.',
  'q.a.hypermesh.',
  'deep.c.x.a.hypermesh.',
  'z.ns.b.hypermesh.',
];
const QUERY_TYPES = [1, 2, 5, 6, 15, 16, 28, 43, 255];
const QUERIES = QUERY_NAMES.flatMap((name, i) =>
  QUERY_TYPES.map((type, j) =>
    encodeMessage({
      id: i * 16 + j,
      questions: [{ name, type, class: 1 }],
      recursionDesired: true,
    }),
  ),
);

function checkBridge(
  bridge: ConsensusZones,
  node: TestNode,
  model: ZoneModel,
  height: number,
): void {
  const expected = model.zone();
  const served = bridge.zone(APEX);
  assert.ok(served instanceof MemoryZone, 'the bridge serves the zone');
  assert.deepEqual(bridge.failures.size, 0, [...bridge.failures.values()].join('; '));
  assert.deepEqual(
    recordSet(served.records),
    recordSet(expected.records),
    `zone at height ${height}`,
  );
  const fresh = ConsensusZones.load(dnsZonesStateReader(node.store.state), { height });
  const loaded = fresh.zone(APEX);
  assert.ok(loaded instanceof MemoryZone);
  assert.deepEqual(
    recordSet(loaded.records),
    recordSet(expected.records),
    'a fresh load is the same',
  );
  const reference = new ZoneSet([expected]);
  for (const query of QUERIES) {
    for (const transport of ['udp', 'tcp'] as const) {
      const got = answer(query, bridge, { transport });
      const want = answer(query, reference, { transport });
      assert.deepEqual(got, want, `answer differs at height ${height}`);
    }
  }
  assert.equal(bridge.findZone(nameKey('other.example.')), undefined);
}

/**
 * `dns/data-below` on every name of the grid is the model's count of names strictly below
 * holding records, and the `ca` module's view of the state (`StateZoneTree`) finds the names
 * and the wildcards the compiled zone has.
 */
function checkExistence(node: TestNode, model: ZoneModel): void {
  const state = dnsZonesStateReader(node.store.state);
  const tree = new StateZoneTree(state, nameKey(APEX));
  const zone = model.zone();
  for (const name of QUERY_NAMES) {
    const key = nameKey(name);
    if (name !== APEX) {
      const holding = [...model.names].filter(
        ([other, data]) => other !== name && isSubdomain(other, name) && data.rrsets.size > 0,
      ).length;
      assert.equal(
        readDataBelow(state, keyToWire(key)),
        holding,
        `names with records below ${name}`,
      );
    }
    const found = lookupName(tree, key, false, emptyLookup<StateZoneNode>());
    const expected = lookupName(zone, key, false, emptyLookup());
    assert.equal(found.node?.key, expected.node?.key, `${name} exists`);
    assert.equal(found.encloser?.key, expected.encloser?.key, `closest encloser of ${name}`);
    assert.equal(found.wildcard?.key, expected.wildcard?.key, `wildcard for ${name}`);
    assert.equal(found.cut?.key, expected.cut?.key, `cut above ${name}`);
  }
}

function checkProofs(node: TestNode, model: ZoneModel): void {
  for (const name of NAMES) {
    const proven = verifyDnsName(name, node.app.query(dnsNameQuery(name)));
    const modelled = model.names.get(name);
    if (modelled === undefined) {
      assert.equal(proven, null, `${name} is not stored`);
      continue;
    }
    assert.ok(proven !== null, `${name} is stored`);
    assert.deepEqual(
      proven.owner,
      modelled.owner === null ? null : keys[modelled.owner]!.publicKey,
    );
    const records = [...modelled.rrsets.values()].flatMap((set) => set.records);
    assert.deepEqual(recordSet(proven.records), recordSet(records), `records of ${name}`);
  }
  const zone = verifyDnsZone(APEX, node.app.query(dnsZoneQuery(APEX)))!;
  assert.equal(zone.serial, model.serial);
  assert.equal(zone.names, [...model.names.entries()].filter(([n]) => n !== APEX).length);
}

describe('dns zones: properties over random sequences', () => {
  it('results as modelled, bridged zone = model zone, identical roots on two nodes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(stepArb, { minLength: 1, maxLength: 10 }), {
          minLength: 1,
          maxLength: 8,
        }),
        async (blocks) => {
          const proposer = await openDnsNode(genesis);
          const validator = await openDnsNode(genesis);
          try {
            const senders: Sender[] = keys.map((key) => ({ ...key, sequence: 0 }));
            const model = new ZoneModel(genesis.zones[0]!, new Set([0]));
            const bridge = ConsensusZones.load(dnsZonesStateReader(validator.store.state), {
              height: null,
            });
            const run = (transactions: readonly Uint8Array[], expected: readonly number[]) => {
              const height = proposer.nextHeight();
              const { transactions: chosen, result: proposed } = proposer.app.prepareProposal(
                blockAt(height, []),
                transactions,
                Number.MAX_SAFE_INTEGER,
              );
              assert.equal(chosen.length, transactions.length, 'every transaction is admissible');
              const executed = validator.app.executeBlock(blockAt(height, chosen));
              assert.deepEqual(executed.stateRoot, proposed.stateRoot, `same root at ${height}`);
              assert.deepEqual(executed.changes, proposed.changes);
              executed.txResults.forEach((result, i) => {
                assert.equal(result.code, expected[i], `height ${height}, tx ${i}: ${result.log}`);
              });
              proposer.commit(proposed);
              validator.commit(executed);
              const refresh = bridge.applyBlock(height, executed.changes);
              assert.deepEqual(refresh.failed, []);
              checkBridge(bridge, validator, model, height);
              checkExistence(validator, model);
              checkProofs(validator, model);
            };
            run([], []); // block 1: the genesis zone
            for (const steps of blocks) {
              const height = proposer.nextHeight();
              const expected: number[] = [];
              const transactions = steps.map((generated) => {
                const step = resolve(model, generated);
                expected.push(model.apply(step, height));
                return dnsTx(senders[step.sender]!, body(step));
              });
              run(transactions, expected);
            }
            assert.deepEqual(proposer.store.state.root(), validator.store.state.root());
          } finally {
            await proposer.close();
            await validator.close();
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});
