import type { z } from 'zod';
import { StoqError, StoqErrorCode } from '../errors.js';
import type { Session } from '../identity.js';
import type { StoqMetrics } from '../metrics.js';
import type { TransportStream } from '../transport.js';
import { CallGuard, type CallOptions } from './call-guard.js';
import { StreamMessageChannel, type MessageChannel } from './channel.js';
import { END, FrameReader, asStoqError } from './frame-reader.js';
import { FrameWriter } from './frame-writer.js';
import { encodePayload } from './framing.js';
import { resolveRpcLimits, type RpcLimits } from './limits.js';
import { stderrLogger, type RpcLogger } from './log.js';
import {
  wireMethodName,
  type MethodDefinition,
  type MethodsOfKind,
  type RequestOf,
  type ResponseOf,
  type ServiceDefinition,
} from './service.js';
import {
  MESSAGE_FRAME,
  OK,
  encodeCallHeader,
  parseBySchema,
  parseRequest,
  parseWireFrame,
  statusError,
  type MethodKind,
  type StatusCode,
} from './wire.js';

export type { CallOptions } from './call-guard.js';

/**
 * Where a client's calls go: a fixed session, or a function that yields the current session
 * for a peer (the connection pool's `get`), so calls survive reconnection.
 */
export type SessionSource = Session | ((signal: AbortSignal | undefined) => Promise<Session>);

/**
 * The limits a client applies to its calls (defaults from `DEFAULT_RPC_LIMITS`):
 * `stallTimeoutMs` bounds how long a response frame that started arriving may wait for the rest
 * (DEADLINE_EXCEEDED, reason `stalled-read`), even in a call without deadline or signal, and
 * `lingerMs` how long, after the final status, the server may take to end its side before the
 * client resets the stream, so a server that never does cannot keep streams open on a pooled
 * connection.
 */
export type ClientLimits = Pick<
  RpcLimits,
  'maxMessageBytes' | 'maxFrameItems' | 'highWaterMark' | 'stallTimeoutMs' | 'lingerMs'
>;

export interface RpcClientOptions {
  readonly limits?: Partial<ClientLimits>;
  readonly metrics?: StoqMetrics;
  readonly logger?: RpcLogger;
}

interface CallIo {
  readonly stream: TransportStream;
  readonly reader: FrameReader;
  readonly writer: FrameWriter;
}

/** A unary or one-way call whose exchange succeeded; its outcome is not recorded yet. */
interface RequestCall<T> {
  readonly result: T;
  readonly io: CallIo;
  readonly wireName: string;
  readonly started: number;
}

/**
 * A typed client for one service: method names, requests and responses are checked by the
 * compiler from the service definition, and by its schemas at run time.
 */
export class RpcClient<S extends ServiceDefinition> {
  private readonly limits: ClientLimits;
  private readonly logger: RpcLogger;
  private readonly metrics: StoqMetrics | undefined;

  constructor(
    readonly service: S,
    private readonly source: SessionSource,
    options: RpcClientOptions = {},
  ) {
    this.limits = resolveRpcLimits(options.limits);
    this.logger = options.logger ?? stderrLogger;
    this.metrics = options.metrics;
  }

  /** One request, one response. Throws a StoqError carrying the server's status code. */
  async call<N extends MethodsOfKind<S, 'unary'>>(
    method: N,
    request: RequestOf<S, N>,
    options: CallOptions = {},
  ): Promise<ResponseOf<S, N>> {
    const { result, wireName, started } = await this.runRequestCall(
      method,
      'unary',
      request,
      options,
      async (io, guard, definition) => {
        const response = await guard.race(expectMessage(io.reader));
        const status = await guard.race(io.reader.next());
        expectOkStatus(status);
        this.endAfterStatus(io);
        return checkResponse(responseSchema(definition), response);
      },
    );
    this.record(wireName, OK, started);
    return result as ResponseOf<S, N>;
  }

