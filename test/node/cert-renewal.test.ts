import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { toBase64, toHex } from '../../src/crypto/bytes.js';
import { derToPem, parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { issueGenesisCertificate } from '../../src/node/ca-genesis.js';
import {
  DEFAULT_RENEW_AT,
  RENEWED_LOG_MESSAGE,
  startCertRenewal,
  type CertRenewalOptions,
} from '../../src/node/cert-renewal.js';
import { generateNodeIdentity } from '../../src/node/dev-ca.js';
import { decodeCaBody, lacksIssuanceExtensions } from '../../src/trustchain/ca-module/index.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import { BLOCK_TIME, CLUSTER } from '../trustchain/ca/fixtures.js';
import { caNodeRenewalIo, capturingLogger, issuedChainFile } from './cert-renewal-fixture.js';
import {
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from '../trustchain/ca-module/fixture.js';

/**
 * The node's renewal of its own certificate (src/node/cert-renewal.ts) against a `ca` module
 * driven block by block: when it is due, a refused attempt and its backoff, the commit and the
 * publication followed to the file and the STOQ chain; a genesis certificate renewed the same way.
 */

const HOUR = 3_600_000;

describe('identity certificate renewal (cert-renewal.ts)', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let dir: string;

  before(async () => {
    fixture = await createCaFixture({ rateLimit: { max: 10, windowSeconds: 3600 } });
    node = await fixture.openCaNode();
    dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-cert-renewal-unit-'));
  });

  after(async () => {
    await node?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const latest = (): number => node.node.store.blocks.latestHeight() as number;

  it('renews when due, retries a refused attempt after its backoff, installs the published renewal', async () => {
    const file = path.join(dir, 'self.pem');
    const { key, serial, intermediate, leaf } = await issuedChainFile(fixture, node, file, 'self');
    await chmod(file, 0o640);

    let clock = new Date(leaf.notBefore.getTime() + HOUR / 4);
    const { pending, io } = caNodeRenewalIo(node, {
      refuseFirst: { ok: false, code: 'CA_RATE_LIMITED', message: 'not now' },
    });
    const chains: Uint8Array[][] = [];
    const { lines, logger } = capturingLogger();
    const registry = new Registry();
    const options: CertRenewalOptions = {
      ...io,
      certificateFile: file,
      renewAt: 0.5,
      ca: fixture.config,
      privateKey: key.privateKey,
      replaceChain: (chain) => void chains.push([...chain]),
      registry,
      logger,
      falcon: fixture.ca.falcon,
      now: () => clock,
    };
    const renewal = await startCertRenewal(options);
    assert.ok(renewal !== null);
    const step = async (height = latest()) => {
      renewal.committed(height);
      await renewal.idle();
    };
    try {
      const metric = await registry
        .getSingleMetric('hypermesh_identity_certificate_expiry_timestamp_seconds')!
        .get();
      assert.equal(metric.values[0]?.value, leaf.notAfter.getTime() / 1000);

      // A quarter of the validity: not due, nothing is submitted.
      await step();
      assert.equal(pending.size, 0);
      assert.equal(lines.length, 0);

      // Past half: due. The first submission is refused: counted, logged, backed off 8 blocks.
      clock = new Date(leaf.notBefore.getTime() + (HOUR * 3) / 5);
      const refusedAt = latest();
      await step();
      const failed = lines.find((line) => line.msg === 'identity certificate renewal failed');
      assert.ok(failed !== undefined, JSON.stringify(lines));
      assert.equal(failed.result, 'refused');
      assert.equal(failed.retryInBlocks, 8);
      await step(refusedAt + 7);
      assert.equal(pending.size, 0, 'still backing off');
      await step(refusedAt + 8);
      assert.equal(pending.size, 1);
      const [tx] = [...pending.values()];
      const body = decodeCaBody(decodeTransaction(tx!).body);
      assert.ok(body.op === 'renew');
      assert.deepEqual(body.serial, serial);
      assert.equal(body.lifetimeSeconds, 3600, 'the original lifetime');

      // Committed (by the node's own key), then published: the file and STOQ get the new chain.
      const committed = node.block([tx!]);
      pending.clear();
      assert.equal(committed.txResults[0]!.code, 0, committed.txResults[0]!.log);
      await step();
      assert.equal(chains.length, 0, 'not published yet');
      const { tx: publish } = await publication(fixture, node, latest(), 'val-a');
      node.block([publishTx(fixture, 'val-a', publish)]);
      await step();
      const renewed = lines.find((line) => line.msg === RENEWED_LOG_MESSAGE);
      assert.ok(renewed !== undefined, JSON.stringify(lines));
      assert.equal(renewed.oldSerial, leaf.serialNumber);
      const written = pemToDerList(await readFile(file, 'utf8'));
      assert.equal(written.length, 2);
      const fresh = parseCertificate(written[0]!);
      assert.equal(fresh.serialNumber, renewed.newSerial);
      assert.notEqual(fresh.serialNumber, leaf.serialNumber);
      assert.deepEqual(written[1], intermediate);
      assert.ok(fresh.publicKey.equals(leaf.publicKey));
      assert.equal((await stat(file)).mode & 0o777, 0o640);
      assert.equal(chains.length, 1);
      assert.deepEqual(chains[0], written);
      const counter = await registry
        .getSingleMetric('hypermesh_identity_certificate_renewals_total')!
        .get();
      const count = (result: string) =>
        counter.values.find((value) => value.labels.result === result)?.value;
      assert.equal(count('renewed'), 1);
      assert.equal(count('refused'), 1);

      // The new certificate is what is followed now: a minute into it, nothing is due.
      clock = new Date(fresh.notBefore.getTime() + 60_000);
      await step(latest() + 1);
      assert.equal(pending.size, 0);
    } finally {
      await renewal.close();
    }
  });

  it('a genesis bootstrap certificate is renewed like an issued one: the renew carries its request', async () => {
    const identity = await generateNodeIdentity(fixture.ca.falcon);
    const validator = fixture.ca.validators['val-a']!;
    const intermediate = validator.issuer.certificate;
    const der = issueGenesisCertificate({
      issuer: { certificate: intermediate, privateKey: validator.keys.ecdsa.privateKey },
      chainId: CLUSTER,
      role: 'validator',
      name: 'val-a',
      keys: identity,
      validityDays: 60,
      now: new Date(BLOCK_TIME),
      ipAddresses: ['127.0.0.1'],
    })[0]!;
    const withGenesis = await createCaFixture(
      {
        genesisCertificates: [
          {
            issuer: 'val-a',
            account: toHex(fixture.operator.publicKey),
            certificate: toBase64(der),
          },
        ],
      },
      fixture.ca,
    );
    const genesisNode = await withGenesis.openCaNode();
    const leaf = parseCertificate(der);
    const serial = Uint8Array.from(Buffer.from(leaf.serialNumber, 'hex'));
    const clock = new Date(leaf.notBefore.getTime() + HOUR);
    const height = (): number => genesisNode.node.store.blocks.latestHeight() ?? 0;
    const start = async (file: string, falconSecretKey?: Uint8Array) => {
      await writeFile(file, derToPem(der) + derToPem(intermediate));
      const { lines, logger } = capturingLogger();
      const { pending, io } = caNodeRenewalIo(genesisNode);
      const chains: Uint8Array[][] = [];
      const renewal = await startCertRenewal({
        ...io,
        certificateFile: file,
        renewAt: 0,
        ca: withGenesis.config,
        privateKey: identity.ed25519.privateKey,
        ...(falconSecretKey === undefined ? {} : { falconSecretKey }),
        replaceChain: (chain) => void chains.push([...chain]),
        registry: new Registry(),
        logger,
        falcon: fixture.ca.falcon,
        now: () => clock,
      });
      assert.ok(renewal !== null, 'a genesis certificate is followed');
      const step = async (at = height()) => {
        renewal.committed(at);
        await renewal.idle();
      };
      return { renewal, step, lines, pending, chains };
    };
    try {
      // Due at once (renewAt 0), but the state holds genesis certificates from height 1 on.
      const file = path.join(dir, 'genesis.pem');
      const run = await start(file, identity.falcon.secretKey);
      await run.step(0);
      assert.equal(run.pending.size, 0);
      assert.ok(
        run.lines.some(
          (line) =>
            line.msg === 'identity certificate due for renewal, not yet in the committed state',
        ),
      );
      genesisNode.block([]);
      await run.step();
      assert.equal(run.pending.size, 1, JSON.stringify(run.lines));
      const [tx] = [...run.pending.values()];
      const body = decodeCaBody(decodeTransaction(tx!).body);
      assert.ok(body.op === 'renew');
      assert.deepEqual(body.serial, serial);
      assert.equal(body.lifetimeSeconds, null, "the profile's longest lifetime");
      assert.ok(body.request !== undefined, 'the renew carries the request');

      // Committed (signed by the node's key), published: the file and STOQ get the new chain.
      const committed = genesisNode.block([tx!]);
      run.pending.clear();
      assert.equal(committed.txResults[0]!.code, 0, committed.txResults[0]!.log);
      await run.step();
      const { tx: publish } = await publication(withGenesis, genesisNode, height(), 'val-a');
      genesisNode.block([publishTx(withGenesis, 'val-a', publish)]);
      await run.step();
      const renewed = run.lines.find((line) => line.msg === RENEWED_LOG_MESSAGE);
      assert.ok(renewed !== undefined, JSON.stringify(run.lines));
      assert.equal(renewed.oldSerial, leaf.serialNumber);
      const written = pemToDerList(await readFile(file, 'utf8'));
      const fresh = parseCertificate(written[0]!);
      assert.equal(fresh.serialNumber, renewed.newSerial);
      assert.notEqual(fresh.serialNumber, leaf.serialNumber);
      assert.equal(lacksIssuanceExtensions(fresh.der), false, 'an issued certificate now');
      assert.ok(fresh.publicKey.equals(leaf.publicKey));
      assert.deepEqual(fresh.uris, leaf.uris);
      assert.deepEqual(fresh.ipAddresses, leaf.ipAddresses);
      assert.deepEqual(written[1], intermediate);
      assert.deepEqual(run.chains, [written]);
      await run.renewal.close();

      // Without the FALCON secret key the request cannot be built: a logged, counted failure.
      const keyless = await start(path.join(dir, 'genesis-keyless.pem'));
      await keyless.step();
      await keyless.renewal.close();
      const failed = keyless.lines.find(
        (line) => line.msg === 'identity certificate renewal failed',
      );
      assert.ok(failed !== undefined, JSON.stringify(keyless.lines));
      assert.match(String(failed.reason), /FALCON/);
      assert.equal(keyless.pending.size, 0);
      assert.equal(DEFAULT_RENEW_AT, 2 / 3);
    } finally {
      await genesisNode.close();
    }
  });
});
