import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { SchemaError } from '../../src/codec/schema.js';
import { DnsServerError, DnsServerErrorCode, startDnsServers } from '../../src/faces/dns/index.js';
import type { DnsServers } from '../../src/faces/dns/index.js';
import { MemoryZone, ZoneSet, decodeMessage, parseRecord } from '../../src/trustchain/dns/index.js';
import { withDeadline } from '../helpers/wait.js';
import {
  TcpClient,
  UdpClient,
  frame,
  ipv6Loopback,
  query,
  run,
  sample,
  testZones,
  toolPresent,
} from './dns-fixture.js';

/**
 * The UDP and TCP DNS servers: answers as dig and kdig read them, truncation and the TCP retry,
 * pipelining, malformed and oversized input, TCP abuse, and the metrics.
 */

const kdigPresent = await toolPresent('kdig', ['--version']);
const digPresent = await toolPresent('dig', ['-v']);
const hasIpv6 = await ipv6Loopback();
// In CI the tools are installed by .ci/run, so a missing one is a failure, not a skip.
const inCi = process.env.CI === 'true';
const skipKdig = !kdigPresent && !inCi ? 'kdig is not installed (Debian knot-dnsutils)' : false;
const skipDig = !digPresent && !inCi ? 'dig is not installed (Debian bind9-dnsutils)' : false;

const A = 1;
const AAAA = 28;
const TXT = 16;
const ANY = 255;

