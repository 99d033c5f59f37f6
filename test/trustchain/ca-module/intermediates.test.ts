import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BlockExecutionResult } from '../../../src/consensus/app.js';
import { validatorAddress } from '../../../src/consensus/validator-set.js';
import { toHex } from '../../../src/crypto/bytes.js';
import {
  encodeFalconKeyExtension,
  FALCON_PUBLIC_KEY_EXTENSION_OID,
} from '../../../src/crypto/x509.js';
import {
  buildTrustBundle,
  endorsementMessage,
  intermediateName,
} from '../../../src/trustchain/ca/bundle.js';
import {
  assembleCertificate,
  authorityKeyIdentifier,
  basicConstraints,
  buildTbs,
  createDeterministicSigner,
  keyIdentifier,
  keyUsage,
  readTbs,
  splitCertificate,
  subjectKeyIdentifier,
} from '../../../src/trustchain/ca/certificate.js';
import { createCsr, parseCsr } from '../../../src/trustchain/ca/csr.js';
import { KeyUsageBit } from '../../../src/trustchain/ca/profiles.js';
import { encodeCertificateRequest } from '../../../src/trustchain/ca/request.js';
import {
  createValidatorCaRequest,
  issueValidatorIntermediate,
  loadRootSigningKeys,
  type ValidatorCaKeys,
} from '../../../src/trustchain/ca/hierarchy.js';
import { verifyIssuedCertificate } from '../../../src/trustchain/ca/verify.js';
import {
  CaModuleErrorCode,
  IntermediateStateReader,
  buildPublication,
  caAddIntermediateBody,
  caApproveIntermediateBody,
  caRequestBody,
  createIssuerView,
  dcvRequiredCount,
  encodeCaBody,
  findPublishedCertificate,
  intermediateHash,
  readIntermediates,
  signDcvAttestation,
} from '../../../src/trustchain/ca-module/index.js';
import { MIN_INTERMEDIATE_REMAINING_MS } from '../../../src/trustchain/ca-module/intermediates.js';
import { makeSender, type Sender } from '../../consensus/application/fixture.js';
import {
  BLOCK_TIME,
  CEREMONY_TIME,
  CHAIN_ID,
  PASSPHRASE,
  createTestCa,
  generateKey,
  nodeRequest,
  type TestCa,
} from '../ca/fixtures.js';
import {
  GRANTED_ZONE,
  caTry,
  caTx,
  createCaFixture,
  type CaFixture,
  type CaNode,
  assertRefused,
  resultOf,
} from './fixture.js';

/**
 * The governed addition of an intermediate (docs/ca.md, "Adding a validator's intermediate"):
 * `add-intermediate` with a root-issued, root-FALCON-endorsed intermediate, approvals by more
 * than two thirds of the current holders, then the new holder publishes when its turn comes.
 */

interface NewValidator {
  readonly name: string;
  readonly sender: Sender;
  readonly keys: ValidatorCaKeys;
  readonly certificate: Uint8Array;
  readonly endorsement: Uint8Array;
}

async function issueFor(
  ca: TestCa,
  name: string,
  rootCa: TestCa = ca,
  validity: { readonly notBefore?: Date; readonly validityDays?: number } = {},
): Promise<NewValidator> {
  const { request, keys } = await createValidatorCaRequest({ name, falcon: ca.falcon });
  const root = await loadRootSigningKeys({
    bundle: rootCa.bundle,
    ecdsaKeyFile: rootCa.rootKeyFiles.ecdsa,
    falconKeyFile: rootCa.rootKeyFiles.falcon,
    passphrase: PASSPHRASE,
  });
  const sender = makeSender();
  const issued = await issueValidatorIntermediate({
    cluster: rootCa.bundle.cluster,
    root,
    request,
    account: sender.publicKey,
    notBefore: validity.notBefore ?? CEREMONY_TIME,
    ...(validity.validityDays === undefined ? {} : { validityDays: validity.validityDays }),
    falcon: ca.falcon,
  });
  return {
    name,
    sender,
    keys,
    certificate: issued.certificate,
    endorsement: issued.endorsement,
  };
}

