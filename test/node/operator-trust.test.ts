import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validatorAddress } from '../../src/consensus/validator-set.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { defaultFalcon } from '../../src/crypto/falcon.js';
import { readKeyFile, writeKeyFile, type NodeIdentityKeys } from '../../src/crypto/keyfile.js';
import { derToPem, pemToDerList } from '../../src/crypto/x509.js';
import { CA_FILES, issueGenesisCertificate } from '../../src/node/ca-genesis.js';
import { NOT_ISSUED_REASON } from '../../src/node/ca-service.js';
import {
  genesisTrustBundle,
  requestCertificate,
  stoqIdentityRequestParts,
} from '../../src/node/cert-tools.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import type { NodeConfig } from '../../src/node/config.js';
import { generateNodeIdentity } from '../../src/node/dev-ca.js';
import { operatorKey } from '../../src/node/kv-tools.js';
import { createLogger } from '../../src/node/log.js';
import { nodeService } from '../../src/node/node-service.js';
import {
  openOperatorParts,
  openOperatorSession,
  type ClusterTarget,
} from '../../src/node/operator.js';
import { buildStoqParts, type StoqParts } from '../../src/node/stoq-node.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import type { CertificateRole } from '../../src/crypto/x509.js';
import { StoqError, StoqErrorCode, type SocketAddress } from '../../src/stoq/index.js';
import { certificateChainPem } from '../../src/trustchain/ca-module/index.js';
import { runCli } from '../helpers/cli.js';
import { startOneNodeCluster } from '../helpers/one-node-cluster.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

/**
 * The operator tools hold a node to what they can prove of it (operator-trust.ts,
 * docs/stoq-auth.md "Operator clients"), in a TrustChain cluster: a certificate that chains to
 * the root and names the node is not enough. Its key must be the genesis key of that validator
 * (or the one the cluster directory records for a node added later), and the leaf must be the
 * one committed state holds, not revoked there. Every validator holds an intermediate key and
 * can sign any leaf; here node-1's intermediate signs the forgeries.
 */