describe('UDP and TCP DNS servers', () => {
  let servers: DnsServers;
  let registry: Registry;
  let port: number;
  let port6 = 0;

  before(async () => {
    registry = new Registry();
    servers = await startDnsServers({
      zones: testZones(),
      registry,
      udp: [{ host: '127.0.0.1', port: 0 }, ...(hasIpv6 ? [{ host: '::1', port: 0 }] : [])],
      tcp: [{ host: '127.0.0.1', port: 0 }, ...(hasIpv6 ? [{ host: '::1', port: 0 }] : [])],
    });
    port = servers.udp[0]!.port;
    if (hasIpv6) port6 = servers.udp[1]!.port;
  });
  after(async () => {
    await servers.close();
  });

  it('binds UDP and TCP to one shared port per host', () => {
    assert.equal(servers.tcp[0]!.port, port);
    assert.deepEqual(servers.udp[0], { host: '127.0.0.1', port, family: 'IPv4' });
    if (hasIpv6) assert.deepEqual(servers.tcp[1], { host: '::1', port: port6, family: 'IPv6' });
  });

  async function kdig(server: string, serverPort: number, ...args: string[]) {
    const result = await withDeadline(
      run('kdig', [
        `@${server}`,
        '-p',
        String(serverPort),
        '+retry=0',
        '+timeout=5',
        '+json',
        ...args,
      ]),
      30_000,
      `kdig ${args.join(' ')}`,
    );
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Record<string, unknown> & {
      answerRRs?: Array<Record<string, unknown>>;
      authorityRRs?: Array<Record<string, unknown>>;
    };
  }

  async function dig(...args: string[]) {
    const result = await withDeadline(
      run('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=5', ...args]),
      30_000,
      `dig ${args.join(' ')}`,
    );
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  }

  it('answers kdig over UDP and TCP: positive, NXDOMAIN, NODATA', { skip: skipKdig }, async () => {
    for (const transport of ['+notcp', '+tcp']) {
      const positive = await kdig('127.0.0.1', port, transport, 'www.srv.test.', 'A');
      assert.equal(positive.RCODE, 0);
      assert.equal(positive.AA, 1);
      assert.deepEqual(
        positive.answerRRs?.map((rr) => rr.rdataA),
        ['192.0.2.1'],
      );
      const nx = await kdig('127.0.0.1', port, transport, 'nope.srv.test.', 'A');
      assert.equal(nx.RCODE, 3);
      assert.deepEqual(
        nx.authorityRRs?.map((rr) => rr.TYPEname),
        ['SOA'],
      );
      const nodata = await kdig('127.0.0.1', port, transport, 'ns.srv.test.', 'AAAA');
      assert.equal(nodata.RCODE, 0);
      assert.equal(nodata.answerRRs, undefined);
      assert.deepEqual(
        nodata.authorityRRs?.map((rr) => rr.TYPEname),
        ['SOA'],
      );
    }
  });

  it(
    'answers over IPv6',
    { skip: skipKdig || (hasIpv6 ? false : 'no IPv6 loopback') },
    async () => {
      for (const transport of ['+notcp', '+tcp']) {
        const json = await kdig('::1', port6, transport, 'www.srv.test.', 'AAAA');
        assert.deepEqual(
          json.answerRRs?.map((rr) => rr.rdataAAAA),
          ['2001:db8::1'],
        );
      }
    },
  );

  it('truncates over UDP; dig retries over TCP on the same port', { skip: skipDig }, async () => {
    const tcpBefore = sample(
      await registry.metrics(),
      'hypermesh_dns_queries_total{transport="tcp",type="A",rcode="NOERROR"}',
    );
    const ignored = await dig('+ignore', 'many.srv.test.', 'A');
    assert.match(ignored, /;; flags: [^;]*\btc\b/);
    assert.match(ignored, /ANSWER: 0,/);
    const retried = await dig('many.srv.test.', 'A');
    assert.match(retried, /Truncated, retrying in TCP mode/);
    assert.match(retried, /ANSWER: 200,/);
    assert.doesNotMatch(retried, /;; flags: [^;]*\btc\b/);
    const text = await registry.metrics();
    assert.equal(
      sample(text, 'hypermesh_dns_queries_total{transport="tcp",type="A",rcode="NOERROR"}'),
      tcpBefore + 1,
    );
    assert.ok(sample(text, 'hypermesh_dns_truncated_total{transport="udp"}') >= 2);
  });

  it('answers pipelined TCP queries sent in one write, matched by ID', async () => {
    const client = await TcpClient.connect('127.0.0.1', port);
    const asked = new Map<number, string>([
      [101, 'www.srv.test.'],
      [102, 'nope.srv.test.'],
      [103, 'ns.srv.test.'],
      [104, 'many.srv.test.'],
      [105, 'www.srv.test.'],
    ]);
    client.socket.write(Buffer.concat([...asked].map(([id, name]) => frame(query(name, A, id)))));
    const frames = await client.frameCount(asked.size, 'pipelined answers');
    const byId = new Map(frames.map((f) => decodeMessage(f)).map((m) => [m.id, m]));
    assert.deepEqual([...byId.keys()].sort(), [...asked.keys()].sort());
    for (const [id, name] of asked) assert.equal(byId.get(id)!.questions[0]!.name, name);
    assert.equal(byId.get(102)!.rcode, 3);
    assert.equal(byId.get(104)!.answers.length, 200);
    assert.equal(byId.get(104)!.truncated, false);
    client.destroy();
  });

  it('reassembles a query split at every byte boundary', async () => {
    const client = await TcpClient.connect('127.0.0.1', port);
    const bytes = frame(query('www.srv.test.', AAAA, 7));
    for (let i = 0; i < bytes.length; i++) {
      client.socket.write(bytes.subarray(i, i + 1));
      // Each byte in its own segment: wait until it is on its way before the next.
      await withDeadline(
        new Promise<void>((resolve) => client.socket.write('', () => resolve())),
        5_000,
        'write',
      );
    }
    const [answer] = await client.frameCount(1, 'split query');
    assert.equal(decodeMessage(answer!).answers[0]!.type, 'AAAA');
    client.destroy();
  });

  it('drops non-queries over UDP and keeps answering', async () => {
    const client = await UdpClient.open('127.0.0.1', port);
    client.send(Buffer.from([1, 2, 3]));
    const response = Buffer.from(query('www.srv.test.', A, 9));
    response[2] = response[2]! | 0x80; // QR: a response, which is never answered
    client.send(response);
    const ok = await client.ask(query('www.srv.test.', A, 10), 'query after junk');
    assert.equal(ok.id, 10);
    assert.equal(client.received.length, 1, 'junk got no answer');
    client.close();
  });

  it('answers malformed and oversized UDP queries with FORMERR', async () => {
    const client = await UdpClient.open('127.0.0.1', port);
    const twoQuestions = Buffer.from(query('www.srv.test.', A, 20));
    twoQuestions.writeUInt16BE(2, 4);
    const formerr = await client.ask(twoQuestions, 'QDCOUNT 2');
    assert.equal(formerr.id, 20);
    assert.equal(formerr.rcode, 1);
    // The largest datagram IPv4 carries: a query followed by junk.
    const huge = Buffer.concat([query('www.srv.test.', A, 21, false), randomBytes(65_507 - 31)]);
    const hugeAnswer = await client.ask(huge.subarray(0, 65_507), 'oversized datagram');
    assert.equal(hugeAnswer.id, 21);
    assert.equal(hugeAnswer.rcode, 1);
    // Random bytes with a valid header prefix, in rounds that each end with a real query (so a
    // round never overflows the socket buffer): junk gets a small error answer with its own ID
    // (FORMERR, NOTIMP, REFUSED...) or nothing; every real query gets its answer.
    const junkIds = new Set<number>();
    for (let round = 0; round < 15; round++) {
      for (let i = 0; i < 20; i++) {
        const junk = randomBytes(12 + ((round * 20 + i) % 200));
        junk[2] = junk[2]! & 0x7f;
        junkIds.add(junk.readUInt16BE(0));
        client.send(junk);
      }
      const id = 1000 + round;
      client.send(query('www.srv.test.', A, id));
      await client.until((m) => m.id === id, `query after fuzz round ${round}`);
    }
    for (const message of client.received.slice(2)) {
      if (message.id >= 1000 && message.id < 1015 && message.answers.length === 1) continue;
      assert.ok(junkIds.has(message.id), `an answer to junk carries its ID (${message.id})`);
      assert.equal(message.answers.length, 0);
    }
    client.close();
  });

  it('answers a maximal TCP frame of junk with FORMERR and keeps the connection', async () => {
    const client = await TcpClient.connect('127.0.0.1', port);
    const junk = Buffer.concat([query('www.srv.test.', A, 30, false), randomBytes(65_535)]);
    client.socket.write(frame(junk.subarray(0, 65_535)));
    client.socket.write(frame(query('www.srv.test.', A, 31)));
    const [first, second] = await client.frameCount(2, 'junk then query');
    assert.equal(decodeMessage(first!).rcode, 1);
    assert.equal(decodeMessage(second!).id, 31);
    client.destroy();
  });

  it('ends a TCP connection on a zero-length frame, after answering what came before', async () => {
    const client = await TcpClient.connect('127.0.0.1', port);
    client.socket.write(Buffer.concat([frame(query('www.srv.test.', A, 40)), Buffer.alloc(2)]));
    await withDeadline(client.closed, 10_000, 'server closes after a zero-length frame');
    assert.equal(client.frames.length, 1);
    assert.equal(decodeMessage(client.frames[0]!).id, 40);
    const text = await registry.metrics();
    assert.ok(sample(text, 'hypermesh_dns_dropped_total{transport="tcp",reason="bad_frame"}') >= 1);
  });

  it('refuses bad options with precise errors', async () => {
    const zones = testZones();
    await assert.rejects(
      startDnsServers({ zones, udp: [{ host: 'localhost', port: 0 }] }),
      (error: unknown) =>
        error instanceof SchemaError &&
        /dns\.udp\[0\]\.host: expected an IPv4 or IPv6/.test(error.message),
    );
    await assert.rejects(
      startDnsServers({ zones, tcp: [{ host: '127.0.0.1', port: 65_536 }] }),
      (error: unknown) => error instanceof SchemaError && /dns\.tcp\[0\]\.port/.test(error.message),
    );
    await assert.rejects(
      startDnsServers({ zones, limits: { tcpMaxConnections: 0 } }),
      (error: unknown) => error instanceof SchemaError && /tcpMaxConnections/.test(error.message),
    );
    // The TCP port is taken by the running server: the UDP socket started first is closed again.
    await assert.rejects(
      startDnsServers({
        zones,
        udp: [{ host: '127.0.0.1', port: 0 }],
        tcp: [{ host: '127.0.0.1', port }],
      }),
      (error: unknown) =>
        error instanceof DnsServerError && error.code === DnsServerErrorCode.LISTEN_FAILED,
    );
  });
});

