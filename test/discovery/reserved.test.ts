import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { caesarInitialState, createCaesarModule } from '../../src/caesar/index.js';
import type { Application, BlockExecutionResult } from '../../src/consensus/app.js';
import {
  ApplicationError,
  ApplicationErrorCode,
  createApplication,
} from '../../src/consensus/application/index.js';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import { DEV_PROOF_PARAMS } from '../../src/consensus/proof/params.js';
import {
  DISCOVERY_RESULT_CODES,
  DiscoveryErrorCode,
  createDiscoveryModule,
  decodeInstance,
  discoveryDeregister,
  discoveryRenew,
  discoveryStateKey,
  instanceKey,
} from '../../src/discovery/index.js';
import type { InstanceRegistration } from '../../src/discovery/index.js';
import { discoveryNodeKeys } from '../../src/discovery/genesis.js';
import { isReservedService } from '../../src/discovery/rules.js';
import { createKvModule } from '../../src/kv/index.js';
import { SELF_SERVICES } from '../../src/node/discovery-self.js';
import { addressOf } from '../caesar/caesar-fixture.js';
import { makeValidator, runBlock, stakingGenesis, stakingTx } from '../caesar/staking-fixture.js';
import { TEST_TIMEOUTS } from '../consensus/driver/fixtures.js';
import {
  CHAIN_ID,
  DIFFICULTY,
  blockAt,
  makeSender,
  openNode,
} from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { nextBlock } from '../storage/chain-fixture.js';
import { discoveryTx, registerTx, registration } from './discovery-fixture.js';

const C = DiscoveryErrorCode;
const code = (c: DiscoveryErrorCode) => DISCOVERY_RESULT_CODES[c];
const codes = (result: BlockExecutionResult) => result.txResults.map((r) => r.code);
const decoder = new TextDecoder();
/** True when a block changed only sequence numbers (every transaction refused). */
const onlySequences = (result: BlockExecutionResult) =>
  result.changes.every(({ key }) => decoder.decode(key.subarray(0, 5)) === 'acct/');

/** A node's own registration of `service` under its name (as discovery-self.ts builds it). */
const nodeService = (
  instance: string,
  service: string = SELF_SERVICES.node,
  overrides: Partial<InstanceRegistration> = {},
): Partial<InstanceRegistration> => ({
  service,
  instance,
  identity: `spiffe://hypermesh/validator/${instance}`,
  ...overrides,
});

const renewTx = (
  sender: Sender,
  service: string,
  instance: string,
  status: 'passing' | 'warning',
) => discoveryTx(sender, discoveryRenew(service, instance, status));
const deregisterTx = (sender: Sender, service: string, instance: string) =>
  discoveryTx(sender, discoveryDeregister(service, instance));

/** A genesis document with these validator keys (only what `discoveryNodeKeys` reads matters). */
function genesisWith(keys: readonly Uint8Array[], app?: GenesisDocument['app']): GenesisDocument {
  return {
    chainId: CHAIN_ID,
    genesisTime: 1_700_000_000_000,
    validators: keys.map((publicKey, i) => ({
      name: `node-${i + 1}`,
      publicKey,
      pqPublicKey: new Uint8Array(randomBytes(1793)),
      power: 10,
      storageRoot: new Uint8Array(32),
    })),
    consensus: {
      timeouts: TEST_TIMEOUTS,
      commitDelayMs: 10,
      maxBlockBytes: 64 * 1024,
      maxBlockTxs: 1_000,
      requirePq: true,
    },
    proof: DEV_PROOF_PARAMS,
    ...(app === undefined ? {} : { app }),
  };
}

function assertRefused(node: TestNode, tx: Uint8Array, c: DiscoveryErrorCode, admitted = false) {
  const admission = node.app.checkTx(tx);
  if (admitted) assert.equal(admission.ok, true, 'admitted: decided in apply');
  else assert.equal(!admission.ok && admission.code, c, 'refused at admission');
  const result = node.executeAndCommit([tx]);
  assert.deepEqual(codes(result), [code(c)]);
  assert.ok(result.txResults[0]!.log.startsWith(`${c}: `), result.txResults[0]!.log);
  assert.ok(onlySequences(result), 'nothing but the sequence is written');
  return result.txResults[0]!.log;
}

const instanceOf = (node: TestNode, service: string, instance: string) => {
  const value = node.store.state.get(discoveryStateKey(instanceKey(service, instance)));
  return value === null ? null : decodeInstance(value);
};

