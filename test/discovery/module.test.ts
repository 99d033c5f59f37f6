import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encodeCanonical } from '../../src/codec/cbor.js';
import type { BlockExecutionResult } from '../../src/consensus/app.js';
import { ApplicationError, ApplicationErrorCode } from '../../src/consensus/application/index.js';
import {
  DISCOVERY_RESULT_CODES,
  DiscoveryError,
  DiscoveryErrorCode,
  DiscoveryStateError,
  DiscoveryStateErrorCode,
  HEALTHY_STATUSES,
  createDiscoveryModule,
  minRenewInterval,
  renewInterval,
  MAX_INSTANCES_PER_OWNER,
  MAX_INSTANCES_PER_SERVICE,
  decodeInstance,
  discoveryDeregister,
  discoveryInstanceQuery,
  discoveryOwnerQuery,
  discoveryRenew,
  discoveryServiceQuery,
  discoveryStateKey,
  encodeInstance,
  instanceKey,
  ownerKey,
  serviceKey,
  verifyDiscoveryInstance,
  verifyDiscoveryOwner,
  verifyDiscoveryService,
  directoryBucketOf,
  directoryKey,
  readServiceDirectory,
} from '../../src/discovery/index.js';
import type { HealthStatus } from '../../src/discovery/index.js';
import { decodeStateProof, encodeStateProof } from '../../src/storage/index.js';
import { blockAt, makeSender, openNode } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { discoveryTx, openDiscoveryNode, registerTx, registration } from './discovery-fixture.js';

const C = DiscoveryErrorCode;
const code = (c: DiscoveryErrorCode) => DISCOVERY_RESULT_CODES[c];
const codes = (result: BlockExecutionResult) => result.txResults.map((r) => r.code);
const decoder = new TextDecoder();
/** The text of every state key a block changed. */
const changedKeys = (result: BlockExecutionResult) =>
  result.changes.map(({ key }) => decoder.decode(key.subarray(0, Math.min(key.length, 40))));
/** True when a block changed only sequence numbers (every transaction refused). */
const onlySequences = (result: BlockExecutionResult) =>
  result.changes.every(({ key }) => decoder.decode(key.subarray(0, 5)) === 'acct/');

const renewTx = (
  sender: Sender,
  service: string,
  instance: string,
  status: HealthStatus = 'passing',
) => discoveryTx(sender, discoveryRenew(service, instance, status));
const deregisterTx = (sender: Sender, service: string, instance: string) =>
  discoveryTx(sender, discoveryDeregister(service, instance));

const discoveryCode = (c: DiscoveryErrorCode) => (error: unknown) => {
  assert.ok(error instanceof DiscoveryError, `expected a DiscoveryError, got ${String(error)}`);
  assert.equal(error.code, c, error.message);
  return true;
};
const stateCode = (c: DiscoveryStateErrorCode) => (error: unknown) => {
  assert.ok(
    error instanceof DiscoveryStateError,
    `expected a DiscoveryStateError, got ${String(error)}`,
  );
  assert.equal(error.code, c, error.message);
  return true;
};