  /**
   * One request, a stream of responses. The call starts when iteration does; leaving the loop
   * early cancels it. Responses are read only as fast as the loop pulls them (backpressure).
   */
  stream<N extends MethodsOfKind<S, 'serverStream'>>(
    method: N,
    request: RequestOf<S, N>,
    options: CallOptions = {},
  ): AsyncIterable<ResponseOf<S, N>> {
    const definition = this.definition(method, 'serverStream');
    const checked = parseRequest(definition.request, request);
    return {
      [Symbol.asyncIterator]: () =>
        this.runStream(
          definition,
          wireMethodName(this.service, method),
          checked,
          options,
        ) as AsyncIterator<ResponseOf<S, N>>,
    };
  }

  /**
   * A one-way message: resolves once it was handed to the transport. The server's verdict
   * arrives later; a refusal is logged and counted, not thrown.
   */
  async notify<N extends MethodsOfKind<S, 'oneWay'>>(
    method: N,
    request: RequestOf<S, N>,
    options: CallOptions = {},
  ): Promise<void> {
    const { io, wireName, started } = await this.runRequestCall(
      method,
      'oneWay',
      request,
      options,
      (io, guard) => guard.race(io.writer.finish()),
    );
    void this.collectVerdict(io, wireName, started);
  }

  /**
   * Opens a message stream: `send` messages of the method's `request` schema, iterate messages
   * of its `response` schema. Resolves once the stream is open, without a round trip; a refusal
   * (NOT_FOUND, PERMISSION_DENIED) ends the iterator and `closed` with that error and makes
   * further `send`s throw it.
   */
  async openMessageStream<N extends MethodsOfKind<S, 'messageStream'>>(
    method: N,
    options: CallOptions = {},
  ): Promise<MessageChannel<ResponseOf<S, N>, RequestOf<S, N>>> {
    const definition = this.definition(method, 'messageStream');
    const wireName = wireMethodName(this.service, method);
    const started = performance.now();
    const guard = new CallGuard(options);
    let io: CallIo | null = null;
    try {
      let channel: StreamMessageChannel<unknown, unknown> | null = null;
      const opening = await this.open(guard, (value) => channel?.noticeFrame(value));
      io = opening;
      const { stream, reader, writer } = opening;
      let recorded = false;
      const finish = (error: StoqError | null): void => {
        if (!recorded) {
          recorded = true;
          guard.dispose();
          this.record(wireName, error ? error.code : OK, started);
        }
        // Our side ends too: finished if it still can be, otherwise reset so the server's
        // linger ends now rather than at its timeout.
        if (writer.writable) this.endAfterStatus(opening);
        else stream.reset();
      };
      const opened = new StreamMessageChannel<unknown, unknown>(
        'client',
        reader,
        writer,
        responseSchema(definition),
        definition.request,
        {
          close: () => writer.finish(),
          fail: (error) => {
            stream.reset();
            opened.settle(error);
          },
          abort: () => {
            stream.reset();
            opened.settle(new StoqError(StoqErrorCode.CANCELLED, 'the message stream was aborted'));
          },
          settled: finish,
        },
      );
      channel = opened;
      guard.onTrip((error) => {
        stream.reset();
        opened.settle(error);
      });
      reader.onFailure((error) => opened.settle(error));
      this.sendHeader(io, guard, wireName, 'messageStream', undefined);
      return opened as unknown as MessageChannel<ResponseOf<S, N>, RequestOf<S, N>>;
    } catch (error) {
      guard.dispose();
      throw this.failed(error, io, wireName, started);
    }
  }

  /**
   * A call that carries one request: checks it, opens a stream, sends the header and runs
   * `exchange`. A failure anywhere up to the end of `exchange` resets the stream, is recorded
   * with its status code and is thrown as a StoqError. Recording success is the caller's: a
   * one-way call learns its outcome only later.
   */
  private async runRequestCall<T>(
    method: string,
    kind: 'unary' | 'oneWay',
    request: unknown,
    options: CallOptions,
    exchange: (io: CallIo, guard: CallGuard, definition: MethodDefinition) => Promise<T>,
  ): Promise<RequestCall<T>> {
    const definition = this.definition(method, kind);
    const wireName = wireMethodName(this.service, method);
    const checked = parseRequest(definition.request, request);
    const started = performance.now();
    const guard = new CallGuard(options);
    let io: CallIo | null = null;
    try {
      io = await this.open(guard);
      this.sendHeader(io, guard, wireName, kind, checked);
      const result = await exchange(io, guard, definition);
      return { result, io, wireName, started };
    } catch (error) {
      throw this.failed(error, io, wireName, started);
    } finally {
      guard.dispose();
    }
  }

