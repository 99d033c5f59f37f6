import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatIpAddress, parseIpAddress } from '../../src/discovery/index.js';

describe('discovery IP literals', () => {
  it('formats IPv6 as RFC 5952 §4 says', () => {
    const cases: [string, string][] = [
      ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // §4.2.2: no "::" for one group
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // §4.2.3: the longest run
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // §4.2.3: the first of equal runs
      ['2001:DB8::AB', '2001:db8::ab'], // §4.3: lowercase
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['fe80::1:2:3:4', 'fe80::1:2:3:4'],
      ['::192.0.2.1', '::c000:201'],
    ];
    for (const [input, expected] of cases) {
      const bytes = parseIpAddress(input);
      assert.ok(bytes !== undefined, input);
      assert.equal(formatIpAddress(bytes), expected, input);
    }
    assert.equal(formatIpAddress(parseIpAddress('192.0.2.1')!), '192.0.2.1');
  });

  it('refuses what is not an IP literal', () => {
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.0.0.1',
      '01.2.3.4',
      '1.2.3.4 ',
      'a.b.c.d',
      ':::',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7::8',
      '12345::',
      'fe80::1%eth0',
      '::1.2.3',
      '1.2.3.4::',
      'g::1',
      '[::1]',
      'localhost',
    ]) {
      assert.equal(parseIpAddress(bad), undefined, bad);
      assert.equal(isIP(bad) === 0 || bad.includes('%'), true, `node agrees on ${bad}`);
    }
  });

  it('agrees with node:net and round-trips through its canonical text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const bytes = parseIpAddress(text);
        assert.ok(bytes !== undefined, text);
        assert.equal(bytes.length, isIP(text) === 4 ? 4 : 16);
        const canonical = formatIpAddress(bytes);
        assert.deepEqual(parseIpAddress(canonical), bytes);
        assert.equal(formatIpAddress(parseIpAddress(canonical)!), canonical);
        // The URL parser also writes IPv6 hosts in RFC 5952 form.
        if (bytes.length === 16) {
          const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
          if (!host.includes('.')) assert.equal(canonical, host);
        }
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const text = formatIpAddress(bytes);
        assert.equal(isIP(text), 6);
        assert.deepEqual(parseIpAddress(text), bytes);
      }),
      { numRuns: 1000 },
    );
  });
});