describe('discovery module in the application', () => {
  const alice = makeSender();
  const bob = makeSender();
  let node: TestNode;
  before(async () => {
    node = await openDiscoveryNode();
  });
  after(async () => {
    await node.close();
  });

  const instanceAt = (service: string, instance: string, height?: number) =>
    verifyDiscoveryInstance(
      service,
      instance,
      node.app.query(discoveryInstanceQuery(service, instance, height)),
    );
  const serviceAt = (service: string, height?: number) =>
    verifyDiscoveryService(service, node.app.query(discoveryServiceQuery(service, height)));
  const raw = (key: Uint8Array) => node.store.state.get(discoveryStateKey(key));
  /** Empty blocks until the next block is `height`. */
  const advanceTo = (height: number) => {
    while (node.nextHeight() < height) node.executeAndCommit([]);
  };

  it('registers an instance: record, service index and owner list, each proven', () => {
    const height = node.nextHeight();
    const result = node.executeAndCommit([registerTx(alice)]);
    assert.deepEqual(codes(result), [0]);
    assert.deepEqual(changedKeys(result).slice(1), [
      decoder.decode(discoveryStateKey(directoryKey(directoryBucketOf('trustchain-ca')))),
      'discovery/inst/trustchain-ca/node-1',
      decoder.decode(discoveryStateKey(ownerKey(alice.publicKey)).subarray(0, 40)),
      'discovery/svc/trustchain-ca',
    ]);
    // The directory lists the service, so a node can find every service without a key scan.
    assert.deepEqual(readServiceDirectory({ get: raw }), ['trustchain-ca']);
    const instance = instanceAt('trustchain-ca', 'node-1');
    assert.deepEqual(instance, {
      ...registration(),
      owner: alice.publicKey,
      registeredAt: height,
      updatedAt: height,
      expiresAt: height + 20,
    });
    assert.deepEqual(serviceAt('trustchain-ca'), [
      { instance: 'node-1', status: 'passing', expiresAt: height + 20, updatedAt: height },
    ]);
    assert.deepEqual(
      verifyDiscoveryOwner(alice.publicKey, node.app.query(discoveryOwnerQuery(alice.publicKey))),
      [{ service: 'trustchain-ca', instance: 'node-1' }],
    );
    // Absent things are proven absent.
    assert.equal(instanceAt('trustchain-ca', 'node-2'), null);
    assert.deepEqual(serviceAt('acme'), []);
    assert.deepEqual(
      verifyDiscoveryOwner(bob.publicKey, node.app.query(discoveryOwnerQuery(bob.publicKey))),
      [],
    );
  });

  it('proofs fail for tampered answers', () => {
    const query = discoveryInstanceQuery('trustchain-ca', 'node-1');
    const response = node.app.query(query);
    const record = decodeInstance(response.value!);
    const forged = encodeInstance({ ...record, addresses: ['203.0.113.66'] });
    const proof = decodeStateProof(response.proof!);
    const tampered = [
      { ...response, value: forged },
      { ...response, value: null },
      { ...response, stateRoot: response.stateRoot.map((b, i) => (i === 0 ? b ^ 1 : b)) },
      { ...response, proof: encodeStateProof({ ...proof, siblings: proof.siblings.slice(1) }) },
    ];
    for (const answer of tampered) {
      assert.throws(
        () => verifyDiscoveryInstance('trustchain-ca', 'node-1', answer),
        stateCode(DiscoveryStateErrorCode.PROOF_INVALID),
      );
    }
    const { proof: _proof, ...unproven } = response;
    assert.throws(
      () => verifyDiscoveryInstance('trustchain-ca', 'node-1', unproven),
      stateCode(DiscoveryStateErrorCode.PROOF_INVALID),
    );
    // The proof is for that key only: not for another instance's name.
    assert.throws(
      () => verifyDiscoveryInstance('trustchain-ca', 'node-2', response),
      stateCode(DiscoveryStateErrorCode.PROOF_INVALID),
    );
    const index = node.app.query(discoveryServiceQuery('trustchain-ca'));
    assert.throws(
      () =>
        verifyDiscoveryService('trustchain-ca', {
          ...index,
          value: encodeCanonical([['node-1', 'passing', 10 ** 9, 1]]),
        }),
      stateCode(DiscoveryStateErrorCode.PROOF_INVALID),
    );
    assert.throws(
      () => verifyDiscoveryService('acme', index),
      stateCode(DiscoveryStateErrorCode.PROOF_INVALID),
    );
  });

  it('only the owner may renew, change or deregister; nothing else is written', () => {
    const before = instanceAt('trustchain-ca', 'node-1');
    for (const [name, bodyTx] of [
      ['renew', renewTx(bob, 'trustchain-ca', 'node-1', 'critical')],
      ['deregister', deregisterTx(bob, 'trustchain-ca', 'node-1')],
    ] as const) {
      const admission = node.app.checkTx(bodyTx);
      assert.equal(admission.ok, false, name);
      assert.equal(!admission.ok && admission.code, C.NOT_OWNER, name);
      const result = node.executeAndCommit([bodyTx]);
      assert.deepEqual(codes(result), [code(C.NOT_OWNER)], name);
      assert.match(result.txResults[0]!.log, /^DISCOVERY_NOT_OWNER: /);
      assert.ok(onlySequences(result), name);
    }
    // A register over a live instance of another key: admitted (expiry needs the height,
    // which check does not have), refused in the block.
    const takeover = registerTx(bob, { addresses: ['203.0.113.66'] });
    assert.equal(node.app.checkTx(takeover).ok, true);
    const result = node.executeAndCommit([takeover]);
    assert.deepEqual(codes(result), [code(C.NOT_OWNER)]);
    assert.ok(onlySequences(result));
    assert.deepEqual(instanceAt('trustchain-ca', 'node-1'), before);
  });

  it('the owner changes its instance: updatedAt moves, registeredAt stays', () => {
    const first = instanceAt('trustchain-ca', 'node-1')!;
    const height = node.nextHeight();
    const result = node.executeAndCommit([
      registerTx(alice, { addresses: ['2001:db8::1'], status: 'warning', ttl: 30 }),
    ]);
    assert.deepEqual(codes(result), [0]);
    const changed = instanceAt('trustchain-ca', 'node-1')!;
    assert.deepEqual(changed.addresses, ['2001:db8::1']);
    assert.equal(changed.registeredAt, first.registeredAt);
    assert.equal(changed.updatedAt, height);
    assert.equal(changed.expiresAt, height + 30);
    assert.deepEqual(serviceAt('trustchain-ca'), [
      { instance: 'node-1', status: 'warning', expiresAt: height + 30, updatedAt: height },
    ]);
    // The owner list is unchanged: still one instance.
    assert.deepEqual(
      verifyDiscoveryOwner(alice.publicKey, node.app.query(discoveryOwnerQuery(alice.publicKey))),
      [{ service: 'trustchain-ca', instance: 'node-1' }],
    );
    // Healthy filtering on the client side: warning serves, critical does not.
    const index = node.app.query(discoveryServiceQuery('trustchain-ca'));
    assert.equal(
      verifyDiscoveryService('trustchain-ca', index, { statuses: HEALTHY_STATUSES }).length,
      1,
    );
    assert.equal(
      verifyDiscoveryService('trustchain-ca', index, { statuses: ['passing'] }).length,
      0,
    );
  });

  it('expires at exactly registration height + ttl; renewals move it; the hour is by height', () => {
    const start = node.nextHeight();
    node.executeAndCommit([registerTx(alice, { service: 'acme', instance: 'a1', ttl: 8 })]);
    const expiresAt = start + 8;
    assert.equal(instanceAt('acme', 'a1')!.expiresAt, expiresAt);
    advanceTo(expiresAt);
    // The state at height expiresAt - 1 is the last one in which it is live.
    assert.equal(node.store.blocks.latestHeight(), expiresAt - 1);
    assert.notEqual(instanceAt('acme', 'a1'), null);
    assert.equal(serviceAt('acme').length, 1);
    // A renewal in block expiresAt is too late.
    const late = node.executeAndCommit([renewTx(alice, 'acme', 'a1')]);
    assert.deepEqual(codes(late), [code(C.NOT_FOUND)]);
    assert.match(late.txResults[0]!.log, /expired at height \d+/);
    assert.equal(instanceAt('acme', 'a1'), null, 'not live at its expiry height');
    assert.deepEqual(serviceAt('acme'), []);
    // Still stored (nothing pruned it yet), and visible at an earlier height.
    assert.notEqual(raw(instanceKey('acme', 'a1')), null);
    assert.notEqual(instanceAt('acme', 'a1', expiresAt - 1), null);
    assert.equal(
      verifyDiscoveryInstance('acme', 'a1', node.app.query(discoveryInstanceQuery('acme', 'a1')), {
        height: expiresAt - 1,
      })?.instance,
      'a1',
      'the client judges liveness at the height it is told',
    );
    // Deregistering it is refused too: an expired instance is gone.
    const gone = node.executeAndCommit([deregisterTx(alice, 'acme', 'a1')]);
    assert.deepEqual(codes(gone), [code(C.NOT_FOUND)]);

    // A renewal one block before expiry extends it by ttl from that block.
    const second = node.nextHeight();
    node.executeAndCommit([registerTx(alice, { service: 'acme', instance: 'a2', ttl: 8 })]);
    advanceTo(second + 7);
    const renewal = node.executeAndCommit([renewTx(alice, 'acme', 'a2')]);
    assert.deepEqual(codes(renewal), [0]);
    assert.equal(instanceAt('acme', 'a2')!.expiresAt, second + 7 + 8);
    // The write to "acme" pruned a1: its record, index entry and owner entry are gone.
    assert.equal(raw(instanceKey('acme', 'a1')), null);
    assert.deepEqual(
      serviceAt('acme').map((e) => e.instance),
      ['a2'],
    );
    assert.deepEqual(
      verifyDiscoveryOwner(alice.publicKey, node.app.query(discoveryOwnerQuery(alice.publicKey))),
      [
        { service: 'acme', instance: 'a2' },
        { service: 'trustchain-ca', instance: 'node-1' },
      ],
    );
  });

  it('refuses an unchanged renewal sooner than ttl / 4 blocks; a status change goes through', () => {
    const start = node.nextHeight();
    node.executeAndCommit([registerTx(alice, { service: 'dns', instance: 'd1', ttl: 12 })]);
    // minRenewInterval(12) = 3: blocks start+1 and start+2 are too soon for an unchanged status.
    const soon = node.executeAndCommit([renewTx(alice, 'dns', 'd1')]);
    assert.deepEqual(codes(soon), [code(C.RENEW_TOO_SOON)]);
    assert.ok(onlySequences(soon));
    const changed = node.executeAndCommit([renewTx(alice, 'dns', 'd1', 'critical')]);
    assert.deepEqual(codes(changed), [0]);
    assert.equal(instanceAt('dns', 'd1')!.status, 'critical');
    assert.equal(instanceAt('dns', 'd1')!.expiresAt, start + 2 + 12);
    advanceTo(start + 2 + 2);
    const stillSoon = node.executeAndCommit([renewTx(alice, 'dns', 'd1', 'critical')]);
    assert.deepEqual(codes(stillSoon), [code(C.RENEW_TOO_SOON)]);
    assert.match(stillSoon.txResults[0]!.log, new RegExp(`due from height ${start + 5}`));
    const due = node.executeAndCommit([renewTx(alice, 'dns', 'd1', 'critical')]);
    assert.deepEqual(codes(due), [0]);
  });

  it('a host renewing every renewInterval(ttl) blocks is never refused and never expires', () => {
    for (const ttl of [8, 9, 13]) {
      const instance = `cadence-${ttl}`;
      node.executeAndCommit([registerTx(alice, { service: 'cadence', instance, ttl })]);
      assert.ok(renewInterval(ttl) >= minRenewInterval(ttl));
      for (let round = 0; round < 4; round++) {
        advanceTo(node.nextHeight() + renewInterval(ttl) - 1);
        const result = node.executeAndCommit([renewTx(alice, 'cadence', instance)]);
        assert.deepEqual(codes(result), [0], `ttl ${ttl}, round ${round}`);
      }
      node.executeAndCommit([deregisterTx(alice, 'cadence', instance)]);
    }
  });

  it('the readers refuse a height they cannot judge expiry at', () => {
    node.executeAndCommit([registerTx(makeSender(), { service: 'readers', instance: 'r1' })]);
    const response = node.app.query(discoveryServiceQuery('readers'));
    assert.equal(verifyDiscoveryService('readers', response).length, 1);
    assert.throws(() => verifyDiscoveryService('readers', response, { height: -1 }), RangeError);
    assert.throws(
      () => verifyDiscoveryService('readers', { ...response, height: null }),
      stateCode(DiscoveryStateErrorCode.CORRUPT_VALUE),
    );
  });

  it('another key takes over an expired instance; the first owner loses it', () => {
    const start = node.nextHeight();
    node.executeAndCommit([registerTx(alice, { service: 'ledger', instance: 'l1', ttl: 8 })]);
    advanceTo(start + 8);
    const takeover = node.executeAndCommit([
      registerTx(bob, { service: 'ledger', instance: 'l1', ttl: 8 }),
    ]);
    assert.deepEqual(codes(takeover), [0]);
    const instance = instanceAt('ledger', 'l1')!;
    assert.deepEqual(instance.owner, bob.publicKey);
    assert.equal(instance.registeredAt, start + 8);
    const aliceHolds = verifyDiscoveryOwner(
      alice.publicKey,
      node.app.query(discoveryOwnerQuery(alice.publicKey)),
    );
    assert.ok(!aliceHolds.some((e) => e.service === 'ledger'));
    const old = node.executeAndCommit([deregisterTx(alice, 'ledger', 'l1')]);
    assert.deepEqual(codes(old), [code(C.NOT_OWNER)]);
    const own = node.executeAndCommit([deregisterTx(bob, 'ledger', 'l1')]);
    assert.deepEqual(codes(own), [0]);
    // The last instance gone: the index and the owner list keys are deleted.
    assert.equal(raw(serviceKey('ledger')), null);
    assert.equal(raw(ownerKey(bob.publicKey)), null);
    assert.equal(raw(instanceKey('ledger', 'l1')), null);
    assert.equal(node.app.query(discoveryServiceQuery('ledger')).value, null);
  });

  it('renew and deregister of an unknown instance are refused at admission and in blocks', () => {
    for (const bodyTx of [renewTx(bob, 'nothing', 'x'), deregisterTx(bob, 'nothing', 'x')]) {
      const admission = node.app.checkTx(bodyTx);
      assert.equal(!admission.ok && admission.code, C.NOT_FOUND);
      const result = node.executeAndCommit([bodyTx]);
      assert.deepEqual(codes(result), [code(C.NOT_FOUND)]);
      assert.ok(onlySequences(result));
    }
  });

  it('malformed bodies are refused at admission with their code and recorded refused in blocks', () => {
    const bad = discoveryTx(
      bob,
      encodeCanonical({ op: 'renew', status: 'up', service: 'a', instance: 'b' }),
    );
    const admission = node.app.checkTx(bad);
    assert.equal(!admission.ok && admission.code, C.INVALID_STATUS);
    const result = node.executeAndCommit([bad]);
    assert.deepEqual(codes(result), [code(C.INVALID_STATUS)]);
    assert.ok(onlySequences(result));
  });

  it('answers bad query data with INVALID_QUERY and unknown paths with UNKNOWN_QUERY', () => {
    const utf8 = (s: string) => new TextEncoder().encode(s);
    for (const [path, data] of [
      ['discovery/instance', utf8('acme')],
      ['discovery/instance', utf8('acme/A')],
      ['discovery/instance', utf8('Acme/a')],
      ['discovery/instance', Uint8Array.of(0xff, 0xfe)],
      ['discovery/service', utf8('acme/a')],
      ['discovery/service', utf8('x'.repeat(200))],
      ['discovery/owner', new Uint8Array(31)],
    ] as const) {
      assert.throws(() => node.app.query({ path, data }), discoveryCode(C.INVALID_QUERY), path);
    }
    assert.throws(
      () => node.app.query({ path: 'discovery/list', data: new Uint8Array(0) }),
      (error: unknown) =>
        error instanceof ApplicationError && error.code === ApplicationErrorCode.UNKNOWN_QUERY,
    );
    assert.throws(() => discoveryInstanceQuery('acme', 'A'), discoveryCode(C.INVALID_QUERY));
    assert.throws(() => discoveryServiceQuery(''), discoveryCode(C.INVALID_QUERY));
    assert.throws(() => discoveryOwnerQuery(new Uint8Array(3)), discoveryCode(C.INVALID_QUERY));
  });
});

