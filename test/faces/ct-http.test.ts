import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { verify } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { fromBase64, toBase64, toHex } from '../../src/crypto/bytes.js';
import { MerkleTree, verifyConsistency, verifyInclusion } from '../../src/crypto/merkle.js';
import {
  MAX_GET_ENTRIES,
  MAX_HEADER_BYTES,
  startCtHttpServer,
  type CtHttpLimits,
  type CtHttpServer,
} from '../../src/faces/ct-http.js';
import {
  openCtLog,
  treeHeadSignatureInput,
  verifyCheckpoint,
  type CtLog,
} from '../../src/trustchain/ct/index.js';
import {
  ORIGIN,
  cosign,
  makeLogKey,
  makeValidators,
  verifierSet,
  x509Entry,
} from '../trustchain/ct/fixtures.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

async function getJson(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await request(url);
  assert.match(String(response.headers['content-type']), /^application\/json/);
  return {
    status: response.status,
    json: JSON.parse(response.body.toString()) as Record<string, unknown>,
  };
}

const ROOT_CERT = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01);

/** A raw TCP connection to `url`; an error (a reset by the server) only ends it in 'close'. */
async function rawConnection(url: string, allowHalfOpen: boolean): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port), allowHalfOpen });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

describe('CT HTTP face', () => {
  let server: CtHttpServer;
  let log: CtLog;
  let db: Database.Database;
  let registry: Registry;
  const tree = new MerkleTree();
  const validators = makeValidators([1, 1, 1, 1]);
  const logKey = makeLogKey();
  const set = verifierSet(validators, {
    rfc6962Keys: [{ name: ORIGIN, publicKey: logKey.publicKey }],
  });
  const entries = [] as ReturnType<typeof x509Entry>[];

  const snapshot = (): string =>
    JSON.stringify({
      size: log.size,
      root: toHex(log.rootAt(log.size)),
      rows: ['ct_entry', 'ct_node', 'ct_tree_head', 'ct_signature'].map((t) =>
        db.prepare(`SELECT count(*) FROM ${t}`).pluck().get(),
      ),
    });

  before(async () => {
    db = new Database(':memory:');
    log = openCtLog(db, { origin: ORIGIN });
    for (const [batch, count] of [300, 301, 99].entries()) {
      const list = Array.from({ length: count }, (_, i) => x509Entry(batch, i, 1_000 + batch));
      entries.push(...list);
      for (const entry of list) tree.appendLeaf(entry.leaf);
      const { treeHead, checkpointBody } = log.appendBatch(list, 1_000 + batch);
      // The last batch stays unsigned: the served tree head is the latest *signed* one.
      if (batch < 2)
        log.addCheckpointSignatures(
          treeHead.treeSize,
          cosign(checkpointBody, validators, { head: treeHead, logKey }),
          set,
        );
    }
    registry = new Registry();
    server = await startCtHttpServer({
      log,
      host: '127.0.0.1',
      port: 0,
      roots: () => [ROOT_CERT],
      rfc6962Key: { name: ORIGIN, publicKey: logKey.publicKey },
      registry,
    });
  });

  after(async () => {
    await server.close();
  });

  it('get-sth returns the latest signed tree head with a valid RFC 6962 signature', async () => {
    const { status, json } = await getJson(`${server.url}/ct/v1/get-sth`);
    assert.equal(status, 200);
    assert.equal(json.tree_size, 601);
    assert.equal(json.timestamp, 1_001);
    assert.equal(json.sha256_root_hash, toBase64(tree.root(601)));
    const signature = fromBase64(json.tree_head_signature as string);
    const input = treeHeadSignatureInput({
      treeSize: 601,
      timestamp: 1_001,
      rootHash: tree.root(601),
    });
    assert.ok(
      verify('sha256', input, { key: logKey.publicKey, dsaEncoding: 'der' }, signature.subarray(4)),
    );
  });

  it('/checkpoint serves the signed note, which verifies with quorum', async () => {
    const response = await request(`${server.url}/checkpoint`);
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'text/plain; charset=utf-8');
    const verified = verifyCheckpoint(response.body.toString(), set);
    assert.equal(verified.checkpoint.size, 601);
    assert.equal(verified.signedWeight, 4);
  });

  it('get-sth-consistency returns RFC 9162 proofs that verify', async () => {
    for (const [first, second] of [
      [1, 700],
      [300, 601],
      [256, 512],
      [601, 601],
      [699, 700],
    ] as const) {
      const { status, json } = await getJson(
        `${server.url}/ct/v1/get-sth-consistency?first=${first}&second=${second}`,
      );
      assert.equal(status, 200, `${first} → ${second}`);
      const proof = (json.consistency as string[]).map(fromBase64);
      assert.deepEqual(proof.map(toHex), tree.consistencyProof(first, second).map(toHex));
      assert.ok(verifyConsistency(first, second, tree.root(first), tree.root(second), proof));
    }
  });

  it('get-proof-by-hash returns the index and audit path, with the hash escaped or not', async () => {
    // Pick a leaf whose base64 hash contains '+', which clients often leave unescaped.
    const index = entries.findIndex((_, i) => toBase64(tree.leafHashAt(i)).includes('+'));
    assert.ok(index >= 0);
    const hash = toBase64(tree.leafHashAt(index));
    for (const spelled of [encodeURIComponent(hash), hash]) {
      const { status, json } = await getJson(
        `${server.url}/ct/v1/get-proof-by-hash?hash=${spelled}&tree_size=650`,
      );
      assert.equal(status, 200);
      assert.equal(json.leaf_index, index);
      const path = (json.audit_path as string[]).map(fromBase64);
      assert.ok(verifyInclusion(tree.leafHashAt(index), index, 650, path, tree.root(650)));
    }
  });

  it('get-entries returns leaves and extra data, cut to the cap and the tree', async () => {
    const { status, json } = await getJson(`${server.url}/ct/v1/get-entries?start=10&end=12`);
    assert.equal(status, 200);
    const list = json.entries as Array<{ leaf_input: string; extra_data: string }>;
    assert.deepEqual(
      list.map((e) => [e.leaf_input, e.extra_data]),
      entries.slice(10, 13).map((e) => [toBase64(e.leaf), toBase64(e.extraData!)]),
    );
    const capped = await getJson(`${server.url}/ct/v1/get-entries?start=0&end=100000`);
    assert.equal((capped.json.entries as unknown[]).length, MAX_GET_ENTRIES);
    const tail = await getJson(`${server.url}/ct/v1/get-entries?start=690&end=5000`);
    assert.equal((tail.json.entries as unknown[]).length, 10);
  });

  it('get-roots returns the roots the caller supplies', async () => {
    const { status, json } = await getJson(`${server.url}/ct/v1/get-roots`);
    assert.equal(status, 200);
    assert.deepEqual(json.certificates, [toBase64(ROOT_CERT)]);
  });

  it('serves tiles and entry bundles from the store', async () => {
    const full = await request(`${server.url}/tile/0/001`);
    assert.equal(full.status, 200);
    assert.equal(full.headers['content-type'], 'application/octet-stream');
    assert.match(String(full.headers['cache-control']), /immutable/);
    assert.equal(toHex(full.body), toHex(log.tile(0, 1, 256)!));
    const partial = await request(`${server.url}/tile/0/002.p/188`);
    assert.equal(partial.status, 200);
    assert.equal(partial.body.length, 188 * 32);
    const level1 = await request(`${server.url}/tile/1/000.p/2`);
    assert.equal(level1.body.length, 64);
    const bundle = await request(`${server.url}/tile/entries/000`);
    assert.equal(bundle.status, 200);
    assert.equal(
      toHex(bundle.body.subarray(2, 2 + entries[0]!.leaf.length)),
      toHex(entries[0]!.leaf),
    );
    for (const path of [
      'tile/0/002',
      'tile/0/002.p/189',
      'tile/0/003.p/1',
      'tile/1/000',
      'tile/0/1',
      'tile/x/000',
      'tile/entries/002',
    ]) {
      const { status, json } = await getJson(`${server.url}/${path}`);
      assert.equal(status, 404, path);
      assert.equal(json.error_code, 'not_found');
    }
  });

  it('answers bad parameters with JSON 400/404 and changes nothing', async () => {
    const before = snapshot();
    const hash = encodeURIComponent(toBase64(tree.leafHashAt(5)));
    const cases: Array<[string, number]> = [
      ['/ct/v1/get-sth-consistency', 400],
      ['/ct/v1/get-sth-consistency?first=1', 400],
      ['/ct/v1/get-sth-consistency?first=abc&second=5', 400],
      ['/ct/v1/get-sth-consistency?first=-1&second=5', 400],
      ['/ct/v1/get-sth-consistency?first=1.5&second=5', 400],
      ['/ct/v1/get-sth-consistency?first=01&second=5', 400],
      ['/ct/v1/get-sth-consistency?first=0x1&second=5', 400],
      ['/ct/v1/get-sth-consistency?first=1e2&second=500', 400],
      ['/ct/v1/get-sth-consistency?first=%20&second=5', 400],
      ['/ct/v1/get-sth-consistency?first=0&second=5', 400],
      ['/ct/v1/get-sth-consistency?first=6&second=5', 400],
      ['/ct/v1/get-sth-consistency?first=1&second=701', 400],
      ['/ct/v1/get-sth-consistency?first=1&second=99999999999999999999', 400],
      ['/ct/v1/get-sth-consistency?first=1&first=2&second=5', 400],
      ['/ct/v1/get-proof-by-hash?tree_size=5', 400],
      [`/ct/v1/get-proof-by-hash?hash=${hash}`, 400],
      [`/ct/v1/get-proof-by-hash?hash=${hash}&tree_size=0`, 400],
      [`/ct/v1/get-proof-by-hash?hash=${hash}&tree_size=701`, 400],
      [`/ct/v1/get-proof-by-hash?hash=${hash}&tree_size=x`, 400],
      ['/ct/v1/get-proof-by-hash?hash=AAAA&tree_size=5', 400],
      ['/ct/v1/get-proof-by-hash?hash=%%%&tree_size=5', 400],
      [
        `/ct/v1/get-proof-by-hash?hash=${encodeURIComponent(toBase64(new Uint8Array(33)))}&tree_size=5`,
        400,
      ],
      [
        `/ct/v1/get-proof-by-hash?hash=${encodeURIComponent(toBase64(new Uint8Array(32)))}&tree_size=700`,
        404,
      ],
      [`/ct/v1/get-proof-by-hash?hash=${hash}&tree_size=5`, 404],
      ['/ct/v1/get-entries', 400],
      ['/ct/v1/get-entries?start=5', 400],
      ['/ct/v1/get-entries?start=5&end=4', 400],
      ['/ct/v1/get-entries?start=-5&end=4', 400],
      ['/ct/v1/get-entries?start=700&end=701', 400],
      ['/ct/v1/get-entries?start=a&end=b', 400],
      ['/ct/v1/nothing', 404],
      ['/', 404],
      ['/__proto__', 404],
      ['/ct/v1/get-sth/', 404],
    ];
    for (const [path, expected] of cases) {
      const { status, json } = await getJson(`${server.url}${path}`);
      assert.equal(status, expected, path);
      assert.equal(typeof json.error_code, 'string', path);
      assert.equal(typeof json.error_message, 'string', path);
    }
    assert.equal(snapshot(), before);
  });

  it('checks methods, bodies, target length and header size', async () => {
    const post = await request(`${server.url}/ct/v1/get-sth`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    const head = await request(`${server.url}/ct/v1/get-sth`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.ok(Number(head.headers['content-length']) > 0);
    const withBody = await request(`${server.url}/ct/v1/get-sth`, {
      headers: { 'content-length': '3' },
      body: 'abc',
    });
    assert.equal(withBody.status, 413);
    const long = await request(
      `${server.url}/ct/v1/get-entries?start=1&end=2&pad=${'a'.repeat(3000)}`,
    );
    assert.equal(long.status, 414);
    const huge = await request(`${server.url}/ct/v1/get-sth`, {
      headers: { 'x-pad': 'a'.repeat(MAX_HEADER_BYTES) },
    });
    assert.equal(huge.status, 431);
    assert.equal((await request(`${server.url}/ct/v1/get-sth`)).status, 200);
  });

  it('never fails on arbitrary query strings (property)', async () => {
    const before = snapshot();
    const endpoints = [
      'get-sth',
      'get-sth-consistency',
      'get-proof-by-hash',
      'get-entries',
      'get-roots',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...endpoints),
        fc.string({ maxLength: 80 }),
        async (endpoint, query) => {
          const response = await request(`${server.url}/ct/v1/${endpoint}?${encodeURI(query)}`);
          assert.ok(
            [200, 400, 404].includes(response.status),
            `${endpoint}?${query}: ${response.status}`,
          );
          JSON.parse(response.body.toString());
        },
      ),
      { numRuns: 150, seed: 42 },
    );
    assert.equal(snapshot(), before);
  });

  const withLimits = (limits: Partial<CtHttpLimits>, metrics: Registry): Promise<CtHttpServer> =>
    startCtHttpServer({
      log,
      host: '127.0.0.1',
      port: 0,
      roots: () => [ROOT_CERT],
      registry: metrics,
      limits,
    });

  it('answers headers that never finish with 408 and lets go of the connection', async () => {
    const metrics = new Registry();
    const limits = {
      headersTimeoutMs: 200,
      requestTimeoutMs: 400,
      timeoutCheckIntervalMs: 50,
      maxConnections: 1,
    };
    const short = await withLimits(limits, metrics);
    // The client never closes its side, so only the server can free the connection.
    const socket = await rawConnection(short.url, true);
    try {
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const answered = once(socket, 'end');
      const started = performance.now();
      socket.write('GET /ct/v1/get-sth HTTP/1.1\r\nhost: ct.test\r\nx-slow: ');
      await withDeadline(answered, 5_000, 'an answer to a request with unfinished headers');
      const elapsed = performance.now() - started;
      assert.match(Buffer.concat(received).toString(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.ok(elapsed >= limits.headersTimeoutMs - 20, `answered after ${elapsed} ms`);
      // With room for one connection, a new one is served only if the server has destroyed
      // the first rather than half-closed it.
      assert.equal((await request(`${short.url}/ct/v1/get-roots`)).status, 200);
      const metric = await metrics.getSingleMetric('hypermesh_ct_http_requests_total')!.get();
      const timeouts = metric.values.find(
        (v) => v.labels.endpoint === 'unknown' && v.labels.outcome === 'request_timeout',
      );
      assert.equal(timeouts?.value, 1);
    } finally {
      socket.destroy();
      await short.close();
    }
  });

  it('keeps one address from taking every connection', async () => {
    const short = await withLimits({ maxConnectionsPerAddress: 1 }, new Registry());
    const { hostname, port } = new URL(short.url);
    const from = async (localAddress: string): Promise<Socket> => {
      const socket = connect({ host: hostname, port: Number(port), localAddress });
      socket.on('error', () => {});
      await once(socket, 'connect');
      return socket;
    };
    const held = await from('127.0.0.1');
    try {
      // A second connection from the same address is closed at once, unanswered.
      const second = await from('127.0.0.1');
      const closed = once(second, 'close');
      second.write('GET /ct/v1/get-roots HTTP/1.1\r\nhost: ct.test\r\n\r\n');
      await withDeadline(closed, 5_000, 'the second connection from one address to be closed');
      // Another address is served.
      const other = await from('127.0.0.2');
      const received: Buffer[] = [];
      other.on('data', (chunk: Buffer) => received.push(chunk));
      const answered = once(other, 'end');
      other.write('GET /ct/v1/get-roots HTTP/1.1\r\nhost: ct.test\r\nconnection: close\r\n\r\n');
      await withDeadline(answered, 5_000, 'an answer to another address');
      assert.match(Buffer.concat(received).toString(), /^HTTP\/1\.1 200 /);
      other.destroy();
    } finally {
      held.destroy();
      await short.close();
    }
  });

  it('disconnects a client that asks for large answers and never reads them', async () => {
    const idleTimeoutMs = 300;
    // Request timeouts far beyond the deadline: a request cut by the last read would otherwise
    // end in a 408 and close the connection without the idle timeout. Pipelined requests may
    // wait without limit, so only the idle timeout can end the connection.
    const limits = {
      idleTimeoutMs,
      headersTimeoutMs: 60_000,
      requestTimeoutMs: 60_000,
      maxPipelinedRequests: Number.MAX_SAFE_INTEGER,
    };
    const short = await withLimits(limits, new Registry());
    try {
      // No 'data' listener: the client reads nothing (past Node's first buffer), so the server's
      // writes stall, it stops reading, and the client's own writes stall in turn.
      const socket = await rawConnection(short.url, false);
      const ask = 'GET /tile/entries/001 HTTP/1.1\r\nhost: ct.test\r\n\r\n';
      const batch = ask.repeat(1_000);
      // Far more than socket buffers hold; reaching it means the server never stalled.
      const cap = 256 << 20;
      let sent = 0;
      let lastSend = 0;
      const send = (): void => {
        if (sent >= cap) return;
        sent += batch.length;
        lastSend = performance.now();
        if (socket.write(batch)) setImmediate(send);
      };
      socket.on('drain', send);
      const closed = new Promise((resolve) => socket.once('close', resolve));
      send();
      // Loopback buffers hold tens of megabytes of answers before the server's writes stall.
      await withDeadline(closed, 20_000, 'the server dropping a connection that never reads');
      const quiet = performance.now() - lastSend;
      assert.ok(sent < cap, 'the client sent everything: the server never stopped reading');
      // The server read the last requests after they were sent, so its idle time began later.
      assert.ok(quiet >= idleTimeoutMs - 20, `dropped ${quiet} ms after the last send`);
    } finally {
      await short.close();
    }
  });

  it('builds one answer at a time for a client that pipelines get-entries and never reads', async () => {
    let built = 0;
    const calls = new EventEmitter();
    // The log, counting the `get-entries` answers the server builds.
    const counted = new Proxy(log, {
      get(target, key) {
        const value: unknown = Reflect.get(target, key, target);
        if (typeof value !== 'function') return value;
        if (key !== 'entries') return value.bind(target) as unknown;
        return (start: number, end: number) => {
          built++;
          calls.emit('entries');
          return log.entries(start, end);
        };
      },
    });
    const short = await startCtHttpServer({
      log: counted,
      host: '127.0.0.1',
      port: 0,
      roots: () => [ROOT_CERT],
      registry: new Registry(),
    });
    try {
      const socket = await rawConnection(short.url, false);
      socket.write(
        'GET /ct/v1/get-entries?start=0&end=255 HTTP/1.1\r\nhost: ct.test\r\n\r\n'.repeat(1_000),
      );
      await waitForCondition(calls, 'entries', () => built >= 1, 'the first answer', 5_000);
      // Only now does the client read: it gets what the server wrote, then the connection ends.
      const closed = once(socket, 'close');
      socket.resume();
      await withDeadline(closed, 10_000, 'the server to close the pipelining connection');
      assert.ok(built <= 5, `${built} get-entries answers built for one connection`);
      assert.equal((await getJson(`${short.url}/ct/v1/get-entries?start=0&end=1`)).status, 200);
    } finally {
      await short.close();
    }
  });

  it('counts requests by endpoint and outcome', async () => {
    await request(`${server.url}/ct/v1/get-roots`);
    await request(`${server.url}/ct/v1/get-entries?start=x&end=1`);
    const metric = await registry.getSingleMetric('hypermesh_ct_http_requests_total')!.get();
    const count = (endpoint: string, outcome: string): number =>
      metric.values.find((v) => v.labels.endpoint === endpoint && v.labels.outcome === outcome)
        ?.value ?? 0;
    assert.ok(count('get-roots', 'ok') >= 2);
    assert.ok(count('get-entries', 'bad_request') >= 1);
    assert.ok(count('tile', 'not_found') >= 1);
    assert.ok(count('unknown', 'not_found') >= 1);
    assert.ok(count('get-sth', 'method_not_allowed') >= 1);
  });
});

describe('CT HTTP face before anything is signed', () => {
  it('answers 503 for get-sth and /checkpoint, and for get-sth without a log key', async () => {
    const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    const registry = new Registry();
    const server = await startCtHttpServer({
      log,
      host: '127.0.0.1',
      port: 0,
      roots: () => [],
      registry,
    });
    try {
      for (const path of ['/ct/v1/get-sth', '/checkpoint']) {
        const { status, json } = await getJson(`${server.url}${path}`);
        assert.equal(status, 503, path);
        assert.equal(json.error_code, 'unavailable');
      }
      const validators = makeValidators([1]);
      const { checkpointBody } = log.appendBatch([x509Entry(0, 0, 1)], 1);
      log.addCheckpointSignatures(1, cosign(checkpointBody, validators), verifierSet(validators));
      assert.equal((await request(`${server.url}/checkpoint`)).status, 200);
      assert.equal((await getJson(`${server.url}/ct/v1/get-sth`)).status, 503);
      assert.equal((await getJson(`${server.url}/ct/v1/get-entries?start=0&end=0`)).status, 200);
    } finally {
      await server.close();
    }
  });
});
