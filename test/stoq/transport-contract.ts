import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import type {
  SocketAddress,
  Transport,
  TransportConnection,
  TransportStream,
} from '../../src/stoq/transport.js';
import { isStoqError } from '../helpers/stoq-error.js';

/**
 * The one contract every STOQ transport implementation passes (memory, tls, quic). Each
 * `transport-<kind>.test.ts` calls `transportContract` with a fixture that knows how to make
 * that kind of transport. Every test waits for events (never for time); node:test's per-test
 * timeout is the deadline.
 */

export interface TransportUnderTest {
  readonly transport: Transport;
  /** The raw Ed25519 key the peer must see as `peerKey`, or null for an anonymous transport. */
  readonly publicKey: Uint8Array | null;
}

export interface UnresponsiveEndpoint {
  readonly address: SocketAddress;
  /** Settles once the first connection attempt reached the endpoint. */
  readonly reached: Promise<void>;
  close(): Promise<void>;
}

export interface ContractFixture {
  /** Hosts to run the whole suite on, e.g. `['127.0.0.1', '::1']`. */
  readonly hosts: readonly string[];
  /** A transport with a fresh identity (listens and dials). */
  create(): Promise<TransportUnderTest>;
  /** A transport without identity (dials only); the listener then sees `peerKey === null`. */
  createAnonymous?(): Promise<TransportUnderTest>;
  /** An address on `host` where nothing listens. */
  closedAddress(host: string): Promise<SocketAddress>;
  /** An endpoint that takes connection attempts but never completes a handshake. */
  unresponsive?(host: string): Promise<UnresponsiveEndpoint>;
  /** Upper bound on bytes one stream accepts while its peer reads nothing. */
  readonly maxUnreadBytes: number;
  /** Per-test deadline in milliseconds. */
  readonly timeoutMs?: number;
}

const CHUNK = 64 * 1024;

function sha256(parts: readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

async function readAll(stream: TransportStream): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const chunk = await stream.read();
    if (chunk === null) return parts;
    parts.push(chunk);
  }
}

function concat(parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((part) => Buffer.from(part.buffer, part.byteOffset, part.length)));
}

async function writeAll(stream: TransportStream, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.length; offset += CHUNK) {
    await stream.write(data.subarray(offset, offset + CHUNK));
  }
}

/** Echoes every byte of every accepted stream back, then finishes; ends when the connection does. */
function serveEcho(connection: TransportConnection): void {
  void (async () => {
    for (;;) {
      const stream = await connection.acceptStream();
      if (stream === null) return;
      void (async () => {
        for (;;) {
          const chunk = await stream.read();
          if (chunk === null) break;
          await stream.write(chunk);
        }
        await stream.finish();
      })().catch(() => stream.reset());
    }
  })();
}

async function roundTrip(stream: TransportStream, payload: Uint8Array): Promise<void> {
  await stream.write(payload);
  let received = 0;
  while (received < payload.length) {
    const chunk = await stream.read();
    assert.ok(chunk, 'echo stream ended early');
    received += chunk.length;
  }
}

interface Pair {
  client: TransportUnderTest;
  server: TransportUnderTest;
  outbound: TransportConnection;
  inbound: TransportConnection;
}