describe('discovery limits', () => {
  let node: TestNode;
  before(async () => {
    node = await openDiscoveryNode();
  });
  after(async () => {
    await node.close();
  });

  it(`a sender owns at most ${MAX_INSTANCES_PER_OWNER} live instances; expired ones free room`, () => {
    const carol = makeSender();
    const start = node.nextHeight();
    const many = Array.from({ length: MAX_INSTANCES_PER_OWNER }, (_, i) =>
      registerTx(carol, { service: `svc${i % 3}`, instance: `c${i}`, ttl: i === 0 ? 8 : 100 }),
    );
    assert.ok(codes(node.executeAndCommit(many)).every((c) => c === 0));
    const extra = node.executeAndCommit([registerTx(carol, { service: 'svc9', instance: 'c99' })]);
    assert.deepEqual(codes(extra), [code(C.OWNER_LIMIT)]);
    assert.ok(onlySequences(extra));
    // Once c0 expires (in another service than the new one), registering prunes it and fits.
    while (node.nextHeight() < start + 8) node.executeAndCommit([]);
    const fits = node.executeAndCommit([registerTx(carol, { service: 'svc9', instance: 'c99' })]);
    assert.deepEqual(codes(fits), [0]);
    assert.equal(node.store.state.get(discoveryStateKey(instanceKey('svc0', 'c0'))), null);
    const held = verifyDiscoveryOwner(
      carol.publicKey,
      node.app.query(discoveryOwnerQuery(carol.publicKey)),
    );
    assert.equal(held.length, MAX_INSTANCES_PER_OWNER);
    assert.ok(!held.some((e) => e.instance === 'c0'));
    assert.deepEqual(
      verifyDiscoveryService('svc0', node.app.query(discoveryServiceQuery('svc0'))).map(
        (e) => e.instance,
      ),
      ['c12', 'c15', 'c18', 'c21', 'c24', 'c27', 'c3', 'c30', 'c6', 'c9'],
    );
  });

  it(`a service has at most ${MAX_INSTANCES_PER_SERVICE} live instances`, () => {
    const owners = [makeSender(), makeSender()];
    const fill = Array.from({ length: MAX_INSTANCES_PER_SERVICE }, (_, i) =>
      registerTx(owners[i % 2]!, { service: 'big', instance: `i${i}` }),
    );
    assert.ok(codes(node.executeAndCommit(fill)).every((c) => c === 0));
    const full = node.executeAndCommit([
      registerTx(makeSender(), { service: 'big', instance: 'one-more' }),
    ]);
    assert.deepEqual(codes(full), [code(C.SERVICE_FULL)]);
    // The owner may still change its own instances in a full service.
    const change = node.executeAndCommit([
      registerTx(owners[0]!, { service: 'big', instance: 'i0', status: 'critical' }),
    ]);
    assert.deepEqual(codes(change), [0]);
    // Deregistering one makes room.
    const room = node.executeAndCommit([
      deregisterTx(owners[1]!, 'big', 'i1'),
      registerTx(makeSender(), { service: 'big', instance: 'one-more' }),
    ]);
    assert.deepEqual(codes(room), [0, 0]);
    assert.equal(
      verifyDiscoveryService('big', node.app.query(discoveryServiceQuery('big'))).length,
      MAX_INSTANCES_PER_SERVICE,
    );
  });
});

