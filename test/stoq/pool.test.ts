import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { StoqError } from '../../src/stoq/errors.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import type { Session } from '../../src/stoq/identity.js';
import { createMemoryNetwork } from '../../src/stoq/memory.js';
import {
  ConnectionPool,
  DEFAULT_BACKOFF,
  backoffDelay,
  type ConnectionPoolOptions,
  type PoolEvent,
  type PoolTimers,
} from '../../src/stoq/pool.js';
import { StaticResolver, type ResolverTable } from '../../src/stoq/resolver.js';
import { RpcClient } from '../../src/stoq/rpc/client.js';
import { RpcServer } from '../../src/stoq/rpc/server.js';
import type {
  SocketAddress,
  TransportConnection,
  TransportListener,
} from '../../src/stoq/transport.js';
import {
  TableAuthenticator,
  deferred,
  demo,
  demoHandlers,
  identity,
  isStoqError,
} from './rpc-fixture.js';

/** A clock the test advances by hand: nothing in the pool waits for real time. */
class ManualTimers implements PoolTimers {
  private next = 1;
  readonly pending = new Map<number, { callback: () => void; ms: number }>();

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { callback, ms });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Fires the one pending timer with delay `ms` (a backoff delay, not a connect timeout). */
  fire(ms: number): void {
    const entry = [...this.pending.entries()].find(([, timer]) => timer.ms === ms);
    assert.ok(
      entry,
      `no pending timer of ${ms} ms (pending: ${[...this.pending.values()].map((t) => t.ms).join(', ')})`,
    );
    this.pending.delete(entry[0]);
    entry[1].callback();
  }
}

/** Collects pool events and lets a test wait for the next one of a type. */
class EventLog {
  readonly events: PoolEvent[] = [];
  private waiters: { type: PoolEvent['type']; resolve: (event: PoolEvent) => void }[] = [];

  readonly listener = (event: PoolEvent): void => {
    this.events.push(event);
    const waiter = this.waiters.find((w) => w.type === event.type);
    if (waiter) {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      waiter.resolve(event);
    }
  };

  next<T extends PoolEvent['type']>(type: T): Promise<Extract<PoolEvent, { type: T }>> {
    return new Promise((resolve) =>
      this.waiters.push({ type, resolve: resolve as (event: PoolEvent) => void }),
    );
  }
}

const CONNECT_TIMEOUT = 987_654;

/** A memory-transport server node that can be stopped and started again on one address. */
async function serverNode() {
  const network = createMemoryNetwork();
  const serverKey = new Uint8Array(randomBytes(32));
  const clientKey = new Uint8Array(randomBytes(32));
  const auth = new TableAuthenticator();
  auth.add(identity('validator', 'alpha', serverKey));
  auth.add(identity('node', 'caller', clientKey));
  const serverTransport = network.transport({ publicKey: serverKey });
  const clientTransport = network.transport({ publicKey: clientKey });
  const rpc = new RpcServer();
  rpc.register(demo, demoHandlers());
  let listener: TransportListener | null = null;
  const accepted = new Set<TransportConnection>();
  let address: SocketAddress = { host: 'alpha.test', port: 0 };
  let dials = 0;

  async function start(): Promise<void> {
    listener = await serverTransport.listen(address);
    address = listener.address;
    const current = listener;
    void (async () => {
      for (;;) {
        const connection = await current.accept();
        if (!connection) return;
        accepted.add(connection);
        void auth.authenticate(connection).then((session) => rpc.serve(session));
      }
    })();
  }

  async function stop(): Promise<void> {
    await listener?.close();
    listener = null;
    for (const connection of accepted) connection.close('server stopped');
    accepted.clear();
  }

  const connect = async (target: SocketAddress): Promise<Session> => {
    dials++;
    return auth.authenticate(await clientTransport.dial(target));
  };

  await start();
  return {
    get address() {
      return address;
    },
    get dials() {
      return dials;
    },
    start,
    stop,
    connect,
    close: async () => {
      await stop();
      await rpc.close();
      await Promise.all([serverTransport.close(), clientTransport.close()]);
    },
  };
}

interface PoolSetup extends Partial<Omit<ConnectionPoolOptions, 'resolver' | 'connect'>> {
  /** The names the pool resolves; by default `alpha` at the node's address. */
  readonly names?: (address: SocketAddress) => ResolverTable;
}

/** A server node and a pool that dials it; `close` ends both. */
async function nodeAndPool(setup: PoolSetup = {}) {
  const { names = (address) => ({ alpha: [address] }), ...options } = setup;
  const node = await serverNode();
  const pool = new ConnectionPool({
    resolver: new StaticResolver(names(node.address)),
    connect: node.connect,
    ...options,
  });
  return {
    node,
    pool,
    close: async () => {
      await pool.close();
      await node.close();
    },
  };
}

