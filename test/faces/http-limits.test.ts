import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import {
  applyHttpLimits,
  httpLimitServerOptions,
  httpLimits,
  type ClientErrorOutcome,
  type HttpLimits,
} from '../../src/faces/http-limits.js';
import { listenKeepingErrors } from '../../src/faces/listen.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

interface LimitedServer {
  readonly server: Server;
  readonly port: number;
  readonly clientErrors: ClientErrorOutcome[];
  close(): Promise<void>;
}

/** A plain HTTP server with the shared limits, answering with `handler`. */
async function limitedServer(
  overrides: Partial<HttpLimits>,
  handler: Handler,
): Promise<LimitedServer> {
  const limits = httpLimits(overrides);
  const server: Server = createServer(httpLimitServerOptions(limits), handler);
  const clientErrors: ClientErrorOutcome[] = [];
  applyHttpLimits(server, limits, (outcome) => clientErrors.push(outcome));
  await listenKeepingErrors(server, 0, '127.0.0.1');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    clientErrors,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function rawConnection(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const ASK = (path: string): string => `GET ${path} HTTP/1.1\r\nhost: limits.test\r\n\r\n`;

describe('shared HTTP limits: one request at a time per connection', () => {
  it('does not answer a thousand pipelined requests from a client that never reads', async () => {
    let handled = 0;
    const answer = Buffer.alloc(256 << 10, 'x');
    const server = await limitedServer({}, (request, response) => {
      handled++;
      response.writeHead(200, { 'content-length': answer.length });
      response.end(answer);
    });
    try {
      const accepted = once(server.server, 'connection') as Promise<[Socket]>;
      // No 'data' listener: the client reads nothing, so only the server's side can tell that
      // it closed the connection.
      const socket = await rawConnection(server.port);
      const [serverSide] = await accepted;
      const closed = once(serverSide, 'close');
      socket.write(ASK('/big').repeat(1_000));
      await withDeadline(closed, 10_000, 'the server destroying the pipelining connection');
      socket.destroy();
      // One answered, at most `maxPipelinedRequests` more once the first was written.
      assert.ok(handled >= 1 && handled <= 5, `the handler ran ${handled} times`);
      const after = handled;
      const normal = await get(server.port, '/big');
      assert.equal(normal.status, 200);
      assert.equal(normal.body.length, answer.length);
      assert.equal(handled, after + 1);
    } finally {
      await server.close();
    }
  });

  it('answers a few pipelined requests in order, each only once the one before is written', async () => {
    const started: string[] = [];
    const pending: (() => void)[] = [];
    const handlerRan = new EventEmitter();
    const server = await limitedServer({ maxPipelinedRequests: 2 }, (request, response) => {
      started.push(request.url ?? '');
      // The answer is held until the test releases it: no later request may start meanwhile.
      pending.push(() => response.end(`answer to ${request.url ?? ''}\n`));
      handlerRan.emit('started');
    });
    try {
      const socket = await rawConnection(server.port);
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.write(ASK('/one') + ASK('/two') + ASK('/three'));
      const paths = ['/one', '/two', '/three'];
      for (const [index, path] of paths.entries()) {
        await waitForCondition(
          handlerRan,
          'started',
          () => started.length > index,
          `the handler to start ${path}`,
          5_000,
        );
        // Node parses all three requests of the one read before this check runs.
        assert.deepEqual(started, paths.slice(0, index + 1));
        pending.shift()?.();
        await waitForCondition(
          socket,
          'data',
          () => Buffer.concat(received).toString().includes(`answer to ${path}\n`),
          `the answer to ${path}`,
          5_000,
        );
      }
      const text = Buffer.concat(received).toString();
      assert.deepEqual(
        [...text.matchAll(/answer to (\/\w+)/g)].map((match) => match[1]),
        paths,
      );
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  it('destroys a connection with more pipelined requests waiting than allowed', async () => {
    let handled = 0;
    const held: ServerResponse[] = [];
    const server = await limitedServer({ maxPipelinedRequests: 2 }, (request, response) => {
      handled++;
      held.push(response);
    });
    try {
      const ok = await rawConnection(server.port);
      ok.write(ASK('/a') + ASK('/b') + ASK('/c'));
      const tooMany = await rawConnection(server.port);
      const closed = once(tooMany, 'close');
      tooMany.write(ASK('/a') + ASK('/b') + ASK('/c') + ASK('/d'));
      await withDeadline(closed, 5_000, 'the connection with three requests waiting to close');
      // Each connection's first request reached the handler; none of those waiting did.
      assert.equal(handled, 2);
      assert.equal(ok.destroyed, false);
      ok.destroy();
    } finally {
      await server.close();
    }
  });

  it('never writes a 408 while an answer on the connection is unfinished', async () => {
    const limits = { headersTimeoutMs: 200, requestTimeoutMs: 400, timeoutCheckIntervalMs: 50 };
    const held: ServerResponse[] = [];
    const server = await limitedServer(limits, (request, response) => {
      // `/now` is answered at once; anything else later (as an async handler would).
      if (request.url === '/now') response.end('done\n');
      else held.push(response);
    });
    const timedOut = async (what: string, send: string): Promise<string> => {
      const socket = await rawConnection(server.port);
      const got: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => got.push(chunk));
      const closed = once(socket, 'close');
      socket.write(send);
      await withDeadline(closed, 5_000, `the server to destroy ${what}`);
      return Buffer.concat(got).toString();
    };
    const unfinished = 'GET /second HTTP/1.1\r\nhost: limits.test\r\nx-slow: ';
    try {
      // The answer to the first request is not yet written when the second, unfinished one
      // times out: a 408 now would be read as the answer to the first. The connection is cut.
      assert.equal(
        await timedOut('a connection with an answer to come', ASK('/later') + unfinished),
        '',
      );
      // Nor while a complete request waits behind the one being answered.
      assert.equal(
        await timedOut(
          'a connection with a request waiting',
          ASK('/later') + ASK('/now') + unfinished,
        ),
        '',
      );
      // Once every answer is written, the 408 answers the unfinished request.
      const answered = await timedOut(
        'a connection whose answer is written',
        ASK('/now') + unfinished,
      );
      assert.match(
        answered,
        /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\ndone\nHTTP\/1\.1 408 Request Timeout\r\n/,
      );
      // As on a connection without any request.
      assert.match(
        await timedOut('a fresh connection', unfinished),
        /^HTTP\/1\.1 408 Request Timeout\r\n/,
      );
      assert.deepEqual(server.clientErrors, Array(4).fill('request_timeout'));
    } finally {
      await server.close();
    }
  });
});
