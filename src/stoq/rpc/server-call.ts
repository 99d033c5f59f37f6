import type { z } from 'zod';
import { StoqError, StoqErrorCode } from '../errors.js';
import type { Session } from '../identity.js';
import type { TransportStream } from '../transport.js';
import { StreamMessageChannel } from './channel.js';
import { END, FrameReader, asStoqError } from './frame-reader.js';
import { FrameWriter } from './frame-writer.js';
import type { RpcLimits } from './limits.js';
import type { RpcLogger } from './log.js';
import { isAllowed, type CallContext, type MethodDefinition } from './service.js';
import {
  OK,
  describeIssues,
  messageFrame,
  parseRequest,
  statusFrame,
  statusText,
  wireDetail,
  type StatusCode,
} from './wire.js';
import { readCallHeader, type ReceivedCallHeader } from './call-header.js';
import { decodePayload, encodePayload } from './framing.js';

/** A registered method as the server dispatches it; handler types are checked at `register`. */
export interface RegisteredMethod {
  readonly wireName: string;
  readonly definition: MethodDefinition;
  readonly handler: (input: never, ctx: CallContext) => unknown;
}

/** What a call needs from its server. */
export interface CallHost {
  readonly limits: RpcLimits;
  readonly logger: RpcLogger;
  lookup(wireName: string): RegisteredMethod | undefined;
  countBytes(direction: 'in' | 'out', bytes: number): void;
  /** Counts the call's outcome; `method` is `unknown` until a registered method is named. */
  recordCall(method: string, code: StatusCode, seconds: number): void;
  rejectFrame(reason: string): void;
  /**
   * The call's answer was written out (the caller accepted all of it) or its stream was reset:
   * its per-peer slot is free.
   */
  finished(call: ServerCall): void;
  /** The stream is released too (after the linger). */
  release(call: ServerCall): void;
}

type CallState = 'running' | 'ending' | 'closed';

/** Wakes a finished call's reader and writer; shared, since nobody sees it but them. */
const CALL_ENDED = new StoqError(StoqErrorCode.STREAM_RESET, 'call ended');

const PROTOCOL_ERRORS: ReadonlySet<StoqErrorCode> = new Set([
  StoqErrorCode.MALFORMED_FRAME,
  StoqErrorCode.FRAME_TOO_LARGE,
]);

/**
 * One inbound call on one stream: reads the header, authorizes, validates, runs the handler,
 * answers with messages and a final status, then lingers until the caller ends its side (or
 * resets the stream after `lingerMs`). Every failure of the stream or the peer is confined to
 * this stream: the connection and other calls are untouched.
 */
export class ServerCall {
  private state: CallState = 'running';
  private readonly reader: FrameReader;
  private readonly writer: FrameWriter;
  /** Made on first use of `ctx.signal`: most handlers never look at it. */
  private abortController: AbortController | null = null;
  private abortReason: StoqError | null = null;
  private readonly startedAt = Date.now();
  private headerReceived = false;
  private counted = true;
  /** The status and everything before it were accepted by the transport; lingering began. */
  private answerWritten = false;
  private lingerSince = 0;
  private methodLabel = 'unknown';
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  private channel: StreamMessageChannel<unknown, unknown> | null = null;
  private iterator: AsyncIterator<unknown> | null = null;

  constructor(
    private readonly host: CallHost,
    readonly session: Session,
    private readonly stream: TransportStream,
  ) {
    const { limits } = host;
    this.reader = new FrameReader(stream, {
      maxMessageBytes: limits.maxMessageBytes,
      maxItems: limits.maxFrameItems,
      // The request stays undecoded, and later frames unread, until the caller is authorized.
      header: (payload) => readCallHeader(payload, limits.maxFrameItems),
      highWaterMark: limits.highWaterMark,
      onBytes: (bytes) => host.countBytes('in', bytes),
      onError: (error) => this.onStreamError(error),
    });
    this.writer = new FrameWriter(stream, {
      maxMessageBytes: limits.maxMessageBytes,
      highWaterMark: limits.highWaterMark,
      onBytes: (bytes) => host.countBytes('out', bytes),
      onError: (error) => this.onStreamError(error),
    });
  }

