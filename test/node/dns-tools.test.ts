import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CliError } from '../../src/node/cli-error.js';
import { generateZoneKey, genesisDnskeyJson, zoneKeyFileName } from '../../src/node/dns-keys.js';
import {
  characterStrings,
  formatRecord,
  publicKeyArgument,
  recordsFromArguments,
  zoneCreateBody,
  zoneParams,
} from '../../src/node/dns-tools.js';
import { createWalletKey } from '../../src/node/wallet.js';
import { parseRecord } from '../../src/trustchain/dns/index.js';
import {
  DnsZonesGenesisError,
  DnsZonesStateError,
  DnsZonesStateErrorCode,
  INDEX_BUCKETS,
  bucketOf,
  dnsIndexQuery,
  decodeDnsZonesBody,
  dnsNameRegister,
  dnsZonesGenesisToJson,
  dnsZonesInitialState,
  parseDnsZonesGenesis,
  verifyDnsIndex,
} from '../../src/trustchain/dns-zones/index.js';
import { makeSender, hex } from '../consensus/application/fixture.js';
import { dnsTx, openDnsNode, clusterGenesis } from '../trustchain/dns-zones/dns-zones-fixture.js';
import { nameToWire } from '../../src/trustchain/dns/index.js';

/**
 * The pure parts of `hypermesh dns` and of the signed genesis zone: records as written on the
 * command line, records printed in zone-file form, the optional `dnskey` of a genesis zone entry
 * (refusals, and a section without it unchanged), and the proven `dns/index` query `dns zone`
 * enumerates a zone with.
 */

function cliRefusal(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof CliError, String(error));
    assert.match(error.message, pattern);
    return true;
  };
}

