import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHex } from '../../../src/crypto/bytes.js';
import {
  DnsZonesGenesisError,
  DnsZonesGenesisErrorCode,
  MAX_ZONES,
  checkDnsZonesGenesis,
  decodeZone,
  dnsZonesGenesisFromApp,
  dnsZonesGenesisToJson,
  dnsZonesInitialState,
  parseDnsZonesGenesis,
} from '../../../src/trustchain/dns-zones/index.js';
import { zoneParams } from './dns-zones-fixture.js';

const KEY = new Uint8Array(32).fill(7);
const json = (overrides: Record<string, unknown> = {}) => ({
  zones: [
    {
      apex: 'HyperMesh',
      admins: [toHex(KEY)],
      policy: 'open',
      soa: {
        ttl: 3600,
        mname: 'NS1.hypermesh',
        rname: 'hostmaster.hypermesh.',
        refresh: 3600,
        retry: 600,
        expire: 604800,
        minimum: 300,
      },
      nameservers: { ttl: 3600, hosts: ['ns2.hypermesh.', 'ns1.hypermesh.'] },
      ...overrides,
    },
  ],
});

const refused = (run: () => unknown, code: DnsZonesGenesisErrorCode, pattern?: RegExp) =>
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof DnsZonesGenesisError, String(error));
    assert.equal(error.code, code);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  });

describe('dns genesis section', () => {
  it('parses, canonicalizes, and round-trips through JSON', () => {
    const genesis = parseDnsZonesGenesis(json());
    const zone = genesis.zones[0]!;
    assert.equal(zone.apex, 'hypermesh.');
    assert.equal(zone.soa.mname, 'ns1.hypermesh.');
    assert.deepEqual(zone.nameservers.hosts, ['ns1.hypermesh.', 'ns2.hypermesh.']);
    assert.deepEqual(zone.admins, [KEY]);
    assert.deepEqual(parseDnsZonesGenesis(dnsZonesGenesisToJson(genesis)), genesis);
    assert.deepEqual(dnsZonesGenesisFromApp({ dns: json() }), genesis);
    assert.equal(dnsZonesGenesisFromApp({ caesar: {} }), undefined);
    assert.equal(dnsZonesGenesisFromApp(undefined), undefined);
  });

  it('refuses bad sections naming the field', () => {
    refused(() => parseDnsZonesGenesis({ zones: [] }), DnsZonesGenesisErrorCode.INVALID);
    refused(() => parseDnsZonesGenesis({ ...json(), extra: 1 }), DnsZonesGenesisErrorCode.INVALID);
    refused(
      () => parseDnsZonesGenesis(json({ admins: ['xyz'] })),
      DnsZonesGenesisErrorCode.INVALID,
      /admins/,
    );
    refused(
      () => parseDnsZonesGenesis(json({ admins: [] })),
      DnsZonesGenesisErrorCode.INVALID,
      /admins/,
    );
    refused(
      () => parseDnsZonesGenesis(json({ policy: 'closed' })),
      DnsZonesGenesisErrorCode.INVALID,
      /policy/,
    );
    refused(
      () => parseDnsZonesGenesis(json({ apex: 'a..b' })),
      DnsZonesGenesisErrorCode.INVALID,
      /apex/,
    );
    refused(
      () => parseDnsZonesGenesis(json({ apex: '*.example' })),
      DnsZonesGenesisErrorCode.INVALID,
      /wildcard/,
    );
    const twice = { zones: [json().zones[0], { ...json().zones[0], apex: 'corp.hypermesh.' }] };
    refused(() => parseDnsZonesGenesis(twice), DnsZonesGenesisErrorCode.OVERLAP, /overlap/);
    const same = { zones: [json().zones[0], json().zones[0]] };
    refused(() => parseDnsZonesGenesis(same), DnsZonesGenesisErrorCode.OVERLAP);
    const tooMany = {
      zones: Array.from({ length: MAX_ZONES + 1 }, (_, i) => ({
        ...json().zones[0],
        apex: `z${i}.`,
      })),
    };
    refused(() => parseDnsZonesGenesis(tooMany), DnsZonesGenesisErrorCode.INVALID);
    refused(() => checkDnsZonesGenesis({ zones: [] }), DnsZonesGenesisErrorCode.INVALID);
  });

  it('writes the zone list and one cluster zone per apex, sorted by key', () => {
    const entries = dnsZonesInitialState({
      zones: [zoneParams('hypermesh.', [KEY]), zoneParams('corp.example.', [KEY])],
    });
    const text = (key: Uint8Array) => Buffer.from(key).toString('latin1');
    assert.deepEqual(
      entries.map((e) => text(e.key)),
      ['dns/zone/\x04corp\x07example\x00', 'dns/zone/\x09hypermesh\x00', 'dns/zones'],
    );
    const zone = decodeZone(entries[1]!.value);
    assert.equal(zone.kind, 'cluster');
    assert.equal(zone.serial, 1);
    assert.equal(zone.createdAt, 1);
    assert.equal(zone.names, 0);
  });
});
