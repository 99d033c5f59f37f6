import assert from 'node:assert/strict';
import { randomBytes, webcrypto } from 'node:crypto';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCanonical } from '../../src/codec/cbor.js';
import { MAX_OID_BYTES, TAG, readOid, readWhole, tlv } from '../../src/crypto/der.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { FALCON_ALGORITHM_ID, type FalconKeyPair } from '../../src/crypto/falcon.js';
import {
  FALCON_PUBLIC_KEY_EXTENSION_OID,
  KeyUsage,
  X509Error,
  X509ErrorCode,
  certificateEd25519Key,
  certificateFalconKey,
  certificateIdentity,
  createRootCa,
  derToPem,
  encodeFalconKeyExtension,
  exportCertificateAuthority,
  fingerprint,
  importCertificateAuthority,
  issueIntermediate,
  issueNodeCertificate,
  parseCertificate,
  pemToDer,
  pemToDerList,
  verifyChain,
  type CertificateAuthority,
  type IssueNodeCertificateOptions,
} from '../../src/crypto/x509.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';

const DAY_MS = 86_400_000;

function rejectsWith(code: X509ErrorCode) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof X509Error, `expected X509Error, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

let pki: TestPki;
let node: TestIdentity;
let falcon: FalconKeyPair;

before(async () => {
  pki = await createTestPki({ cluster: 'x509-test' });
  node = await pki.issue({
    name: 'node-1',
    dnsNames: ['node-1.x509-test.local'],
    ipAddresses: ['127.0.0.1', '::1'],
  });
  falcon = node.falcon;
});

function leafOptions(
  overrides: Partial<IssueNodeCertificateOptions> = {},
): IssueNodeCertificateOptions {
  return {
    issuer: pki.intermediate,
    subjectEd25519PublicKey: ed25519RawPublicKey(generateEd25519KeyPair().publicKey),
    falconPublicKey: falcon.publicKey,
    cluster: pki.cluster,
    role: 'validator',
    name: 'v-1',
    notBefore: new Date(Date.now() - 1000),
    notAfter: new Date(Date.now() + DAY_MS),
    ...overrides,
  };
}

describe('development CA', () => {
  it('creates a self-signed ECDSA P-256 root with CA constraints', () => {
    const root = parseCertificate(pki.root.certificate);
    assert.deepEqual(root.basicConstraints, { ca: true });
    assert.equal(root.keyUsage, KeyUsage.keyCertSign | KeyUsage.cRLSign);
    assert.equal(root.subject, root.issuer);
    assert.equal(root.publicKey.asymmetricKeyType, 'ec');
    assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(
      root.extensions.some((ext) => ext.oid === '2.5.29.14'),
      'subject key identifier',
    );
    const days = (root.notAfter.getTime() - root.notBefore.getTime()) / DAY_MS;
    assert.equal(Math.round(days), 30);
    assert.deepEqual(pki.root.issuingChain, []);
  });

  it('issues intermediates that carry their issuing chain', () => {
    const intermediate = parseCertificate(pki.intermediate.certificate);
    assert.deepEqual(intermediate.basicConstraints, { ca: true, pathLength: 0 });
    assert.equal(intermediate.issuer, parseCertificate(pki.root.certificate).subject);
    assert.deepEqual(pki.intermediate.issuingChain, [pki.intermediate.certificate]);
  });

  it('exports and re-imports a CA, refusing a key that does not match', async () => {
    const exported = await exportCertificateAuthority(pki.intermediate);
    const imported = await importCertificateAuthority(exported);
    const issued = await issueNodeCertificate(leafOptions({ issuer: imported }));
    verifyChain({ chain: issued.chain, roots: pki.roots, now: new Date() });

    const other = await exportCertificateAuthority(await createRootCa({ cluster: 'elsewhere' }));
    await assert.rejects(
      importCertificateAuthority({ ...exported, privateKeyPkcs8: other.privateKeyPkcs8 }),
      rejectsWith(X509ErrorCode.INVALID_ARGUMENT),
    );
    await assert.rejects(
      importCertificateAuthority({ ...exported, privateKeyPkcs8: randomBytes(40) }),
      rejectsWith(X509ErrorCode.INVALID_ARGUMENT),
    );
    await assert.rejects(
      importCertificateAuthority({ ...exported, certificate: node.certificate }),
      rejectsWith(X509ErrorCode.INVALID_ARGUMENT),
    );
  });

  it('refuses bad CA parameters', async () => {
    await assert.rejects(
      createRootCa({ cluster: 'Bad Cluster' }),
      rejectsWith(X509ErrorCode.INVALID_ARGUMENT),
    );
    await assert.rejects(
      createRootCa({ cluster: 'ok', validityDays: 0 }),
      rejectsWith(X509ErrorCode.INVALID_ARGUMENT),
    );
    await assert.rejects(
      issueIntermediate({ issuer: pki.root, commonName: '' }),
      rejectsWith(X509ErrorCode.INVALID_ARGUMENT),
    );
  });
});

describe('node certificates', () => {
  it('name the Ed25519 key, the SPIFFE identity and the FALCON key', () => {
    const leaf = parseCertificate(node.certificate);
    assert.deepEqual(certificateEd25519Key(leaf), node.transportKey.publicKey);
    assert.deepEqual(certificateIdentity(leaf), {
      cluster: 'x509-test',
      role: 'node',
      name: 'node-1',
      uri: 'spiffe://x509-test/node/node-1',
    });
    assert.deepEqual(certificateFalconKey(leaf), node.falcon.publicKey);
    assert.deepEqual(leaf.dnsNames, ['node-1.x509-test.local']);
    assert.deepEqual(leaf.ipAddresses, ['127.0.0.1', '::1']);
    assert.deepEqual(leaf.extendedKeyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(leaf.keyUsage, KeyUsage.digitalSignature);
    assert.deepEqual(leaf.basicConstraints, { ca: false });
    const falconExtension = leaf.extensions.find(
      (ext) => ext.oid === FALCON_PUBLIC_KEY_EXTENSION_OID,
    );
    assert.ok(falconExtension);
    assert.equal(falconExtension.critical, false);
  });

  it('carry the FALCON key as an algorithm-tagged deterministic-CBOR OCTET STRING', () => {
    const value = encodeFalconKeyExtension(falcon.publicKey);
    assert.equal(value[0], 0x04, 'DER OCTET STRING');
    const cbor = value.subarray(value[1]! & 0x80 ? 2 + (value[1]! & 0x7f) : 2);
    assert.deepEqual(decodeCanonical(cbor), { alg: FALCON_ALGORITHM_ID, pk: falcon.publicKey });
  });

  it('get random positive 128-bit serial numbers', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const issued = await issueNodeCertificate(leafOptions());
      const serial = parseCertificate(issued.certificate).serialNumber;
      assert.equal(serial.length, 32, serial);
      assert.ok(Number.parseInt(serial.slice(0, 2), 16) < 0x80, 'positive');
      serials.add(serial);
    }
    assert.equal(serials.size, 8);
  });

  it('refuse bad issuance parameters', async () => {
    const bad: Partial<IssueNodeCertificateOptions>[] = [
      { subjectEd25519PublicKey: new Uint8Array(31) },
      { falconPublicKey: new Uint8Array(1793) },
      { falconPublicKey: falcon.publicKey.subarray(1) },
      { cluster: 'UPPER' },
      { cluster: '' },
      { name: '..' },
      { name: 'a/b' },
      { name: 'x'.repeat(65) },
      { role: 'admin' as 'node' },
      { notAfter: new Date(Date.now() - DAY_MS) },
      { notBefore: new Date(Number.NaN) },
      { dnsNames: ['Not A Host'] },
      { ipAddresses: ['300.1.1.1'] },
    ];
    for (const overrides of bad) {
      await assert.rejects(
        issueNodeCertificate(leafOptions(overrides)),
        rejectsWith(X509ErrorCode.INVALID_ARGUMENT),
        JSON.stringify(Object.keys(overrides)),
      );
    }
  });

  it('report what a certificate lacks with precise codes', () => {
    const root = parseCertificate(pki.root.certificate);
    assert.throws(() => certificateIdentity(root), rejectsWith(X509ErrorCode.MISSING_EXTENSION));
    assert.throws(() => certificateFalconKey(root), rejectsWith(X509ErrorCode.MISSING_EXTENSION));
    assert.throws(
      () => certificateEd25519Key(root),
      rejectsWith(X509ErrorCode.UNSUPPORTED_KEY_TYPE),
    );
  });
});

describe('parsing', () => {
  it('rejects empty, oversized, truncated and padded input', () => {
    const der = node.certificate;
    for (const input of [
      new Uint8Array(0),
      new Uint8Array(70_000),
      der.subarray(0, der.length - 1),
      Uint8Array.from([...der, 0]),
      randomBytes(300),
    ]) {
      assert.throws(
        () => parseCertificate(input),
        rejectsWith(X509ErrorCode.MALFORMED_CERTIFICATE),
      );
    }
  });

  it('turns any corruption into a typed error, never a crash (property)', () => {
    const der = node.certificate;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ at: fc.nat(der.length - 1), byte: fc.integer({ min: 0, max: 255 }) }),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        (edits) => {
          const mutated = der.slice();
          for (const { at, byte } of edits) mutated[at] = byte;
          try {
            const parsed = parseCertificate(mutated);
            certificateIdentity(parsed);
            certificateFalconKey(parsed);
            certificateEd25519Key(parsed);
            verifyChain({
              chain: [parsed, ...node.chain.slice(1)],
              roots: pki.roots,
              now: new Date(),
            });
          } catch (error) {
            assert.ok(error instanceof X509Error, `untyped error: ${String(error)}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads a certificate with an empty subject (identity in a critical subjectAltName)', async () => {
    // Loaded after src/crypto/x509.ts, which evaluates reflect-metadata first.
    const PeculiarX509 = await import('@peculiar/x509');
    const keys = await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
    const certificate = await PeculiarX509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: [],
      notBefore: new Date(Date.now() - DAY_MS),
      notAfter: new Date(Date.now() + DAY_MS),
      keys,
      signingAlgorithm: { name: 'Ed25519' },
      extensions: [
        new PeculiarX509.SubjectAlternativeNameExtension(
          [{ type: 'dns', value: 'a.example' }],
          true,
        ),
      ],
    });
    const parsed = parseCertificate(new Uint8Array(certificate.rawData));
    assert.equal(parsed.subject, '');
    assert.equal(parsed.issuer, '');
  });

  it('fingerprints are SHA-256 of the DER', () => {
    assert.equal(
      fingerprint(new TextEncoder().encode('abc')),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    assert.equal(parseCertificate(node.certificate).fingerprint, fingerprint(node.certificate));
  });
});