/** An intermediate the root signs and endorses, with keyUsage and FALCON key but no EKU or name constraint. */
async function deviantIntermediate(ca: TestCa, name: string): Promise<NewValidator> {
  const { request, keys } = await createValidatorCaRequest({ name, falcon: ca.falcon });
  const root = await loadRootSigningKeys({
    bundle: ca.bundle,
    ecdsaKeyFile: ca.rootKeyFiles.ecdsa,
    falconKeyFile: ca.rootKeyFiles.falcon,
    passphrase: PASSPHRASE,
  });
  const spki = parseCsr(request.csr).subjectPublicKeyInfo;
  const rootParts = readTbs(splitCertificate(root.certificate).tbs);
  const tbs = buildTbs({
    serial: new Uint8Array([0x41, ...new Uint8Array(15).fill(7)]),
    issuerName: rootParts.subjectName,
    notBefore: CEREMONY_TIME,
    notAfter: new Date(CEREMONY_TIME.getTime() + 365 * 86_400_000),
    subjectName: intermediateName(ca.bundle.cluster, name),
    subjectPublicKeyInfo: spki,
    extensions: [
      basicConstraints(true, 0),
      keyUsage([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign]),
      subjectKeyIdentifier(keyIdentifier(spki)),
      authorityKeyIdentifier(keyIdentifier(rootParts.subjectPublicKeyInfo)),
      {
        oid: FALCON_PUBLIC_KEY_EXTENSION_OID,
        critical: false,
        value: encodeFalconKeyExtension(request.falconPublicKey),
      },
    ],
  });
  const certificate = assembleCertificate(
    tbs,
    createDeterministicSigner(root.ecdsa.privateKey).sign(tbs),
  );
  const sender = makeSender();
  const endorsement = await ca.falcon.sign(
    endorsementMessage(ca.bundle.cluster, name, certificate, sender.publicKey),
    root.falcon.secretKey,
  );
  return { name, sender, keys, certificate, endorsement };
}

function addBody(
  v: NewValidator,
  overrides: Partial<Parameters<typeof caAddIntermediateBody>[0]> = {},
) {
  return caAddIntermediateBody({
    name: v.name,
    account: v.sender.publicKey,
    certificate: v.certificate,
    endorsement: v.endorsement,
    ...overrides,
  });
}

function refused(result: BlockExecutionResult, code: CaModuleErrorCode, index = 0): void {
  assertRefused(resultOf(result, index), code);
}

function applied(result: BlockExecutionResult, index = 0): void {
  const r = resultOf(result, index);
  assert.equal(r.code, 0, r.log);
}

