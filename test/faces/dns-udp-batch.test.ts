import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { startDnsServers } from '../../src/faces/dns/index.js';
import type { DnsServers } from '../../src/faces/dns/index.js';
import { udpBatchSupport } from '../../src/faces/dns/udp-batch.js';
import { UdpClient, query, sample, testZones } from './dns-fixture.js';

/**
 * Batched UDP (src/faces/dns/udp-batch.ts, native/udp-batch/): the addon is there on Linux,
 * answers exactly the bytes the node:dgram path answers, keeps up with bursts larger than one
 * batch, counts what it answers, and frees its port on close.
 */

const support = udpBatchSupport();
const onLinux = process.platform === 'linux';
const skip = !onLinux ? `batched UDP is Linux only (${support.reason})` : false;

const A = 1;
const AAAA = 28;
const MX = 15;

describe('batched UDP', { skip }, () => {
  let batched: DnsServers;
  let plain: DnsServers;
  let registry: Registry;

  before(async () => {
    registry = new Registry();
    batched = await startDnsServers({
      zones: testZones(),
      registry,
      udp: [{ host: '127.0.0.1', port: 0 }],
      tcp: [],
    });
    plain = await startDnsServers({
      zones: testZones(),
      udp: [{ host: '127.0.0.1', port: 0 }],
      tcp: [],
      limits: { udpBatch: false },
    });
  });
  after(async () => {
    await Promise.all([batched.close(), plain.close()]);
  });

  it('is built on Linux (npm install compiles the addon)', () => {
    assert.equal(support.available, true, support.reason);
  });

  it('answers exactly the bytes node:dgram answers', async () => {
    const toBatch = await UdpClient.open('127.0.0.1', batched.udp[0]!.port);
    const toDgram = await UdpClient.open('127.0.0.1', plain.udp[0]!.port);
    const twoQuestions = Buffer.from(query('www.srv.test.', A, 7));
    twoQuestions.writeUInt16BE(2, 4);
    const oversized = Buffer.concat([query('www.srv.test.', A, 8, false), randomBytes(60_000)]);
    const notimp = Buffer.from(query('www.srv.test.', A, 9));
    notimp[2] = (notimp[2]! & 0x87) | (2 << 3); // opcode STATUS
    const cases: [string, Uint8Array][] = [
      ['positive A', query('www.srv.test.', A, 1)],
      ['positive AAAA, no EDNS', query('www.srv.test.', AAAA, 2, false)],
      ['NXDOMAIN', query('nope.srv.test.', A, 3)],
      ['NODATA', query('www.srv.test.', MX, 4)],
      ['truncated (200 A records)', query('many.srv.test.', A, 5, false)],
      ['REFUSED (not our zone)', query('example.org.', A, 6)],
      ['QDCOUNT 2 (FORMERR)', twoQuestions],
      ['oversized junk after a query (FORMERR)', oversized],
      ['opcode STATUS (NOTIMP)', notimp],
      ['asked again (from the cache)', query('www.srv.test.', A, 10)],
    ];
    for (const [what, bytes] of cases) {
      const fromBatch = await toBatch.askRaw(bytes, `${what} (batched)`);
      const fromDgram = await toDgram.askRaw(bytes, `${what} (dgram)`);
      assert.deepEqual(fromBatch, fromDgram, what);
      assert.equal(fromBatch.readUInt16BE(0), Buffer.from(bytes).readUInt16BE(0), what);
    }
    toBatch.close();
    toDgram.close();
  });

  it('answers bursts larger than a batch, every query with its own ID, and counts them', async () => {
    const before = sample(
      await registry.metrics(),
      'hypermesh_dns_queries_total{transport="udp",type="A",rcode="NOERROR"}',
    );
    // Rounds of 2 × 48 queries in flight (more than one 64-datagram batch), each round
    // awaited, so the burst never overflows a socket buffer (UDP would drop the excess).
    const port = batched.udp[0]!.port;
    const clients = await Promise.all([
      UdpClient.open('127.0.0.1', port),
      UdpClient.open('127.0.0.1', port),
    ]);
    const perRound = 48;
    const rounds = 3;
    for (let round = 0; round < rounds; round++) {
      clients.forEach((client, c) => {
        for (let i = 0; i < perRound; i++) {
          client.send(query('www.srv.test.', A, c * 1000 + round * perRound + i));
        }
      });
      for (const [c, client] of clients.entries()) {
        await client.receivedCount((round + 1) * perRound, `client ${c}, round ${round}`);
      }
    }
    for (const [c, client] of clients.entries()) {
      const ids = client.received.map((answer) => answer.id).sort((x, y) => x - y);
      assert.deepEqual(
        ids,
        Array.from({ length: rounds * perRound }, (_, i) => c * 1000 + i),
      );
      for (const answer of client.received) assert.equal(answer.rcode, 0);
      client.close();
    }
    const afterCount = sample(
      await registry.metrics(),
      'hypermesh_dns_queries_total{transport="udp",type="A",rcode="NOERROR"}',
    );
    assert.equal(afterCount - before, clients.length * rounds * perRound);
  });

  it('drops non-queries and keeps answering', async () => {
    const client = await UdpClient.open('127.0.0.1', batched.udp[0]!.port);
    const response = Buffer.from(query('www.srv.test.', A, 11));
    response[2] = response[2]! | 0x80; // QR: a response, never answered
    client.send(Buffer.from([1, 2, 3]));
    client.send(response);
    const answer = await client.ask(query('www.srv.test.', A, 12), 'after');
    assert.equal(answer.id, 12);
    assert.equal(client.received.length, 1);
    client.close();
  });

  it('frees its port on close', async () => {
    const servers = await startDnsServers({
      zones: testZones(),
      udp: [{ host: '127.0.0.1', port: 0 }],
      tcp: [],
    });
    const { port } = servers.udp[0]!;
    const taken = dgram.createSocket('udp4');
    const refused = once(taken, 'error');
    taken.bind(port, '127.0.0.1');
    assert.equal(((await refused)[0] as NodeJS.ErrnoException).code, 'EADDRINUSE');
    taken.close();
    await servers.close();
    await servers.close();
    const reuse = dgram.createSocket('udp4');
    reuse.bind(port, '127.0.0.1');
    await once(reuse, 'listening');
    reuse.close();
  });
});
