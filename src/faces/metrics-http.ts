import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { listenKeepingErrors } from './listen.js';
import {
  applyHttpLimits,
  httpLimitServerOptions,
  httpLimits,
  type HttpLimits,
} from './http-limits.js';

/**
 * The Prometheus scrape endpoint: `GET /metrics` in the text exposition format. It only reads
 * the registry it is given; anything else is 404, and only GET/HEAD are allowed.
 */
export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * `onError` gets what a failed collection threw (for the node's log); the scraper gets a bare
 * 500, since the message may name files or internals. `limits`: connection limits and timeouts
 * (src/faces/http-limits.ts); each one left out is `DEFAULT_HTTP_LIMITS`'s.
 */
export async function startMetricsServer(
  registry: Registry,
  address: { host: string; port: number },
  onError: (error: unknown) => void = () => {},
  limits: Partial<HttpLimits> = {},
): Promise<MetricsServer> {
  const connectionLimits = httpLimits(limits);
  const server: Server = createServer(
    httpLimitServerOptions(connectionLimits),
    (request, response) => {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (request.url !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      registry.metrics().then(
        (text) => {
          response.writeHead(200, { 'content-type': registry.contentType });
          response.end(request.method === 'HEAD' ? undefined : text);
        },
        (error: unknown) => {
          onError(error);
          response.writeHead(500, { 'content-type': 'text/plain' });
          response.end('metrics collection failed\n');
        },
      );
    },
  );
  // Malformed HTTP, an oversized header block or a request not in on time: 400, 431 or 408.
  applyHttpLimits(server, connectionLimits);
  await listenKeepingErrors(server, address.port, address.host);
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
