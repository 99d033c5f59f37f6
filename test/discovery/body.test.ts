import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeCanonical } from '../../src/codec/cbor.js';
import {
  DiscoveryError,
  DiscoveryErrorCode,
  MAX_DISCOVERY_BODY_BYTES,
  decodeDiscoveryBody,
  discoveryDeregister,
  discoveryRegister,
  discoveryRenew,
} from '../../src/discovery/index.js';
import type { InstanceRegistration, RegisterTx } from '../../src/discovery/index.js';
import { registration } from './discovery-fixture.js';

const C = DiscoveryErrorCode;

const discoveryCode = (code: DiscoveryErrorCode, name?: string) => (error: unknown) => {
  assert.ok(
    error instanceof DiscoveryError,
    `${name ?? ''}: expected a DiscoveryError, got ${String(error)}`,
  );
  assert.equal(error.code, code, `${name ?? ''}: ${error.message}`);
  return true;
};

const v4 = (...octets: number[]) => Uint8Array.from(octets);
const v6 = (...groups: number[]) => {
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
};

/** The wire form of the fixture registration, as a plain value; `undefined` drops a field. */
function wire(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    op: 'register',
    service: 'trustchain-ca',
    instance: 'node-1',
    addresses: [v4(192, 0, 2, 10), v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)],
    ports: [
      { protocol: 'stoq', port: 9292 },
      { protocol: 'https', port: 9443 },
    ],
    identity: 'spiffe://hypermesh/node/node-1',
    metadata: { version: '0.1.0', zone: 'eu-west' },
    check: { kind: 'stoq-ping', port: 9292, interval: 5_000, timeout: 1_000, rise: 2, fall: 3 },
    ttl: 20,
    status: 'passing',
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete fields[key];
    else fields[key] = value;
  }
  return fields;
}

const body = (overrides: Record<string, unknown> = {}) => encodeCanonical(wire(overrides));
const check = (overrides: Record<string, unknown>) => {
  const fields: Record<string, unknown> = {
    kind: 'stoq-ping',
    port: 9292,
    interval: 5_000,
    timeout: 1_000,
    rise: 2,
    fall: 3,
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete fields[key];
    else fields[key] = value;
  }
  return fields;
};
const bytes = (...parts: (number | Uint8Array)[]) =>
  Uint8Array.from(parts.flatMap((part) => (typeof part === 'number' ? [part] : [...part])));
const text = (value: string) => encodeCanonical(value);

