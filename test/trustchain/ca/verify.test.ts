import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { derToPem } from '../../../src/crypto/x509.js';
import { signBatch } from '../../../src/trustchain/ca/batch.js';
import { trustBundlePem } from '../../../src/trustchain/ca/bundle.js';
import {
  assembleCertificate,
  createDeterministicSigner,
} from '../../../src/trustchain/ca/certificate.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { CaErrorCode } from '../../../src/trustchain/ca/errors.js';
import {
  certificateTbs,
  inclusionOf,
  issueBlock,
  leafTbs,
  prepareBlock,
  type BlockIssuance,
  type BlockIssuanceItem,
} from '../../../src/trustchain/ca/issue.js';
import { parseCertificateRequest } from '../../../src/trustchain/ca/request.js';
import { verifyIssuedCertificate, type VerifyFailure } from '../../../src/trustchain/ca/verify.js';
import {
  BLOCK_TIME,
  CHAIN_ID,
  CLUSTER,
  SKIP_WITHOUT_OPENSSL,
  createTestCa,
  generateKey,
  isCaError,
  nodeRequest,
  runOpenssl,
  serviceRequest,
  txHash,
  issueWithSerial,
  type TestCa,
} from './fixtures.js';

const NOW = new Date(BLOCK_TIME + 60_000);

function fails(reason: VerifyFailure) {
  return isCaError(CaErrorCode.VERIFY_FAILED, reason);
}

