import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildTransaction } from '../../src/consensus/application/index.js';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import { toHex } from '../../src/crypto/bytes.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { parseCertificate } from '../../src/crypto/x509.js';
import { caService, verifyCaGet, type CaRpcService } from '../../src/faces/ca-rpc.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import {
  certificateSerialOf,
  committedCaCheck,
  genesisTrustBundle,
} from '../../src/node/cert-tools.js';
import { operatorKey } from '../../src/node/kv-tools.js';
import {
  loadClusterTarget,
  openOperatorParts,
  openOperatorSession,
  type OperatorParts,
  type OperatorSession,
} from '../../src/node/operator.js';
import { provenSequence } from '../../src/node/tx-submit.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { StoqError, StoqErrorCode, type RpcClient } from '../../src/stoq/index.js';
import { createCsr, encodeCertificateRequest } from '../../src/trustchain/ca/index.js';
import { parseCertificateRequest } from '../../src/trustchain/ca/request.js';
import { verifyIssuedCertificate } from '../../src/trustchain/ca/verify.js';
import {
  CA_MODULE_NAME,
  caRenewBody,
  caRequestBody,
  caRevokeBody,
  encodeCaBody,
  findPublishedCertificate,
  signRevocation,
  type IssuanceStatus,
} from '../../src/trustchain/ca-module/index.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { startClusterNodes } from '../helpers/nodes.js';
import { waitForCondition } from '../helpers/wait.js';

type Published = Extract<IssuanceStatus, { status: 'published' }>;

const SUPERSEDED = 4;

/**
 * `issue`, `renew` and `revoke` of `hypermesh.trustchain.ca.v1` over a real STOQ connection to
 * a running two-validator cluster (docs/ca.md, "RPC"): the operator builds and signs each `ca`
 * transaction, the RPC admits it, and the outcome is read back through the proven `get` answers
 * and `validate`. Bad input gets its typed code, is counted in `hypermesh_ca_refused_total` and
 * writes nothing.
 */
