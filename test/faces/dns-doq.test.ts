import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { QUICClient } from '@matrixai/quic';
import { Registry } from 'prom-client';
import {
  DnsServerError,
  DnsServerErrorCode,
  DoqErrorCode,
  startDnsServers,
} from '../../src/faces/dns/index.js';
import type { DnsServers } from '../../src/faces/dns/index.js';
import { decodeMessage } from '../../src/trustchain/dns/index.js';
import { createTestCertificate } from '../helpers/certs.js';
import { withDeadline } from '../helpers/wait.js';
import {
  UdpClient,
  doqClient,
  frame,
  ipv6Loopback,
  query,
  run,
  sample,
  testZones,
  toolPresent,
} from './dns-fixture.js';

/**
 * DNS over QUIC (RFC 9250): kdig +quic (Knot's client, nobody here wrote it) against the
 * server, and a QUIC client of our own for what kdig cannot send (a non-zero message ID, a
 * stream cut short).
 */

const kdigPresent = await toolPresent('kdig', ['--version']);
const hasIpv6 = await ipv6Loopback();
const skipKdig =
  !kdigPresent && process.env.CI !== 'true'
    ? 'kdig is not installed (Debian knot-dnsutils)'
    : false;

const A = 1;

/** Sends `bytes` on a new stream and closes its write side; returns everything read back. */
async function exchange(client: QUICClient, bytes: Uint8Array): Promise<Buffer> {
  const stream = client.connection.newStream();
  const writer = stream.writable.getWriter();
  await writer.write(bytes);
  await writer.close();
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream.readable) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('DNS over QUIC', () => {
  let servers: DnsServers;
  let registry: Registry;
  let port: number;

  before(async () => {
    registry = new Registry();
    const certificate = createTestCertificate('dns.srv.test');
    servers = await startDnsServers({
      zones: testZones(),
      registry,
      doq: {
        addresses: [{ host: '127.0.0.1', port: 0 }, ...(hasIpv6 ? [{ host: '::1', port: 0 }] : [])],
        cert: certificate.certificatePem,
        key: certificate.privateKeyPem,
      },
      limits: { doqMaxConnections: 4 },
    });
    port = servers.doq[0]!.port;
  });
  after(async () => {
    await servers.close();
  });

  async function kdig(host: string, serverPort: number, ...args: string[]) {
    const result = await withDeadline(
      run('kdig', [
        '+quic',
        `@${host}`,
        '-p',
        String(serverPort),
        '+retry=0',
        '+timeout=5',
        '+json',
        ...args,
      ]),
      30_000,
      `kdig +quic ${args.join(' ')}`,
    );
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Record<string, unknown> & {
      answerRRs?: Array<Record<string, unknown>>;
      authorityRRs?: Array<Record<string, unknown>>;
    };
  }

  it(
    'answers kdig +quic: positive, NXDOMAIN, NODATA, and a 200-record answer',
    { skip: skipKdig },
    async () => {
      const positive = await kdig('127.0.0.1', port, 'www.srv.test.', 'A');
      assert.equal(positive.ID, 0);
      assert.equal(positive.AA, 1);
      assert.deepEqual(
        positive.answerRRs?.map((rr) => rr.rdataA),
        ['192.0.2.1'],
      );
      const nx = await kdig('127.0.0.1', port, 'nope.srv.test.', 'A');
      assert.equal(nx.RCODE, 3);
      assert.deepEqual(
        nx.authorityRRs?.map((rr) => rr.TYPEname),
        ['SOA'],
      );
      const nodata = await kdig('127.0.0.1', port, 'ns.srv.test.', 'AAAA');
      assert.equal(nodata.RCODE, 0);
      assert.equal(nodata.answerRRs, undefined);
      const many = await kdig('127.0.0.1', port, 'many.srv.test.', 'A');
      assert.equal(many.TC, 0);
      assert.equal(many.answerRRs?.length, 200);
      const text = await registry.metrics();
      assert.ok(
        sample(text, 'hypermesh_dns_queries_total{transport="doq",type="A",rcode="NOERROR"}') >= 2,
      );
    },
  );

  it(
    'answers kdig +quic over IPv6',
    { skip: skipKdig || (hasIpv6 ? false : 'no IPv6 loopback') },
    async () => {
      const json = await kdig('::1', servers.doq[1]!.port, 'www.srv.test.', 'AAAA');
      assert.deepEqual(
        json.answerRRs?.map((rr) => rr.rdataAAAA),
        ['2001:db8::1'],
      );
    },
  );

  it('answers several streams on one connection', async () => {
    const { client } = await doqClient(port);
    try {
      const answers = await Promise.all(
        ['www.srv.test.', 'nope.srv.test.', 'many.srv.test.'].map((name) =>
          exchange(client, frame(query(name, A, 0))),
        ),
      );
      const messages = answers.map((bytes) => {
        assert.equal(bytes.readUInt16BE(0), bytes.length - 2);
        return decodeMessage(bytes.subarray(2));
      });
      assert.deepEqual(
        messages.map((m) => [m.id, m.rcode, m.answers.length]),
        [
          [0, 0, 1],
          [0, 3, 0],
          [0, 0, 200],
        ],
      );
      const text = await registry.metrics();
      assert.ok(sample(text, 'hypermesh_dns_connections_open{transport="doq"}') >= 1);
    } finally {
      await client.destroy({ force: true });
    }
  });

  it('closes the connection with DOQ_PROTOCOL_ERROR for a non-zero message ID (RFC 9250 §4.2.1)', async () => {
    const { client, closedWith } = await doqClient(port);
    const stream = client.connection.newStream();
    const writer = stream.writable.getWriter();
    await writer.write(frame(query('www.srv.test.', A, 0x1234)));
    await writer.close().catch(() => {});
    assert.equal(
      await withDeadline(closedWith, 10_000, 'connection close'),
      DoqErrorCode.PROTOCOL_ERROR,
    );
    await client.destroy({ force: true }).catch(() => {});
  });

  it('closes the connection with DOQ_PROTOCOL_ERROR for a message cut short by FIN', async () => {
    const { client, closedWith } = await doqClient(port);
    const stream = client.connection.newStream();
    const writer = stream.writable.getWriter();
    const full = frame(query('www.srv.test.', A, 0));
    await writer.write(full.subarray(0, full.length - 3));
    await writer.close().catch(() => {});
    assert.equal(
      await withDeadline(closedWith, 10_000, 'connection close'),
      DoqErrorCode.PROTOCOL_ERROR,
    );
    await client.destroy({ force: true }).catch(() => {});
    const text = await registry.metrics();
    assert.ok(sample(text, 'hypermesh_dns_dropped_total{transport="doq",reason="bad_frame"}') >= 2);
  });

  it('survives junk datagrams on the DoQ port', { skip: skipKdig }, async () => {
    const junk = await UdpClient.open('127.0.0.1', port);
    for (let i = 0; i < 200; i++) junk.send(randomBytes(1 + ((i * 7) % 1300)));
    // A QUIC long-header Initial with garbage after it.
    junk.send(Buffer.concat([Buffer.from([0xc0, 0, 0, 0, 1, 8]), randomBytes(1200)]));
    junk.close();
    const json = await kdig('127.0.0.1', port, 'www.srv.test.', 'A');
    assert.equal(json.RCODE, 0);
  });

  it('refuses a certificate whose key does not match', async () => {
    const certificate = createTestCertificate('a');
    await assert.rejects(
      startDnsServers({
        zones: testZones(),
        doq: {
          addresses: [{ host: '127.0.0.1', port: 0 }],
          cert: certificate.certificatePem,
          key: createTestCertificate('b').privateKeyPem,
        },
      }),
      (error: unknown) =>
        error instanceof DnsServerError && error.code === DnsServerErrorCode.DOQ_CONFIG_INVALID,
    );
  });
});

