import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import {
  BlockSync,
  MAX_BUSY_IN_A_ROW,
  SyncDeadline,
  SyncTimeoutError,
  type SyncTimers,
} from '../../../src/consensus/driver/block-sync.js';
import type { LogLevel } from '../../../src/consensus/driver/driver-types.js';
import type { ConsensusNetwork, SyncedBlock } from '../../../src/consensus/driver/ports.js';
import { StoqError, StoqErrorCode } from '../../../src/stoq/errors.js';
import { waitForCondition, withDeadline } from '../../helpers/wait.js';

const IDLE_MS = 10;
const PAGE_MS = 50;
const BACKOFF_MS = 100;
const LIAR = 'liar';
const HONEST = 'honest';

/** The driver's named timers, fired by the test instead of a clock. */
class ManualTimers implements SyncTimers {
  readonly pending = new Map<string, () => void>();
  /** How often each timer was (re)armed. */
  readonly armed = new Map<string, number>();

  constructor(private readonly changed: () => void) {}

  set(name: string, _delayMs: number, fire: () => void): void {
    this.pending.set(name, fire);
    this.armed.set(name, (this.armed.get(name) ?? 0) + 1);
    this.changed();
  }

  has(name: string): boolean {
    return this.pending.has(name);
  }

  clear(name: string): void {
    this.pending.delete(name);
  }

  fire(name: string): void {
    const fire = this.pending.get(name);
    if (fire === undefined) throw new Error(`timer ${name} is not set`);
    this.pending.delete(name);
    fire();
  }
}

function block(height: number): SyncedBlock {
  return { height, block: Uint8Array.of(height), commit: Uint8Array.of(0) };
}

type Serve = (
  from: number,
  to: number,
  signal: AbortSignal | undefined,
) => AsyncIterable<SyncedBlock>;

/** Serves every block asked for, one per macrotask, and stops when aborted. */
const honest: Serve = async function* (from, to, signal) {
  for (let height = from; height <= to; height++) {
    await new Promise((resolve) => setImmediate(resolve));
    if (signal?.aborted === true) return;
    yield block(height);
  }
};

/** Never answers, and ignores the abort signal (the worst case for the caller). */
const silent: Serve = async function* () {
  await new Promise<never>(() => undefined);
};

/** One valid block, then silence (the signal ignored). */
const trickling: Serve = async function* (from) {
  yield block(from);
  await new Promise<never>(() => undefined);
};

/** Refuses at once, as a serving node does with all its sync slots taken. */
const busy: Serve = () => ({
  [Symbol.asyncIterator]: () => ({
    next: () =>
      Promise.reject(
        new StoqError(StoqErrorCode.RESOURCE_EXHAUSTED, 'serving others', { reason: 'sync-busy' }),
      ),
  }),
});

/**
 * A sync host around a counter of stored blocks, a fake clock and a network whose peers serve
 * blocks as the test says; every call it gets is announced on `events`.
 */
class Harness {
  readonly events = new EventEmitter();
  readonly timers = new ManualTimers(() => this.changed());
  readonly calls: { peer: string; from: number; to: number; signal: AbortSignal | undefined }[] =
    [];
  readonly failures: { peer: string; height: number; error: Error | undefined }[] = [];
  readonly logs: { level: LogLevel; message: string; fields: Record<string, unknown> }[] = [];
  readonly servers = new Map<string, Serve>();
  committed = 0;
  clock = 1_000;
  /** The driver runs (it turns false before `stop`, as the driver's does). */
  active = true;
  finished = 0;
  readonly sync: BlockSync;

