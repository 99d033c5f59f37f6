import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CborErrorCode } from '../../../src/codec/cbor.js';
import { isHyperMeshError } from '../../../src/codec/error.js';
import { bytesEqual } from '../../../src/crypto/bytes.js';
import { FALCON_ALGORITHM_ID } from '../../../src/crypto/falcon.js';
import { leafHash, verifyInclusion } from '../../../src/crypto/merkle.js';
import {
  certificateEd25519Key,
  certificateFalconKey,
  certificateIdentity,
  parseCertificate,
} from '../../../src/crypto/x509.js';
import {
  batchSignatureMessage,
  decodeBatchSignature,
  encodeBatchSignature,
  signBatch,
  verifyBatchSignature,
  type BatchSignature,
} from '../../../src/trustchain/ca/batch.js';
import {
  assembleCertificate,
  buildTbs,
  createDeterministicSigner,
  createRandomizedSigner,
  splitCertificate,
  withExtensionAppended,
  withoutExtension,
  type Extension,
} from '../../../src/trustchain/ca/certificate.js';
import { CaErrorCode } from '../../../src/trustchain/ca/errors.js';
import { BATCH_INCLUSION_OID } from '../../../src/trustchain/ca/extensions.js';
import {
  certificateSerial,
  certificateTbs,
  checkBlockCertificates,
  checkIssuedCertificate,
  inclusionOf,
  issueBlock,
  leafTbs,
  parseIssuer,
  prepareBlock,
  preparedCertificateTbs,
  signBlockCertificates,
  type BlockIssuance,
} from '../../../src/trustchain/ca/issue.js';
import {
  decodeCertificateRequest,
  encodeCertificateRequest,
} from '../../../src/trustchain/ca/request.js';
import {
  BLOCK_TIME,
  CHAIN_ID,
  createTestCa,
  isCaError,
  nodeRequest,
  serviceRequest,
  txHash,
  type TestCa,
} from './fixtures.js';

