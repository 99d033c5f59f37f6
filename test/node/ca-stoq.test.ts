import assert from 'node:assert/strict';
import { rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createNodeRpcClient } from '../../src/consensus/net/index.js';
import { defaultFalcon } from '../../src/crypto/falcon.js';
import { writeKeyFile } from '../../src/crypto/keyfile.js';
import { derToPem } from '../../src/crypto/x509.js';
import {
  genesisTrustBundle,
  requestCertificate,
  stoqIdentityRequestParts,
} from '../../src/node/cert-tools.js';
import { DEFAULT_LISTEN_HOST, type NodeConfig } from '../../src/node/config.js';
import { generateNodeIdentity } from '../../src/node/dev-ca.js';
import { operatorKey } from '../../src/node/kv-tools.js';
import { createLogger } from '../../src/node/log.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import {
  openOperatorSession,
  type ClusterTarget,
  type OperatorSession,
} from '../../src/node/operator.js';
import { buildStoqParts, combineRevocationChecks } from '../../src/node/stoq-node.js';
import type { RevocationAnswer, RevocationQuery } from '../../src/stoq/auth/index.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { StoqError } from '../../src/stoq/errors.js';
import { certificateChainPem } from '../../src/trustchain/ca-module/index.js';
import { runCli } from '../helpers/cli.js';
import { startOneNodeCluster } from '../helpers/one-node-cluster.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

/**
 * The node's own STOQ endpoint and TrustChain-issued certificates (docs/ca.md "Revocation in
 * STOQ"): a client-profile certificate with the STOQ FALCON key connects to the node API as a
 * `client`; a client-profile certificate naming the `validator` role is refused; after
 * `cert revoke` commits, a new connection with the revoked certificate is refused as `revoked`.
 */
