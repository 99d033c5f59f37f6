import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { checkRequest, parseCertificateRequest } from '../../../src/trustchain/ca/request.js';
import {
  CaGenesisError,
  CaModuleErrorCode,
  caGenesisFromApp,
  caRequestBody,
  dcvRequiredCount,
  requesterFor,
  signDcvAttestation,
} from '../../../src/trustchain/ca-module/index.js';
import { makeSender, type Sender } from '../../consensus/application/fixture.js';
import { CHAIN_ID, generateKey } from '../ca/fixtures.js';
import {
  GRANTED_ZONE,
  caTry,
  caTx,
  createCaFixture,
  type CaFixture,
  type CaNode,
} from './fixture.js';

/**
 * A genesis grant with `externalDns` (docs/ca.md, "Names and grants"): DNS names outside the
 * grant's zones are allowed, each still needing its quorum of DCV attestations (the grant must
 * have `requireDcv`); a grant without it refuses them (`name_not_allowed`).
 */
describe('ca module: externalDns grants', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let holders: Sender[];
  let q: number;
  const external = makeSender();
  const internal = makeSender();

  const grant = (sender: Sender, externalDns: boolean) => ({
    account: toHex(sender.publicKey),
    profiles: ['service' as const],
    dnsZones: [GRANTED_ZONE],
    wildcards: false,
    requireDcv: true,
    externalDns,
  });

  before(async () => {
    fixture = await createCaFixture({
      grants: [grant(external, true), grant(internal, false)],
    });
    node = await fixture.openCaNode();
    holders = [fixture.validators['val-a'], fixture.validators['val-b']];
    q = dcvRequiredCount(holders.length);
    node.block([]);
  });

  after(async () => {
    await node?.close();
  });

  const committed = (): number => node.node.store.blocks.latestHeight() as number;

  function quorum(account: Sender, identifier: string, count = q): Uint8Array[] {
    return holders.slice(0, count).map((holder) =>
      signDcvAttestation(
        {
          chainId: CHAIN_ID,
          account: account.publicKey,
          identifier,
          wildcard: false,
          method: 'http-01',
          keyAuthorizationHash: sha256(new TextEncoder().encode(`token.${identifier}`)),
          height: committed(),
          ok: true,
          validator: holder.publicKey,
        },
        holder.privateKey,
      ),
    );
  }

  function request(names: readonly string[], dcv: readonly Uint8Array[]): Uint8Array {
    return caRequestBody(
      { profile: 'service', csr: createCsr({ privateKey: generateKey('p256') }), dnsNames: names },
      undefined,
      dcv,
    );
  }

  /** Admitted and executed; returns the block's log for the transaction. */
  function outcome(sender: Sender, body: Uint8Array): { code: number; log: string } {
    const admission = node.node.app.checkTx(caTry(sender, body));
    const result = node.block([caTx(sender, body)]);
    const tx = result.txResults[0]!;
    assert.equal(admission.ok, tx.code === 0, JSON.stringify(admission));
    return { code: tx.code, log: tx.log };
  }

  it('requesterFor carries the flag', () => {
    assert.equal(requesterFor(fixture.config, external.publicKey).externalDns, true);
    assert.equal(requesterFor(fixture.config, internal.publicKey).externalDns, false);
    assert.equal(requesterFor(fixture.config, makeSender().publicKey).externalDns, false);
  });

  it('shop.example with a quorum → issued; without one → CA_DCV_QUORUM', () => {
    const issued = outcome(
      external,
      request(['shop.example'], quorum(external, 'dns:shop.example')),
    );
    assert.equal(issued.code, 0, issued.log);
    const few = outcome(
      external,
      request(['shop.example'], quorum(external, 'dns:shop.example', q - 1)),
    );
    assert.match(few.log, new RegExp(`^${CaModuleErrorCode.DCV_QUORUM}:`));
    const none = outcome(external, request(['shop.example'], []));
    assert.match(none.log, new RegExp(`^${CaModuleErrorCode.DCV_QUORUM}:`));
  });

  it('the same name from a grant without externalDns → name_not_allowed', () => {
    const refused = outcome(
      internal,
      request(['shop.example'], quorum(internal, 'dns:shop.example')),
    );
    assert.match(
      refused.log,
      new RegExp(`^${CaModuleErrorCode.POLICY_REFUSED}:.*name_not_allowed`),
    );
    // Its own zone still works.
    const name = `www.${GRANTED_ZONE}`;
    const ok = outcome(internal, request([name], quorum(internal, `dns:${name}`)));
    assert.equal(ok.code, 0, ok.log);
  });

  it('wildcards outside the zones only with wildcards; other rules unchanged', () => {
    const requester = requesterFor(fixture.config, external.publicKey);
    const parsed = (dnsNames: string[]) =>
      parseCertificateRequest({
        profile: 'service',
        csr: createCsr({ privateKey: generateKey('p256') }),
        dnsNames,
      });
    const refusals = (names: string[], wildcards: boolean) => {
      const decision = checkRequest(parsed(names), fixture.config.policy, {
        ...requester,
        wildcards,
      });
      return decision.ok ? [] : decision.refusals.map((r) => r.code);
    };
    assert.deepEqual(refusals(['*.shop.example'], false), ['wildcard_not_allowed']);
    assert.deepEqual(refusals(['*.shop.example'], true), []);
    assert.deepEqual(refusals(['a.b.shop.example'], false), []);
    assert.deepEqual(
      checkRequest(parsed(['x.example']), fixture.config.policy, {
        ...requester,
        externalDns: false,
      }).ok,
      false,
    );
  });

  it('the genesis refuses externalDns without requireDcv, precisely', () => {
    assert.throws(
      () =>
        caGenesisFromApp(
          {
            ca: {
              trustBundle: {},
              grants: [{ account: toHex(makeSender().publicKey), externalDns: true }],
            },
          },
          { chainId: CHAIN_ID, validators: [] },
        ),
      (error: unknown) =>
        error instanceof CaGenesisError &&
        /grants\[0\]\.externalDns.*"externalDns": true needs "requireDcv": true/s.test(
          error.message,
        ),
    );
  });
});
