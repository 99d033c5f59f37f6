import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { toHex } from '../../src/crypto/bytes.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { leafHash, verifyInclusion } from '../../src/crypto/merkle.js';
import { createCaService, type CaService } from '../../src/node/ca-service.js';
import { checkValidateAnswer } from '../../src/node/cert-tools.js';
import type { QueryRequest } from '../../src/consensus/app.js';
import type { CaAnswerCheck } from '../../src/trustchain/ca-module/client.js';
import { createLogger } from '../../src/node/log.js';
import { createAuthenticator } from '../../src/stoq/auth/authenticator.js';
import { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import type { StoqError } from '../../src/stoq/errors.js';
import { createMemoryNetwork } from '../../src/stoq/memory.js';
import { createStoqMetrics } from '../../src/stoq/metrics.js';
import type { Transport } from '../../src/stoq/transport.js';
import { createCsr, proveFalconPossession } from '../../src/trustchain/ca/index.js';
import type { FalconKeyPair } from '../../src/crypto/falcon.js';
import {
  caRequestBody,
  caRevokeBody,
  findPublishedCertificate,
} from '../../src/trustchain/ca-module/index.js';
import { encodeMerkleTreeLeaf, openCtLog, type CtLog } from '../../src/trustchain/ct/index.js';
import { sha256 } from '../../src/crypto/hash.js';
import { caService as caRpcService, type CaRpcOptions } from '../../src/faces/ca-rpc.js';
import { createCorroborator, grantCorroborationAuthorizer } from '../../src/node/acme-mpic.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { RpcClient } from '../../src/stoq/rpc/client.js';
import { RpcServer } from '../../src/stoq/rpc/server.js';
import type { Role } from '../../src/stoq/identity.js';
import { decodeDcvAttestation, verifyDcvAttestation } from '../../src/trustchain/ca-module/dcv.js';
import { Http01Responder } from '../faces/acme/fixtures.js';
import {
  MemoryLogger,
  TableAuthenticator,
  counterValue,
  identity,
  isStoqError,
} from '../stoq/rpc-fixture.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { assertRejected } from '../stoq/auth-fixture.js';
import { BLOCK_TIME, CLUSTER, issueWithSerial, serviceRequest } from '../trustchain/ca/fixtures.js';

const CERT_TIME = BLOCK_TIME + 600_000;
/** `checkValidateAnswer`'s age limit, off: the fixture's blocks carry its own clock (see validate-answer.test.ts). */
const anyAge = {
  blockTime: (height: number) => Promise.resolve(BLOCK_TIME + height * 1000),
  now: CERT_TIME,
  maxBlockAgeMs: Number.MAX_SAFE_INTEGER,
};
import {
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from '../trustchain/ca-module/fixture.js';
import { connectTransports } from '../helpers/transport.js';

/**
 * The node's CA service over a real `ca` module state: `validate` (chain, revocation, CT
 * inclusion, consensus answers) and STOQ's revocation check — a client holding a
 * TrustChain-issued client certificate authenticates, and once its revocation is committed the
 * next connection is refused as `revoked` with the CRL reason.
 */

/**
 * An RPC server over the in-memory transport, for a CA service to register on, and authenticated
 * callers of it (`caller(role, name)`, listening from the first); `close` ends it all.
 */
function rpcHarness() {
  const network = createMemoryNetwork();
  const auth = new TableAuthenticator();
  const serverKey = new Uint8Array(randomBytes(32));
  auth.add(identity('validator', 'server', serverKey));
  const serverTransport = network.transport({ publicKey: serverKey });
  const metrics = createStoqMetrics(new Registry());
  const logger = new MemoryLogger();
  const rpc = new RpcServer({ metrics, logger });
  const opened: Transport[] = [serverTransport];
  let listening: ReturnType<typeof serverTransport.listen> | null = null;
  const caller = async (role: Role, name: string): Promise<RpcClient<typeof caRpcService>> => {
    listening ??= serverTransport.listen({ host: 'ca-rpc', port: 0 });
    const listener = await listening;
    const key = new Uint8Array(randomBytes(32));
    auth.add(identity(role, name, key));
    const transport = network.transport({ publicKey: key });
    opened.push(transport);
    const [outbound, inbound] = await Promise.all([
      transport.dial(listener.address),
      listener.accept(),
    ]);
    assert.ok(inbound);
    const [clientSession, serverSession] = await Promise.all([
      auth.authenticate(outbound),
      auth.authenticate(inbound),
    ]);
    void rpc.serve(serverSession);
    return new RpcClient(caRpcService, clientSession, { metrics, logger });
  };
  const close = async (): Promise<void> => {
    await rpc.close();
    await Promise.all(opened.map((transport) => transport.close()));
  };
  return { rpc, caller, close };
}

describe('CA service: validate and revocation in STOQ', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let db: Database.Database;
  let log: CtLog;
  let service: CaService;
  let pki: TestPki;
  let server: TestIdentity;
  let certificate: Uint8Array;
  let serial: Uint8Array;
  let falcon: FalconKeyPair;
  const clientKey = generateKeyPairSync('ed25519').privateKey;
  const network = createMemoryNetwork();
  const transports: Transport[] = [];

  before(async () => {
    fixture = await createCaFixture();
    // The operator may also request client certificates for spiffe://<cluster>/client/….
    const account = toHex(fixture.operator.publicKey);
    const grant = fixture.config.grants.get(account)!;
    (fixture.config.grants as Map<string, typeof grant>).set(account, {
      ...grant,
      uriPrefixes: [`spiffe://${CLUSTER}/client/`],
    });
    node = await fixture.openCaNode();
    db = new Database(':memory:');
    log = openCtLog(db, { origin: 'test/ct/log' });
    service = createCaService({
      ca: fixture.config,
      store: node.node.store,
      state: { get: (key) => node.node.store.state.get(key) },
      query: (request) => node.node.app.query(request),
      submit: () => Promise.reject(new Error('no mempool in this test')),
      log,
      rpc: null,
      registry: new Registry(),
      logger: createLogger({ node: 'test' }, () => undefined, 'error'),
      falcon: fixture.ca.falcon,
      now: () => CERT_TIME,
      // The stored blocks carry the application fixture's clock (2023), not CERT_TIME's: the
      // freshness check has its own test below.
      maxBlockAgeMs: Number.MAX_SAFE_INTEGER,
    });

    // A client certificate for spiffe://<cluster>/client/alice with the STOQ FALCON key.
    falcon = await fixture.ca.falcon.generateKeyPair();
    const spki = new Uint8Array(createPublicKey(clientKey).export({ format: 'der', type: 'spki' }));
    const request = caTx(
      fixture.operator,
      caRequestBody(
        {
          profile: 'client',
          csr: createCsr({ privateKey: clientKey }),
          uris: [`spiffe://${CLUSTER}/client/alice`],
          falcon: {
            publicKey: falcon.publicKey,
            proof: await proveFalconPossession(spki, falcon.secretKey, fixture.ca.falcon),
          },
        },
        fixture.ca.falcon,
      ),
    );
    const requested = node.block([request]);
    assert.equal(requested.txResults[0]?.code, 0, requested.txResults[0]?.log);
    const height = node.node.nextHeight() - 1;
    const published = await publication(fixture, node, height, 'val-a');
    const publishResult = node.block([publishTx(fixture, 'val-a', published.tx)]);
    assert.equal(publishResult.txResults[0]?.code, 0, publishResult.txResults[0]?.log);
    certificate = published.certificates[0]!;
    serial = node.state().published(node.node.nextHeight() - 1)!.serials[0]!;
    // What ca-node.ts appends to the log for this publication.
    const time = node.state().published(node.node.nextHeight() - 1)!.time;
    log.appendBatch(
      [
        {
          leaf: encodeMerkleTreeLeaf({ timestamp: time, entry: { type: 'x509', certificate } }),
          extraData: new Uint8Array(),
        },
      ],
      time,
    );

    pki = await createTestPki({ cluster: CLUSTER });
    server = await pki.issue({ name: 'server' });
  });

  after(async () => {
    await Promise.all(transports.map((transport) => transport.close()));
    await node?.close();
    db?.close();
  });

  /** The node's `ca` query, for the answers `checkValidateAnswer` reads itself. */
  const query = (request: QueryRequest) => node.node.app.query(request);

  const connect = async () => {
    const listening = network.transport({ publicKey: server.transportKey.publicKey });
    const dialing = network.transport({ publicKey: ed25519RawPublicKey(clientKey) });
    transports.push(listening, dialing);
    const { inbound, outbound } = await connectTransports(listening, dialing, 'ca');
    const serverAuth = createAuthenticator({
      local: { chain: server.chain, falcon: server.falcon, falconBackend: pki.falconBackend },
      // The server accepts TrustChain-issued clients and asks the CA service about revocation.
      trust: {
        roots: [fixture.ca.bundle.root.certificate],
        revocation: (query) => service.revocation(query),
        cluster: CLUSTER,
        // The fixture's blocks are at BLOCK_TIME: the certificate is valid then.
        now: () => new Date(CERT_TIME),
      },
      mode: 'strict',
      metrics: createStoqMetrics(new Registry()),
    });
    const intermediate = fixture.config.issuers.find((i) => i.name === 'val-a')!.issuer.certificate;
    const clientAuth = createAuthenticator({
      local: { chain: [certificate, intermediate], falcon, falconBackend: pki.falconBackend },
      trust: { roots: pki.roots, revocation: () => 'good' },
      mode: 'strict',
      metrics: createStoqMetrics(new Registry()),
    });
    return Promise.allSettled([
      serverAuth.authenticate(inbound),
      clientAuth.authenticate(outbound),
    ]);
  };

  it('validate: chain, CT inclusion and the proven consensus answers', async () => {
    const answer = service.validate(certificate, 'clientAuth');
    assert.equal(answer.valid, true, `${answer.reason}: ${answer.message}`);
    assert.equal(answer.issuer, 'val-a');
    assert.deepEqual(answer.serial, serial);
    assert.equal(answer.revocation?.status, 'good');
    const transparency = answer.transparency!;
    const hash = leafHash(
      encodeMerkleTreeLeaf({
        timestamp: node.state().published(answer.consensus!.publishedAt!)!.time,
        entry: { type: 'x509', certificate },
      }),
    );
    assert.ok(
      verifyInclusion(
        hash,
        transparency.leafIndex,
        transparency.treeSize,
        transparency.auditPath,
        transparency.rootHash,
      ),
    );
    // The answers are proven: replaying them gives the published certificate.
    const byRoot = answer.consensus!.answers;
    const status = await findPublishedCertificate((request) => {
      const name = request.path.slice('ca/'.length);
      const found = byRoot.find((a) => a.query === name)!;
      if (name === 'request') return node.node.app.query(request);
      return { ...found };
    }, answer.consensus!.txHash);
    assert.equal(status.status, 'published');
    assert.equal(service.validate(certificate, 'serverAuth').reason, 'wrong_key_usage');
  });

  it('cert verify --cluster: the answer is replayed through the committed-root check', async () => {
    const answer = service.validate(certificate, 'clientAuth');
    const checked: string[] = [];
    const accept: CaAnswerCheck = async (request, response) => {
      checked.push(`${request.path}@${response.height}`);
    };
    const result = (await checkValidateAnswer(answer, certificate, accept, query, anyAge))!;
    const height = answer.consensus!.answers[0]!.height!;
    assert.deepEqual(result, {
      height,
      publishedAt: answer.consensus!.publishedAt,
      revocation: null,
      transparency: { leafIndex: 0, treeSize: 1, status: 'committed', reason: null },
      blockTime: BLOCK_TIME + height * 1000,
      checkedAt: CERT_TIME,
    });
    // The log entry too: the publication time and the consensus tree head at the same height.
    assert.deepEqual(checked, [
      `ca/certificate@${height}`,
      `ca/revocation@${height}`,
      `ca/published@${height}`,
      `ca/tree-head@${height}`,
    ]);

    // The check refuses a root the quorum did not commit: so does the CLI.
    const refusal = new Error('not the committed root');
    await assert.rejects(
      checkValidateAnswer(answer, certificate, () => Promise.reject(refusal), query, anyAge),
      refusal,
    );
    // A proof that does not verify, answers for another serial, or no answers at all.
    const [published, revocation] = answer.consensus!.answers;
    const withAnswers = (answers: NonNullable<typeof answer.consensus>['answers']) => ({
      ...answer,
      consensus: { ...answer.consensus!, answers },
    });
    await assert.rejects(
      checkValidateAnswer(
        withAnswers([published!, { ...revocation!, value: new Uint8Array([1]) }]),
        certificate,
        accept,
        query,
        anyAge,
      ),
      /proof does not verify/,
    );
    await assert.rejects(
      checkValidateAnswer(
        withAnswers([{ ...published!, data: new Uint8Array(16) }, revocation!]),
        certificate,
        accept,
        query,
        anyAge,
      ),
      /another serial/,
    );
    await assert.rejects(
      checkValidateAnswer({ ...answer, consensus: null }, certificate, accept, query, anyAge),
      /without its proven answers/,
    );
  });

  it('STOQ accepts the client, then refuses it as revoked once the revocation commits', async () => {
    const [accepted, dialed] = await connect();
    assert.equal(accepted.status, 'fulfilled', String((accepted as PromiseRejectedResult).reason));
    assert.equal(dialed.status, 'fulfilled');
    assert.equal(
      (accepted as PromiseFulfilledResult<{ peer: { uri: string } }>).value.peer.uri,
      `spiffe://${CLUSTER}/client/alice`,
    );

    const revoked = node.block([caTx(fixture.operator, caRevokeBody(serial, 1))]);
    assert.equal(revoked.txResults[0]?.code, 0, revoked.txResults[0]?.log);

    const [refused, refusedClient] = await connect();
    assertRejected(refused, AuthFailureReason.REVOKED, 'local');
    assertRejected(refusedClient, AuthFailureReason.REVOKED, 'peer');
    const error = (refused as PromiseRejectedResult).reason as StoqError;
    assert.equal(error.detail.revocationReason, 'keyCompromise');
    assert.match(error.message, /keyCompromise/);

    const after = service.validate(certificate, 'clientAuth');
    assert.equal(after.valid, false);
    assert.equal(after.reason, 'revoked');
    assert.equal(after.revocation?.reason, 1);
    // A node that calls the revoked certificate valid is caught by its own proven answers.
    const accept: CaAnswerCheck = () => Promise.resolve();
    assert.equal(
      (await checkValidateAnswer(after, certificate, accept, query, anyAge))?.revocation?.reason,
      1,
    );
    await assert.rejects(
      checkValidateAnswer(
        { ...after, valid: true, reason: null },
        certificate,
        accept,
        query,
        anyAge,
      ),
      /answered valid, but its proven answers at height \d+ show the certificate revoked/,
    );
  });

  it('corroborate: validators and nodes only, schema-checked, signed attestations of its own validation', async () => {
    const validatorKey = generateKeyPairSync('ed25519').privateKey;
    const responder = await Http01Responder.start();
    const { rpc, caller: connect, close } = rpcHarness();
    const registry = new Registry();
    const served = createCaService({
      ca: fixture.config,
      store: node.node.store,
      state: { get: (key) => node.node.store.state.get(key) },
      query: (request) => node.node.app.query(request),
      submit: () => Promise.reject(new Error('no mempool in this test')),
      log,
      rpc,
      registry,
      logger: createLogger({ node: 'test' }, () => undefined, 'error'),
      falcon: fixture.ca.falcon,
      now: () => CERT_TIME,
      maxBlockAgeMs: Number.MAX_SAFE_INTEGER,
    });
    let holder = true;
    served.setCorroborator(
      createCorroborator({
        chainId: 'mpic-test-chain',
        identityKey: validatorKey,
        validation: { http01Port: responder.port, tlsAlpn01Port: 1, timeoutMs: 5_000 },
        authorize: grantCorroborationAuthorizer(fixture.config),
        latestHeight: () => 7,
        isHolder: () => holder,
      }),
    );
    const caller = (role: Role) => connect(role, `caller-${role}`);
    try {
      // The requireDcv grant (an ACME server's account) allows 127.0.0.0/8.
      const account = fixture.dcvOperator.publicKey;
      const token = Buffer.from(randomBytes(32)).toString('base64url');
      const keyAuthorization = `${token}.${Buffer.from(randomBytes(32)).toString('base64url')}`;
      responder.tokens.set(token, keyAuthorization);
      const request = {
        account,
        identifier: { type: 'ip' as const, value: '127.0.0.1' },
        method: 'http-01' as const,
        token,
        keyAuthorization,
      };

      // Least privilege: a client may not ask.
      const client = await caller('client');
      await assert.rejects(
        client.call('corroborate', request),
        isStoqError(StoqErrorCode.PERMISSION_DENIED),
      );

      // Schema-checked input and typed refusals.
      const peer = await caller('node');
      await assert.rejects(
        peer.call('corroborate', { ...request, token: 'short' }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
      await assert.rejects(
        peer.call('corroborate', { ...request, keyAuthorization: `x${keyAuthorization}` }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
      await assert.rejects(
        peer.call('corroborate', { ...request, identifier: { type: 'ip', value: 'not-an-ip' } }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
      // Least privilege: only identifiers a requireDcv grant allows (test/node/acme-mpic.test.ts).
      await assert.rejects(
        peer.call('corroborate', { ...request, account: fixture.operator.publicKey }),
        isStoqError(StoqErrorCode.PERMISSION_DENIED),
      );

      // The challenge is met: a signed ok attestation with the right fields.
      const validator = await caller('validator');
      const { attestation } = await validator.call('corroborate', request);
      const decoded = decodeDcvAttestation(attestation);
      assert.equal(verifyDcvAttestation(decoded), true);
      assert.deepEqual(decoded.body, {
        chainId: 'mpic-test-chain',
        account,
        identifier: 'ip:127.0.0.1',
        wildcard: false,
        method: 'http-01',
        keyAuthorizationHash: sha256(new TextEncoder().encode(keyAuthorization)),
        height: 7,
        ok: true,
        validator: ed25519RawPublicKey(validatorKey),
      });
      assert.deepEqual(responder.hosts.slice(-1), [`127.0.0.1:${responder.port}`]);

      // Not met (the responder does not know the token): still signed, ok = false.
      const unknown = Buffer.from(randomBytes(32)).toString('base64url');
      const failed = decodeDcvAttestation(
        (
          await peer.call('corroborate', {
            ...request,
            token: unknown,
            keyAuthorization: `${unknown}.thumbprint-of-the-account-key`,
          })
        ).attestation,
      );
      assert.equal(verifyDcvAttestation(failed), true);
      assert.equal(failed.body.ok, false);

      // A node without an intermediate, or without ACME validation, does not attest.
      holder = false;
      await assert.rejects(
        peer.call('corroborate', request),
        isStoqError(StoqErrorCode.UNAVAILABLE),
      );
      served.setCorroborator(null);
      await assert.rejects(
        peer.call('corroborate', request),
        isStoqError(StoqErrorCode.UNAVAILABLE),
      );

      const count = (result: string) =>
        counterValue(registry, 'hypermesh_ca_corroborate_total', { result });
      assert.equal(await count('ok'), 1);
      assert.equal(await count('failed'), 1);
      // keyAuthorization, identifier, account, not a holder, no corroborator (the schema and
      // the role refuse before the handler runs).
      assert.equal(await count('refused'), 5);
    } finally {
      await close();
      await responder.close();
    }
  });
  /** A CA service served over RPC, and callers of the roles and names given. */
  const serveValidate = async (rpcOptions: CaRpcOptions) => {
    const { rpc, caller: connect, close } = rpcHarness();
    createCaService({
      ca: fixture.config,
      store: node.node.store,
      state: { get: (key) => node.node.store.state.get(key) },
      query: (request) => node.node.app.query(request),
      submit: () => Promise.reject(new Error('no mempool in this test')),
      log,
      rpc,
      registry: new Registry(),
      logger: createLogger({ node: 'test' }, () => undefined, 'error'),
      falcon: fixture.ca.falcon,
      now: () => CERT_TIME,
      maxBlockAgeMs: Number.MAX_SAFE_INTEGER,
      rpcOptions,
    });
    const caller = (name: string) => connect('client', name);
    return { caller, close };
  };

  it('validate: a node whose last block is older than its max block age refuses (stale)', () => {
    const latest = node.node.store.blocks.latestHeight()!;
    const age = CERT_TIME - node.node.store.blocks.byHeight(latest)!.timeMs;
    const withMaxAge = (maxBlockAgeMs?: number) =>
      createCaService({
        ca: fixture.config,
        store: node.node.store,
        state: { get: (key) => node.node.store.state.get(key) },
        query: (request) => node.node.app.query(request),
        submit: () => Promise.reject(new Error('no mempool in this test')),
        log,
        rpc: null,
        registry: new Registry(),
        logger: createLogger({ node: 'test' }, () => undefined, 'error'),
        falcon: fixture.ca.falcon,
        now: () => CERT_TIME,
        ...(maxBlockAgeMs === undefined ? {} : { maxBlockAgeMs }),
      });
    const stale = (error: unknown) =>
      isStoqError(StoqErrorCode.UNAVAILABLE)(error) &&
      (error as StoqError).detail.reason === 'stale';
    // Behind by a second more than it may be, or by more than the default (OCSP's) 5 minutes.
    assert.ok(age > 300_000);
    assert.throws(() => withMaxAge(age - 1_000).validate(certificate, 'clientAuth'), stale);
    assert.throws(() => withMaxAge().validate(certificate, 'clientAuth'), stale);
    // Within its max block age the same node answers (the certificate is revoked by now).
    assert.equal(withMaxAge(age + 60_000).validate(certificate, 'clientAuth').reason, 'revoked');
  });

  it('validate over RPC: a serial that is not 16 bytes is not_published, not INTERNAL', async () => {
    const validator = fixture.ca.validators['val-a']!;
    const forged = await issueWithSerial(
      fixture.ca,
      validator.keys,
      {
        chainId: fixture.ca.bundle.chainId,
        height: 2,
        blockTime: BLOCK_TIME,
        issuer: validator.issuer,
        items: [
          {
            txHash: new Uint8Array(randomBytes(32)),
            request: serviceRequest(['www.example.com']),
            lifetimeSeconds: 86_400,
          },
        ],
      },
      new Uint8Array(8).fill(0x41),
    );
    const served = await serveValidate({});
    try {
      const client = await served.caller('carol');
      const answer = await client.call('validate', { certificate: forged, purpose: 'serverAuth' });
      assert.equal(answer.valid, false);
      assert.equal(answer.reason, 'not_published');
      assert.equal(answer.serial, null);
    } finally {
      await served.close();
    }
  });

  it('validate over RPC: budgeted per identity (validate-rate), other identities still served', async () => {
    // A clock that does not move: the bucket never refills during the test.
    const served = await serveValidate({
      validateRatePerIdentity: 1,
      validateBurstPerIdentity: 3,
      now: () => 0,
    });
    try {
      const bob = await served.caller('bob');
      for (let call = 0; call < 3; call += 1) {
        await bob.call('validate', { certificate, purpose: 'clientAuth' });
      }
      await assert.rejects(
        bob.call('validate', { certificate, purpose: 'clientAuth' }),
        (error: unknown) =>
          isStoqError(StoqErrorCode.RESOURCE_EXHAUSTED)(error) &&
          (error as StoqError).detail.reason === 'validate-rate',
      );
      const dave = await served.caller('dave');
      const answer = await dave.call('validate', { certificate, purpose: 'clientAuth' });
      assert.deepEqual(answer.serial, serial);
    } finally {
      await served.close();
    }
  });
});