  /** Refuses the call before reading it (per-peer concurrency limit). */
  refuse(error: StoqError): void {
    this.reader.start();
    this.end(error);
  }

  async run(): Promise<void> {
    this.reader.start();
    let header: ReceivedCallHeader;
    try {
      const first = await this.reader.next();
      if (first === END) {
        throw new StoqError(StoqErrorCode.MALFORMED_FRAME, 'stream ended before the call header', {
          reason: 'no-header',
        });
      }
      header = first as ReceivedCallHeader;
    } catch (error) {
      // A failure of the reader itself was already reported through its onError hook.
      if (error !== this.reader.error)
        this.onStreamError(asStoqError(error, StoqErrorCode.INTERNAL));
      return;
    }
    this.headerReceived = true;
    if (this.state !== 'running') return;
    try {
      await this.dispatch(header);
    } catch (error) {
      this.end(this.handlerFailure(error));
    }
  }

  /** Periodic check (the server sweeps all calls): header, stall and linger timeouts. */
  checkTimers(now: number): void {
    const { limits } = this.host;
    if (this.state === 'ending') {
      if (this.answerWritten) {
        if (now - this.lingerSince >= limits.lingerMs) this.destroy();
      } else if (this.writeStalled(now)) {
        // The answer is queued but the caller does not read it: without this the buffers (and
        // the caller's slot) would be held for as long as the caller likes.
        this.cancel(this.stalledWriteError());
      }
      return;
    }
    if (this.state !== 'running') return;
    if (!this.headerReceived && now - this.startedAt >= limits.headerTimeoutMs) {
      this.end(
        new StoqError(
          StoqErrorCode.DEADLINE_EXCEEDED,
          `no complete call header within ${limits.headerTimeoutMs} ms`,
          { reason: 'header-timeout' },
        ),
      );
    } else if (
      this.reader.partialSince !== 0 &&
      now - this.reader.partialSince >= limits.stallTimeoutMs
    ) {
      this.end(
        new StoqError(
          StoqErrorCode.DEADLINE_EXCEEDED,
          `a frame stayed incomplete for ${limits.stallTimeoutMs} ms`,
          { reason: 'stalled-read' },
        ),
      );
    } else if (this.writeStalled(now)) {
      // The peer stopped reading: no status could reach it, so the stream is reset.
      this.cancel(this.stalledWriteError());
    }
  }

  /** A transport write has been waiting for the caller's flow-control window too long. */
  private writeStalled(now: number): boolean {
    const since = this.writer.writeStartedAt;
    return since !== 0 && now - since >= this.host.limits.stallTimeoutMs;
  }

  private stalledWriteError(): StoqError {
    return new StoqError(
      StoqErrorCode.DEADLINE_EXCEEDED,
      `the caller accepted no data for ${this.host.limits.stallTimeoutMs} ms`,
      { reason: 'stalled-write' },
    );
  }

  /** The connection is gone or the server is closing: abort the handler, reset the stream. */
  cancel(error: StoqError): void {
    if (this.state === 'closed') return;
    if (this.state === 'running') this.record(error.code);
    this.abort(error);
    this.channel?.settle(error);
    this.closeIterator();
    this.destroy();
  }