  constructor(maxBackedOffPeers?: number) {
    const network: ConsensusNetwork = {
      broadcast: () => undefined,
      send: () => undefined,
      onMessage: () => undefined,
      onPeerConnected: () => undefined,
      peers: () => [...this.servers.keys()],
      fetchBlocks: (peer, from, to, signal) => {
        this.calls.push({ peer, from, to, signal });
        this.changed();
        const serve = this.servers.get(peer);
        if (serve === undefined) throw new Error(`no peer ${peer}`);
        return serve(from, to, signal);
      },
    };
    this.sync = new BlockSync({
      network,
      now: () => this.clock,
      logger: (level, message, fields = {}) => {
        this.logs.push({ level, message, fields: { ...fields } });
      },
      timers: this.timers,
      graceMs: 1_000,
      idleTimeoutMs: IDLE_MS,
      pageTimeoutMs: PAGE_MS,
      backoffUnitMs: BACKOFF_MS,
      batchSize: 64,
      ...(maxBackedOffPeers === undefined ? {} : { maxBackedOffPeers }),
      active: () => this.active,
      committedHeight: () => this.committed,
      store: (_peer, synced) => {
        if (synced.height !== this.committed + 1)
          throw new Error(`block ${synced.height} out of order`);
        this.committed = synced.height;
        this.changed();
        return true;
      },
      failed: (peer, height, error) => {
        this.failures.push({ peer, height, error });
        this.changed();
      },
      finished: () => {
        this.finished++;
        this.changed();
      },
    });
  }

  changed(): void {
    this.events.emit('changed');
  }

  status(peer: string, committedHeight: number): void {
    this.sync.peerStatus({ peer, committedHeight, height: committedHeight + 1, round: 0 });
  }

  async until(condition: () => boolean, what: string): Promise<void> {
    await waitForCondition(this.events, 'changed', condition, what, 5_000);
  }

  /** Waits until a fetch from `peer` is outstanding under its idle deadline. */
  async fetching(peer: string, calls: number): Promise<void> {
    await this.until(
      () =>
        this.calls.length === calls &&
        this.calls.at(-1)?.peer === peer &&
        this.timers.has('sync-idle'),
      `fetch #${calls} from ${peer} under an idle deadline`,
    );
  }

  warnings(): Record<string, unknown>[] {
    return this.logs.filter((log) => log.level === 'warn').map((log) => log.fields);
  }
}

function timeout(error: Error | undefined, deadline: SyncDeadline): boolean {
  return error instanceof SyncTimeoutError && error.code === deadline;
}

