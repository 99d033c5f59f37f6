import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesEqual } from '../../src/crypto/bytes.js';
import {
  DISCOVERY_RESULT_CODES,
  DiscoveryErrorCode,
  decodeInstance,
  decodeOwnerList,
  decodeServiceIndex,
  discoveryDeregister,
  discoveryRenew,
  discoveryServiceQuery,
  discoveryStateKey,
  instanceKey,
  isLive,
  minRenewInterval,
  ownerKey,
  serviceKey,
  verifyDiscoveryService,
} from '../../src/discovery/index.js';
import type { HealthStatus } from '../../src/discovery/index.js';
import { CatalogView, readServiceDirectory } from '../../src/discovery/index.js';
import { blockAt, makeSender } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { discoveryTx, openDiscoveryNode, registerTx } from './discovery-fixture.js';

/**
 * Random register / renew / deregister sequences over a few senders, services and instance ids,
 * with runs of empty blocks so instances expire, executed by two nodes (one proposes, the other
 * re-executes). After every block: both reach the same state root and changes; every result is
 * what a reference model of the rules says; and the stored catalog is consistent — a record
 * exists exactly when its id is in its service's index and its owner's list, index entries carry
 * the record's status and heights, and the live part of each index is the model's live set.
 */

const SENDERS = 3;
const SERVICES = ['acme', 'dns'] as const;
const INSTANCES = ['a', 'b', 'c'] as const;
const keys = Array.from({ length: SENDERS }, () => makeSender());
const C = DiscoveryErrorCode;
const code = (c: DiscoveryErrorCode) => DISCOVERY_RESULT_CODES[c];

const stepArb = fc.record({
  op: fc.constantFrom(
    'register',
    'register',
    'renew',
    'deregister',
    'renew-own',
    'renew-own',
    'deregister-own',
  ),
  /** For the "-own" ops: which modelled instance, renewed or deregistered by its owner. */
  pick: fc.nat(),
  sender: fc.integer({ min: 0, max: SENDERS - 1 }),
  service: fc.constantFrom(...SERVICES),
  instance: fc.constantFrom(...INSTANCES),
  ttl: fc.constantFrom(8, 9, 13),
  // Mostly unchanged statuses, so renewals meet the spacing rule.
  status: fc.constantFrom<HealthStatus>('passing', 'passing', 'passing', 'warning', 'critical'),
});
const blockArb = fc.record({
  steps: fc.array(stepArb, { maxLength: 6 }),
  /** Empty blocks before this one. */
  idle: fc.oneof(
    { arbitrary: fc.constant(0), weight: 3 },
    { arbitrary: fc.integer({ min: 1, max: 2 }), weight: 2 },
    { arbitrary: fc.integer({ min: 3, max: 10 }), weight: 1 },
  ),
});

interface Modelled {
  owner: number;
  status: HealthStatus;
  ttl: number;
  expiresAt: number;
  updatedAt: number;
  registeredAt: number;
}

type GeneratedStep = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;
interface Step extends Omit<GeneratedStep, 'op'> {
  readonly op: 'register' | 'renew' | 'deregister';
}

/** Resolves an "-own" op to a renew or deregister of a modelled instance by its owner. */
function resolve(model: Map<string, Modelled>, step: GeneratedStep): Step {
  if (step.op !== 'renew-own' && step.op !== 'deregister-own') return { ...step, op: step.op };
  const op = step.op === 'renew-own' ? 'renew' : 'deregister';
  const ids = [...model.keys()].sort();
  if (ids.length === 0) return { ...step, op };
  const id = ids[step.pick % ids.length]!;
  const [service, instance] = id.split('/') as [Step['service'], Step['instance']];
  return { ...step, op, service, instance, sender: model.get(id)!.owner };
}

/** The result codes a step may get (more than one only where pruning decides the code). */
function expect(model: Map<string, Modelled>, step: Step, height: number): number[] {
  const id = `${step.service}/${step.instance}`;
  const entry = model.get(id);
  const live = entry !== undefined && isLive(entry, height);
  if (step.op === 'register') {
    if (live && entry.owner !== step.sender) return [code(C.NOT_OWNER)];
    model.set(id, {
      owner: step.sender,
      status: step.status,
      ttl: step.ttl,
      expiresAt: height + step.ttl,
      updatedAt: height,
      registeredAt: live ? entry.registeredAt : height,
    });
    return [0];
  }
  if (entry === undefined) return [code(C.NOT_FOUND)];
  if (entry.owner !== step.sender) {
    // An expired record of another key: NOT_OWNER until a write prunes it, NOT_FOUND after.
    return live ? [code(C.NOT_OWNER)] : [code(C.NOT_OWNER), code(C.NOT_FOUND)];
  }
  if (!live) return [code(C.NOT_FOUND)];
  if (step.op === 'deregister') {
    model.delete(id);
    return [0];
  }
  const lastRenewal = entry.expiresAt - entry.ttl;
  if (step.status === entry.status && height - lastRenewal < minRenewInterval(entry.ttl)) {
    return [code(C.RENEW_TOO_SOON)];
  }
  entry.status = step.status;
  entry.expiresAt = height + entry.ttl;
  return [0];
}

