import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Connection limits and timeouts shared by the node's public HTTP(S) servers (CT/OCSP, ACME,
 * metrics). Node's own defaults leave a connection that never finishes its headers, or never
 * reads its answers, open for minutes or for ever, and accept connections until descriptors
 * run out. See docs/ct.md ("Connection limits and timeouts").
 */

/**
 * What one client can hold on a server: a file descriptor (until `maxConnections`) and, for a
 * client that stops reading, the response being written.
 */
export interface HttpLimits {
  /** Open connections; a connection over the limit is closed at once (Node's `maxConnections`). */
  readonly maxConnections: number;
  /**
   * Open connections from one remote address; one over it is closed at once, so a single
   * client cannot take all of `maxConnections` and lock everyone else out.
   */
  readonly maxConnectionsPerAddress: number;
  /**
   * An HTTPS server's TLS handshake must finish within this (the timeouts below start only
   * after it): a connection that never says hello is closed here, not after Node's 120 s.
   */
  readonly handshakeTimeoutMs: number;
  /**
   * The request line and headers must arrive within this after the request starts; else 408.
   * At most `requestTimeoutMs` (Node refuses to start otherwise).
   */
  readonly headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this; else 408. */
  readonly requestTimeoutMs: number;
  /**
   * How often the two timeouts above are checked (Node's `connectionsCheckingInterval`), so a
   * request is cut between its timeout and its timeout plus this.
   */
  readonly timeoutCheckIntervalMs: number;
  /**
   * A connection on which no byte is read or written for this long is destroyed, whatever it
   * is doing: a client that asks for large answers and never reads them frees them here.
   */
  readonly idleTimeoutMs: number;
  /** A kept-alive connection with no new request for this long is closed. */
  readonly keepAliveTimeoutMs: number;
  /**
   * Requests one connection may have read behind the first one not yet answered; one more and
   * the connection is destroyed. A connection is answered one request at a time, so a client
   * that pipelines requests and never reads holds one answer in memory, not one per request;
   * a request with a body is the exception (`answerOneAtATime`), so up to this many more
   * answers may be under way at once.
   */
  readonly maxPipelinedRequests: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxConnections: 512,
  maxConnectionsPerAddress: 64,
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  timeoutCheckIntervalMs: 1_000,
  idleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxPipelinedRequests: 4,
};

/** How a request that never became one (Node's `clientError`) is counted. */
export type ClientErrorOutcome = 'bad_request' | 'request_timeout';

/** `DEFAULT_HTTP_LIMITS` with the limits given in `overrides`. */
export function httpLimits(overrides: Partial<HttpLimits> = {}): HttpLimits {
  return { ...DEFAULT_HTTP_LIMITS, ...overrides };
}

/**
 * The `http.createServer` / `https.createServer` options that carry `limits`: the timeouts, and
 * how often they are checked, which Node takes only when the server is created; and the TLS
 * handshake timeout (an HTTP server ignores it).
 */
export function httpLimitServerOptions(
  limits: HttpLimits,
): Pick<
  ServerOptions,
  'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval' | 'keepAliveTimeout'
> & { readonly handshakeTimeout: number } {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    handshakeTimeout: limits.handshakeTimeoutMs,
  };
}

/**
 * Applies the rest of `limits` to a server created with `httpLimitServerOptions(limits)`: the
 * idle timeout, the connection caps, one request at a time per connection, and a `clientError`
 * handler. Malformed HTTP, an oversized header block or a request that did not arrive in time is
 * answered 400, 431 or 408 and its connection destroyed: `end()` alone would only half-close it,
 * and a client that never closes its side would keep the descriptor for ever. `onClientError`
 * counts each one.
 */
