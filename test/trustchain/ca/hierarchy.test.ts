import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { bytesEqual, toBase64 } from '../../../src/crypto/bytes.js';
import { p256RawPrivateKey } from '../../../src/crypto/p256.js';
import { encodeTrustBundle, parseTrustBundle } from '../../../src/trustchain/ca/bundle.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { CaErrorCode } from '../../../src/trustchain/ca/errors.js';
import {
  addValidator,
  createValidatorCaRequest,
  loadRootSigningKeys,
  runGenesisCeremony,
} from '../../../src/trustchain/ca/hierarchy.js';
import {
  CHAIN_ID,
  CEREMONY_TIME,
  CLUSTER,
  FAST_SCRYPT,
  PASSPHRASE,
  createTestCa,
  generateKey,
  isCaError,
  type TestCa,
} from './fixtures.js';

describe('trust hierarchy', () => {
  let ca: TestCa;
  before(async () => {
    ca = await createTestCa(['val-b', 'val-a']);
  });

  it('the ceremony yields a root, one path-length-0 intermediate per validator, sorted', () => {
    const { bundle } = ca;
    assert.equal(bundle.cluster, CLUSTER);
    assert.deepEqual(
      bundle.validators.map((v) => v.name),
      ['val-a', 'val-b'],
    );
    assert.equal(bundle.root.parsed.basicConstraints?.ca, true);
    assert.equal(bundle.root.parsed.basicConstraints?.pathLength, 1);
    for (const validator of bundle.validators) {
      assert.deepEqual(validator.parsed.basicConstraints, { ca: true, pathLength: 0 });
      assert.match(validator.parsed.subject, new RegExp(`CN=${validator.name}`));
      assert.ok(validator.parsed.extensions.some((e) => e.oid === '2.5.29.30' && !e.critical));
      assert.ok(
        bytesEqual(validator.falconPublicKey, ca.validators[validator.name]!.keys.falcon.publicKey),
      );
    }
  });

  it('root private keys leave the ceremony only encrypted', async () => {
    for (const text of [ca.rootKeyFiles.ecdsa, ca.rootKeyFiles.falcon]) {
      const document = JSON.parse(text) as Record<string, unknown>;
      assert.ok('ciphertext' in document && !('material' in document));
    }
    const root = await loadRootSigningKeys({
      bundle: ca.bundle,
      ecdsaKeyFile: ca.rootKeyFiles.ecdsa,
      falconKeyFile: ca.rootKeyFiles.falcon,
      passphrase: PASSPHRASE,
    });
    const scalar = toBase64(p256RawPrivateKey(root.ecdsa.privateKey));
    assert.ok(!ca.rootKeyFiles.ecdsa.includes(scalar));
    await assert.rejects(
      loadRootSigningKeys({
        bundle: ca.bundle,
        ecdsaKeyFile: ca.rootKeyFiles.ecdsa,
        falconKeyFile: ca.rootKeyFiles.falcon,
        passphrase: 'wrong passphrase!',
      }),
      isCaError(CaErrorCode.ROOT_KEY_MISMATCH),
    );
    const other = await createTestCa(['val-x']);
    await assert.rejects(
      loadRootSigningKeys({
        bundle: ca.bundle,
        ecdsaKeyFile: other.rootKeyFiles.ecdsa,
        falconKeyFile: ca.rootKeyFiles.falcon,
        passphrase: PASSPHRASE,
      }),
      isCaError(CaErrorCode.ROOT_KEY_MISMATCH),
    );
  });

  it('the governed procedure adds a validator from its CSR; the new bundle parses', async () => {
    const root = await loadRootSigningKeys({
      bundle: ca.bundle,
      ecdsaKeyFile: ca.rootKeyFiles.ecdsa,
      falconKeyFile: ca.rootKeyFiles.falcon,
      passphrase: PASSPHRASE,
    });
    const joining = await createValidatorCaRequest({ name: 'val-0', falcon: ca.falcon });
    const { bundle, intermediate } = await addValidator({
      bundle: ca.bundle,
      root,
      request: joining.request,
      time: new Date('2026-06-01T00:00:00Z'),
      falcon: ca.falcon,
    });
    assert.deepEqual(
      bundle.validators.map((v) => v.name),
      ['val-0', 'val-a', 'val-b'],
    );
    assert.equal(intermediate.name, 'val-0');
    assert.deepEqual(parseTrustBundle(encodeTrustBundle(bundle), ca.falcon).validators.length, 3);
    await assert.rejects(
      addValidator({
        bundle,
        root,
        request: joining.request,
        time: new Date('2026-06-01T00:00:00Z'),
        falcon: ca.falcon,
      }),
      isCaError(CaErrorCode.INVALID_CEREMONY_INPUT),
    );
    const ed = { ...joining.request, csr: createCsr({ privateKey: generateKey('ed25519') }) };
    await assert.rejects(
      addValidator({
        bundle: ca.bundle,
        root,
        request: ed,
        time: new Date('2026-06-01T00:00:00Z'),
        falcon: ca.falcon,
      }),
      isCaError(CaErrorCode.INVALID_CEREMONY_INPUT),
    );
    const wrongProof = {
      ...joining.request,
      name: 'val-9',
      csr: createCsr({ privateKey: generateKey('p256') }),
    };
    await assert.rejects(
      addValidator({
        bundle: ca.bundle,
        root,
        request: wrongProof,
        time: new Date('2026-06-01T00:00:00Z'),
        falcon: ca.falcon,
      }),
      isCaError(CaErrorCode.INVALID_CEREMONY_INPUT),
    );
  });

  it('an intermediate added with a node key is bound to it in the bundle', async () => {
    const root = await loadRootSigningKeys({
      bundle: ca.bundle,
      ecdsaKeyFile: ca.rootKeyFiles.ecdsa,
      falconKeyFile: ca.rootKeyFiles.falcon,
      passphrase: PASSPHRASE,
    });
    const joining = await createValidatorCaRequest({ name: 'val-k', falcon: ca.falcon });
    const account = new Uint8Array(32).fill(7);
    const { bundle, intermediate } = await addValidator({
      bundle: ca.bundle,
      root,
      request: joining.request,
      account,
      time: new Date('2026-06-01T00:00:00Z'),
      falcon: ca.falcon,
    });
    assert.deepEqual(intermediate.account, account);
    const text = encodeTrustBundle(bundle);
    const parsed = parseTrustBundle(text, ca.falcon);
    assert.deepEqual(parsed.validators.find((v) => v.name === 'val-k')?.account, account);
    assert.equal(parsed.validators.find((v) => v.name === 'val-a')?.account, null);
    // The same entry with another key, or with none: the endorsement does not verify.
    const document = JSON.parse(text) as { validators: { name: string; account?: string }[] };
    const entry = document.validators.find((v) => v.name === 'val-k')!;
    entry.account = '08'.repeat(32);
    assert.throws(
      () => parseTrustBundle(JSON.stringify(document), ca.falcon),
      isCaError(CaErrorCode.INVALID_BUNDLE),
    );
    delete entry.account;
    assert.throws(
      () => parseTrustBundle(JSON.stringify(document), ca.falcon),
      isCaError(CaErrorCode.INVALID_BUNDLE),
    );
  });

  it('ceremony inputs are checked', async () => {
    const v = await createValidatorCaRequest({ name: 'val-a', falcon: ca.falcon });
    const base = {
      cluster: CLUSTER,
      chainId: CHAIN_ID,
      time: CEREMONY_TIME,
      passphrase: PASSPHRASE,
      validators: [v.request],
      scrypt: FAST_SCRYPT,
      falcon: ca.falcon,
    };
    await assert.rejects(
      runGenesisCeremony({ ...base, passphrase: 'short' }),
      isCaError(CaErrorCode.INVALID_CEREMONY_INPUT),
    );
    await assert.rejects(
      runGenesisCeremony({ ...base, validators: [v.request, v.request] }),
      isCaError(CaErrorCode.INVALID_CEREMONY_INPUT),
    );
    await assert.rejects(
      runGenesisCeremony({ ...base, cluster: 'Bad Cluster' }),
      isCaError(CaErrorCode.INVALID_CEREMONY_INPUT),
    );
  });
});