export function transportContract(name: string, fixture: ContractFixture): void {
  const timeout = fixture.timeoutMs ?? 30_000;

  for (const host of fixture.hosts) {
    describe(`${name} transport contract over ${host}`, { timeout }, () => {
      /** Runs `body` on a fresh connected pair and closes everything afterwards. */
      async function withPair(
        body: (pair: Pair) => Promise<void>,
        client?: TransportUnderTest,
      ): Promise<void> {
        const server = await fixture.create();
        const dialer = client ?? (await fixture.create());
        try {
          const listener = await server.transport.listen({ host, port: 0 });
          const [outbound, inbound] = await Promise.all([
            dialer.transport.dial(listener.address),
            listener.accept(),
          ]);
          assert.ok(inbound, 'listener returned no connection');
          await body({ client: dialer, server, outbound, inbound });
        } finally {
          await Promise.all([dialer.transport.close(), server.transport.close()]);
        }
      }

      it('dials, accepts, and reports directions and addresses', async () => {
        const server = await fixture.create();
        const client = await fixture.create();
        try {
          const listener = await server.transport.listen({ host, port: 0 });
          assert.equal(listener.address.host, host);
          assert.ok(listener.address.port > 0, 'port 0 must be replaced by the real port');
          const [outbound, inbound] = await Promise.all([
            client.transport.dial(listener.address),
            listener.accept(),
          ]);
          assert.ok(inbound);
          assert.equal(outbound.direction, 'outbound');
          assert.equal(inbound.direction, 'inbound');
          assert.equal(outbound.kind, server.transport.kind);
          assert.deepEqual(outbound.remoteAddress, listener.address);
          assert.equal(inbound.localAddress.port, listener.address.port);
          assert.equal(inbound.remoteAddress.host, host);
          assert.notEqual(outbound.id, '');
        } finally {
          await Promise.all([client.transport.close(), server.transport.close()]);
        }
      });

      it('proves each side the key of the other', async () => {
        await withPair(async ({ client, server, outbound, inbound }) => {
          assert.ok(client.publicKey && server.publicKey);
          assert.equal(outbound.peerKey?.algorithm, 'ed25519');
          assert.deepEqual(Buffer.from(outbound.peerKey.publicKey), Buffer.from(server.publicKey));
          assert.equal(inbound.peerKey?.algorithm, 'ed25519');
          assert.deepEqual(Buffer.from(inbound.peerKey.publicKey), Buffer.from(client.publicKey));
        });
      });

      if (fixture.createAnonymous) {
        const createAnonymous = fixture.createAnonymous;
        it('shows the listener a null peerKey for a dialer without identity', async () => {
          const anonymous = await createAnonymous();
          await withPair(async ({ server, outbound, inbound }) => {
            assert.equal(inbound.peerKey, null);
            assert.ok(server.publicKey);
            assert.deepEqual(
              Buffer.from(outbound.peerKey?.publicKey ?? []),
              Buffer.from(server.publicKey),
            );
          }, anonymous);
        });
      }

      it('echoes bytes on a bidirectional stream in both directions', async () => {
        await withPair(async ({ outbound, inbound }) => {
          serveEcho(inbound);
          const stream = await outbound.openStream();
          const message = new TextEncoder().encode('hello over stoq');
          await stream.write(message);
          await stream.finish();
          const echoed = concat(await readAll(stream));
          assert.deepEqual(echoed, Buffer.from(message));

          // And the listener can open streams towards the dialer too.
          serveEcho(outbound);
          const back = await inbound.openStream();
          await back.write(message);
          await back.finish();
          assert.deepEqual(concat(await readAll(back)), Buffer.from(message));
        });
      });

      it('keeps many concurrent streams in one connection apart', async () => {
        await withPair(async ({ outbound, inbound }) => {
          serveEcho(inbound);
          const payloads = Array.from({ length: 64 }, () => randomBytes(40_000));
          const ids = new Set<string>();
          const echoes = await Promise.all(
            payloads.map(async (payload) => {
              const stream = await outbound.openStream();
              ids.add(stream.id);
              const [parts] = await Promise.all([
                readAll(stream),
                writeAll(stream, payload).then(() => stream.finish()),
              ]);
              return concat(parts);
            }),
          );
          assert.equal(ids.size, payloads.length, 'stream ids are unique within a connection');
          echoes.forEach((echo, index) => assert.deepEqual(echo, payloads[index]));
        });
      });

      it('moves 8 MiB intact in each direction at once', async () => {
        await withPair(async ({ outbound, inbound }) => {
          serveEcho(inbound);
          const payload = randomBytes(8 * 1024 * 1024);
          const stream = await outbound.openStream();
          const [parts] = await Promise.all([
            readAll(stream),
            writeAll(stream, payload).then(() => stream.finish()),
          ]);
          assert.equal(
            parts.reduce((sum, part) => sum + part.length, 0),
            payload.length,
          );
          assert.equal(sha256(parts), sha256([payload]));
        });
      });

      it('delivers null after finish and keeps the other direction open', async () => {
        await withPair(async ({ outbound, inbound }) => {
          const stream = await outbound.openStream();
          await stream.write(new TextEncoder().encode('request'));
          await stream.finish();
          const accepted = await inbound.acceptStream();
          assert.ok(accepted);
          assert.equal(accepted.id, stream.id, 'both sides name the stream alike');
          assert.equal(new TextDecoder().decode(concat(await readAll(accepted))), 'request');
          assert.equal(await accepted.read(), null, 'reads after the end keep returning null');
          await accepted.write(new TextEncoder().encode('response'));
          await accepted.finish();
          assert.equal(new TextDecoder().decode(concat(await readAll(stream))), 'response');
          await assert.rejects(
            stream.write(new Uint8Array([1])),
            isStoqError(StoqErrorCode.STREAM_RESET),
          );
        });
      });

      it('propagates a reset to the peer as STREAM_RESET', async () => {
        await withPair(async ({ outbound, inbound }) => {
          const stream = await outbound.openStream();
          await stream.write(new Uint8Array([1, 2, 3]));
          const accepted = await inbound.acceptStream();
          assert.ok(accepted);
          let received = 0;
          while (received < 3) received += (await accepted.read())?.length ?? 3;
          const pendingRead = assert.rejects(
            accepted.read(),
            isStoqError(StoqErrorCode.STREAM_RESET),
          );
          stream.reset();
          stream.reset();
          await pendingRead;
          await assert.rejects(accepted.read(), isStoqError(StoqErrorCode.STREAM_RESET));
          await assert.rejects(stream.read(), isStoqError(StoqErrorCode.STREAM_RESET));
          await assert.rejects(
            stream.write(new Uint8Array([4])),
            isStoqError(StoqErrorCode.STREAM_RESET),
          );
          // The peer's sending side learns of the reset too: its writes start failing.
          const chunk = new Uint8Array(CHUNK);
          await assert.rejects(async () => {
            for (let written = 0; written <= 64 * 1024 * 1024; written += chunk.length) {
              await accepted.write(chunk);
            }
          }, isStoqError(StoqErrorCode.STREAM_RESET));
          // The connection itself survives a stream reset.
          serveEcho(inbound);
          const next = await outbound.openStream();
          await roundTrip(next, new Uint8Array([9]));
        });
      });

      it('stalls a writer whose peer does not read, without blocking other streams', async () => {
        await withPair(async ({ outbound, inbound }) => {
          const payloadSize = fixture.maxUnreadBytes + 4 * 1024 * 1024;
          const payload = randomBytes(payloadSize);
          const bulk = await outbound.openStream();
          await bulk.write(payload.subarray(0, 1));
          const bulkPeer = await inbound.acceptStream();
          assert.ok(bulkPeer, 'bulk stream was not accepted');
          serveEcho(inbound);
          const ping = await outbound.openStream();
          const probe = new Uint8Array([7]);
          await roundTrip(ping, probe);

          // Write until one write stays pending across round trips on another stream of the
          // same connection: those prove the connection is alive and that the peer's credit
          // (which would travel the same way) is not coming. More than maxUnreadBytes accepted
          // without a stall means there is no backpressure.
          let offset = 1;
          let stalled: Promise<void> | null = null;
          let trip: Promise<void> | null = null;
          while (offset < payloadSize && stalled === null) {
            const end = Math.min(payloadSize, offset + CHUNK);
            let done = false;
            const write = bulk.write(payload.subarray(offset, end)).then(() => {
              done = true;
            });
            offset = end;
            let trips = 0;
            while (!done && trips < 20) {
              trip ??= roundTrip(ping, probe).then(() => {
                trip = null;
                trips += 1;
              });
              await Promise.race([write, trip]);
            }
            if (!done) stalled = write;
          }
          await trip;
          assert.ok(stalled, `wrote all ${payloadSize} bytes to a peer that reads nothing`);
          assert.ok(
            offset <= fixture.maxUnreadBytes + CHUNK,
            `${offset} bytes accepted before the writer stalled (bound ${fixture.maxUnreadBytes})`,
          );

          // Reading resumes the writer, and every byte arrives intact and in order.
          const reading = readAll(bulkPeer);
          await stalled;
          await writeAll(bulk, payload.subarray(offset));
          await bulk.finish();
          const parts = await reading;
          assert.equal(sha256(parts), sha256([payload]));
        });
      });

      it('closes the peer connection: acceptStream gives null, reads reject, closed settles', async () => {
        await withPair(async ({ outbound, inbound }) => {
          const stream = await outbound.openStream();
          await stream.write(new Uint8Array([1]));
          const accepted = await inbound.acceptStream();
          assert.ok(accepted);
          assert.ok(await accepted.read());
          const pendingRead = assert.rejects(
            accepted.read(),
            isStoqError([StoqErrorCode.CONNECTION_CLOSED, StoqErrorCode.STREAM_RESET]),
          );
          const pendingAccept = inbound.acceptStream();
          outbound.close('test is done');
          outbound.close();
          await outbound.closed;
          await inbound.closed;
          assert.equal(await pendingAccept, null);
          assert.equal(await inbound.acceptStream(), null);
          await pendingRead;
          await assert.rejects(outbound.openStream(), isStoqError(StoqErrorCode.CONNECTION_CLOSED));
          await assert.rejects(stream.read(), isStoqError(StoqErrorCode.CONNECTION_CLOSED));
        });
      });

      it('listener.close() stops accepting and closes what it accepted', async () => {
        const server = await fixture.create();
        const client = await fixture.create();
        try {
          const listener = await server.transport.listen({ host, port: 0 });
          const [outbound, inbound] = await Promise.all([
            client.transport.dial(listener.address),
            listener.accept(),
          ]);
          assert.ok(inbound);
          const pendingAccept = listener.accept();
          await listener.close();
          await listener.close();
          assert.equal(await pendingAccept, null);
          assert.equal(await listener.accept(), null);
          await inbound.closed;
          await outbound.closed;
          await assert.rejects(
            client.transport.dial(listener.address),
            isStoqError([StoqErrorCode.CONNECTION_REFUSED, StoqErrorCode.HANDSHAKE_FAILED]),
          );
        } finally {
          await Promise.all([client.transport.close(), server.transport.close()]);
        }
      });

      it('transport.close() closes its connections on both sides', async () => {
        await withPair(async ({ client, outbound, inbound }) => {
          await client.transport.close();
          await outbound.closed;
          await inbound.closed;
          assert.equal(await inbound.acceptStream(), null);
          await assert.rejects(
            client.transport.dial({ host, port: 1 }),
            isStoqError(StoqErrorCode.CONNECTION_CLOSED),
          );
        });
      });

      it('fails a dial to a closed port with a StoqError', async () => {
        const client = await fixture.create();
        try {
          const address = await fixture.closedAddress(host);
          await assert.rejects(
            client.transport.dial(address),
            isStoqError([StoqErrorCode.CONNECTION_REFUSED, StoqErrorCode.HANDSHAKE_FAILED]),
          );
        } finally {
          await client.transport.close();
        }
      });

      it('refuses a second listener on a bound address with TRANSPORT_UNAVAILABLE', async () => {
        const first = await fixture.create();
        const second = await fixture.create();
        try {
          const listener = await first.transport.listen({ host, port: 0 });
          await assert.rejects(
            second.transport.listen(listener.address),
            isStoqError(StoqErrorCode.TRANSPORT_UNAVAILABLE),
          );
        } finally {
          await Promise.all([first.transport.close(), second.transport.close()]);
        }
      });

      it('rejects a dial whose signal is already aborted with CANCELLED', async () => {
        const server = await fixture.create();
        const client = await fixture.create();
        try {
          const listener = await server.transport.listen({ host, port: 0 });
          await assert.rejects(
            client.transport.dial(listener.address, { signal: AbortSignal.abort() }),
            isStoqError(StoqErrorCode.CANCELLED),
          );
        } finally {
          await Promise.all([client.transport.close(), server.transport.close()]);
        }
      });

      if (fixture.unresponsive) {
        const unresponsive = fixture.unresponsive;
        it('aborts a dial stuck in its handshake when the signal fires', async () => {
          const endpoint = await unresponsive(host);
          const client = await fixture.create();
          try {
            const controller = new AbortController();
            const dialing = client.transport.dial(endpoint.address, { signal: controller.signal });
            await endpoint.reached;
            controller.abort(new Error('caller gave up'));
            await assert.rejects(dialing, isStoqError(StoqErrorCode.CANCELLED));
          } finally {
            await client.transport.close();
            await endpoint.close();
          }
        });
      }
    });
  }
}