describe('PEM', () => {
  it('round-trips certificates and bundles', () => {
    const pem = derToPem(node.certificate);
    assert.match(
      pem,
      /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n$/,
    );
    assert.deepEqual(pemToDer(pem), node.certificate);
    assert.deepEqual(pemToDerList(node.chainPem), node.chain);
  });

  it('rejects broken PEM with MALFORMED_PEM', () => {
    const pem = derToPem(node.certificate);
    const broken = [
      'no pem here',
      pem.replace('END CERTIFICATE', 'END PRIVATE KEY'),
      pem.replace(/\n[A-Za-z0-9]/, '\n!'),
      node.chainPem,
    ];
    for (const input of broken) {
      assert.throws(() => pemToDer(input), rejectsWith(X509ErrorCode.MALFORMED_PEM));
    }
    assert.throws(() => pemToDer(pem, 'PRIVATE KEY'), rejectsWith(X509ErrorCode.MALFORMED_PEM));
  });
});

describe('verifyChain', () => {
  const now = () => new Date();

  it('accepts leaf + intermediate, with or without a trailing root copy', () => {
    const verified = verifyChain({
      chain: node.chain,
      roots: pki.roots,
      now: now(),
      purpose: 'clientAuth',
    });
    assert.equal(verified.path.length, 3);
    assert.equal(verified.leaf.fingerprint, node.fingerprint);
    assert.equal(verified.root.fingerprint, fingerprint(pki.root.certificate));
    const withRoot = verifyChain({
      chain: [...node.chain, pki.root.certificate],
      roots: pki.roots,
      now: now(),
    });
    assert.equal(withRoot.path.length, 3);
  });

  it('accepts a leaf issued by the root itself', async () => {
    const direct = await pki.issue({ name: 'direct', issuer: pki.root, falcon });
    assert.equal(direct.chain.length, 1);
    verifyChain({ chain: direct.chain, roots: pki.roots, now: now(), purpose: 'serverAuth' });
  });

  it('NO_CERTIFICATE for an empty chain', () => {
    assert.throws(
      () => verifyChain({ chain: [], roots: pki.roots, now: now() }),
      rejectsWith(X509ErrorCode.NO_CERTIFICATE),
    );
  });

  it('MALFORMED_CERTIFICATE names the bad position', () => {
    assert.throws(
      () =>
        verifyChain({ chain: [node.certificate, randomBytes(64)], roots: pki.roots, now: now() }),
      (error: unknown) => {
        assert.ok(error instanceof X509Error);
        assert.equal(error.code, X509ErrorCode.MALFORMED_CERTIFICATE);
        assert.equal(error.detail.index, 1);
        return true;
      },
    );
    assert.throws(
      () => verifyChain({ chain: Array(9).fill(node.certificate), roots: pki.roots, now: now() }),
      rejectsWith(X509ErrorCode.MALFORMED_CERTIFICATE),
    );
  });

  it('UNKNOWN_CA for a foreign root, a missing intermediate, or a forged signature', async () => {
    const foreign = await createTestPki({ cluster: pki.cluster, falconBackend: pki.falconBackend });
    const stranger = await foreign.issue({ name: 'node-1', falcon });
    const unknown = rejectsWith(X509ErrorCode.UNKNOWN_CA);
    assert.throws(
      () => verifyChain({ chain: stranger.chain, roots: pki.roots, now: now() }),
      unknown,
    );
    assert.throws(
      () => verifyChain({ chain: [node.certificate], roots: pki.roots, now: now() }),
      unknown,
    );
    assert.throws(
      () =>
        verifyChain({
          chain: [node.certificate, foreign.intermediate.certificate],
          roots: pki.roots,
          now: now(),
        }),
      unknown,
    );
    const forged = node.certificate.slice();
    forged[forged.length - 5]! ^= 0x01; // inside the ECDSA signature value
    assert.throws(
      () => verifyChain({ chain: [forged, ...node.chain.slice(1)], roots: pki.roots, now: now() }),
      unknown,
    );
    // RFC 5280 §6.1: a trust anchor need not be self-signed; an intermediate configured as a
    // root anchors the paths below it.
    const anchored = verifyChain({
      chain: stranger.chain,
      roots: [foreign.intermediate.certificate],
      now: now(),
    });
    assert.equal(anchored.path.length, 2);
  });

  it('EXPIRED / NOT_YET_VALID for the leaf, the intermediate and the root', async () => {
    const expired = await pki.issue({ name: 'old', validity: 'expired', falcon });
    const future = await pki.issue({ name: 'new', validity: 'not-yet-valid', falcon });
    assert.throws(
      () => verifyChain({ chain: expired.chain, roots: pki.roots, now: now() }),
      rejectsWith(X509ErrorCode.EXPIRED),
    );
    assert.throws(
      () => verifyChain({ chain: future.chain, roots: pki.roots, now: now() }),
      rejectsWith(X509ErrorCode.NOT_YET_VALID),
    );

    const staleIntermediate = await issueIntermediate({
      issuer: pki.root,
      commonName: 'stale',
      notBefore: new Date(Date.now() - 3 * DAY_MS),
      validityDays: 1,
    });
    const underStale = await issueNodeCertificate(leafOptions({ issuer: staleIntermediate }));
    assert.throws(
      () => verifyChain({ chain: underStale.chain, roots: pki.roots, now: now() }),
      (error: unknown) => {
        assert.ok(error instanceof X509Error);
        assert.equal(error.code, X509ErrorCode.EXPIRED);
        assert.equal(error.detail.depth, 1);
        return true;
      },
    );
    // Root validity counts too: 31 days from now the 30-day test root has expired.
    assert.throws(
      () =>
        verifyChain({
          chain: node.chain,
          roots: pki.roots,
          now: new Date(Date.now() + 31 * DAY_MS),
        }),
      rejectsWith(X509ErrorCode.EXPIRED),
    );
    assert.throws(
      () =>
        verifyChain({
          chain: node.chain,
          roots: pki.roots,
          now: new Date(Date.now() - 2 * DAY_MS),
        }),
      rejectsWith(X509ErrorCode.NOT_YET_VALID),
    );
  });

  it('WRONG_KEY_USAGE for a CA certificate presented as a leaf', () => {
    assert.throws(
      () => verifyChain({ chain: [pki.intermediate.certificate], roots: pki.roots, now: now() }),
      rejectsWith(X509ErrorCode.WRONG_KEY_USAGE),
    );
  });

  it('enforces the path length constraint', async () => {
    const root: CertificateAuthority = await createRootCa({ cluster: 'short', pathLength: 0 });
    const intermediate = await issueIntermediate({ issuer: root, commonName: 'too deep' });
    const leaf = await issueNodeCertificate(
      leafOptions({ issuer: intermediate, cluster: 'short' }),
    );
    assert.throws(
      () => verifyChain({ chain: leaf.chain, roots: [root.certificate], now: now() }),
      rejectsWith(X509ErrorCode.UNKNOWN_CA),
    );
    const direct = await issueNodeCertificate(leafOptions({ issuer: root, cluster: 'short' }));
    verifyChain({ chain: direct.chain, roots: [root.certificate], now: now() });
  });

  it('rejects trust roots that are not CA certificates', () => {
    assert.throws(
      () => verifyChain({ chain: node.chain, roots: [node.certificate], now: now() }),
      rejectsWith(X509ErrorCode.INVALID_ARGUMENT),
    );
  });
});

