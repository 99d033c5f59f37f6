import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as acme from 'acme-client';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import { parseGenesisJson } from '../../src/consensus/genesis.js';
import { toHex } from '../../src/crypto/bytes.js';
import { parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { ACME_FILES } from '../../src/node/acme-cluster.js';
import { CA_FILES } from '../../src/node/ca-genesis.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { readWalletKey } from '../../src/node/wallet.js';
import { CA_MODULE_NAME, decodeCaBody } from '../../src/trustchain/ca-module/index.js';
import {
  dcvRequiredCount,
  decodeDcvAttestation,
  verifyDcvAttestation,
} from '../../src/trustchain/ca-module/dcv.js';
import {
  EXTERNAL_ZONE,
  a,
  caa,
  startExternalDns,
  type ExternalDns,
} from '../faces/acme/external-dns.js';
import { Http01Responder } from '../faces/acme/fixtures.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { startClusterNodes } from '../helpers/nodes.js';
import { assertOpensslVerifies, writeLeafPem } from '../helpers/openssl.js';
import { withDeadline } from '../helpers/wait.js';

const skip = spawnSync('openssl', ['version']).status === 0 ? false : 'openssl is not installed';

/**
 * External domain names through the node's ACME server (docs/acme.md, "External names"): a
 * two-validator cluster from `cluster init --acme-external-dns`, each node's `acme.resolver`
 * pointing at an authoritative DNS server for `example.` on loopback (the "internet"). Both
 * nodes reach the http-01 responder, so both perspectives corroborate; the committed request
 * carries their attestations. A cluster without the flag refuses such names
 * (acme-node.test.ts, "names outside the grant are rejectedIdentifier").
 */
describe('ACME in the node: external names (--acme-external-dns)', { skip }, () => {
  let root: string;
  let dir: string;
  let world: ExternalDns;
  let responder: Http01Responder;
  const nodes: ValidatorNode[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-acme-external-'));
    dir = path.join(root, 'cluster');
    const init = await runCli([...clusterInitArgs(dir, 2), '--no-caesar', '--acme-external-dns']);
    assert.equal(init.code, 0, init.err);
    world = await startExternalDns([
      a(`shop.${EXTERNAL_ZONE}`),
      a(`forbidden.${EXTERNAL_ZONE}`),
      caa(`forbidden.${EXTERNAL_ZONE}`, 'other-ca.example'),
    ]);
    responder = await Http01Responder.start();
    for (const name of ['node-1', 'node-2']) {
      // acme.resolver and http01Port through the configuration file (schema-checked), and the
      // test-clusters-only allowNonPublicAddresses: this "internet" answers with 127.0.0.1.
      const file = path.join(dir, name, 'config.json');
      const json = JSON.parse(await readFile(file, 'utf8')) as { acme: Record<string, unknown> };
      json.acme = {
        ...json.acme,
        http01Port: responder.port,
        resolver: world.resolver,
        allowNonPublicAddresses: true,
      };
      await writeFile(file, JSON.stringify(json));
    }
    const { resolver } = world;
    await startClusterNodes(nodes, dir, ['node-1', 'node-2'], {
      configure: (_name, config) => {
        assert.equal(config.acme?.resolver, resolver);
        assert.equal(config.acme?.allowNonPublicAddresses, true);
        return config;
      },
    });
  });

  after(async () => {
    for (const node of nodes) await node.stop();
    await responder?.close();
    await world?.close();
    await rm(root, { recursive: true, force: true });
  });

  const rootPem = (): Promise<string> =>
    readFile(path.join(dir, CA_FILES.dir, CA_FILES.root), 'utf8');

  async function client(): Promise<acme.Client> {
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: await rootPem() });
    return new acme.Client({
      directoryUrl: nodes[0]!.acme as string,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffAttempts: 60,
      backoffMin: 250,
      backoffMax: 1000,
    });
  }

  /** acme-client over http-01 for `name`, the responder answering. */
  async function order(name: string): Promise<string> {
    const [, csr] = await acme.crypto.createCsr(
      { altNames: [name] },
      await acme.crypto.createPrivateEcdsaKey(),
    );
    return withDeadline(
      (await client()).auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        // acme-client's own check would ask the system resolver, which knows no `example.`.
        skipChallengeVerification: true,
        challengeCreateFn: (_authz, challenge, keyAuthorization) => {
          responder.tokens.set(challenge.token, keyAuthorization);
          return Promise.resolve();
        },
        challengeRemoveFn: () => Promise.resolve(),
      }),
      120_000,
      `acme-client orders ${name}`,
    );
  }

  it('cluster init: the ACME grants carry externalDns', async () => {
    const genesis = parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
    const grants = (genesis.app?.ca as { grants: { account: string; externalDns?: boolean }[] })
      .grants;
    for (const name of ['node-1', 'node-2']) {
      const account = await readWalletKey(path.join(dir, name, ACME_FILES.accountKey));
      const grant = grants.find((candidate) => candidate.account === toHex(account.publicKey));
      assert.equal(grant?.externalDns, true, name);
    }
  });

  it('shop.example over http-01: issued through consensus with a quorum of attestations; openssl verify passes', async () => {
    const hosts = responder.hosts.length;
    const chainPem = await order(`shop.${EXTERNAL_ZONE}`);
    const leaf = pemToDerList(chainPem)[0]!;
    assert.deepEqual(parseCertificate(leaf).dnsNames, [`shop.${EXTERNAL_ZONE}`]);
    // node-1 validated, then both holders corroborated: each connected through the A record.
    const seen = responder.hosts.slice(hosts);
    assert.ok(seen.length >= 3, `${seen.length} http-01 requests`);
    for (const host of seen) assert.equal(host, `shop.${EXTERNAL_ZONE}:${responder.port}`);

    // The committed ca request carries ok attestations from a quorum of distinct holders.
    const node = nodes[0]!;
    const account = await readWalletKey(path.join(dir, 'node-1', ACME_FILES.accountKey));
    let validators: Set<string> | null = null;
    for (let height = node.driver.status().committedHeight; height >= 1; height -= 1) {
      for (const bytes of node.driver.committedBlock(height)?.block.transactions ?? []) {
        const envelope = decodeTransaction(bytes);
        if (envelope.module !== CA_MODULE_NAME) continue;
        const body = decodeCaBody(envelope.body);
        if (body.op !== 'request') continue;
        const attestations = (body.dcv ?? []).map(decodeDcvAttestation);
        if (!attestations.some((x) => x.body.identifier === `dns:shop.${EXTERNAL_ZONE}`)) continue;
        validators = new Set();
        for (const attestation of attestations) {
          assert.equal(verifyDcvAttestation(attestation), true);
          assert.equal(attestation.body.ok, true);
          assert.equal(toHex(attestation.body.account), toHex(account.publicKey));
          validators.add(toHex(attestation.body.validator));
        }
      }
      if (validators !== null) break;
    }
    assert.ok(validators !== null, 'the request is in a committed block');
    assert.ok(validators.size >= dcvRequiredCount(nodes.length), `${validators.size} attested`);

    const leafFile = path.join(root, 'shop.pem');
    await writeLeafPem(chainPem, leafFile);
    await assertOpensslVerifies(dir, leafFile);
  });

  it('a name whose CAA names another CA fails with the caa problem', async () => {
    await assert.rejects(
      order(`forbidden.${EXTERNAL_ZONE}`),
      /CAA records at forbidden\.example forbid issuance for forbidden\.example/,
    );
  });

  it('acme.resolver must be "ipv4:port" or "[ipv6]:port"', async () => {
    const file = path.join(root, 'bad-config.json');
    const json = JSON.parse(await readFile(path.join(dir, 'node-1', 'config.json'), 'utf8')) as {
      acme: Record<string, unknown>;
    };
    await writeFile(
      file,
      JSON.stringify({ ...json, acme: { ...json.acme, resolver: 'dns.example:53' } }),
    );
    await assert.rejects(
      loadValidatorNodeConfig(file, {}),
      /acme\.resolver.*"ipv4:port" or "\[ipv6\]:port"/s,
    );
  });

  it('cluster init refuses --acme-external-dns with --no-acme, --no-ca or --no-dns (exit 2, nothing written)', async () => {
    for (const flag of ['--no-acme', '--no-ca', '--no-dns']) {
      const out = path.join(root, `refused${flag}`);
      const refused = await runCli([...clusterInitArgs(out, 1), '--acme-external-dns', flag]);
      assert.equal(refused.code, 2, refused.out);
      assert.match(
        refused.err,
        new RegExp(`--acme-external-dns .*cannot be combined with ${flag}`),
      );
      await assert.rejects(access(out), { code: 'ENOENT' });
    }
  });
});
