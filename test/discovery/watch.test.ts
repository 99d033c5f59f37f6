import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isLive, serviceChanges } from '../../src/discovery/index.js';
import type {
  HealthStatus,
  ServiceIndexEntry,
  ServiceSnapshot,
} from '../../src/discovery/index.js';

const entry = (
  instance: string,
  status: HealthStatus,
  expiresAt: number,
  updatedAt = 1,
): ServiceIndexEntry => ({ instance, status, expiresAt, updatedAt });

describe('discovery watch: changes between two versions of a service', () => {
  it('yields added, removed (expired or deregistered), updated and status-changed, by id', () => {
    const previous: ServiceSnapshot = {
      height: 10,
      entries: [
        entry('a', 'passing', 20),
        entry('b', 'passing', 12),
        entry('c', 'passing', 30),
        entry('d', 'passing', 30),
        entry('e', 'warning', 30),
        entry('f', 'passing', 10), // expired already at height 10: not live before
      ],
    };
    const next: ServiceSnapshot = {
      height: 12,
      entries: [
        entry('a', 'passing', 22), // renewed only: nothing to report
        entry('b', 'passing', 12), // expired at 12, not pruned yet
        // c deregistered
        entry('d', 'critical', 31, 11), // registered again and changed status
        entry('e', 'passing', 30),
        entry('f', 'passing', 10),
        entry('g', 'critical', 40, 12),
      ],
    };
    assert.deepEqual(serviceChanges(previous, next), [
      { type: 'removed', instance: 'b', reason: 'expired' },
      { type: 'removed', instance: 'c', reason: 'deregistered' },
      { type: 'updated', instance: 'd', updatedAt: 11 },
      { type: 'status-changed', instance: 'd', from: 'passing', to: 'critical' },
      { type: 'status-changed', instance: 'e', from: 'warning', to: 'passing' },
      { type: 'added', instance: 'g', status: 'critical', expiresAt: 40 },
    ]);
    assert.deepEqual(serviceChanges(next, next), []);
    assert.deepEqual(serviceChanges({ height: 0, entries: [] }, { height: 5, entries: [] }), []);
    // Expiry alone, with the stored index unchanged, removes an instance.
    assert.deepEqual(
      serviceChanges({ height: 29, entries: next.entries }, { height: 30, entries: next.entries }),
      [{ type: 'removed', instance: 'e', reason: 'expired' }],
    );
    assert.throws(() => serviceChanges(next, previous), RangeError);
  });

  it('applying the changes to the earlier live set gives the later one', () => {
    const ids = ['a', 'b', 'c', 'd'];
    const entriesArb = fc
      .subarray(ids)
      .chain((chosen) =>
        fc.tuple(
          ...chosen.map((instance) =>
            fc.record({
              instance: fc.constant(instance),
              status: fc.constantFrom<HealthStatus>('passing', 'warning', 'critical'),
              expiresAt: fc.integer({ min: 1, max: 30 }),
            }),
          ),
        ),
      )
      .map((entries) => entries.map((e) => ({ ...e, updatedAt: Math.max(0, e.expiresAt - 8) })));
    fc.assert(
      fc.property(
        entriesArb,
        entriesArb,
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 10 }),
        (before, after, height, gap) => {
          const previous = { height, entries: before };
          const next = { height: height + gap, entries: after };
          const live = new Map(
            before.filter((e) => isLive(e, height)).map((e) => [e.instance, e.status] as const),
          );
          for (const change of serviceChanges(previous, next)) {
            switch (change.type) {
              case 'added':
                assert.ok(!live.has(change.instance));
                live.set(change.instance, change.status);
                break;
              case 'removed':
                assert.ok(live.delete(change.instance));
                break;
              case 'status-changed':
                assert.equal(live.get(change.instance), change.from);
                live.set(change.instance, change.to);
                break;
              case 'updated':
                assert.ok(live.has(change.instance));
                break;
            }
          }
          const expected = new Map(
            after.filter((e) => isLive(e, next.height)).map((e) => [e.instance, e.status] as const),
          );
          assert.deepEqual(live, expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
