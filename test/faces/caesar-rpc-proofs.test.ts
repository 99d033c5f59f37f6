import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CaesarStateError, CaesarStateErrorCode } from '../../src/caesar/index.js';
import type { ServiceRegistry } from '../../src/consensus/net/index.js';
import {
  caesarService,
  createCaesarRpcClient,
  registerCaesarRpc,
  type CaesarRpcClient,
  type CaesarRpcSource,
} from '../../src/faces/caesar-rpc.js';
import type { RpcClient, ServiceDefinition, ServiceHandlers } from '../../src/stoq/index.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
import { makeSender, type TestNode } from '../consensus/application/fixture.js';
import { Cluster } from '../consensus/net/net-fixture.js';
import { addressOf, transfer } from '../caesar/caesar-fixture.js';
import {
  makeValidator,
  openStakingNode,
  runBlock,
  stakingGenesis,
  stakingTx,
} from '../caesar/staking-fixture.js';

/**
 * The client of `hypermesh.caesar.v1` checks what it is told (over the in-memory STOQ
 * transport): a node that states another balance than its proof shows, or sends the proof of
 * another account, or lists one proven delegation twice (counting it twice in `bonded`), or
 * leaves a delegation out, or withholds the delegator index that proves none is left out, is
 * refused with `CaesarStateError PROOF_INVALID`; a request without `proveComplete` (a client
 * from before it) gets the answer it knows; pages of validators follow the proven list; an answer
 * at another height than the one asked for is refused (`HEIGHT_MISMATCH`). The honest server
 * reads a real Caesar application over a store.
 */
let cluster: Cluster;
let app: TestNode;
let honest: CaesarRpcClient;
let liar: CaesarRpcClient;
let forger: CaesarRpcClient;
let doubler: CaesarRpcClient;
let hider: CaesarRpcClient;
let withholder: CaesarRpcClient;
/** Answers at the latest height whatever height is asked for. */
let heightless: CaesarRpcClient;
let legacy: RpcClient<typeof caesarService>;

const alice = makeSender();
const bob = makeSender();
/** Delegates to two validators. */
const dave = makeSender();
const validators = [makeValidator(), makeValidator(), makeValidator()];

/** `registry` with the handler of `method` replaced by `wrap(original)`. */
function tampering(
  registry: ServiceRegistry,
  method: string,
  wrap: (original: (request: unknown, ctx: unknown) => Promise<unknown>) => unknown,
): ServiceRegistry {
  return {
    register<S extends ServiceDefinition>(service: S, handlers: ServiceHandlers<S>): void {
      const table = handlers as unknown as Record<
        string,
        (request: unknown, ctx: unknown) => Promise<unknown>
      >;
      registry.register(service, {
        ...handlers,
        [method]: wrap(table[method]!),
      } as ServiceHandlers<S>);
    },
  };
}

