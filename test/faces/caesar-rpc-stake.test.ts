import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CREATE_VALIDATOR_OP,
  DELEGATE_OP,
  HYBRID_OP,
  UNBOND_OP,
  UNJAIL_OP,
  encodeTransfer,
} from '../../src/caesar/index.js';
import type { CaesarTx, StakingTx } from '../../src/caesar/index.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import type { Mempool } from '../../src/consensus/mempool.js';
import { toHex } from '../../src/crypto/bytes.js';
import {
  STAKING_METHOD_KINDS,
  stakingMethodAdmits,
  type CaesarRpcClient,
  type StakingMethod,
} from '../../src/faces/caesar-rpc.js';
import { stakingMethodFor } from '../../src/node/stake-ledger.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
import { makeSender, tx, type Sender, type TestNode } from '../consensus/application/fixture.js';
import { addressOf, rawCaesarTx, transfer } from '../caesar/caesar-fixture.js';
import {
  makeValidator,
  recordOf,
  stakingGenesis,
  stakingTx,
  type TestValidator,
} from '../caesar/staking-fixture.js';
import { openCaesarRpcFixture, type CaesarRpcFixture } from './caesar-rpc-fixture.js';

/**
 * The staking methods of `hypermesh.caesar.v1` (`stake`, `unstake`, `delegate`) over the
 * in-memory STOQ transport, against a real Caesar application and a real mempool over it, as
 * caesar-service.ts wires them: each admits its own kinds (docs/caesar.md, "RPC service") with
 * the answer `submitTx` gives, and refuses every other transaction with INVALID_ARGUMENT
 * (`wrong-kind`, naming the kinds it takes) before admission, so nothing reaches the mempool.
 */
const validator: TestValidator = makeValidator();
const alice: Sender = makeSender();
const newcomer: TestValidator = makeValidator();

let fixture: CaesarRpcFixture;
let app: TestNode;
let mempool: Mempool;
let caesar: CaesarRpcClient;
let commitBlock: CaesarRpcFixture['commitBlock'];

before(async () => {
  fixture = await openCaesarRpcFixture(
    stakingGenesis({
      validators: [{ validator, selfBond: 10_000n }],
      balances: [
        { address: addressOf(alice), amount: 5_000n },
        { address: validator.account, amount: 5_000n },
        { address: newcomer.account, amount: 5_000n },
      ],
    }),
  );
  ({ app, mempool, caesar, commitBlock } = fixture);
});

after(() => fixture.close());

const hashOf = (bytes: Uint8Array): Uint8Array => decodeTransaction(bytes).txHash;

/** `method` admits `bytes`: the answer is submitTx's, and the mempool holds it. */
async function admitted(method: StakingMethod, bytes: Uint8Array): Promise<Uint8Array> {
  const answer = await caesar[method](bytes);
  assert.equal(answer.ok, true, `${method}: ${JSON.stringify(answer)}`);
  assert.equal(answer.ok && toHex(answer.txHash), toHex(hashOf(bytes)));
  assert.equal(answer.ok && answer.duplicate, false, 'newly admitted');
  assert.equal(mempool.has(hashOf(bytes)), true);
  return bytes;
}