describe('ca module: adding an intermediate', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let valC: NewValidator;
  let other: TestCa;

  before(async () => {
    fixture = await createCaFixture({ intermediateProposalBlocks: 12 });
    valC = await issueFor(fixture.ca, 'val-c');
    other = await createTestCa(['val-a']);
  });

  after(async () => {
    await node?.close();
  });

  const governance = () => new IntermediateStateReader({ get: (key) => rawGet(key) });
  const rawGet = (key: Uint8Array): Uint8Array | null =>
    node.node.store.state.get(new Uint8Array([...new TextEncoder().encode('ca/'), ...key]));

  it('refuses a wrong chain, a bad endorsement, a foreign profile, taken names and keys; writes nothing', async () => {
    node = await fixture.openCaNode();
    const { operator, validators } = fixture;

    // Another cluster's root issued it.
    const foreign = await issueFor(fixture.ca, 'val-x', other);
    refused(node.block([caTx(operator, addBody(foreign))]), CaModuleErrorCode.INTERMEDIATE_INVALID);
    // The endorsement is the root FALCON key's, but of another certificate.
    const endorsementOfOther = fixture.ca.bundle.validators[0]!.endorsement;
    refused(
      node.block([caTx(operator, addBody(valC, { endorsement: endorsementOfOther }))]),
      CaModuleErrorCode.INTERMEDIATE_INVALID,
    );
    // A genuine intermediate, proposed under another name (its subject names val-c).
    refused(
      node.block([caTx(operator, addBody(valC, { name: 'val-d' }))]),
      CaModuleErrorCode.INTERMEDIATE_INVALID,
    );
    // Not a CA certificate at all: a genesis intermediate's bytes with one bit flipped.
    const flipped = valC.certificate.slice();
    flipped[flipped.length - 80]! ^= 1;
    refused(
      node.block([caTx(operator, addBody(valC, { certificate: flipped }))]),
      CaModuleErrorCode.INTERMEDIATE_INVALID,
    );
    // Root-signed and root-endorsed, but not the intermediate profile (no EKU, no name constraint).
    const deviant = await deviantIntermediate(fixture.ca, 'val-p');
    const deviantResult = node.block([caTx(operator, addBody(deviant))]);
    refused(deviantResult, CaModuleErrorCode.INTERMEDIATE_INVALID);
    assert.match(resultOf(deviantResult).log, /does not have the intermediate profile/);
    // A name or a node key that already has an intermediate.
    const valA = fixture.ca.bundle.validators.find((v) => v.name === 'val-a')!;
    refused(
      node.block([
        caTx(
          operator,
          addBody(valC, {
            name: 'val-a',
            certificate: valA.certificate,
            endorsement: valA.endorsement,
          }),
        ),
      ]),
      CaModuleErrorCode.INTERMEDIATE_EXISTS,
    );
    refused(
      node.block([caTx(operator, addBody(valC, { account: validators['val-b'].publicKey }))]),
      CaModuleErrorCode.INTERMEDIATE_EXISTS,
    );
    // The real certificate and endorsement with another node key (a front-runner's, or anyone's
    // after the proposal expired): the endorsement covers val-c's key, so it does not verify.
    const attacker = makeSender();
    const swapped = node.block([caTx(attacker, addBody(valC, { account: attacker.publicKey }))]);
    refused(swapped, CaModuleErrorCode.INTERMEDIATE_INVALID);
    assert.match(resultOf(swapped).log, /endorsement of val-c does not verify/);
    // A version 1 endorsement (the genesis form, no node key) is not enough after genesis.
    const root = await loadRootSigningKeys({
      bundle: fixture.ca.bundle,
      ecdsaKeyFile: fixture.ca.rootKeyFiles.ecdsa,
      falconKeyFile: fixture.ca.rootKeyFiles.falcon,
      passphrase: PASSPHRASE,
    });
    const unbound = await fixture.ca.falcon.sign(
      endorsementMessage(fixture.ca.bundle.cluster, 'val-c', valC.certificate),
      root.falcon.secretKey,
    );
    refused(
      node.block([caTx(operator, addBody(valC, { endorsement: unbound }))]),
      CaModuleErrorCode.INTERMEDIATE_INVALID,
    );
    // Approving what nobody proposed.
    refused(
      node.block([caTx(validators['val-a'], caApproveIntermediateBody(new Uint8Array(32)))]),
      CaModuleErrorCode.UNKNOWN_PROPOSAL,
    );
    // Refused transactions change nothing in the module's state (only the senders' sequences).
    assert.deepEqual(governance().proposalHashes(), []);
    assert.deepEqual(governance().addedNames(), []);
  });

  it('takes effect with approvals by more than 2/3 of the holders; refuses strangers and repeats', async () => {
    const { operator, validators } = fixture;
    const hash = intermediateHash(valC.certificate, valC.sender.publicKey);
    assert.notEqual(
      toHex(hash),
      toHex(intermediateHash(valC.certificate, validators['val-a'].publicKey)),
      'the proposal hash covers the node key',
    );
    applied(node.block([caTx(operator, addBody(valC))]));
    assert.deepEqual(governance().proposalHashes(), [hash]);
    // The same certificate again, or another proposal for the same name: a duplicate.
    refused(node.block([caTx(operator, addBody(valC))]), CaModuleErrorCode.DUPLICATE_PROPOSAL);
    // The same certificate with another key: a duplicate too, and the open proposal stays val-c's.
    const attacker = makeSender();
    refused(
      node.block([caTx(attacker, addBody(valC, { account: attacker.publicKey }))]),
      CaModuleErrorCode.DUPLICATE_PROPOSAL,
    );
    assert.deepEqual(governance().proposalHashes(), [hash]);
    assert.equal(toHex(governance().proposal(hash)!.account), toHex(valC.sender.publicKey));
    // Neither the operator nor a stranger holds an intermediate.
    refused(
      node.block([caTx(operator, caApproveIntermediateBody(hash))]),
      CaModuleErrorCode.NOT_APPROVER,
    );
    refused(
      node.block([caTx(valC.sender, caApproveIntermediateBody(hash))]),
      CaModuleErrorCode.NOT_APPROVER,
    );
    applied(node.block([caTx(validators['val-a'], caApproveIntermediateBody(hash))]));
    // 1 of 2 holders is not more than 2/3: still a proposal.
    assert.deepEqual(governance().proposal(hash)?.approvals, ['val-a']);
    assert.deepEqual(governance().addedNames(), []);
    refused(
      node.block([caTx(validators['val-a'], caApproveIntermediateBody(hash))]),
      CaModuleErrorCode.DUPLICATE_APPROVAL,
    );
    const listedBefore = await readIntermediates((q) => node.node.app.query(q));
    assert.equal(listedBefore.proposals.length, 1);
    assert.deepEqual(listedBefore.proposals[0]!.approvals, ['val-a']);
    assert.equal(listedBefore.proposals[0]!.expired, false);

    applied(node.block([caTx(validators['val-b'], caApproveIntermediateBody(hash))]));
    const active = governance().added('val-c');
    assert.ok(active !== null);
    assert.deepEqual(active.approvals, ['val-a', 'val-b']);
    assert.equal(toHex(active.account), toHex(valC.sender.publicKey));
    assert.deepEqual(governance().proposalHashes(), []);
    assert.equal(governance().proposal(hash), null);

    const listed = await readIntermediates((q) => node.node.app.query(q));
    assert.deepEqual(
      listed.added.map((record) => record.name),
      ['val-c'],
    );
    assert.equal(listed.proposals.length, 0);

    // Approving after it took effect: the proposal is gone.
    refused(
      node.block([caTx(validators['val-a'], caApproveIntermediateBody(hash))]),
      CaModuleErrorCode.UNKNOWN_PROPOSAL,
    );
    // A second intermediate for val-c (or for its key): refused.
    const again = await issueFor(fixture.ca, 'val-c');
    refused(node.block([caTx(operator, addBody(again))]), CaModuleErrorCode.INTERMEDIATE_EXISTS);
  });

  it('the new holder publishes when its turn comes, and its certificates verify', async () => {
    const view = createIssuerView(fixture.config, fixture.ca.falcon);
    const state = { get: (key: Uint8Array) => rawGet(key) };
    const issuers = view.issuers(state);
    assert.deepEqual(
      issuers.map((issuer) => issuer.name),
      ['val-a', 'val-b', 'val-c'],
    );
    // A node-profile request by val-c's key (it is an intermediate holder now), in a block val-c
    // proposes: the rotation starts with val-c.
    const body = encodeCaBody({
      op: 'request',
      request: encodeCertificateRequest(await nodeRequest(fixture.ca, 'val-c')),
    });
    const input = node.input([caTx(valC.sender, body)]);
    const byC = { ...input, proposer: validatorAddress(valC.sender.publicKey) };
    const requestBlock = node.node.app.executeBlock(byC);
    node.node.commit(requestBlock);
    applied(requestBlock);
    const txHash = requestBlock.txResults[0]!.txHash;
    const h = input.height;
    const { tx } = await buildPublication(fixture.config, node.state(), h, issuers[2]!, {
      signer: createDeterministicSigner(valC.keys.ecdsa.privateKey),
      falconSecretKey: valC.keys.falcon.secretKey,
      falcon: fixture.ca.falcon,
    });
    // val-a may not publish it yet; val-c may.
    const { tx: byA } = await buildPublication(fixture.config, node.state(), h, issuers[0]!, {
      signer: createDeterministicSigner(fixture.ca.validators['val-a']!.keys.ecdsa.privateKey),
      falconSecretKey: fixture.ca.validators['val-a']!.keys.falcon.secretKey,
      falcon: fixture.ca.falcon,
    });
    refused(
      node.block([caTx(fixture.validators['val-a'], encodeCaBody(byA))]),
      CaModuleErrorCode.NOT_ISSUER,
    );
    applied(node.block([caTx(valC.sender, encodeCaBody(tx))]));
    const status = await findPublishedCertificate((q) => node.node.app.query(q), txHash);
    assert.equal(status.status, 'published');
    assert.ok(status.status === 'published');
    assert.equal(status.issuer, 'val-c');
    const verified = verifyIssuedCertificate(status.certificate, view.bundle(state), {
      now: new Date(BLOCK_TIME + 3_600_000),
      purpose: 'any',
      falcon: fixture.ca.falcon,
    });
    assert.equal(verified.validator, 'val-c');
  });

  it('a genesis bundle entry bound to its node key (version 2) stays valid once intermediates are added', async () => {
    // A genesis trust bundle written by `ca intermediate list --write-bundle` names the added
    // intermediates' keys; the view must check such an entry as version 2, as genesis parsing did.
    const valZ = await issueFor(fixture.ca, 'val-z');
    const { bundle } = fixture.config;
    const genesisBundle = buildTrustBundle(
      {
        cluster: bundle.cluster,
        chainId: bundle.chainId,
        rootCertificate: bundle.root.certificate,
        rootFalconPublicKey: bundle.root.falconPublicKey,
        validators: [
          ...bundle.validators.map(({ name, certificate, endorsement }) => ({
            name,
            certificate,
            endorsement,
          })),
          {
            name: valZ.name,
            certificate: valZ.certificate,
            endorsement: valZ.endorsement,
            account: valZ.sender.publicKey,
          },
        ],
      },
      fixture.ca.falcon,
    );
    const view = createIssuerView({ ...fixture.config, bundle: genesisBundle }, fixture.ca.falcon);
    const built = view.bundle({ get: (key: Uint8Array) => rawGet(key) });
    assert.deepEqual(
      built.validators.map((validator) => validator.name),
      ['val-a', 'val-b', 'val-c', 'val-z'],
    );
  });

  it('multi-perspective validation counts the added holder once it is a validator: three of three', () => {
    const { dcvOperator, validators } = fixture;
    const name = `mpic.${GRANTED_ZONE}`;
    // val-c joins the validator set with equal power (consensus reports it in lastCommit).
    node.useValidatorSet(
      [validators['val-a'], validators['val-b'], valC.sender].map((sender) => ({
        publicKey: sender.publicKey,
        power: 1,
      })),
    );
    node.block([]);
    const height = node.node.store.blocks.latestHeight() as number;
    const attest = (validator: Sender) =>
      signDcvAttestation(
        {
          chainId: CHAIN_ID,
          account: dcvOperator.publicKey,
          identifier: `dns:${name}`,
          wildcard: false,
          method: 'dns-01',
          keyAuthorizationHash: new Uint8Array(32),
          height,
          ok: true,
          validator: validator.publicKey,
        },
        validator.privateKey,
      );
    const body = (holders: readonly Sender[]) =>
      caRequestBody(
        {
          profile: 'service',
          csr: createCsr({ privateKey: generateKey('p256') }),
          dnsNames: [name],
        },
        undefined,
        holders.map(attest),
      );
    assert.equal(dcvRequiredCount(3), 3);
    // The genesis holders alone: 2 of 3 (2/3 of the power, not more), at admission and in a
    // block (not committed).
    const genesisOnly = caTry(dcvOperator, body([validators['val-a'], validators['val-b']]));
    const admission = node.node.app.checkTx(genesisOnly);
    assert.equal(!admission.ok && admission.code, CaModuleErrorCode.DCV_QUORUM);
    assert.match(
      !admission.ok ? admission.message : '',
      /holding 66\.6% of voting power corroborated \(2 of 3 holders\), more than 66\.7% needed/,
    );
    refused(node.node.app.executeBlock(node.input([genesisOnly])), CaModuleErrorCode.DCV_QUORUM);
    // With val-c's node key (the added holder's account): accepted.
    const all = caTry(dcvOperator, body([validators['val-a'], validators['val-b'], valC.sender]));
    assert.equal(node.node.app.checkTx(all).ok, true);
    applied(node.node.app.executeBlock(node.input([all])));
  });

  it('with three holders, two approvals are not enough; a proposal expires after the documented window', async () => {
    const { operator, validators } = fixture;
    const valD = await issueFor(fixture.ca, 'val-d');
    const hash = intermediateHash(valD.certificate, valD.sender.publicKey);
    const proposed = node.block([caTx(operator, addBody(valD))]);
    applied(proposed);
    const expiresAt = governance().proposal(hash)!.expiresAt;
    assert.equal(expiresAt, node.node.nextHeight() - 1 + 12);
    applied(node.block([caTx(validators['val-a'], caApproveIntermediateBody(hash))]));
    applied(node.block([caTx(validators['val-b'], caApproveIntermediateBody(hash))]));
    // 2 of 3 is not more than 2/3.
    assert.deepEqual(governance().addedNames(), ['val-c']);
    while (node.node.nextHeight() <= expiresAt) node.block([]);
    refused(
      node.block([caTx(valC.sender, caApproveIntermediateBody(hash))]),
      CaModuleErrorCode.PROPOSAL_EXPIRED,
    );
    assert.deepEqual(governance().addedNames(), ['val-c']);
    const listed = await readIntermediates((q) => node.node.app.query(q));
    assert.equal(listed.proposals[0]?.expired, true);
    // Once it expired, its public certificate and endorsement cannot be re-proposed with another key.
    const attacker = makeSender();
    refused(
      node.block([caTx(attacker, addBody(valD, { account: attacker.publicKey }))]),
      CaModuleErrorCode.INTERMEDIATE_INVALID,
    );
    // Anyone replaying the expired proposal from the chain's bytes is refused, before and after
    // the expired proposal is dropped; the operator's new intermediate for val-d is accepted.
    const stranger = makeSender();
    refused(node.block([caTx(stranger, addBody(valD))]), CaModuleErrorCode.PROPOSAL_EXPIRED);
    const valD2 = await issueFor(fixture.ca, 'val-d');
    const hash2 = intermediateHash(valD2.certificate, valD2.sender.publicKey);
    applied(node.block([caTx(operator, addBody(valD2))]));
    assert.deepEqual(governance().proposalHashes(), [hash2]);
    assert.equal(governance().proposal(hash), null, 'the expired proposal is dropped');
    assert.equal(governance().abandoned(hash), true);
    const expiresAt2 = governance().proposal(hash2)!.expiresAt;
    while (node.node.nextHeight() <= expiresAt2) node.block([]);
    refused(node.block([caTx(operator, addBody(valD))]), CaModuleErrorCode.PROPOSAL_EXPIRED);
    refused(node.block([caTx(stranger, addBody(valD2))]), CaModuleErrorCode.PROPOSAL_EXPIRED);
    const valD3 = await issueFor(fixture.ca, 'val-d');
    applied(node.block([caTx(operator, addBody(valD3))]));
    assert.equal(governance().abandoned(hash2), true);
    assert.equal(CHAIN_ID, fixture.config.chainId);
  });
});

