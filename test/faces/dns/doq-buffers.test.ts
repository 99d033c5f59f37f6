import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { QUICClient } from '@matrixai/quic';
import type { QUICStream } from '@matrixai/quic';
import { Registry } from 'prom-client';
import { DoqErrorCode, startDnsServers } from '../../../src/faces/dns/index.js';
import type { DnsServers } from '../../../src/faces/dns/index.js';
import { DOQ_CONNECTION_QUERY_BYTES, DOQ_CONNECTION_WINDOW } from '../../../src/faces/dns/doq.js';
import { decodeMessage } from '../../../src/trustchain/dns/index.js';
import { createTestCertificate } from '../../helpers/certs.js';
import { withDeadline } from '../../helpers/wait.js';
import { doqClient, frame, query, sample, testZones } from '../dns-fixture.js';

/**
 * What DoQ clients can make the server hold: reading a stream hands QUIC flow-control credit
 * back, so streams that never send FIN are bounded by the server's own count (docs/dns.md,
 * "Limits"), read here from `hypermesh_dns_doq_buffered_bytes`.
 */

const A = 1;
const BUFFERED = 'hypermesh_dns_doq_buffered_bytes';
const EXCESSIVE = 'hypermesh_dns_dropped_total{transport="doq",reason="excessive_load"}';

/** A query stream that announces the largest message and sends 60 KiB of it, without FIN. */
const partial = Buffer.alloc(2 + 60 * 1024);
partial.writeUInt16BE(65_535, 0);

async function startServer(limits: Record<string, number>) {
  const registry = new Registry();
  const certificate = createTestCertificate('dns.srv.test');
  const servers = await startDnsServers({
    zones: testZones(),
    registry,
    doq: {
      addresses: [{ host: '127.0.0.1', port: 0 }],
      cert: certificate.certificatePem,
      key: certificate.privateKeyPem,
    },
    limits,
  });
  return { servers, registry };
}

function connect(servers: DnsServers) {
  return doqClient(servers.doq[0]!.port);
}

/**
 * Writes `bytes` on a new stream without FIN. Resolves true once the client's QUIC stack took
 * them all (which needs the server's flow-control credit), false when the connection closed
 * first.
 */
async function sendOpen(
  client: QUICClient,
  closed: Promise<unknown>,
  bytes: Uint8Array,
): Promise<{ stream: QUICStream; sent: boolean }> {
  const stream = client.connection.newStream();
  const written = stream.writable
    .getWriter()
    .write(bytes)
    .then(
      () => true,
      () => false,
    );
  const sent = await withDeadline(
    Promise.race([written, closed.then(() => false)]),
    10_000,
    'a 60 KiB write or the connection closing',
  );
  return { stream, sent };
}

async function ask(client: QUICClient, name: string): Promise<number> {
  const stream = client.connection.newStream();
  const writer = stream.writable.getWriter();
  await writer.write(frame(query(name, A, 0)));
  await writer.close();
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream.readable) chunks.push(chunk);
  const answer = Buffer.concat(chunks);
  return decodeMessage(answer.subarray(2)).answers.length;
}

describe('DoQ buffered query bytes', () => {
  it('closes a connection holding more than its bound of unfinished streams with DOQ_EXCESSIVE_LOAD', async () => {
    const { servers, registry } = await startServer({});
    const attacker = await connect(servers);
    try {
      let accepted = 0;
      let peak = 0;
      // 64 streams (the default doqMaxStreams) of 60 KiB, none ended: 3.75 MiB if unbounded.
      for (let i = 0; i < 64; i++) {
        const { sent } = await sendOpen(attacker.client, attacker.closedWith, partial);
        if (!sent) break;
        accepted += partial.length;
        peak = Math.max(peak, sample(await registry.metrics(), BUFFERED));
      }
      assert.equal(
        await withDeadline(attacker.closedWith, 10_000, 'the attacking connection closed'),
        DoqErrorCode.EXCESSIVE_LOAD,
      );
      assert.ok(peak <= DOQ_CONNECTION_QUERY_BYTES, `held ${peak} bytes`);
      // The server never granted credit for much more than its bound and its QUIC window.
      assert.ok(
        accepted <= DOQ_CONNECTION_QUERY_BYTES + DOQ_CONNECTION_WINDOW + 64 * 4096,
        `the server took ${accepted} bytes of unfinished streams`,
      );
      const text = await registry.metrics();
      assert.equal(sample(text, BUFFERED), 0);
      assert.equal(sample(text, EXCESSIVE), 1);
      // Other clients are still answered.
      const next = await connect(servers);
      try {
        assert.equal(await ask(next.client, 'www.srv.test.'), 1);
      } finally {
        await next.client.destroy({ force: true });
      }
    } finally {
      await attacker.client.destroy({ force: true }).catch(() => {});
      await servers.close();
    }
  });

  it('keeps the total under doqMaxBufferedBytes by closing the connection holding the most', async () => {
    const { servers, registry } = await startServer({ doqMaxBufferedBytes: 200_000 });
    const small = await connect(servers);
    const big = await connect(servers);
    try {
      // A modest unfinished query on one connection...
      const held = Buffer.alloc(2 + 20_000);
      held.writeUInt16BE(30_000, 0);
      assert.equal((await sendOpen(small.client, small.closedWith, held)).sent, true);
      // ...and four 60 KiB ones on another, under its own bound but over the servers' total.
      for (let i = 0; i < 4; i++) {
        if (!(await sendOpen(big.client, big.closedWith, partial)).sent) break;
      }
      assert.equal(
        await withDeadline(big.closedWith, 10_000, 'the largest connection closed'),
        DoqErrorCode.EXCESSIVE_LOAD,
      );
      // The smaller connection keeps its stream and is still answered.
      assert.equal(await ask(small.client, 'www.srv.test.'), 1);
      const text = await registry.metrics();
      assert.ok(sample(text, BUFFERED) <= held.length, `held ${sample(text, BUFFERED)} bytes`);
      assert.equal(sample(text, EXCESSIVE), 1);
    } finally {
      await small.client.destroy({ force: true }).catch(() => {});
      await big.client.destroy({ force: true }).catch(() => {});
      await servers.close();
    }
  });

  it('counts answers the client gives no credit for: a connection that never reads is closed', async () => {
    const { servers, registry } = await startServer({ doqMaxBufferedBytes: 65_537 });
    // The server may send 16 bytes on each stream this client opens: every ~3.3 KB answer
    // (200 A records) waits for credit that never comes, as long as the client does not read.
    const { client, closedWith } = await doqClient(servers.doq[0]!.port, {
      config: { initialMaxStreamDataBidiLocal: 16 },
    });
    try {
      // 60 queries of ~3.3 KB answers: ~200 KB held, three times the servers' budget.
      for (let asked = 0; asked < 60; asked++) {
        try {
          const writer = client.connection.newStream().writable.getWriter();
          await writer.write(frame(query('many.srv.test.', A, 0)));
          await writer.close();
        } catch {
          break; // the connection was closed: what this test waits for
        }
      }
      assert.equal(
        await withDeadline(closedWith, 10_000, 'the connection holding unread answers closed'),
        DoqErrorCode.EXCESSIVE_LOAD,
      );
      const text = await registry.metrics();
      assert.ok(sample(text, EXCESSIVE) >= 1);
    } finally {
      await client.destroy({ force: true }).catch(() => {});
      await servers.close();
    }
  });
});