describe('TCP limits', () => {
  let servers: DnsServers;
  let registry: Registry;
  let port: number;
  const IDLE_MS = 300;

  before(async () => {
    registry = new Registry();
    servers = await startDnsServers({
      zones: testZones(),
      registry,
      udp: [{ host: '127.0.0.1', port: 0 }],
      tcp: [{ host: '127.0.0.1', port: 0 }],
      limits: { tcpIdleTimeoutMs: IDLE_MS, tcpMaxConnections: 3, tcpMaxPendingQueries: 8 },
    });
    port = servers.tcp[0]!.port;
  });
  after(async () => {
    await servers.close();
  });

  it('closes a connection that trickles a partial frame (slowloris) at the idle timeout', async () => {
    const client = await TcpClient.connect('127.0.0.1', port);
    const started = performance.now();
    // A length prefix announcing 100 bytes, then only some of them in several writes: partial
    // bytes are not activity, so they do not push the idle timeout back.
    client.socket.write(Buffer.from([0, 100, 1, 2, 3]));
    for (let i = 0; i < 20; i++) client.socket.write(Buffer.from([i]));
    await withDeadline(client.closed, IDLE_MS * 20, 'the idle timeout closes a slowloris');
    assert.ok(performance.now() - started >= IDLE_MS * 0.9);
    assert.equal(client.frames.length, 0);
  });

  it('closes an idle connection gracefully', async () => {
    const client = await TcpClient.connect('127.0.0.1', port);
    client.socket.write(frame(query('www.srv.test.', A, 1)));
    await client.frameCount(1, 'answer');
    const ended = once(client.socket, 'end');
    await withDeadline(ended, IDLE_MS * 20, 'server sends FIN after the idle timeout');
    client.destroy();
  });

  it('stops reading from a peer that never reads, keeps serving others, closes it when idle', async () => {
    const before = sample(
      await registry.metrics(),
      'hypermesh_dns_queries_total{transport="tcp",type="ANY",rcode="NOERROR"}',
    );
    // 400,000 queries (14 MB, more than the kernel buffers between the two sockets hold) whose
    // answers are ~3.3 kB each: over 1 GB if the server wrote them all. Built before connecting,
    // so the connection is busy from its first moment; the client's write stays pending until
    // the server cuts the connection, which the client then sees as a write error.
    const QUERIES = 400_000;
    const one = frame(query('many.srv.test.', ANY, 1));
    const batch = Buffer.alloc(one.length * QUERIES);
    for (let i = 0; i < QUERIES; i++) one.copy(batch, i * one.length);
    const client = await TcpClient.connect('127.0.0.1', port);
    client.socket.pause();
    client.socket.write(batch);
    const udp = await UdpClient.open('127.0.0.1', servers.udp[0]!.port);
    const ok = await udp.ask(query('www.srv.test.', A, 77), 'UDP while a TCP peer is stuck');
    assert.equal(ok.answers.length, 1);
    udp.close();
    await withDeadline(client.closed, 30_000, 'a peer that never reads is closed');
    const answered =
      sample(
        await registry.metrics(),
        'hypermesh_dns_queries_total{transport="tcp",type="ANY",rcode="NOERROR"}',
      ) - before;
    assert.ok(answered > 0, 'some answers were written');
    assert.ok(answered < 20_000, `the server stopped reading (answered ${answered})`);
  });
});

