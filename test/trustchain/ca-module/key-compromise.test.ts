import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import {
  CaModuleErrorCode,
  caRenewBody,
  caRequestBody,
  caRevokeBody,
  signRevocation,
} from '../../../src/trustchain/ca-module/index.js';
import {
  MAX_CERTIFICATES_PER_KEY,
  readKeyCertificates,
  subjectKeyHash,
} from '../../../src/trustchain/ca-module/compromised-keys.js';
import { makeSender } from '../../consensus/application/fixture.js';
import { CHAIN_ID, CLUSTER } from '../ca/fixtures.js';
import { acmeErrorForCaRefusal } from '../../../src/node/acme-issuer.js';
import { AcmeIssuerErrorCode } from '../../../src/faces/acme/issuer.js';
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

type Key = ReturnType<typeof generateKeyPairSync>['privateKey'];

/** Commits `transactions`, then val-a's publication of that block; returns the serials. */
async function commitAndPublish(
  fixture: CaFixture,
  node: CaNode,
  transactions: Uint8Array[],
): Promise<Uint8Array[]> {
  const serials = commit(node, transactions);
  await publish(fixture, node, node.node.store.blocks.latestHeight() as number);
  return serials;
}

/** Commits `transactions` (each must apply); returns their serials. */
function commit(node: CaNode, transactions: Uint8Array[]): Uint8Array[] {
  const committed = node.block(transactions);
  return committed.txResults.map((result) => {
    assert.equal(result.code, 0, result.log);
    return node.state().issuance(result.txHash)!.serial;
  });
}

async function publish(fixture: CaFixture, node: CaNode, height: number): Promise<void> {
  const { tx } = await publication(fixture, node, height, 'val-a');
  const published = node.block([publishTx(fixture, 'val-a', tx)]);
  assert.equal(resultOf(published).code, 0, resultOf(published).log);
}

