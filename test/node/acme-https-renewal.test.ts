import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseGenesisJson } from '../../src/consensus/genesis.js';
import { bytesEqual, toHex } from '../../src/crypto/bytes.js';
import { readKeyFile } from '../../src/crypto/keyfile.js';
import { ACME_FILES } from '../../src/node/acme-cluster.js';
import { CA_FILES } from '../../src/node/ca-genesis.js';
import { RENEWED_LOG_MESSAGE, renewedLogMessage } from '../../src/node/cert-renewal.js';
import { CLUSTER_FILES } from '../../src/node/cluster-init.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { genesisApplication, type ValidatorNode } from '../../src/node/validator-node.js';
import { checkRequest, parseCertificateRequest } from '../../src/trustchain/ca/request.js';
import {
  genesisRenewalRequest,
  lacksIssuanceExtensions,
  requesterFor,
} from '../../src/trustchain/ca-module/index.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import {
  assertRenewedChain,
  httpsLeafSerial,
  leafOf,
  renewingConfig,
  startWatchedNode,
  stoqLeafFingerprint,
} from '../helpers/renewal.js';

/**
 * The node renews the ACME HTTPS face's own certificate (`cluster init`'s acme-https.pem) as it
 * renews its identity certificate (cert-renewal.ts, instance `acme-https`): through consensus,
 * written to `acme.certificateFile`, presented on new HTTPS handshakes, never handed to STOQ.
 * And the account `app.ca.genesisCertificates` names for acme-https.pem may have its later
 * renewals (the ordinary path: the committed request under that account's grant).
 */

/**
 * Whether the committed request of acme-https.pem's first renewal (the request built from the
 * genesis certificate) passes the policy for the account its genesis entry names: what its
 * second renewal is checked against.
 */
async function secondRenewalDecision(clusterDir: string) {
  const genesis = parseGenesisJson(
    await readFile(path.join(clusterDir, CLUSTER_FILES.genesis), 'utf8'),
  );
  const ca = genesisApplication(genesis).ca;
  assert.ok(ca !== undefined);
  const nodeDir = path.join(clusterDir, 'node-1');
  const leaf = await leafOf(path.join(nodeDir, ACME_FILES.certificate));
  const entry = ca.genesisCertificates.find((candidate) => bytesEqual(candidate.der, leaf.der));
  assert.ok(entry !== undefined, 'acme-https.pem is a genesis certificate');
  const config = await loadValidatorNodeConfig(path.join(nodeDir, 'config.json'), {});
  const identity = await readKeyFile(config.identity.keyFile, { kind: 'node-identity' });
  const request = parseCertificateRequest(
    await genesisRenewalRequest(leaf.der, {
      privateKey: identity.keys.ed25519.privateKey,
      falconSecretKey: identity.keys.falcon.secretKey,
    }),
  );
  assert.equal(request.profile, 'node');
  return {
    leaf,
    account: toHex(entry.account),
    grant: ca.grants.get(toHex(entry.account)),
    decision: checkRequest(request, ca.policy, requesterFor(ca, entry.account)),
  };
}

