import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { base58 } from '@scure/base';
import {
  ed25519Libp2pPrivateKeyProto,
  ed25519RawPublicKey,
  generateEd25519KeyPair,
} from '../../src/crypto/ed25519.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { loadQuinnBinding, type QuinnServer } from '../../src/stoq/quic/binding.js';
import { streamError } from '../../src/stoq/quic/errors.js';
import {
  parsePeerMultiaddr,
  peerIdFromKey,
  peerKeyFromPeerId,
} from '../../src/stoq/quic/peer-id.js';
import { createQuicTransport, QuicListener } from '../../src/stoq/quic/transport.js';
import type { RpcLogger } from '../../src/stoq/rpc/log.js';
import { isStoqError } from '../helpers/stoq-error.js';
import { MemoryLogger } from './rpc-fixture.js';

const key = ed25519RawPublicKey(generateEd25519KeyPair().privateKey);
const peerId = peerIdFromKey(key);

describe('QUIC peer ids and multiaddrs', () => {
  it('round-trip any Ed25519 key through the peer id', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (raw) => {
        const id = peerIdFromKey(raw);
        assert.match(id, /^12D3KooW/);
        assert.deepEqual(peerKeyFromPeerId(id), raw);
      }),
    );
  });

  it('parses IPv4 and IPv6 peer addresses', () => {
    const v4 = parsePeerMultiaddr(`/ip4/127.0.0.1/udp/9292/quic-v1/p2p/${peerId}`);
    assert.deepEqual(v4.address, { host: '127.0.0.1', port: 9292 });
    assert.deepEqual(v4.key, { algorithm: 'ed25519', publicKey: key });
    const v6 = parsePeerMultiaddr(`/ip6/::1/udp/1/quic-v1/p2p/${peerId}`);
    assert.deepEqual(v6.address, { host: '::1', port: 1 });
  });

  const sha256PeerId = base58.encode(Uint8Array.from([0x12, 0x20, ...new Uint8Array(32)]));
  const rsaLikePeerId = base58.encode(
    Uint8Array.from([0x00, 0x24, 0x08, 0x00, 0x12, 0x20, ...new Uint8Array(32)]),
  );
  const bad: [string, string][] = [
    ['no peer id', '/ip4/127.0.0.1/udp/9292/quic-v1'],
    ['an IPv6 address under ip4', `/ip4/::1/udp/9292/quic-v1/p2p/${peerId}`],
    ['a host name', `/dns4/example.org/udp/9292/quic-v1/p2p/${peerId}`],
    ['a port out of range', `/ip4/127.0.0.1/udp/70000/quic-v1/p2p/${peerId}`],
    ['tcp instead of udp', `/ip4/127.0.0.1/tcp/9292/quic-v1/p2p/${peerId}`],
    ['a peer id that is not base58', '/ip4/127.0.0.1/udp/9292/quic-v1/p2p/0OIl'],
    ['a hashed (non-identity) peer id', `/ip4/127.0.0.1/udp/9292/quic-v1/p2p/${sha256PeerId}`],
    ['a non-Ed25519 key type', `/ip4/127.0.0.1/udp/9292/quic-v1/p2p/${rsaLikePeerId}`],
    ['a trailing component', `/ip4/127.0.0.1/udp/9292/quic-v1/p2p/${peerId}/extra`],
  ];
  for (const [name, multiaddr] of bad) {
    it(`rejects ${name} as HANDSHAKE_FAILED`, () => {
      assert.throws(
        () => parsePeerMultiaddr(multiaddr),
        isStoqError(StoqErrorCode.HANDSHAKE_FAILED),
      );
    });
  }
});

describe('QUIC binding errors', () => {
  it('map resets to STREAM_RESET and ended connections to CONNECTION_CLOSED', () => {
    assert.equal(streamError('1', new Error('stream reset by peer: error 0')).code, 'STREAM_RESET');
    assert.equal(
      streamError('1', new Error('sending stopped by peer: error 0')).code,
      'STREAM_RESET',
    );
    assert.equal(streamError('1', new Error('connection lost')).code, 'CONNECTION_CLOSED');
    assert.equal(streamError('1', new Error('closed by peer: 0')).code, 'CONNECTION_CLOSED');
    assert.equal(streamError('1', new Error('timed out')).code, 'CONNECTION_CLOSED');
    assert.equal(streamError('1', new Error('closed stream')).code, 'STREAM_RESET');
  });
});

