import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { parseCertificate } from '../../../src/crypto/x509.js';
import {
  CaModuleErrorCode,
  caRenewBody,
  caRequestBody,
} from '../../../src/trustchain/ca-module/index.js';
import { makeSender } from '../../consensus/application/fixture.js';
import {
  GRANTED_ZONE,
  caTry,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
  assertRefused,
  resultOf,
} from './fixture.js';

/** Commits `transactions`, then val-a's publication of that block; returns the first result. */
async function commitAndPublish(fixture: CaFixture, node: CaNode, transactions: Uint8Array[]) {
  const committed = node.block(transactions);
  const height = node.node.store.blocks.latestHeight() as number;
  const { tx } = await publication(fixture, node, height, 'val-a');
  const published = node.block([publishTx(fixture, 'val-a', tx)]);
  assert.equal(resultOf(published).code, 0, resultOf(published).log);
  return resultOf(committed) as { code: number; log: string; txHash: Uint8Array };
}

describe('ca module: renewal by the certified key', () => {
  let fixture: CaFixture;
  let node: CaNode;

  before(async () => {
    // Three issuances per window for the operator: its request and two renewals.
    fixture = await createCaFixture({ rateLimit: { max: 3, windowSeconds: 3600 } });
    node = await fixture.openCaNode();
  });

  after(async () => {
    await node?.close();
  });

  it('the key the certificate certifies may renew; the grant, rate window and record stay the requester’s', async () => {
    const { operator } = fixture;
    // A node-like key: an Ed25519 account whose key the operator had certified. It holds no
    // grant of its own.
    const certified = makeSender();
    const stranger = makeSender();
    const name = `node.${GRANTED_ZONE}`;
    const request = caRequestBody({
      profile: 'service',
      csr: createCsr({ privateKey: certified.privateKey }),
      dnsNames: [name],
      lifetimeSeconds: 3600,
    });
    const issued = await commitAndPublish(fixture, node, [caTx(operator, request)]);
    assert.equal(issued.code, 0, issued.log);
    const serial = node.state().issuance(issued.txHash)!.serial;

    // A stranger, even one presenting the serial, is refused.
    const byStranger = node.node.app.checkTx(caTry(stranger, caRenewBody(serial)));
    assert.equal(byStranger.ok, false);
    assert.equal(!byStranger.ok && byStranger.code, CaModuleErrorCode.NOT_AUTHORIZED);
    assert.match(!byStranger.ok ? byStranger.message : '', /requesting account or the certificate/);

    // The policy is the requester's: a lifetime its grant's profile does not allow is refused.
    const tooLong = node.node.app.checkTx(caTry(certified, caRenewBody(serial, 30 * 86_400)));
    assert.equal(!tooLong.ok && tooLong.code, CaModuleErrorCode.POLICY_REFUSED);
    assert.match(!tooLong.ok ? tooLong.message : '', /lifetime_too_long/);

    // The certified key renews (its own account holds no grant: the operator's is used).
    const first = await commitAndPublish(fixture, node, [caTx(certified, caRenewBody(serial))]);
    assert.equal(first.code, 0, first.log);
    const renewal = node.state().issuance(first.txHash)!;
    assert.deepEqual(renewal.renews, serial);
    assert.deepEqual(renewal.account, operator.publicKey);
    const fresh = parseCertificate(node.state().certificate(renewal.serial)!.der);
    const old = parseCertificate(node.state().certificate(serial)!.der);
    assert.deepEqual(fresh.dnsNames, [name]);
    assert.ok(fresh.publicKey.equals(old.publicKey));
    assert.equal(node.state().rateWindow(operator.publicKey)?.count, 2);
    assert.equal(node.state().rateWindow(certified.publicKey), null);

    // The renewed certificate's record is the operator's, so the key renews it again; the
    // operator's window (3 per hour) is what runs out, not the node's.
    const second = await commitAndPublish(fixture, node, [
      caTx(certified, caRenewBody(renewal.serial)),
    ]);
    assert.equal(second.code, 0, second.log);
    const third = node.block([caTx(certified, caRenewBody(renewal.serial))]);
    assertRefused(resultOf(third), CaModuleErrorCode.RATE_LIMITED);
    // The operator itself may still renew as before (and is limited by the same window).
    const byOperator = node.block([caTx(operator, caRenewBody(serial))]);
    assertRefused(resultOf(byOperator), CaModuleErrorCode.RATE_LIMITED);
  });
});