describe('TrustChain certificates on the node STOQ endpoint', () => {
  let root: string;
  let dir: string;
  let node: ValidatorNode;
  let target: ClusterTarget;
  let operator: OperatorSession;
  const falcon = defaultFalcon();

  before(async () => {
    ({ root, dir, node, target } = await startOneNodeCluster('hypermesh-ca-stoq-'));
    operator = await openOperatorSession(target);
  });

  after(async () => {
    await operator?.close();
    await node?.stop();
    await rm(root, { recursive: true, force: true });
  });

  /**
   * Requests a client-profile certificate for `uri` through the library `hypermesh cert request`
   * runs (the CSR and FALCON proof `--stoq-identity` builds), and writes the key file and chain a
   * STOQ endpoint reads.
   */
  const issueClient = async (name: string, uri: string) => {
    const keys = await generateNodeIdentity(falcon);
    const genesis = await readGenesisFile(target.genesisFile);
    const published = await requestCertificate({
      client: operator.client('node-1'),
      genesis,
      privateKey: await operatorKey(target.operator.keyFile),
      request: {
        profile: 'client',
        uris: [uri],
        ...(await stoqIdentityRequestParts(keys, falcon)),
      },
      timeoutMs: 60_000,
    });
    const keyFile = path.join(root, `${name}.key`);
    const certificateFile = path.join(root, `${name}.pem`);
    const chainFile = path.join(root, `${name}.chain.pem`);
    await writeKeyFile(keyFile, { kind: 'node-identity', keys });
    await writeFile(certificateFile, derToPem(published.certificate));
    await writeFile(
      chainFile,
      certificateChainPem(genesisTrustBundle(genesis), published.certificate, published.issuer),
    );
    return { name, keyFile, certificateFile, chainFile };
  };

  /** A fresh client endpoint (so a fresh connection and handshake) with that identity. */
  const endpointAs = (identity: { name: string; keyFile: string; chainFile: string }) => {
    const config: NodeConfig = {
      cluster: target.chainId,
      name: identity.name,
      transport: 'quic',
      listen: { host: DEFAULT_LISTEN_HOST, port: 0 },
      auth: { mode: 'delegated', delegationTtlSeconds: 3600 },
      identity: { keyFile: identity.keyFile, certificateFile: identity.chainFile },
      trust: { rootsFile: target.trustRootsFile },
      peers: Object.fromEntries(target.nodes.map((entry) => [entry.name, [entry.stoq]])),
      metrics: null,
    };
    return buildStoqParts(
      config,
      createLogger({ node: identity.name }, () => undefined, 'error'),
    );
  };

  /** node-1's status read over a fresh endpoint with that identity. */
  const statusWith = async (identity: { name: string; keyFile: string; chainFile: string }) => {
    const parts = await endpointAs(identity);
    try {
      return await withDeadline(
        createNodeRpcClient({ endpoint: parts.endpoint, peer: 'node-1' }).status(),
        30_000,
        `status as ${identity.name}`,
      );
    } finally {
      await parts.close();
    }
  };

  const refusedAs =
    (reason: string) =>
    (error: unknown): boolean => {
      assert.ok(error instanceof StoqError, String(error));
      assert.equal(error.detail.reason, reason, error.message);
      return true;
    };

  it('`cert request --stoq-identity` writes a node-identity key and chain that read status as a client', async () => {
    const uri = `spiffe://${target.chainId}/client/carol`;
    const prefix = path.join(root, 'carol');
    const request = (extra: string[]) =>
      withDeadline(
        runCli(['cert', 'request', '--stoq-identity', '--uri', uri, '--cluster', dir, ...extra]),
        60_000,
        'cert request --stoq-identity',
      );
    for (const [extra, message] of [
      [['--key-type', 'p256'], /needs an Ed25519 key/],
      [['--csr', path.join(root, 'any.csr')], /does not take --csr/],
    ] as const) {
      const refused = await request(['--out', prefix, ...extra]);
      assert.notEqual(refused.code, 0, refused.out);
      assert.match(refused.err, message);
    }
    const refused = await runCli(['cert', 'request', '--out', prefix, '--identity-key', 'x']);
    assert.match(refused.err, /--identity-key FILE needs --stoq-identity/);

    const issued = await request(['--out', prefix]);
    assert.equal(issued.code, 0, issued.err + issued.out);
    const carol = { name: 'carol', keyFile: `${prefix}.key`, chainFile: `${prefix}.chain.pem` };
    assert.equal((await stat(carol.keyFile)).mode & 0o777, 0o600);
    const status = await statusWith(carol);
    assert.equal(status['node'], 'node-1');

    // A second certificate for the same keys, taken from the key file just written.
    const again = await request(['--out', `${prefix}-2`, '--identity-key', carol.keyFile]);
    assert.equal(again.code, 0, again.err + again.out);
    await assert.rejects(stat(`${prefix}-2.key`), { code: 'ENOENT' });
    const renewed = await statusWith({ ...carol, chainFile: `${prefix}-2.chain.pem` });
    assert.equal(renewed['node'], 'node-1');
  });

  it('a client-profile certificate naming the validator role is refused', async () => {
    const mallory = await issueClient('mallory', `spiffe://${target.chainId}/validator/mallory`);
    await assert.rejects(statusWith(mallory), refusedAs('wrong_key_usage'));
  });

  it('a client-profile certificate reads status; its revocation closes its open session and refuses new ones', async () => {
    const alice = await issueClient('alice', `spiffe://${target.chainId}/client/alice`);
    const status = await statusWith(alice);
    assert.equal(status['node'], 'node-1');
    assert.ok(Number(status['committedHeight']) >= 1);
    // A session alice holds open across the revocation.
    const open = await endpointAs(alice);
    await withDeadline(
      createNodeRpcClient({ endpoint: open.endpoint, peer: 'node-1' }).status(),
      30_000,
      'status on the session kept open',
    );
    const session = open.endpoint.pool.current('node-1');
    assert.ok(session !== undefined, 'the pool holds the session to node-1');

    const revoked = await withDeadline(
      runCli([
        'cert',
        'revoke',
        alice.certificateFile,
        '--reason',
        'keyCompromise',
        '--cluster',
        dir,
      ]),
      60_000,
      'cert revoke',
    );
    assert.equal(revoked.code, 0, revoked.err + revoked.out);
    const height = Number(/at height (\d+)/.exec(revoked.out)?.[1]);
    assert.ok(height >= 1, revoked.out);
    await waitForCondition(
      node.driver,
      'commit',
      () => node.driver.status().committedHeight >= height,
      `node-1 commits the revocation at height ${height}`,
      30_000,
    );
    // node-1 closes the open session at the commit (src/stoq/endpoint.ts recheckRevocation).
    await withDeadline(session.connection.closed, 30_000, 'node-1 closes the revoked session');
    await open.close();
    await assert.rejects(statusWith(alice), refusedAs('revoked'));
    // The operator's genesis certificate (from node-1's intermediate) is unaffected.
    const after = await operator.client('node-1').status();
    assert.ok(Number(after['committedHeight']) >= height);
  });
});

describe('combineRevocationChecks', () => {
  const query = {} as RevocationQuery;
  const check = (answer: RevocationAnswer) => () => answer;

  it('is revoked if either check says so, with the reason given, and good only if both are', async () => {
    const byCa = { status: 'revoked', reason: 'keyCompromise' } as const;
    assert.equal(await combineRevocationChecks(check('good'), check('good'))(query), 'good');
    assert.equal(await combineRevocationChecks(check('revoked'), check('good'))(query), 'revoked');
    assert.deepEqual(await combineRevocationChecks(check('good'), check(byCa))(query), byCa);
    assert.equal(await combineRevocationChecks(check('unknown'), check('good'))(query), 'unknown');
    assert.equal(await combineRevocationChecks(check('good'), check('unknown'))(query), 'unknown');
  });
});