describe('parser bounds on hostile input', () => {
  it('refuses an OBJECT IDENTIFIER over MAX_OID_BYTES before doing arc arithmetic on it', () => {
    // One arc of 60,000 bytes (all continuation bits but the last): once ~0.35 s of BigInt work.
    const huge = new Uint8Array(60_000).fill(0xff);
    huge[huge.length - 1] = 0x7f;
    const encoded = tlv(TAG.oid, huge);
    assert.throws(() => readOid(encoded, readWhole(encoded)), /at most 128/);
    const justOver = tlv(TAG.oid, Uint8Array.of(0x2a, ...new Array<number>(MAX_OID_BYTES).fill(1)));
    assert.throws(() => readOid(justOver, readWhole(justOver)), /OBJECT IDENTIFIER of 129 bytes/);
  });

  it('still reads long legitimate OIDs, such as a UUID-based 2.25 one', () => {
    // Base-128 groups, most significant first, continuation bit on all but the last.
    const subIdentifier = (value: bigint): number[] => {
      const groups: number[] = [];
      for (let rest = value; ; rest >>= 7n) {
        groups.unshift(Number(rest & 0x7fn) | (groups.length === 0 ? 0 : 0x80));
        if (rest < 0x80n) return groups;
      }
    };
    const uuid = 0xf81d4fae7dec11d0a76500a0c91e6bf6n;
    // The first two arcs, 2.25, fold into one sub-identifier: 2 × 40 + 25.
    const content = Uint8Array.from([...subIdentifier(105n), ...subIdentifier(uuid)]);
    const encoded = tlv(TAG.oid, content);
    assert.equal(readOid(encoded, readWhole(encoded)), `2.25.${uuid}`);
  });

  it('refuses a KeyUsage with bits set in its unused bits (OpenSSL masks them off)', () => {
    const der = node.certificate;
    // keyUsage: OID 2.5.29.15, critical TRUE, OCTET STRING { BIT STRING 07 80 } (digitalSignature).
    const pattern = [0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x07];
    const at = der.findIndex((_, i) => pattern.every((byte, j) => der[i + j] === byte));
    assert.ok(at >= 0, 'the node certificate has a critical digitalSignature keyUsage');
    assert.equal(der[at + pattern.length], 0x80);
    const patched = der.slice();
    patched[at + pattern.length] = 0x81; // the lowest bit lies in the 7 unused bits
    assert.throws(() => parseCertificate(patched), /unused bits/);
    assert.equal(parseCertificate(der).keyUsage, KeyUsage.digitalSignature);
  });
});