  private async dispatch(header: ReceivedCallHeader): Promise<void> {
    const method = this.host.lookup(header.method);
    if (!method) {
      throw new StoqError(StoqErrorCode.NOT_FOUND, `no method ${header.method}`, {
        method: header.method,
      });
    }
    this.methodLabel = method.wireName;
    const { definition } = method;
    if (definition.kind !== header.kind) {
      throw new StoqError(
        StoqErrorCode.INVALID_ARGUMENT,
        `${method.wireName} is a ${definition.kind} method, called as ${header.kind}`,
        { reason: 'kind' },
      );
    }
    // Authorization precedes validation: an unauthorized caller learns nothing of the schema.
    if (!isAllowed(definition.allow, this.session.peer)) {
      throw new StoqError(
        StoqErrorCode.PERMISSION_DENIED,
        `${this.session.peer.role} ${this.session.peer.name} may not call ${method.wireName}`,
        { method: method.wireName, role: this.session.peer.role },
      );
    }
    this.reader.release();
    // A bad frame that arrived with the header fails the call as soon as it is decoded.
    if (this.state !== 'running') return;
    const ctx = this.context(method.wireName, header.deadlineMs);
    if (definition.kind === 'messageStream') {
      await this.runMessageStream(method, definition, ctx);
      return;
    }
    const request = parseRequest(definition.request, this.decodeRequest(header));
    void this.watchCaller();
    const handler = method.handler as (request: unknown, ctx: CallContext) => unknown;
    switch (definition.kind) {
      case 'unary': {
        const response = await handler(request, ctx);
        if (this.state !== 'running') return;
        this.writer.enqueue(messageFrame(this.checkResponse(definition.response, response)));
        this.end(null);
        return;
      }
      case 'oneWay': {
        await handler(request, ctx);
        this.end(null);
        return;
      }
      case 'serverStream':
        await this.runServerStream(handler(request, ctx), definition.response);
        return;
    }
  }

  /** The request, decoded now that the caller may call the method. */
  private decodeRequest(header: ReceivedCallHeader): unknown {
    // parseCallHeader made sure every kind but messageStream carries one.
    const bytes = header.requestBytes as Uint8Array;
    try {
      return decodePayload(bytes, this.host.limits.maxFrameItems);
    } catch (error) {
      if (error instanceof StoqError) this.host.rejectFrame(rejectReason(error));
      throw error;
    }
  }

  private context(wireName: string, deadlineMs: number | undefined): CallContext {
    const deadline = deadlineMs === undefined ? null : Date.now() + deadlineMs;
    if (deadlineMs !== undefined) {
      this.deadlineTimer = setTimeout(() => {
        this.end(
          new StoqError(StoqErrorCode.DEADLINE_EXCEEDED, `deadline of ${deadlineMs} ms exceeded`, {
            deadlineMs,
          }),
        );
      }, deadlineMs);
    }
    const signal = (): AbortSignal => {
      if (!this.abortController) {
        this.abortController = new AbortController();
        if (this.abortReason) this.abortController.abort(this.abortReason);
      }
      return this.abortController.signal;
    };
    return {
      peer: this.session.peer,
      method: wireName,
      get signal() {
        return signal();
      },
      deadline,
    };
  }

  private abort(reason: StoqError): void {
    if (this.abortReason) return;
    this.abortReason = reason;
    this.abortController?.abort(reason);
  }

  private async runServerStream(result: unknown, schema: z.ZodType): Promise<void> {
    if (!isAsyncIterable(result)) {
      throw new StoqError(
        StoqErrorCode.INTERNAL,
        'serverStream handler returned no async iterable',
      );
    }
    const iterator = result[Symbol.asyncIterator]();
    this.iterator = iterator;
    try {
      for (;;) {
        if (this.state !== 'running') return;
        const step = await iterator.next();
        if (this.state !== 'running') return;
        if (step.done) {
          this.iterator = null;
          break;
        }
        // Pull the next response only once the caller has room: a slow reader stalls the
        // handler.
        if (!this.writer.enqueue(messageFrame(this.checkResponse(schema, step.value)))) {
          await this.writer.drain();
        }
      }
    } finally {
      // Every early exit (cancel, reset, deadline, a drain that failed, a bad response) ends
      // the handler's generator, so its `finally` releases what it holds.
      this.closeIterator();
    }
    this.end(null);
  }

