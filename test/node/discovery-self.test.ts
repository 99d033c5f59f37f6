import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { createDiscoveryNode } from '../../src/node/discovery-node.js';
import { SELF_SERVICES, selfRegistrations, type SelfFacts } from '../../src/node/discovery-self.js';
import { createLogger } from '../../src/node/log.js';
import { urlSocketAddress } from '../../src/node/validator-node.js';
import { CliError } from '../../src/node/cli-error.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * The node's own services in the catalog: the addresses it registers are the ones its servers
 * are bound to (a listener on port 80 or 443 has no port in its URL), and a registration the
 * discovery module would refuse is logged, never thrown out of the commit hook or `start`.
 */
describe('server addresses from their URLs', () => {
  it("takes the scheme's default port when the URL leaves it out", () => {
    assert.deepEqual(urlSocketAddress('http://10.0.0.5:80/metrics'), {
      host: '10.0.0.5',
      port: 80,
    });
    assert.deepEqual(urlSocketAddress('https://10.0.0.5:443/directory'), {
      host: '10.0.0.5',
      port: 443,
    });
    assert.deepEqual(urlSocketAddress('http://[::1]:80/metrics'), { host: '::1', port: 80 });
    assert.deepEqual(urlSocketAddress('https://[2001:db8::5]:443'), {
      host: '2001:db8::5',
      port: 443,
    });
  });

  it('keeps an explicit port, including the other scheme default', () => {
    assert.deepEqual(urlSocketAddress('http://127.0.0.1:9100/metrics'), {
      host: '127.0.0.1',
      port: 9100,
    });
    assert.deepEqual(urlSocketAddress('http://[::1]:443'), { host: '::1', port: 443 });
    assert.deepEqual(urlSocketAddress('https://127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
  });

  it('refuses a URL of a scheme without a default port and none given', () => {
    assert.throws(() => urlSocketAddress('stoq://10.0.0.5/'), CliError);
  });
});

interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly service?: string;
  readonly error?: string;
}

/** A discovery node over an empty catalog at `height`, recording its log and submissions. */
function discoveryNodeAt(height: number) {
  const lines: LogLine[] = [];
  const submitted: Uint8Array[] = [];
  const { privateKey } = generateEd25519KeyPair();
  const node = createDiscoveryNode({
    genesis: { dnsZone: null },
    chainId: 'test-chain',
    stampDifficulty: 0,
    state: { get: () => null },
    height,
    query: () => ({ height, value: null, stateRoot: new Uint8Array(32) }),
    privateKey,
    submit: (tx) => {
      submitted.push(tx);
      return Promise.resolve({ ok: true, txHash: new Uint8Array(32), duplicate: false });
    },
    pending: () => false,
    rpc: { register: () => {} },
    dial: () => Promise.reject(new Error('no dialing in this test')),
    registry: new Registry(),
    logger: createLogger(
      { node: 'node-1' },
      (line) => lines.push(JSON.parse(line) as LogLine),
      'debug',
    ),
    probe: () => Promise.resolve({ ok: true }),
  });
  return { node, lines, submitted };
}

/** The node's facts with a metrics address the catalog refuses (port 0). */
const facts: SelfFacts = {
  name: 'node-1',
  uri: 'spiffe://test-chain/validator/node-1',
  version: '0.0.0',
  stoq: { host: '10.0.0.5', port: 9292 },
  metrics: { host: '10.0.0.5', port: 0 },
  dns: null,
  acme: null,
  ct: null,
};

describe('self-registration failures', () => {
  it('are logged by start and by the commit hook, and the other services are registered', async () => {
    const { node, lines, submitted } = discoveryNodeAt(1);
    const commits: number[] = [];
    node.events.on('commit', (height: number) => commits.push(height));
    try {
      // `start` runs the commit work for the loaded height at once: it must not throw.
      assert.doesNotThrow(() => node.start(facts));
      await waitForCondition(node.events, 'commit', () => commits.includes(1), 'commit 1', 10_000);
      const refused = () =>
        lines.filter((line) => line.msg === 'discovery: own service not registered');
      assert.equal(refused().length, 1, JSON.stringify(lines));
      assert.equal(refused()[0]?.level, 'warn');
      assert.equal(refused()[0]?.service, SELF_SERVICES.metrics);
      assert.match(refused()[0]?.error ?? '', /port/i);
      // hypermesh-node was still submitted.
      assert.equal(submitted.length, 1);

      // Blocks follow; the retry (10 blocks on) runs from the commit hook's setImmediate, where
      // a throw would end the process.
      for (let height = 2; height <= 12; height++) node.applyBlock(height, []);
      await waitForCondition(
        node.events,
        'commit',
        () => commits.includes(12),
        'commit 12',
        10_000,
      );
      assert.equal(refused().length, 2, JSON.stringify(lines));
      assert.equal(refused()[1]?.level, 'debug');
      assert.equal(refused()[1]?.service, SELF_SERVICES.metrics);
    } finally {
      node.stop();
    }
  });
});

describe('the DNS registration', () => {
  const base: SelfFacts = {
    name: 'node-1',
    uri: 'spiffe://test/validator/node-1',
    version: '0.0.0',
    stoq: { host: '127.0.0.1', port: 9000 },
    metrics: null,
    dns: {
      udp: [{ host: '127.0.0.1', port: 5353 }],
      tcp: [{ host: '127.0.0.1', port: 5353 }],
      doq: [{ host: '127.0.0.1', port: 8853 }],
    },
  };
  const dnsOf = (facts: SelfFacts) =>
    selfRegistrations(facts).find((each) => each.service === SELF_SERVICES.dns);

  it('names the DNS-over-QUIC port (protocol quic) beside udp and tcp', () => {
    const dns = dnsOf(base);
    assert.deepEqual(dns?.ports, [
      { protocol: 'udp', port: 5353 },
      { protocol: 'tcp', port: 5353 },
      { protocol: 'quic', port: 8853 },
    ]);
    assert.deepEqual(dns?.addresses, ['127.0.0.1']);
  });

  it('leaves DoQ out when it is not served or only on a wildcard address', () => {
    for (const doq of [[], [{ host: '0.0.0.0', port: 8853 }]]) {
      const dns = dnsOf({ ...base, dns: { ...base.dns!, doq } });
      assert.deepEqual(
        dns?.ports.map((port) => port.protocol),
        ['udp', 'tcp'],
      );
    }
  });
});
