import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { startMetricsServer } from '../../src/faces/metrics-http.js';
import { withDeadline } from '../helpers/wait.js';

describe('metrics endpoint', () => {
  it('serves the registry it was given in Prometheus text format, and nothing else', async () => {
    const registry = new Registry();
    new Counter({ name: 'test_events_total', help: 'events', registers: [registry] }).inc(3);
    const server = await startMetricsServer(registry, { host: '127.0.0.1', port: 0 });
    try {
      const response = await fetch(server.url);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
      assert.match(await response.text(), /^test_events_total 3$/m);
      const other = await fetch(server.url.replace('/metrics', '/admin'));
      assert.equal(other.status, 404);
      const post = await fetch(server.url, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
    } finally {
      await server.close();
    }
  });

  it('answers a failed collection with a bare 500 and hands the error to onError', async () => {
    const registry = new Registry();
    new Gauge({
      name: 'test_broken',
      help: 'a collector that fails',
      registers: [registry],
      collect() {
        throw new Error('cannot read /var/lib/secret/state.db');
      },
    });
    const seen: unknown[] = [];
    const server = await startMetricsServer(registry, { host: '127.0.0.1', port: 0 }, (error) =>
      seen.push(error),
    );
    try {
      const response = await fetch(server.url);
      assert.equal(response.status, 500);
      assert.equal(await response.text(), 'metrics collection failed\n');
      assert.equal(seen.length, 1);
      assert.match((seen[0] as Error).message, /secret/);
    } finally {
      await server.close();
    }
  });

  it('answers headers that never finish with 408 and lets go of the connection', async () => {
    const registry = new Registry();
    new Counter({ name: 'test_events_total', help: 'events', registers: [registry] }).inc(3);
    const limits = {
      headersTimeoutMs: 200,
      requestTimeoutMs: 400,
      timeoutCheckIntervalMs: 50,
      maxConnections: 1,
    };
    const server = await startMetricsServer(
      registry,
      { host: '127.0.0.1', port: 0 },
      undefined,
      limits,
    );
    const { hostname, port } = new URL(server.url);
    // The client never closes its side, so only the server can free the connection.
    const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    socket.on('error', () => {});
    try {
      await once(socket, 'connect');
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const answered = once(socket, 'end');
      const started = performance.now();
      socket.write('GET /metrics HTTP/1.1\r\nhost: metrics.test\r\nx-slow: ');
      await withDeadline(answered, 5_000, 'an answer to a request with unfinished headers');
      const elapsed = performance.now() - started;
      assert.match(Buffer.concat(received).toString(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.ok(elapsed >= limits.headersTimeoutMs - 20, `answered after ${elapsed} ms`);
      // With room for one connection, a new one is served only if the server has destroyed
      // the first rather than half-closed it.
      const response = await withDeadline(fetch(server.url), 5_000, 'a scrape after the 408');
      assert.equal(response.status, 200);
      assert.match(await response.text(), /^test_events_total 3$/m);
    } finally {
      socket.destroy();
      await server.close();
    }
  });

  it('reports a port already in use as an error', async () => {
    const registry = new Registry();
    const first = await startMetricsServer(registry, { host: '127.0.0.1', port: 0 });
    try {
      const port = Number(new URL(first.url).port);
      await assert.rejects(startMetricsServer(registry, { host: '127.0.0.1', port }), /EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
