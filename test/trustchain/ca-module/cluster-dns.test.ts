import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TxCheckResult } from '../../../src/consensus/app.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { verifyIssuedCertificate } from '../../../src/trustchain/ca/verify.js';
import {
  CA_RESULT_CODES,
  CaModuleErrorCode,
  caRequestBody,
  createCaModule,
  findPublishedCertificate,
  signDcvAttestation,
} from '../../../src/trustchain/ca-module/index.js';
import {
  dnsNameRegister,
  dnsNameRelease,
  dnsNameTransfer,
  dnsRecordsDelete,
  dnsRecordsSet,
} from '../../../src/trustchain/dns-zones/index.js';
import { makeSender, type Sender } from '../../consensus/application/fixture.js';
import { clusterGenesis, dnsTx } from '../dns-zones/dns-zones-fixture.js';
import { BLOCK_TIME, CHAIN_ID, generateKey } from '../ca/fixtures.js';
import {
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
 * The `ca` module on a chain with the `dns` module (docs/ca.md, "Who may request what" and "CAA
 * in consensus"): a name's owner may request it, and CAA records in the cluster's zones bind
 * every request for their names.
 */

const C = CaModuleErrorCode;

function serviceBody(names: readonly string[]): Uint8Array {
  return caRequestBody({
    profile: 'service',
    csr: createCsr({ privateKey: generateKey('p256') }),
    dnsNames: names,
  });
}

function caa(name: string, records: readonly [flags: number, tag: string, value: string][]) {
  return dnsRecordsSet(
    records.map(([flags, tag, value]) => ({
      name,
      type: 'CAA',
      ttl: 300,
      data: { flags, tag, value },
    })),
  );
}

function refusedAtAdmission(result: TxCheckResult, code: string, message?: RegExp): void {
  assert.equal(result.ok, false, `expected ${code}`);
  if (result.ok) return;
  assert.equal(result.code, code, result.message);
  if (message !== undefined) assert.match(result.message, message);
}

function admitted(result: TxCheckResult): void {
  assert.ok(result.ok, result.ok ? '' : `${result.code}: ${result.message}`);
}

describe('ca module with the dns module: ownership and CAA', () => {
  let fixture: CaFixture;
  let node: CaNode;
  const admin = makeSender();
  const owner = makeSender();
  const other = makeSender();
  /** A grant for the whole `hypermesh` zone with wildcards (an operator). */
  const zoneOperator = makeSender();
  /** A grant with `requireDcv` for another zone (an ACME server's account). */
  const dcvAccount = makeSender();
  /** A grant for that other zone, without `requireDcv`. */
  const netOperator = makeSender();
  /** A grant with `requireDcv` for the cluster zone (a node's ACME account). */
  const acmeAccount = makeSender();

  /** Executes and commits a block; asserts every transaction's code. */
  const block = (transactions: readonly Uint8Array[], codes: readonly number[]) => {
    const result = node.block(transactions);
    assert.deepEqual(
      result.txResults.map((r) => r.code),
      codes,
      result.txResults.map((r) => r.log).join(' | '),
    );
    return result;
  };
  const check = (sender: Sender, names: readonly string[]) =>
    node.node.app.checkTx(caTry(sender, serviceBody(names)));

  before(async () => {
    fixture = await createCaFixture(
      {
        grants: [
          {
            account: toHex(zoneOperator.publicKey),
            profiles: ['service'],
            dnsZones: ['hypermesh'],
            wildcards: true,
          },
          {
            account: toHex(dcvAccount.publicKey),
            profiles: ['service'],
            dnsZones: ['example.net'],
            requireDcv: true,
          },
          {
            account: toHex(netOperator.publicKey),
            profiles: ['service'],
            dnsZones: ['example.net'],
            wildcards: true,
          },
          {
            account: toHex(acmeAccount.publicKey),
            profiles: ['service'],
            dnsZones: ['hypermesh'],
            requireDcv: true,
          },
        ],
      },
      undefined,
      { dns: clusterGenesis([admin.publicKey]) },
    );
    node = await fixture.openCaNode();
  });

  after(async () => {
    await node?.close();
  });

  it('configures the module to read dns, with the genesis zone apexes as CAA identities', () => {
    assert.deepEqual(fixture.config.clusterDns, { caaIdentities: ['hypermesh'] });
    assert.deepEqual(createCaModule(fixture.config, { falcon: fixture.ca.falcon }).reads, ['dns']);
  });

  it('an owner without a grant gets a certificate for exactly its name', async () => {
    block([dnsTx(owner, dnsNameRegister('x.hypermesh.'))], [0]);
    refusedAtAdmission(check(owner, ['y.hypermesh']), C.POLICY_REFUSED, /name_not_allowed/);
    refusedAtAdmission(check(owner, ['a.x.hypermesh']), C.POLICY_REFUSED, /name_not_allowed/);
    refusedAtAdmission(check(owner, ['*.x.hypermesh']), C.POLICY_REFUSED, /wildcard_not_allowed/);
    refusedAtAdmission(check(other, ['x.hypermesh']), C.POLICY_REFUSED, /name_not_allowed/);
    // The owner's name together with one it does not own: refused as a whole.
    refusedAtAdmission(
      check(owner, ['x.hypermesh', 'y.hypermesh']),
      C.POLICY_REFUSED,
      /name_not_allowed/,
    );
    admitted(check(owner, ['x.hypermesh']));

    const request = caTx(owner, serviceBody(['x.hypermesh']));
    const committed = block([request], [0]);
    const h = node.node.store.blocks.latestHeight() as number;
    const { tx } = await publication(fixture, node, h, 'val-a');
    block([publishTx(fixture, 'val-a', tx)], [0]);
    const status = await findPublishedCertificate(
      (q) => node.node.app.query(q),
      committed.txResults[0]!.txHash,
    );
    assert.equal(status.status, 'published');
    assert.ok(status.status === 'published');
    const verified = verifyIssuedCertificate(status.certificate, fixture.ca.bundle, {
      now: new Date(BLOCK_TIME + 3_600_000),
      purpose: 'serverAuth',
    });
    assert.equal(verified.validator, 'val-a');
  });

  it('a name transferred or released earlier in the block is refused, nothing written', () => {
    block(
      [
        dnsTx(owner, dnsNameRegister('t.hypermesh.')),
        dnsTx(owner, dnsNameRegister('r.hypermesh.')),
      ],
      [0, 0],
    );
    admitted(check(owner, ['t.hypermesh']));
    admitted(check(owner, ['r.hypermesh']));
    const before = node.node.store.state.root();
    const result = node.node.app.executeBlock(
      node.input([
        dnsTx(owner, dnsNameTransfer('t.hypermesh.', other.publicKey), owner.sequence),
        caTry({ ...owner, sequence: owner.sequence + 1 }, serviceBody(['t.hypermesh'])),
        dnsTx(owner, dnsNameRelease('r.hypermesh.'), owner.sequence + 2),
        caTry({ ...owner, sequence: owner.sequence + 3 }, serviceBody(['r.hypermesh'])),
        // The recipient owns it now, within the same block.
        caTry(other, serviceBody(['t.hypermesh'])),
      ]),
    );
    const codes = result.txResults.map((r) => r.code);
    const refused = CA_RESULT_CODES[C.POLICY_REFUSED];
    assert.deepEqual(codes, [0, refused, 0, refused, 0], result.txResults.map((r) => r.log).join());
    assert.match(result.txResults[1]!.log, /name_not_allowed/);
    assert.match(result.txResults[3]!.log, /name_not_allowed/);
    // The refused requests wrote nothing of theirs: only the recipient's issuance is batched.
    const caKeys = result.changes
      .map((change) => new TextDecoder().decode(change.key.subarray(0, 7)))
      .filter((key) => key.startsWith('ca/req/'));
    assert.equal(caKeys.length, 1);
    assert.deepEqual(node.node.store.state.root(), before, 'not committed');
  });

  it('an owned name needs no DCV attestations, other names of a requireDcv grant do', () => {
    block([dnsTx(dcvAccount, dnsNameRegister('d.hypermesh.'))], [0]);
    admitted(check(dcvAccount, ['d.hypermesh']));
    refusedAtAdmission(check(dcvAccount, ['www.example.net']), C.DCV_QUORUM);
    refusedAtAdmission(check(dcvAccount, ['d.hypermesh', 'www.example.net']), C.DCV_QUORUM);
  });

  it('ownership gives no wildcard, even to a grant with wildcards', () => {
    block([dnsTx(netOperator, dnsNameRegister('n.hypermesh.'))], [0]);
    admitted(check(netOperator, ['n.hypermesh', '*.www.example.net']));
    refusedAtAdmission(check(netOperator, ['*.n.hypermesh']), C.POLICY_REFUSED, /name_not_allowed/);
  });

  it('CAA of the zone or of the name refuses another CA, at admission and in a block', () => {
    block([dnsTx(owner, dnsNameRegister('c.hypermesh.'))], [0]);
    admitted(check(owner, ['c.hypermesh']));
    admitted(check(zoneOperator, ['any.hypermesh']));

    // At the apex: every name of the zone, whatever grant allows it.
    block([dnsTx(admin, caa('hypermesh.', [[0, 'issue', 'other-ca.example']]))], [0]);
    refusedAtAdmission(
      check(owner, ['c.hypermesh']),
      C.CAA_REFUSED,
      /CAA records at hypermesh forbid issuance for c\.hypermesh/,
    );
    refusedAtAdmission(check(zoneOperator, ['any.hypermesh']), C.CAA_REFUSED);
    // Names in no zone of the dns module are not the cluster's to rule on.
    admitted(check(netOperator, ['www.example.net']));

    // At the name: the closest RRset is the relevant one (RFC 8659 §3).
    block([dnsTx(owner, caa('c.hypermesh.', [[0, 'issue', 'hypermesh']]))], [0]);
    admitted(check(owner, ['c.hypermesh']));
    refusedAtAdmission(check(zoneOperator, ['any.hypermesh']), C.CAA_REFUSED);
    block([dnsTx(owner, caa('c.hypermesh.', [[0, 'issue', 'Other-CA.example; x=1']]))], [0]);
    refusedAtAdmission(check(owner, ['c.hypermesh']), C.CAA_REFUSED, /at c\.hypermesh/);

    // The admin allows the cluster CA at the apex again, in the same block as the request.
    const allowApex = dnsTx(admin, caa('hypermesh.', [[0, 'issue', 'hypermesh']]), admin.sequence);
    const allowed = node.node.app.executeBlock(
      node.input([allowApex, caTry(zoneOperator, serviceBody(['any.hypermesh']))]),
    );
    assert.deepEqual(
      allowed.txResults.map((r) => r.code),
      [0, 0],
      allowed.txResults.map((r) => r.log).join(),
    );
    // And forbidding it earlier in a block refuses a request admitted on the committed state.
    block([dnsTx(admin, dnsRecordsDelete('hypermesh.', 'CAA'))], [0]);
    admitted(check(zoneOperator, ['any.hypermesh']));
    const forbidden = node.node.app.executeBlock(
      node.input([
        dnsTx(admin, caa('hypermesh.', [[0, 'issue', ';']]), admin.sequence),
        caTry(zoneOperator, serviceBody(['any.hypermesh'])),
      ]),
    );
    assert.equal(forbidden.txResults[0]!.code, 0, forbidden.txResults[0]!.log);
    assertRefused(resultOf(forbidden, 1), C.CAA_REFUSED);
    assert.equal(forbidden.txResults[1]!.code, CA_RESULT_CODES[C.CAA_REFUSED]);
    assert.equal(
      forbidden.changes.some((change) =>
        new TextDecoder().decode(change.key).startsWith('ca/req/'),
      ),
      false,
      'nothing written',
    );
  });

  it('issuewild rules a granted wildcard; RFC 8657 parameters and critical tags refuse', () => {
    block([dnsTx(owner, dnsNameRegister('w.hypermesh.'))], [0]);
    block(
      [
        dnsTx(
          owner,
          caa('w.hypermesh.', [
            [0, 'issue', 'hypermesh'],
            [0, 'issuewild', ';'],
          ]),
        ),
      ],
      [0],
    );
    admitted(check(zoneOperator, ['w.hypermesh']));
    refusedAtAdmission(check(zoneOperator, ['*.w.hypermesh']), C.CAA_REFUSED, /issuewild/);
    block(
      [
        dnsTx(
          owner,
          caa('w.hypermesh.', [
            [0, 'issue', ';'],
            [0, 'issuewild', 'hypermesh'],
          ]),
        ),
      ],
      [0],
    );
    admitted(check(zoneOperator, ['*.w.hypermesh']));
    refusedAtAdmission(check(zoneOperator, ['w.hypermesh']), C.CAA_REFUSED);
    // A name below w without records of its own: w's RRset is the relevant one.
    refusedAtAdmission(check(zoneOperator, ['a.w.hypermesh']), C.CAA_REFUSED, /at w\.hypermesh/);

    block(
      [dnsTx(owner, caa('w.hypermesh.', [[0, 'issue', 'hypermesh; accounturi=https://a/1']]))],
      [0],
    );
    refusedAtAdmission(check(zoneOperator, ['w.hypermesh']), C.CAA_REFUSED);
    block(
      [
        dnsTx(
          owner,
          caa('w.hypermesh.', [
            [0, 'issue', 'hypermesh'],
            [128, 'future', 'x'],
          ]),
        ),
      ],
      [0],
    );
    refusedAtAdmission(
      check(zoneOperator, ['w.hypermesh']),
      C.CAA_REFUSED,
      /unknown critical property "future"/,
    );
    block(
      [
        dnsTx(
          owner,
          caa('w.hypermesh.', [
            [0, 'issue', 'hypermesh'],
            [0, 'future', 'x'],
          ]),
        ),
      ],
      [0],
    );
    admitted(check(zoneOperator, ['w.hypermesh']));
  });

  it('RFC 8657 parameters: refused without DCV, trusted to a quorum of attestations', () => {
    block([dnsTx(owner, dnsNameRegister('p.hypermesh.'))], [0]);
    block(
      [
        dnsTx(
          owner,
          caa('p.hypermesh.', [
            [0, 'issue', 'hypermesh; accounturi=https://acme.example/acct/1'],
            [0, 'issue', 'other-ca.example'],
          ]),
        ),
      ],
      [0],
    );
    const height = node.node.store.blocks.latestHeight() as number;
    const attested = (names: readonly string[], attestations: readonly Uint8Array[]) =>
      node.node.app.checkTx(
        caTry(
          acmeAccount,
          caRequestBody(
            {
              profile: 'service',
              csr: createCsr({ privateKey: generateKey('p256') }),
              dnsNames: names,
            },
            undefined,
            attestations,
          ),
        ),
      );
    const quorum = (name: string) =>
      Object.values(fixture.validators).map((validator) =>
        signDcvAttestation(
          {
            chainId: CHAIN_ID,
            account: acmeAccount.publicKey,
            identifier: `dns:${name}`,
            wildcard: false,
            method: 'http-01',
            keyAuthorizationHash: sha256(new TextEncoder().encode(`token.${name}`)),
            height,
            ok: true,
            validator: validator.publicKey,
          },
          validator.privateKey,
        ),
      );
    // The module knows no ACME account: without attestations the parameter authorises nothing.
    refusedAtAdmission(check(zoneOperator, ['p.hypermesh']), C.CAA_REFUSED, /at p\.hypermesh/);
    // Each holder's `ok` covered CAA with the account and method it saw.
    admitted(attested(['p.hypermesh'], quorum('p.hypermesh')));
    // The issuer name itself is still the module's to check.
    block([dnsTx(owner, caa('p.hypermesh.', [[0, 'issue', 'other-ca.example']]))], [0]);
    const later = attested(['p.hypermesh'], quorum('p.hypermesh'));
    refusedAtAdmission(later, C.CAA_REFUSED, /at p\.hypermesh/);
  });
});

describe('ca module on a chain without the dns module', () => {
  let fixture: CaFixture;
  let node: CaNode;

  before(async () => {
    fixture = await createCaFixture();
    node = await fixture.openCaNode();
  });

  after(async () => {
    await node?.close();
  });

  it('reads nothing: grants alone allow DNS names, and there is no CAA check', () => {
    assert.equal(fixture.config.clusterDns, null);
    assert.equal(createCaModule(fixture.config, { falcon: fixture.ca.falcon }).reads, undefined);
    const stranger = makeSender();
    refusedAtAdmission(
      node.node.app.checkTx(caTry(stranger, serviceBody(['x.hypermesh']))),
      C.POLICY_REFUSED,
      /name_not_allowed/,
    );
    admitted(node.node.app.checkTx(caTry(fixture.operator, serviceBody(['x.example.com']))));
  });
});

describe('ca module with the dns module: the rate limit before CAA', () => {
  let fixture: CaFixture;
  let node: CaNode;
  const admin = makeSender();
  const zoneOperator = makeSender();
  const otherOperator = makeSender();

  before(async () => {
    fixture = await createCaFixture(
      {
        grants: [zoneOperator, otherOperator].map((sender) => ({
          account: toHex(sender.publicKey),
          profiles: ['service'],
          dnsZones: ['hypermesh'],
        })),
        rateLimit: { max: 1, windowSeconds: 3600 },
      },
      undefined,
      { dns: clusterGenesis([admin.publicKey]) },
    );
    node = await fixture.openCaNode();
  });

  after(async () => {
    await node?.close();
  });

  it('a request both rate limited and refused by CAA is refused for its rate: the cheaper check runs first', () => {
    const issued = node.block([caTx(zoneOperator, serviceBody(['a.hypermesh']))]);
    assert.equal(issued.txResults[0]!.code, 0, issued.txResults[0]!.log);
    const forbid = node.block([
      dnsTx(admin, caa('hypermesh.', [[0, 'issue', 'other-ca.example']])),
    ]);
    assert.equal(forbid.txResults[0]!.code, 0, forbid.txResults[0]!.log);
    refusedAtAdmission(
      node.node.app.checkTx(caTry(zoneOperator, serviceBody(['b.hypermesh']))),
      C.RATE_LIMITED,
    );
    const refused = node.block([caTx(zoneOperator, serviceBody(['b.hypermesh']))]);
    assertRefused(resultOf(refused, 0), C.RATE_LIMITED);
    // An account with its window unused is refused by CAA as before.
    refusedAtAdmission(
      node.node.app.checkTx(caTry(otherOperator, serviceBody(['b.hypermesh']))),
      C.CAA_REFUSED,
    );
  });
});
