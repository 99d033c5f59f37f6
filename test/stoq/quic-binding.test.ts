import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import {
  ed25519Libp2pPrivateKeyProto,
  ed25519RawPublicKey,
  generateEd25519KeyPair,
} from '../../src/crypto/ed25519.js';
import {
  loadQuinnBinding,
  QUINN_BINDING_VERSION,
  quinnBindingPackage,
  type QuinnClient,
  type QuinnConfigInit,
  type QuinnConnection,
  type QuinnServer,
} from '../../src/stoq/quic/binding.js';
import { parsePeerMultiaddr, peerIdFromKey } from '../../src/stoq/quic/peer-id.js';

/**
 * The quinn binding is not a public API. These tests pin the exact surface STOQ relies on, so an
 * upgrade that changes it fails here, loudly, instead of somewhere inside the transport.
 */
const require = createRequire(import.meta.url);
const packageName = quinnBindingPackage();

function configInit(): { init: QuinnConfigInit; publicKey: Uint8Array } {
  const { privateKey } = generateEd25519KeyPair();
  return {
    publicKey: ed25519RawPublicKey(privateKey),
    init: {
      privateKeyProto: ed25519Libp2pPrivateKeyProto(privateKey),
      handshakeTimeout: 5_000,
      maxIdleTimeout: 10_000,
      keepAliveInterval: 5_000,
      maxConcurrentStreamLimit: 256,
      maxStreamData: 10_000_000,
      maxConnectionData: 15_000_000,
      receiveBufferSize: 500_000,
      sendBufferSize: 500_000,
    },
  };
}

function methodsOf(value: unknown): string[] {
  assert.equal(typeof value, 'function');
  return Object.getOwnPropertyNames((value as { prototype: object }).prototype).sort();
}

describe('quinn binding contract', () => {
  it(`is installed at exactly version ${QUINN_BINDING_VERSION}`, () => {
    const manifest = require(`${packageName}/package.json`) as { version: string; name: string };
    assert.equal(manifest.name, packageName);
    assert.equal(manifest.version, QUINN_BINDING_VERSION);
  });

  it('exports the classes and methods STOQ uses', () => {
    const binding = require(packageName) as Record<string, unknown>;
    for (const name of ['QuinnConfig', 'Server', 'Client', 'Connection', 'Stream']) {
      assert.equal(typeof binding[name], 'function', `${name} is not exported`);
    }
    const expect = (name: string, methods: string[]): void => {
      const actual = methodsOf(binding[name]);
      for (const method of methods) {
        assert.ok(actual.includes(method), `${name}.prototype.${method} is missing`);
      }
    };
    expect('Server', ['port', 'inboundConnection', 'abort', 'stats']);
    expect('Client', ['outboundConnection', 'abort']);
    expect('Connection', [
      'id',
      'remoteMultiaddr',
      'closed',
      'abort',
      'inboundStream',
      'outboundStream',
      'rtt',
      'stats',
    ]);
    expect('Stream', ['id', 'read', 'write', 'finishWrite', 'resetWrite', 'stopRead']);
    const family = binding.SocketFamily as Record<string, unknown>;
    assert.equal(family.Ipv4, 0);
    assert.equal(family.Ipv6, 1);
  });

  it('requires every QuinnConfig field', () => {
    const binding = loadQuinnBinding();
    const { init } = configInit();
    assert.doesNotThrow(() => new binding.QuinnConfig(init));
    for (const field of Object.keys(init) as (keyof QuinnConfigInit)[]) {
      const partial: Partial<QuinnConfigInit> = { ...init };
      delete partial[field];
      assert.throws(
        () => new binding.QuinnConfig(partial as QuinnConfigInit),
        (error: Error) => error.message.includes(`Missing field \`${field}\``),
        `QuinnConfig without ${field} must throw "Missing field"`,
      );
    }
    assert.throws(
      () => new binding.QuinnConfig({ ...init, privateKeyProto: new Uint8Array(8) }),
      /Invalid private key/,
    );
  });

  describe('a live connection', () => {
    let server: QuinnServer;
    let client: QuinnClient;
    let outbound: QuinnConnection;
    let inbound: QuinnConnection;
    let port: number;
    const serverIdentity = configInit();
    const clientIdentity = configInit();

    before(async () => {
      const binding = loadQuinnBinding();
      server = new binding.Server(new binding.QuinnConfig(serverIdentity.init), '127.0.0.1', 0);
      port = server.port();
      client = new binding.Client(new binding.QuinnConfig(clientIdentity.init), 0);
      [outbound, inbound] = await Promise.all([
        client.outboundConnection('127.0.0.1', port),
        server.inboundConnection(),
      ]);
    });

    after(async () => {
      outbound.abort();
      client.abort();
      await server.abort();
    });

    it('names the peer as /ip4/<ip>/udp/<port>/quic-v1/p2p/<identity multihash>', () => {
      assert.equal(
        outbound.remoteMultiaddr(),
        `/ip4/127.0.0.1/udp/${port}/quic-v1/p2p/${peerIdFromKey(serverIdentity.publicKey)}`,
      );
      const seen = parsePeerMultiaddr(inbound.remoteMultiaddr());
      assert.equal(seen.address.host, '127.0.0.1');
      assert.deepEqual(seen.key.publicKey, clientIdentity.publicKey);
      assert.match(
        inbound.remoteMultiaddr(),
        /^\/ip4\/127\.0\.0\.1\/udp\/\d+\/quic-v1\/p2p\/12D3KooW/,
      );
    });

    it('reads Uint8Array chunks, null at FIN, and reports resets as "reset by peer"', async () => {
      const stream = await outbound.outboundStream();
      await stream.write(Uint8Array.from([1, 2, 3]));
      const accepted = await inbound.inboundStream();
      const chunk = await accepted.read(65536);
      assert.ok(chunk instanceof Uint8Array);
      assert.deepEqual([...chunk], [1, 2, 3]);
      stream.finishWrite();
      assert.equal(await accepted.read(65536), null);

      const second = await outbound.outboundStream();
      await second.write(Uint8Array.from([4]));
      const secondAccepted = await inbound.inboundStream();
      await secondAccepted.read(65536);
      const pending = secondAccepted.read(65536);
      second.resetWrite();
      await assert.rejects(pending, (error: Error & { code?: string }) => {
        assert.equal(error.code, 'Unknown');
        assert.match(error.message, /reset by peer/);
        return true;
      });
      second.stopRead();
      // STOP_SENDING travels in its own packet: writes fail once it has arrived.
      await assert.rejects(async () => {
        for (let attempt = 0; attempt < 2_000; attempt++) {
          await secondAccepted.write(new Uint8Array(1024));
        }
      }, /stopped by peer/);
    });
  });
});