describe('trust bundle file', () => {
  let ca: TestCa;
  let text: string;
  before(async () => {
    ca = await createTestCa(['val-a', 'val-b']);
    text = encodeTrustBundle(ca.bundle);
  });

  it('round-trips exactly', () => {
    assert.equal(encodeTrustBundle(parseTrustBundle(text, ca.falcon)), text);
  });

  const edit = (change: (doc: Record<string, unknown>) => void): string => {
    const doc = JSON.parse(text) as Record<string, unknown>;
    change(doc);
    return JSON.stringify(doc);
  };
  const validators = (doc: Record<string, unknown>) => doc.validators as Record<string, unknown>[];

  const cases: [string, () => string][] = [
    ['not JSON', () => '{'],
    ['unknown field', () => edit((d) => (d.extra = 1))],
    ['future version', () => edit((d) => (d.version = 2))],
    [
      'wrong FALCON algorithm',
      () =>
        edit((d) => ((d.root as Record<string, unknown>).falconAlgorithm = 'falcon-1024-fips206')),
    ],
    ['unsorted validators', () => edit((d) => validators(d).reverse())],
    [
      'duplicate validator',
      () => edit((d) => validators(d).push(validators(d)[1] as Record<string, unknown>)),
    ],
    [
      'renamed validator',
      () => edit((d) => ((validators(d)[0] as Record<string, unknown>).name = 'val-0')),
    ],
    [
      'endorsement of another intermediate',
      () =>
        edit(
          (d) =>
            ((validators(d)[0] as Record<string, unknown>).falconEndorsement = (
              validators(d)[1] as Record<string, unknown>
            ).falconEndorsement),
        ),
    ],
    [
      'intermediate replaced by the root',
      () =>
        edit(
          (d) =>
            ((validators(d)[0] as Record<string, unknown>).intermediate = (
              d.root as Record<string, unknown>
            ).certificate),
        ),
    ],
    [
      'two PEM blocks',
      () =>
        edit(
          (d) =>
            ((validators(d)[0] as Record<string, unknown>).intermediate =
              `${String((validators(d)[0] as Record<string, unknown>).intermediate)}${String((validators(d)[1] as Record<string, unknown>).intermediate)}`),
        ),
    ],
    ['other chain id characters', () => edit((d) => (d.chainId = 'bad chain'))],
  ];
  for (const [name, make] of cases) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => parseTrustBundle(make(), ca.falcon),
        isCaError(CaErrorCode.INVALID_BUNDLE),
      );
    });
  }

  it('refuses another cluster root with these intermediates', async () => {
    const other = await createTestCa(['val-a']);
    const mixed = edit(
      (d) =>
        ((d.root as Record<string, unknown>).certificate = (
          JSON.parse(encodeTrustBundle(other.bundle)) as { root: { certificate: string } }
        ).root.certificate),
    );
    assert.throws(() => parseTrustBundle(mixed, ca.falcon), isCaError(CaErrorCode.INVALID_BUNDLE));
  });
});
