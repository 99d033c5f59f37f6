import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError } from '../../src/node/cli-error.js';
import { generateZoneKey, genesisDnskeyJson, zoneKeyFileName } from '../../src/node/dns-keys.js';
import { characterStrings, formatRecord, recordsFromArguments } from '../../src/node/dns-tools.js';
import { parseRecord } from '../../src/trustchain/dns/index.js';
import {
  DnsZonesGenesisError,
  DnsZonesStateError,
  DnsZonesStateErrorCode,
  INDEX_BUCKETS,
  bucketOf,
  dnsIndexQuery,
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