describe('reserved services: node keys only', () => {
  it('every service a node registers for itself is reserved, and no other', () => {
    for (const service of Object.values(SELF_SERVICES)) assert.ok(isReservedService(service));
    for (const service of ['hypermesh', 'hypermeshnode', 'trustchain-ca', 'node-hypermesh-x']) {
      assert.equal(isReservedService(service), false, service);
    }
  });

  it('the genesis gives the node keys: its validators, and caesar when it has a section', () => {
    const key = makeSender().publicKey;
    assert.deepEqual(discoveryNodeKeys(genesisWith([key])), {
      genesisValidators: [key],
      caesar: false,
    });
    assert.equal(discoveryNodeKeys(genesisWith([key], { caesar: {} })).caesar, true);
  });

  describe('a chain without caesar: the genesis validators', () => {
    const validator = makeSender();
    const mallory = makeSender();
    let node: TestNode;
    before(async () => {
      const nodeKeys = discoveryNodeKeys(genesisWith([validator.publicKey]));
      node = await openNode({ modules: [createDiscoveryModule({ nodeKeys })] });
    });
    after(() => node.close());

    it('refuses a non-node key every reserved service, at admission and in a block', () => {
      for (const service of Object.values(SELF_SERVICES)) {
        const log = assertRefused(
          node,
          registerTx(mallory, nodeService('node-5', service)),
          C.RESERVED_SERVICE,
        );
        assert.match(
          log,
          new RegExp(`register ${service}/node-5: .*reserved for the chain's nodes`),
        );
        assert.equal(instanceOf(node, service, 'node-5'), null);
      }
    });

    it('accepts a genesis validator registering, changing and renewing its own', () => {
      const all = Object.values(SELF_SERVICES).map((service) =>
        registerTx(validator, nodeService('node-1', service)),
      );
      assert.deepEqual(
        codes(node.executeAndCommit(all)),
        all.map(() => 0),
      );
      const change = registerTx(
        validator,
        nodeService('node-1', SELF_SERVICES.node, { addresses: ['192.0.2.99'] }),
      );
      assert.deepEqual(codes(node.executeAndCommit([change])), [0]);
      assert.deepEqual(instanceOf(node, SELF_SERVICES.node, 'node-1')?.addresses, ['192.0.2.99']);
      const renew = renewTx(validator, SELF_SERVICES.node, 'node-1', 'warning');
      assert.equal(node.app.checkTx(renew).ok, true);
      assert.deepEqual(codes(node.executeAndCommit([renew])), [0]);
    });

    it('one instance per node key and reserved service: a second name is refused', () => {
      const log = assertRefused(
        node,
        registerTx(validator, nodeService('node-5')),
        C.RESERVED_INSTANCE_HELD,
        true,
      );
      assert.match(log, /already holds hypermesh-node\/node-1/);
      assert.equal(instanceOf(node, SELF_SERVICES.node, 'node-5'), null);
      // Once it gave up its name, it may take another.
      const moved = [
        deregisterTx(validator, SELF_SERVICES.node, 'node-1'),
        registerTx(validator, nodeService('node-5')),
      ];
      assert.deepEqual(codes(node.executeAndCommit(moved)), [0, 0]);
      assert.equal(instanceOf(node, SELF_SERVICES.node, 'node-1'), null);
    });

    it('leaves other services alone: any key, any number of instances', () => {
      const txs = ['a', 'b'].flatMap((id) => [
        registerTx(mallory, { instance: `ca-${id}` }),
        registerTx(mallory, { service: 'hypermesh', instance: id }),
        registerTx(mallory, { service: 'hypermeshx-node', instance: id }),
      ]);
      assert.deepEqual(
        codes(node.executeAndCommit(txs)),
        txs.map(() => 0),
      );
      const renew = renewTx(mallory, registration().service, 'ca-a', 'warning');
      assert.deepEqual(codes(node.executeAndCommit([renew])), [0]);
    });
  });

  describe('instances registered before the rule', () => {
    const validator = makeSender();
    const mallory = makeSender();
    let node: TestNode;
    let reserving: Application;
    /** Runs a block on the application with the rule and commits it on the same store. */
    const run = (txs: readonly Uint8Array[]): BlockExecutionResult => {
      const result = reserving.executeBlock(blockAt(node.nextHeight(), txs));
      const input = nextBlock(node.store, { stateChanges: result.changes });
      node.store.saveBlock(input);
      reserving.committed(input.block.height, result);
      return result;
    };
    before(async () => {
      node = await openNode({ modules: [createDiscoveryModule()] });
      const squat = [
        registerTx(mallory, nodeService('node-5', SELF_SERVICES.node, { ttl: 1_000 })),
        registerTx(mallory, nodeService('node-6', SELF_SERVICES.node, { ttl: 1_000 })),
      ];
      assert.deepEqual(codes(node.executeAndCommit(squat)), [0, 0], 'no rule: anyone registers');
      reserving = createApplication({
        chainId: CHAIN_ID,
        stampDifficulty: DIFFICULTY,
        state: node.store.state,
        modules: [
          createKvModule(),
          createDiscoveryModule({
            nodeKeys: { genesisValidators: [validator.publicKey], caesar: false },
          }),
        ],
      });
    });
    after(() => node.close());

    it('stay, but are not renewed or changed by a non-node key; their owner may deregister', () => {
      assert.notEqual(instanceOf(node, SELF_SERVICES.node, 'node-5'), null);
      for (const tx of [
        renewTx(mallory, SELF_SERVICES.node, 'node-5', 'warning'),
        registerTx(
          mallory,
          nodeService('node-5', SELF_SERVICES.node, { addresses: ['203.0.113.6'] }),
        ),
      ]) {
        const admission = reserving.checkTx(tx);
        assert.equal(!admission.ok && admission.code, C.RESERVED_SERVICE);
        const result = run([tx]);
        assert.deepEqual(codes(result), [code(C.RESERVED_SERVICE)]);
        assert.ok(onlySequences(result));
      }
      // The real node-5 cannot take a live name from its holder…
      assert.deepEqual(codes(run([registerTx(validator, nodeService('node-5'))])), [
        code(C.NOT_OWNER),
      ]);
      // …until it is gone.
      const result = run([
        deregisterTx(mallory, SELF_SERVICES.node, 'node-5'),
        registerTx(validator, nodeService('node-5')),
      ]);
      assert.deepEqual(codes(result), [0, 0]);
      const record = instanceOf(node, SELF_SERVICES.node, 'node-5');
      assert.deepEqual(record?.owner, validator.publicKey);
    });
  });

  describe('a chain with caesar: validators staked later', () => {
    const genesisValidator = makeValidator();
    const joining = makeValidator();
    let node: TestNode;
    before(async () => {
      const genesis = stakingGenesis({
        validators: [{ validator: genesisValidator, selfBond: 10_000n }],
        balances: [{ address: addressOf(joining.sender), amount: 5_000n }],
      });
      node = await openNode({
        modules: [
          createCaesarModule(),
          createDiscoveryModule({
            nodeKeys: { genesisValidators: [genesisValidator.sender.publicKey], caesar: true },
          }),
        ],
        initialState: caesarInitialState(genesis),
      });
      runBlock(node); // height 1 writes the genesis state
    });
    after(() => node.close());

    it('refuses a key until it has a validator record, then accepts it', () => {
      const early = registerTx(joining.sender, nodeService('node-2'));
      const admission = node.app.checkTx(early);
      assert.equal(!admission.ok && admission.code, C.RESERVED_SERVICE);
      const refused = runBlock(node, [early]);
      assert.deepEqual(codes(refused), [code(C.RESERVED_SERVICE)]);
      const createValidator = stakingTx(joining.sender, {
        op: 'create-validator',
        fee: 0n,
        bond: 1_000n,
        pqKey: joining.pqKey,
        commission: 0,
        storageRoot: joining.storageRoot,
      });
      // In one block: the register reads the record the block's earlier transaction wrote.
      const result = runBlock(node, [
        createValidator,
        registerTx(joining.sender, nodeService('node-2')),
        registerTx(genesisValidator.sender, nodeService('node-1')),
      ]);
      assert.deepEqual(codes(result), [0, 0, 0]);
      assert.deepEqual(
        instanceOf(node, SELF_SERVICES.node, 'node-2')?.owner,
        joining.sender.publicKey,
      );
      const renew = renewTx(joining.sender, SELF_SERVICES.node, 'node-2', 'warning');
      assert.equal(node.app.checkTx(renew).ok, true);
    });

    it('the module reads caesar, so a chain without it cannot build the router', () => {
      assert.throws(
        () =>
          createApplication({
            chainId: CHAIN_ID,
            stampDifficulty: DIFFICULTY,
            state: node.store.state,
            modules: [
              createKvModule(),
              createDiscoveryModule({ nodeKeys: { genesisValidators: [], caesar: true } }),
            ],
          }),
        (error: unknown) =>
          error instanceof ApplicationError && error.code === ApplicationErrorCode.INVALID_CONFIG,
      );
    });
  });
});