  /**
   * Ends a server-stream handler's iterator, once. An async generator suspended at a `yield`
   * runs its `finally` now; one still inside `next()` does so once that step settles (the
   * return is queued behind it), which is why handlers also watch `ctx.signal`.
   */
  private closeIterator(): void {
    const iterator = this.iterator;
    if (!iterator) return;
    this.iterator = null;
    try {
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
    } catch {
      // A hand-written iterator whose `return` throws: nothing more to release here.
    }
  }

  private async runMessageStream(
    method: RegisteredMethod,
    definition: MethodDefinition & { kind: 'messageStream' },
    ctx: CallContext,
  ): Promise<void> {
    const channel = new StreamMessageChannel<unknown, unknown>(
      'server',
      this.reader,
      this.writer,
      definition.request,
      definition.response,
      {
        close: () => {
          this.end(null);
          return this.writer.finish();
        },
        fail: (error) => this.end(error),
        abort: () => this.cancel(new StoqError(StoqErrorCode.CANCELLED, 'aborted by the server')),
      },
    );
    this.channel = channel;
    const handler = method.handler as (channel: unknown, ctx: CallContext) => unknown;
    await handler(channel, ctx);
    this.end(null);
  }

  /** Reads the caller's side after its request: an end is fine, any frame is a violation. */
  private async watchCaller(): Promise<void> {
    try {
      const next = await this.reader.next();
      if (next === END || this.state !== 'running') return;
      this.onStreamError(
        new StoqError(StoqErrorCode.MALFORMED_FRAME, 'unexpected frame after the request', {
          reason: 'unexpected-frame',
        }),
      );
    } catch {
      // Reader failures arrive through onStreamError.
    }
  }

  private checkResponse(schema: z.ZodType, response: unknown): unknown {
    const parsed = schema.safeParse(response);
    if (parsed.success) return parsed.data;
    throw new ResponseSchemaError(describeIssues(parsed.error.issues));
  }

  private handlerFailure(error: unknown): StoqError {
    if (error instanceof StoqError) return error;
    const id = `${this.session.connection.id}/${this.stream.id}`;
    this.host.logger.error('rpc handler failed', {
      method: this.methodLabel,
      peer: this.session.peer.uri,
      call: id,
      error: error instanceof Error ? error.message : String(error),
      stack: error instanceof Error ? error.stack : undefined,
    });
    // The caller learns only that it failed, never the server's internals.
    return new StoqError(StoqErrorCode.INTERNAL, `internal error (call ${id})`);
  }

  private onStreamError(error: StoqError): void {
    if (this.state === 'ending') {
      // The caller reset or broke the stream after our status: nothing left to say. (A bad
      // frame after the status only stops decoding; the linger still waits for the caller.)
      if (!PROTOCOL_ERRORS.has(error.code)) this.destroy();
      return;
    }
    if (this.state !== 'running') return;
    if (PROTOCOL_ERRORS.has(error.code)) {
      this.host.rejectFrame(rejectReason(error));
      this.end(error);
      return;
    }
    if (error.code === StoqErrorCode.DEADLINE_EXCEEDED) {
      this.end(error);
      return;
    }
    this.cancel(
      new StoqError(StoqErrorCode.CANCELLED, 'the caller cancelled the call', {
        cause: error.code,
      }),
    );
  }

  /** Sends the final status (if the stream can still carry it) and starts lingering. */
  private end(error: StoqError | null): void {
    if (this.state !== 'running') return;
    this.state = 'ending';
    clearTimeout(this.deadlineTimer);
    this.record(error ? error.code : OK);
    if (error) this.abort(error);
    this.channel?.settle(error);
    this.closeIterator();
    if (!this.writer.writable) {
      this.destroy();
      return;
    }
    try {
      this.writer.enqueueEncoded(encodePayload(statusFrame(wireStatus(error))));
    } catch {
      this.writer.enqueueEncoded(encodePayload(statusFrame(wireStatus(withoutDetail(error)))));
    }
    this.writer.finish().then(
      () => this.linger(),
      () => this.destroy(),
    );
  }

