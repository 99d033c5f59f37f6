import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import type { Authenticator, PeerIdentity, Role, Session } from '../../src/stoq/identity.js';
import { createMemoryNetwork, type MemoryNetwork } from '../../src/stoq/memory.js';
import { createStoqMetrics, type StoqMetrics } from '../../src/stoq/metrics.js';
import { RpcClient } from '../../src/stoq/rpc/client.js';
import { FrameDecoder, decodePayload } from '../../src/stoq/rpc/framing.js';
import type { RpcLimits } from '../../src/stoq/rpc/limits.js';
import type { RpcLogger } from '../../src/stoq/rpc/log.js';
import { RpcServer } from '../../src/stoq/rpc/server.js';
import {
  defineService,
  messageStream,
  oneWay,
  serverStream,
  unary,
  type ServiceDefinition,
  type ServiceHandlers,
} from '../../src/stoq/rpc/service.js';
import type { TransportConnection, TransportStream } from '../../src/stoq/transport.js';
import { parseWireFrame, type WireFrame } from '../../src/stoq/rpc/wire.js';

/**
 * Shared pieces of the RPC tests: a demo service, a test-only authenticator that maps the
 * transport-proven key to a fixed identity (the real one is `src/stoq/auth`), and a connected
 * client/server pair over the memory transport.
 */

const everyone = ['validator', 'node', 'client'] as const;

export const vote = z.strictObject({
  seq: z.number().int().nonnegative(),
  body: z.instanceof(Uint8Array),
});

export const demo = defineService({
  name: 'demo.v1',
  methods: {
    echo: unary({
      request: z.strictObject({ text: z.string().max(10_000) }),
      response: z.strictObject({ text: z.string() }),
      allow: everyone,
    }),
    blob: unary({
      request: z.strictObject({ size: z.number().int().nonnegative() }),
      response: z.strictObject({ data: z.instanceof(Uint8Array) }),
      allow: everyone,
    }),
    wait: unary({
      request: z.strictObject({ id: z.string() }),
      response: z.strictObject({ id: z.string() }),
      allow: everyone,
    }),
    validatorsOnly: unary({
      request: z.strictObject({}),
      response: z.strictObject({ ok: z.boolean() }),
      allow: ['validator'],
    }),
    count: serverStream({
      request: z.strictObject({ from: z.number().int(), to: z.number().int() }),
      response: z.strictObject({ n: z.number().int() }),
      allow: everyone,
    }),
    record: oneWay({
      request: z.strictObject({ note: z.string() }),
      allow: everyone,
    }),
    gossip: messageStream({
      request: vote,
      response: vote,
      allow: ['validator', 'node'],
    }),
  },
});

export type DemoHandlers = ServiceHandlers<typeof demo>;

/** Handlers that work for every test; tests override the ones they watch. */
export function demoHandlers(overrides: Partial<DemoHandlers> = {}): DemoHandlers {
  return {
    echo: (request) => ({ text: request.text }),
    blob: (request) => ({ data: new Uint8Array(request.size) }),
    wait: (request, ctx) =>
      new Promise((resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), {
          once: true,
        });
        void request;
      }),
    validatorsOnly: () => ({ ok: true }),
    count: async function* (request) {
      for (let n = request.from; n < request.to; n++) yield { n };
    },
    record: () => undefined,
    gossip: async (channel) => {
      for await (const message of channel) {
        if (!channel.send(message)) await channel.drain();
      }
    },
    ...overrides,
  };
}

export function identity(role: Role, name: string, transportKey: Uint8Array): PeerIdentity {
  return {
    cluster: 'test',
    role,
    name,
    uri: `spiffe://test/${role}/${name}`,
    certificateFingerprint: Buffer.from(randomBytes(32)).toString('hex'),
    transportKey,
    falconPublicKey: new Uint8Array(0),
    notAfter: new Date(Date.now() + 3_600_000),
  };
}

/** Test-only: the identity is looked up by the key the transport proved, nothing is verified. */
export class TableAuthenticator implements Authenticator {
  private readonly table = new Map<string, PeerIdentity>();
  /** Every session this authenticator made, so a test can reach either end of a connection. */
  readonly sessions: Session[] = [];

  add(peer: PeerIdentity): void {
    this.table.set(Buffer.from(peer.transportKey).toString('hex'), peer);
  }

  authenticate(connection: TransportConnection): Promise<Session> {
    const key = connection.peerKey ? Buffer.from(connection.peerKey.publicKey).toString('hex') : '';
    const peer = this.table.get(key);
    if (!peer) {
      connection.close('unknown peer');
      return Promise.reject(
        new StoqError(StoqErrorCode.UNAUTHENTICATED, 'unknown transport key', {
          reason: 'unknown_ca',
        }),
      );
    }
    const session = { connection, peer };
    this.sessions.push(session);
    return Promise.resolve(session);
  }
}