describe('discovery over a damaged state', () => {
  const dave = makeSender();
  const other = encodeInstance({
    ...registration({ service: 'acme', instance: 'other' }),
    owner: dave.publicKey,
    registeredAt: 1,
    updatedAt: 1,
    expiresAt: 100,
  });
  let node: TestNode;
  before(async () => {
    node = await openNode({
      modules: [createDiscoveryModule()],
      initialState: [
        { key: discoveryStateKey(serviceKey('broken')), value: Uint8Array.of(0x01) },
        { key: discoveryStateKey(instanceKey('acme', 'moved')), value: other },
      ],
    });
    node.executeAndCommit([]);
  });
  after(async () => {
    await node.close();
  });

  it('a corrupt stored value is a module fault, never a refusal or a crash', () => {
    const tx = registerTx(dave, { service: 'broken', instance: 'x' });
    const { transactions } = node.app.prepareProposal(
      blockAt(node.nextHeight(), []),
      [tx],
      Number.MAX_SAFE_INTEGER,
    );
    assert.equal(transactions.length, 0, 'the proposer leaves it out');
    assert.throws(
      () => node.app.executeBlock(blockAt(node.nextHeight(), [tx])),
      stateCode(DiscoveryStateErrorCode.CORRUPT_VALUE),
    );
    const admission = node.app.checkTx(
      discoveryTx(dave, discoveryRenew('acme', 'moved', 'passing'), 0),
    );
    assert.equal(!admission.ok && admission.code, ApplicationErrorCode.INTERNAL);
    assert.throws(
      () => verifyDiscoveryService('broken', node.app.query(discoveryServiceQuery('broken'))),
      stateCode(DiscoveryStateErrorCode.CORRUPT_VALUE),
    );
  });

  it('a proven record stored under another instance name is refused by the client', () => {
    assert.throws(
      () =>
        verifyDiscoveryInstance(
          'acme',
          'moved',
          node.app.query(discoveryInstanceQuery('acme', 'moved')),
        ),
      stateCode(DiscoveryStateErrorCode.CORRUPT_VALUE),
    );
  });
});
