import assert from 'node:assert/strict';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { derToPem } from '../../../src/crypto/x509.js';
import { children, contentOf, encodingOf, readWhole, type Tlv } from '../../../src/crypto/der.js';
import {
  createCsr,
  MAX_CSR_BYTES,
  MAX_RSA_EXPONENT,
  parseCsr,
} from '../../../src/trustchain/ca/csr.js';
import {
  bitString,
  constructed,
  contextConstructed,
  derNull,
  oid,
  sequence,
  unsignedInteger,
} from '../../../src/trustchain/ca/der.js';
import { CaError, CaErrorCode } from '../../../src/trustchain/ca/errors.js';
import { generateKey, isCaError, runOpenssl, SKIP_WITHOUT_OPENSSL } from './fixtures.js';

describe('CSR parsing', () => {
  for (const kind of ['p256', 'ed25519', 'rsa'] as const) {
    it(`accepts a ${kind} CSR built with node:crypto, DER and PEM`, () => {
      const der = createCsr({
        privateKey: generateKey(kind),
        commonName: 'a.example.com',
        dnsNames: ['a.example.com'],
        ipAddresses: ['192.0.2.1'],
        uris: ['spiffe://c/x'],
      });
      const parsed = parseCsr(der);
      assert.equal(parsed.keyType, kind);
      assert.equal(parsed.commonName, 'a.example.com');
      assert.deepEqual(parsed.requestedNames, {
        dnsNames: ['a.example.com'],
        ipAddresses: ['192.0.2.1'],
        uris: ['spiffe://c/x'],
        otherNames: 0,
      });
      assert.equal(parsed.rsaBits, kind === 'rsa' ? 2048 : null);
      assert.deepEqual(parseCsr(derToPem(der, 'CERTIFICATE REQUEST')).der, der);
    });
  }

  it('refuses a CSR whose signed content was altered', () => {
    const der = createCsr({ privateKey: generateKey('p256'), commonName: 'aaaa.example.com' });
    const text = Buffer.from(der).toString('latin1').replace('aaaa', 'bbbb');
    assert.throws(
      () => parseCsr(new Uint8Array(Buffer.from(text, 'latin1'))),
      isCaError(CaErrorCode.CSR_BAD_SIGNATURE),
    );
  });

  it('refuses a CSR signed by another key (the subject key swapped)', () => {
    const a = createCsr({ privateKey: generateKey('ed25519') });
    const b = createCsr({ privateKey: generateKey('ed25519') });
    // Same length structures: graft b's signature onto a.
    const forged = new Uint8Array(a);
    forged.set(b.subarray(b.length - 64), a.length - 64);
    assert.throws(() => parseCsr(forged), isCaError(CaErrorCode.CSR_BAD_SIGNATURE));
  });

  it('refuses an Ed25519 subject key of small order (the identity signs everything)', () => {
    // A real Ed25519 CSR with the key replaced by the identity point 01 00…00 and the signature
    // by R = 01 00…00, s = 0: OpenSSL verifies that for any message.
    const real = createCsr({ privateKey: generateKey('ed25519'), commonName: 'victim.example' });
    const forged = new Uint8Array(real);
    const prefix = Buffer.from('302a300506032b6570032100', 'hex');
    const at = Buffer.from(forged).indexOf(prefix) + prefix.length;
    const identity = new Uint8Array(32);
    identity[0] = 1;
    forged.set(identity, at);
    forged.set(new Uint8Array(64), forged.length - 64);
    forged.set(identity, forged.length - 64);
    const [tbs] = children(forged, readWhole(forged));
    const tbsBytes = encodingOf(forged, tbs as Tlv);
    const key = createPublicKey({
      key: Buffer.concat([prefix, identity]),
      format: 'der',
      type: 'spki',
    });
    assert.equal(
      verify(null, tbsBytes, key, forged.subarray(forged.length - 64)),
      true,
      'OpenSSL accepts the forged signature',
    );
    assert.throws(() => parseCsr(forged), isCaError(CaErrorCode.CSR_INVALID_KEY));
  });

  it('refuses an RSA key whose public exponent is not below 2^256 (BR §6.1.6)', () => {
    // A 2048-bit modulus with a 1024-bit exponent, in a well-formed and correctly signed CSR.
    const big = rsaKeyWithExponent(2048, (1n << 1023n) + 1n, 2n);
    assert.equal(big.asymmetricKeyDetails?.publicExponent?.toString(2).length, 1024);
    const der = createCsr({ privateKey: big, commonName: 'big-e.example.com' });
    const [info, , signature] = children(der, readWhole(der)) as [Tlv, Tlv, Tlv];
    const signed = encodingOf(der, info);
    const signatureBytes = contentOf(der, signature).subarray(1);
    assert.ok(verify('sha256', signed, createPublicKey(big), signatureBytes), 'signature verifies');
    assert.throws(
      () => parseCsr(der),
      (error: unknown) =>
        isCaError(CaErrorCode.CSR_WEAK_KEY)(error) &&
        /less than 2\^256/.test((error as CaError).message) &&
        (error as CaError).detail.exponentBits === 1024,
    );
    // At the bound: the largest usable exponent below 2^256 passes, the smallest above does not.
    const below = rsaKeyWithExponent(2048, MAX_RSA_EXPONENT, -2n);
    assert.equal(parseCsr(createCsr({ privateKey: below })).keyType, 'rsa');
    const above = rsaKeyWithExponent(2048, MAX_RSA_EXPONENT + 2n, 2n);
    assert.throws(
      () => parseCsr(createCsr({ privateKey: above })),
      isCaError(CaErrorCode.CSR_WEAK_KEY),
    );
  });

  it('refuses a second spelling of an RSA key that OpenSSL still decodes (one key, one hash)', () => {
    const privateKey = generateKey('rsa');
    const spki = new Uint8Array(
      createPublicKey(privateKey).export({ format: 'der', type: 'spki' }),
    );
    const [algorithm, bits] = children(spki, readWhole(spki)) as [Tlv, Tlv];
    const rsaPublicKey = contentOf(spki, bits).subarray(1);
    assert.deepEqual([...rsaPublicKey.subarray(0, 2)], [0x30, 0x82]);
    const respell = (inner: Uint8Array): Uint8Array =>
      sequence(encodingOf(spki, algorithm), bitString(inner));
    const variants = {
      // A trailing 00 after the RSAPublicKey inside the BIT STRING.
      trailingByte: respell(Uint8Array.from([...rsaPublicKey, 0x00])),
      // The RSAPublicKey SEQUENCE length in three bytes (30 83 00 ..) instead of two.
      longLength: respell(Uint8Array.from([0x30, 0x83, 0x00, ...rsaPublicKey.subarray(2)])),
    };
    const canonical = parseCsr(csrWithSpki(privateKey, spki));
    assert.equal(canonical.keyType, 'rsa');
    for (const [name, variant] of Object.entries(variants)) {
      // The premise: OpenSSL reads the variant as the very same key.
      const decoded = createPublicKey({ key: Buffer.from(variant), format: 'der', type: 'spki' });
      assert.ok(decoded.equals(createPublicKey(privateKey)), `${name} decodes to the same key`);
      assert.notDeepEqual(variant, spki);
      assert.throws(
        () => parseCsr(csrWithSpki(privateKey, variant)),
        (error: unknown) =>
          isCaError(CaErrorCode.CSR_INVALID_KEY)(error) &&
          /RSA key is not DER-encoded/.test((error as CaError).message),
        name,
      );
    }
  });

  it('refuses RSA-1024 as a weak key', () => {
    assert.throws(
      () => parseCsr(createCsr({ privateKey: generateKey('rsa', 1024) })),
      isCaError(CaErrorCode.CSR_WEAK_KEY),
    );
  });

  it('refuses a P-384 key as unsupported', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    assert.throws(
      () => parseCsr(createCsr({ privateKey })),
      (error: unknown) =>
        isCaError(CaErrorCode.CSR_UNSUPPORTED_KEY)(error) &&
        (error as { detail: { curve: string } }).detail.curve === 'P-384',
    );
  });

  it('refuses malformed DER precisely and never crashes', () => {
    const der = createCsr({ privateKey: generateKey('p256') });
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      der.subarray(0, der.length - 1),
      new Uint8Array([...der, 0]),
      Uint8Array.of(0x30, 0x80, 0, 0),
      Uint8Array.of(0x30, 0x81, 0x01, 0x00),
      new Uint8Array(100).fill(0xff),
    ];
    for (const input of cases)
      assert.throws(() => parseCsr(input), isCaError(CaErrorCode.CSR_MALFORMED));
    for (let i = 0; i < 200; i++) {
      const mutated = new Uint8Array(der);
      const at = (i * 7919) % der.length;
      mutated[at] = (mutated[at] as number) ^ (1 << (i % 8));
      assert.throws(
        () => parseCsr(mutated),
        (error: unknown) => error instanceof CaError,
      );
    }
  });

  it('refuses oversized input before parsing', () => {
    assert.throws(
      () => parseCsr(new Uint8Array(MAX_CSR_BYTES + 1)),
      isCaError(CaErrorCode.CSR_TOO_LARGE),
    );
    assert.throws(() => parseCsr('x'.repeat(30_000)), isCaError(CaErrorCode.CSR_TOO_LARGE));
  });

  it('refuses PEM with two blocks or the wrong label', () => {
    const pem = derToPem(createCsr({ privateKey: generateKey('p256') }), 'CERTIFICATE REQUEST');
    assert.throws(() => parseCsr(pem + pem), isCaError(CaErrorCode.CSR_MALFORMED));
    assert.throws(
      () => parseCsr(pem.replaceAll('CERTIFICATE REQUEST', 'CERTIFICATE')),
      isCaError(CaErrorCode.CSR_MALFORMED),
    );
  });
});