/** A logger that keeps what it was told, so tests can check what was (not) logged. */
export class MemoryLogger implements RpcLogger {
  readonly lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  warn(message: string, fields: Record<string, unknown>): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(message: string, fields: Record<string, unknown>): void {
    this.lines.push({ level: 'error', message, fields });
  }
}

export interface RpcPair {
  readonly network: MemoryNetwork;
  readonly server: RpcServer;
  readonly client: RpcClient<typeof demo>;
  readonly clientSession: Session;
  readonly serverSession: Session;
  readonly registry: Registry;
  readonly metrics: StoqMetrics;
  readonly logger: MemoryLogger;
  clientFor<S extends ServiceDefinition>(service: S): RpcClient<S>;
  /** A raw transport stream on the client's connection, to send hand-made frames. */
  rawStream(): Promise<TransportStream>;
  close(): Promise<void>;
}

export interface PairOptions {
  readonly role?: Role;
  readonly limits?: Partial<RpcLimits>;
  readonly handlers?: Partial<DemoHandlers>;
  readonly streamWindow?: number;
}

export async function rpcPair(options: PairOptions = {}): Promise<RpcPair> {
  const network = createMemoryNetwork();
  const serverKey = new Uint8Array(randomBytes(32));
  const clientKey = new Uint8Array(randomBytes(32));
  const window = options.streamWindow === undefined ? {} : { streamWindow: options.streamWindow };
  const serverTransport = network.transport({ publicKey: serverKey, ...window });
  const clientTransport = network.transport({ publicKey: clientKey, ...window });
  const auth = new TableAuthenticator();
  auth.add(identity('validator', 'server', serverKey));
  auth.add(identity(options.role ?? 'node', 'caller', clientKey));
  const registry = new Registry();
  const metrics = createStoqMetrics(registry);
  const logger = new MemoryLogger();
  const server = new RpcServer({ limits: options.limits, metrics, logger });
  server.register(demo, demoHandlers(options.handlers));

  const listener = await serverTransport.listen({ host: 'server', port: 0 });
  const [outbound, inbound] = await Promise.all([
    clientTransport.dial(listener.address),
    listener.accept(),
  ]);
  assert.ok(inbound);
  const [clientSession, serverSession] = await Promise.all([
    auth.authenticate(outbound),
    auth.authenticate(inbound),
  ]);
  void server.serve(serverSession);
  const clientLimits = {
    ...(options.limits?.maxMessageBytes === undefined
      ? {}
      : { maxMessageBytes: options.limits.maxMessageBytes }),
    ...(options.limits?.highWaterMark === undefined
      ? {}
      : { highWaterMark: options.limits.highWaterMark }),
  };
  const clientFor = <S extends ServiceDefinition>(service: S): RpcClient<S> =>
    new RpcClient(service, clientSession, { metrics, logger, limits: clientLimits });
  return {
    network,
    server,
    client: clientFor(demo),
    clientSession,
    serverSession,
    registry,
    metrics,
    logger,
    clientFor,
    rawStream: () => outbound.openStream(),
    close: async () => {
      await server.close();
      await Promise.all([clientTransport.close(), serverTransport.close()]);
    },
  };
}

/** A promise with its settle functions, for waiting on events raised by handlers. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export { isStoqError } from '../helpers/stoq-error.js';

/**
 * The wire frames the server sends on a raw stream until it finishes or resets it; then resets
 * the stream, so the server's side of it ends too.
 */
export async function serverFrames(stream: TransportStream): Promise<WireFrame[]> {
  const decoder = new FrameDecoder(1 << 20);
  const frames: WireFrame[] = [];
  for (;;) {
    let chunk: Uint8Array | null;
    try {
      chunk = await stream.read();
    } catch {
      break;
    }
    if (chunk === null) break;
    for (const payload of decoder.push(chunk)) frames.push(parseWireFrame(decodePayload(payload)));
  }
  stream.reset();
  return frames;
}

/** A `wait` handler that never answers on its own, and what a test watches it for. */
export interface WatchedWait {
  readonly handler: DemoHandlers['wait'];
  /** Resolves once a call reached the handler. */
  readonly entered: Deferred<void>;
  /** Resolves with the reason the call's signal fired; the handler then rejects with it. */
  readonly aborted: Deferred<unknown>;
}

export function watchedWait(): WatchedWait {
  const entered = deferred();
  const aborted = deferred<unknown>();
  const handler: DemoHandlers['wait'] = (_request, ctx) =>
    new Promise((_resolve, reject) => {
      ctx.signal.addEventListener(
        'abort',
        () => {
          aborted.resolve(ctx.signal.reason);
          reject(ctx.signal.reason as Error);
        },
        { once: true },
      );
      entered.resolve();
    });
  return { handler, entered, aborted };
}

/** The value of one counter child in a registry, 0 when absent. */
export async function counterValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const match = values.find((value) =>
    Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected),
  );
  return match?.value ?? 0;
}
