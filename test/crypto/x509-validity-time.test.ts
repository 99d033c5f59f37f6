import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { concatBytes } from '../../src/crypto/bytes.js';
import { TAG, children, encodingOf, readWhole, tlv, type Tlv } from '../../src/crypto/der.js';
import { X509Error, X509ErrorCode, createRootCa, parseCertificate } from '../../src/crypto/x509.js';
import { time } from '../../src/trustchain/ca/der.js';

/**
 * RFC 5280 §4.1.2.5 validity times: UTCTime for 1950-2049, GeneralizedTime from 2050, every
 * field in range. Each case rebuilds a real certificate with one validity time replaced; the
 * signature no longer matches, which the parser does not check (verifyChain does).
 */

let certificate: Uint8Array;

before(async () => {
  certificate = (await createRootCa({ cluster: 'validity-time-test' })).certificate;
});

const utc = (text: string): Uint8Array => tlv(TAG.utcTime, new TextEncoder().encode(text));
const generalized = (text: string): Uint8Array =>
  tlv(TAG.generalizedTime, new TextEncoder().encode(text));

/** `der` with the validity's notAfter (or notBefore) replaced by the encoded time `value`. */
function withValidityTime(der: Uint8Array, value: Uint8Array, which: 0 | 1 = 1): Uint8Array {
  const [tbs, ...signature] = children(der, readWhole(der)) as [Tlv, ...Tlv[]];
  const tbsParts = children(der, tbs);
  // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject, ...
  assert.equal(tbsParts[0]?.tag, 0xa0, 'a v3 certificate');
  const validityAt = 4;
  const times = children(der, tbsParts[validityAt] as Tlv).map((part) => encodingOf(der, part));
  times[which] = value;
  const parts = tbsParts.map((part, i) =>
    i === validityAt ? tlv(TAG.sequence, concatBytes(...times)) : encodingOf(der, part),
  );
  return tlv(
    TAG.sequence,
    concatBytes(
      tlv(TAG.sequence, concatBytes(...parts)),
      ...signature.map((part) => encodingOf(der, part)),
    ),
  );
}

function rejectsMalformed(der: Uint8Array, what: string): void {
  assert.throws(
    () => parseCertificate(der),
    (error: unknown) => {
      assert.ok(error instanceof X509Error, `${what}: expected X509Error, got ${String(error)}`);
      assert.equal(error.code, X509ErrorCode.MALFORMED_CERTIFICATE, `${what}: ${error.message}`);
      return true;
    },
    what,
  );
}

/** Impossible times OpenSSL prints as "Bad time value". */
const impossible: ReadonlyArray<readonly [string, Uint8Array]> = [
  ['minute 60, second 99 (once read as 13:01:39)', utc('240615126099Z')],
  ['leap second 60', utc('241231235960Z')],
  ['hour 24', utc('240615240000Z')],
  ['month 13', utc('241315000000Z')],
  ['month 0', utc('240015000000Z')],
  ['day 0', utc('240600000000Z')],
  ['June 31', utc('240631000000Z')],
  ['February 30', utc('240230000000Z')],
  ['February 29 of 1999', utc('990229000000Z')],
  ['February 29 of 2100', generalized('21000229000000Z')],
  ['second 60 in GeneralizedTime', generalized('20500101000060Z')],
];