describe('offline verification', () => {
  let ca: TestCa;
  let block: BlockIssuance;
  let certificates: readonly Uint8Array[];

  const issue = async (items: readonly BlockIssuanceItem[], chainId = CHAIN_ID) => {
    const { keys } = ca.validators['val-a']!;
    return issueBlock(
      { ...block, chainId, items },
      {
        signer: createDeterministicSigner(keys.ecdsa.privateKey),
        falconSecretKey: keys.falcon.secretKey,
        falcon: ca.falcon,
      },
    );
  };

  before(async () => {
    ca = await createTestCa(['val-a', 'val-b']);
    block = {
      chainId: CHAIN_ID,
      height: 12,
      blockTime: BLOCK_TIME,
      issuer: ca.validators['val-a']!.issuer,
      items: [
        { txHash: txHash(), request: serviceRequest(['www.example.com']), lifetimeSeconds: 86400 },
        { txHash: txHash(), request: await nodeRequest(ca), lifetimeSeconds: 86400 },
        {
          txHash: txHash(),
          request: parseCertificateRequest({
            profile: 'client',
            csr: createCsr({ privateKey: generateKey('ed25519') }),
            uris: [`spiffe://${CLUSTER}/ns/a/app`],
          }),
          lifetimeSeconds: 3600,
        },
      ],
    };
    certificates = (await issue(block.items)).certificates;
  });

  it('accepts every certificate of the block and says what it proved', () => {
    certificates.forEach((der, index) => {
      const verified = verifyIssuedCertificate(der, ca.bundle, { now: NOW, falcon: ca.falcon });
      assert.equal(verified.validator, 'val-a');
      assert.equal(verified.reference.height, 12);
      assert.equal(verified.inclusion.leafIndex, index);
      assert.equal(verified.inclusion.treeSize, 3);
    });
  });

  it('a certificate its issuer signed and batched with a serial of another length than 16 bytes', async () => {
    const { keys } = ca.validators['val-a']!;
    const items = block.items.slice(0, 1);
    // The construction alone leaves every check holding: a 16-byte serial verifies.
    const same = await issueWithSerial(
      ca,
      keys,
      { ...block, items },
      new Uint8Array(16).fill(0x41),
    );
    assert.equal(verifyIssuedCertificate(same, ca.bundle, { now: NOW }).validator, 'val-a');
    for (const length of [8, 20]) {
      const serial = new Uint8Array(length).fill(0x41);
      const other = await issueWithSerial(ca, keys, { ...block, items }, serial);
      assert.throws(
        () => verifyIssuedCertificate(other, ca.bundle, { now: NOW }),
        fails('not_published'),
      );
    }
  });

  it('validity and purpose', () => {
    assert.throws(
      () =>
        verifyIssuedCertificate(certificates[0]!, ca.bundle, {
          now: new Date(BLOCK_TIME + 2 * 86400_000),
        }),
      fails('expired'),
    );
    assert.throws(
      () =>
        verifyIssuedCertificate(certificates[0]!, ca.bundle, {
          now: new Date(BLOCK_TIME - 60_000),
        }),
      fails('not_yet_valid'),
    );
    assert.throws(
      () =>
        verifyIssuedCertificate(certificates[2]!, ca.bundle, { now: NOW, purpose: 'serverAuth' }),
      fails('wrong_key_usage'),
    );
    assert.doesNotThrow(() =>
      verifyIssuedCertificate(certificates[2]!, ca.bundle, { now: NOW, purpose: 'clientAuth' }),
    );
  });

  it('another cluster, garbage and tampered bytes', async () => {
    const other = await createTestCa(['val-a']);
    assert.throws(
      () => verifyIssuedCertificate(certificates[0]!, other.bundle, { now: NOW }),
      fails('unknown_issuer'),
    );
    assert.throws(
      () => verifyIssuedCertificate(Uint8Array.of(1, 2, 3), ca.bundle, { now: NOW }),
      fails('malformed_certificate'),
    );
    const tampered = new Uint8Array(certificates[0]!);
    const at = tampered.length - 200;
    tampered[at] = (tampered[at] as number) ^ 1;
    assert.throws(
      () => verifyIssuedCertificate(tampered, ca.bundle, { now: NOW }),
      fails('chain_invalid'),
    );
  });

  it('a certificate from another chain', async () => {
    const { certificates: foreign } = await issue(block.items.slice(0, 1), 'other-chain');
    assert.throws(
      () => verifyIssuedCertificate(foreign[0]!, ca.bundle, { now: NOW }),
      fails('wrong_chain'),
    );
  });

  it('a validly signed certificate with a wrong inclusion path, a foreign batch signature, or none', async () => {
    const { keys } = ca.validators['val-a']!;
    const signer = createDeterministicSigner(keys.ecdsa.privateKey);
    const prepared = prepareBlock(block);
    const batch = await signBatch(prepared.statement, keys.falcon.secretKey, ca.falcon);
    const inputs = prepared.inputs[0]!;
    const sign = (tbs: Uint8Array) => assembleCertificate(tbs, signer.sign(tbs));

    const inclusion = inclusionOf(prepared, batch, 0);
    const wrongPath = sign(
      certificateTbs(inputs, {
        ...inclusion,
        path: inclusion.path.map((h) => h.map((b) => b ^ 0xff)),
      }),
    );
    assert.throws(
      () => verifyIssuedCertificate(wrongPath, ca.bundle, { now: NOW }),
      fails('inclusion_invalid'),
    );
    const wrongIndex = sign(certificateTbs(inputs, { ...inclusion, leafIndex: 1 }));
    assert.throws(
      () => verifyIssuedCertificate(wrongIndex, ca.bundle, { now: NOW }),
      fails('inclusion_invalid'),
    );

    const byOther = await signBatch(
      prepared.statement,
      ca.validators['val-b']!.keys.falcon.secretKey,
      ca.falcon,
    );
    const foreignBatch = sign(certificateTbs(inputs, inclusionOf(prepared, byOther, 0)));
    assert.throws(
      () => verifyIssuedCertificate(foreignBatch, ca.bundle, { now: NOW }),
      fails('batch_signature_invalid'),
    );

    assert.throws(
      () => verifyIssuedCertificate(sign(leafTbs(inputs)), ca.bundle, { now: NOW }),
      fails('missing_batch_inclusion'),
    );

    const good = sign(certificateTbs(inputs, inclusion));
    assert.doesNotThrow(() =>
      verifyIssuedCertificate(good, ca.bundle, { now: NOW, batchSignature: batch }),
    );
    const otherBlock = await signBatch(
      { ...prepared.statement, height: 13 },
      keys.falcon.secretKey,
      ca.falcon,
    );
    assert.throws(
      () => verifyIssuedCertificate(good, ca.bundle, { now: NOW, batchSignature: otherBlock }),
      fails('batch_mismatch'),
    );
  });

  it(
    'a URI outside the cluster is refused here and by OpenSSL (name constraints)',
    { skip: SKIP_WITHOUT_OPENSSL },
    async () => {
      const request = parseCertificateRequest({
        profile: 'client',
        csr: createCsr({ privateKey: generateKey('p256') }),
        uris: ['spiffe://other-cluster/app'],
      });
      const {
        certificates: [outside],
      } = await issue([{ txHash: txHash(), request, lifetimeSeconds: 3600 }]);
      assert.throws(
        () => verifyIssuedCertificate(outside!, ca.bundle, { now: NOW }),
        fails('name_constraint_violation'),
      );
      const dir = mkdtempSync(join(tmpdir(), 'hypermesh-ca-nc-'));
      try {
        const pem = trustBundlePem(ca.bundle);
        writeFileSync(join(dir, 'root.pem'), pem.root);
        writeFileSync(join(dir, 'int.pem'), pem.intermediates);
        writeFileSync(join(dir, 'leaf.pem'), derToPem(outside!));
        const result = runOpenssl([
          'verify',
          '-attime',
          String(Math.floor(NOW.getTime() / 1000)),
          '-CAfile',
          join(dir, 'root.pem'),
          '-untrusted',
          join(dir, 'int.pem'),
          join(dir, 'leaf.pem'),
        ]);
        assert.notEqual(result.status, 0);
        assert.match(result.output, /subtree violation/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('openssl verify accepts issued certificates', { skip: SKIP_WITHOUT_OPENSSL }, () => {
  let ca: TestCa;
  let dir: string;
  before(async () => {
    ca = await createTestCa(['val-a', 'val-b']);
    dir = mkdtempSync(join(tmpdir(), 'hypermesh-ca-openssl-'));
    const pem = trustBundlePem(ca.bundle);
    writeFileSync(join(dir, 'root.pem'), pem.root);
    writeFileSync(join(dir, 'intermediates.pem'), pem.intermediates);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function opensslCsr(name: string, keyArgs: string[], san: string): Uint8Array {
    const out = join(dir, `${name}.csr.der`);
    const result = runOpenssl([
      'req',
      '-new',
      '-newkey',
      ...keyArgs,
      '-nodes',
      '-keyout',
      join(dir, `${name}.key`),
      '-subj',
      '/',
      '-addext',
      `subjectAltName=${san}`,
      '-outform',
      'DER',
      '-out',
      out,
    ]);
    assert.equal(result.status, 0, result.output);
    return new Uint8Array(readFileSync(out));
  }

  function opensslVerify(
    certificate: Uint8Array,
    purpose: string,
  ): { status: number | null; output: string } {
    const leaf = join(dir, `leaf-${Math.random().toString(16).slice(2)}.pem`);
    writeFileSync(leaf, derToPem(certificate));
    return runOpenssl([
      'verify',
      '-attime',
      String(Math.floor(NOW.getTime() / 1000)),
      '-purpose',
      purpose,
      '-CAfile',
      join(dir, 'root.pem'),
      '-untrusted',
      join(dir, 'intermediates.pem'),
      leaf,
    ]);
  }

  const keys: Record<string, string[]> = {
    p256: ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    ed25519: ['ed25519'],
    rsa2048: ['rsa:2048'],
  };

  for (const [kind, args] of Object.entries(keys)) {
    it(`${kind}: service certificate from an openssl CSR, issued by either validator`, async () => {
      const csr = opensslCsr(kind, args, 'DNS:api.example.com,IP:192.0.2.10');
      const request = parseCertificateRequest({
        profile: 'service',
        csr,
        dnsNames: ['api.example.com'],
        ipAddresses: ['192.0.2.10'],
      });
      for (const name of ['val-a', 'val-b']) {
        const { keys: validatorKeys, issuer } = ca.validators[name]!;
        const { certificates } = await issueBlock(
          {
            chainId: CHAIN_ID,
            height: 3,
            blockTime: BLOCK_TIME,
            issuer,
            items: [{ txHash: txHash(), request, lifetimeSeconds: 86400 }],
          },
          {
            signer: createDeterministicSigner(validatorKeys.ecdsa.privateKey),
            falconSecretKey: validatorKeys.falcon.secretKey,
            falcon: ca.falcon,
          },
        );
        const result = opensslVerify(certificates[0]!, 'sslserver');
        assert.equal(result.status, 0, result.output);
        assert.match(result.output, /: OK/);
        assert.notEqual(opensslVerify(certificates[0]!, 'sslclient').status, 0);
        assert.doesNotThrow(() =>
          verifyIssuedCertificate(certificates[0]!, ca.bundle, { now: NOW, purpose: 'serverAuth' }),
        );
      }
    });
  }

  it('node (Ed25519) and client certificates verify for their purposes', async () => {
    const { keys: validatorKeys, issuer } = ca.validators['val-a']!;
    const client = parseCertificateRequest({
      profile: 'client',
      csr: createCsr({ privateKey: generateKey('rsa') }),
      uris: [`spiffe://${CLUSTER}/ns/a/app`],
    });
    const { certificates } = await issueBlock(
      {
        chainId: CHAIN_ID,
        height: 4,
        blockTime: BLOCK_TIME,
        issuer,
        items: [
          { txHash: txHash(), request: await nodeRequest(ca), lifetimeSeconds: 86400 },
          { txHash: txHash(), request: client, lifetimeSeconds: 3600 },
        ],
      },
      {
        signer: createDeterministicSigner(validatorKeys.ecdsa.privateKey),
        falconSecretKey: validatorKeys.falcon.secretKey,
        falcon: ca.falcon,
      },
    );
    for (const purpose of ['sslserver', 'sslclient']) {
      const result = opensslVerify(certificates[0]!, purpose);
      assert.equal(result.status, 0, result.output);
    }
    assert.equal(opensslVerify(certificates[1]!, 'sslclient').status, 0);
  });
});
