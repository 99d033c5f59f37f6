import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DnsErrorCode,
  canonicalName,
  compareNamesCanonical,
  isSubdomain,
  isWildcardName,
  labelCount,
  nameKey,
  nameToWire,
  namesEqual,
  wireToName,
} from '../../../src/trustchain/dns/index.js';

function rejects(text: string, code: DnsErrorCode): void {
  assert.throws(
    () => nameToWire(text),
    (error: { code?: string }) => error.code === code,
  );
}

describe('presentation names', () => {
  it('encode to RFC 1035 wire form, trailing dot optional', () => {
    const wire = Uint8Array.from([
      3,
      ...Buffer.from('www'),
      7,
      ...Buffer.from('Example'),
      3,
      ...Buffer.from('com'),
      0,
    ]);
    assert.deepEqual(nameToWire('www.Example.com.'), wire);
    assert.deepEqual(nameToWire('www.Example.com'), wire);
    assert.deepEqual(nameToWire('.'), Uint8Array.of(0));
    assert.equal(wireToName(wire), 'www.Example.com.');
    assert.equal(wireToName(Uint8Array.of(0)), '.');
  });

  it('read and write RFC 1035 §5.1 escapes', () => {
    assert.deepEqual(nameToWire('a\\.b.c'), Uint8Array.from([3, 0x61, 0x2e, 0x62, 1, 0x63, 0]));
    assert.deepEqual(
      nameToWire('\\000\\255\\\\.x'),
      Uint8Array.from([3, 0, 255, 0x5c, 1, 0x78, 0]),
    );
    assert.equal(wireToName(Uint8Array.from([3, 0x61, 0x2e, 0x20, 1, 0x40, 0])), 'a\\.\\032.\\@.');
  });

  it('refuse bad names with a precise code', () => {
    rejects('', DnsErrorCode.NAME_EMPTY_LABEL);
    rejects('a..b', DnsErrorCode.NAME_EMPTY_LABEL);
    rejects('.a', DnsErrorCode.NAME_EMPTY_LABEL);
    rejects(`${'x'.repeat(64)}.com`, DnsErrorCode.NAME_LABEL_TOO_LONG);
    nameToWire(`${'x'.repeat(63)}.com`);
    // 4 labels of 63 bytes: 4 * 64 + 1 = 257 wire bytes; 3 of 63 and one of 61 is exactly 255.
    rejects(Array(4).fill('y'.repeat(63)).join('.'), DnsErrorCode.NAME_TOO_LONG);
    assert.equal(
      nameToWire(`${Array(3).fill('y'.repeat(63)).join('.')}.${'z'.repeat(61)}`).length,
      255,
    );
    rejects(
      `${Array(3).fill('y'.repeat(63)).join('.')}.${'z'.repeat(62)}`,
      DnsErrorCode.NAME_TOO_LONG,
    );
    rejects('a b.com', DnsErrorCode.NAME_BAD_TEXT);
    rejects('bücher.de', DnsErrorCode.NAME_BAD_TEXT);
    rejects('a\\25x.com', DnsErrorCode.NAME_BAD_TEXT);
    rejects('a\\256.com', DnsErrorCode.NAME_BAD_TEXT);
    rejects('a\\', DnsErrorCode.NAME_BAD_TEXT);
  });

  it('compare case-insensitively (ASCII only, RFC 4343)', () => {
    assert.ok(namesEqual('WWW.hypermesh.', 'www.HyperMesh'));
    assert.ok(!namesEqual('\\195.x.', '\\227.x.'));
    assert.equal(canonicalName('WwW.HyperMesh'), 'www.hypermesh.');
    assert.equal(nameKey('A.b.'), nameKey('a.B'));
  });

  it('isSubdomain follows label boundaries', () => {
    assert.ok(isSubdomain('www.hypermesh.', 'hypermesh.'));
    assert.ok(isSubdomain('hypermesh.', 'HYPERMESH.'));
    assert.ok(isSubdomain('anything.', '.'));
    assert.ok(!isSubdomain('xhypermesh.', 'hypermesh.'));
    assert.ok(!isSubdomain('hypermesh.', 'www.hypermesh.'));
    // A label that contains the bytes of the ancestor's wire form is still not below it.
    assert.ok(!isSubdomain('x\\003com.', 'com.'));
  });

  it('wildcards are a leftmost "*" label only', () => {
    assert.ok(isWildcardName('*.hypermesh.'));
    assert.ok(!isWildcardName('a.*.hypermesh.'));
    assert.ok(!isWildcardName('\\*x.hypermesh.'));
    assert.equal(labelCount('*.hypermesh.'), 2);
    assert.equal(labelCount('.'), 0);
  });

  it('orders names canonically (the RFC 4034 §6.1 example)', () => {
    const ordered = [
      'example.',
      'a.example.',
      'yljkjljk.a.example.',
      'Z.a.example.',
      'zABC.a.EXAMPLE.',
      'z.example.',
      '\\001.z.example.',
      '*.z.example.',
      '\\200.z.example.',
    ];
    const shuffled = [...ordered].reverse();
    assert.deepEqual(shuffled.sort(compareNamesCanonical), ordered);
  });

  it('text form round-trips for arbitrary label bytes', () => {
    const label = fc.uint8Array({ minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(fc.array(label, { maxLength: 6 }), (labels) => {
        const wire = Uint8Array.from([...labels.flatMap((l) => [l.length, ...l]), 0]);
        const text = wireToName(wire);
        assert.deepEqual(nameToWire(text), wire);
        assert.equal(wireToName(nameToWire(text)), text);
      }),
    );
  });
});