describe('X.509 validity times (RFC 5280 §4.1.2.5)', () => {
  it('the untouched certificate parses (the rebuild itself is sound)', () => {
    const parsed = parseCertificate(certificate);
    const rebuilt = withValidityTime(certificate, time(parsed.notAfter));
    assert.deepEqual(rebuilt, certificate);
  });

  for (const [name, value] of impossible) {
    it(`refuses ${name}`, () => rejectsMalformed(withValidityTime(certificate, value), name));
  }

  it('refuses an impossible notBefore too', () => {
    rejectsMalformed(withValidityTime(certificate, utc('240615126099Z'), 0), 'notBefore');
  });

  const oneEncodingPerInstant: ReadonlyArray<readonly [string, Uint8Array]> = [
    ['GeneralizedTime in 2049', generalized('20491231235959Z')],
    ['GeneralizedTime in 2024', generalized('20240615120000Z')],
    ['GeneralizedTime in 1999', generalized('19991231235959Z')],
    ['GeneralizedTime in 1950', generalized('19500101000000Z')],
    // Date.UTC would have read these as 1999 and 1950.
    ['GeneralizedTime in year 0099', generalized('00991231235959Z')],
    ['GeneralizedTime in year 0050', generalized('00500101000000Z')],
    ['GeneralizedTime in year 0000', generalized('00000101000000Z')],
  ];
  for (const [name, value] of oneEncodingPerInstant) {
    it(`refuses ${name} (UTCTime is the only encoding before 2050)`, () =>
      rejectsMalformed(withValidityTime(certificate, value), name));
  }

  it('refuses times that are not YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ', () => {
    for (const value of [
      utc('2406151200Z'),
      utc('240615120000+0000'),
      utc('240615120000.5Z'),
      generalized('20500101000000.5Z'),
      utc('20500101000000Z'),
      generalized('500101000000Z'),
      tlv(TAG.octetString, new TextEncoder().encode('240615120000Z')),
    ]) {
      rejectsMalformed(withValidityTime(certificate, value), Buffer.from(value).toString('hex'));
    }
  });

  it('reads the boundary times and far-future notAfter values exactly', () => {
    const cases: ReadonlyArray<readonly [Uint8Array, string]> = [
      [utc('500101000000Z'), '1950-01-01T00:00:00.000Z'],
      [utc('991231235959Z'), '1999-12-31T23:59:59.000Z'],
      [utc('000229000000Z'), '2000-02-29T00:00:00.000Z'],
      [utc('491231235959Z'), '2049-12-31T23:59:59.000Z'],
      [generalized('20500101000000Z'), '2050-01-01T00:00:00.000Z'],
      [generalized('20960229235959Z'), '2096-02-29T23:59:59.000Z'],
      [generalized('24000229000000Z'), '2400-02-29T00:00:00.000Z'],
      // RFC 5280 §4.1.2.5: "no well-defined expiration date".
      [generalized('99991231235959Z'), '9999-12-31T23:59:59.000Z'],
    ];
    for (const [value, iso] of cases) {
      const parsed = parseCertificate(withValidityTime(certificate, value));
      assert.equal(parsed.notAfter.toISOString(), iso);
    }
  });

  it('reads back every time the CA writer (trustchain/ca/der.ts time()) encodes', () => {
    for (const iso of [
      '1950-01-01T00:00:00Z',
      '2026-11-28T20:11:39Z',
      '2049-12-31T23:59:59Z',
      '2050-01-01T00:00:00Z',
      '2099-06-15T12:30:45Z',
      '9999-12-31T23:59:59Z',
    ]) {
      const date = new Date(iso);
      const parsed = parseCertificate(withValidityTime(certificate, time(date)));
      assert.equal(parsed.notAfter.getTime(), date.getTime(), iso);
    }
  });
});

const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
if (openssl.status !== 0 && process.env.CI === 'true') {
  throw new Error('openssl is required in CI (.ci/run installs it) but was not found on PATH');
}
const skip =
  openssl.status === 0 ? false : 'openssl not found on PATH: install it to run this interop test';

describe('validity times refused like openssl does', { skip }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hypermesh-x509-time-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('openssl prints "Bad time value" for each impossible time we refuse', () => {
    for (const [name, value] of impossible) {
      const der = withValidityTime(certificate, value);
      const path = join(dir, `${name.replace(/\W+/g, '-')}.der`);
      writeFileSync(path, der);
      const result = spawnSync(
        'openssl',
        ['x509', '-inform', 'DER', '-in', path, '-noout', '-enddate'],
        { encoding: 'utf8' },
      );
      assert.match(`${result.stdout}${result.stderr}`, /notAfter=Bad time value/, name);
      rejectsMalformed(der, name);
    }
  });
});

describe('validity windows a certificate can encode', () => {
  it('refuses to issue a certificate expiring after 9999 or starting before 1950', async () => {
    await assert.rejects(
      createRootCa({ cluster: 'validity-time-test', validityDays: 3_000_000 }),
      (error: unknown) =>
        error instanceof X509Error &&
        error.code === X509ErrorCode.INVALID_ARGUMENT &&
        /notAfter falls in year \d+; X\.509 validity times must lie in 1950\.\.9999/.test(
          error.message,
        ),
    );
    await assert.rejects(
      createRootCa({ cluster: 'validity-time-test', now: new Date(Date.UTC(1949, 5, 1)) }),
      (error: unknown) =>
        error instanceof X509Error && /notBefore falls in year 1949/.test(error.message),
    );
  });

  it('issues one expiring in 9999, which parses back', async () => {
    const now = new Date();
    const end = Date.UTC(9999, 11, 31);
    const days = Math.floor((end - now.getTime()) / 86_400_000);
    const ca = await createRootCa({ cluster: 'validity-time-test', validityDays: days, now });
    assert.equal(parseCertificate(ca.certificate).notAfter.getUTCFullYear(), 9999);
  });
});