describe('BlockSync deadlines', () => {
  it('abandons a silent peer at the idle deadline, backs it off, and syncs from the next one', async () => {
    const h = new Harness();
    h.servers.set(LIAR, silent);
    h.servers.set(HONEST, honest);
    h.status(LIAR, 100);
    h.status(HONEST, 5);
    await h.fetching(LIAR, 1);
    assert.ok(h.timers.has('sync-page'), 'the page is under a deadline too');
    h.timers.fire('sync-idle');
    await h.until(() => h.finished === 1, 'the sync run to end');
    assert.equal(h.committed, 5);
    assert.deepEqual(
      h.calls.map(({ peer, from, to }) => `${peer}:${from}..${to}`),
      [`${LIAR}:1..64`, `${HONEST}:1..5`],
    );
    assert.equal(h.calls[0]?.signal?.aborted, true, 'the abandoned fetch was aborted');
    assert.equal(h.calls[1]?.signal?.aborted, false);
    assert.equal(h.failures.length, 1);
    assert.equal(h.failures[0]?.peer, LIAR);
    assert.equal(h.failures[0]?.height, 1);
    assert.ok(timeout(h.failures[0]?.error, SyncDeadline.IDLE));
    assert.deepEqual(h.warnings(), [
      { peer: LIAR, from: 1, to: 64, stored: 0, reason: `no new block within ${IDLE_MS} ms` },
    ]);
    assert.equal(h.timers.pending.size, 0, 'no deadline outlives the run');
    assert.equal(h.sync.syncing, false);

    // Still lying: not asked again during its back-off, asked once it ended, backed off longer.
    h.status(LIAR, 100);
    assert.equal(h.sync.syncing, false);
    h.clock += BACKOFF_MS;
    h.status(LIAR, 100);
    await h.fetching(LIAR, 3);
    h.timers.fire('sync-idle');
    await h.until(() => h.finished === 2, 'the second run to end');
    h.clock += BACKOFF_MS;
    h.status(LIAR, 100);
    assert.equal(h.sync.syncing, false, 'the second failure doubles the back-off');
    h.clock += BACKOFF_MS;
    h.status(LIAR, 100);
    assert.equal(h.sync.syncing, true);
    h.active = false;
    await h.sync.stop();
  });

  it('abandons a trickling peer, and blocks it sent again do not count as progress', async () => {
    const h = new Harness();
    h.servers.set(LIAR, trickling);
    h.servers.set(HONEST, honest);
    h.status(LIAR, 100);
    h.status(HONEST, 5);
    await h.until(() => h.committed === 1, 'the one block the liar sends');
    await h.until(() => h.timers.armed.get('sync-idle') === 2, 'the idle deadline re-armed');
    h.timers.fire('sync-idle');
    await h.until(() => h.finished === 1, 'the sync run to end');
    assert.equal(h.committed, 5);
    assert.deepEqual(
      h.calls.map(({ peer, from }) => `${peer}:${from}`),
      [`${LIAR}:1`, `${HONEST}:2`],
    );
    assert.equal(h.failures[0]?.height, 2);
    assert.ok(timeout(h.failures[0]?.error, SyncDeadline.IDLE));
    assert.equal(h.warnings()[0]?.stored, 1);
    // One block stored did not clear its back-off.
    h.status(LIAR, 100);
    assert.equal(h.sync.syncing, false);

    // A peer replaying blocks this node has: skipped without re-arming the idle deadline.
    let replayed = 0;
    h.servers.set(LIAR, async function* (_from, _to, signal) {
      while (signal?.aborted !== true && replayed < 10_000) {
        await new Promise((resolve) => setImmediate(resolve));
        replayed++;
        h.changed();
        yield block(1);
      }
    });
    const armed = h.timers.armed.get('sync-idle') ?? 0;
    h.clock += 10 * BACKOFF_MS;
    h.status(LIAR, 100);
    await h.until(() => replayed >= 20, 'the liar to replay old blocks');
    assert.equal(h.timers.armed.get('sync-idle'), armed + 1, 'armed once for this page');
    h.timers.fire('sync-idle');
    await h.until(() => h.finished === 2, 'the second run to end');
    assert.equal(h.failures.length, 2);
    assert.equal(h.committed, 5);
  });

  it('abandons a page not complete by the page deadline, keeping the blocks it stored', async () => {
    const h = new Harness();
    const release: (() => void)[] = [];
    h.servers.set(LIAR, async function* (from, to) {
      for (let height = from; height <= to; height++) {
        await new Promise<void>((resolve) => {
          release.push(resolve);
          h.changed();
        });
        yield block(height);
      }
    });
    h.servers.set(HONEST, honest);
    h.status(LIAR, 100);
    h.status(HONEST, 5);
    for (let sent = 1; sent <= 3; sent++) {
      await h.until(() => release.length === sent, `the liar to hold block ${sent}`);
      release[sent - 1]?.();
      await h.until(() => h.committed === sent, `block ${sent} stored`);
    }
    h.timers.fire('sync-page');
    await h.until(() => h.finished === 1, 'the sync run to end');
    assert.equal(h.committed, 5);
    assert.ok(timeout(h.failures[0]?.error, SyncDeadline.PAGE));
    assert.equal(h.failures[0]?.height, 4);
    assert.deepEqual(h.warnings(), [
      {
        peer: LIAR,
        from: 1,
        to: 64,
        stored: 3,
        reason: `blocks 1..64 not complete within ${PAGE_MS} ms`,
      },
    ]);
  });

  it('treats a fetch that throws on abort as timed out, and ends the run when nobody is left', async () => {
    const h = new Harness();
    h.servers.set(LIAR, async function* (_from, _to, signal) {
      await new Promise<never>((_resolve, reject) => {
        signal?.addEventListener('abort', () => reject(new Error('stream aborted')));
      });
    });
    h.status(LIAR, 100);
    await h.fetching(LIAR, 1);
    h.timers.fire('sync-idle');
    // No other peer: the run ends, so the driver restarts its engine (consensus resumes).
    await h.until(() => h.finished === 1, 'the sync run to end');
    assert.equal(h.sync.syncing, false);
    assert.equal(h.committed, 0);
    assert.equal(h.failures.length, 1);
    assert.ok(timeout(h.failures[0]?.error, SyncDeadline.IDLE), String(h.failures[0]?.error));
  });

  it('does not blame a peer for a block this node decided while fetching it', async () => {
    const h = new Harness();
    // The peer serves the block asked for, but this node's engine stores it first (its
    // precommits arrived while the request was in flight).
    h.servers.set(HONEST, async function* (from, to) {
      for (let height = from; height <= to; height++) {
        await new Promise((resolve) => setImmediate(resolve));
        if (h.committed === height - 1) {
          h.committed = height;
          h.changed();
        }
        yield block(height);
      }
    });
    h.status(HONEST, 1);
    assert.equal(h.sync.syncing, false, 'one block ahead: the engine gets a grace period');
    h.timers.fire('sync-grace');
    await h.until(() => h.finished === 1, 'the sync run to end');
    assert.equal(h.committed, 1);
    assert.deepEqual(
      h.calls.map(({ peer, from, to }) => `${peer}:${from}..${to}`),
      [`${HONEST}:1..1`],
    );
    assert.deepEqual(h.failures, [], 'the peer served what it claimed');
    assert.deepEqual(h.warnings(), []);
    // Not backed off: its next status starts a sync at once.
    h.servers.set(HONEST, honest);
    h.status(HONEST, 4);
    assert.equal(h.sync.syncing, true, 'the peer is not backing off');
    await h.until(() => h.finished === 2, 'the second run to end');
    assert.equal(h.committed, 4);
    assert.deepEqual(h.failures, []);
  });

  it('stops while a peer never answers', async () => {
    const h = new Harness();
    h.servers.set(LIAR, silent);
    h.status(LIAR, 100);
    await h.fetching(LIAR, 1);
    h.active = false;
    await withDeadline(h.sync.stop(), 5_000, 'stop() during a silent fetch');
    assert.equal(h.sync.syncing, false);
    assert.equal(h.calls[0]?.signal?.aborted, true);
    assert.deepEqual(h.failures, [], 'stopping is not the peer’s failure');
    assert.equal(h.timers.pending.size, 0);
  });

  it('ends the run when a peer claiming far ahead serves one block a page and stops', async () => {
    const h = new Harness();
    // Each page: the one next block (as if the others had just decided it), then the end.
    h.servers.set(LIAR, async function* (from) {
      await new Promise((resolve) => setImmediate(resolve));
      yield block(from);
    });
    h.status(LIAR, 1_000_000);
    await h.until(() => h.finished === 1, 'the sync run to end');
    assert.equal(h.committed, 1, 'the block it served is kept');
    assert.deepEqual(
      h.calls.map(({ peer, from }) => `${peer}:${from}`),
      [`${LIAR}:1`],
      'asked once, not again and again while it claims more',
    );
    assert.equal(h.failures.length, 1);
    assert.equal(h.failures[0]?.peer, LIAR);
    assert.match(h.failures[0]?.error?.message ?? '', /stopped after 1/);
    assert.equal(h.sync.progressOf(LIAR)?.committedHeight, 1, 'its claim is lowered');
    // Backing off: its next claim does not start a run until the back-off ends.
    h.status(LIAR, 1_000_000);
    assert.equal(h.sync.syncing, false);
    h.clock += BACKOFF_MS;
    h.status(LIAR, 1_000_000);
    assert.equal(h.sync.syncing, true);
    h.active = false;
    await h.sync.stop();
  });
});

