import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { derToPem } from '../../src/crypto/x509.js';
import { CA_FILES } from '../../src/node/ca-genesis.js';
import { requestCertificate } from '../../src/node/cert-tools.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import {
  loadClusterTarget,
  openOperatorSession,
  type OperatorSession,
} from '../../src/node/operator.js';
import { submitTransaction } from '../../src/node/tx-submit.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import { CA_MODULE_NAME } from '../../src/trustchain/ca-module/index.js';
import { DNS_ZONES_MODULE_NAME, dnsNameRegister } from '../../src/trustchain/dns-zones/index.js';
import { generateKey } from '../trustchain/ca/fixtures.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { startClusterNodes } from '../helpers/nodes.js';
import { withDeadline } from '../helpers/wait.js';

/**
 * End to end on a one-validator `cluster init` cluster in this process: an account with no CA
 * grant registers a name with the dns module and gets a certificate for it from the ca module
 * (docs/ca.md, "Who may request what"), which `cert verify` accepts; a name it does not own is
 * refused.
 */
describe('a name owned in the dns module gets a certificate', () => {
  let root: string;
  let dir: string;
  const nodes: ValidatorNode[] = [];
  let session: OperatorSession | undefined;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ca-dns-'));
    dir = path.join(root, 'cluster');
    const init = await runCli([...clusterInitArgs(dir, 1), '--no-caesar']);
    assert.equal(init.code, 0, init.err);
    await startClusterNodes(nodes, dir, ['node-1']);
    session = await openOperatorSession(await loadClusterTarget(dir));
  });

  after(async () => {
    await session?.close();
    for (const node of nodes) await node.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('register with the dns client, request with the CA client, cert verify OK', async () => {
    assert.ok(session !== undefined);
    const target = await loadClusterTarget(dir);
    const genesis = await readGenesisFile(target.genesisFile);
    assert.ok(genesis.app?.[DNS_ZONES_MODULE_NAME] !== undefined, 'cluster init has app.dns');
    assert.ok(genesis.app?.[CA_MODULE_NAME] !== undefined, 'cluster init has app.ca');
    const client = session.client('node-1');
    const { privateKey } = generateEd25519KeyPair();

    const registered = await withDeadline(
      submitTransaction({
        client,
        genesis,
        privateKey,
        module: DNS_ZONES_MODULE_NAME,
        body: dnsNameRegister('owned.hypermesh.'),
        wait: true,
        timeoutMs: 30_000,
      }),
      40_000,
      'name-register',
    );
    assert.ok(registered.admitted, JSON.stringify(registered));
    assert.equal(registered.status.status, 'committed', JSON.stringify(registered));

    const request = (name: string) =>
      requestCertificate({
        client,
        genesis,
        privateKey,
        request: {
          profile: 'service',
          csr: createCsr({ privateKey: generateKey('p256') }),
          dnsNames: [name],
        },
        timeoutMs: 60_000,
      });
    await assert.rejects(request('other.hypermesh'), /CA_POLICY_REFUSED.*name_not_allowed/s);
    const published = await withDeadline(request('owned.hypermesh'), 70_000, 'cert request');
    const file = path.join(root, 'owned.pem');
    await writeFile(file, derToPem(published.certificate));
    const verified = await runCli([
      'cert',
      'verify',
      file,
      '--bundle',
      path.join(dir, CA_FILES.dir, CA_FILES.bundle),
      '--purpose',
      'serverAuth',
    ]);
    assert.equal(verified.code, 0, verified.out + verified.err);
    assert.match(verified.out, /^valid: issued by node-1/);
  });
});