describe('TCP connection slots', () => {
  // Long enough that no connection here is closed for idleness while a test runs.
  const IDLE_MS = 60_000;
  const tcpServers = (limits: Record<string, number>, registry: Registry) =>
    startDnsServers({
      zones: testZones(),
      registry,
      udp: [],
      tcp: [{ host: '127.0.0.1', port: 0 }],
      limits: { tcpIdleTimeoutMs: IDLE_MS, ...limits },
    });
  const answered = async (client: TcpClient, id: number, what: string): Promise<void> => {
    const before = client.frames.length;
    client.socket.write(frame(query('www.srv.test.', A, id)));
    const frames = await client.frameCount(before + 1, what);
    assert.equal(decodeMessage(frames[before]!).answers.length, 1, what);
  };

  it('refuses an address over its own limit while another address is served', async () => {
    const registry = new Registry();
    const servers = await tcpServers(
      { tcpMaxConnectionsPerAddress: 2, tcpMaxConnections: 8 },
      registry,
    );
    const port = servers.tcp[0]!.port;
    const clients: TcpClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        clients.push(await TcpClient.connect('127.0.0.1', port, '127.0.0.1'));
        await answered(clients[i]!, i, `client ${i} from 127.0.0.1`);
      }
      const third = await TcpClient.connect('127.0.0.1', port, '127.0.0.1');
      clients.push(third);
      third.socket.write(frame(query('www.srv.test.', A, 9)));
      await withDeadline(third.closed, 10_000, 'the third connection from 127.0.0.1 is closed');
      assert.equal(third.frames.length, 0);
      const other = await TcpClient.connect('127.0.0.1', port, '127.0.0.2');
      clients.push(other);
      await answered(other, 10, 'a client from 127.0.0.2');
      // The two held connections from 127.0.0.1 were not touched.
      await answered(clients[0]!, 11, 'client 0 again');
      const text = await registry.metrics();
      assert.equal(sample(text, 'hypermesh_dns_connections_refused_total{transport="tcp"}'), 1);
      assert.equal(sample(text, 'hypermesh_dns_connections_open{transport="tcp"}'), 3);
    } finally {
      for (const client of clients) client.destroy();
      await servers.close();
    }
  });

  it('at the limit, a new connection takes the slot of the one idle longest', async () => {
    const registry = new Registry();
    const servers = await tcpServers({ tcpMaxConnections: 3 }, registry);
    const port = servers.tcp[0]!.port;
    const clients: TcpClient[] = [];
    try {
      // Answered in order, so client 0 has been idle the longest.
      for (let i = 0; i < 3; i++) {
        clients.push(await TcpClient.connect('127.0.0.1', port));
        await answered(clients[i]!, i, `client ${i}`);
      }
      await answered(clients[1]!, 3, 'client 1 again');
      const newcomer = await TcpClient.connect('127.0.0.1', port);
      clients.push(newcomer);
      await answered(newcomer, 4, 'the newcomer');
      await withDeadline(clients[0]!.closed, 10_000, 'the connection idle longest is closed');
      await answered(clients[1]!, 5, 'client 1 after the eviction');
      await answered(clients[2]!, 6, 'client 2 after the eviction');
      const text = await registry.metrics();
      assert.equal(sample(text, 'hypermesh_dns_connections_evicted_total{transport="tcp"}'), 1);
      assert.equal(sample(text, 'hypermesh_dns_connections_refused_total{transport="tcp"}'), 0);
      assert.equal(sample(text, 'hypermesh_dns_connections_open{transport="tcp"}'), 3);
    } finally {
      for (const client of clients) client.destroy();
      await servers.close();
    }
  });
  it('at the limit, evicts a connection whose client takes none of its answers', async () => {
    // ~52 KB answers: one read of queries asks for far more than the kernel buffers between
    // the sockets hold, so once the client stops reading, the server's writes never complete
    // (the connection is busy from its first answer on, never idle again).
    const zones = new ZoneSet([
      MemoryZone.build('stall.test.', [
        parseRecord({
          name: 'stall.test.',
          type: 'SOA',
          ttl: 60,
          data: {
            mname: 'ns.stall.test.',
            rname: 'h.stall.test.',
            serial: 1,
            refresh: 60,
            retry: 60,
            expire: 60,
            minimum: 60,
          },
        }),
        parseRecord({ name: 'stall.test.', type: 'NS', ttl: 60, data: { host: 'ns.stall.test.' } }),
        ...Array.from({ length: 200 }, (_, i) =>
          parseRecord({
            name: 'big.stall.test.',
            type: 'TXT',
            ttl: 60,
            data: { strings: [`${i}`.padEnd(250, '.')] },
          }),
        ),
        parseRecord({
          name: 'www.stall.test.',
          type: 'A',
          ttl: 60,
          data: { address: '192.0.2.1' },
        }),
      ]),
    ]);
    const registry = new Registry();
    const servers = await startDnsServers({
      zones,
      registry,
      udp: [],
      tcp: [{ host: '127.0.0.1', port: 0 }],
      limits: { tcpIdleTimeoutMs: IDLE_MS, tcpMaxConnections: 1, tcpWriteStallMs: 1 },
    });
    const port = servers.tcp[0]!.port;
    const clients: TcpClient[] = [];
    try {
      const stuck = await TcpClient.connect('127.0.0.1', port);
      clients.push(stuck);
      // It reads its first answer, then nothing more.
      stuck.socket.once('frame', () => stuck.socket.pause());
      const one = frame(query('big.stall.test.', TXT, 1));
      stuck.socket.write(Buffer.concat(Array.from({ length: 400 }, () => one)));
      await stuck.frameCount(1, 'the first answer');
      // Newcomers are refused until its writes have made no progress for tcpWriteStallMs; each
      // attempt ends with an answer or with the server closing it.
      let newcomer: TcpClient | undefined;
      for (let attempt = 0; newcomer === undefined && attempt < 2_000; attempt++) {
        const client = await TcpClient.connect('127.0.0.1', port, '127.0.0.2');
        clients.push(client);
        client.socket.write(frame(query('www.stall.test.', A, 2)));
        try {
          await client.frameCount(1, 'a newcomer');
          newcomer = client;
        } catch {
          client.destroy();
        }
      }
      assert.ok(newcomer, 'a newcomer takes the slot of the stalled connection');
      // Reading again (and dropping what it reads), the stalled client finds its connection cut.
      stuck.socket.removeAllListeners('data');
      stuck.socket.resume();
      await withDeadline(stuck.closed, 10_000, 'the stalled connection is closed');
      const text = await registry.metrics();
      assert.equal(sample(text, 'hypermesh_dns_connections_evicted_total{transport="tcp"}'), 1);
      assert.equal(sample(text, 'hypermesh_dns_connections_open{transport="tcp"}'), 1);
    } finally {
      for (const client of clients) client.destroy();
      await servers.close();
    }
  });

  it('at the limit, evicts a connection the server is closing whose peer holds its side open', async () => {
    const registry = new Registry();
    const servers = await tcpServers({ tcpMaxConnections: 1 }, registry);
    const port = servers.tcp[0]!.port;
    // A zero-length frame makes the server end the connection (FIN); this peer never sends its
    // own FIN, so the connection would otherwise hold the only slot until the idle timer.
    const holder = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    holder.on('error', () => {});
    const clients: TcpClient[] = [];
    try {
      await withDeadline(once(holder, 'connect'), 10_000, 'the holder connects');
      const ended = once(holder, 'end');
      holder.write(Buffer.from([0, 0]));
      await withDeadline(ended, 10_000, "the server's FIN");
      const newcomer = await TcpClient.connect('127.0.0.1', port, '127.0.0.2');
      clients.push(newcomer);
      await answered(newcomer, 1, 'the newcomer');
      const text = await registry.metrics();
      assert.equal(sample(text, 'hypermesh_dns_connections_evicted_total{transport="tcp"}'), 1);
      assert.equal(sample(text, 'hypermesh_dns_connections_refused_total{transport="tcp"}'), 0);
    } finally {
      holder.destroy();
      for (const client of clients) client.destroy();
      await servers.close();
    }
  });
});