export function applyHttpLimits(
  server: Server,
  limits: HttpLimits,
  onClientError: (outcome: ClientErrorOutcome) => void = () => {},
): void {
  // Without a 'timeout' listener Node destroys a socket idle for `server.timeout`.
  server.timeout = limits.idleTimeoutMs;
  server.maxConnections = limits.maxConnections;
  const perAddress = new Map<string, number>();
  server.on('connection', (socket: Duplex & { remoteAddress?: string }) => {
    const address = socket.remoteAddress ?? '';
    const open = (perAddress.get(address) ?? 0) + 1;
    if (open > limits.maxConnectionsPerAddress) {
      socket.destroy();
      return;
    }
    perAddress.set(address, open);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left === 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
  const answers = answerOneAtATime(server, limits.maxPipelinedRequests);
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const [status, outcome]: [string, ClientErrorOutcome] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['408 Request Timeout', 'request_timeout']
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? ['431 Request Header Fields Too Large', 'bad_request']
          : ['400 Bad Request', 'bad_request'];
    onClientError(outcome);
    // A status line only when it answers the request that failed: not after an answer that has
    // begun (Node's own handler checks that much), and not while an EARLIER answer on the
    // connection is unfinished, for the client would read it as the answer to that request.
    if (socket.writable && answers.mayAnswerFailure(socket)) {
      socket.write(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
    }
    socket.destroy();
  });
}

/** One connection's requests: those handed to the handler and not yet answered, those held. */
interface Connection {
  /** Handed on, their answers not yet written (`finish`) or abandoned (`close`). */
  underWay: number;
  /** Read behind those under way, each later than all of them, in order. */
  readonly waiting: (readonly [IncomingMessage, ServerResponse])[];
  /** The last request read, and its response: the parser is in its body until it completes. */
  last: readonly [IncomingMessage, ServerResponse] | null;
}

/**
 * Whether `request` says it has a body (RFC 9112 §6.3: a non-zero length, or chunks) of a
 * method that takes one. A GET or HEAD with a body is held like any other (a body there has no
 * meaning, RFC 9110 §9.3.1), so adding one does not lift the one-answer-at-a-time bound.
 */
function hasBody(request: IncomingMessage): boolean {
  if (request.method === 'GET' || request.method === 'HEAD') return false;
  const length = request.headers['content-length'];
  return (
    request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  );
}

/**
 * Hands `server`'s requests to its `request` listeners one connection-request at a time: a
 * request read while an earlier answer on its connection is unfinished waits until that answer
 * has been written to the socket (`finish`) or abandoned (`close`); more than `maxWaiting`
 * behind the first unanswered one destroys the connection. Node's parser emits every request of
 * a read chunk (64 KiB: a thousand small GETs) before it can pause a connection whose answers
 * are not read, and each handler builds and queues its whole answer; here a connection holds
 * one answer.
 *
 * Except for a request with a body: it is handed on at once, after any requests held before it,
 * as Node does without this. Node stops reading a connection once a request's unread body fills
 * its stream's buffer (16 KiB), so a held request's body would never finish arriving, the
 * request timeout would fire, and the connection would be destroyed with the earlier answer
 * unwritten (a revocation may take 120 s to answer; ACME bodies may be 64 KiB). Handed on, its
 * handler reads its body as it arrives (up to that server's body limit), and Node still writes
 * the answers in request order. Such requests still count against `maxWaiting`, so a
 * connection has at most `maxWaiting + 1` answers under way.
 *
 * `request` is intercepted at `emit` so that listeners added later (the ACME server adds its
 * own) are gated too. `mayAnswerFailure` tells whether a status line written now (Node's
 * `clientError`) would answer the failed request itself.
 */
function answerOneAtATime(
  server: Server,
  maxWaiting: number,
): { mayAnswerFailure(socket: Duplex): boolean } {
  const connections = new WeakMap<Duplex, Connection>();
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  const answer = (connection: Connection, request: IncomingMessage, response: ServerResponse) => {
    connection.underWay++;
    let done = false;
    const next = (): void => {
      if (done) return;
      done = true;
      connection.underWay--;
      // Every request waiting is later than every one under way: the first waits for them all.
      if (connection.underWay > 0) return;
      const waiting = connection.waiting.shift();
      if (waiting === undefined) return;
      const socket = request.socket;
      if (socket.destroyed || !socket.writable) {
        connection.waiting.length = 0;
        return;
      }
      answer(connection, ...waiting);
    };
    response.once('finish', next);
    response.once('close', next);
    emit('request', request, response);
  };
  server.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== 'request') return emit(event, ...args);
    const [request, response] = args as [IncomingMessage, ServerResponse];
    const socket = request.socket;
    if (socket.destroyed) return true;
    let connection = connections.get(socket);
    if (connection === undefined) {
      connection = { underWay: 0, waiting: [], last: null };
      connections.set(socket, connection);
    }
    connection.last = [request, response];
    const unanswered = connection.underWay + connection.waiting.length;
    if (unanswered === 0) {
      answer(connection, request, response);
    } else if (unanswered > maxWaiting) {
      connection.waiting.length = 0;
      socket.destroy();
    } else if (hasBody(request)) {
      for (const held of connection.waiting.splice(0)) answer(connection, ...held);
      answer(connection, request, response);
    } else {
      connection.waiting.push([request, response]);
    }
    return true;
  }) as Server['emit'];
  return {
    mayAnswerFailure: (socket) => {
      const connection = connections.get(socket);
      if (connection === undefined) return true;
      const unanswered = connection.underWay + connection.waiting.length;
      const last = connection.last;
      // The parser fails in the body of the last request read (handed on at once: a request
      // with a body is never held): it may be answered if it is the only one unanswered and its
      // response has not begun.
      if (last !== null && !last[0].complete) {
        return unanswered === 1 && !last[1].headersSent && !last[1].writableEnded;
      }
      // The parser fails in a request not yet read: every request read is earlier.
      return unanswered === 0;
    },
  };
}
