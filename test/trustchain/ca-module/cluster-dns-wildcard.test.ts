import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TxCheckResult } from '../../../src/consensus/app.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import {
  CA_RESULT_CODES,
  CaModuleErrorCode,
  caRequestBody,
} from '../../../src/trustchain/ca-module/index.js';
import type { RecordInput } from '../../../src/trustchain/dns/index.js';
import {
  dnsNameRegister,
  dnsRecordsDelete,
  dnsRecordsSet,
} from '../../../src/trustchain/dns-zones/index.js';
import { makeSender } from '../../consensus/application/fixture.js';
import { clusterGenesis, dnsTx } from '../dns-zones/dns-zones-fixture.js';
import { generateKey } from '../ca/fixtures.js';
import { assertRefused, caTry, createCaFixture, resultOf, type CaNode } from './fixture.js';

/**
 * CAA in consensus sees records synthesised from a wildcard owner (RFC 4592) as a DNS query
 * does (docs/ca.md, "CAA in consensus"): `*.shop.hypermesh CAA 0 issue "other-ca.example"`
 * binds `a.shop.hypermesh`, which has no node of its own, but not a name with records of its
 * own, nor an empty non-terminal, nor the wildcard certificate `*.shop.hypermesh`.
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
    records.map(([flags, tag, value]): RecordInput => ({
      name,
      type: 'CAA',
      ttl: 300,
      data: { flags, tag, value },
    })),
  );
}

function record(name: string, type: string, data: Record<string, unknown>): Uint8Array {
  return dnsRecordsSet([{ name, type, ttl: 300, data } as RecordInput]);
}

function refused(result: TxCheckResult, message?: RegExp): void {
  assert.equal(result.ok, false, 'expected CA_CAA_REFUSED');
  if (result.ok) return;
  assert.equal(result.code, C.CAA_REFUSED, result.message);
  if (message !== undefined) assert.match(result.message, message);
}

function admitted(result: TxCheckResult): void {
  assert.ok(result.ok, result.ok ? '' : `${result.code}: ${result.message}`);
}

describe('ca module: CAA records synthesised from a wildcard owner', () => {
  let node: CaNode;
  const admin = makeSender();
  const owner = makeSender();
  /** A grant for the whole `hypermesh` zone with wildcards. */
  const operator = makeSender();

  const block = (transactions: readonly Uint8Array[]) => {
    const result = node.block(transactions);
    assert.deepEqual(
      result.txResults.map((r) => r.code),
      transactions.map(() => 0),
      result.txResults.map((r) => r.log).join(' | '),
    );
  };
  const check = (names: readonly string[]) =>
    node.node.app.checkTx(caTry(operator, serviceBody(names)));

  before(async () => {
    const fixture = await createCaFixture(
      {
        grants: [
          {
            account: toHex(operator.publicKey),
            profiles: ['service'],
            dnsZones: ['hypermesh'],
            wildcards: true,
          },
        ],
      },
      undefined,
      { dns: clusterGenesis([admin.publicKey]) },
    );
    node = await fixture.openCaNode();
    block(
      [
        'shop.hypermesh.',
        '*.shop.hypermesh.',
        'b.shop.hypermesh.',
        'r.shop.hypermesh.',
        'x.e.shop.hypermesh.',
        'c.hypermesh.',
        '*.c.hypermesh.',
        't.hypermesh.',
      ].map((name) => dnsTx(owner, dnsNameRegister(name))),
    );
    block([
      dnsTx(owner, record('b.shop.hypermesh.', 'A', { address: '192.0.2.1' })),
      dnsTx(owner, record('x.e.shop.hypermesh.', 'A', { address: '192.0.2.2' })),
    ]);
  });

  after(async () => {
    await node?.close();
  });

  it('a wildcard with CAA refuses a name without a node of its own, at admission and in a block', () => {
    // Registered, but without records: no record is synthesised yet.
    admitted(check(['a.shop.hypermesh']));
    block([dnsTx(owner, caa('*.shop.hypermesh.', [[0, 'issue', 'other-ca.example']]))]);
    refused(
      check(['a.shop.hypermesh']),
      /CAA records at a\.shop\.hypermesh forbid issuance for a\.shop\.hypermesh/,
    );
    // The closest encloser of z.a.shop is shop (a.shop does not exist): synthesised too.
    refused(check(['z.a.shop.hypermesh']), /at z\.a\.shop\.hypermesh/);
    // A registered name without records is not a name of the zone the servers answer from.
    refused(check(['r.shop.hypermesh']), /at r\.shop\.hypermesh/);

    const result = node.node.app.executeBlock(
      node.input([caTry(operator, serviceBody(['a.shop.hypermesh']))]),
    );
    assertRefused(resultOf(result, 0), C.CAA_REFUSED);
    assert.equal(result.txResults[0]!.code, CA_RESULT_CODES[C.CAA_REFUSED]);
    assert.match(result.txResults[0]!.log, /a\.shop\.hypermesh/);
    assert.equal(
      result.changes.some((change) => new TextDecoder().decode(change.key).startsWith('ca/req/')),
      false,
      'nothing written',
    );
  });

  it('a name with records of its own is not synthesised: the climb goes on to its parent', () => {
    admitted(check(['b.shop.hypermesh']));
    block([dnsTx(owner, caa('shop.hypermesh.', [[0, 'issue', 'another-ca.example']]))]);
    refused(check(['b.shop.hypermesh']), /CAA records at shop\.hypermesh forbid/);
    // a.shop still gets the wildcard's RRset, the closest (RFC 8659 §3).
    refused(check(['a.shop.hypermesh']), /at a\.shop\.hypermesh/);
    block([dnsTx(owner, dnsRecordsDelete('shop.hypermesh.', 'CAA'))]);
    admitted(check(['b.shop.hypermesh']));
  });

  it('an empty non-terminal blocks synthesis, for itself and below it', () => {
    // e.shop exists (x.e.shop has an A record): NODATA, then shop, then the apex.
    admitted(check(['e.shop.hypermesh']));
    admitted(check(['x.e.shop.hypermesh']));
    // y.e.shop does not exist, but its closest encloser is e.shop, which has no wildcard.
    admitted(check(['y.e.shop.hypermesh']));
    refused(check(['a.shop.hypermesh']));
  });

  it('the wildcard certificate *.shop is unchanged: its search starts at shop', () => {
    admitted(check(['*.shop.hypermesh']));
    // *.b.shop: b.shop has records of its own, so nothing is synthesised for it.
    admitted(check(['*.b.shop.hypermesh']));
    // *.a.shop: the search starts at a.shop, whose records are the wildcard's.
    refused(check(['*.a.shop.hypermesh']), /at a\.shop\.hypermesh/);
  });

  it('issuewild and issue of a wildcard owner: issuewild rules wildcard requests', () => {
    block([
      dnsTx(
        owner,
        caa('*.shop.hypermesh.', [
          [0, 'issue', 'hypermesh'],
          [0, 'issuewild', 'other-ca.example'],
        ]),
      ),
    ]);
    admitted(check(['a.shop.hypermesh']));
    refused(check(['*.a.shop.hypermesh']), /issuewild/);
    admitted(check(['*.shop.hypermesh']));
    block([
      dnsTx(
        owner,
        caa('*.shop.hypermesh.', [
          [0, 'issue', ';'],
          [0, 'issuewild', 'hypermesh'],
        ]),
      ),
    ]);
    admitted(check(['*.a.shop.hypermesh']));
    refused(check(['a.shop.hypermesh']));
    block([dnsTx(owner, dnsRecordsDelete('*.shop.hypermesh.', 'CAA'))]);
    admitted(check(['a.shop.hypermesh']));
  });

  it('a CNAME at the wildcard is followed from the synthesised name', () => {
    block([
      dnsTx(owner, record('*.c.hypermesh.', 'CNAME', { target: 't.hypermesh.' })),
      dnsTx(owner, caa('t.hypermesh.', [[0, 'issue', 'other-ca.example']])),
    ]);
    refused(check(['q.c.hypermesh']), /CAA records at q\.c\.hypermesh forbid/);
    refused(check(['*.q.c.hypermesh']), /at q\.c\.hypermesh/);
    admitted(check(['c.hypermesh']));
    block([dnsTx(owner, caa('t.hypermesh.', [[0, 'issue', 'hypermesh']]))]);
    admitted(check(['q.c.hypermesh']));
    // A wildcard CNAME to a name synthesised from that same wildcard loops: refused.
    block([dnsTx(owner, record('*.c.hypermesh.', 'CNAME', { target: 'loop.c.hypermesh.' }))]);
    const looped = check(['q.c.hypermesh']);
    assert.equal(looped.ok, false);
    assert.ok(!looped.ok && /cname_chain|CNAME/.test(looped.message), JSON.stringify(looped));
  });
});