describe('BlockSync per-peer state', () => {
  /** What a driver's gossip tick does after `peer` disconnected (or reconnected). */
  function tick(h: Harness): void {
    h.sync.forgetDisconnected(new Set(h.servers.keys()));
  }

  it('forgets a disconnected peer’s progress, but its back-off survives a reconnect', async () => {
    const h = new Harness();
    h.servers.set(LIAR, silent);
    h.servers.set(HONEST, honest);
    h.status(HONEST, 0);
    h.status(LIAR, 100);
    await h.fetching(LIAR, 1);
    h.timers.fire('sync-idle');
    await h.until(() => h.finished === 1, 'the sync run to end');
    assert.deepEqual(h.sync.trackedPeers, { progress: 2, backoff: 1 });

    // Connected peers keep their progress; the liar disconnects and loses its.
    tick(h);
    assert.deepEqual(h.sync.trackedPeers, { progress: 2, backoff: 1 });
    h.servers.delete(LIAR);
    tick(h);
    assert.deepEqual(h.sync.trackedPeers, { progress: 1, backoff: 1 });
    assert.equal(h.sync.progressOf(LIAR), undefined);
    assert.equal(h.sync.progressOf(HONEST)?.committedHeight, 0);

    // Back under the same name: its back-off still holds, and ends when it would have.
    h.servers.set(LIAR, silent);
    h.status(LIAR, 100);
    assert.equal(h.sync.syncing, false, 'reconnecting did not clear the back-off');
    h.clock += BACKOFF_MS;
    h.status(LIAR, 100);
    assert.equal(h.sync.syncing, true);
    await h.fetching(LIAR, 2);
    h.active = false;
    await h.sync.stop();
  });

  it('remembers at most maxBackedOffPeers back-offs, the least recently penalized forgotten first', async () => {
    const h = new Harness(2);
    const peers = ['p0', 'p1', 'p2'];
    for (const peer of peers) h.servers.set(peer, silent);
    // p0 claims the most, so it is asked first, then p1, then p2.
    h.status('p0', 100);
    h.status('p1', 99);
    h.status('p2', 98);
    for (const [index, peer] of peers.entries()) {
      await h.fetching(peer, index + 1);
      h.timers.fire('sync-idle');
    }
    // p2's back-off pushed out p0's (the oldest): p0 is asked again at once, p1 and p2 are not.
    await h.fetching('p0', 4);
    assert.deepEqual(
      h.failures.map((failure) => failure.peer),
      peers,
    );
    assert.deepEqual(h.sync.trackedPeers, { progress: 3, backoff: 2 });
    h.active = false;
    await h.sync.stop();
  });
});