describe('ACME HTTPS certificate renewal', () => {
  let root: string;
  let clusterDir: string;
  const running: ValidatorNode[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-acme-https-renewal-'));
    clusterDir = path.join(root, 'cluster');
    const init = await runCli([...clusterInitArgs(clusterDir, 1), '--no-discovery', '--no-dns']);
    assert.equal(init.code, 0, init.err);
  });

  after(async () => {
    for (const node of running.reverse()) await node.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("acme-https.pem's later renewals are allowed by its genesis account's grant (IP listen host), checked before the node renews it", async () => {
    const { leaf, decision } = await secondRenewalDecision(clusterDir);
    assert.ok(leaf.ipAddresses.length === 1, 'cluster init names the IP listen address');
    assert.deepEqual(decision.ok, true, JSON.stringify(decision));
  });

  it('the node renews acme-https.pem and serves it over HTTPS; STOQ keeps the identity chain', async () => {
    const config = await renewingConfig(clusterDir, 'node-1');
    const acmeFile = config.acme?.certificateFile;
    assert.ok(acmeFile !== undefined, 'cluster init gives the ACME face its own certificate');
    assert.equal(path.basename(acmeFile), ACME_FILES.certificate);
    assert.notEqual(acmeFile, config.identity.certificateFile);
    const original = await leafOf(acmeFile);
    assert.equal(lacksIssuanceExtensions(original.der), true, 'a genesis bootstrap certificate');
    const mode = (await stat(acmeFile)).mode & 0o777;

    const watched = await startWatchedNode(config, running);
    const node = watched.node;
    const [acmeFields, identityFields] = await watched.within(
      Promise.all([
        watched.logged(renewedLogMessage('acme-https')),
        watched.logged(RENEWED_LOG_MESSAGE),
      ]),
      60_000,
      'the node renews both certificates',
    );
    watched.assertNotLogged('renewal failed', '"level":"error"');
    assert.equal(acmeFields.certificate, 'acme-https');
    assert.equal(acmeFields.oldSerial, original.serialNumber);
    assert.equal(acmeFields.file, acmeFile);

    // The file: an issued leaf for the same key and names, and its intermediate; mode kept.
    const leaf = await assertRenewedChain(acmeFile, original, {
      newSerial: acmeFields.newSerial,
      mode,
      clusterDir,
    });

    // A fresh HTTPS connection, trusting the cluster root, is served the renewed leaf.
    assert.ok(node.acme !== null);
    const root = await readFile(path.join(clusterDir, CA_FILES.dir, CA_FILES.root), 'utf8');
    assert.equal(await httpsLeafSerial(node.acme, root), leaf.serialNumber);

    // STOQ presents the renewed identity certificate, not the ACME one.
    const identityLeaf = await leafOf(config.identity.certificateFile);
    assert.equal(identityLeaf.serialNumber, identityFields.newSerial);
    const fingerprint = await stoqLeafFingerprint(clusterDir, node.stoq);
    assert.equal(fingerprint, identityLeaf.fingerprint);
    assert.notEqual(fingerprint, leaf.fingerprint);

    // One metric per name, a series per certificate.
    assert.ok(node.metricsUrl !== null);
    const metrics = await (await fetch(node.metricsUrl)).text();
    const sample = (name: string, ...labels: string[]): number | undefined => {
      const line = metrics
        .split('\n')
        .find((text) => text.startsWith(`${name}{`) && labels.every((l) => text.includes(l)));
      return line === undefined ? undefined : Number(line.split(' ').at(-1));
    };
    const renewals = 'hypermesh_identity_certificate_renewals_total';
    for (const certificate of ['identity', 'acme-https']) {
      const label = `certificate="${certificate}"`;
      assert.equal(sample(renewals, label, 'result="renewed"'), 1, metrics);
      assert.equal(sample(renewals, label, 'result="refused"'), 0, metrics);
    }
    const expiry = 'hypermesh_identity_certificate_expiry_timestamp_seconds';
    assert.equal(
      sample(expiry, 'certificate="acme-https"'),
      leaf.notAfter.getTime() / 1000,
      metrics,
    );
    assert.equal(
      sample(expiry, 'certificate="identity"'),
      identityLeaf.notAfter.getTime() / 1000,
      metrics,
    );
  });

  it('and with a DNS name as listen host, the grant covers exactly that host', async () => {
    const dir = path.join(root, 'dns-host');
    const init = await runCli([
      ...clusterInitArgs(dir, 1),
      '--no-discovery',
      '--no-dns',
      '--host',
      'localhost',
    ]);
    assert.equal(init.code, 0, init.err);
    const { leaf, grant, decision } = await secondRenewalDecision(dir);
    assert.deepEqual(leaf.dnsNames, ['localhost']);
    assert.deepEqual(decision.ok, true, JSON.stringify(decision));
    assert.ok(grant !== undefined);
    assert.deepEqual(grant.dnsZones, ['localhost']);
  });
});