before(async () => {
  app = await openStakingNode(
    stakingGenesis({
      validators: validators.map((validator) => ({ validator, selfBond: 10_000n })),
      balances: [
        { address: addressOf(alice), amount: 5_000n },
        { address: addressOf(dave), amount: 5_000n },
      ],
    }),
  );
  runBlock(app);
  runBlock(app, [
    transfer(alice, { to: addressOf(bob), amount: 700n }),
    stakingTx(alice, {
      op: 'delegate',
      fee: 0n,
      amount: 1_000n,
      validator: validators[1]!.address,
    }),
    stakingTx(dave, { op: 'delegate', fee: 0n, amount: 300n, validator: validators[0]!.address }),
    stakingTx(
      dave,
      { op: 'delegate', fee: 0n, amount: 400n, validator: validators[2]!.address },
      1,
    ),
  ]);
  const source: CaesarRpcSource = {
    query: (request) => app.app.query(request),
    submit: () => ({ ok: false, code: 'TEST_CLOSED', message: 'no admission here' }),
    receipt: () => null,
    pending: () => false,
    history: () => ({ receipts: [], next: null }),
  };
  cluster = await Cluster.create('memory', [
    'n1',
    'n2',
    'n3',
    'n4',
    'n5',
    'n6',
    'n7',
    { name: 'carol', role: 'client' },
  ]);
  const [n1, n2, n3, n4, n5, n6, n7] = [
    await cluster.endpoint('n1'),
    await cluster.endpoint('n2'),
    await cluster.endpoint('n3'),
    await cluster.endpoint('n4'),
    await cluster.endpoint('n5'),
    await cluster.endpoint('n6'),
    await cluster.endpoint('n7'),
  ];
  registerCaesarRpc(n1.endpoint, source);
  // n2 states a balance its proof does not show.
  registerCaesarRpc(
    tampering(n2.endpoint, 'balance', (original) => async (request: unknown, ctx: unknown) => {
      const answer = (await original(request, ctx)) as { view: { balance: string } };
      return { ...answer, view: { ...answer.view, balance: '999999' } };
    }),
    source,
  );
  // n3 answers with Alice's proven balance whatever is asked.
  registerCaesarRpc(
    tampering(n3.endpoint, 'balance', (original) => async (request: unknown, ctx: unknown) => {
      const asked = request as { address: Uint8Array };
      const answer = (await original({ ...asked, address: addressOf(alice) }, ctx)) as {
        view: { address: string };
      };
      return {
        ...answer,
        view: { ...answer.view, address: Buffer.from(asked.address).toString('hex') },
      };
    }),
    source,
  );
  // n4 lists the account's first delegation twice, proofs and view alike, so the view it states
  // is the one its proofs would give if a repeated entry were accepted (bonded counted twice).
  registerCaesarRpc(
    tampering(n4.endpoint, 'account', (original) => async (request: unknown, ctx: unknown) => {
      interface DelegationView {
        readonly worth: string;
      }
      const answer = (await original(request, ctx)) as {
        view: { staking: { delegations: DelegationView[]; bonded: string } | null };
        proofs: { delegations: unknown[] };
      };
      const staking = answer.view.staking;
      if (staking === null || staking.delegations.length === 0) return answer;
      const delegations = [staking.delegations[0]!, ...staking.delegations];
      const bonded = delegations.reduce((sum, d) => sum + BigInt(d.worth), 0n);
      return {
        ...answer,
        view: {
          ...answer.view,
          staking: { ...staking, delegations, bonded: bonded.toString() },
        },
        proofs: {
          ...answer.proofs,
          delegations: [answer.proofs.delegations[0], ...answer.proofs.delegations],
        },
      };
    }),
    source,
  );
  interface AccountAnswer {
    view: { staking: { delegations: { worth: string }[]; bonded: string } | null };
    proofs: { delegations: unknown[]; index?: unknown };
  }
  // n5 leaves the account's first delegation out, proofs and view alike (each remaining value
  // proven, `bonded` their sum): only the delegator index shows one is missing.
  registerCaesarRpc(
    tampering(n5.endpoint, 'account', (original) => async (request: unknown, ctx: unknown) => {
      const answer = (await original(request, ctx)) as AccountAnswer;
      const staking = answer.view.staking;
      if (staking === null || staking.delegations.length === 0) return answer;
      const delegations = staking.delegations.slice(1);
      const bonded = delegations.reduce((sum, d) => sum + BigInt(d.worth), 0n);
      return {
        ...answer,
        view: { ...answer.view, staking: { ...staking, delegations, bonded: bonded.toString() } },
        proofs: { ...answer.proofs, delegations: answer.proofs.delegations.slice(1) },
      };
    }),
    source,
  );
  // n6 answers as a node from before the index: everything but `proofs.index`.
  registerCaesarRpc(
    tampering(n6.endpoint, 'account', (original) => async (request: unknown, ctx: unknown) => {
      const answer = (await original(request, ctx)) as AccountAnswer;
      const { index: _withheld, ...proofs } = answer.proofs;
      return { ...answer, proofs };
    }),
    source,
  );
  // n7 answers every state read at its latest height, whatever height was asked for.
  const stateMethods = [
    'balance',
    'account',
    'validators',
    'rewards',
    'params',
    'proposals',
    'votes',
  ];
  let latest: ServiceRegistry = n7.endpoint;
  for (const method of stateMethods) {
    latest = tampering(latest, method, (original) => (request: unknown, ctx: unknown) => {
      const { height: _asked, ...rest } = request as { height?: number };
      return original(rest, ctx);
    });
  }
  registerCaesarRpc(latest, source);
  const caller = await cluster.endpoint('carol', undefined, {
    n1: [n1.address],
    n2: [n2.address],
    n3: [n3.address],
    n4: [n4.address],
    n5: [n5.address],
    n6: [n6.address],
    n7: [n7.address],
  });
  heightless = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n7' });
  hider = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n5' });
  withholder = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n6' });
  legacy = caller.endpoint.client(caesarService, 'n1');
  honest = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n1' });
  liar = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n2' });
  forger = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n3' });
  doubler = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n4' });
});

after(async () => {
  await cluster.close();
  await app.close();
});

const proofInvalid = (error: unknown): boolean =>
  error instanceof CaesarStateError && error.code === CaesarStateErrorCode.PROOF_INVALID;