/** `method` refuses `bytes` with INVALID_ARGUMENT `reason`; the mempool is as it was. */
async function refused(
  method: StakingMethod,
  bytes: Uint8Array,
  reason: string,
  message?: RegExp,
): Promise<void> {
  const size = mempool.size();
  await assert.rejects(caesar[method](bytes), (error: unknown) => {
    assert.ok(error instanceof StoqError, String(error));
    assert.equal(error.code, StoqErrorCode.INVALID_ARGUMENT);
    assert.equal(error.detail['reason'], reason, error.message);
    if (reason === 'wrong-kind') {
      assert.equal(error.detail['method'], method);
      assert.deepEqual(error.detail['expected'], [...STAKING_METHOD_KINDS[method]]);
    }
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
  assert.equal(mempool.size(), size, `${method}: nothing reaches the mempool`);
  let decodable = true;
  try {
    hashOf(bytes);
  } catch {
    decodable = false;
  }
  if (decodable) assert.equal(mempool.has(hashOf(bytes)), false);
}

/** A staking transaction from `sender` at its next sequence, which it does not use up. */
const unsent = (sender: Sender, body: StakingTx): Uint8Array =>
  stakingTx(sender, body, sender.sequence);

describe('hypermesh.caesar.v1 stake, unstake, delegate', () => {
  it('each admits its kinds and refuses the others before admission, nothing written', async () => {
    const toValidator = { fee: 0n, amount: 1_000n, validator: validator.address };
    const create: StakingTx = {
      op: CREATE_VALIDATOR_OP,
      fee: 0n,
      bond: 2_000n,
      pqKey: newcomer.pqKey,
      commission: 0,
      storageRoot: newcomer.storageRoot,
    };

    // stake: create-validator and a self-bond; a delegation to another validator, an unbond,
    // a transfer, an unjail are refused.
    const aliceDelegates = unsent(alice, { op: DELEGATE_OP, ...toValidator });
    await refused(
      'stake',
      aliceDelegates,
      'wrong-kind',
      /^stake admits create-validator or delegate to the sender's own validator, not delegate to another validator \(/,
    );
    await refused('stake', unsent(alice, { op: UNBOND_OP, ...toValidator }), 'wrong-kind');
    await refused(
      'stake',
      transfer(alice, { to: addressOf(makeSender()), amount: 1n }, alice.sequence),
      'wrong-kind',
      /not transfer/,
    );
    await refused('stake', unsent(validator.sender, { op: UNJAIL_OP, fee: 0n }), 'wrong-kind');
    const block = [
      await admitted('stake', stakingTx(newcomer.sender, create)),
      await admitted('stake', stakingTx(validator.sender, { op: DELEGATE_OP, ...toValidator })),
    ];

    // delegate: any delegation; create-validator and unbond are refused.
    await refused(
      'delegate',
      unsent(newcomer.sender, { ...create, bond: 3_000n }),
      'wrong-kind',
      /^delegate admits delegate or hybrid delegate, not create-validator/,
    );
    await refused('delegate', unsent(alice, { op: UNBOND_OP, ...toValidator }), 'wrong-kind');
    block.push(await admitted('delegate', stakingTx(alice, { op: DELEGATE_OP, ...toValidator })));
    // The same bytes again: already pending, and said so.
    const again = await caesar.delegate(block.at(-1)!);
    assert.equal(again.ok && again.duplicate, true);

    // Admission's own refusal comes back as submitTx answers it, with its code (an account
    // with nothing: the ledger checks a sender's next transaction at admission).
    const broke = stakingTx(makeSender(), { op: DELEGATE_OP, ...toValidator });
    const answer = await caesar.delegate(broke);
    assert.equal(answer.ok, false);
    assert.equal(!answer.ok && answer.code, 'CAESAR_INSUFFICIENT_FUNDS');
    assert.equal(mempool.has(hashOf(broke)), false);

    assert.equal(mempool.size(), block.length);
    commitBlock(block);
    assert.equal(mempool.size(), 0);
    assert.equal(recordOf(app, newcomer)?.tokens, 2_000n, 'create-validator applied');
    assert.equal(recordOf(app, validator)?.tokens, 12_000n, 'self-bond and delegation applied');

    // unstake: an unbond of the delegation (or of the self-bond); a delegation is refused.
    await refused(
      'unstake',
      unsent(alice, { op: DELEGATE_OP, ...toValidator }),
      'wrong-kind',
      /^unstake admits unbond or hybrid unbond, not delegate/,
    );
    await refused('unstake', unsent(newcomer.sender, create), 'wrong-kind');
    const unbond = stakingTx(alice, { op: UNBOND_OP, ...toValidator, amount: 400n });
    await admitted('unstake', unbond);
    const selfUnbond = stakingTx(validator.sender, { op: UNBOND_OP, ...toValidator, amount: 1n });
    await admitted('unstake', selfUnbond);
    commitBlock([unbond, selfUnbond]);
    for (const bytes of [unbond, selfUnbond]) {
      const receipt = await caesar.receipt(hashOf(bytes));
      assert.equal(receipt.status, 'committed');
      assert.equal(receipt.status === 'committed' && receipt.receipt.code, 0);
    }
    assert.equal(recordOf(app, validator)?.tokens, 11_599n);
  });

  it('refuses what is not a Caesar staking transaction of any kind', async () => {
    for (const method of ['stake', 'unstake', 'delegate'] as const) {
      await refused(method, new Uint8Array([1, 2, 3]), 'not-a-transaction');
      await refused(
        method,
        tx(alice, new Uint8Array([0xa0]), { module: 'kv', sequence: alice.sequence }),
        'not-caesar',
      );
      await refused(
        method,
        rawCaesarTx(alice, new Uint8Array([0xa1, 0x62, 0x6f, 0x70, 0x61, 0x78]), alice.sequence),
        'malformed-body',
      );
      await refused(
        method,
        rawCaesarTx(
          alice,
          encodeTransfer({ to: addressOf(makeSender()), amount: 1n }),
          alice.sequence,
        ),
        'wrong-kind',
      );
    }
  });

  it('names the method for each kind, hybrid bodies included', () => {
    const sender = validator.sender.publicKey;
    const own = { fee: 0n, amount: 1n, validator: validator.address };
    const other = { ...own, validator: newcomer.address };
    const hybrid = (inner: StakingTx): CaesarTx =>
      ({
        op: HYBRID_OP,
        inner,
        tx: new Uint8Array(0),
        seq: 0,
        pqKey: new Uint8Array(0),
        pqSig: new Uint8Array(0),
      }) as unknown as CaesarTx;
    const cases: [CaesarTx, StakingMethod[]][] = [
      [{ op: DELEGATE_OP, ...own }, ['stake', 'delegate']],
      [{ op: DELEGATE_OP, ...other }, ['delegate']],
      [{ op: UNBOND_OP, ...own }, ['unstake']],
      [hybrid({ op: DELEGATE_OP, ...own }), ['delegate']],
      [hybrid({ op: UNBOND_OP, ...other }), ['unstake']],
      [{ op: UNJAIL_OP, fee: 0n }, []],
    ];
    for (const [body, methods] of cases) {
      assert.deepEqual(
        (['stake', 'unstake', 'delegate'] as const).filter((method) =>
          stakingMethodAdmits(method, body, sender),
        ),
        methods,
        JSON.stringify(body, (_, value: unknown) =>
          typeof value === 'bigint' ? value.toString() : value,
        ),
      );
    }
    // What the CLI picks (stake-ledger.ts) is always a method that admits the transaction.
    assert.equal(stakingMethodFor({ op: DELEGATE_OP, ...own }, sender, false), 'stake');
    assert.equal(stakingMethodFor({ op: DELEGATE_OP, ...own }, sender, true), 'delegate');
    assert.equal(stakingMethodFor({ op: DELEGATE_OP, ...other }, sender, false), 'delegate');
    assert.equal(stakingMethodFor({ op: UNBOND_OP, ...own }, sender, false), 'unstake');
    assert.equal(stakingMethodFor({ op: UNJAIL_OP, fee: 0n }, sender, false), null);
  });
});
