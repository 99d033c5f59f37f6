import type { Server, ServerOptions, ServerResponse } from 'node:http';
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
 * idle timeout, the connection cap and a `clientError` handler. Malformed HTTP, an oversized
 * header block or a request that did not arrive in time is answered 400, 431 or 408 and its
 * connection destroyed: `end()` alone would only half-close it, and a client that never closes
 * its side would keep the descriptor for ever. `onClientError` counts each one.
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
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const [status, outcome]: [string, ClientErrorOutcome] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['408 Request Timeout', 'request_timeout']
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? ['431 Request Header Fields Too Large', 'bad_request']
          : ['400 Bad Request', 'bad_request'];
    onClientError(outcome);
    // As Node's own handler: no status line in the middle of a response already under way.
    const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && inFlight?.headersSent !== true) {
      socket.write(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
    }
    socket.destroy();
  });
}