describe('discovery transaction bodies', () => {
  it('register, renew and deregister round-trip; the register layout is the documented map', () => {
    const expected: RegisterTx = { op: 'register', ...registration() };
    assert.deepEqual(decodeDiscoveryBody(discoveryRegister(registration())), expected);
    assert.deepEqual(discoveryRegister(registration()), body());
    assert.deepEqual(decodeDiscoveryBody(discoveryRenew('acme', 'a1', 'warning')), {
      op: 'renew',
      service: 'acme',
      instance: 'a1',
      status: 'warning',
    });
    assert.deepEqual(
      discoveryRenew('acme', 'a1', 'warning'),
      encodeCanonical({ op: 'renew', status: 'warning', service: 'acme', instance: 'a1' }),
    );
    assert.deepEqual(decodeDiscoveryBody(discoveryDeregister('acme', '7')), {
      op: 'deregister',
      service: 'acme',
      instance: '7',
    });
    // Every kind of check, boundary values, an empty metadata map.
    const variants: InstanceRegistration[] = [
      registration({
        service: 'a',
        instance: '0',
        ttl: 8,
        metadata: {},
        ports: [{ protocol: 'tcp', port: 1 }],
        check: { kind: 'tcp', port: 1, interval: 1_000, timeout: 100, rise: 1, fall: 1 },
      }),
      registration({
        service: `a${'b'.repeat(61)}c`,
        instance: 'x'.repeat(63),
        ttl: 100_000,
        ports: [{ protocol: 'http', port: 65535 }],
        check: {
          kind: 'http',
          port: 65535,
          path: '/healthz?full=1',
          interval: 3_600_000,
          timeout: 3_600_000,
          rise: 10,
          fall: 10,
        },
        metadata: { 'build.sha': 'välue ✓' },
      }),
      registration({
        check: {
          kind: 'command',
          args: ['/usr/bin/check', '--quiet', 'a b'],
          interval: 10_000,
          timeout: 5_000,
          rise: 1,
          fall: 2,
        },
        identity: 'spiffe://example.org/ns/prod/sa/acme',
        status: 'critical',
      }),
    ];
    for (const input of variants) {
      assert.deepEqual(decodeDiscoveryBody(discoveryRegister(input)), {
        op: 'register',
        ...input,
      });
    }
  });

  it('addresses in any text form are stored as bytes and read back in canonical text', () => {
    const decoded = decodeDiscoveryBody(
      discoveryRegister(
        registration({
          addresses: ['2001:DB8:0:0:0:0:0:1', '::1', '10.0.0.1', '::ffff:0:1.2.3.4'],
        }),
      ),
    ) as RegisterTx;
    assert.deepEqual(decoded.addresses, ['2001:db8::1', '::1', '10.0.0.1', '::ffff:0:102:304']);
  });

  it('refuses each broken field with its own code', () => {
    const cases: [string, Uint8Array, DiscoveryErrorCode][] = [
      ['service empty', body({ service: '' }), C.INVALID_SERVICE_NAME],
      ['service uppercase', body({ service: 'Acme' }), C.INVALID_SERVICE_NAME],
      ['service digit first', body({ service: '1acme' }), C.INVALID_SERVICE_NAME],
      ['service hyphen last', body({ service: 'acme-' }), C.INVALID_SERVICE_NAME],
      ['service double hyphen', body({ service: 'a--b' }), C.INVALID_SERVICE_NAME],
      ['service underscore', body({ service: 'a_b' }), C.INVALID_SERVICE_NAME],
      ['service 64 chars', body({ service: 'a'.repeat(64) }), C.INVALID_SERVICE_NAME],
      ['service a number', body({ service: 7 }), C.INVALID_SERVICE_NAME],
      ['service huge text', body({ service: 'a'.repeat(5000) }), C.INVALID_SERVICE_NAME],
      ['instance empty', body({ instance: '' }), C.INVALID_INSTANCE_ID],
      ['instance hyphen first', body({ instance: '-x' }), C.INVALID_INSTANCE_ID],
      ['instance uppercase', body({ instance: 'Node-1' }), C.INVALID_INSTANCE_ID],
      ['instance with a dot', body({ instance: 'node.1' }), C.INVALID_INSTANCE_ID],
      ['instance 64 chars', body({ instance: 'x'.repeat(64) }), C.INVALID_INSTANCE_ID],
      ['instance bytes', body({ instance: new Uint8Array(3) }), C.INVALID_INSTANCE_ID],
      ['no addresses', body({ addresses: [] }), C.INVALID_ADDRESS],
      [
        'nine addresses',
        body({ addresses: Array.from({ length: 9 }, (_, i) => v4(10, 0, 0, i + 1)) }),
        C.INVALID_ADDRESS,
      ],
      ['5-byte address', body({ addresses: [new Uint8Array(5).fill(1)] }), C.INVALID_ADDRESS],
      ['0.0.0.0', body({ addresses: [v4(0, 0, 0, 0)] }), C.INVALID_ADDRESS],
      ['::', body({ addresses: [new Uint8Array(16)] }), C.INVALID_ADDRESS],
      [
        'IPv4-mapped',
        body({ addresses: [v6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304)] }),
        C.INVALID_ADDRESS,
      ],
      [
        'duplicate address',
        body({ addresses: [v4(10, 0, 0, 1), v4(10, 0, 0, 1)] }),
        C.INVALID_ADDRESS,
      ],
      ['address as text', body({ addresses: ['10.0.0.1'] }), C.INVALID_ADDRESS],
      ['addresses not a list', body({ addresses: v4(10, 0, 0, 1) }), C.INVALID_ADDRESS],
      ['no ports', body({ ports: [] }), C.INVALID_PORT],
      [
        'port 0',
        body({ ports: [{ protocol: 'stoq', port: 0 }], check: check({ port: 0 }) }),
        C.INVALID_PORT,
      ],
      ['port 65536', body({ ports: [{ protocol: 'stoq', port: 65536 }] }), C.INVALID_PORT],
      ['protocol ftp', body({ ports: [{ protocol: 'ftp', port: 21 }] }), C.INVALID_PORT],
      [
        'protocol twice',
        body({
          ports: [
            { protocol: 'stoq', port: 9292 },
            { protocol: 'stoq', port: 9293 },
          ],
        }),
        C.INVALID_PORT,
      ],
      ['port as text', body({ ports: [{ protocol: 'stoq', port: '9292' }] }), C.INVALID_PORT],
      ['port without protocol', body({ ports: [{ port: 9292 }] }), C.INVALID_PORT],
      [
        'port map with another field',
        body({ ports: [{ protocol: 'stoq', port: 9292, weight: 1 }] }),
        C.UNKNOWN_FIELD,
      ],
      ['identity https', body({ identity: 'https://hypermesh/node/a' }), C.INVALID_IDENTITY],
      ['identity bare', body({ identity: 'spiffe://' }), C.INVALID_IDENTITY],
      ['identity no path', body({ identity: 'spiffe://hypermesh' }), C.INVALID_IDENTITY],
      ['identity empty path', body({ identity: 'spiffe://hypermesh/' }), C.INVALID_IDENTITY],
      ['identity uppercase domain', body({ identity: 'spiffe://Hyper/x' }), C.INVALID_IDENTITY],
      ['identity dot-dot', body({ identity: 'spiffe://h/a/../b' }), C.INVALID_IDENTITY],
      ['identity empty segment', body({ identity: 'spiffe://h/a//b' }), C.INVALID_IDENTITY],
      ['identity query', body({ identity: 'spiffe://h/a?q=1' }), C.INVALID_IDENTITY],
      ['identity port', body({ identity: 'spiffe://h:443/a' }), C.INVALID_IDENTITY],
      [
        'identity 256 chars',
        body({ identity: `spiffe://h/${'a'.repeat(245)}` }),
        C.INVALID_IDENTITY,
      ],
      [
        'metadata 17 entries',
        body({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, ''])) }),
        C.INVALID_METADATA,
      ],
      ['metadata key uppercase', body({ metadata: { Version: '1' } }), C.INVALID_METADATA],
      ['metadata key hyphen first', body({ metadata: { '-x': '1' } }), C.INVALID_METADATA],
      ['metadata key 64 chars', body({ metadata: { ['k'.repeat(64)]: '1' } }), C.INVALID_METADATA],
      ['metadata key non-ASCII', body({ metadata: { clé: '1' } }), C.INVALID_METADATA],
      ['metadata value 256 bytes', body({ metadata: { k: 'v'.repeat(256) } }), C.INVALID_METADATA],
      ['metadata value newline', body({ metadata: { k: 'a\nb' } }), C.INVALID_METADATA],
      ['metadata value a number', body({ metadata: { k: 1 } }), C.INVALID_METADATA],
      ['metadata a list', body({ metadata: ['k', 'v'] }), C.INVALID_METADATA],
      ['check kind unknown', body({ check: check({ kind: 'ping' }) }), C.INVALID_HEALTH_CHECK],
      ['check without port', body({ check: check({ port: undefined }) }), C.INVALID_HEALTH_CHECK],
      ['stoq-ping with a path', body({ check: check({ path: '/' }) }), C.INVALID_HEALTH_CHECK],
      ['check on an undeclared port', body({ check: check({ port: 1 }) }), C.INVALID_HEALTH_CHECK],
      [
        'stoq-ping on an https port',
        body({ check: check({ port: 9443 }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'tcp check on a udp port',
        body({
          ports: [{ protocol: 'udp', port: 53 }],
          check: check({ kind: 'tcp', port: 53 }),
        }),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'http check without path',
        body({ check: check({ kind: 'http', port: 9443 }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'http path not absolute',
        body({ check: check({ kind: 'http', port: 9443, path: 'health' }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'http path with a space',
        body({ check: check({ kind: 'http', port: 9443, path: '/a b' }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'http path 256 chars',
        body({ check: check({ kind: 'http', port: 9443, path: `/${'a'.repeat(255)}` }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'command without args',
        body({ check: check({ kind: 'command', port: undefined, args: [] }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'command with 17 args',
        body({
          check: check({ kind: 'command', port: undefined, args: new Array(17).fill('x') }),
        }),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'command arg with a newline',
        body({ check: check({ kind: 'command', port: undefined, args: ['a\nb'] }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'command with a port',
        body({ check: check({ kind: 'command', args: ['/bin/true'] }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      ['interval 999 ms', body({ check: check({ interval: 999 }) }), C.INVALID_HEALTH_CHECK],
      [
        'interval above an hour',
        body({ check: check({ interval: 3_600_001 }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      ['timeout 99 ms', body({ check: check({ timeout: 99 }) }), C.INVALID_HEALTH_CHECK],
      [
        'timeout above interval',
        body({ check: check({ timeout: 5_001 }) }),
        C.INVALID_HEALTH_CHECK,
      ],
      ['rise 0', body({ check: check({ rise: 0 }) }), C.INVALID_HEALTH_CHECK],
      ['fall 11', body({ check: check({ fall: 11 }) }), C.INVALID_HEALTH_CHECK],
      ['rise negative', body({ check: check({ rise: -1 }) }), C.INVALID_HEALTH_CHECK],
      ['interval a float', body({ check: check({ interval: 1500.5 }) }), C.INVALID_HEALTH_CHECK],
      ['check a list', body({ check: [] }), C.INVALID_HEALTH_CHECK],
      ['check unknown field', body({ check: check({ retries: 3 }) }), C.UNKNOWN_FIELD],
      ['ttl 7', body({ ttl: 7 }), C.INVALID_TTL],
      ['ttl 100001', body({ ttl: 100_001 }), C.INVALID_TTL],
      ['ttl negative', body({ ttl: -20 }), C.INVALID_TTL],
      ['ttl text', body({ ttl: '20' }), C.INVALID_TTL],
      ['ttl 2^64-1', body({ ttl: 2n ** 64n - 1n }), C.INVALID_TTL],
      ['status ok', body({ status: 'ok' }), C.INVALID_STATUS],
      ['status uppercase', body({ status: 'PASSING' }), C.INVALID_STATUS],
      ['status a number', body({ status: 0 }), C.INVALID_STATUS],
      [
        'renew status unknown',
        encodeCanonical({ op: 'renew', status: 'up', service: 'a', instance: 'b' }),
        C.INVALID_STATUS,
      ],
      [
        'deregister bad service',
        encodeCanonical({ op: 'deregister', service: 'A', instance: 'b' }),
        C.INVALID_SERVICE_NAME,
      ],
    ];
    for (const [name, bad, code] of cases) {
      assert.throws(() => decodeDiscoveryBody(bad), discoveryCode(code, name));
    }
  });

  it('refuses anything but one canonical map of a known op with exactly its fields', () => {
    const deregister = encodeCanonical({ op: 'deregister', service: 'acme', instance: 'a' });
    const cases: [string, Uint8Array, DiscoveryErrorCode][] = [
      ['empty input', new Uint8Array(0), C.MALFORMED_BODY],
      ['not CBOR', Uint8Array.of(0xff, 0x00), C.MALFORMED_BODY],
      ['an array', encodeCanonical(['register']), C.MALFORMED_BODY],
      ['a text', text('register'), C.MALFORMED_BODY],
      ['empty map', encodeCanonical({}), C.MALFORMED_BODY],
      ['no op', encodeCanonical({ service: 'acme', instance: 'a' }), C.MALFORMED_BODY],
      ['unknown op', body({ op: 'update' }), C.MALFORMED_BODY],
      ['op a number', body({ op: 1 }), C.MALFORMED_BODY],
      ['missing ttl', body({ ttl: undefined }), C.MALFORMED_BODY],
      ['missing metadata', body({ metadata: undefined }), C.MALFORMED_BODY],
      [
        'renew without status',
        encodeCanonical({ op: 'renew', service: 'a', instance: 'b' }),
        C.MALFORMED_BODY,
      ],
      ['unknown field', body({ extra: 1 }), C.UNKNOWN_FIELD],
      ['a one-letter unknown field', body({ a: 1 }), C.UNKNOWN_FIELD],
      ['owner is not a body field', body({ owner: new Uint8Array(32) }), C.UNKNOWN_FIELD],
      ['expiresAt is not a body field', body({ expiresAt: 99 }), C.UNKNOWN_FIELD],
      [
        'a renew with a ttl',
        encodeCanonical({ op: 'renew', ttl: 9, status: 'passing', service: 'a', instance: 'b' }),
        C.UNKNOWN_FIELD,
      ],
      [
        'a deregister with a status',
        encodeCanonical({ op: 'deregister', status: 'passing', service: 'a', instance: 'b' }),
        C.UNKNOWN_FIELD,
      ],
      ['trailing byte', bytes(deregister, 0x00), C.MALFORMED_BODY],
      [
        'keys out of canonical order',
        bytes(
          0xa3,
          text('op'),
          text('deregister'),
          text('instance'),
          text('a'),
          text('service'),
          text('acme'),
        ),
        C.MALFORMED_BODY,
      ],
      [
        'a key twice',
        bytes(
          0xa3,
          text('op'),
          text('deregister'),
          text('service'),
          text('acme'),
          text('service'),
          text('acme'),
        ),
        C.MALFORMED_BODY,
      ],
      [
        'indefinite-length map',
        bytes(
          0xbf,
          text('op'),
          text('deregister'),
          text('service'),
          text('acme'),
          text('instance'),
          text('a'),
          0xff,
        ),
        C.MALFORMED_BODY,
      ],
      [
        'a non-shortest integer',
        bytes(
          0xa4,
          text('op'),
          text('renew'),
          text('status'),
          text('passing'),
          text('service'),
          text('acme'),
          text('instance'),
          0x78,
          0x01,
          0x61,
        ),
        C.MALFORMED_BODY,
      ],
      ['a float where a map is', Uint8Array.of(0xf9, 0x3c, 0x00), C.MALFORMED_BODY],
    ];
    for (const [name, bad, code] of cases) {
      assert.throws(() => decodeDiscoveryBody(bad), discoveryCode(code, name));
    }
  });

  it('refuses a body above the size limit before reading it', () => {
    const big = body({ metadata: { k: 'v' } });
    const padded = new Uint8Array(MAX_DISCOVERY_BODY_BYTES + 1);
    padded.set(big);
    assert.throws(() => decodeDiscoveryBody(padded), discoveryCode(C.BODY_TOO_LARGE));
    // Every field at its largest still fits.
    const largest = registration({
      addresses: Array.from({ length: 8 }, (_, i) => `2001:db8::${i + 1}`),
      identity: `spiffe://hypermesh/${'a'.repeat(236)}`,
      metadata: Object.fromEntries(
        Array.from({ length: 16 }, (_, i) => [`${i}`.padStart(63, 'k'), '✓'.repeat(85)]),
      ),
      check: {
        kind: 'command',
        args: new Array(16).fill('x'.repeat(255)),
        interval: 1_000,
        timeout: 1_000,
        rise: 1,
        fall: 1,
      },
    });
    const encoded = discoveryRegister(largest);
    assert.ok(encoded.length <= MAX_DISCOVERY_BODY_BYTES, `${encoded.length} bytes`);
    assert.deepEqual(decodeDiscoveryBody(encoded), { op: 'register', ...largest });
  });

  it('the builders refuse what the decoder would, with the same codes', () => {
    const cases: [string, () => unknown, DiscoveryErrorCode][] = [
      ['service', () => discoveryRegister(registration({ service: 'A' })), C.INVALID_SERVICE_NAME],
      ['instance', () => discoveryRegister(registration({ instance: '' })), C.INVALID_INSTANCE_ID],
      [
        'address text',
        () => discoveryRegister(registration({ addresses: ['host.example'] })),
        C.INVALID_ADDRESS,
      ],
      [
        'address octet',
        () => discoveryRegister(registration({ addresses: ['256.1.1.1'] })),
        C.INVALID_ADDRESS,
      ],
      [
        'address leading zero',
        () => discoveryRegister(registration({ addresses: ['01.1.1.1'] })),
        C.INVALID_ADDRESS,
      ],
      [
        'address zone',
        () => discoveryRegister(registration({ addresses: ['fe80::1%eth0'] })),
        C.INVALID_ADDRESS,
      ],
      [
        'address unspecified',
        () => discoveryRegister(registration({ addresses: ['0:0::0'] })),
        C.INVALID_ADDRESS,
      ],
      [
        'address mapped',
        () => discoveryRegister(registration({ addresses: ['::ffff:10.0.0.1'] })),
        C.INVALID_ADDRESS,
      ],
      [
        'address twice in two forms',
        () => discoveryRegister(registration({ addresses: ['::1', '0::1'] })),
        C.INVALID_ADDRESS,
      ],
      [
        'addresses not a list',
        () => discoveryRegister(registration({ addresses: '::1' as unknown as string[] })),
        C.INVALID_ADDRESS,
      ],
      [
        'port',
        () => discoveryRegister(registration({ ports: [{ protocol: 'stoq', port: 1.5 }] })),
        C.INVALID_PORT,
      ],
      [
        'identity',
        () => discoveryRegister(registration({ identity: 'spiffe://x' })),
        C.INVALID_IDENTITY,
      ],
      [
        'metadata',
        () => discoveryRegister(registration({ metadata: { k: '\u0007' } })),
        C.INVALID_METADATA,
      ],
      [
        'metadata lone surrogate',
        () => discoveryRegister(registration({ metadata: { k: '\uD800' } })),
        C.INVALID_METADATA,
      ],
      [
        'check',
        () => discoveryRegister(registration({ check: { ...registration().check, rise: 11 } })),
        C.INVALID_HEALTH_CHECK,
      ],
      [
        'check extra field',
        () =>
          discoveryRegister(
            registration({ check: { ...registration().check, path: '/' } as never }),
          ),
        C.INVALID_HEALTH_CHECK,
      ],
      ['ttl', () => discoveryRegister(registration({ ttl: 8.5 })), C.INVALID_TTL],
      [
        'status',
        () => discoveryRegister(registration({ status: 'up' as never })),
        C.INVALID_STATUS,
      ],
      ['renew status', () => discoveryRenew('acme', 'a', 'down' as never), C.INVALID_STATUS],
      ['renew service', () => discoveryRenew('-', 'a', 'passing'), C.INVALID_SERVICE_NAME],
      ['deregister instance', () => discoveryDeregister('acme', 'A'), C.INVALID_INSTANCE_ID],
    ];
    for (const [name, build, code] of cases) {
      assert.throws(build, discoveryCode(code, name));
    }
  });

  it('any valid registration round-trips and re-encodes to the same bytes', () => {
    const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/);
    const service = fc
      .stringMatching(/^[a-z](?:[a-z0-9-]{0,20}[a-z0-9])?$/)
      .filter((s) => !s.includes('--'));
    const ipv4 = fc.ipV4().filter((a) => a !== '0.0.0.0');
    const ipv6 = fc.ipV6().filter((a) => !/^(::|(0+:){7}0+|::ffff:.*)$/i.test(a));
    const arb = fc
      .record({
        service,
        instance: label,
        addresses: fc.uniqueArray(fc.oneof(ipv4, ipv6), { minLength: 1, maxLength: 8 }),
        port: fc.integer({ min: 1, max: 65535 }),
        metadata: fc.dictionary(
          fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/),
          fc.string({ maxLength: 40 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s)),
          { maxKeys: 16 },
        ),
        ttl: fc.integer({ min: 8, max: 100_000 }),
        status: fc.constantFrom('passing', 'warning', 'critical' as const),
        interval: fc.integer({ min: 1_000, max: 3_600_000 }),
        rise: fc.integer({ min: 1, max: 10 }),
      })
      .map((r) =>
        registration({
          service: r.service,
          instance: r.instance,
          addresses: r.addresses,
          ports: [{ protocol: 'stoq', port: r.port }],
          metadata: { ...r.metadata },
          ttl: r.ttl,
          status: r.status,
          check: {
            kind: 'stoq-ping',
            port: r.port,
            interval: r.interval,
            timeout: 100,
            rise: r.rise,
            fall: 1,
          },
        }),
      );
    fc.assert(
      fc.property(arb, (input) => {
        // Distinct texts may still name one address (e.g. "::1" and "0::1").
        fc.pre(
          new Set(input.addresses.map((a) => a.toLowerCase())).size === input.addresses.length,
        );
        let encoded: Uint8Array;
        try {
          encoded = discoveryRegister(input);
        } catch (error) {
          // Only two text forms of one address may be refused.
          assert.ok(error instanceof DiscoveryError && error.code === C.INVALID_ADDRESS);
          return;
        }
        const decoded = decodeDiscoveryBody(encoded) as RegisterTx;
        assert.equal(decoded.service, input.service);
        assert.deepEqual(decoded.metadata, input.metadata);
        const { op: _op, ...again } = decoded;
        assert.deepEqual(discoveryRegister(again), encoded, 'one value, one encoding');
      }),
      { numRuns: 300 },
    );
  });

  it('garbage never crashes the decoder: always a DiscoveryError', () => {
    const value = fc.letrec((tie) => ({
      item: fc.oneof(
        { depthSize: 'small' },
        fc.integer(),
        fc.string(),
        fc.uint8Array({ maxLength: 20 }),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('item'), { maxLength: 4 }),
        fc.dictionary(
          fc.constantFrom('op', 'ttl', 'check', 'ports', 'status', 'service', 'instance', 'x'),
          tie('item'),
          { maxKeys: 5 },
        ),
      ),
    })).item;
    fc.assert(
      fc.property(
        fc.oneof(
          value.map((v) => encodeCanonical(v)),
          fc.uint8Array(),
        ),
        (input) => {
          try {
            decodeDiscoveryBody(input);
          } catch (error) {
            assert.ok(error instanceof DiscoveryError, String(error));
          }
        },
      ),
      { numRuns: 500 },
    );
    // Mutations of a valid body: refused with a typed error or decoded, never a crash.
    const valid = body();
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
        const mutated = valid.slice();
        mutated[at] = byte;
        try {
          decodeDiscoveryBody(mutated);
        } catch (error) {
          assert.ok(error instanceof DiscoveryError, String(error));
        }
      }),
      { numRuns: 500 },
    );
  });
});