describe('dns set: VALUE arguments', () => {
  const cases: Array<[string, string[], string[]]> = [
    [
      'A',
      ['192.0.2.1', '192.0.2.2'],
      ['www.hypermesh. 300 IN A 192.0.2.1', 'www.hypermesh. 300 IN A 192.0.2.2'],
    ],
    ['aaaa', ['2001:DB8:0::1'], ['www.hypermesh. 300 IN AAAA 2001:db8::1']],
    ['CNAME', ['Target.Hypermesh.'], ['www.hypermesh. 300 IN CNAME target.hypermesh.']],
    ['MX', ['10 mail.hypermesh.'], ['www.hypermesh. 300 IN MX 10 mail.hypermesh.']],
    [
      'SRV',
      ['1 5 9292 node-1.hypermesh.'],
      ['www.hypermesh. 300 IN SRV 1 5 9292 node-1.hypermesh.'],
    ],
    ['TXT', ['say "hi"\\'], ['www.hypermesh. 300 IN TXT "say \\"hi\\"\\\\"']],
    ['CAA', ['0 issue "hypermesh ca"'], ['www.hypermesh. 300 IN CAA 0 issue "hypermesh ca"']],
    ['TLSA', [`3 1 1 ${'AB'.repeat(32)}`], [`www.hypermesh. 300 IN TLSA 3 1 1 ${'AB'.repeat(32)}`]],
    [
      'DS',
      [`12345 13 2 ${'cd'.repeat(32)}`],
      [`www.hypermesh. 300 IN DS 12345 13 2 ${'CD'.repeat(32)}`],
    ],
    ['HTTPS', ['1 . alpn=h3,h2 port=443'], ['www.hypermesh. 300 IN HTTPS 1 . alpn=h3,h2 port=443']],
    ['A', ['{"address":"192.0.2.9"}'], ['www.hypermesh. 300 IN A 192.0.2.9']],
    ['TYPE65400', ['{"rdata":"0a0b"}'], ['www.hypermesh. 300 IN TYPE65400 \\# 2 0A0B']],
  ];
  for (const [type, values, lines] of cases) {
    it(`${type} ${values.join(' | ')}`, () => {
      const inputs = recordsFromArguments('www.hypermesh.', type, values, 300);
      assert.deepEqual(
        inputs.map((input) => formatRecord(parseRecord(input))),
        lines,
      );
    });
  }

  it('splits long TXT values into character-strings of whole UTF-8 characters', () => {
    const text = `${'a'.repeat(254)}é${'b'.repeat(300)}`;
    const parts = characterStrings(text);
    assert.deepEqual(
      parts.map((part) => Buffer.byteLength(part)),
      [254, 255, 47],
    );
    assert.equal(parts.join(''), text);
    const [input] = recordsFromArguments('t.hypermesh.', 'TXT', [text], 60);
    assert.equal((parseRecord(input).data as { strings: Uint8Array[] }).strings.length, 3);
  });

  it('refuses what the record rules refuse, naming the VALUE and the code', () => {
    assert.throws(
      () => recordsFromArguments('www.hypermesh.', 'A', ['192.0.2.1', '300.1.1.1'], 300),
      cliRefusal(
        /^VALUE 2 \("300\.1\.1\.1"\)\.data\.address: expected an IPv4 address.* \[DNS_ZONES_INVALID_RECORD\]$/,
      ),
    );
    assert.throws(
      () => recordsFromArguments('www.hypermesh.', 'SRV', ['1 5 70000 x.'], 300),
      cliRefusal(/data\.port: .*65535.*\[DNS_ZONES_INVALID_RECORD\]/),
    );
    assert.throws(
      () => recordsFromArguments('www.hypermesh.', 'A', ['192.0.2.1 192.0.2.2'], 300),
      cliRefusal(/A takes one ADDRESS per VALUE/),
    );
    assert.throws(
      () => recordsFromArguments('www.hypermesh.', 'BOGUS', ['x'], 300),
      cliRefusal(/"BOGUS" is not a record type/),
    );
    assert.throws(
      () => recordsFromArguments('www.hypermesh.', 'TYPE65400', ['0a0b'], 300),
      cliRefusal(/JSON form of the record's data/),
    );
    assert.throws(
      () => recordsFromArguments('www.hypermesh.', 'A', ['{"address":'], 300),
      cliRefusal(/^A value "\{\\"address\\":":/),
    );
  });
});

describe('dns zone-create and transfer: arguments', () => {
  const admin = new Uint8Array(32).fill(7);

  it('fills the SOA from the name servers and the apex, and builds the body the module reads', () => {
    const params = zoneParams({
      apex: 'example.',
      admins: [admin],
      nameservers: ['ns2.hypermesh.', 'ns1.hypermesh.'],
    });
    assert.deepEqual(params.soa, {
      ttl: 3600,
      mname: 'ns2.hypermesh.',
      rname: 'hostmaster.example.',
      refresh: 3600,
      retry: 600,
      expire: 86_400,
      minimum: 60,
    });
    assert.equal(params.policy, 'open');
    const tx = decodeDnsZonesBody(zoneCreateBody(params));
    assert.equal(tx.op, 'zone-create');
    assert.ok(tx.op === 'zone-create');
    assert.deepEqual(tx.nameservers, { ttl: 3600, hosts: ['ns1.hypermesh.', 'ns2.hypermesh.'] });
    assert.deepEqual(tx.admins, [admin]);
    const given = zoneParams({
      apex: 'example.',
      admins: [admin],
      nameservers: ['ns1.example.'],
      policy: 'admins',
      nsTtl: 60,
      soa: { mname: 'a.example.', rname: 'dns.example.', minimum: 5 },
    });
    assert.deepEqual(
      { ...given.soa, policy: given.policy, nsTtl: given.nameservers.ttl },
      {
        ttl: 3600,
        mname: 'a.example.',
        rname: 'dns.example.',
        refresh: 3600,
        retry: 600,
        expire: 86_400,
        minimum: 5,
        policy: 'admins',
        nsTtl: 60,
      },
    );
  });

  it('refuses bad zone parameters with the module code, before anything is sent', () => {
    const base = { apex: 'example.', admins: [admin], nameservers: ['ns1.hypermesh.'] };
    assert.throws(
      () => zoneParams({ ...base, nameservers: [] }),
      cliRefusal(/--ns HOST .*\[DNS_ZONES_INVALID_ZONE\]/),
    );
    assert.throws(
      () => zoneParams({ ...base, soa: { rname: 'hostmaster@example.' } }),
      cliRefusal(/--rname "hostmaster@example\.": write the mailbox as a name/),
    );
    const refused = (params: Parameters<typeof zoneParams>[0], pattern: RegExp) =>
      assert.throws(
        () => zoneCreateBody(zoneParams(params)),
        (error: unknown) => {
          assert.ok(error instanceof CliError && error.exitCode === 2, String(error));
          assert.match(error.message, pattern);
          return true;
        },
      );
    refused(
      { ...base, apex: '*.example.' },
      /apex cannot be a wildcard \[DNS_ZONES_INVALID_NAME\]/,
    );
    refused({ ...base, apex: '.' }, /\[DNS_ZONES_INVALID_NAME\]/);
    refused(
      { ...base, policy: 'everyone' },
      /policy: expected one of open, admins \[DNS_ZONES_INVALID_ZONE\]/,
    );
    refused(
      { ...base, admins: [admin, admin] },
      /a key is listed twice \[DNS_ZONES_INVALID_ZONE\]/,
    );
    refused(
      { ...base, nameservers: ['ns1.hypermesh.', 'ns1.hypermesh.'] },
      /listed twice \[DNS_ZONES_INVALID_ZONE\]/,
    );
  });

  it('takes a public key as 64 hex digits or from a key file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-dns-key-'));
    try {
      const wallet = await createWalletKey(path.join(dir, 'bob.key'));
      assert.deepEqual(await publicKeyArgument(wallet.file, '--to'), wallet.publicKey);
      const hexKey = Buffer.from(wallet.publicKey).toString('hex');
      assert.deepEqual(await publicKeyArgument(hexKey.toUpperCase(), '--to'), wallet.publicKey);
      assert.deepEqual(await publicKeyArgument(`0x${hexKey}`, '--to'), wallet.publicKey);
      await assert.rejects(
        publicKeyArgument(hexKey.slice(1), '--to'),
        cliRefusal(
          /--to "[0-9a-f]{63}" is not a public key: it has 63 hex digits, an Ed25519 public key has 64/,
        ),
      );
      await assert.rejects(
        publicKeyArgument(path.join(dir, 'missing.key'), '--admin'),
        cliRefusal(
          /--admin ".*missing\.key" is neither an Ed25519 public key \(64 hex digits\) nor a readable key file: /,
        ),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('genesis: the DNSKEY of a signed zone', () => {
  const admin = makeSender();
  const base = () => dnsZonesGenesisToJson(clusterGenesis([admin.publicKey]));

  it('is optional: a section without it round-trips without it and writes the same state', () => {
    const plain = base();
    const key = generateZoneKey();
    const signed = {
      zones: [{ ...plain.zones[0]!, dnskey: genesisDnskeyJson(key.dnskey) }],
    };
    const parsedPlain = parseDnsZonesGenesis(JSON.parse(JSON.stringify(plain)));
    const parsedSigned = parseDnsZonesGenesis(JSON.parse(JSON.stringify(signed)));
    assert.equal(parsedPlain.dnskeys, undefined);
    assert.deepEqual(dnsZonesGenesisToJson(parsedPlain), plain);
    assert.deepEqual(dnsZonesGenesisToJson(parsedSigned), signed);
    assert.deepEqual(parsedSigned.dnskeys?.get('hypermesh.'), key.dnskey);
    // The key is not consensus state: both sections initialise the chain identically.
    assert.deepEqual(dnsZonesInitialState(parsedSigned), dnsZonesInitialState(parsedPlain));
  });

  it('refuses keys the node cannot sign with, naming the field', () => {
    const dnskey = genesisDnskeyJson(generateZoneKey().dnskey);
    const refused = (patch: Record<string, unknown>, pattern: RegExp) =>
      assert.throws(
        () =>
          parseDnsZonesGenesis({
            zones: [{ ...base().zones[0]!, dnskey: { ...dnskey, ...patch } }],
          }),
        (error: unknown) => {
          assert.ok(error instanceof DnsZonesGenesisError);
          assert.match(error.message, pattern);
          return true;
        },
      );
    refused({ algorithm: 8 }, /zones\[0\]\.dnskey\.algorithm: expected 13/);
    refused({ flags: 1 }, /zones\[0\]\.dnskey\.flags: .*Zone Key bit/);
    refused({ protocol: 2 }, /zones\[0\]\.dnskey\.protocol: expected 3/);
    refused(
      { publicKey: Buffer.alloc(64, 0).toString('base64') },
      /not a point on the P-256 curve/,
    );
    refused({ publicKey: 'AAAA' }, /64-byte P-256 point/);
    refused({ extra: 1 }, /zones\[0\]\.dnskey: unexpected key "extra"/);
  });

  it('names key files after their zone', () => {
    assert.equal(zoneKeyFileName('HyperMesh.'), 'dnssec-hypermesh.key');
    assert.equal(zoneKeyFileName('corp.example'), 'dnssec-corp.example.key');
  });
});

describe('the dns/index query', () => {
  it('lists every name of a zone across its buckets, proven; tampering fails', async () => {
    const admin = makeSender();
    const alice = makeSender();
    const node = await openDnsNode(clusterGenesis([admin.publicKey]));
    try {
      node.executeAndCommit([]);
      const names = ['a.hypermesh.', 'b.hypermesh.', 'c.hypermesh.', 'd.b.hypermesh.'];
      for (const name of names) {
        const result = node.executeAndCommit([dnsTx(alice, dnsNameRegister(name))]);
        assert.equal(result.txResults[0]!.code, 0, result.txResults[0]!.log);
      }
      const found: string[] = [];
      for (let bucket = 0; bucket < INDEX_BUCKETS; bucket++) {
        const listed = verifyDnsIndex(
          'hypermesh.',
          bucket,
          node.app.query(dnsIndexQuery('HYPERMESH', bucket)),
        );
        for (const name of listed) assert.equal(bucketOf(nameToWire(name)), bucket);
        found.push(...listed);
      }
      assert.deepEqual(found.sort(), [...names].sort());

      const bucket = bucketOf(nameToWire('a.hypermesh.'));
      const response = node.app.query(dnsIndexQuery('hypermesh.', bucket));
      const value = Uint8Array.from(response.value!);
      value[value.length - 1]! ^= 1;
      assert.throws(
        () => verifyDnsIndex('hypermesh.', bucket, { ...response, value }),
        (error: unknown) =>
          error instanceof DnsZonesStateError &&
          error.code === DnsZonesStateErrorCode.PROOF_INVALID,
      );
      // The answer for one bucket does not pass for another.
      assert.throws(() => verifyDnsIndex('hypermesh.', (bucket + 1) % 256, response));
      assert.throws(() => dnsIndexQuery('hypermesh.', 256), /bucket 256 is not in 0\.\.255/);
      assert.equal(hex(response.stateRoot).length, 64);
    } finally {
      await node.close();
    }
  });
});