describe('CSR verification agrees with openssl req -verify', { skip: SKIP_WITHOUT_OPENSSL }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hypermesh-ca-csr-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function opensslCsr(name: string, keyArgs: string[], extra: string[] = []): Uint8Array {
    const key = join(dir, `${name}.key`);
    const csr = join(dir, `${name}.der`);
    const result = runOpenssl([
      'req',
      '-new',
      '-newkey',
      ...keyArgs,
      '-nodes',
      '-keyout',
      key,
      '-subj',
      '/CN=svc.example.com',
      '-addext',
      'subjectAltName=DNS:svc.example.com',
      '-outform',
      'DER',
      '-out',
      csr,
      ...extra,
    ]);
    assert.equal(result.status, 0, result.output);
    return new Uint8Array(readFileSync(csr));
  }

  function opensslVerifies(der: Uint8Array): boolean {
    const path = join(dir, `check-${Math.random().toString(16).slice(2)}.der`);
    writeFileSync(path, der);
    const result = runOpenssl(['req', '-in', path, '-inform', 'DER', '-verify', '-noout']);
    // OpenSSL 3.0 exits 0 either way; the verdict is in the message.
    return result.status === 0 && /verify OK/.test(result.output) && !/failure/.test(result.output);
  }

  const keys: Record<string, string[]> = {
    p256: ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    ed25519: ['ed25519'],
    rsa: ['rsa:2048'],
  };

  for (const [kind, args] of Object.entries(keys)) {
    it(`${kind}: openssl's CSR parses here, and a tampered copy fails in both`, () => {
      const der = opensslCsr(kind, args);
      assert.equal(opensslVerifies(der), true);
      const parsed = parseCsr(der);
      assert.equal(parsed.keyType, kind);
      assert.deepEqual(parsed.requestedNames?.dnsNames, ['svc.example.com']);
      const tampered = new Uint8Array(
        Buffer.from(
          Buffer.from(der).toString('latin1').replace('svc.example', 'svd.example'),
          'latin1',
        ),
      );
      assert.equal(opensslVerifies(tampered), false);
      assert.throws(() => parseCsr(tampered), isCaError(CaErrorCode.CSR_BAD_SIGNATURE));
    });
  }

  it('our CSRs pass openssl req -verify', () => {
    for (const kind of ['p256', 'ed25519', 'rsa'] as const) {
      assert.equal(
        opensslVerifies(createCsr({ privateKey: generateKey(kind), dnsNames: ['x.example.com'] })),
        true,
        kind,
      );
    }
  });

  it('a SHA-1 signed CSR is refused as weak; openssl still verifies it', () => {
    const der = opensslCsr('sha1', keys.rsa as string[], ['-sha1']);
    assert.equal(opensslVerifies(der), true);
    assert.throws(() => parseCsr(der), isCaError(CaErrorCode.CSR_WEAK_SIGNATURE_ALGORITHM));
  });

  it('RSA-1024 from openssl is refused as weak', () => {
    const der = opensslCsr('rsa1024', ['rsa:1024']);
    assert.throws(() => parseCsr(der), isCaError(CaErrorCode.CSR_WEAK_KEY));
  });

  it('an RSASSA-PSS signed CSR is refused as unsupported', () => {
    const der = opensslCsr('pss', keys.rsa as string[], ['-sigopt', 'rsa_padding_mode:pss']);
    assert.throws(() => parseCsr(der), isCaError(CaErrorCode.CSR_UNSUPPORTED_SIGNATURE_ALGORITHM));
  });
});