describe('ca module: an intermediate too short-lived to add (consensus rule)', () => {
  const DAY = 86_400_000;
  let fixture: CaFixture;
  let node: CaNode;

  before(async () => {
    fixture = await createCaFixture({ intermediateProposalBlocks: 12 });
    node = await fixture.openCaNode();
  });

  after(async () => {
    await node?.close();
  });

  const governance = () =>
    new IntermediateStateReader({
      get: (key) =>
        node.node.store.state.get(new Uint8Array([...new TextEncoder().encode('ca/'), ...key])),
    });
  const blockTime = (height: number): number => BLOCK_TIME + height * 1000;

  it('refuses proposing a 10-day intermediate (typed code, nothing written)', async () => {
    const notBefore = new Date(Math.floor((blockTime(node.node.nextHeight()) - DAY) / 1000) * 1000);
    const short = await issueFor(fixture.ca, 'val-c', fixture.ca, { notBefore, validityDays: 10 });
    const result = resultOf(node.block([caTx(fixture.operator, addBody(short))]));
    assertRefused(result, CaModuleErrorCode.INTERMEDIATE_INVALID);
    assert.match(result.log, /less than 90 days of validity left/);
    assert.deepEqual(governance().proposalHashes(), []);
    assert.equal(MIN_INTERMEDIATE_REMAINING_MS, 90 * DAY);
  });

  it('refuses the approval that would activate it once its remaining validity fell below the minimum', async () => {
    const { operator, validators } = fixture;
    // Valid for 90 days and about 2 s after the proposal's block; each block is 1 s later.
    const proposedAt = blockTime(node.node.nextHeight());
    const notBefore = new Date(Math.floor((proposedAt - 10 * DAY + 3000) / 1000) * 1000);
    const valC = await issueFor(fixture.ca, 'val-c', fixture.ca, { notBefore, validityDays: 100 });
    const hash = intermediateHash(valC.certificate, valC.sender.publicKey);
    applied(node.block([caTx(operator, addBody(valC))]));
    applied(node.block([caTx(validators['val-a'], caApproveIntermediateBody(hash))]));
    node.block([]);
    node.block([]);
    const result = resultOf(
      node.block([caTx(validators['val-b'], caApproveIntermediateBody(hash))]),
    );
    assertRefused(result, CaModuleErrorCode.INTERMEDIATE_INVALID);
    assert.match(result.log, /less than 90 days of validity left/);
    assert.deepEqual(governance().addedNames(), []);
    assert.deepEqual(governance().proposal(hash)?.approvals, ['val-a']);
  });
});