  /** Ends a call that failed before its outcome: resets its stream and records the failure. */
  private failed(error: unknown, io: CallIo | null, wireName: string, started: number): StoqError {
    const failure = asStoqError(error, StoqErrorCode.INTERNAL);
    io?.stream.reset();
    this.record(wireName, failure.code, started);
    return failure;
  }

  private async *runStream(
    definition: MethodDefinition,
    wireName: string,
    request: unknown,
    options: CallOptions,
  ): AsyncGenerator<unknown, void, undefined> {
    const started = performance.now();
    const guard = new CallGuard(options);
    const schema = responseSchema(definition);
    let io: CallIo | null = null;
    let code: StatusCode = StoqErrorCode.CANCELLED;
    try {
      io = await this.open(guard);
      this.sendHeader(io, guard, wireName, 'serverStream', request);
      for (;;) {
        const item = await guard.race(io.reader.next());
        if (item === END) throw noStatus();
        const frame = parseWireFrame(item);
        if (frame.type === MESSAGE_FRAME) {
          yield checkResponse(schema, frame.message);
          continue;
        }
        if (frame.status.code !== OK) throw statusError(frame.status);
        code = OK;
        this.endAfterStatus(io);
        return;
      }
    } catch (error) {
      const failure = asStoqError(error, StoqErrorCode.INTERNAL);
      code = failure.code;
      throw failure;
    } finally {
      // Reached with code CANCELLED when the consumer left the loop early.
      if (code !== OK) io?.stream.reset();
      guard.dispose();
      this.record(wireName, code, started);
    }
  }

  private definition(method: string, kind: MethodKind): MethodDefinition {
    const definition = Object.prototype.hasOwnProperty.call(this.service.methods, method)
      ? this.service.methods[method]
      : undefined;
    if (!definition || definition.kind !== kind) {
      throw new StoqError(
        StoqErrorCode.NOT_FOUND,
        `${this.service.name} has no ${kind} method ${String(method)}`,
      );
    }
    return definition;
  }

  private async open(guard: CallGuard, inspect?: (value: unknown) => void): Promise<CallIo> {
    const session =
      typeof this.source === 'function'
        ? await guard.race(this.source(this.signalOf(guard)))
        : this.source;
    const opening = session.connection.openStream();
    const stream = await guard.race(opening).catch((error: unknown) => {
      // The deadline or cancellation came first: a stream opened after it has no owner, and
      // would stay open on the (pooled) connection until that closes.
      opening.then(
        (late) => late.reset(),
        () => undefined,
      );
      throw error;
    });
    guard.onTrip(() => stream.reset());
    const bytesIn = this.metrics?.bytes.labels('in');
    const bytesOut = this.metrics?.bytes.labels('out');
    const reader = new FrameReader(stream, {
      maxMessageBytes: this.limits.maxMessageBytes,
      maxItems: this.limits.maxFrameItems,
      highWaterMark: this.limits.highWaterMark,
      stallTimeoutMs: this.limits.stallTimeoutMs,
      onBytes: bytesIn ? (bytes) => bytesIn.inc(bytes) : undefined,
      inspect,
    });
    // A stalled frame fails the reader; the stream must not stay open behind it.
    reader.onFailure(() => stream.reset());
    const writer = new FrameWriter(stream, {
      maxMessageBytes: this.limits.maxMessageBytes,
      highWaterMark: this.limits.highWaterMark,
      onBytes: bytesOut ? (bytes) => bytesOut.inc(bytes) : undefined,
    });
    reader.start();
    return { stream, reader, writer };
  }