describe('CA RPC: issue, renew, revoke on a running cluster', () => {
  let root: string;
  let dir: string;
  const nodes: ValidatorNode[] = [];
  let genesis: GenesisDocument;
  let operator: KeyObject;
  let session: OperatorSession;
  let parts: OperatorParts;
  let client: NodeRpcClient;
  let rpc: RpcClient<CaRpcService>;
  const subjectKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  let issued: Published;
  let renewed: Published;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ca-rpc-'));
    dir = path.join(root, 'cluster');
    const init = await runCli([...clusterInitArgs(dir, 2), '--no-caesar']);
    assert.equal(init.code, 0, init.err);
    await startClusterNodes(nodes, dir, ['node-1', 'node-2']);
    const target = await loadClusterTarget(dir);
    genesis = await readGenesisFile(target.genesisFile);
    operator = await operatorKey(target.operator.keyFile);
    session = await openOperatorSession(target);
    parts = await openOperatorParts(target);
    client = session.client('node-1');
    rpc = parts.parts.endpoint.client(caService, 'node-1');
  });

  after(async () => {
    await parts?.close();
    await session?.close();
    for (const node of nodes) await node.stop();
    await rm(root, { recursive: true, force: true });
  });

  /** A signed `ca` transaction from `privateKey` at its next (proven) sequence. */
  async function caTx(privateKey: KeyObject, body: Uint8Array) {
    const { sequence } = await provenSequence(client, ed25519RawPublicKey(privateKey));
    return buildTransaction({
      chainId: genesis.chainId,
      privateKey,
      sequence,
      module: CA_MODULE_NAME,
      body,
      stampDifficulty: genesis.proof.work.stampDifficulty,
    });
  }

  /** The issuance of `txHash` once node-1 has committed a block that satisfies `done`. */
  async function awaitIssuance(
    txHash: Uint8Array,
    done: (status: IssuanceStatus) => boolean,
    what: string,
  ): Promise<IssuanceStatus> {
    const node = nodes[0]!;
    let status: IssuanceStatus = { status: 'unknown' };
    await waitForCondition(
      node.driver,
      'commit',
      async () => {
        status = await findPublishedCertificate(
          (request) => client.query(request),
          txHash,
          committedCaCheck(client),
        );
        return done(status);
      },
      () => `${what} (last status: ${status.status})`,
      60_000,
    );
    return status;
  }

  const published = (status: IssuanceStatus): status is Published => status.status === 'published';

  async function refusedCount(code: string): Promise<number> {
    const url = nodes[0]!.metricsUrl;
    assert.ok(url !== null, 'node-1 serves /metrics');
    const scraped = await (await fetch(url)).text();
    const found = new RegExp(`^hypermesh_ca_refused_total\\{code="${code}"\\} (\\d+)$`, 'm').exec(
      scraped,
    );
    return found === null ? 0 : Number(found[1]);
  }

  it('issue: admitted, then published with a certificate that verifies against the chain', async () => {
    const tx = await caTx(
      operator,
      caRequestBody({
        profile: 'service',
        csr: createCsr({ privateKey: subjectKey }),
        dnsNames: ['rpc.hypermesh'],
        ipAddresses: ['127.0.0.1'],
      }),
    );
    const answer = await rpc.call('issue', { tx: tx.bytes });
    assert.deepEqual(answer, { accepted: true, txHash: tx.txHash, code: null, message: null });

    const status = await awaitIssuance(tx.txHash, published, 'the issued certificate published');
    assert.ok(published(status));
    issued = status;
    const verified = verifyIssuedCertificate(issued.certificate, genesisTrustBundle(genesis), {
      purpose: 'serverAuth',
    });
    assert.equal(verified.validator, issued.issuer);
    assert.deepEqual(verified.reference.txHash, tx.txHash);
    const certificate = parseCertificate(issued.certificate);
    assert.deepEqual(certificate.dnsNames, ['rpc.hypermesh']);
    assert.ok(certificate.publicKey.equals(createPublicKey(subjectKey)));
    assert.deepEqual(certificateSerialOf(issued.certificate), issued.serial);

    // Visible through the face's own reads: proven `get` by serial, and `validate`.
    const got = await rpc.call('get', { serial: issued.serial });
    const proven = await verifyCaGet(got.answers, { serial: issued.serial });
    assert.ok(published(proven));
    assert.deepEqual(proven.certificate, issued.certificate);
    await waitForValid(issued.certificate);
  });

  /** `validate` on node-1 once its CT log holds the certificate (appended at commit). */
  async function waitForValid(certificate: Uint8Array): Promise<void> {
    let last = '';
    await waitForCondition(
      nodes[0]!.driver,
      'commit',
      async () => {
        const validated = await rpc.call('validate', { certificate, purpose: 'serverAuth' });
        last = `${validated.reason}: ${validated.message}`;
        return validated.valid;
      },
      () => `node-1 validates the certificate (last: ${last})`,
      30_000,
    );
  }

  it('renew: a new certificate for the same key and names', async () => {
    const tx = await caTx(operator, caRenewBody(issued.serial));
    const answer = await rpc.call('renew', { tx: tx.bytes });
    assert.equal(answer.accepted, true, `${answer.code}: ${answer.message}`);
    assert.deepEqual(answer.txHash, tx.txHash);

    const status = await awaitIssuance(tx.txHash, published, 'the renewed certificate published');
    assert.ok(published(status));
    renewed = status;
    assert.notDeepEqual(renewed.serial, issued.serial);
    verifyIssuedCertificate(renewed.certificate, genesisTrustBundle(genesis), {
      purpose: 'serverAuth',
    });
    const before = parseCertificate(issued.certificate);
    const after = parseCertificate(renewed.certificate);
    assert.deepEqual(after.dnsNames, before.dnsNames);
    assert.deepEqual(after.ipAddresses, before.ipAddresses);
    assert.ok(after.publicKey.equals(before.publicKey));
    await waitForValid(renewed.certificate);
  });

  it('revoke: the certificate is revoked with its reason; the renewal stays good', async () => {
    const tx = await caTx(operator, caRevokeBody(issued.serial, SUPERSEDED));
    const answer = await rpc.call('revoke', { tx: tx.bytes });
    assert.equal(answer.accepted, true, `${answer.code}: ${answer.message}`);

    const issuanceTx = verifyIssuedCertificate(issued.certificate, genesisTrustBundle(genesis))
      .reference.txHash;
    await awaitIssuance(
      issuanceTx,
      (status) => published(status) && status.revocation !== null,
      'the revocation committed',
    );
    const got = await rpc.call('get', { serial: issued.serial });
    const proven = await verifyCaGet(got.answers, { serial: issued.serial });
    assert.ok(published(proven));
    assert.equal(proven.revocation?.reason, SUPERSEDED);
    const validated = await rpc.call('validate', { certificate: issued.certificate });
    assert.equal(validated.valid, false);
    assert.equal(validated.reason, 'revoked');
    assert.equal(validated.revocation?.status, 'revoked');
    assert.equal(validated.revocation?.reason, SUPERSEDED);
    const stillGood = await rpc.call('validate', { certificate: renewed.certificate });
    assert.equal(stillGood.valid, true, `${stillGood.reason}: ${stillGood.message}`);
  });

  it('bad input: typed codes, counted by code, nothing written', async () => {
    const operatorAccount = ed25519RawPublicKey(operator);
    const stranger = generateKeyPairSync('ed25519').privateKey;
    const sequenceBefore = (await provenSequence(client, operatorAccount)).sequence;
    const counted = {
      CA_REQUEST_INVALID: await refusedCount('CA_REQUEST_INVALID'),
      CA_UNKNOWN_SERIAL: await refusedCount('CA_UNKNOWN_SERIAL'),
      CA_NOT_AUTHORIZED: await refusedCount('CA_NOT_AUTHORIZED'),
    };

    // issue: a malformed CSR (its DER cut short) inside an otherwise well-formed request.
    const request = parseCertificateRequest({
      profile: 'service',
      csr: createCsr({ privateKey: subjectKey }),
      dnsNames: ['bad.hypermesh'],
    });
    const malformed = encodeCaBody({
      op: 'request',
      request: encodeCertificateRequest({
        ...request,
        csr: { ...request.csr, der: request.csr.der.subarray(0, request.csr.der.length - 9) },
      }),
    });
    const badCsr = await caTx(operator, malformed);
    const refusedIssue = await rpc.call('issue', { tx: badCsr.bytes });
    assert.equal(refusedIssue.accepted, false);
    assert.equal(refusedIssue.code, 'CA_REQUEST_INVALID', refusedIssue.message ?? '');

    // renew: a serial the CA never issued.
    const unknown = await caTx(operator, caRenewBody(new Uint8Array(randomBytes(16))));
    const refusedRenew = await rpc.call('renew', { tx: unknown.bytes });
    assert.equal(refusedRenew.accepted, false);
    assert.equal(refusedRenew.code, 'CA_UNKNOWN_SERIAL', refusedRenew.message ?? '');

    // revoke: another account, with a proof signed by a key that is not the certificate's.
    const wrongKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const proof = signRevocation(wrongKey, genesis.chainId, renewed.serial, SUPERSEDED);
    const forged = await caTx(stranger, caRevokeBody(renewed.serial, SUPERSEDED, proof));
    const refusedRevoke = await rpc.call('revoke', { tx: forged.bytes });
    assert.equal(refusedRevoke.accepted, false);
    assert.equal(refusedRevoke.code, 'CA_NOT_AUTHORIZED', refusedRevoke.message ?? '');

    // Each method takes only its own operation; bytes that are no transaction are refused.
    const request2 = await caTx(operator, caRevokeBody(renewed.serial, SUPERSEDED));
    await assert.rejects(
      rpc.call('issue', { tx: request2.bytes }),
      (error: unknown) =>
        error instanceof StoqError &&
        error.code === StoqErrorCode.INVALID_ARGUMENT &&
        /expected a ca\/request, got ca\/revoke/.test(error.message),
    );
    await assert.rejects(
      rpc.call('revoke', { tx: new Uint8Array(randomBytes(64)) }),
      (error: unknown) =>
        error instanceof StoqError &&
        error.code === StoqErrorCode.INVALID_ARGUMENT &&
        /not a transaction/.test(error.message),
    );

    // Counted by code on the node that refused them.
    assert.equal(await refusedCount('CA_REQUEST_INVALID'), counted.CA_REQUEST_INVALID + 1);
    assert.equal(await refusedCount('CA_UNKNOWN_SERIAL'), counted.CA_UNKNOWN_SERIAL + 1);
    assert.equal(await refusedCount('CA_NOT_AUTHORIZED'), counted.CA_NOT_AUTHORIZED + 1);

    // Nothing written: once a later block commits, no sequence was used, the renewal is still
    // good, and the refused transactions are unknown to the node.
    const height = nodes[0]!.driver.status().committedHeight;
    await waitForCondition(
      nodes[0]!.driver,
      'commit',
      () => nodes[0]!.driver.status().committedHeight > height,
      'node-1 commits another block',
      30_000,
    );
    assert.equal((await provenSequence(client, operatorAccount)).sequence, sequenceBefore);
    assert.equal((await provenSequence(client, ed25519RawPublicKey(stranger))).sequence, 0);
    for (const tx of [badCsr, unknown, forged, request2]) {
      assert.equal((await client.txStatus(tx.txHash)).status, 'unknown', toHex(tx.txHash));
    }
    const stillGood = await rpc.call('validate', { certificate: renewed.certificate });
    assert.equal(stillGood.valid, true, `${stillGood.reason}: ${stillGood.message}`);
  });
});
