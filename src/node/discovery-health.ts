import { renewInterval } from '../discovery/index.js';
import type { HealthStatus, ServiceInstance } from '../discovery/index.js';
import type { Probe, ProbeResult } from './discovery-probes.js';

/**
 * The health-check runner of a hosting node (docs/discovery.md, "Health checks"). It runs the
 * check of every instance the node hosts on the check's interval, each attempt cut at its
 * timeout, applies `rise` and `fall` (consecutive results needed to turn passing or critical),
 * and asks for a transaction only when the committed catalog must change:
 *
 * - `status`: the status the checks arrived at differs from the committed one;
 * - `renewal`: the committed status is right, and `renewInterval(ttl)` blocks passed since the
 *   last registration or renewal (so the instance never expires while its host is up).
 *
 * The runner decides; sending the transaction is the caller's (`report`). A request stays
 * outstanding until a committed block shows its effect, or for `retryBlocks` blocks, after which
 * it is asked for again. Time comes from `clock`, so tests drive it without waiting.
 */

export interface HealthClock {
  now(): number;
  schedule(callback: () => void, ms: number): unknown;
  cancel(handle: unknown): void;
}

export const systemClock: HealthClock = {
  now: () => Date.now(),
  schedule: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  cancel: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface HealthRequest {
  readonly service: string;
  readonly instance: string;
  readonly status: HealthStatus;
  readonly reason: 'status' | 'renewal';
}

/** One finished check: what the probe said and the status the runner holds afterwards. */
export interface HealthCheckEvent {
  readonly service: string;
  readonly instance: string;
  readonly result: ProbeResult;
  readonly status: HealthStatus;
  /** The status before, when this result changed it (a flap when it goes back later). */
  readonly changedFrom?: HealthStatus;
}

export interface HealthRunnerOptions {
  readonly probe: Probe;
  /** Asks for a renew transaction (the runner never sends one itself). */
  readonly report: (request: HealthRequest) => void;
  readonly clock?: HealthClock;
  /** Called after every check. */
  readonly onCheck?: (event: HealthCheckEvent) => void;
  /** Blocks an outstanding request may take before it is asked for again (default 10). */
  readonly retryBlocks?: number;
}

interface Hosted {
  record: ServiceInstance;
  /** What the checks say now; starts as the committed status. */
  status: HealthStatus;
  successes: number;
  failures: number;
  timer: unknown;
  controller: AbortController | null;
  /** The height at which the outstanding request was made, and what it asked for. */
  outstanding: { height: number; status: HealthStatus; since: number } | null;
}

function idOf(record: { service: string; instance: string }): string {
  return `${record.service}/${record.instance}`;
}

/** Height of the last registration or renewal of a committed record. */
function lastWrite(record: ServiceInstance): number {
  return record.expiresAt - record.ttl;
}

export class HealthRunner {
  private readonly hosted = new Map<string, Hosted>();
  private readonly clock: HealthClock;
  private readonly retryBlocks: number;
  private height = 0;
  private stopped = false;

  constructor(private readonly options: HealthRunnerOptions) {
    this.clock = options.clock ?? systemClock;
    this.retryBlocks = options.retryBlocks ?? 10;
  }

  /** The instances hosted now, with the status their checks arrived at. */
  statuses(): { service: string; instance: string; status: HealthStatus }[] {
    return [...this.hosted.values()].map(({ record, status }) => ({
      service: record.service,
      instance: record.instance,
      status,
    }));
  }

  /**
   * The committed state at `height`: `instances` are the live instances this node hosts. New
   * ones start being checked (at once), gone ones stop, re-registered ones start over with their
   * new check; then the requests that are due are made.
   */
  sync(height: number, instances: readonly ServiceInstance[]): void {
    if (this.stopped) return;
    this.height = height;
    const wanted = new Map(instances.map((record) => [idOf(record), record]));
    for (const [id, hosted] of this.hosted) {
      const next = wanted.get(id);
      if (next === undefined || next.updatedAt !== hosted.record.updatedAt) {
        this.drop(id, hosted);
      }
    }
    for (const [id, record] of wanted) {
      const hosted = this.hosted.get(id);
      if (hosted === undefined) {
        const fresh: Hosted = {
          record,
          status: record.status,
          successes: 0,
          failures: 0,
          timer: undefined,
          controller: null,
          outstanding: null,
        };
        this.hosted.set(id, fresh);
        this.schedule(id, fresh, 0);
      } else {
        this.observe(hosted, record);
      }
    }
    for (const hosted of this.hosted.values()) this.requestIfDue(hosted);
  }

  /** Stops every check (an attempt in flight is aborted). */
  stop(): void {
    this.stopped = true;
    for (const [id, hosted] of this.hosted) this.drop(id, hosted);
  }

  private drop(id: string, hosted: Hosted): void {
    this.clock.cancel(hosted.timer);
    hosted.controller?.abort();
    this.hosted.delete(id);
  }

  /** A newer committed version of a hosted record: clears the request it satisfies. */
  private observe(hosted: Hosted, record: ServiceInstance): void {
    const asked = hosted.outstanding;
    hosted.record = record;
    if (asked !== null && lastWrite(record) >= asked.since && record.status === asked.status) {
      hosted.outstanding = null;
    }
  }

  private requestIfDue(hosted: Hosted): void {
    const { record } = hosted;
    const asked = hosted.outstanding;
    if (asked !== null) {
      const stale = this.height - asked.height >= this.retryBlocks;
      if (!stale && asked.status === hosted.status) return;
    }
    let reason: HealthRequest['reason'] | null = null;
    if (hosted.status !== record.status) reason = 'status';
    else if (this.height - lastWrite(record) >= renewInterval(record.ttl)) reason = 'renewal';
    if (reason === null) {
      hosted.outstanding = null;
      return;
    }
    // The effect shows in a block after this one: a write at a height above the current one.
    hosted.outstanding = { height: this.height, status: hosted.status, since: this.height + 1 };
    this.options.report({
      service: record.service,
      instance: record.instance,
      status: hosted.status,
      reason,
    });
  }

  private schedule(id: string, hosted: Hosted, delayMs: number): void {
    hosted.timer = this.clock.schedule(() => void this.runCheck(id, hosted), delayMs);
  }

  private async runCheck(id: string, hosted: Hosted): Promise<void> {
    if (this.hosted.get(id) !== hosted) return;
    const { record } = hosted;
    const { check } = record;
    const controller = new AbortController();
    hosted.controller = controller;
    let timeout: unknown;
    const timedOut = new Promise<ProbeResult>((resolve) => {
      timeout = this.clock.schedule(() => {
        resolve({ ok: false, reason: `no answer within ${check.timeout} ms` });
        controller.abort();
      }, check.timeout);
      // Dropped while the probe runs: stop waiting for it at once.
      controller.signal.addEventListener('abort', () => {
        this.clock.cancel(timeout);
        resolve({ ok: false, reason: 'cancelled' });
      });
    });
    const started = this.clock.now();
    let result: ProbeResult;
    try {
      result = await Promise.race([this.options.probe(record, controller.signal), timedOut]);
    } catch (error) {
      result = { ok: false, reason: error instanceof Error ? error.message : String(error) };
    } finally {
      this.clock.cancel(timeout);
      hosted.controller = null;
    }
    // Dropped (or re-registered) while the probe ran: its result is for nothing held now.
    if (this.hosted.get(id) !== hosted) return;
    const before = hosted.status;
    if (result.ok) {
      hosted.successes++;
      hosted.failures = 0;
      if (before !== 'passing' && hosted.successes >= check.rise) hosted.status = 'passing';
    } else {
      hosted.failures++;
      hosted.successes = 0;
      if (before !== 'critical' && hosted.failures >= check.fall) hosted.status = 'critical';
    }
    const changed = hosted.status !== before;
    this.options.onCheck?.({
      service: record.service,
      instance: record.instance,
      result,
      status: hosted.status,
      ...(changed ? { changedFrom: before } : {}),
    });
    if (changed) this.requestIfDue(hosted);
    const elapsed = this.clock.now() - started;
    this.schedule(id, hosted, Math.max(0, check.interval - elapsed));
  }
}
