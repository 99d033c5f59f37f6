import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { toBase64, toHex } from '../../src/crypto/bytes.js';
import { derToPem, parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import { issueGenesisCertificate } from '../../src/node/ca-genesis.js';
import {
  RenewalSender,
  renewedLogMessage,
  startCertRenewal,
  type CertRenewalOptions,
  type RenewedCertificate,
} from '../../src/node/cert-renewal.js';
import { generateNodeIdentity } from '../../src/node/dev-ca.js';
import { decodeCaBody } from '../../src/trustchain/ca-module/index.js';
import { BLOCK_TIME, CLUSTER } from '../trustchain/ca/fixtures.js';
import {
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
} from '../trustchain/ca-module/fixture.js';
import { caNodeRenewalIo, capturingLogger } from './cert-renewal-fixture.js';

/**
 * Two renewals of one node (cert-renewal.ts): the identity certificate and the ACME HTTPS one,
 * both genesis certificates for the identity key issued together, so due at the same block.
 * They share one `RenewalSender` (one transaction of the key at a time, each with the committed
 * sequence) and one registry (a `certificate` label per instance); each installs its own chain.
 */

describe('identity and acme-https renewals side by side', () => {
  let fixture: CaFixture;
  let dir: string;

  before(async () => {
    fixture = await createCaFixture({ rateLimit: { max: 10, windowSeconds: 3600 } });
    dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-cert-renewal-shared-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('one sender submits them one after the other; metrics and chains stay apart', async () => {
    const identity = await generateNodeIdentity(fixture.ca.falcon);
    const stranger = await generateNodeIdentity(fixture.ca.falcon);
    const validator = fixture.ca.validators['val-a']!;
    const intermediate = validator.issuer.certificate;
    const issue = (keys: typeof identity, names: { ipAddresses?: string[]; dnsNames?: string[] }) =>
      issueGenesisCertificate({
        issuer: { certificate: intermediate, privateKey: validator.keys.ecdsa.privateKey },
        chainId: CLUSTER,
        role: 'validator',
        name: 'val-a',
        keys,
        validityDays: 60,
        now: new Date(BLOCK_TIME),
        ...names,
      })[0]!;
    const certificates: Record<RenewedCertificate, Uint8Array> = {
      identity: issue(identity, { ipAddresses: ['127.0.0.1'] }),
      'acme-https': issue(identity, { dnsNames: ['acme.example.com'] }),
    };
    const foreign = issue(stranger, { dnsNames: ['other.example.com'] });
    const withGenesis = await createCaFixture(
      {
        genesisCertificates: [certificates.identity, certificates['acme-https'], foreign].map(
          (der) => ({
            issuer: 'val-a',
            account: toHex(fixture.operator.publicKey),
            certificate: toBase64(der),
          }),
        ),
      },
      fixture.ca,
    );
    const node = await withGenesis.openCaNode();
    const height = (): number => node.node.store.blocks.latestHeight() ?? 0;
    const clock = new Date(parseCertificate(certificates.identity).notBefore.getTime() + 60_000);
    const { pending, io } = caNodeRenewalIo(node);
    const common = {
      ...io,
      renewAt: 0,
      ca: withGenesis.config,
      privateKey: identity.ed25519.privateKey,
      falconSecretKey: identity.falcon.secretKey,
      falcon: fixture.ca.falcon,
      now: () => clock,
    } satisfies Partial<CertRenewalOptions>;
    const sender = new RenewalSender(common);
    const registry = new Registry();
    const { lines, logger } = capturingLogger('info');
    const chains: Record<RenewedCertificate, Uint8Array[][]> = { identity: [], 'acme-https': [] };
    const start = async (certificate: RenewedCertificate, der: Uint8Array) => {
      const file = path.join(dir, `${certificate}.pem`);
      await writeFile(file, derToPem(der) + derToPem(intermediate));
      return startCertRenewal({
        ...common,
        certificate,
        certificateFile: file,
        sender,
        replaceChain: (chain) => void chains[certificate].push([...chain]),
        registry,
        logger,
      });
    };
    const renewals = [
      await start('identity', certificates.identity),
      await start('acme-https', certificates['acme-https']),
    ];
    // A file certifying another key is not followed (and registers nothing twice).
    assert.equal(await start('acme-https', foreign), null);
    assert.ok(
      lines.some(
        (line) =>
          line.msg ===
            "acme-https certificate does not certify the node's identity key: not renewed automatically" &&
          line.certificate === 'acme-https',
      ),
      JSON.stringify(lines),
    );
    const step = async () => {
      for (const renewal of renewals) renewal!.committed(height());
      for (const renewal of renewals) await renewal!.idle();
    };
    try {
      // Height 1 holds the genesis certificates: both are due, one transaction is submitted.
      node.block([]);
      await step();
      assert.equal(pending.size, 1, JSON.stringify(lines));
      const first = [...pending.values()][0]!;
      pending.clear();
      node.block([first]);
      const firstHeight = height();
      await step();
      // Once the first left the mempool, the second goes, with the next sequence.
      assert.equal(pending.size, 1, JSON.stringify(lines));
      const second = [...pending.values()][0]!;
      pending.clear();
      assert.equal(decodeTransaction(second).sequence, decodeTransaction(first).sequence + 1);
      const serials = [first, second].map((tx) => {
        const body = decodeCaBody(decodeTransaction(tx).body);
        assert.ok(body.op === 'renew');
        return toHex(body.serial);
      });
      assert.deepEqual(
        new Set(serials),
        new Set(
          Object.values(certificates).map((der) =>
            parseCertificate(der).serialNumber.toLowerCase(),
          ),
        ),
      );
      const firstPublished = await publication(withGenesis, node, firstHeight, 'val-a');
      const committed = node.block([publishTx(withGenesis, 'val-a', firstPublished.tx), second]);
      assert.ok(
        committed.txResults.every((result) => result.code === 0),
        JSON.stringify(committed.txResults),
      );
      const secondHeight = height();
      await step();
      const secondPublished = await publication(withGenesis, node, secondHeight, 'val-a');
      node.block([publishTx(withGenesis, 'val-a', secondPublished.tx)]);
      await step();

      assert.ok(!lines.some((line) => line.level === 'warn' || line.level === 'error'));
      const counter = await registry
        .getSingleMetric('hypermesh_identity_certificate_renewals_total')!
        .get();
      const expiry = await registry
        .getSingleMetric('hypermesh_identity_certificate_expiry_timestamp_seconds')!
        .get();
      for (const certificate of ['identity', 'acme-https'] as const) {
        const renewed = lines.find((line) => line.msg === renewedLogMessage(certificate));
        assert.ok(renewed !== undefined, JSON.stringify(lines));
        assert.equal(renewed.certificate, certificate);
        assert.equal(renewed.oldSerial, parseCertificate(certificates[certificate]).serialNumber);
        const written = pemToDerList(await readFile(path.join(dir, `${certificate}.pem`), 'utf8'));
        const fresh = parseCertificate(written[0]!);
        assert.equal(fresh.serialNumber, renewed.newSerial);
        assert.deepEqual(
          fresh.dnsNames,
          parseCertificate(certificates[certificate]).dnsNames,
          'its own names',
        );
        assert.deepEqual(chains[certificate], [written], 'its own server gets its own chain');
        const count = (result: string) =>
          counter.values.find(
            (value) => value.labels.certificate === certificate && value.labels.result === result,
          )?.value;
        assert.equal(count('renewed'), 1);
        assert.equal(count('refused'), 0);
        assert.equal(
          expiry.values.find((value) => value.labels.certificate === certificate)?.value,
          fresh.notAfter.getTime() / 1000,
        );
      }
    } finally {
      for (const renewal of renewals) await renewal?.close();
      await node.close();
    }
  });
});
