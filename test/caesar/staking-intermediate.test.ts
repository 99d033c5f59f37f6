import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CAESAR_RESULT_CODES,
  CaesarErrorCode,
  caesarInitialState,
  createCaesarModule,
  decodeCaesarBody,
  encodeStakingTx,
} from '../../src/caesar/index.js';
import type { CheckContext } from '../../src/consensus/application/module.js';
import { ApplicationError, ApplicationErrorCode } from '../../src/consensus/application/errors.js';
import {
  caApproveIntermediateBody,
  intermediateHash,
  IntermediateStateReader,
} from '../../src/trustchain/ca-module/index.js';
import { openNode } from '../consensus/application/fixture.js';
import type { TestNode } from '../consensus/application/fixture.js';
import { caTx, createCaFixture, type CaFixture } from '../trustchain/ca-module/fixture.js';
import {
  addIntermediateBody,
  createValidatorTx,
  openStakingCaNode,
  type StakingCaNode,
} from './staking-ca-fixture.js';
import {
  TEST_PARAMS,
  balanceOf,
  bondedOf,
  feePoolOf,
  makeValidator,
  openStakingNode,
  recordOf,
  runBlock,
  stakingGenesis,
  stakingTx,
} from './staking-fixture.js';
import type { TestValidator } from './staking-fixture.js';

/**
 * `create-validator` on a chain with the `ca` module needs a TrustChain intermediate in effect
 * for the consensus key (docs/caesar.md, "Staking transactions"; issue 6 §2): a genesis
 * intermediate's holder, or an intermediate the real ca module added through the governed
 * procedure, read from its state as the transaction sees it (at admission the committed state,
 * in a block the earlier transactions' writes too). Without the ca module nothing changes.
 */

const NO_INTERMEDIATE = CaesarErrorCode.VALIDATOR_NO_INTERMEDIATE;
const FUNDS = 10_000n;

/** Only the router's sequence keys changed (a refused transaction writes nothing else). */
function onlySequences(result: { changes: readonly { key: Uint8Array }[] }): void {
  const prefixes = result.changes.map(({ key }) => new TextDecoder().decode(key.subarray(0, 5)));
  assert.ok(
    prefixes.every((prefix) => prefix === 'acct/'),
    `only sequences may change, got ${prefixes.join(', ')}`,
  );
}

function assertRefusedInBlock(
  result: { txResults: readonly { code: number; log: string }[] },
  index: number,
): void {
  const r = result.txResults[index]!;
  assert.equal(r.code, CAESAR_RESULT_CODES[NO_INTERMEDIATE], r.log);
  assert.match(r.log, new RegExp(`^${NO_INTERMEDIATE}: create-validator: key [0-9a-f]{64} holds`));
}

