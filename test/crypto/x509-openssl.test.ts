import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  FALCON_PUBLIC_KEY_EXTENSION_OID,
  X509Error,
  X509ErrorCode,
  certificateFalconKey,
  certificateIdentity,
  derToPem,
  exportCertificateAuthority,
  parseCertificate,
  pemToDer,
  verifyChain,
  type CertificatePurpose,
} from '../../src/crypto/x509.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';

/**
 * Interoperability with a verifier nobody here wrote (TESTING.md layer 4): OpenSSL must accept
 * the development CA's chains as real X.509, refuse the broken variants for the same reasons we
 * do, and certificates OpenSSL issues must go through our parser and validator.
 */

const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
const available = openssl.status === 0;
if (!available && process.env.CI === 'true') {
  throw new Error('openssl is required in CI (.ci/run installs it) but was not found on PATH');
}
const skip = available
  ? false
  : 'openssl not found on PATH: install it to run the X.509 interop tests';

let dir: string;
let pki: TestPki;
let node: TestIdentity;

function write(name: string, contents: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, contents);
  return path;
}

/** For `assert.throws`: an X509Error with `code`. */
function isX509Error(code: X509ErrorCode) {
  return (error: unknown): boolean => error instanceof X509Error && error.code === code;
}

function run(args: readonly string[]): { status: number | null; output: string } {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('X.509 interop with openssl', { skip }, () => {
  let rootPem: string;
  let intermediatePem: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hypermesh-x509-'));
    pki = await createTestPki({ cluster: 'openssl-test' });
    node = await pki.issue({
      name: 'node-1',
      dnsNames: ['node-1.example'],
      ipAddresses: ['127.0.0.1'],
    });
    rootPem = write('root.pem', derToPem(pki.root.certificate));
    intermediatePem = write('intermediate.pem', derToPem(pki.intermediate.certificate));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('openssl verify accepts root → intermediate → node, for TLS client and server use', () => {
    const leaf = write('leaf.pem', derToPem(node.certificate));
    for (const purpose of [[], ['-purpose', 'sslclient'], ['-purpose', 'sslserver']]) {
      const result = run([
        'verify',
        ...purpose,
        '-CAfile',
        rootPem,
        '-untrusted',
        intermediatePem,
        leaf,
      ]);
      assert.equal(result.status, 0, result.output);
      assert.match(result.output, /: OK/);
    }
  });

  it('openssl shows the SPIFFE URI and the non-critical FALCON key extension', () => {
    const leaf = write('leaf-text.pem', derToPem(node.certificate));
    const text = execFileSync('openssl', ['x509', '-in', leaf, '-noout', '-text'], {
      encoding: 'utf8',
    });
    assert.match(text, /URI:spiffe:\/\/openssl-test\/node\/node-1/);
    assert.match(text, /DNS:node-1\.example/);
    assert.match(text, /IP Address:127\.0\.0\.1/);
    assert.match(text, /Public Key Algorithm: ED25519/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    const falconLine = text
      .split('\n')
      .find((line) => line.includes(FALCON_PUBLIC_KEY_EXTENSION_OID));
    assert.ok(falconLine, 'FALCON extension OID printed');
    assert.doesNotMatch(falconLine, /critical/);
  });

  it('openssl refuses what verifyChain refuses: expired, not yet valid, foreign CA', async () => {
    const expired = await pki.issue({ name: 'old', validity: 'expired', falcon: node.falcon });
    const future = await pki.issue({ name: 'new', validity: 'not-yet-valid', falcon: node.falcon });
    const foreign = await createTestPki({
      cluster: 'openssl-test',
      falconBackend: pki.falconBackend,
    });
    const stranger = await foreign.issue({ name: 'node-1', falcon: node.falcon });
    const cases: [TestIdentity, RegExp, X509ErrorCode, string][] = [
      [expired, /certificate has expired/, X509ErrorCode.EXPIRED, intermediatePem],
      [future, /certificate is not yet valid/, X509ErrorCode.NOT_YET_VALID, intermediatePem],
      [
        stranger,
        /unable to get local issuer certificate/,
        X509ErrorCode.UNKNOWN_CA,
        write('foreign-intermediate.pem', derToPem(foreign.intermediate.certificate)),
      ],
    ];
    for (const [identity, message, code, untrusted] of cases) {
      const leaf = write(
        `${identity.name}-${identity.fingerprint.slice(0, 8)}.pem`,
        derToPem(identity.certificate),
      );
      const result = run(['verify', '-CAfile', rootPem, '-untrusted', untrusted, leaf]);
      assert.notEqual(result.status, 0, result.output);
      assert.match(result.output, message);
      assert.throws(
        () => verifyChain({ chain: identity.chain, roots: pki.roots, now: new Date() }),
        isX509Error(code),
      );
    }
  });

  /** Issues a certificate with openssl for `keyPem`'s key under `issuer` (default our intermediate). */
  async function opensslIssue(options: {
    name: string;
    extensions: string;
    keyPem?: string;
    days?: number;
    issuer?: { certificatePem: string; keyPem: string };
  }): Promise<Uint8Array> {
    let issuer = options.issuer;
    if (!issuer) {
      const { privateKeyPkcs8 } = await exportCertificateAuthority(pki.intermediate);
      issuer = {
        certificatePem: intermediatePem,
        keyPem: write('intermediate.key', derToPem(privateKeyPkcs8, 'PRIVATE KEY')),
      };
    }
    const key = write(`${options.name}.key`, options.keyPem ?? node.transportKey.privateKeyPem);
    const csr = join(dir, `${options.name}.csr`);
    execFileSync('openssl', [
      'req',
      '-new',
      '-key',
      key,
      '-subj',
      `/CN=${options.name}`,
      '-out',
      csr,
    ]);
    const extfile = write(`${options.name}.cnf`, `[v3]\n${options.extensions}\n`);
    const out = join(dir, `${options.name}.pem`);
    execFileSync('openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      issuer.certificatePem,
      '-CAkey',
      issuer.keyPem,
      '-CAcreateserial',
      '-days',
      String(options.days ?? 1),
      '-extfile',
      extfile,
      '-extensions',
      'v3',
      '-out',
      out,
    ]);
    return pemToDer(readFileSync(out, 'utf8'));
  }

  it('parses and validates certificates that openssl issued under our intermediate', async () => {
    const issue = (name: string, extensions: string) => opensslIssue({ name, extensions });
    const base =
      'subjectAltName=URI:spiffe://openssl-test/client/openssl-made\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth';

    /** Verifies `leaf` issued by our intermediate, for `purpose`. */
    const verifyLeaf = (leaf: Uint8Array, purpose: CertificatePurpose = 'any') =>
      verifyChain({
        chain: [leaf, pki.intermediate.certificate],
        roots: pki.roots,
        now: new Date(),
        purpose,
      });

    // A plain certificate: valid X.509 to us, but without the FALCON key STOQ needs.
    const plain = await issue('plain', base);
    const verified = verifyLeaf(plain, 'clientAuth');
    assert.equal(
      certificateIdentity(verified.leaf).uri,
      'spiffe://openssl-test/client/openssl-made',
    );
    assert.throws(
      () => certificateFalconKey(verified.leaf),
      isX509Error(X509ErrorCode.MISSING_EXTENSION),
    );
    // clientAuth only: refused for a server.
    assert.throws(
      () => verifyLeaf(plain, 'serverAuth'),
      isX509Error(X509ErrorCode.WRONG_KEY_USAGE),
    );

    // RFC 5280 §4.2: an unrecognised critical extension must make the certificate unusable.
    const critical = await issue('critical', `${base}\n1.2.3.4.5=critical,DER:05:00`);
    assert.ok(
      parseCertificate(critical).extensions.some((ext) => ext.oid === '1.2.3.4.5' && ext.critical),
    );
    assert.throws(() => verifyLeaf(critical), isX509Error(X509ErrorCode.MALFORMED_CERTIFICATE));

    // keyUsage without digitalSignature.
    const keyAgreement = await issue(
      'key-agreement',
      base.replace('digitalSignature', 'keyAgreement'),
    );
    assert.throws(() => verifyLeaf(keyAgreement), isX509Error(X509ErrorCode.WRONG_KEY_USAGE));
  });

  it('reads GeneralizedTime, and refuses two URIs, a bad FALCON extension and a non-CA issuer', async () => {
    const spiffe = 'subjectAltName=URI:spiffe://openssl-test/node/edge';
    // RFC 5280 §4.1.2.5: dates from 2050 on are GeneralizedTime.
    const longLived = parseCertificate(
      await opensslIssue({ name: 'long', extensions: spiffe, days: 36500 }),
    );
    assert.ok(longLived.notAfter.getUTCFullYear() >= 2050);

    const twoUris = await opensslIssue({
      name: 'two-uris',
      extensions: `${spiffe},URI:spiffe://openssl-test/node/other`,
    });
    assert.throws(
      () => certificateIdentity(twoUris),
      isX509Error(X509ErrorCode.MALFORMED_CERTIFICATE),
    );

    for (const [name, value] of [
      ['falcon-not-octets', 'DER:05:00'],
      ['falcon-not-a-record', 'DER:04:01:00'],
      ['falcon-wrong-alg', 'DER:04:0a:a2:62:70:6b:40:63:61:6c:67:60'],
    ] as const) {
      const odd = await opensslIssue({
        name,
        extensions: `${spiffe}\n${FALCON_PUBLIC_KEY_EXTENSION_OID}=${value}`,
      });
      assert.throws(
        () => certificateFalconKey(odd),
        isX509Error(X509ErrorCode.MALFORMED_CERTIFICATE),
        name,
      );
    }

    // An end-entity certificate (no basicConstraints, no keyUsage) used to sign another one.
    const issuerKey = execFileSync(
      'openssl',
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      {
        encoding: 'utf8',
      },
    );
    const notACa = await opensslIssue({ name: 'not-a-ca', extensions: spiffe, keyPem: issuerKey });
    const underIt = await opensslIssue({
      name: 'under-not-a-ca',
      extensions: spiffe,
      issuer: {
        certificatePem: write('not-a-ca-cert.pem', derToPem(notACa)),
        keyPem: write('not-a-ca-issuer.key', issuerKey),
      },
    });
    assert.throws(
      () =>
        verifyChain({
          chain: [underIt, notACa, pki.intermediate.certificate],
          roots: pki.roots,
          now: new Date(),
        }),
      (error: unknown) =>
        isX509Error(X509ErrorCode.UNKNOWN_CA)(error) && (error as X509Error).detail.depth === 1,
    );
    const result = run([
      'verify',
      '-CAfile',
      rootPem,
      '-untrusted',
      intermediatePem,
      '-untrusted',
      join(dir, 'not-a-ca-cert.pem'),
      join(dir, 'under-not-a-ca.pem'),
    ]);
    assert.notEqual(result.status, 0, result.output);
  });
});
