import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { toBase64, toHex } from '../../src/crypto/bytes.js';
import { defaultFalcon } from '../../src/crypto/falcon.js';
import { derToPem, parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import { issueGenesisCertificate } from '../../src/node/ca-genesis.js';
import {
  RENEWAL_WINDOW_SLACK_MS,
  RENEWED_LOG_MESSAGE,
  renewalLifetimeSeconds,
  startCertRenewal,
} from '../../src/node/cert-renewal.js';
import { generateNodeIdentity } from '../../src/node/dev-ca.js';
import { createValidatorCaRequest, runGenesisCeremony } from '../../src/trustchain/ca/hierarchy.js';
import { parseIssuer } from '../../src/trustchain/ca/issue.js';
import { PROFILES } from '../../src/trustchain/ca/profiles.js';
import { createIssuerView, decodeCaBody } from '../../src/trustchain/ca-module/index.js';
import {
  BLOCK_TIME,
  CEREMONY_TIME,
  CHAIN_ID,
  CLUSTER,
  FAST_SCRYPT,
  PASSPHRASE,
  type TestCa,
} from '../trustchain/ca/fixtures.js';
import {
  createCaFixture,
  publication,
  publishTx,
  type CaNode,
} from '../trustchain/ca-module/fixture.js';
import { makeSender } from '../consensus/application/fixture.js';
import { caNodeRenewalIo, capturingLogger } from './cert-renewal-fixture.js';

/**
 * A renewal near the end of the issuable window (the earliest intermediate's notAfter) asks for
 * a lifetime that ends inside it (cert-renewal.ts `renewalLifetimeSeconds`), so the node gets a
 * shorter certificate instead of CA_OUTSIDE_ISSUER_VALIDITY and, later, an expired identity.
 */

const DAY = 86_400_000;

/** A two-validator CA whose intermediates end 70 days after the ceremony (about 10.5 days after BLOCK_TIME). */
async function shortLivedCa(): Promise<TestCa> {
  const falcon = defaultFalcon();
  const requests = await Promise.all(
    ['val-a', 'val-b'].map((name) => createValidatorCaRequest({ name, falcon })),
  );
  const ceremony = await runGenesisCeremony({
    cluster: CLUSTER,
    chainId: CHAIN_ID,
    time: CEREMONY_TIME,
    passphrase: PASSPHRASE,
    validators: requests.map((r) => r.request),
    intermediateValidityDays: 70,
    scrypt: FAST_SCRYPT,
    falcon,
  });
  const validators = Object.fromEntries(
    requests.map((r) => {
      const entry = ceremony.bundle.validators.find((v) => v.name === r.request.name)!;
      return [r.request.name, { keys: r.keys, issuer: parseIssuer(entry.certificate) }];
    }),
  );
  return {
    falcon,
    bundle: ceremony.bundle,
    rootKeyFiles: ceremony.rootKeyFiles,
    validators,
    subjectFalcon: await falcon.generateKeyPair(),
  };
}

describe('renewal lifetime clamped to the issuable window', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-cert-renewal-window-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('renewalLifetimeSeconds keeps the lifetime when it fits and cuts it when it does not', () => {
    const now = BLOCK_TIME;
    const far = now + 400 * DAY;
    assert.equal(renewalLifetimeSeconds(3600, 3600, far, now), 3600);
    assert.equal(renewalLifetimeSeconds(null, 30 * 86_400, far, now), undefined);
    const near = now + 10 * DAY;
    const room = (10 * DAY - RENEWAL_WINDOW_SLACK_MS) / 1000;
    assert.equal(renewalLifetimeSeconds(null, 30 * 86_400, near, now), room);
    assert.equal(renewalLifetimeSeconds(30 * 86_400, 30 * 86_400, near, now), room);
    assert.equal(renewalLifetimeSeconds(3600, 3600, now, now), 1);
  });

  it('a genesis node certificate renewed ten days before the window ends gets a shorter certificate', async () => {
    const ca = await shortLivedCa();
    const identity = await generateNodeIdentity(ca.falcon);
    const validator = ca.validators['val-a']!;
    const intermediate = validator.issuer.certificate;
    const der = issueGenesisCertificate({
      issuer: { certificate: intermediate, privateKey: validator.keys.ecdsa.privateKey },
      chainId: CLUSTER,
      role: 'validator',
      name: 'val-a',
      keys: identity,
      validityDays: 5,
      now: new Date(BLOCK_TIME),
      ipAddresses: ['127.0.0.1'],
    })[0]!;
    const fixture = await createCaFixture(
      {
        genesisCertificates: [
          { issuer: 'val-a', account: toHex(makeSender().publicKey), certificate: toBase64(der) },
        ],
      },
      ca,
    );
    const node: CaNode = await fixture.openCaNode();
    const height = (): number => node.node.store.blocks.latestHeight() ?? 0;
    const until = createIssuerView(fixture.config, ca.falcon).issuableWindow({
      get: () => null,
    }).until;
    assert.ok(until - BLOCK_TIME < PROFILES.node.maxLifetimeSeconds * 1000, 'the window is short');
    const file = path.join(dir, 'genesis.pem');
    await writeFile(file, derToPem(der) + derToPem(intermediate));
    const { lines, logger } = capturingLogger();
    const { pending, io } = caNodeRenewalIo(node);
    const clock = new Date(BLOCK_TIME);
    const renewal = await startCertRenewal({
      ...io,
      certificateFile: file,
      renewAt: 0,
      ca: fixture.config,
      privateKey: identity.ed25519.privateKey,
      falconSecretKey: identity.falcon.secretKey,
      replaceChain: () => undefined,
      registry: new Registry(),
      logger,
      falcon: ca.falcon,
      now: () => clock,
    });
    assert.ok(renewal !== null);
    try {
      node.block([]);
      renewal.committed(height());
      await renewal.idle();
      assert.equal(pending.size, 1, JSON.stringify(lines));
      const [tx] = [...pending.values()];
      const body = decodeCaBody(decodeTransaction(tx!).body);
      assert.ok(body.op === 'renew');
      const expected = Math.floor((until - clock.getTime() - RENEWAL_WINDOW_SLACK_MS) / 1000);
      assert.equal(body.lifetimeSeconds, expected);
      const committed = node.block([tx!]);
      pending.clear();
      assert.equal(committed.txResults[0]!.code, 0, committed.txResults[0]!.log);
      renewal.committed(height());
      await renewal.idle();
      const { tx: publish } = await publication(fixture, node, height(), 'val-a');
      node.block([publishTx(fixture, 'val-a', publish)]);
      renewal.committed(height());
      await renewal.idle();
      assert.ok(
        lines.some((line) => line.msg === RENEWED_LOG_MESSAGE),
        JSON.stringify(lines),
      );
      const fresh = parseCertificate(pemToDerList(await readFile(file, 'utf8'))[0]!);
      assert.ok(fresh.notAfter.getTime() <= until);
      assert.equal(
        (fresh.notAfter.getTime() - fresh.notBefore.getTime()) / 1000,
        expected,
        'shorter than the 30-day node lifetime',
      );
    } finally {
      await renewal.close();
      await node.close();
    }
  });
});