describe('caesar staking: create-validator needs a TrustChain intermediate (chain with ca)', () => {
  let fixture: CaFixture;
  let chain: StakingCaNode;
  let genesisValidator: TestValidator;
  let holder: TestValidator;
  let stranger: TestValidator;
  let joiner: TestValidator;

  before(async () => {
    fixture = await createCaFixture();
    genesisValidator = makeValidator();
    // A genesis intermediate holder that is not yet a staking validator.
    holder = makeValidator(fixture.validators['val-a']);
    stranger = makeValidator();
    joiner = makeValidator();
    chain = await openStakingCaNode(
      fixture,
      stakingGenesis({
        validators: [{ validator: genesisValidator, selfBond: 10_000n }],
        balances: [holder, stranger, joiner].map((v) => ({ address: v.account, amount: FUNDS })),
      }),
    );
    chain.block([]); // height 1 writes the genesis state
  });

  after(async () => {
    await chain?.close();
  });

  it('declares that it reads the ca module', () => {
    const module = createCaesarModule({ validatorIntermediates: { genesisHolders: [] } });
    assert.deepEqual(module.reads, ['ca']);
    assert.equal(createCaesarModule().reads, undefined);
  });

  it('refuses a key without an intermediate at admission and in a block: nothing written, no fee', () => {
    const { app } = chain.node;
    const sequence = stranger.sender.sequence;
    const admission = app.checkTx(createValidatorTx(stranger, 1_000n, { fee: 5n, sequence }));
    assert.equal(admission.ok, false);
    if (!admission.ok) assert.equal(admission.code, NO_INTERMEDIATE, admission.message);

    const result = chain.block([createValidatorTx(stranger, 1_000n, { fee: 5n })]);
    assertRefusedInBlock(result, 0);
    onlySequences(result);
    assert.equal(recordOf(chain.node, stranger), undefined);
    assert.equal(balanceOf(chain.node, stranger.account), FUNDS, 'no bond, no fee');
    assert.equal(feePoolOf(chain.node), 0n);
    assert.equal(bondedOf(chain.node), 10_000n);
    // The refusal used the sequence (like every refusal in a block): the next one is sequence+1.
    assert.equal(stranger.sender.sequence, sequence + 1);
  });

  it('the other staking rules come first, and only create-validator is affected', () => {
    // A genesis staking validator without an intermediate: it exists, so VALIDATOR_EXISTS.
    const again = chain.block([createValidatorTx(genesisValidator, 1n)]);
    assert.equal(again.txResults[0]!.code, CAESAR_RESULT_CODES[CaesarErrorCode.VALIDATOR_EXISTS]);
    // unjail, delegate: unchanged for a key without an intermediate.
    const others = chain.block([
      stakingTx(genesisValidator.sender, { op: 'unjail', fee: 0n }),
      stakingTx(stranger.sender, {
        op: 'delegate',
        fee: 0n,
        amount: 100n,
        validator: genesisValidator.address,
      }),
    ]);
    assert.equal(others.txResults[0]!.code, CAESAR_RESULT_CODES[CaesarErrorCode.NOT_JAILED]);
    assert.equal(others.txResults[1]!.code, 0, others.txResults[1]!.log);
  });

  it("accepts a genesis intermediate holder's key", () => {
    const admission = chain.node.app.checkTx(
      createValidatorTx(holder, 2_000n, { sequence: holder.sender.sequence }),
    );
    assert.equal(admission.ok, true, admission.ok ? '' : admission.message);
    const result = chain.block([createValidatorTx(holder, 2_000n, { fee: 3n })]);
    assert.equal(result.txResults[0]!.code, 0, result.txResults[0]!.log);
    assert.equal(recordOf(chain.node, holder)?.tokens, 2_000n);
    assert.equal(balanceOf(chain.node, holder.account), FUNDS - 2_003n);
  });

  it("accepts an added intermediate's account from the block its approval puts it in effect", async () => {
    const { operator, validators } = fixture;
    const { body, certificate } = await addIntermediateBody(fixture, 'val-c', joiner);
    const proposed = chain.block([caTx(operator, body)]);
    assert.equal(proposed.txResults[0]!.code, 0, proposed.txResults[0]!.log);
    const approve = caApproveIntermediateBody(
      intermediateHash(certificate, joiner.sender.publicKey),
    );

    // Proposed is not in effect.
    const early = chain.node.app.checkTx(
      createValidatorTx(joiner, 1_000n, { sequence: joiner.sender.sequence }),
    );
    assert.equal(early.ok, false);
    if (!early.ok) assert.equal(early.code, NO_INTERMEDIATE);

    // 2 genesis holders: both approvals are needed (more than 2/3). In one block: refused after
    // the first approval, applied after the second, which put the intermediate into effect.
    const result = chain.block([
      caTx(validators['val-a'], approve),
      createValidatorTx(joiner, 1_000n),
      caTx(validators['val-b'], approve),
      createValidatorTx(joiner, 1_000n),
    ]);
    assert.deepEqual(
      result.txResults.map((r) => r.code),
      [0, CAESAR_RESULT_CODES[NO_INTERMEDIATE], 0, 0],
      result.txResults.map((r) => r.log).join(' | '),
    );
    const ca = new IntermediateStateReader({
      get: (key) =>
        chain.node.store.state.get(new Uint8Array([...new TextEncoder().encode('ca/'), ...key])),
    });
    assert.deepEqual(ca.addedNames(), ['val-c']);
    assert.equal(recordOf(chain.node, joiner)?.tokens, 1_000n);
    assert.equal(balanceOf(chain.node, joiner.account), FUNDS - 1_000n);
  });
});

describe('caesar staking: create-validator on a chain without the ca module', () => {
  let node: TestNode;
  after(async () => {
    await node?.close();
  });

  it('registers any funded key, as before', async () => {
    const existing = makeValidator();
    const newcomer = makeValidator();
    node = await openStakingNode(
      stakingGenesis({
        validators: [{ validator: existing, selfBond: 10_000n }],
        balances: [{ address: newcomer.account, amount: FUNDS }],
      }),
    );
    runBlock(node);
    const result = runBlock(node, [createValidatorTx(newcomer, 1_000n)]);
    assert.equal(result.txResults[0]!.code, 0, result.txResults[0]!.log);
    assert.equal(recordOf(node, newcomer)?.tokens, 1_000n);
  });

  it('the option without the ca module is a configuration error, not a silent bypass', async () => {
    await assert.rejects(
      openNode({
        modules: [createCaesarModule({ validatorIntermediates: { genesisHolders: [] } })],
      }),
      (error: unknown) =>
        error instanceof ApplicationError && error.code === ApplicationErrorCode.INVALID_CONFIG,
    );
  });

  it('a hand-built context without ctx.foreign cannot skip the rule', () => {
    const module = createCaesarModule({ validatorIntermediates: { genesisHolders: [] } });
    const newcomer = makeValidator();
    const genesis = stakingGenesis({
      validators: [{ validator: makeValidator(), selfBond: 10_000n }],
      balances: [{ address: newcomer.account, amount: FUNDS }],
    });
    const prefix = new TextEncoder().encode('caesar/');
    const state = new Map(
      caesarInitialState(genesis).map(({ key, value }) => [
        Buffer.from(key.subarray(prefix.length)).toString('hex'),
        value,
      ]),
    );
    const ctx: CheckContext = {
      chainId: 'test-chain',
      height: 2,
      txHash: new Uint8Array(32),
      state: { get: (key) => state.get(Buffer.from(key).toString('hex')) ?? null },
    };
    const body = decodeCaesarBody(
      encodeStakingTx({
        op: 'create-validator',
        fee: 0n,
        bond: TEST_PARAMS.minValidatorStake,
        pqKey: newcomer.pqKey,
        commission: 0,
        storageRoot: newcomer.storageRoot,
      }),
    );
    assert.throws(() => module.check(ctx, body, newcomer.sender.publicKey), TypeError);
    // Without the option the same context registers it (the rule is the only difference).
    assert.doesNotThrow(() => createCaesarModule().check(ctx, body, newcomer.sender.publicKey));
  });
});
