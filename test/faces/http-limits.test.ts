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

/** A POST whose body says 100 bytes and sends 10. */
const SLOW_BODY =
  'POST /upload HTTP/1.1\r\nhost: limits.test\r\ncontent-length: 100\r\n\r\n0123456789';

/** Reads `request`'s whole body, as the ACME and OCSP handlers do before they answer. */
async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

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

  it('holds a GET that carries a body like any GET: a body does not lift the bound', async () => {
    let handled = 0;
    // Answers nothing: the first request stays under way, so what is handed on besides it shows.
    const server = await limitedServer({}, (request) => {
      handled++;
      request.resume();
    });
    try {
      const accepted = once(server.server, 'connection') as Promise<[Socket]>;
      const socket = await rawConnection(server.port);
      const [serverSide] = await accepted;
      const closed = once(serverSide, 'close');
      const withBody = 'GET /big HTTP/1.1\r\nhost: limits.test\r\ncontent-length: 1\r\n\r\nx';
      socket.write(withBody.repeat(10));
      await withDeadline(closed, 10_000, 'the server destroying the pipelining connection');
      socket.destroy();
      assert.equal(handled, 1, 'one answer under way, the others held (then too many: destroyed)');
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

  it('hands on at most as many requests with bodies as may wait, then destroys the connection', async () => {
    let handled = 0;
    const held: ServerResponse[] = [];
    const server = await limitedServer({ maxPipelinedRequests: 2 }, (request, response) => {
      handled++;
      held.push(response);
    });
    try {
      const socket = await rawConnection(server.port);
      const closed = once(socket, 'close');
      const post = 'POST /p HTTP/1.1\r\nhost: limits.test\r\ncontent-length: 1\r\n\r\nx';
      socket.write(post.repeat(1_000));
      await withDeadline(closed, 5_000, 'the server to destroy the connection');
      // Handed on at once (their bodies must be read), but no more than one and two behind it.
      assert.equal(handled, 3);
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
      // A body that does not arrive in time behind an unfinished answer: cut without a word.
      assert.equal(
        await timedOut(
          'a connection with a slow body behind an answer to come',
          ASK('/later') + SLOW_BODY,
        ),
        '',
      );
      assert.deepEqual(server.clientErrors, Array(5).fill('request_timeout'));
    } finally {
      await server.close();
    }
  });

  it('answers a slow body on a fresh connection with 408', async () => {
    const limits = { headersTimeoutMs: 200, requestTimeoutMs: 400, timeoutCheckIntervalMs: 50 };
    const server = await limitedServer(limits, (request, response) => {
      readBody(request).then(
        (body) => response.end(`got ${body.length} bytes\n`),
        () => response.destroy(),
      );
    });
    try {
      const socket = await rawConnection(server.port);
      const got: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => got.push(chunk));
      const closed = once(socket, 'close');
      socket.write(SLOW_BODY);
      await withDeadline(closed, 5_000, 'the server to close the connection with a slow body');
      // Node hands the request on once its headers are in: it is the one being answered, and
      // nothing of its answer has been written, so the 408 is its answer.
      assert.match(Buffer.concat(got).toString(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.deepEqual(server.clientErrors, ['request_timeout']);
    } finally {
      await server.close();
    }
  });

  it('reads the body of a request pipelined behind a slow answer, and answers both', async () => {
    const limits = { headersTimeoutMs: 200, requestTimeoutMs: 400, timeoutCheckIntervalMs: 50 };
    const slowStarted = new EventEmitter();
    const server = await limitedServer(limits, (request, response) => {
      if (request.method === 'GET') {
        if (request.url === '/slow') slowStarted.emit('started');
        // Answered well after the request timeout, as a revocation waiting for its commit: the
        // delay is the behaviour under test (a slow answer ahead of a pipelined POST), not a wait.
        setTimeout(() => response.end(`answer to ${request.url ?? ''}\n`), 3 * 400);
        return;
      }
      readBody(request).then(
        (body) => response.end(`got ${body.length} bytes\n`),
        () => response.destroy(),
      );
    });
    const bodyBytes = 40_000;
    const post = `POST /upload HTTP/1.1\r\nhost: limits.test\r\ncontent-length: ${bodyBytes}\r\n\r\n`;
    const half = 'b'.repeat(bodyBytes / 2);
    const exchange = async (first: string): Promise<string> => {
      const socket = await rawConnection(server.port);
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const started = once(slowStarted, 'started');
      socket.write(first + post + half);
      // The second half in a later read: the server has parsed the first by the time /slow is
      // handed on, and stopped reading if nobody reads the body.
      await withDeadline(started, 5_000, 'the server to start answering /slow');
      socket.write(half);
      await waitForCondition(
        socket,
        'data',
        () => Buffer.concat(received).toString().includes(`got ${bodyBytes} bytes\n`),
        'the answer to the POST',
        5_000,
      );
      socket.destroy();
      return Buffer.concat(received).toString();
    };
    try {
      // Node stops reading at 16 KiB of a body nobody reads: held behind /slow, the POST would
      // never be complete, its timeout would fire, and the answer to /slow would be lost.
      const answers = await exchange(ASK('/slow'));
      assert.deepEqual(
        [...answers.matchAll(/\r\n\r\n(answer to \/\w+|got \d+ bytes)\n/g)].map((m) => m[1]),
        ['answer to /slow', `got ${bodyBytes} bytes`],
      );
      // A request held before the POST is handed on with it, and answered in its turn.
      const three = await exchange(ASK('/slow') + ASK('/held'));
      assert.deepEqual(
        [...three.matchAll(/\r\n\r\n(answer to \/\w+|got \d+ bytes)\n/g)].map((m) => m[1]),
        ['answer to /slow', 'answer to /held', `got ${bodyBytes} bytes`],
      );
      assert.deepEqual(server.clientErrors, []);
    } finally {
      await server.close();
    }
  });
});