describe('ca module: keyCompromise revokes every certificate of the key and refuses it after', () => {
  let fixture: CaFixture;
  let node: CaNode;
  const request = (key: Key, name: string): Uint8Array =>
    caRequestBody({
      profile: 'service',
      csr: createCsr({ privateKey: key }),
      dnsNames: [`${name}.${GRANTED_ZONE}`],
      lifetimeSeconds: 3600,
    });

  before(async () => {
    fixture = await createCaFixture({ rateLimit: { max: 1000, windowSeconds: 3600 } });
    node = await fixture.openCaNode();
  });

  after(async () => {
    await node?.close();
  });

  it('revokes the published and pending certificates of the key, and refuses new requests and renewals', async () => {
    const { operator } = fixture;
    const compromised = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const other = generateKeyPairSync('ed25519').privateKey;
    const [first, unrelated] = await commitAndPublish(fixture, node, [
      caTx(operator, request(compromised, 'a')),
      caTx(operator, request(other, 'b')),
    ]);
    // An earlier renewal (published) and another request for the key (committed, not published).
    const [renewal] = await commitAndPublish(fixture, node, [caTx(operator, caRenewBody(first!))]);
    const [pending] = commit(node, [caTx(operator, request(compromised, 'c'))]);
    const pendingHeight = node.node.store.blocks.latestHeight() as number;

    // The key's holder shows the compromise: the revocation is signed by the key.
    const proof = signRevocation(compromised, CHAIN_ID, renewal!, 1);
    const revoked = node.block([caTx(operator, caRevokeBody(renewal!, 1, proof))]);
    assert.equal(resultOf(revoked).code, 0, resultOf(revoked).log);
    const state = node.state();
    for (const serial of [first!, renewal!, pending!]) {
      assert.equal(state.revocation(serial)?.reason, 1);
    }
    assert.equal(state.revocation(unrelated!), null);
    // The published ones are on val-a's CRL list at once; the pending one once published.
    assert.deepEqual(state.revokedBy('val-a'), [renewal, first]);
    await publish(fixture, node, pendingHeight);
    assert.deepEqual(node.state().revokedBy('val-a'), [renewal, first, pending]);
    assert.ok(node.state().certificate(pending!) !== null);

    // The key is refused from now on: at admission and in a block, new request or renewal.
    const again = node.node.app.checkTx(caTry(operator, request(compromised, 'd')));
    assert.equal(!again.ok && again.code, CaModuleErrorCode.KEY_COMPROMISED);
    assert.match(!again.ok ? again.message : '', /compromised/);
    const inBlock = node.block([caTx(operator, request(compromised, 'd'))]);
    assertRefused(resultOf(inBlock), CaModuleErrorCode.KEY_COMPROMISED);
    const renewed = node.node.app.checkTx(caTry(operator, caRenewBody(pending!)));
    assert.equal(!renewed.ok && renewed.code, CaModuleErrorCode.REVOKED);

    // Another key is untouched: it renews as before.
    const [fresh] = await commitAndPublish(fixture, node, [
      caTx(operator, caRenewBody(unrelated!)),
    ]);
    assert.equal(node.state().revocation(fresh!), null);
  });

  it('another reason marks nothing: the key may be certified again', async () => {
    const { operator } = fixture;
    const key = generateKeyPairSync('ed25519').privateKey;
    const [serial] = await commitAndPublish(fixture, node, [caTx(operator, request(key, 'e'))]);
    const revoked = node.block([caTx(operator, caRevokeBody(serial!, 4))]);
    assert.equal(resultOf(revoked).code, 0, resultOf(revoked).log);
    const [again] = commit(node, [caTx(operator, request(key, 'e'))]);
    assert.equal(node.state().revocation(again!), null);
  });

  it('an account without the key revokes only its own certificate, keyCompromise or not', async () => {
    const { operator } = fixture;
    const victim = generateKeyPairSync('ed25519').privateKey;
    const [own] = await commitAndPublish(fixture, node, [caTx(operator, request(victim, 'v'))]);
    // Another account replays the victim's CSR (it is public once requested) for a SPIFFE ID
    // under its own prefix, which any account may request, then "revokes for keyCompromise".
    const attacker = makeSender();
    const prefix = `spiffe://${CLUSTER}/account/${Buffer.from(attacker.publicKey).toString('hex')}`;
    const [copied] = await commitAndPublish(fixture, node, [
      caTx(
        attacker,
        caRequestBody({
          profile: 'client',
          csr: createCsr({ privateKey: victim }),
          uris: [`${prefix}/copy`],
          lifetimeSeconds: 3600,
        }),
      ),
    ]);
    const revoked = node.block([caTx(attacker, caRevokeBody(copied!, 1))]);
    assert.equal(resultOf(revoked).code, 0, resultOf(revoked).log);
    assert.equal(node.state().revocation(copied!)?.reason, 1);
    // The victim's certificate stands and its key is not marked.
    assert.equal(node.state().revocation(own!), null);
    const again = node.node.app.checkTx(caTry(operator, request(victim, 'v2')));
    assert.equal(again.ok, true, again.ok ? '' : again.message);
    // A proof that is not the key's signature is refused, even from the requesting account.
    const forged = signRevocation(generateKeyPairSync('ed25519').privateKey, CHAIN_ID, own!, 1);
    const refused = node.block([caTx(operator, caRevokeBody(own!, 1, forged))]);
    assertRefused(resultOf(refused), CaModuleErrorCode.NOT_AUTHORIZED);
  });

  it(`keeps the latest ${MAX_CERTIFICATES_PER_KEY} certificates of a key in its index, refusing none`, () => {
    const { operator } = fixture;
    const key = generateKeyPairSync('ed25519').privateKey;
    const body = request(key, 'many');
    // Two blocks: one block holds at most 256 issuances.
    const serials = [
      ...commit(
        node,
        Array.from({ length: MAX_CERTIFICATES_PER_KEY }, () => caTx(operator, body)),
      ),
      ...commit(node, [caTx(operator, body), caTx(operator, body)]),
    ];
    const keyHash = subjectKeyHash(
      new Uint8Array(createPublicKey(key).export({ format: 'der', type: 'spki' })),
    );
    const caState = {
      get: (stateKey: Uint8Array) =>
        node.node.store.state.get(
          new Uint8Array([...new TextEncoder().encode('ca/'), ...stateKey]),
        ),
    };
    const indexed = readKeyCertificates(caState, keyHash).map((entry) =>
      Buffer.from(entry.serial).toString('hex'),
    );
    assert.deepEqual(
      indexed,
      serials.slice(-MAX_CERTIFICATES_PER_KEY).map((serial) => Buffer.from(serial).toString('hex')),
    );
  });

  it('ACME answers a compromised key with an error about the CSR key', () => {
    const error = acmeErrorForCaRefusal('CA_KEY_COMPROMISED', 'the subject key is compromised');
    assert.equal(error.code, AcmeIssuerErrorCode.BAD_CSR);
    assert.match(error.message, /public key/);
  });
});
