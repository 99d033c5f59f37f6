import type { z } from 'zod';
import { StoqError, StoqErrorCode } from '../errors.js';
import type { PeerIdentity, Role } from '../identity.js';
import type { MessageChannel } from './channel.js';
import type { MethodKind } from './wire.js';

/**
 * Service definitions: the contract both sides share. A definition holds each method's kind,
 * request and response schemas and who may call it; it holds no code, so a client imports it
 * without pulling in the server. Handlers are plain functions registered separately
 * (`RpcServer.register`), typed from the same definition with `z.input` / `z.output`.
 *
 * Every message is checked against its schema at both ends: the sender checks what it sends
 * (a bug surfaces where it is made) and the receiver checks what it receives (the peer is not
 * trusted). Senders pass `z.input` values; receivers get the schema's `z.output`.
 */

/**
 * Who may call a method: a list of roles from the caller's authenticated certificate, or a
 * predicate over the whole identity (e.g. "validators of this cluster"). There is no default.
 */
export type Allow = readonly Role[] | ((peer: PeerIdentity) => boolean);

export interface UnaryMethod<Req extends z.ZodType, Res extends z.ZodType> {
  readonly kind: 'unary';
  readonly request: Req;
  readonly response: Res;
  readonly allow: Allow;
}

/** One request, then a stream of responses (subscriptions). */
export interface ServerStreamMethod<Req extends z.ZodType, Res extends z.ZodType> {
  readonly kind: 'serverStream';
  readonly request: Req;
  readonly response: Res;
  readonly allow: Allow;
}

/** One request and no response. */
export interface OneWayMethod<Req extends z.ZodType> {
  readonly kind: 'oneWay';
  readonly request: Req;
  readonly allow: Allow;
}

/**
 * A long-lived channel on which both sides send messages: `request` is the schema of messages
 * the caller sends, `response` of those the server sends.
 */
export interface MessageStreamMethod<Req extends z.ZodType, Res extends z.ZodType> {
  readonly kind: 'messageStream';
  readonly request: Req;
  readonly response: Res;
  readonly allow: Allow;
}

export type MethodDefinition =
  | UnaryMethod<z.ZodType, z.ZodType>
  | ServerStreamMethod<z.ZodType, z.ZodType>
  | OneWayMethod<z.ZodType>
  | MessageStreamMethod<z.ZodType, z.ZodType>;

export type MethodTable = Readonly<Record<string, MethodDefinition>>;

export interface ServiceDefinition<Methods extends MethodTable = MethodTable> {
  /** Versioned service name, e.g. `trustchain.ca.v1`. */
  readonly name: string;
  readonly methods: Methods;
}

const SERVICE_NAME = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;
const METHOD_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

export function unary<Req extends z.ZodType, Res extends z.ZodType>(
  method: Omit<UnaryMethod<Req, Res>, 'kind'>,
): UnaryMethod<Req, Res> {
  return Object.freeze({ kind: 'unary', ...method });
}

export function serverStream<Req extends z.ZodType, Res extends z.ZodType>(
  method: Omit<ServerStreamMethod<Req, Res>, 'kind'>,
): ServerStreamMethod<Req, Res> {
  return Object.freeze({ kind: 'serverStream', ...method });
}

export function oneWay<Req extends z.ZodType>(
  method: Omit<OneWayMethod<Req>, 'kind'>,
): OneWayMethod<Req> {
  return Object.freeze({ kind: 'oneWay', ...method });
}

export function messageStream<Req extends z.ZodType, Res extends z.ZodType>(
  method: Omit<MessageStreamMethod<Req, Res>, 'kind'>,
): MessageStreamMethod<Req, Res> {
  return Object.freeze({ kind: 'messageStream', ...method });
}