describe('DoQ connection slots', () => {
  const doqServers = async (limits: Record<string, number>, registry: Registry) => {
    const certificate = createTestCertificate('dns.srv.test');
    return startDnsServers({
      zones: testZones(),
      registry,
      doq: {
        addresses: [{ host: '127.0.0.1', port: 0 }],
        cert: certificate.certificatePem,
        key: certificate.privateKeyPem,
      },
      limits,
    });
  };
  const answers = async (client: QUICClient, what: string): Promise<void> => {
    const bytes = await withDeadline(
      exchange(client, frame(query('www.srv.test.', A, 0))),
      10_000,
      what,
    );
    assert.equal(decodeMessage(bytes.subarray(2)).answers.length, 1, what);
  };

  it('at the limit, evicts the connection idle longest with DOQ_NO_ERROR, also one holding an unfinished query', async () => {
    const registry = new Registry();
    const servers = await doqServers({ doqMaxConnections: 1 }, registry);
    const port = servers.doq[0]!.port;
    const first = await doqClient(port);
    const others: QUICClient[] = [];
    try {
      // A query stream left open (no FIN) owes nothing: it does not keep the connection from
      // eviction (else a client opening such streams would hold its slot for good). The answer
      // on a second stream, sent after it, shows the server has the first.
      const open = first.client.connection.newStream();
      const writer = open.writable.getWriter();
      await writer.write(frame(query('www.srv.test.', A, 0)).subarray(0, 5));
      await answers(first.client, 'a query beside the unfinished one');
      const second = await doqClient(port);
      others.push(second.client);
      assert.equal(
        await withDeadline(first.closedWith, 10_000, 'the idle connection closed'),
        DoqErrorCode.NO_ERROR,
      );
      await answers(second.client, 'the newcomer');
      const text = await registry.metrics();
      assert.equal(sample(text, 'hypermesh_dns_connections_refused_total{transport="doq"}'), 0);
      assert.equal(sample(text, 'hypermesh_dns_connections_evicted_total{transport="doq"}'), 1);
    } finally {
      await first.client.destroy({ force: true }).catch(() => {});
      for (const client of others) await client.destroy({ force: true }).catch(() => {});
      await servers.close();
    }
  });

  it('refuses an address over its own limit while another address is served', async () => {
    const registry = new Registry();
    const servers = await doqServers({ doqMaxConnectionsPerAddress: 1 }, registry);
    const port = servers.doq[0]!.port;
    const clients: QUICClient[] = [];
    try {
      const held = await doqClient(port, { localHost: '127.0.0.1' });
      clients.push(held.client);
      await answers(held.client, 'the first connection from 127.0.0.1');
      const second = await doqClient(port, { localHost: '127.0.0.1' });
      clients.push(second.client);
      assert.equal(
        await withDeadline(second.closedWith, 10_000, 'the second connection from 127.0.0.1'),
        DoqErrorCode.EXCESSIVE_LOAD,
      );
      const other = await doqClient(port, { localHost: '127.0.0.2' });
      clients.push(other.client);
      await answers(other.client, 'a connection from 127.0.0.2');
      await answers(held.client, 'the first connection again');
      const text = await registry.metrics();
      assert.equal(sample(text, 'hypermesh_dns_connections_refused_total{transport="doq"}'), 1);
    } finally {
      for (const client of clients) await client.destroy({ force: true }).catch(() => {});
      await servers.close();
    }
  });

  it('closes a connection that holds no query with DOQ_NO_ERROR, PINGs or not (RFC 9250 §5.5)', async () => {
    const NO_QUERY_MS = 300;
    const registry = new Registry();
    const servers = await doqServers({ doqNoQueryTimeoutMs: NO_QUERY_MS }, registry);
    const port = servers.doq[0]!.port;
    const clients: QUICClient[] = [];
    try {
      // PINGs every 50 ms reset the QUIC idle timer, not this one.
      const started = performance.now();
      const silent = await doqClient(port, { keepAliveMs: 50 });
      clients.push(silent.client);
      assert.equal(
        await withDeadline(silent.closedWith, 10_000, 'a connection that opens no stream'),
        DoqErrorCode.NO_ERROR,
      );
      assert.ok(performance.now() - started >= NO_QUERY_MS * 0.9);
      // After its last query, the same.
      const asked = await doqClient(port, { keepAliveMs: 50 });
      clients.push(asked.client);
      await answers(asked.client, 'one query');
      assert.equal(
        await withDeadline(asked.closedWith, 10_000, 'a connection idle after one query'),
        DoqErrorCode.NO_ERROR,
      );
      // Unfinished query streams, one after another, are not queries either.
      const trickling = await doqClient(port, { keepAliveMs: 50 });
      clients.push(trickling.client);
      let streams = 0;
      const trickle = setInterval(() => {
        streams += 1;
        const writer = trickling.client.connection.newStream().writable.getWriter();
        void writer.write(Uint8Array.of(0)).catch(() => {});
      }, 50);
      try {
        assert.equal(
          await withDeadline(trickling.closedWith, 10_000, 'a connection of unfinished streams'),
          DoqErrorCode.NO_ERROR,
        );
      } finally {
        clearInterval(trickle);
      }
      assert.ok(streams >= 2, `${streams} unfinished streams were opened`);
      const text = await registry.metrics();
      assert.equal(sample(text, 'hypermesh_dns_connections_evicted_total{transport="doq"}'), 3);
    } finally {
      for (const client of clients) await client.destroy({ force: true }).catch(() => {});
      await servers.close();
    }
  });
});