describe('backoff', () => {
  it('grows by the multiplier up to the cap, spread by the jitter', () => {
    const policy = { initialMs: 100, maxMs: 10_000, multiplier: 2, jitter: 0.2 };
    const middle = (): number => 0.5;
    assert.deepEqual(
      [1, 2, 3, 4, 8, 20].map((attempt) => backoffDelay(attempt, policy, middle)),
      [100, 200, 400, 800, 10_000, 10_000],
    );
    assert.equal(
      backoffDelay(1, policy, () => 0),
      80,
    );
    assert.equal(
      backoffDelay(1, policy, () => 0.999999),
      120,
    );
  });

  it('stays within base × (1 ± jitter) for any draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, draw) => {
          const delay = backoffDelay(attempt, DEFAULT_BACKOFF, () => draw);
          const base = Math.min(
            DEFAULT_BACKOFF.maxMs,
            DEFAULT_BACKOFF.initialMs * DEFAULT_BACKOFF.multiplier ** (attempt - 1),
          );
          assert.ok(
            delay >= Math.floor(base * (1 - DEFAULT_BACKOFF.jitter)) &&
              delay <= Math.ceil(base * (1 + DEFAULT_BACKOFF.jitter)),
          );
        },
      ),
    );
  });
});

describe('StaticResolver', () => {
  it('resolves configured names and refuses unknown ones with NOT_FOUND', async () => {
    const resolver = new StaticResolver({
      alpha: [
        { host: '::1', port: 9292 },
        { host: '127.0.0.1', port: 9293 },
      ],
    });
    assert.deepEqual(await resolver.resolve('alpha'), [
      { host: '::1', port: 9292 },
      { host: '127.0.0.1', port: 9293 },
    ]);
    await assert.rejects(resolver.resolve('beta'), (error: unknown) => {
      isStoqError(StoqErrorCode.NOT_FOUND)(error);
      assert.equal((error as StoqError).detail.name, 'beta');
      return true;
    });
  });

  it('rejects a malformed table when it is loaded', () => {
    for (const table of [
      { alpha: [] },
      { alpha: [{ host: '', port: 1 }] },
      { alpha: [{ host: 'a', port: 0 }] },
      { alpha: [{ host: 'a', port: 70_000 }] },
      { alpha: [{ host: 'a', port: 1, extra: true }] },
    ]) {
      assert.throws(
        () => new StaticResolver(table as never),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
    }
  });
});

describe('ConnectionPool', { timeout: 20_000 }, () => {
  it('shares one session among concurrent and later callers', async () => {
    const { node, pool, close } = await nodeAndPool();
    try {
      const sessions = await Promise.all(Array.from({ length: 10 }, () => pool.get('alpha')));
      assert.equal(node.dials, 1);
      assert.ok(sessions.every((session) => session === sessions[0]));
      assert.equal(await pool.get('alpha'), sessions[0]);
      assert.equal(node.dials, 1);
      assert.equal(sessions[0]?.peer.name, 'alpha');
    } finally {
      await close();
    }
  });

  it('tries the resolved addresses in order', async () => {
    const { node, pool, close } = await nodeAndPool({
      names: (address) => ({ alpha: [{ host: 'nowhere.test', port: 1 }, address] }),
    });
    try {
      const session = await pool.get('alpha');
      assert.equal(session.peer.name, 'alpha');
      assert.equal(node.dials, 2);
    } finally {
      await close();
    }
  });

  it('fails an unknown name with NOT_FOUND and does not retry it', async () => {
    const timers = new ManualTimers();
    const { pool, close } = await nodeAndPool({ timers });
    try {
      await assert.rejects(pool.get('beta'), isStoqError(StoqErrorCode.NOT_FOUND));
      assert.equal(timers.pending.size, 0);
    } finally {
      await close();
    }
  });

  it('reconnects with growing, jittered backoff after the server restarts', async () => {
    const timers = new ManualTimers();
    const log = new EventLog();
    const draws = [0.5, 0.5];
    const { node, pool, close } = await nodeAndPool({
      timers,
      random: () => draws.shift() ?? 0.5,
      backoff: { initialMs: 100, multiplier: 2, jitter: 0.2, maxMs: 5_000 },
      connectTimeoutMs: CONNECT_TIMEOUT,
      onEvent: log.listener,
    });
    try {
      const first = await pool.get('alpha');
      const client = new RpcClient(demo, (signal) => pool.get('alpha', { signal }));
      assert.deepEqual(await client.call('echo', { text: 'before' }), { text: 'before' });

      const disconnected = log.next('disconnected');
      const scheduled = log.next('reconnect-scheduled');
      await node.stop();
      await disconnected;
      assert.equal((await scheduled).delayMs, 100);
      assert.equal(pool.current('alpha'), undefined);

      // The first retry finds nothing listening: the next delay doubles.
      const failed = log.next('connect-failed');
      const rescheduled = log.next('reconnect-scheduled');
      timers.fire(100);
      isStoqError(StoqErrorCode.CONNECTION_REFUSED)((await failed).error);
      assert.equal((await rescheduled).delayMs, 200);

      // A caller arriving during backoff waits for the next attempt instead of failing.
      const waiting = client.call('echo', { text: 'after' });
      await node.start();
      const connected = log.next('connected');
      timers.fire(200);
      await connected;
      assert.deepEqual(await waiting, { text: 'after' });
      const second = await pool.get('alpha');
      assert.notEqual(second, first);
      assert.equal(node.dials, 3);
    } finally {
      await close();
    }
  });

  it('fails callers waiting for a retry once the pool closes', async () => {
    const timers = new ManualTimers();
    const log = new EventLog();
    const { node, pool, close } = await nodeAndPool({
      timers,
      connectTimeoutMs: CONNECT_TIMEOUT,
      onEvent: log.listener,
    });
    try {
      await node.stop();
      await assert.rejects(pool.get('alpha'), isStoqError(StoqErrorCode.CONNECTION_REFUSED));
      const waiting = pool.get('alpha');
      await pool.close();
      await assert.rejects(waiting, isStoqError(StoqErrorCode.UNAVAILABLE));
      await assert.rejects(pool.get('alpha'), isStoqError(StoqErrorCode.UNAVAILABLE));
      assert.equal(timers.pending.size, 0);
    } finally {
      await close();
    }
  });

  it('lets a waiting caller give up through its signal', async () => {
    const timers = new ManualTimers();
    const { node, pool, close } = await nodeAndPool({
      timers,
      connectTimeoutMs: CONNECT_TIMEOUT,
    });
    try {
      await node.stop();
      await assert.rejects(pool.get('alpha'), isStoqError(StoqErrorCode.CONNECTION_REFUSED));
      const controller = new AbortController();
      const waiting = pool.get('alpha', { signal: controller.signal });
      controller.abort();
      await assert.rejects(waiting, isStoqError(StoqErrorCode.CANCELLED));
    } finally {
      await close();
    }
  });

  it('refuses a peer that is not who the name stands for', async () => {
    const { pool, close } = await nodeAndPool({
      names: (address) => ({ beta: [address] }),
      verifyPeer: (name, peer) => peer.name === name,
    });
    try {
      await assert.rejects(pool.get('beta'), (error: unknown) => {
        isStoqError(StoqErrorCode.UNAUTHENTICATED)(error);
        assert.equal((error as StoqError).detail.reason, 'peer-mismatch');
        return true;
      });
    } finally {
      await close();
    }
  });

  it('gives up on a connect attempt at its timeout and closes a late session', async () => {
    const timers = new ManualTimers();
    const late = { closed: false };
    let release!: (session: Session) => void;
    const called = deferred();
    const pool = new ConnectionPool({
      resolver: new StaticResolver({ alpha: [{ host: 'slow.test', port: 1 }] }),
      connect: () =>
        new Promise<Session>((resolve) => {
          release = resolve;
          called.resolve();
        }),
      timers,
      connectTimeoutMs: CONNECT_TIMEOUT,
    });
    try {
      const waiting = pool.get('alpha');
      await called.promise;
      timers.fire(CONNECT_TIMEOUT);
      await assert.rejects(waiting, (error: unknown) => {
        isStoqError(StoqErrorCode.UNAVAILABLE)(error);
        assert.equal((error as StoqError).detail.reason, 'connect-timeout');
        return true;
      });
      const closed = new Promise<void>((resolve) => {
        release({
          peer: identity('node', 'alpha', new Uint8Array(32)),
          connection: {
            close: () => {
              late.closed = true;
              resolve();
            },
          } as unknown as TransportConnection,
        });
      });
      await closed;
      assert.equal(late.closed, true);
    } finally {
      await pool.close();
    }
  });

  it('rejects an unusable backoff policy', () => {
    const resolver = new StaticResolver({});
    const connect = (): Promise<Session> => Promise.reject(new Error('unused'));
    for (const backoff of [
      { initialMs: 0 },
      { multiplier: 0.5 },
      { jitter: 1 },
      { maxMs: 1, initialMs: 10 },
    ]) {
      assert.throws(
        () => new ConnectionPool({ resolver, connect, backoff }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
    }
  });
});
