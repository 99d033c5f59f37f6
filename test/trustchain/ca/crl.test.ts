import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { derToPem } from '../../../src/crypto/x509.js';
import { createDeterministicSigner } from '../../../src/trustchain/ca/certificate.js';
import { buildCrl } from '../../../src/trustchain/ca/crl.js';
import { CaErrorCode } from '../../../src/trustchain/ca/errors.js';
import {
  SKIP_WITHOUT_OPENSSL,
  createTestCa,
  isCaError,
  runOpenssl,
  type TestCa,
} from './fixtures.js';

const THIS_UPDATE = new Date('2026-03-01T12:00:00Z');
const NEXT_UPDATE = new Date('2026-03-02T12:00:00Z');
const serial = (byte: number): Uint8Array => new Uint8Array(16).fill(byte).fill(0x41, 0, 1);

describe('CRL per intermediate', () => {
  let ca: TestCa;
  let dir: string;
  before(async () => {
    ca = await createTestCa(['val-a', 'val-b']);
    dir = mkdtempSync(join(tmpdir(), 'hypermesh-crl-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const build = (revoked: { serial: Uint8Array; reason: number }[], name = 'val-a') => {
    const { keys, issuer } = ca.validators[name]!;
    return buildCrl({
      issuer,
      signer: createDeterministicSigner(keys.ecdsa.privateKey),
      thisUpdate: THIS_UPDATE,
      nextUpdate: NEXT_UPDATE,
      crlNumber: 42,
      revoked: revoked.map((r) => ({ ...r, revocationDate: THIS_UPDATE })),
    });
  };

  it('is deterministic and sorts entries by serial', () => {
    const a = build([
      { serial: serial(2), reason: 1 },
      { serial: serial(1), reason: 0 },
    ]);
    const b = build([
      { serial: serial(1), reason: 0 },
      { serial: serial(2), reason: 1 },
    ]);
    assert.deepEqual(a, b);
  });

  it('refuses a signer that is not the issuer, and bad reasons or dates', () => {
    const { issuer } = ca.validators['val-a']!;
    const other = createDeterministicSigner(ca.validators['val-b']!.keys.ecdsa.privateKey);
    const base = {
      issuer,
      thisUpdate: THIS_UPDATE,
      nextUpdate: NEXT_UPDATE,
      crlNumber: 1,
      revoked: [],
    };
    assert.throws(
      () => buildCrl({ ...base, signer: other }),
      isCaError(CaErrorCode.INVALID_ISSUER),
    );
    const signer = createDeterministicSigner(ca.validators['val-a']!.keys.ecdsa.privateKey);
    assert.throws(
      () => buildCrl({ ...base, signer, nextUpdate: THIS_UPDATE }),
      isCaError(CaErrorCode.INVALID_ISSUANCE_INPUT),
    );
    assert.throws(
      () =>
        buildCrl({
          ...base,
          signer,
          revoked: [{ serial: serial(1), reason: 7, revocationDate: THIS_UPDATE }],
        }),
      isCaError(CaErrorCode.INVALID_ISSUANCE_INPUT),
    );
  });

  it(
    'OpenSSL verifies it with the intermediate and reads its entries',
    { skip: SKIP_WITHOUT_OPENSSL },
    () => {
      const crl = build([
        { serial: serial(3), reason: 1 },
        { serial: serial(4), reason: 0 },
      ]);
      const crlFile = join(dir, 'a.crl');
      const issuerFile = join(dir, 'val-a.pem');
      writeFileSync(crlFile, crl);
      writeFileSync(issuerFile, derToPem(ca.validators['val-a']!.issuer.certificate));
      const ok = runOpenssl([
        'crl',
        '-inform',
        'DER',
        '-in',
        crlFile,
        '-CAfile',
        issuerFile,
        '-noout',
        '-text',
      ]);
      assert.equal(ok.status, 0, ok.output);
      assert.match(ok.output, /verify OK/);
      assert.match(ok.output, /Serial Number: 41030303030303030303030303030303/i);
      assert.match(ok.output, /Key Compromise/);
      assert.match(ok.output, /X509v3 CRL Number:\s*\n\s*42/);
      // Another intermediate's key does not verify it.
      const otherFile = join(dir, 'val-b.pem');
      writeFileSync(otherFile, derToPem(ca.validators['val-b']!.issuer.certificate));
      const wrong = runOpenssl([
        'crl',
        '-inform',
        'DER',
        '-in',
        crlFile,
        '-CAfile',
        otherFile,
        '-noout',
      ]);
      assert.doesNotMatch(wrong.output, /verify OK/);
    },
  );
});
