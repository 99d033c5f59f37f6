import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BlockExecutionResult } from '../../../src/consensus/app.js';
import { parseCertificate } from '../../../src/crypto/x509.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import {
  CaModuleErrorCode,
  DCV_REUSE_MAX_MS,
  caRenewBody,
  caRequestBody,
  signDcvAttestation,
} from '../../../src/trustchain/ca-module/index.js';
import type { Sender } from '../../consensus/application/fixture.js';
import { BLOCK_TIME, CHAIN_ID, generateKey } from '../ca/fixtures.js';
import {
  GRANTED_ZONE,
  assertRefused,
  caTry,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  resultOf,
  type CaFixture,
  type CaNode,
} from './fixture.js';

/**
 * Renewal at the block's time (docs/ca.md, "Renewal"): an expired certificate is not renewed,
 * and a `requireDcv` account's names are re-issued on the original validation for at most
 * `DCV_REUSE_MAX_MS` (398 days) of block time.
 */

const DAY = 86_400_000;
const WEEK_SECONDS = 7 * 86_400;

describe('ca module: renewal at block time', () => {
  let fixture: CaFixture;
  let node: CaNode;
  /** Block time of the latest block: every block here is at a time the test chooses. */
  let clock = BLOCK_TIME;

  before(async () => {
    fixture = await createCaFixture();
    node = await fixture.openCaNode();
  });

  after(async () => {
    await node?.close();
  });

  const latest = (): number => node.node.store.blocks.latestHeight() as number;

  function blockAt(time: number, transactions: readonly Uint8Array[]): BlockExecutionResult {
    assert.ok(time > clock, 'block times increase');
    clock = time;
    const result = node.node.app.executeBlock({ ...node.input(transactions), time });
    node.node.commit(result);
    return result;
  }

  /** Commits `tx` at `time`, then val-a's publication a second later; the issued serial. */
  async function issueAt(time: number, tx: Uint8Array): Promise<Uint8Array> {
    const result = resultOf(blockAt(time, [tx])) as {
      code: number;
      log: string;
      txHash: Uint8Array;
    };
    assert.equal(result.code, 0, result.log);
    const { tx: publish } = await publication(fixture, node, latest(), 'val-a');
    const published = resultOf(blockAt(time + 1000, [publishTx(fixture, 'val-a', publish)]));
    assert.equal(published.code, 0, published.log);
    return node.state().issuance(result.txHash)!.serial;
  }

  function validatedAt(serial: Uint8Array): number | null {
    const txHash = node.state().certificate(serial)!.txHash;
    return node.state().issuance(txHash)!.validatedAt;
  }

  it('an expired certificate is not renewed; an unexpired one is', async () => {
    const { operator } = fixture;
    const t0 = clock + 10_000;
    const serial = await issueAt(
      t0,
      caTx(
        operator,
        caRequestBody({
          profile: 'service',
          csr: createCsr({ privateKey: generateKey('p256') }),
          dnsNames: [`expiry.${GRANTED_ZONE}`],
          lifetimeSeconds: 3600,
        }),
      ),
    );
    const notAfter = parseCertificate(node.state().certificate(serial)!.der).notAfter.getTime();
    // Half an hour in: renewed.
    const renewed = await issueAt(t0 + 1_800_000, caTx(operator, caRenewBody(serial, 3600)));
    // The first certificate at its notAfter: expired, refused at the block's time (admission has
    // no block time and lets it through); nothing is written.
    const admission = node.node.app.checkTx(caTry(operator, caRenewBody(serial, 3600)));
    assert.equal(admission.ok, true);
    const expired = blockAt(notAfter, [caTx(operator, caRenewBody(serial, 3600))]);
    assertRefused(resultOf(expired), CaModuleErrorCode.EXPIRED);
    assert.match(resultOf(expired).log, /expired: request a new one/);
    assert.equal(node.state().issuance(expired.txResults[0]!.txHash), null);
    assert.equal(node.state().batch(latest()), null);
    // The renewal is still valid and renews.
    await issueAt(notAfter + 60_000, caTx(operator, caRenewBody(renewed, 3600)));
  });

  it("a requireDcv account's renewals reuse the validation for 398 days, then need fresh DCV", async () => {
    const { dcvOperator, validators } = fixture;
    // An IP address (no CAA): a DNS name's renewal needs a new request (dcv.test.ts).
    const address = '127.0.0.9';
    const quorum = (height: number): Uint8Array[] =>
      [validators['val-a'], validators['val-b']].map((validator: Sender) =>
        signDcvAttestation(
          {
            chainId: CHAIN_ID,
            account: dcvOperator.publicKey,
            identifier: `ip:${address}`,
            wildcard: false,
            method: 'http-01',
            keyAuthorizationHash: new Uint8Array(32),
            height,
            ok: true,
            validator: validator.publicKey,
          },
          validator.privateKey,
        ),
      );
    const request = () =>
      caRequestBody(
        {
          profile: 'service',
          csr: createCsr({ privateKey: generateKey('p256') }),
          ipAddresses: [address],
          lifetimeSeconds: WEEK_SECONDS,
        },
        undefined,
        quorum(latest()),
      );
    const t0 = clock + 10_000;
    let serial = await issueAt(t0, caTx(dcvOperator, request()));
    assert.equal(validatedAt(serial), t0);
    // Renewed every six days, each renewal inheriting the original validation time.
    let time = t0;
    while (time + 6 * DAY < t0 + DCV_REUSE_MAX_MS) {
      time += 6 * DAY;
      serial = await issueAt(time, caTx(dcvOperator, caRenewBody(serial, WEEK_SECONDS)));
      assert.equal(validatedAt(serial), t0);
    }
    // Exactly 398 days after the validation: still reusable.
    serial = await issueAt(
      t0 + DCV_REUSE_MAX_MS,
      caTx(dcvOperator, caRenewBody(serial, WEEK_SECONDS)),
    );
    // A second later the certificate is valid, but the validation is too old.
    const stale = blockAt(t0 + DCV_REUSE_MAX_MS + 5_000, [
      caTx(dcvOperator, caRenewBody(serial, WEEK_SECONDS)),
    ]);
    assertRefused(resultOf(stale), CaModuleErrorCode.DCV_STALE);
    assert.match(resultOf(stale).log, /fresh DCV/);
    assert.equal(node.state().issuance(stale.txResults[0]!.txHash), null);
    // A new request with a fresh quorum starts a new validation.
    const fresh = await issueAt(t0 + DCV_REUSE_MAX_MS + 10_000, caTx(dcvOperator, request()));
    assert.equal(validatedAt(fresh), t0 + DCV_REUSE_MAX_MS + 10_000);
  });
});
