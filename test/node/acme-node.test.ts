import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as acme from 'acme-client';
import { parseGenesisJson, type GenesisDocument } from '../../src/consensus/genesis.js';
import { toHex } from '../../src/crypto/bytes.js';
import { parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { ACME_FILES } from '../../src/node/acme-cluster.js';
import { acmeErrorForCaRefusal } from '../../src/node/acme-issuer.js';
import { CA_FILES } from '../../src/node/ca-genesis.js';
import { checkCtInclusion, ctTimestamp, fetchQuorumCheckpoint } from '../../src/node/cert-tools.js';
import { createLogger } from '../../src/node/log.js';
import { loadClusterTarget, openOperatorSession } from '../../src/node/operator.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { createWalletKey, readWalletKey } from '../../src/node/wallet.js';
import { startAcmeNode } from '../../src/node/acme-node.js';
import { CliError } from '../../src/node/cli-error.js';
import { genesisApplication } from '../../src/node/validator-node.js';
import { generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { Registry } from 'prom-client';
import { AcmeIssuerErrorCode } from '../../src/faces/acme/index.js';
import { issuanceProblem } from '../../src/faces/acme/finalize-checks.js';
import {
  CA_MODULE_NAME,
  decodeCaBody,
  findPublishedCertificate,
} from '../../src/trustchain/ca-module/index.js';
import {
  dcvRequiredCount,
  decodeDcvAttestation,
  verifyDcvAttestation,
} from '../../src/trustchain/ca-module/dcv.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import { jwkThumbprint, keyAuthorization } from '../../src/faces/acme/index.js';
import {
  Http01Responder,
  RawAcmeClient,
  freePort,
  generateAccountKey,
  publicJwk,
} from '../faces/acme/fixtures.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { startClusterNodes } from '../helpers/nodes.js';
import { assertOpensslVerifies, writeLeafPem } from '../helpers/openssl.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

const opensslPresent = spawnSync('openssl', ['version']).status === 0;
const legoPresent = spawnSync('lego', ['--version']).status === 0;
const inCi = process.env.CI === 'true';
if (inCi && (!legoPresent || !opensslPresent)) {
  throw new Error('lego and openssl are required in CI (.ci/run installs them)');
}
const skip = opensslPresent ? false : 'openssl is not installed';
const skipLego = legoPresent ? skip : 'lego is not installed (Debian package lego)';
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The ACME server in the node, issuing through the consensus `ca` module: a two-validator
 * cluster from `cluster init` (each node with an ACME port, account key, genesis grant and HTTPS
 * certificate) running in this process. `acme-client` orders a name in the cluster zone and
 * answers dns-01 with a `dns` transaction (`hypermesh dns set`, waiting for the commit); the
 * certificate passes `openssl verify` against the TrustChain root and `hypermesh cert verify`,
 * and is in the node's CT log. Debian's `lego` does the same through its `exec` DNS provider,
 * trusting the cluster's development root for the HTTPS connection.
 */
describe('ACME in the node (consensus ca module)', { skip }, () => {
  let root: string;
  let dir: string;
  let responder: Http01Responder;
  const nodes: ValidatorNode[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-acme-'));
    dir = path.join(root, 'cluster');
    const init = await runCli([...clusterInitArgs(dir, 2), '--no-caesar']);
    assert.equal(init.code, 0, init.err);
    assert.match(init.out, /acme {6}ACME servers on HTTPS ports/);
    // http-01 reaches the responder from node-1's perspective and a closed port from node-2's
    // (multi-perspective validation with one failing perspective).
    responder = await Http01Responder.start();
    const closedPort = await freePort();
    const port = responder.port;
    await startClusterNodes(nodes, dir, ['node-1', 'node-2'], {
      configure: (name, loaded) => {
        assert.ok(loaded.acme !== undefined && loaded.acme !== null);
        const http01Port = name === 'node-1' ? port : closedPort;
        return { ...loaded, acme: { ...loaded.acme, http01Port } };
      },
    });
  });

  after(async () => {
    for (const node of nodes) await node.stop();
    await responder?.close();
    await rm(root, { recursive: true, force: true });
  });

  // The HTTPS certificates come from each node's TrustChain intermediate (served with it).
  const rootPem = (): Promise<string> =>
    readFile(path.join(dir, 'ca', 'trustchain-root.pem'), 'utf8');

  /** `hypermesh dns set NAME TXT VALUE` on node-1, waiting for the commit. */
  async function setTxt(name: string, value: string): Promise<void> {
    const set = await runCli([
      'dns',
      'set',
      '--cluster',
      dir,
      '--node',
      'node-1',
      '--wait',
      '--',
      name,
      'TXT',
      value,
    ]);
    assert.equal(set.code, 0, set.err + set.out);
  }

  /**
   * Multi-perspective validation: the committed `ca request` `txHash` carries ok attestations
   * for `identifier` from at least `dcvRequiredCount(validators)` distinct validators, each a
   * node of the cluster, signed by it, for the ACME account of `node`.
   */
  async function checkAttestations(
    node: ValidatorNode,
    txHash: Uint8Array,
    identifier: string,
  ): Promise<void> {
    const hex = toHex(txHash);
    let dcv: readonly Uint8Array[] | undefined;
    for (let height = node.driver.status().committedHeight; height >= 1; height -= 1) {
      const committed = node.driver.committedBlock(height);
      for (const bytes of committed?.block.transactions ?? []) {
        const envelope = decodeTransaction(bytes);
        if (toHex(envelope.txHash) !== hex) continue;
        assert.equal(envelope.module, CA_MODULE_NAME);
        const body = decodeCaBody(envelope.body);
        assert.ok(body.op === 'request');
        dcv = body.dcv ?? [];
      }
      if (dcv !== undefined) break;
    }
    assert.ok(dcv !== undefined, 'the request transaction is in a committed block');
    const account = await readWalletKey(path.join(dir, node.config.name, ACME_FILES.accountKey));
    const validators = new Set<string>();
    for (const bytes of dcv) {
      const attestation = decodeDcvAttestation(bytes);
      assert.equal(verifyDcvAttestation(attestation), true);
      assert.equal(attestation.body.ok, true);
      assert.equal(attestation.body.identifier, identifier);
      assert.equal(toHex(attestation.body.account), toHex(account.publicKey));
      validators.add(toHex(attestation.body.validator));
    }
    assert.ok(
      validators.size >= dcvRequiredCount(nodes.length),
      `${validators.size} distinct validators attested, ${dcvRequiredCount(nodes.length)} needed`,
    );
  }

  /** openssl verify against the TrustChain root and intermediates; `cert verify` with the bundle. */
  async function checkChain(chainPem: string, label: string): Promise<void> {
    const leafFile = path.join(root, `${label}.pem`);
    await writeLeafPem(chainPem, leafFile);
    await assertOpensslVerifies(dir, leafFile);
    const verified = await runCli([
      'cert',
      'verify',
      leafFile,
      '--bundle',
      path.join(dir, CA_FILES.dir, CA_FILES.bundle),
      '--purpose',
      'serverAuth',
    ]);
    assert.equal(verified.code, 0, verified.out + verified.err);
    assert.match(verified.out, /^valid: issued by node-\d/);
  }

  it('cluster init: ACME config, account grants in the genesis, an HTTPS certificate for the host', async () => {
    const genesis = parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
    const grants = (
      genesis.app?.ca as {
        grants: { account: string; profiles: string[]; requireDcv?: boolean }[];
      }
    ).grants;
    for (const [index, node] of nodes.entries()) {
      const acmeConfig = node.config.acme;
      assert.ok(acmeConfig !== undefined && acmeConfig !== null);
      assert.ok(acmeConfig.https.port > 0);
      assert.equal(node.acme, `https://127.0.0.1:${acmeConfig.https.port}/directory`);
      const account = await readWalletKey(
        path.join(dir, `node-${index + 1}`, ACME_FILES.accountKey),
      );
      const grant = grants.find((candidate) => candidate.account === toHex(account.publicKey));
      assert.deepEqual(grant?.profiles, ['service']);
      // Multi-perspective validation is required for the node ACME accounts.
      assert.equal(grant?.requireDcv, true);
      const httpsFile = path.join(dir, `node-${index + 1}`, ACME_FILES.certificate);
      const https = await readFile(httpsFile);
      const chain = pemToDerList(https.toString());
      assert.deepEqual(parseCertificate(chain[0]!).ipAddresses, ['127.0.0.1']);
      // Issued at genesis by the node's own intermediate, which the chain carries.
      assert.equal(chain.length, 2);
      assert.equal(
        parseCertificate(chain[1]!).subject,
        `CN=node-${index + 1}, OU=validator, O=hypermesh-dev`,
      );
      await assertOpensslVerifies(dir, httpsFile, '127.0.0.1');
    }
  });

  it('acme-client: dns-01 through a dns transaction, a certificate OpenSSL and cert verify accept, in the CT log, revoked through the module', async () => {
    const node = nodes[0]!;
    const name = 'www.hypermesh';
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: await rootPem() });
    const client = new acme.Client({
      directoryUrl: node.acme as string,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffAttempts: 60,
      backoffMin: 250,
      backoffMax: 1000,
    });
    const [, csr] = await acme.crypto.createCsr(
      { altNames: [name] },
      await acme.crypto.createPrivateEcdsaKey(),
    );
    const chainPem = await withDeadline(
      client.auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: ['dns-01'],
        // The name is in the cluster zone, which the system resolver does not know.
        skipChallengeVerification: true,
        challengeCreateFn: async (authz, challenge, keyAuthorization) => {
          assert.equal(challenge.type, 'dns-01');
          await setTxt(`_acme-challenge.${authz.identifier.value}`, keyAuthorization);
        },
        challengeRemoveFn: async () => undefined,
      }),
      120_000,
      'acme-client issues a certificate',
    );
    const leaf = pemToDerList(chainPem)[0]!;
    assert.deepEqual(parseCertificate(leaf).dnsNames, [name]);
    assert.equal(pemToDerList(chainPem).length, 2, 'leaf and its intermediate');
    await checkChain(chainPem, 'acme-client');

    // In the CT log of the node that served ACME.
    const shown = await runCli(['cert', 'show', path.join(root, 'acme-client.pem'), '--json']);
    const txHash = Uint8Array.from(Buffer.from(JSON.parse(shown.out).issuance.txHash, 'hex'));
    await checkAttestations(node, txHash, `dns:${name}`);
    const session = await openOperatorSession(await loadClusterTarget(dir));
    try {
      const rpc = session.client('node-1');
      const status = await findPublishedCertificate((request) => rpc.query(request), txHash);
      assert.ok(status.status === 'published');
      const timestamp = await ctTimestamp(rpc, status.publishedAt);
      const genesis = parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
      const { verified } = await fetchQuorumCheckpoint(rpc, genesis);
      const inclusion = await checkCtInclusion(node.ct as string, leaf, timestamp, verified);
      assert.ok(inclusion.treeSize >= 1);

      // ACME revocation becomes a ca/revoke transaction from the node's ACME account.
      await withDeadline(client.revokeCertificate(chainPem, { reason: 4 }), 60_000, 'revoke');
      const revoked = await findPublishedCertificate((request) => rpc.query(request), txHash);
      assert.ok(revoked.status === 'published');
      assert.equal(revoked.revocation?.reason, 4);
    } finally {
      await session.close();
    }
  });

  it('revokeCert of a certificate `hypermesh cert revoke` already revoked: alreadyRevoked, no 500', async () => {
    const node = nodes[0]!;
    const name = 'revoked.hypermesh';
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: await rootPem() });
    const client = new acme.Client({
      directoryUrl: node.acme as string,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffAttempts: 60,
      backoffMin: 250,
      backoffMax: 1000,
    });
    const certKeyPem = await acme.crypto.createPrivateEcdsaKey();
    const [, csr] = await acme.crypto.createCsr({ altNames: [name] }, certKeyPem);
    const chainPem = await withDeadline(
      client.auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: ['dns-01'],
        skipChallengeVerification: true,
        challengeCreateFn: async (authz, challenge, keyAuthorization) => {
          assert.equal(challenge.type, 'dns-01');
          await setTxt(`_acme-challenge.${authz.identifier.value}`, keyAuthorization);
        },
        challengeRemoveFn: async () => undefined,
      }),
      120_000,
      'acme-client issues a certificate',
    );
    // Revoked by another route: the operator, with a signature by the certificate's key.
    const certFile = path.join(root, 'revoked-elsewhere.pem');
    const keyFile = path.join(root, 'revoked-elsewhere.key');
    await writeFile(certFile, chainPem);
    await writeFile(keyFile, certKeyPem);
    const revoked = await runCli([
      'cert',
      'revoke',
      certFile,
      '--key',
      keyFile,
      '--reason',
      'keyCompromise',
      '--cluster',
      dir,
      '--node',
      'node-1',
    ]);
    assert.equal(revoked.code, 0, revoked.out + revoked.err);
    const revokedAt = Number(/at height (\d+)/.exec(revoked.out)?.[1]);
    await waitForCondition(
      node.driver,
      'commit',
      () => node.driver.status().committedHeight >= revokedAt,
      'node-1 commits the revocation',
      30_000,
    );
    // The ACME server answers alreadyRevoked (RFC 8555 §7.6), twice: not a 500 per retry.
    const holder = new RawAcmeClient(
      node.acme as string,
      await rootPem(),
      createPrivateKey(certKeyPem),
      'ES256',
    );
    await holder.init();
    const leaf = pemToDerList(chainPem)[0]!;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const reply = await holder.post(holder.directory.revokeCert as string, {
        certificate: Buffer.from(leaf).toString('base64url'),
      });
      assert.equal(reply.status, 400, reply.text);
      assert.equal(reply.json?.type, 'urn:ietf:params:acme:error:alreadyRevoked', reply.text);
    }
  });

  it('multi-perspective validation: a challenge node-2 cannot see is invalid (1 of 2 corroborated)', async () => {
    const node = nodes[0]!;
    const client = new RawAcmeClient(
      node.acme as string,
      await rootPem(),
      generateAccountKey('ES256'),
      'ES256',
    );
    await client.init();
    assert.equal((await client.newAccount()).status, 201);
    const created = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    });
    assert.equal(created.status, 201, created.text);
    const orderUrl = created.headers.location as string;
    const authz = await client.post((created.json?.authorizations as string[])[0]!, '');
    const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
      (c) => c.type === 'http-01',
    )!;
    const token = challenge.token!;
    responder.tokens.set(token, keyAuthorization(token, jwkThumbprint(publicJwk(client.key))));
    assert.equal((await client.post(challenge.url!, {})).status, 200);
    // The validations and the corroboration run in the background; checked after each commit.
    let settled = await client.post(challenge.url!, '');
    await waitForCondition(
      node.driver,
      'commit',
      async () => {
        settled = await client.post(challenge.url!, '');
        return settled.json?.status !== 'processing' && settled.json?.status !== 'pending';
      },
      'the challenge is settled',
      60_000,
    );
    assert.equal(settled.json?.status, 'invalid', settled.text);
    const error = settled.json?.error as Record<string, unknown>;
    assert.equal(error.type, 'urn:ietf:params:acme:error:incorrectResponse');
    assert.equal(
      error.detail,
      'multi-perspective validation: validators holding 50% of voting power corroborated (1 of 2 holders), more than 66.7% needed',
    );
    // node-1's own perspective saw the token (the responder was asked), node-2's did not.
    assert.ok(responder.hosts.length >= 1);
    assert.equal((await client.post(orderUrl, '')).json?.status, 'invalid');
  });

  it('names outside the grant are rejectedIdentifier', async () => {
    const client = new acme.Client({
      directoryUrl: nodes[1]!.acme as string,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
    });
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: await rootPem() });
    await client.createAccount({ termsOfServiceAgreed: true });
    await assert.rejects(
      client.createOrder({ identifiers: [{ type: 'dns', value: 'www.example.com' }] }),
      /www\.example\.com is not in a zone this server issues for/,
    );
  });

  it('CAA in the cluster zone: a parent naming another CA refuses a child with the caa problem', async () => {
    const node = nodes[0]!;
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: await rootPem() });
    const client = new acme.Client({
      directoryUrl: node.acme as string,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffAttempts: 60,
      backoffMin: 250,
      backoffMax: 1000,
    });
    // The default issuer domain name is the cluster zone's apex.
    const directory = await fetchJson();
    assert.deepEqual((directory.meta as { caaIdentities?: string[] }).caaIdentities, ['hypermesh']);
    const set = await runCli([
      'dns',
      'set',
      '--cluster',
      dir,
      '--node',
      'node-1',
      '--wait',
      '--',
      'blocked.hypermesh',
      'CAA',
      '0 issue "other-ca.example"',
    ]);
    assert.equal(set.code, 0, set.err + set.out);
    const [, csr] = await acme.crypto.createCsr(
      { altNames: ['www.blocked.hypermesh'] },
      await acme.crypto.createPrivateEcdsaKey(),
    );
    await assert.rejects(
      withDeadline(
        client.auto({
          csr,
          termsOfServiceAgreed: true,
          challengePriority: ['dns-01'],
          skipChallengeVerification: true,
          challengeCreateFn: async (authz, _challenge, keyAuthorization) => {
            await setTxt(`_acme-challenge.${authz.identifier.value}`, keyAuthorization);
          },
          challengeRemoveFn: async () => undefined,
        }),
        120_000,
        'acme-client is refused',
      ),
      /CAA records at blocked\.hypermesh forbid issuance for www\.blocked\.hypermesh/,
    );

    async function fetchJson(): Promise<Record<string, unknown>> {
      return new Promise((resolve, reject) => {
        https
          .get(node.acme as string, { agent: acme.axios.defaults.httpsAgent }, (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () =>
              resolve(
                JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
              ),
            );
          })
          .on('error', reject);
      });
    }
  });

  /** startAcmeNode with this configuration refuses to start: exit code 2, `message`. */
  async function refusedAtStart(
    config: ValidatorNode['config'],
    genesis: GenesisDocument,
    ca: ReturnType<typeof genesisApplication>['ca'],
    message: RegExp,
  ): Promise<void> {
    await assert.rejects(
      startAcmeNode({
        config,
        genesis,
        ca,
        identityKey: generateEd25519KeyPair().privateKey,
        query: () => {
          throw new Error('no query expected');
        },
        submit: () => Promise.reject(new Error('no submission expected')),
        pending: () => false,
        dnsServer: null,
        dnsZones: null,
        committed: { state: { get: () => null }, latestHeight: () => null },
        registry: new Registry(),
        logger: createLogger({ node: 'test' }, () => undefined, 'error'),
      }),
      (error: unknown) =>
        error instanceof CliError && error.exitCode === 2 && message.test(error.message),
    );
  }

  it('a node refuses an ACME account without a genesis grant (exit code 2)', async () => {
    const node = nodes[0]!;
    const genesis = parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
    const stranger = path.join(root, 'stranger.key');
    await createWalletKey(stranger);
    const acmeConfig = node.config.acme;
    assert.ok(acmeConfig !== undefined && acmeConfig !== null);
    await refusedAtStart(
      { ...node.config, acme: { ...acmeConfig, accountKeyFile: stranger } },
      genesis,
      genesisApplication(genesis).ca,
      /has no grant/,
    );
  });

  it('a node refuses an ACME account whose grant lacks requireDcv (exit code 2)', async () => {
    // The holders corroborate only for requireDcv grants (acme-mpic.ts), so every challenge of
    // such a server would fail multi-perspective validation.
    const node = nodes[0]!;
    const genesis = parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
    const ca = genesisApplication(genesis).ca;
    assert.ok(ca !== undefined);
    const grants = new Map(
      [...ca.grants].map(([account, g]) => [account, { ...g, requireDcv: false }]),
    );
    await refusedAtStart(node.config, genesis, { ...ca, grants }, /requireDcv/);
  });

  it('cluster init: --no-acme writes no ACME config or grants; overlapping ports are refused', async () => {
    const other = path.join(root, 'no-acme');
    const init = await runCli([...clusterInitArgs(other, 1), '--no-caesar', '--no-acme']);
    assert.equal(init.code, 0, init.err);
    const config = JSON.parse(await readFile(path.join(other, 'node-1', 'config.json'), 'utf8'));
    assert.equal(config.acme, null);
    const genesis = parseGenesisJson(await readFile(path.join(other, 'genesis.json'), 'utf8'));
    assert.equal((genesis.app?.ca as { grants: unknown[] }).grants.length, 1, 'the operator only');

    const overlap = await runCli([
      'cluster',
      'init',
      '--validators',
      '2',
      '--out',
      path.join(root, 'overlap'),
      '--acme-base-port',
      '9465',
    ]);
    assert.equal(overlap.code, 2);
    assert.match(overlap.err, /ACME ports 9465\.\.9466 overlap metrics ports 9464\.\.9465/);
  });

  it('maps ca refusals to ACME issuer errors', () => {
    const cases: [string, string, AcmeIssuerErrorCode][] = [
      ['CA_POLICY_REFUSED', 'refused: name_not_allowed', AcmeIssuerErrorCode.REJECTED_IDENTIFIER],
      ['CA_POLICY_REFUSED', 'refused: key_too_weak', AcmeIssuerErrorCode.BAD_CSR],
      ['CA_REQUEST_INVALID', 'bad CSR signature', AcmeIssuerErrorCode.BAD_CSR],
      ['CA_DCV_QUORUM', 'multi-perspective validation', AcmeIssuerErrorCode.UNAUTHORIZED],
      ['CA_DCV_INVALID', 'dcv attestation: bad', AcmeIssuerErrorCode.UNAUTHORIZED],
      ['CA_RATE_LIMITED', 'window used up', AcmeIssuerErrorCode.RATE_LIMITED],
      ['MEMPOOL_BUSY', 'retry later', AcmeIssuerErrorCode.UNAVAILABLE],
    ];
    for (const [code, message, expected] of cases) {
      assert.equal(acmeErrorForCaRefusal(code, message).code, expected, code);
    }
    // RFC 8555 §6.7: the order's problem is rateLimited (429), not serverInternal.
    const limited = issuanceProblem(acmeErrorForCaRefusal('CA_RATE_LIMITED', 'window used up'));
    assert.equal(limited.asDocument().type, 'urn:ietf:params:acme:error:rateLimited');
    assert.equal(limited.status, 429);
  });

  it(
    'lego: dns-01 through its exec provider, trusting the cluster root for HTTPS',
    { skip: skipLego },
    async () => {
      const node = nodes[0]!;
      const name = 'lego.hypermesh';
      const work = path.join(root, 'lego');
      await mkdir(work);
      // lego runs EXEC_PATH present|cleanup FQDN VALUE; present sets the TXT record and waits.
      const hook = path.join(work, 'hook.mjs');
      await writeFile(
        hook,
        [
          `import { main } from ${JSON.stringify(path.join(repoRoot, 'src', 'node', 'cli.ts'))};`,
          'const [action, fqdn, value] = process.argv.slice(2);',
          "if (action !== 'present') process.exit(0);",
          `const code = await main(['dns', 'set', '--cluster', ${JSON.stringify(dir)}, '--node', 'node-1', '--wait', '--', fqdn.replace(/\\.$/, ''), 'TXT', value]);`,
          'process.exit(code);',
          '',
        ].join('\n'),
      );
      const script = path.join(work, 'hook.sh');
      await writeFile(script, `#!/bin/sh\nexec node --import tsx ${JSON.stringify(hook)} "$@"\n`);
      await chmod(script, 0o755);
      const dnsPort = node.dns?.udp[0]?.port;
      assert.ok(dnsPort !== undefined);
      const child = spawn(
        'lego',
        [
          '--server',
          node.acme as string,
          '--accept-tos',
          '--email',
          'ops@example.test',
          '--domains',
          name,
          '--dns',
          'exec',
          '--dns.disable-cp',
          '--dns.resolvers',
          `127.0.0.1:${dnsPort}`,
          '--path',
          path.join(work, 'state'),
          'run',
        ],
        {
          cwd: repoRoot,
          env: {
            ...process.env,
            LEGO_CA_CERTIFICATES: path.join(dir, 'ca', 'trustchain-root.pem'),
            LEGO_DISABLE_CNAME_SUPPORT: 'true',
            EXEC_PATH: script,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      try {
        const [code] = (await withDeadline(once(child, 'exit'), 150_000, 'lego run')) as [
          number | null,
        ];
        assert.equal(code, 0, output);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      const chainPem = await readFile(
        path.join(work, 'state', 'certificates', `${name}.crt`),
        'utf8',
      );
      assert.deepEqual(parseCertificate(pemToDerList(chainPem)[0]!).dnsNames, [name]);
      await checkChain(chainPem, 'lego');
    },
  );
});