  /** The signal handed to the session source, so waiting for a connection honours the call. */
  private signalOf(guard: CallGuard): AbortSignal | undefined {
    if (!guard.cancellable) return undefined;
    const controller = new AbortController();
    guard.onTrip((error) => controller.abort(error));
    return controller.signal;
  }

  private sendHeader(
    io: CallIo,
    guard: CallGuard,
    method: string,
    kind: MethodKind,
    request: unknown,
  ): void {
    guard.check();
    const deadlineMs = guard.remainingMs();
    const header = encodeCallHeader({
      method,
      kind,
      ...(deadlineMs === undefined ? {} : { deadlineMs }),
      ...(kind === 'messageStream' ? {} : { request }),
    });
    io.writer.enqueueEncoded(encodePayload(header));
  }

  /**
   * The call has its final status: our side finishes, and the server's end of the stream must
   * follow within `lingerMs` (anything but the end, or nothing, resets the stream). A server
   * that never ends its side would otherwise leave the stream, its reader and a pending read
   * open on the connection for as long as the connection lives.
   */
  private endAfterStatus(io: CallIo): void {
    void io.writer.finish().catch(() => undefined);
    const timer = setTimeout(() => io.stream.reset(), this.limits.lingerMs);
    // Only a bound on a stream that is done for the caller: it need not keep the process up.
    timer.unref();
    io.reader.next().then(
      (item) => {
        clearTimeout(timer);
        if (item !== END) io.stream.reset();
      },
      () => {
        clearTimeout(timer);
        io.stream.reset();
      },
    );
  }

  /** Reads a one-way call's status in the background so its stream is released. */
  private async collectVerdict(io: CallIo, wireName: string, started: number): Promise<void> {
    let code: StatusCode = OK;
    try {
      expectOkStatus(await io.reader.next());
      this.endAfterStatus(io);
    } catch (error) {
      const failure = asStoqError(error, StoqErrorCode.INTERNAL);
      code = failure.code;
      this.logger.warn('one-way call refused', { method: wireName, code, error: failure.message });
      io.stream.reset();
    }
    this.record(wireName, code, started);
  }

  private record(method: string, code: StatusCode, started: number): void {
    if (!this.metrics) return;
    this.metrics.rpcCalls.inc({ method, code, side: 'client' });
    this.metrics.rpcSeconds.observe(
      { method, side: 'client' },
      (performance.now() - started) / 1000,
    );
  }
}

export function createClient<S extends ServiceDefinition>(
  service: S,
  source: SessionSource,
  options?: RpcClientOptions,
): RpcClient<S> {
  return new RpcClient(service, source, options);
}

function responseSchema(definition: MethodDefinition): z.ZodType {
  if (definition.kind === 'oneWay') {
    throw new StoqError(StoqErrorCode.INTERNAL, 'one-way methods have no response');
  }
  return definition.response;
}

/** A response the schema rejects means a broken server; gRPC reports that as INTERNAL. */
function checkResponse(schema: z.ZodType, response: unknown): unknown {
  return parseBySchema(
    schema,
    response,
    StoqErrorCode.INTERNAL,
    'response does not match its schema',
    'schema',
  );
}

async function expectMessage(reader: FrameReader): Promise<unknown> {
  const item = await reader.next();
  if (item === END) throw noStatus();
  const frame = parseWireFrame(item);
  if (frame.type === MESSAGE_FRAME) return frame.message;
  if (frame.status.code !== OK) throw statusError(frame.status);
  throw new StoqError(StoqErrorCode.MALFORMED_FRAME, 'unary call ended without a response', {
    reason: 'no-response',
  });
}

function expectOkStatus(item: unknown): void {
  if (item === END) throw noStatus();
  const frame = parseWireFrame(item);
  if (frame.type === MESSAGE_FRAME) {
    throw new StoqError(StoqErrorCode.MALFORMED_FRAME, 'more than one response to a unary call', {
      reason: 'unexpected-frame',
    });
  }
  if (frame.status.code !== OK) throw statusError(frame.status);
}

function noStatus(): StoqError {
  return new StoqError(StoqErrorCode.MALFORMED_FRAME, 'stream ended without a status', {
    reason: 'no-status',
  });
}