describe('BlockSync and a busy peer', () => {
  it('asks a peer refusing with sync-busy again after one unit, MAX_BUSY_IN_A_ROW times, then backs it off as failed', async () => {
    const h = new Harness();
    h.servers.set(LIAR, busy);
    let runs = 0;
    const run = async (): Promise<void> => {
      h.status(LIAR, 100);
      assert.equal(h.sync.syncing, true, `run ${runs + 1}: asked`);
      await h.until(() => h.finished === runs + 1, `run ${runs + 1} to end`);
      runs++;
      h.status(LIAR, 100);
      assert.equal(h.sync.syncing, false, `run ${runs}: not asked again at once`);
    };
    for (let round = 1; round <= MAX_BUSY_IN_A_ROW; round++) {
      await run();
      h.clock += BACKOFF_MS;
    }
    assert.deepEqual(h.failures, [], 'a busy peer is not a failed one');
    assert.deepEqual(h.warnings(), []);
    // Busy again and again: the peer's word is no longer taken; it backs off as a failure,
    // twice as long each time.
    await run();
    assert.equal(h.failures.length, 1);
    h.clock += BACKOFF_MS;
    await run();
    assert.equal(h.failures.length, 2);
    h.clock += BACKOFF_MS;
    h.status(LIAR, 100);
    assert.equal(h.sync.syncing, false, 'the second failure doubles the back-off');
    // Busy no longer: it serves the blocks, and its back-off is forgotten.
    h.servers.set(LIAR, honest);
    h.clock += BACKOFF_MS;
    h.status(LIAR, 3);
    await h.until(() => h.committed === 3, 'the blocks from the once busy peer');
    h.active = false;
    await h.sync.stop();
  });
});