function checkCatalog(node: TestNode, model: Map<string, Modelled>, height: number): void {
  const get = (key: Uint8Array) => node.store.state.get(discoveryStateKey(key));
  const owned = keys.map(() => new Set<string>());
  for (const service of SERVICES) {
    const stored = get(serviceKey(service));
    const index = stored === null ? [] : decodeServiceIndex(stored);
    assert.ok(stored === null || index.length > 0, 'an empty index is deleted, not stored');
    for (const instance of INSTANCES) {
      const value = get(instanceKey(service, instance));
      const entry = index.find((e) => e.instance === instance);
      assert.equal(value !== null, entry !== undefined, `${service}/${instance}: record ⇔ index`);
      if (value === null || entry === undefined) continue;
      const record = decodeInstance(value);
      assert.deepEqual(
        { status: record.status, expiresAt: record.expiresAt, updatedAt: record.updatedAt },
        { status: entry.status, expiresAt: entry.expiresAt, updatedAt: entry.updatedAt },
      );
      const owner = keys.findIndex((k) => bytesEqual(k.publicKey, record.owner));
      assert.ok(owner >= 0);
      owned[owner]!.add(`${service}/${instance}`);
    }
    const live = index.filter((e) => isLive(e, height));
    const modelled = INSTANCES.flatMap((instance) => {
      const m = model.get(`${service}/${instance}`);
      return m !== undefined && isLive(m, height)
        ? [{ instance, status: m.status, expiresAt: m.expiresAt, updatedAt: m.updatedAt }]
        : [];
    });
    assert.deepEqual(live, modelled, `live instances of ${service} at height ${height}`);
    // The proven answer says the same.
    assert.deepEqual(
      verifyDiscoveryService(service, node.app.query(discoveryServiceQuery(service))),
      modelled,
    );
    for (const instance of INSTANCES) {
      const m = model.get(`${service}/${instance}`);
      if (m === undefined || !isLive(m, height)) continue;
      const record = decodeInstance(get(instanceKey(service, instance))!);
      assert.deepEqual(record.owner, keys[m.owner]!.publicKey);
      assert.equal(record.registeredAt, m.registeredAt);
      assert.equal(record.ttl, m.ttl);
    }
  }
  assert.deepEqual(
    readServiceDirectory({ get }),
    SERVICES.filter((service) => get(serviceKey(service)) !== null).sort(),
    'the directory lists exactly the services with a stored index',
  );
  keys.forEach((key, i) => {
    const stored = get(ownerKey(key.publicKey));
    const list = stored === null ? [] : decodeOwnerList(stored);
    assert.deepEqual(
      new Set(list.map((e) => `${e.service}/${e.instance}`)),
      owned[i],
      `owner ${i}'s list is exactly the records it owns`,
    );
  });
}

describe('discovery catalog properties over random sequences', () => {
  it('results as modelled, a consistent index, identical roots on two nodes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(blockArb, { minLength: 1, maxLength: 6 }), async (blocks) => {
        const proposer = await openDiscoveryNode();
        const validator = await openDiscoveryNode();
        try {
          const senders: Sender[] = keys.map((key) => ({ ...key, sequence: 0 }));
          const model = new Map<string, Modelled>();
          const reader = {
            get: (key: Uint8Array) => validator.store.state.get(discoveryStateKey(key)),
          };
          // The node's in-memory catalog, followed block by block from the changes alone.
          const view = CatalogView.load(reader, null);
          const run = (transactions: readonly Uint8Array[], expected: number[][]) => {
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
              assert.ok(
                expected[i]!.includes(result.code),
                `height ${height}, tx ${i}: code ${result.code} (${result.log}), expected ${expected[i]!.join(' or ')}`,
              );
            });
            proposer.commit(proposed);
            validator.commit(executed);
            checkCatalog(validator, model, height);
            view.applyBlock(height, executed.changes);
            const fresh = CatalogView.load(reader, height);
            assert.deepEqual(view.services(), fresh.services());
            for (const service of fresh.services()) {
              assert.deepEqual(view.live(service), fresh.live(service), `followed ${service}`);
            }
          };
          for (const { steps, idle } of blocks) {
            for (let i = 0; i < idle; i++) run([], []);
            const height = proposer.nextHeight();
            const expected: number[][] = [];
            const transactions = steps.map((generated) => {
              const step = resolve(model, generated);
              expected.push(expect(model, step, height));
              const sender = senders[step.sender]!;
              switch (step.op) {
                case 'register':
                  return registerTx(sender, {
                    service: step.service,
                    instance: step.instance,
                    ttl: step.ttl,
                    status: step.status,
                  });
                case 'renew':
                  return discoveryTx(
                    sender,
                    discoveryRenew(step.service, step.instance, step.status),
                  );
                default:
                  return discoveryTx(sender, discoveryDeregister(step.service, step.instance));
              }
            });
            run(transactions, expected);
          }
          assert.deepEqual(proposer.store.state.root(), validator.store.state.root());
        } finally {
          await proposer.close();
          await validator.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