describe('QUIC transport options', { timeout: 30_000 }, () => {
  it('rejects an identity that is not an Ed25519 private key or seed', () => {
    assert.throws(
      () => createQuicTransport({ privateKey: new Uint8Array(31) }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    assert.throws(
      () => createQuicTransport({ privateKey: generateEd25519KeyPair().publicKey }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    assert.throws(
      () => createQuicTransport({ privateKey: new Uint8Array(32), maxStreamData: -1 }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
  });

  it('accepts a 32-byte seed, and needs IP addresses, not names', async () => {
    const transport = createQuicTransport({ privateKey: new Uint8Array(32).fill(7) });
    try {
      await assert.rejects(
        transport.listen({ host: 'localhost', port: 0 }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
      await assert.rejects(
        transport.dial({ host: 'localhost', port: 9 }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
    } finally {
      await transport.close();
    }
  });
});

describe('QUIC listener accept loop', { timeout: 30_000 }, () => {
  const settings = {
    handshakeTimeoutMs: 5_000,
    streamLimits: { readChunkBytes: 65536, writeBufferBytes: 65536 },
    acceptConcurrency: 1,
    acceptBacklog: 4,
  };

  /** A real server whose first native accepts fail the way a broken client handshake does. */
  function flakyServer(failures: string[]): QuinnServer {
    const binding = loadQuinnBinding();
    const real = new binding.Server(
      new binding.QuinnConfig({
        privateKeyProto: ed25519Libp2pPrivateKeyProto(generateEd25519KeyPair().privateKey),
        handshakeTimeout: 5_000,
        maxIdleTimeout: 10_000,
        keepAliveInterval: 5_000,
        maxConcurrentStreamLimit: 16,
        maxStreamData: 1_000_000,
        maxConnectionData: 2_000_000,
        receiveBufferSize: 500_000,
        sendBufferSize: 500_000,
      }),
      '127.0.0.1',
      0,
    );
    const port = real.port();
    return {
      port: () => port,
      abort: () => real.abort(),
      inboundConnection: () => {
        const failure = failures.shift();
        return failure === undefined
          ? real.inboundConnection()
          : Promise.reject(new Error(failure));
      },
    };
  }

  /** A listener on `flakyServer(failures)`, driven directly as the transport would. */
  function flakyListener(
    failures: string[],
    logger: RpcLogger = new MemoryLogger(),
    overrides: Partial<typeof settings> = {},
  ): QuicListener {
    const server = flakyServer(failures);
    return new QuicListener(
      server,
      { host: '127.0.0.1', port: server.port() },
      { ...settings, ...overrides },
      () => undefined,
      () => undefined,
      logger,
    );
  }

  it('keeps accepting after a handshake fails', async () => {
    const failures = ['aborted by peer: the cryptographic handshake failed', 'timed out'];
    const listener = flakyListener(failures);
    const { privateKey } = generateEd25519KeyPair();
    const client = createQuicTransport({ privateKey });
    try {
      const [, inbound] = await Promise.all([client.dial(listener.address), listener.accept()]);
      assert.equal(failures.length, 0, 'both failed accepts were consumed');
      assert.ok(inbound, 'the listener stopped after failed handshakes');
      assert.deepEqual(inbound.peerKey?.publicKey, ed25519RawPublicKey(privateKey));
    } finally {
      await client.close();
      await listener.close();
    }
  });

  // The binding's accept error carries a failed client's CONNECTION_CLOSE reason phrase, so an
  // unauthenticated peer chooses this text: a ClientHello and a CONNECTION_CLOSE "server closed"
  // used to close the listener and every connection it held.
  it('keeps accepting when a failed handshake says "server closed"', async () => {
    const failures = [
      'aborted by peer: server closed',
      'closed by peer: server closed (code 0)',
      'server closed',
    ];
    const logger = new MemoryLogger();
    const listener = flakyListener(failures, logger, { acceptConcurrency: 4 });
    const { privateKey } = generateEd25519KeyPair();
    const client = createQuicTransport({ privateKey });
    try {
      const [, inbound] = await Promise.all([client.dial(listener.address), listener.accept()]);
      assert.equal(failures.length, 0, 'every failed accept was consumed');
      assert.ok(inbound, 'a peer-chosen error text closed the listener');
      assert.deepEqual(inbound.peerKey?.publicKey, ed25519RawPublicKey(privateKey));
      assert.ok(
        logger.lines.some(
          (line) => line.level === 'warn' && /handshakes failed/.test(line.message),
        ),
        'failed accepts are logged',
      );
      const [, again] = await Promise.all([client.dial(listener.address), listener.accept()]);
      assert.ok(again, 'the listener still accepts afterwards');
    } finally {
      await client.close();
      await listener.close();
    }
  });

  it('paces accepts that fail back to back, and resumes on the next success', async () => {
    // acceptConcurrency 1: from the second failure in a row the listener waits 10, 20, 40 ms.
    const failures = ['timed out', 'timed out', 'timed out', 'timed out'];
    const logger = new MemoryLogger();
    const listener = flakyListener(failures, logger);
    const client = createQuicTransport({ privateKey: generateEd25519KeyPair().privateKey });
    try {
      const [, inbound] = await Promise.all([client.dial(listener.address), listener.accept()]);
      assert.ok(inbound);
      assert.equal(failures.length, 0);
      const paced = logger.lines.filter((line) => line.level === 'error');
      assert.equal(paced.length, 1, 'one error line when pacing starts, not one per failure');
      assert.match(paced[0]?.message ?? '', /pacing accepts/);
    } finally {
      await client.close();
      await listener.close();
    }
  });

  it('closes only when its owner closes it', async () => {
    const listener = flakyListener([]);
    const waiting = listener.accept();
    await listener.close();
    assert.equal(await waiting, null);
    assert.equal(await listener.accept(), null);
  });
});