describe('metrics', () => {
  it('counts queries by transport, type and rcode, latency, truncation and drops', async () => {
    const registry = new Registry();
    const servers = await startDnsServers({
      zones: testZones(),
      registry,
      udp: [{ host: '127.0.0.1', port: 0 }],
      tcp: [{ host: '127.0.0.1', port: 0 }],
    });
    try {
      const port = servers.udp[0]!.port;
      const udp = await UdpClient.open('127.0.0.1', port);
      await udp.ask(query('www.srv.test.', A, 1), 'A');
      await udp.ask(query('www.srv.test.', A, 2), 'A');
      await udp.ask(query('nope.srv.test.', AAAA, 3), 'NXDOMAIN');
      await udp.ask(query('many.srv.test.', A, 4), 'TC');
      udp.send(Buffer.from([0]));
      await udp.ask(query('www.srv.test.', 65_000, 5), 'unknown type');
      udp.close();
      const tcp = await TcpClient.connect('127.0.0.1', port);
      tcp.socket.write(frame(query('www.srv.test.', AAAA, 6)));
      await tcp.frameCount(1, 'TCP AAAA');
      const text = await registry.metrics();
      const q = (labels: string) => sample(text, `hypermesh_dns_queries_total{${labels}}`);
      assert.equal(q('transport="udp",type="A",rcode="NOERROR"'), 3);
      assert.equal(q('transport="udp",type="AAAA",rcode="NXDOMAIN"'), 1);
      assert.equal(q('transport="udp",type="OTHER",rcode="NOERROR"'), 1);
      assert.equal(q('transport="tcp",type="AAAA",rcode="NOERROR"'), 1);
      assert.equal(sample(text, 'hypermesh_dns_truncated_total{transport="udp"}'), 1);
      assert.equal(
        sample(text, 'hypermesh_dns_dropped_total{transport="udp",reason="not_query"}'),
        1,
      );
      assert.equal(sample(text, 'hypermesh_dns_query_duration_seconds_count{transport="udp"}'), 5);
      assert.equal(
        sample(text, 'hypermesh_dns_query_duration_seconds_bucket{le="+Inf",transport="udp"}'),
        5,
      );
      assert.ok(sample(text, 'hypermesh_dns_query_duration_seconds_sum{transport="udp"}') > 0);
      assert.equal(sample(text, 'hypermesh_dns_connections_open{transport="tcp"}'), 1);
      assert.match(text, /# TYPE hypermesh_dns_query_duration_seconds histogram/);
      tcp.destroy();
    } finally {
      await servers.close();
    }
  });
});

describe('close', () => {
  it('ends open TCP connections and frees the ports', async () => {
    const servers = await startDnsServers({
      zones: testZones(),
      udp: [{ host: '127.0.0.1', port: 0 }],
      tcp: [{ host: '127.0.0.1', port: 0 }],
    });
    const port = servers.tcp[0]!.port;
    const client = await TcpClient.connect('127.0.0.1', port);
    client.socket.write(frame(query('www.srv.test.', A, 1)));
    await client.frameCount(1, 'answer before close');
    const ended = once(client.socket, 'end');
    const closing = servers.close();
    await withDeadline(ended, 10_000, 'the server ends the connection');
    client.socket.end();
    await withDeadline(closing, 10_000, 'close resolves');
    // The ports are free again.
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, '127.0.0.1', () => resolve());
    });
    udp.close();
    const tcp = net.createServer();
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
  });
});
