import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CAESAR_MODULE_NAME,
  CaesarStateError,
  CaesarStateErrorCode,
  caesarInitialState,
  createCaesarModule,
  encodeTransfer,
  hybridAddress,
  signHybridTransfer,
} from '../../src/caesar/index.js';
import type { CaesarGenesis } from '../../src/caesar/index.js';
import type { ServiceRegistry } from '../../src/consensus/net/index.js';
import { createFalcon } from '../../src/crypto/falcon.js';
import {
  createCaesarRpcClient,
  registerCaesarRpc,
  type CaesarRpcClient,
  type CaesarRpcSource,
} from '../../src/faces/caesar-rpc.js';
import type { ServiceDefinition, ServiceHandlers } from '../../src/stoq/index.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
import { CHAIN_ID, makeSender, openNode, tx } from '../consensus/application/fixture.js';
import type { TestNode } from '../consensus/application/fixture.js';
import { Cluster } from '../consensus/net/net-fixture.js';
import { TOKEN, addressOf } from '../caesar/caesar-fixture.js';

/**
 * `hypermesh.caesar.v1` `account` with `hybrid`: the hybrid account's own next sequence
 * (`acct/sequence/caesar`, docs/caesar.md "A hybrid account's sequence"), proven, which a hybrid
 * wallet needs; the Ed25519 key's sequence is another number.
 */
let cluster: Cluster;
let node: TestNode;
let honest: CaesarRpcClient;
/** Answers with the Ed25519 key's sequence proof in place of the hybrid account's. */
let swapper: CaesarRpcClient;
const owner = makeSender();
const bob = makeSender();
let hybrid: Uint8Array;

before(async () => {
  const falcon = createFalcon();
  const keys = await falcon.generateKeyPair();
  hybrid = hybridAddress(owner.publicKey, keys.publicKey);
  const genesis: CaesarGenesis = {
    token: { ...TOKEN, supply: 2_000n },
    allocations: [
      { address: hybrid, amount: 1_000n },
      { address: addressOf(owner), amount: 1_000n },
    ],
  };
  node = await openNode({
    modules: [createCaesarModule({ falcon })],
    initialState: caesarInitialState(genesis),
  });
  node.executeAndCommit([]);
  // Two hybrid transfers (hybrid sequences 0 and 1) and none from the Ed25519 key itself.
  const hybridTransfer = async (sequence: number): Promise<Uint8Array> => {
    const body = await signHybridTransfer({
      chainId: CHAIN_ID,
      sender: owner.publicKey,
      sequence,
      transfer: encodeTransfer({ to: addressOf(bob), amount: 10n }),
      falcon: keys,
      backend: falcon,
    });
    return tx(owner, body, { module: CAESAR_MODULE_NAME, sequence });
  };
  const result = node.executeAndCommit([await hybridTransfer(0), await hybridTransfer(1)]);
  assert.deepEqual(
    result.txResults.map((r) => r.code),
    [0, 0],
  );
  const source: CaesarRpcSource = {
    query: (request) => node.app.query(request),
    submit: () => ({ ok: false, code: 'TEST_CLOSED', message: 'no admission here' }),
    receipt: () => null,
    pending: () => false,
    history: () => ({ receipts: [], next: null }),
  };
  cluster = await Cluster.create('memory', ['n1', 'n2', { name: 'carol', role: 'client' }]);
  const n1 = await cluster.endpoint('n1');
  const n2 = await cluster.endpoint('n2');
  registerCaesarRpc(n1.endpoint, source);
  registerCaesarRpc(swapping(n2.endpoint), source);
  const caller = await cluster.endpoint('carol', undefined, {
    n1: [n1.address],
    n2: [n2.address],
  });
  honest = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n1' });
  swapper = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n2' });
});

after(async () => {
  await cluster?.close();
  await node?.close();
});

/** `registry` whose `account` answers a hybrid request with the owner key's sequence proof. */
function swapping(registry: ServiceRegistry): ServiceRegistry {
  return {
    register<S extends ServiceDefinition>(service: S, handlers: ServiceHandlers<S>): void {
      const table = handlers as unknown as Record<
        string,
        (request: Record<string, unknown>, ctx: unknown) => Promise<Record<string, unknown>>
      >;
      const original = table['account']!;
      registry.register(service, {
        ...handlers,
        account: async (request: Record<string, unknown>, ctx: unknown) => {
          const answer = await original(request, ctx);
          if (request['hybrid'] !== true) return answer;
          const keyed = await original(
            { address: addressOf(owner), publicKey: owner.publicKey },
            ctx,
          );
          const proofs = answer['proofs'] as Record<string, unknown>;
          const keyProofs = keyed['proofs'] as Record<string, unknown>;
          return { ...answer, proofs: { ...proofs, sequence: keyProofs['sequence'] } };
        },
      } as ServiceHandlers<S>);
    },
  };
}

describe('hypermesh.caesar.v1 account: a hybrid account’s sequence', () => {
  it('proves the hybrid account’s own next sequence, apart from the Ed25519 key’s', async () => {
    const answer = await honest.account(hybrid, { hybrid: true });
    assert.equal(answer.view.sequence, 2);
    assert.equal(answer.view.balance, '980');
    const keyed = await honest.account(addressOf(owner), { publicKey: owner.publicKey });
    assert.equal(keyed.view.sequence, 0, 'the Ed25519 key sent nothing itself');
    const without = await honest.account(hybrid);
    assert.equal(without.view.sequence, null);
  });

  it('refuses a sequence proof of another key, and publicKey with hybrid', async () => {
    await assert.rejects(
      swapper.account(hybrid, { hybrid: true }),
      (error: unknown) =>
        error instanceof CaesarStateError && error.code === CaesarStateErrorCode.PROOF_INVALID,
    );
    await assert.rejects(
      honest.account(addressOf(owner), { publicKey: owner.publicKey, hybrid: true }),
      (error: unknown) =>
        error instanceof StoqError &&
        error.code === StoqErrorCode.INVALID_ARGUMENT &&
        error.detail['reason'] === 'key-and-hybrid',
    );
  });
});
