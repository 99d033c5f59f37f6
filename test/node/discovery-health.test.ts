import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { ServiceInstance } from '../../src/discovery/index.js';
import {
  HealthRunner,
  type HealthCheckEvent,
  type HealthClock,
  type HealthRequest,
} from '../../src/node/discovery-health.js';
import type { ProbeResult } from '../../src/node/discovery-probes.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * The health-check runner, driven by a manual clock and probes the test answers: every step
 * waits for the runner's own events (a probe started, a check finished), never for time.
 */

class ManualClock implements HealthClock {
  private time = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }

  schedule(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  }

  cancel(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward, firing each due timer in order. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) {
        if (entry[1].at <= target && (due === undefined || entry[1].at < due[1].at)) due = entry;
      }
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].callback();
    }
    this.time = target;
  }

  pending(): number {
    return this.timers.size;
  }
}

interface ProbeCall {
  readonly instance: ServiceInstance;
  readonly signal: AbortSignal;
  answer(result: ProbeResult): void;
}

function harness(options: { retryBlocks?: number } = {}) {
  const clock = new ManualClock();
  const events = new EventEmitter();
  const probes: ProbeCall[] = [];
  const checks: HealthCheckEvent[] = [];
  const reports: HealthRequest[] = [];
  const runner = new HealthRunner({
    clock,
    ...options,
    probe: (instance, signal) =>
      new Promise<ProbeResult>((resolve) => {
        probes.push({ instance, signal, answer: resolve });
        events.emit('change');
      }),
    report: (request) => {
      reports.push(request);
      events.emit('change');
    },
    onCheck: (event) => {
      checks.push(event);
      events.emit('change');
    },
  });
  const until = (condition: () => boolean, what: string) =>
    waitForCondition(events, 'change', condition, what, 5_000);
  /** Fires the next check and answers it with `result`; resolves once the runner handled it. */
  const check = async (advanceMs: number, result: ProbeResult): Promise<HealthCheckEvent> => {
    const before = probes.length;
    const done = checks.length;
    clock.advance(advanceMs);
    await until(() => probes.length > before, 'a probe to start');
    probes[probes.length - 1]!.answer(result);
    await until(() => checks.length > done, 'the check to finish');
    return checks[checks.length - 1]!;
  };
  return { clock, runner, probes, checks, reports, check, until };
}

function instance(overrides: Partial<ServiceInstance> = {}): ServiceInstance {
  return {
    service: 'web',
    instance: 'w1',
    addresses: ['127.0.0.1'],
    ports: [{ protocol: 'http', port: 8080 }],
    identity: 'spiffe://test/service/web',
    metadata: {},
    check: { kind: 'http', port: 8080, path: '/', interval: 1_000, timeout: 200, rise: 2, fall: 2 },
    ttl: 30,
    status: 'passing',
    owner: new Uint8Array(32),
    registeredAt: 10,
    updatedAt: 10,
    expiresAt: 40,
    ...overrides,
  };
}

const up: ProbeResult = { ok: true };
const down: ProbeResult = { ok: false, reason: 'ECONNREFUSED' };

describe('HealthRunner', () => {
  it('damps failures with fall, asks for one status change, and rises back with rise', async () => {
    const { runner, check, reports, clock } = harness();
    const record = instance();
    runner.sync(11, [record]);

    assert.equal((await check(0, up)).status, 'passing');
    assert.equal((await check(1_000, down)).status, 'passing', 'one failure is below fall');
    assert.deepEqual(reports, []);
    const turned = await check(1_000, down);
    assert.equal(turned.status, 'critical');
    assert.equal(turned.changedFrom, 'passing');
    assert.deepEqual(reports, [
      { service: 'web', instance: 'w1', status: 'critical', reason: 'status' },
    ]);

    // More failures and blocks without the renewal committed: nothing asked again yet.
    await check(1_000, down);
    runner.sync(12, [record]);
    assert.equal(reports.length, 1);

    // The renewal commits at 13: the request is satisfied.
    const renewed = { ...record, status: 'critical' as const, expiresAt: 13 + 30 };
    runner.sync(13, [renewed]);
    assert.equal(reports.length, 1);

    assert.equal((await check(1_000, up)).status, 'critical', 'one success is below rise');
    const back = await check(1_000, up);
    assert.equal(back.status, 'passing');
    assert.equal(back.changedFrom, 'critical');
    assert.deepEqual(reports[1], {
      service: 'web',
      instance: 'w1',
      status: 'passing',
      reason: 'status',
    });
    runner.stop();
    assert.equal(clock.pending(), 0, 'stop clears every timer');
  });

  it('renews every ttl/3 blocks, once, and asks again after retryBlocks without effect', () => {
    const { runner, reports } = harness({ retryBlocks: 4 });
    const record = instance({ ttl: 30, expiresAt: 40 }); // last written at 10, renew from 20
    runner.sync(19, [record]);
    assert.deepEqual(reports, []);
    runner.sync(20, [record]);
    assert.deepEqual(reports, [
      { service: 'web', instance: 'w1', status: 'passing', reason: 'renewal' },
    ]);
    runner.sync(21, [record]);
    runner.sync(23, [record]);
    assert.equal(reports.length, 1, 'outstanding until its effect or retryBlocks');
    runner.sync(24, [record]);
    assert.equal(reports.length, 2, 'asked again after 4 blocks without the renewal');
    runner.sync(25, [{ ...record, expiresAt: 25 + 30 }]);
    runner.sync(30, [{ ...record, expiresAt: 25 + 30 }]);
    assert.equal(reports.length, 2, 'renewed at 25: next due at 35');
    runner.stop();
  });

  it('fails a check that does not answer within its timeout and aborts the probe', async () => {
    const { runner, probes, checks, clock, until } = harness();
    runner.sync(11, [
      instance({
        check: { kind: 'tcp', port: 8080, interval: 1_000, timeout: 200, rise: 1, fall: 1 },
      }),
    ]);
    clock.advance(0);
    await until(() => probes.length === 1, 'the probe to start');
    assert.equal(probes[0]!.signal.aborted, false);
    clock.advance(200);
    await until(() => checks.length === 1, 'the timed-out check');
    assert.equal(probes[0]!.signal.aborted, true);
    assert.deepEqual(checks[0]!.result, { ok: false, reason: 'no answer within 200 ms' });
    assert.equal(checks[0]!.status, 'critical');
    runner.stop();
  });

  it('stops checking an instance that is gone and starts over when it is registered again', async () => {
    const { runner, probes, checks, clock, check, until } = harness();
    const record = instance();
    runner.sync(11, [record]);
    await check(0, up);
    // A probe in flight when the instance leaves: aborted, and its result is not counted.
    clock.advance(1_000);
    await until(() => probes.length === 2, 'the second probe');
    runner.sync(12, []);
    assert.equal(probes[1]!.signal.aborted, true);
    probes[1]!.answer(down);
    assert.equal(clock.pending(), 0);
    assert.deepEqual(runner.statuses(), []);
    assert.equal(checks.length, 1);

    // Registered again with another check: checked at once with the new spec.
    const again = instance({
      updatedAt: 13,
      expiresAt: 43,
      check: { kind: 'tcp', port: 8080, interval: 5_000, timeout: 300, rise: 1, fall: 1 },
    });
    runner.sync(13, [again]);
    const first = await check(0, down);
    assert.equal(first.status, 'critical');
    assert.equal(probes[probes.length - 1]!.instance.check.kind, 'tcp');
    runner.stop();
  });
});