describe('operator sessions: node keys pinned, leaves proven against committed state', () => {
  let root: string;
  let dir: string;
  let node: ValidatorNode;
  let target: ClusterTarget;
  let intermediate: { certificate: Uint8Array; privateKey: KeyObject };
  const falcon = defaultFalcon();
  const servers: StoqParts[] = [];
  const logger = createLogger({ node: 'test' }, () => undefined, 'error');

  before(async () => {
    ({ root, dir, node, target } = await startOneNodeCluster('hypermesh-operator-trust-'));
    const chain = pemToDerList(await readFile(path.join(dir, 'node-1', 'node-1.pem'), 'utf8'));
    const key = await readKeyFile(path.join(dir, 'node-1', CA_FILES.intermediateKey), {
      kind: 'p256',
    });
    intermediate = { certificate: chain[1]!, privateKey: key.keys.privateKey };
  });

  after(async () => {
    await Promise.all(servers.map((parts) => parts.close()));
    await node?.stop();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  /** Writes `keys` and `chainPem` (leaf first) as the files a STOQ identity reads. */
  const writeIdentity = async (
    file: string,
    keys: NodeIdentityKeys,
    chainPem: string,
  ): Promise<{ keyFile: string; chainFile: string }> => {
    const keyFile = path.join(root, `${file}.key`);
    const chainFile = path.join(root, `${file}.chain.pem`);
    await writeKeyFile(keyFile, { kind: 'node-identity', keys });
    await writeFile(chainFile, chainPem);
    return { keyFile, chainFile };
  };

  /** A leaf for `role`/`name` that node-1's intermediate signs outside consensus. */
  const forge = (file: string, role: CertificateRole, name: string, keys: NodeIdentityKeys) =>
    writeIdentity(
      file,
      keys,
      issueGenesisCertificate({
        issuer: intermediate,
        chainId: target.chainId,
        role,
        name,
        keys,
        validityDays: 1,
        now: new Date(),
      })
        .map((der) => derToPem(der))
        .join(''),
    );

  /** A STOQ server as `name` with that identity on a fresh loopback port. */
  const serve = async (
    name: string,
    identity: { keyFile: string; chainFile: string },
  ): Promise<SocketAddress> => {
    const config: NodeConfig = {
      cluster: target.chainId,
      name,
      transport: 'quic',
      listen: { host: '127.0.0.1', port: 0 },
      auth: { mode: 'delegated', delegationTtlSeconds: 3600 },
      identity: { keyFile: identity.keyFile, certificateFile: identity.chainFile },
      trust: { rootsFile: target.trustRootsFile },
      peers: {},
      metrics: null,
    };
    const parts = await buildStoqParts(config, logger);
    servers.push(parts);
    return parts.endpoint.listen(config.listen);
  };

  /** The target with node `name` at `address`, recorded with `id` when given. */
  const targetWith = (name: string, address: SocketAddress, id?: string): ClusterTarget => {
    const listed = target.nodes.some((entry) => entry.name === name);
    const entry = { name, id: id ?? '', stoq: address, metrics: null };
    return {
      ...target,
      nodes: listed
        ? target.nodes.map((known) =>
            known.name === name ? { ...known, stoq: address, ...(id ? { id } : {}) } : known,
          )
        : [...target.nodes, entry],
    };
  };

  /** `ping` of node `name` through a fresh operator endpoint for `at`. */
  const pingAs = async (at: ClusterTarget, name: string) => {
    const opened = await openOperatorParts(at);
    try {
      return await withDeadline(
        opened.parts.endpoint.client(nodeService, name).call('ping', { sentAt: 1 }),
        30_000,
        `ping ${name}`,
      );
    } finally {
      await opened.close();
    }
  };

  const refused =
    (reason: string, message: RegExp, revocationReason?: string) =>
    (error: unknown): boolean => {
      assert.ok(error instanceof StoqError, String(error));
      assert.equal(error.code, StoqErrorCode.UNAUTHENTICATED);
      assert.equal(error.detail.reason, reason, error.message);
      assert.match(error.message, message);
      if (revocationReason !== undefined) {
        assert.equal(error.detail.revocationReason, revocationReason, error.message);
      }
      return true;
    };

  it('a chain to the root naming node-1 with another key is refused by status(); node-1 itself is accepted', async () => {
    const impostor = await serve(
      'node-1',
      await forge('impostor', 'validator', 'node-1', await generateNodeIdentity(falcon)),
    );
    const session = await openOperatorSession(targetWith('node-1', impostor));
    try {
      await assert.rejects(
        withDeadline(session.client('node-1').status(), 30_000, 'status of the impostor'),
        refused(
          'wrong_key_usage',
          /node "node-1".*genesis validator "node-1" has key [0-9a-f]{64}/,
        ),
      );
    } finally {
      await session.close();
    }

    const genuine = await openOperatorSession(target);
    try {
      const status = await withDeadline(
        genuine.client('node-1').status(),
        30_000,
        'status of node-1',
      );
      assert.equal(status['node'], 'node-1');
    } finally {
      await genuine.close();
    }
  });

  it('a node certificate consensus issued is accepted until revoked; one it never issued, or for another key, is refused', async () => {
    const keys = await generateNodeIdentity(falcon);
    const id = validatorAddress(ed25519RawPublicKey(keys.ed25519.publicKey));
    const genesis = await readGenesisFile(target.genesisFile);
    const uri = `spiffe://${target.chainId}/node/node-x`;
    const operator = await openOperatorSession(target);
    let leafFile: string;
    let issued: { keyFile: string; chainFile: string };
    try {
      const parts = await stoqIdentityRequestParts(keys, falcon);
      const published = await requestCertificate({
        client: operator.client('node-1'),
        genesis,
        privateKey: await operatorKey(target.operator.keyFile),
        request: {
          profile: 'node',
          csr: parts.csr,
          dnsNames: [],
          ipAddresses: [],
          uris: [uri],
          falcon: parts.falcon,
        },
        timeoutMs: 60_000,
      });
      issued = await writeIdentity(
        'node-x',
        keys,
        certificateChainPem(genesisTrustBundle(genesis), published.certificate, published.issuer),
      );
      leafFile = path.join(root, 'node-x.leaf.pem');
      await writeFile(leafFile, derToPem(published.certificate));
    } finally {
      await operator.close();
    }

    const genuine = await serve('node-x', issued);
    const pong = await pingAs(targetWith('node-x', genuine, id), 'node-x');
    assert.equal(pong.node, 'node-x');

    // The same key and name, signed by node-1's intermediate outside consensus.
    const unissued = await serve('node-x', await forge('node-x-twin', 'node', 'node-x', keys));
    await assert.rejects(
      pingAs(targetWith('node-x', unissued, id), 'node-x'),
      refused('revoked', new RegExp(NOT_ISSUED_REASON), NOT_ISSUED_REASON),
    );
    // Another key under node-x's name: the directory records node-x's key address.
    const otherKey = await serve(
      'node-x',
      await forge('node-x-other', 'node', 'node-x', await generateNodeIdentity(falcon)),
    );
    await assert.rejects(
      pingAs(targetWith('node-x', otherKey, id), 'node-x'),
      refused('wrong_key_usage', new RegExp(`records node "node-x" with address ${id}`)),
    );
    // A node the cluster directory does not list has no key to be held to.
    await assert.rejects(
      pingAs(targetWith('node-1', genuine), 'node-1'),
      refused('wrong_key_usage', /node "node-x" .* neither a genesis validator nor a node/),
    );

    const revoked = await withDeadline(
      runCli(['cert', 'revoke', leafFile, '--reason', 'keyCompromise', '--cluster', dir]),
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
    // The holder of node-x's key still presents its certificate: refused as revoked.
    await assert.rejects(
      pingAs(targetWith('node-x', genuine, id), 'node-x'),
      refused('revoked', /keyCompromise/, 'keyCompromise'),
    );
  });
});