describe('hypermesh.caesar.v1 client checks', () => {
  it('accepts honest answers and refuses a stated value or a proof that does not fit', async () => {
    const balance = await honest.balance(addressOf(bob));
    assert.equal(balance.view, 700n);
    assert.equal(balance.height, 2);
    await assert.rejects(liar.balance(addressOf(bob)), proofInvalid);
    await assert.rejects(forger.balance(addressOf(bob)), proofInvalid);
    // Asked for Alice, the forger's answer happens to be right.
    assert.equal((await forger.balance(addressOf(alice))).view, 5_000n - 700n - 1_000n);
  });

  it('refuses an account answer that lists one proven delegation twice', async () => {
    assert.equal((await honest.account(addressOf(alice))).view.staking?.bonded, '1000');
    await assert.rejects(doubler.account(addressOf(alice)), proofInvalid);
    // Without delegations there is nothing to repeat: the same server's answer is accepted.
    assert.equal((await doubler.account(addressOf(bob))).view.staking?.bonded, '0');
  });

  it('proves delegations complete with the delegator index', async () => {
    const full = await honest.account(addressOf(dave));
    assert.deepEqual(
      full.view.staking?.delegations.map((d) => [d.validator, d.worth]),
      [
        [validators[0]!.id, '300'],
        [validators[2]!.id, '400'],
      ].sort(([a], [b]) => (a! < b! ? -1 : 1)),
    );
    assert.equal(full.view.staking?.bonded, '700');
    await assert.rejects(hider.account(addressOf(dave)), proofInvalid);
    await assert.rejects(withholder.account(addressOf(dave)), proofInvalid);
    // Without staking answers there is no index to withhold or entry to hide: bob has none.
    assert.equal((await hider.account(addressOf(bob))).view.staking?.bonded, '0');
  });

  it('answers a request without proveComplete as before: no index, the same delegations', async () => {
    const old = await legacy.call('account', { address: addressOf(dave) });
    assert.equal(old.proofs.index, undefined);
    assert.equal(old.proofs.delegations.length, 2);
    assert.equal(old.view.staking?.bonded, '700');
    const asked = await legacy.call('account', { address: addressOf(dave), proveComplete: true });
    assert.notEqual(asked.proofs.index, undefined);
    assert.deepEqual(asked.view, old.view);
  });

  it('pages validators over the proven list and names the next page', async () => {
    const first = await honest.validators({ limit: 2 });
    assert.equal(first.view.total, 3);
    assert.equal(first.view.validators.length, 2);
    assert.equal(first.view.next, first.view.validators[1]!.address, 'the last address listed');
    const second = await honest.validators({ after: first.view.next!, limit: 2 });
    assert.equal(second.view.validators.length, 1);
    assert.equal(second.view.next, null);
    const asBytes = await honest.validators({ after: Buffer.from(first.view.next!, 'hex') });
    assert.deepEqual(asBytes.view.validators, second.view.validators);
    await assert.rejects(
      honest.validators({ after: 'not an address' }),
      (error: unknown) =>
        error instanceof StoqError && error.code === StoqErrorCode.INVALID_ARGUMENT,
    );
    // A client from before `after` pages by index and is answered by index.
    const byIndex = await legacy.call('validators', { from: 0, limit: 2 });
    assert.equal(byIndex.view.next, 2);
    assert.deepEqual(byIndex.view.validators, first.view.validators);
    const lastByIndex = await legacy.call('validators', { from: 2, limit: 2 });
    assert.equal(lastByIndex.view.next, null);
    assert.deepEqual(lastByIndex.view.validators, second.view.validators);
    await assert.rejects(
      legacy.call('validators', { from: 0, after: Buffer.from(first.view.next!, 'hex') }),
      (error: unknown) =>
        error instanceof StoqError && error.code === StoqErrorCode.INVALID_ARGUMENT,
    );
    const all = [...first.view.validators, ...second.view.validators].map((v) => v.address);
    assert.deepEqual(all, [...all].sort());
    assert.deepEqual(new Set(all), new Set(validators.map((validator) => validator.id)));
    const boosted = [...first.view.validators, ...second.view.validators].find(
      (v) => v.address === validators[1]!.id,
    );
    assert.equal(boosted?.tokens, '11000');
  });

  it('refuses an answer at another height than the one asked for', async () => {
    const mismatch = (requested: number) => (error: unknown) =>
      error instanceof CaesarStateError &&
      error.code === CaesarStateErrorCode.HEIGHT_MISMATCH &&
      error.detail['requested'] === requested &&
      error.detail['answered'] === 2;
    // Honest at height 1; the other node answers at its latest height (2), proofs and all.
    assert.equal((await honest.balance(addressOf(bob), 1)).height, 1);
    assert.equal((await heightless.balance(addressOf(bob))).view, 700n, 'no height asked');
    await assert.rejects(heightless.balance(addressOf(bob), 1), mismatch(1));
    await assert.rejects(heightless.account(addressOf(alice), { height: 1 }), mismatch(1));
    await assert.rejects(heightless.validators({ height: 1 }), mismatch(1));
    await assert.rejects(heightless.rewards({ height: 1 }), mismatch(1));
    await assert.rejects(heightless.params(1), mismatch(1));
    await assert.rejects(heightless.proposals({ height: 1 }), mismatch(1));
    await assert.rejects(heightless.votes(1, 1), mismatch(1));
  });

  it('reads an account at an earlier height and refuses requests outside the schema', async () => {
    const now = await honest.account(addressOf(alice));
    assert.equal(now.view.staking?.delegations[0]?.worth, '1000');
    const earlier = await honest.account(addressOf(alice), { height: 1 });
    assert.equal(earlier.view.balance, '5000');
    assert.deepEqual(earlier.view.staking?.delegations, []);
    await assert.rejects(
      honest.balance(new Uint8Array(31)),
      (error: unknown) =>
        error instanceof StoqError && error.code === StoqErrorCode.INVALID_ARGUMENT,
    );
    const refused = await honest.submitTx(transfer(alice, { to: addressOf(bob), amount: 1n }));
    assert.deepEqual(refused, { ok: false, code: 'TEST_CLOSED', message: 'no admission here' });
  });
});