const fromBase64url = (text: string): bigint =>
  BigInt(`0x${Buffer.from(text, 'base64url').toString('hex') || '0'}`);
const toBase64url = (n: bigint): string => {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex').toString('base64url');
};

/** A CSR over `spki` exactly as given, signed (sha256WithRSAEncryption) by `privateKey`. */
function csrWithSpki(privateKey: KeyObject, spki: Uint8Array): Uint8Array {
  const info = sequence(unsignedInteger(0), sequence(), spki, constructed(contextConstructed(0)));
  const signature = sign('sha256', info, privateKey);
  return sequence(
    info,
    sequence(oid('1.2.840.113549.1.1.11'), derNull()),
    bitString(new Uint8Array(signature)),
  );
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/**
 * An RSA private key of `bits` bits whose public exponent is the first of `start`, `start +
 * step`, … that is invertible for the key (node:crypto only generates exponents up to 2^32):
 * a generated key's primes with the exponent and private exponents recomputed, through JWK.
 */
function rsaKeyWithExponent(bits: number, start: bigint, step: bigint): KeyObject {
  const jwk = generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({
    format: 'jwk',
  });
  const p = fromBase64url(jwk.p as string);
  const q = fromBase64url(jwk.q as string);
  const phi = (p - 1n) * (q - 1n);
  let e = start;
  while (gcd(e, phi) !== 1n) e += step;
  const d = modInverse(e, phi);
  return createPrivateKey({
    key: {
      ...jwk,
      e: toBase64url(e),
      d: toBase64url(d),
      dp: toBase64url(d % (p - 1n)),
      dq: toBase64url(d % (q - 1n)),
    },
    format: 'jwk',
  });
}
