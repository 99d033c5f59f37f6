import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import {
  DEFAULT_QUIC_ACCEPT_CONCURRENCY,
  createQuicTransport,
} from '../../src/stoq/quic/transport.js';
import type { SocketAddress, Transport, TransportListener } from '../../src/stoq/transport.js';
import { isStoqError } from '../helpers/stoq-error.js';
import { waitForCondition } from '../helpers/wait.js';
import { MemoryLogger } from './rpc-fixture.js';

/**
 * How many stalled inbound handshakes a QUIC listener survives. quinn answers a client's
 * Initial only once the listener takes it, and the binding bounds an inbound handshake only by
 * the idle timeout, so each handshake a peer stalls holds one of `acceptConcurrency` slots.
 */

/**
 * The destination connection id (hex) of a datagram that starts with a QUIC Initial packet
 * (long header, type 0: RFC 9000 §17.2.2), or null for anything else.
 */
function initialDestinationId(datagram: Buffer): string | null {
  if (datagram.length < 6) return null;
  const first = datagram[0] as number;
  if ((first & 0x80) === 0 || (first & 0x30) !== 0) return null;
  const length = datagram[5] as number;
  if (length > 20 || datagram.length < 6 + length) return null;
  return datagram.subarray(6, 6 + length).toString('hex');
}

/**
 * Between dialers and a listener: forwards each connection's first datagram (its ClientHello)
 * and nothing else, and drops every answer. The listener's handshake then stalls. `answered`
 * counts the connections the listener answered, i.e. took into a handshake slot.
 */
class StallingProxy extends EventEmitter {
  readonly forwarded = new Set<string>();
  readonly answered = new Set<string>();
  private readonly socket = dgram.createSocket('udp4');

  constructor(private readonly target: SocketAddress) {
    super();
    this.socket.on('message', (packet, from) => {
      const id = initialDestinationId(packet);
      if (id === null) return;
      if (from.port === target.port) {
        this.answered.add(id);
        this.emit('answered');
      } else if (!this.forwarded.has(id)) {
        this.forwarded.add(id);
        this.socket.send(packet, target.port, target.host);
      }
    });
  }

  async bind(): Promise<SocketAddress> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    return { host: '127.0.0.1', port: this.socket.address().port };
  }

  close(): void {
    this.socket.close();
  }
}

interface Stalled {
  readonly listener: TransportListener;
  readonly proxy: StallingProxy;
  close(): Promise<void>;
}

/** A listener with `count` handshakes stalled in it (each has been answered once). */
async function stalledListener(count: number, acceptConcurrency?: number): Promise<Stalled> {
  const server = createQuicTransport({
    privateKey: generateEd25519KeyPair().privateKey,
    logger: new MemoryLogger(),
    ...(acceptConcurrency === undefined ? {} : { acceptConcurrency }),
  });
  const listener = await server.listen({ host: '127.0.0.1', port: 0 });
  const proxy = new StallingProxy(listener.address);
  const via = await proxy.bind();
  const staller = createQuicTransport({
    privateKey: generateEd25519KeyPair().privateKey,
    handshakeTimeoutMs: 60_000,
  });
  const close = async (): Promise<void> => {
    await staller.close();
    proxy.close();
    // quinn drains each stalled connection for 3 PTOs before the endpoint closes (~3 s).
    await server.close();
  };
  for (let i = 0; i < count; i++) staller.dial(via).catch(() => undefined);
  try {
    await waitForCondition(
      proxy,
      'answered',
      () => proxy.answered.size >= count,
      () => `the listener took ${proxy.answered.size} of ${count} stalled handshakes`,
      5_000,
    );
  } catch (error) {
    await close();
    throw error;
  }
  return { listener, proxy, close };
}

function dialer(handshakeTimeoutMs: number): { transport: Transport; publicKey: Uint8Array } {
  const { privateKey } = generateEd25519KeyPair();
  return {
    transport: createQuicTransport({ privateKey, handshakeTimeoutMs }),
    publicKey: ed25519RawPublicKey(privateKey),
  };
}

describe('QUIC listener under stalled handshakes', { timeout: 60_000 }, () => {
  it('locks out other dialers once every handshake slot is stalled (the bound)', async () => {
    const stalled = await stalledListener(2, 2);
    const client = dialer(1_000);
    try {
      assert.equal(stalled.proxy.answered.size, 2);
      await assert.rejects(
        client.transport.dial(stalled.listener.address),
        isStoqError(StoqErrorCode.HANDSHAKE_FAILED),
      );
    } finally {
      await client.transport.close();
      await stalled.close();
    }
  });

  it('by default takes far more stalled handshakes than the old cap of 64', async () => {
    assert.ok(DEFAULT_QUIC_ACCEPT_CONCURRENCY >= 4096, `${DEFAULT_QUIC_ACCEPT_CONCURRENCY}`);
    const stalled = await stalledListener(65);
    const client = dialer(10_000);
    try {
      const [, accepted] = await Promise.all([
        client.transport.dial(stalled.listener.address),
        stalled.listener.accept(),
      ]);
      assert.ok(accepted, 'the legitimate dial was accepted');
      assert.deepEqual(accepted.peerKey?.publicKey, client.publicKey);
    } finally {
      await client.transport.close();
      await stalled.close();
    }
  });
});