export function defineService<const Methods extends MethodTable>(
  definition: ServiceDefinition<Methods>,
): ServiceDefinition<Methods> {
  if (!SERVICE_NAME.test(definition.name)) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `service name ${JSON.stringify(definition.name)} must be lowercase dotted words, e.g. demo.v1`,
    );
  }
  for (const [name, method] of Object.entries(definition.methods)) {
    if (!METHOD_NAME.test(name)) {
      throw new StoqError(
        StoqErrorCode.INVALID_ARGUMENT,
        `method name ${JSON.stringify(name)} in ${definition.name} must be an identifier`,
      );
    }
    if (typeof method.allow !== 'function' && !Array.isArray(method.allow)) {
      throw new StoqError(
        StoqErrorCode.INVALID_ARGUMENT,
        `method ${definition.name}/${name} must declare who may call it (allow)`,
      );
    }
  }
  return Object.freeze({
    name: definition.name,
    methods: Object.freeze({ ...definition.methods }),
  });
}

/** The name a method has on the wire: `service/method`. */
export function wireMethodName(service: ServiceDefinition, method: string): string {
  return `${service.name}/${method}`;
}

export function isAllowed(allow: Allow, peer: PeerIdentity): boolean {
  if (typeof allow === 'function') return allow(peer) === true;
  return allow.includes(peer.role);
}

/** What a handler knows about its call. */
export interface CallContext {
  /** The caller, as authentication proved it. */
  readonly peer: PeerIdentity;
  /** `service/method`. */
  readonly method: string;
  /**
   * Fires when the caller cancels, the deadline passes, or the connection is lost; its
   * `reason` is a `StoqError` saying which (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE).
   */
  readonly signal: AbortSignal;
  /** Absolute deadline in epoch milliseconds (server clock), or null when the caller set none. */
  readonly deadline: number | null;
}

type Awaitable<T> = T | Promise<T>;

export type UnaryHandler<Req extends z.ZodType, Res extends z.ZodType> = (
  request: z.output<Req>,
  ctx: CallContext,
) => Awaitable<z.input<Res>>;

/** Yields the responses; the server pulls the next one only when the caller has room for it. */
export type ServerStreamHandler<Req extends z.ZodType, Res extends z.ZodType> = (
  request: z.output<Req>,
  ctx: CallContext,
) => AsyncIterable<z.input<Res>>;

export type OneWayHandler<Req extends z.ZodType> = (
  request: z.output<Req>,
  ctx: CallContext,
) => Awaitable<void>;

/** Runs for the life of the stream; returning ends the server's side with status OK. */
export type MessageStreamHandler<Req extends z.ZodType, Res extends z.ZodType> = (
  channel: MessageChannel<z.output<Req>, z.input<Res>>,
  ctx: CallContext,
) => Awaitable<void>;

export type HandlerFor<M extends MethodDefinition> =
  M extends UnaryMethod<infer Req, infer Res>
    ? UnaryHandler<Req, Res>
    : M extends ServerStreamMethod<infer Req, infer Res>
      ? ServerStreamHandler<Req, Res>
      : M extends OneWayMethod<infer Req>
        ? OneWayHandler<Req>
        : M extends MessageStreamMethod<infer Req, infer Res>
          ? MessageStreamHandler<Req, Res>
          : never;

export type ServiceHandlers<S extends ServiceDefinition> = {
  readonly [K in keyof S['methods']]: HandlerFor<S['methods'][K]>;
};

/** Names of the methods of `S` that are of kind `K`. */
export type MethodsOfKind<S extends ServiceDefinition, K extends MethodKind> = {
  [N in keyof S['methods'] & string]: S['methods'][N]['kind'] extends K ? N : never;
}[keyof S['methods'] & string];

export type RequestOf<S extends ServiceDefinition, N extends keyof S['methods']> = z.input<
  S['methods'][N]['request']
>;

export type ResponseOf<
  S extends ServiceDefinition,
  N extends keyof S['methods'],
> = S['methods'][N] extends { readonly response: infer Res extends z.ZodType }
  ? z.output<Res>
  : never;

export type OutgoingResponseOf<
  S extends ServiceDefinition,
  N extends keyof S['methods'],
> = S['methods'][N] extends { readonly response: infer Res extends z.ZodType }
  ? z.input<Res>
  : never;

export type IncomingRequestOf<S extends ServiceDefinition, N extends keyof S['methods']> = z.output<
  S['methods'][N]['request']
>;