  /**
   * Waits for the caller to end its side, discarding anything it still sends. Resetting at once
   * could destroy the status in flight: a QUIC receiver may discard unread data when the
   * stream is reset (RFC 9000 §3.2), and so does the memory transport.
   */
  private linger(): void {
    if (this.state !== 'ending') return;
    this.answerWritten = true;
    this.lingerSince = Date.now();
    this.uncount();
    const failure = this.reader.error;
    if (failure) {
      // After a bad frame the decoder is out of sync: drop raw bytes until the caller ends.
      if (PROTOCOL_ERRORS.has(failure.code)) void this.discardRaw();
      else this.destroy();
      return;
    }
    // Whatever the caller still sends is delimited but never decoded (nor, if the call was
    // refused before authorization, its held frames).
    this.reader.discardFrames();
    const discard = (): void => {
      if (this.state !== 'ending') return;
      try {
        for (;;) {
          const item = this.reader.poll();
          if (item === END) {
            this.destroy();
            return;
          }
          if (typeof item === 'symbol') break;
        }
      } catch {
        const failure = this.reader.error;
        if (failure && PROTOCOL_ERRORS.has(failure.code)) void this.discardRaw();
        else this.destroy();
        return;
      }
      void this.reader.wait().then(discard);
    };
    discard();
  }

  private async discardRaw(): Promise<void> {
    try {
      while (this.state === 'ending') {
        if ((await this.stream.read()) === null) {
          this.destroy(true);
          return;
        }
      }
    } catch {
      this.destroy();
    }
  }

  /**
   * Releases the call; the stream is reset unless both sides ended it cleanly (our answer fully
   * written, the caller's side finished). A write still in flight is abandoned by the reset.
   */
  private destroy(peerFinished = false): void {
    if (this.state === 'closed') return;
    const cleanEnd =
      this.state === 'ending' && this.answerWritten && (peerFinished || this.reader.done);
    this.state = 'closed';
    clearTimeout(this.deadlineTimer);
    this.uncount();
    if (!cleanEnd) this.stream.reset();
    this.reader.fail(CALL_ENDED);
    this.writer.fail(CALL_ENDED);
    this.host.release(this);
  }

  /**
   * Frees the per-peer slot once the answer (messages and status) was accepted by the transport,
   * or when the stream is released. Until then the queued answer is this node's memory, so it
   * counts against the caller's limit; a caller that never reads holds at most that many
   * answers, each for at most `stallTimeoutMs`. The slot is free before the caller even has the
   * status, so it can start its next call at once; lingering streams (nothing buffered but the
   * stream) are bounded by the transport's stream limit and `lingerMs` instead.
   */
  private uncount(): void {
    if (!this.counted) return;
    this.counted = false;
    this.host.finished(this);
  }

  private record(code: StatusCode): void {
    this.host.recordCall(this.methodLabel, code, (Date.now() - this.startedAt) / 1000);
  }
}

/** A handler returned a response its own schema rejects: a server bug, reported as INTERNAL. */
class ResponseSchemaError extends Error {}

function wireStatus(error: StoqError | null): {
  code: StatusCode;
  message: string;
  detail: Record<string, unknown>;
} {
  if (!error) return { code: OK, message: '', detail: {} };
  return { code: error.code, message: statusText(error.message), detail: wireDetail(error.detail) };
}

/** The same error without detail, for detail too large for one frame. */
function withoutDetail(error: StoqError | null): StoqError | null {
  return error ? new StoqError(error.code, error.message) : null;
}

function rejectReason(error: StoqError): string {
  if (error.code === StoqErrorCode.FRAME_TOO_LARGE) return 'too_large';
  const reason = error.detail.reason;
  return typeof reason === 'string' ? reason : 'malformed';
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function'
  );
}
