import { z } from 'zod';
import {
  defineService,
  messageStream,
  serverStream,
  unary,
  type ServiceHandlers,
} from '../stoq/index.js';

/**
 * The service every HyperMesh node offers over STOQ: liveness, identity, a heartbeat
 * subscription and a peer message stream (the demo's traffic; consensus gossip replaces it).
 */
const anyone = ['validator', 'node', 'client'] as const;
const peers = ['validator', 'node'] as const;

export const nodeService = defineService({
  name: 'hypermesh.node.v1',
  methods: {
    ping: unary({
      request: z.strictObject({ sentAt: z.number().int().nonnegative() }),
      response: z.strictObject({ sentAt: z.number().int().nonnegative(), node: z.string() }),
      allow: anyone,
    }),
    info: unary({
      request: z.strictObject({}),
      response: z.strictObject({
        node: z.string(),
        uri: z.string(),
        version: z.string(),
        transport: z.string(),
        authMode: z.string(),
        peer: z.strictObject({ uri: z.string(), role: z.string() }),
      }),
      allow: anyone,
    }),
    heartbeat: serverStream({
      request: z.strictObject({ count: z.number().int().min(1).max(1000) }),
      response: z.strictObject({ seq: z.number().int().nonnegative(), at: z.number().int() }),
      allow: anyone,
    }),
    gossip: messageStream({
      request: z.strictObject({ seq: z.number().int().nonnegative(), body: z.string().max(4096) }),
      response: z.strictObject({ seq: z.number().int().nonnegative(), body: z.string().max(4096) }),
      allow: peers,
    }),
  },
});

export interface NodeFacts {
  readonly name: string;
  readonly uri: string;
  readonly version: string;
  readonly transport: string;
  readonly authMode: string;
  /** Interval between heartbeat messages. */
  readonly heartbeatMs: number;
}

export function nodeServiceHandlers(facts: NodeFacts): ServiceHandlers<typeof nodeService> {
  return {
    ping: (request) => ({ sentAt: request.sentAt, node: facts.name }),
    info: (_request, ctx) => ({
      node: facts.name,
      uri: facts.uri,
      version: facts.version,
      transport: facts.transport,
      authMode: facts.authMode,
      peer: { uri: ctx.peer.uri, role: ctx.peer.role },
    }),
    heartbeat: async function* (request, ctx) {
      for (let seq = 0; seq < request.count && !ctx.signal.aborted; seq++) {
        if (seq > 0) await delay(facts.heartbeatMs, ctx.signal);
        yield { seq, at: Date.now() };
      }
    },
    gossip: async (channel) => {
      for await (const message of channel) {
        if (!channel.send(message)) await channel.drain();
      }
    },
  };
}

/**
 * Waits `ms`, or less when `signal` aborts. The abort listener is removed when the timer fires:
 * a heartbeat of 1000 beats would otherwise leave 999 listeners on the call's signal.
 */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