describe('deterministic issuance', () => {
  let ca: TestCa;
  let block: BlockIssuance;
  before(async () => {
    ca = await createTestCa(['val-a', 'val-b']);
    const issuer = ca.validators['val-a']?.issuer;
    assert.ok(issuer);
    block = {
      chainId: CHAIN_ID,
      height: 42,
      blockTime: BLOCK_TIME,
      issuer,
      items: [
        {
          txHash: txHash(),
          request: serviceRequest(['b.example.com', 'a.example.com'], 'p256', {
            ipAddresses: ['2001:db8::1', '192.0.2.1'],
          }),
          lifetimeSeconds: 86400,
        },
        {
          txHash: txHash(),
          request: serviceRequest(['*.example.com'], 'rsa'),
          lifetimeSeconds: 3600,
        },
        { txHash: txHash(), request: await nodeRequest(ca, 'node-7'), lifetimeSeconds: 7 * 86400 },
      ],
    };
  });

  it('two validators build byte-identical leaves from the committed bytes', () => {
    // Validator 2 sees only what was committed: the encoded requests and the intermediate DER.
    const replay: BlockIssuance = {
      ...block,
      issuer: parseIssuer(block.issuer.certificate),
      items: block.items.map((item) => ({
        ...item,
        txHash: item.txHash.slice(),
        request: decodeCertificateRequest(encodeCertificateRequest(item.request), {
          falcon: ca.falcon,
        }),
      })),
    };
    const a = prepareBlock(block);
    const b = prepareBlock(replay);
    assert.equal(a.leaves.length, 3);
    a.leaves.forEach((leaf, i) =>
      assert.ok(bytesEqual(leaf, b.leaves[i] as Uint8Array), `leaf ${i}`),
    );
    assert.ok(bytesEqual(a.statement.rootHash, b.statement.rootHash));
  });

  it('fills the TBS from the inputs: serial, validity, names, extensions', () => {
    const inputs = prepareBlock(block).inputs[0];
    assert.ok(inputs);
    const tbs = leafTbs(inputs);
    const der = assembleCertificate(
      tbs,
      createRandomizedSigner(ca.validators['val-a']!.keys.ecdsa.privateKey).sign(tbs),
    );
    const parsed = parseCertificate(der);
    const serial = certificateSerial(CHAIN_ID, 42, inputs.txHash);
    assert.equal(serial.length, 16);
    assert.equal((serial[0] as number) >> 6, 1);
    assert.equal(parsed.serialNumber, Buffer.from(serial).toString('hex'));
    assert.equal(parsed.notBefore.toISOString(), '2026-03-01T12:00:00.000Z');
    assert.equal(parsed.notAfter.toISOString(), '2026-03-02T12:00:00.000Z');
    assert.deepEqual(parsed.dnsNames, ['a.example.com', 'b.example.com']);
    assert.deepEqual(parsed.ipAddresses, ['192.0.2.1', '2001:db8::1']);
    assert.equal(parsed.basicConstraints?.ca, false);
    assert.deepEqual(parsed.extendedKeyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.notEqual(certificateSerial(CHAIN_ID, 43, inputs.txHash).join(), serial.join());
  });

  it('a node certificate is a STOQ identity: Ed25519 key, SPIFFE URI, FALCON key', async () => {
    const issued = await issueBlock(block, {
      signer: createDeterministicSigner(ca.validators['val-a']!.keys.ecdsa.privateKey),
      falconSecretKey: ca.validators['val-a']!.keys.falcon.secretKey,
      falcon: ca.falcon,
    });
    const node = issued.certificates[2] as Uint8Array;
    assert.deepEqual(certificateIdentity(node), {
      cluster: 'test-cluster',
      role: 'node',
      name: 'node-7',
      uri: 'spiffe://test-cluster/node/node-7',
    });
    assert.equal(certificateEd25519Key(node).length, 32);
    assert.ok(bytesEqual(certificateFalconKey(node), ca.subjectFalcon.publicKey));
  });

  it('the deterministic signer re-issues byte-identical certificates; validators accept both signers', async () => {
    const keys = ca.validators['val-a']!.keys;
    const prepared = prepareBlock(block);
    const batch = await signBatch(prepared.statement, keys.falcon.secretKey, ca.falcon);
    const deterministic = createDeterministicSigner(keys.ecdsa.privateKey);
    const first = signBlockCertificates(prepared, batch, deterministic);
    const second = signBlockCertificates(prepareBlock(block), batch, deterministic);
    first.forEach((der, i) => assert.ok(bytesEqual(der, second[i] as Uint8Array)));
    checkBlockCertificates(prepared, batch, first, ca.falcon);
    const randomized = signBlockCertificates(
      prepared,
      batch,
      createRandomizedSigner(keys.ecdsa.privateKey),
    );
    checkBlockCertificates(prepared, batch, randomized, ca.falcon);
  });

  it('the leaf is the certificate without its inclusion extension, and its path verifies', async () => {
    const keys = ca.validators['val-a']!.keys;
    const issued = await issueBlock(block, {
      signer: createDeterministicSigner(keys.ecdsa.privateKey),
      falconSecretKey: keys.falcon.secretKey,
      falcon: ca.falcon,
    });
    const prepared = prepareBlock(block);
    issued.certificates.forEach((der, index) => {
      const leaf = withoutExtension(splitCertificate(der).tbs, BATCH_INCLUSION_OID);
      assert.ok(bytesEqual(leaf, prepared.leaves[index] as Uint8Array));
      const inclusion = inclusionOf(prepared, issued.batchSignature, index);
      assert.ok(
        verifyInclusion(leafHash(leaf), index, 3, inclusion.path, issued.batchSignature.rootHash),
      );
      const wrong = inclusion.path.map((hash, j) =>
        j === 0 ? hash.map((b, k) => (k === 0 ? b ^ 1 : b)) : hash,
      );
      assert.equal(
        verifyInclusion(leafHash(leaf), index, 3, wrong, issued.batchSignature.rootHash),
        false,
      );
    });
  });

  it('checkIssuedCertificate refuses a changed TBS, another signer and a high-S signature', async () => {
    const keys = ca.validators['val-a']!.keys;
    const prepared = prepareBlock(block);
    const batch = await signBatch(prepared.statement, keys.falcon.secretKey, ca.falcon);
    const expected = { inputs: prepared.inputs[0]!, inclusion: inclusionOf(prepared, batch, 0) };
    const tbs = certificateTbs(expected.inputs, expected.inclusion);
    const good = assembleCertificate(
      tbs,
      createDeterministicSigner(keys.ecdsa.privateKey).sign(tbs),
    );
    checkIssuedCertificate(good, expected);

    const otherLifetime = certificateTbs(
      { ...expected.inputs, lifetimeSeconds: 7200 },
      expected.inclusion,
    );
    const longer = assembleCertificate(
      otherLifetime,
      createDeterministicSigner(keys.ecdsa.privateKey).sign(otherLifetime),
    );
    assert.throws(
      () => checkIssuedCertificate(longer, expected),
      isCaError(CaErrorCode.CERTIFICATE_MISMATCH),
    );

    const foreign = assembleCertificate(
      tbs,
      createDeterministicSigner(ca.validators['val-b']!.keys.ecdsa.privateKey).sign(tbs),
    );
    assert.throws(
      () => checkIssuedCertificate(foreign, expected),
      (e: unknown) =>
        isCaError(CaErrorCode.CERTIFICATE_MISMATCH)(e) &&
        (e as { detail: { part: string } }).detail.part === 'signature',
    );

    // (r, n - s) verifies under ECDSA but is refused: signatures must be low-S.
    const { p256 } = await import('@noble/curves/nist.js');
    const sig = p256.Signature.fromBytes(splitCertificate(good).signature, 'der');
    const high = new p256.Signature(sig.r, p256.Point.CURVE().n - sig.s).toBytes('der');
    assert.throws(
      () => checkIssuedCertificate(assembleCertificate(tbs, high), expected),
      isCaError(CaErrorCode.CERTIFICATE_MISMATCH),
    );
    assert.throws(
      () => checkIssuedCertificate(Uint8Array.of(0x30, 0x00), expected),
      isCaError(CaErrorCode.CERTIFICATE_MISMATCH),
    );
  });

  it('checkBlockCertificates refuses swapped certificates, a missing one and a forged batch', async () => {
    const keys = ca.validators['val-a']!.keys;
    const prepared = prepareBlock(block);
    const batch = await signBatch(prepared.statement, keys.falcon.secretKey, ca.falcon);
    const certs = signBlockCertificates(
      prepared,
      batch,
      createRandomizedSigner(keys.ecdsa.privateKey),
    );
    assert.throws(
      () => checkBlockCertificates(prepared, batch, [certs[1]!, certs[0]!, certs[2]!], ca.falcon),
      (e: unknown) =>
        isCaError(CaErrorCode.CERTIFICATE_MISMATCH)(e) &&
        (e as { detail: { index: number } }).detail.index === 0,
    );
    assert.throws(
      () => checkBlockCertificates(prepared, batch, certs.slice(0, 2), ca.falcon),
      isCaError(CaErrorCode.CERTIFICATE_MISMATCH),
    );
    const byOther = await signBatch(
      prepared.statement,
      ca.validators['val-b']!.keys.falcon.secretKey,
      ca.falcon,
    );
    assert.throws(
      () => checkBlockCertificates(prepared, byOther, certs, ca.falcon),
      isCaError(CaErrorCode.BATCH_SIGNATURE_INVALID),
    );
    const otherHeight = await signBatch(
      { ...prepared.statement, height: 43 },
      keys.falcon.secretKey,
      ca.falcon,
    );
    assert.throws(
      () => checkBlockCertificates(prepared, otherHeight, certs, ca.falcon),
      isCaError(CaErrorCode.BATCH_SIGNATURE_INVALID),
    );
  });

  it('refuses leaves that would outlive the intermediate and malformed inputs', () => {
    const item = block.items[0]!;
    assert.throws(
      () =>
        prepareBlock({
          ...block,
          items: [{ ...item, lifetimeSeconds: 300 * 86400 }],
          blockTime: Date.parse('2028-12-01T00:00:00Z'),
        }),
      isCaError(CaErrorCode.INVALID_ISSUER),
    );
    assert.throws(
      () => prepareBlock({ ...block, height: 0 }),
      isCaError(CaErrorCode.INVALID_ISSUANCE_INPUT),
    );
    assert.throws(
      () => prepareBlock({ ...block, items: [{ ...item, txHash: new Uint8Array(31) }] }),
      isCaError(CaErrorCode.INVALID_ISSUANCE_INPUT),
    );
    assert.throws(
      () => prepareBlock({ ...block, items: [] }),
      isCaError(CaErrorCode.INVALID_ISSUANCE_INPUT),
    );
    assert.throws(
      () =>
        signBlockCertificates(
          prepareBlock(block),
          {
            ...prepareBlock(block).statement,
            algorithm: 'falcon-1024-r3',
            signature: new Uint8Array(0),
            height: 7,
          },
          createRandomizedSigner(ca.validators['val-a']!.keys.ecdsa.privateKey),
        ),
      isCaError(CaErrorCode.BATCH_SIGNATURE_INVALID),
    );
  });
});

describe('issued TBS from the leaf (the fast path validators and issuers use)', () => {
  const extension = fc.record({
    oid: fc
      .array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: 1, maxLength: 8 })
      .map((arcs) => `1.3.${arcs.join('.')}`),
    critical: fc.boolean(),
    // Sizes across the DER length forms (short, 0x81, 0x82) of every enclosing element.
    value: fc
      .oneof(
        fc.integer({ min: 0, max: 140 }),
        fc.integer({ min: 240, max: 300 }),
        fc.integer({ min: 65_400, max: 65_600 }),
      )
      .map((length) => new Uint8Array(randomBytes(length))),
  });

  it('withExtensionAppended equals buildTbs with the extension last, byte for byte', () => {
    fc.assert(
      fc.property(
        fc.array(extension, { maxLength: 6 }),
        extension,
        fc.uint8Array({ minLength: 1, maxLength: 20 }),
        // Up to the year 8000: GeneralizedTime ends at 9999.
        fc.integer({ min: 0, max: 190_000_000_000 }),
        (extensions: Extension[], last: Extension, serial, start) => {
          const input = {
            serial,
            issuerName: Uint8Array.of(0x30, 0x00),
            notBefore: new Date(start * 1000),
            notAfter: new Date((start + 86_400) * 1000),
            subjectName: Uint8Array.of(0x30, 0x00),
            subjectPublicKeyInfo: Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x07),
            extensions,
          };
          const expected = buildTbs({ ...input, extensions: [...extensions, last] });
          assert.deepEqual(withExtensionAppended(buildTbs(input), last), expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('preparedCertificateTbs equals certificateTbs of the inputs for blocks of every size', async () => {
    const ca = await createTestCa(['val-a']);
    const issuer = ca.validators['val-a']?.issuer;
    assert.ok(issuer);
    const pool = [
      serviceRequest(['a.example.com', 'b.example.com'], 'p256', { ipAddresses: ['192.0.2.1'] }),
      serviceRequest(['*.example.com'], 'ed25519'),
      serviceRequest(['c.example.com'], 'rsa'),
      await nodeRequest(ca, 'node-3'),
    ];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            request: fc.integer({ min: 0, max: pool.length - 1 }),
            lifetimeSeconds: fc.integer({ min: 1, max: 90 * 86_400 }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 2000 }),
        (items, height, signatureLength) => {
          const prepared = prepareBlock({
            chainId: CHAIN_ID,
            height,
            blockTime: BLOCK_TIME,
            issuer,
            items: items.map((item) => ({
              txHash: txHash(),
              request: pool[item.request]!,
              lifetimeSeconds: item.lifetimeSeconds,
            })),
          });
          const batchSignature: BatchSignature = {
            ...prepared.statement,
            algorithm: FALCON_ALGORITHM_ID,
            signature: new Uint8Array(randomBytes(signatureLength)),
          };
          prepared.inputs.forEach((inputs, index) => {
            assert.deepEqual(
              preparedCertificateTbs(prepared, batchSignature, index),
              certificateTbs(inputs, inclusionOf(prepared, batchSignature, index)),
            );
          });
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('batch signatures', () => {
  let ca: TestCa;
  before(async () => {
    ca = await createTestCa(['val-a']);
  });

  it('verify with the signer key only, cover every field, and round-trip through CBOR', async () => {
    const keys = ca.validators['val-a']!.keys;
    const statement = {
      chainId: CHAIN_ID,
      height: 9,
      rootHash: new Uint8Array(32).fill(7),
      treeSize: 5,
      issuerFingerprint: new Uint8Array(32).fill(1),
    };
    const batch = await signBatch(statement, keys.falcon.secretKey, ca.falcon);
    assert.equal(verifyBatchSignature(batch, keys.falcon.publicKey, ca.falcon), true);
    assert.equal(verifyBatchSignature(batch, ca.subjectFalcon.publicKey, ca.falcon), false);
    for (const forged of [
      { ...batch, chainId: 'other' },
      { ...batch, height: 10 },
      { ...batch, treeSize: 6 },
      { ...batch, rootHash: new Uint8Array(32).fill(8) },
      { ...batch, issuerFingerprint: new Uint8Array(32) },
      { ...batch, signature: batch.signature.map((b, i) => (i === 50 ? b ^ 1 : b)) },
      { ...batch, rootHash: new Uint8Array(31) },
    ]) {
      assert.equal(verifyBatchSignature(forged, keys.falcon.publicKey, ca.falcon), false);
    }
    const decoded = decodeBatchSignature(encodeBatchSignature(batch));
    assert.deepEqual(decoded, batch);
    assert.throws(
      () => decodeBatchSignature(Uint8Array.of(1)),
      isCaError(CaErrorCode.BATCH_SIGNATURE_INVALID),
    );
    // Its 8 keys and values are 17 data items; a 4 KiB batch of empty maps (4,093 items) is
    // refused by the decoder's budget when the array head is read.
    const maps = new Uint8Array(4096).fill(0xa0);
    maps.set([0x99, 0x0f, 0xfd]);
    assert.throws(
      () => decodeBatchSignature(maps),
      (error: unknown) =>
        isCaError(CaErrorCode.BATCH_SIGNATURE_INVALID)(error) &&
        isHyperMeshError((error as Error).cause, CborErrorCode.TOO_MANY_ITEMS),
    );
    assert.throws(
      () => batchSignatureMessage({ ...statement, height: 0 }),
      isCaError(CaErrorCode.BATCH_SIGNATURE_INVALID),
    );
  });
});

describe('issuance timing (reported, not asserted)', () => {
  it('300 certificates per block', async () => {
    const ca = await createTestCa(['val-a']);
    const { keys, issuer } = ca.validators['val-a']!;
    const template = serviceRequest(['svc.example.com']);
    const block: BlockIssuance = {
      chainId: CHAIN_ID,
      height: 1,
      blockTime: BLOCK_TIME,
      issuer,
      items: Array.from({ length: 300 }, () => ({
        txHash: txHash(),
        request: template,
        lifetimeSeconds: 86400,
      })),
    };
    prepareBlock(block);
    const timings: Record<string, number> = {};
    const time = async <T>(name: string, run: () => T | Promise<T>): Promise<T> => {
      const start = performance.now();
      const result = await run();
      timings[name] = Math.round(performance.now() - start);
      return result;
    };
    const prepared = await time('prepareBlock', () => prepareBlock(block));
    const batch = await time('signBatch (FALCON)', () =>
      signBatch(prepared.statement, keys.falcon.secretKey, ca.falcon),
    );
    await time('sign (RFC 6979)', () =>
      signBlockCertificates(prepared, batch, createDeterministicSigner(keys.ecdsa.privateKey)),
    );
    const certs = await time('sign (randomized)', () =>
      signBlockCertificates(prepared, batch, createRandomizedSigner(keys.ecdsa.privateKey)),
    );
    await time('checkBlockCertificates', () =>
      checkBlockCertificates(prepared, batch, certs, ca.falcon),
    );
    console.log(`# ca timings for 300 certificates (ms): ${JSON.stringify(timings)}`);
    assert.equal(certs.length, 300);
  });
});
