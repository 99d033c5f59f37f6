import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { amountItem, bytesItem, mapItem, textItem, uintItem } from '../../src/caesar/cbor.js';
import {
  CAESAR_RESULT_CODES,
  CaesarError,
  CaesarErrorCode,
  CaesarGenesisError,
  CaesarGenesisErrorCode,
  CaesarStateError,
  DEFAULT_STAKING_PARAMS,
  JailReason,
  MAX_UNBONDING_ENTRIES,
  caesarBondedQuery,
  caesarDelegationQuery,
  caesarGenesisToJson,
  checkCaesarGenesis,
  checkStakingMatchesValidators,
  parseCaesarGenesis,
  caesarStakingParamsQuery,
  caesarUnbondingQuery,
  caesarUnbondingTotalQuery,
  caesarValidatorQuery,
  caesarValidatorSetQuery,
  caesarValidatorsQuery,
  decodeCaesarBody,
  decodeStakingParams,
  decodeValidatorRecord,
  encodeStakingParams,
  encodeStakingTx,
  verifyCaesarBonded,
  verifyCaesarDelegation,
  verifyCaesarStakingParams,
  verifyCaesarUnbonding,
  verifyCaesarUnbondingTotal,
  verifyCaesarValidator,
  verifyCaesarValidatorSet,
  verifyCaesarValidators,
} from '../../src/caesar/index.js';
import type { ValidatorRecord } from '../../src/caesar/index.js';
import { encodeValidatorRecord } from '../../src/caesar/staking-state.js';
import { decodeCanonical, encodeCanonical } from '../../src/codec/cbor.js';
import type { ValidatorUpdate } from '../../src/consensus/app.js';
import { toHex } from '../../src/crypto/bytes.js';
import { makeSender } from '../consensus/application/fixture.js';
import type { TestNode } from '../consensus/application/fixture.js';
import { TOKEN, addressOf, openCaesarNode, rawCaesarTx, transfer } from './caesar-fixture.js';
import {
  TEST_PARAMS,
  balanceOf,
  bondedOf,
  equivocation,
  feePoolOf,
  makeValidator,
  openStakingNode,
  recordOf,
  runBlock,
  stakingGenesis,
  stakingTx,
  supplyOf,
  unbondingOf,
  unbondingTotalOf,
} from './staking-fixture.js';
import type { TestValidator } from './staking-fixture.js';

const code = (error: CaesarErrorCode): number => CAESAR_RESULT_CODES[error];
const sortById = (updates: readonly ValidatorUpdate[]) =>
  updates.map((u) => ({
    key: toHex(u.publicKey),
    power: u.power,
    joins: u.pqPublicKey !== undefined,
  }));
const update = (validator: TestValidator, power: number, joins = false) => ({
  key: toHex(validator.sender.publicKey),
  power,
  joins,
});
const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : 1) as number;
const expectUpdates = (
  actual: readonly ValidatorUpdate[],
  expected: ReturnType<typeof update>[],
  message?: string,
) => {
  // Updates come in consensus-address order; compare as sets of (key, power, joins).
  assert.deepEqual([...sortById(actual)].sort(byKey), [...expected].sort(byKey), message);
};

/** Only the router's sequence keys changed (a refused transaction writes nothing else). */
function onlySequences(node: TestNode, result: ReturnType<typeof runBlock>): void {
  const keys = result.changes.map(({ key }) => new TextDecoder().decode(key.subarray(0, 5)));
  assert.ok(
    keys.every((key) => key === 'acct/'),
    `only sequences may change, got ${keys.join(', ')}`,
  );
  assert.ok(node.nextHeight() > 1);
}

describe('caesar staking: transactions and refusals', () => {
  it('refuses each bad staking transaction with its typed code, writing nothing but the sequence', async () => {
    const v1 = makeValidator();
    const v2 = makeValidator();
    const outsider = makeValidator();
    const delegator = makeSender();
    const node = await openStakingNode(
      stakingGenesis({
        validators: [
          { validator: v1, selfBond: 10_000n },
          { validator: v2, selfBond: 10_000n },
        ],
        balances: [
          { address: addressOf(delegator), amount: 1_000n },
          { address: outsider.account, amount: 500n },
        ],
      }),
    );
    try {
      runBlock(node); // height 1 writes the genesis state
      const cases: [string, Uint8Array, CaesarErrorCode][] = [
        [
          'a second validator for one key',
          stakingTx(v1.sender, {
            op: 'create-validator',
            fee: 0n,
            bond: 1n,
            pqKey: v1.pqKey,
            commission: 0,
            storageRoot: v1.storageRoot,
          }),
          CaesarErrorCode.VALIDATOR_EXISTS,
        ],
        [
          'a self-bond of 1 base unit, below minValidatorStake',
          stakingTx(outsider.sender, {
            op: 'create-validator',
            fee: 0n,
            bond: 1n,
            pqKey: outsider.pqKey,
            commission: 0,
            storageRoot: outsider.storageRoot,
          }),
          CaesarErrorCode.SELF_BOND_TOO_SMALL,
        ],
        [
          'a self-bond one base unit below minValidatorStake',
          stakingTx(outsider.sender, {
            op: 'create-validator',
            fee: 0n,
            bond: TEST_PARAMS.minValidatorStake - 1n,
            pqKey: outsider.pqKey,
            commission: 0,
            storageRoot: outsider.storageRoot,
          }),
          CaesarErrorCode.SELF_BOND_TOO_SMALL,
        ],
        [
          'a self-bond above the balance',
          stakingTx(outsider.sender, {
            op: 'create-validator',
            fee: 1n,
            bond: TEST_PARAMS.minValidatorStake,
            pqKey: outsider.pqKey,
            commission: 0,
            storageRoot: outsider.storageRoot,
          }),
          CaesarErrorCode.INSUFFICIENT_FUNDS,
        ],
        [
          'a commission above 100%',
          rawCaesarTx(
            outsider.sender,
            mapItem({
              op: textItem('create-validator'),
              fee: amountItem(0n),
              bond: amountItem(1n),
              pqKey: bytesItem(outsider.pqKey),
              commission: uintItem(10_001),
              storageRoot: bytesItem(outsider.storageRoot),
            }),
          ),
          CaesarErrorCode.INVALID_COMMISSION,
        ],
        [
          'a delegation to nobody',
          stakingTx(delegator, {
            op: 'delegate',
            fee: 0n,
            amount: 1n,
            validator: outsider.address,
          }),
          CaesarErrorCode.UNKNOWN_VALIDATOR,
        ],
        [
          'a delegation above the balance',
          stakingTx(delegator, { op: 'delegate', fee: 1n, amount: 1_000n, validator: v1.address }),
          CaesarErrorCode.INSUFFICIENT_FUNDS,
        ],
        [
          'an unbond from nobody',
          stakingTx(delegator, { op: 'unbond', fee: 0n, amount: 1n, validator: outsider.address }),
          CaesarErrorCode.UNKNOWN_VALIDATOR,
        ],
        [
          'an unbond without a delegation',
          stakingTx(delegator, { op: 'unbond', fee: 0n, amount: 1n, validator: v1.address }),
          CaesarErrorCode.INSUFFICIENT_BOND,
        ],
        [
          'an unbond above the self-bond',
          stakingTx(v2.sender, { op: 'unbond', fee: 0n, amount: 10_001n, validator: v2.address }),
          CaesarErrorCode.INSUFFICIENT_BOND,
        ],
        [
          'an unbond whose fee the balance cannot pay',
          stakingTx(v2.sender, { op: 'unbond', fee: 1n, amount: 1n, validator: v2.address }),
          CaesarErrorCode.INSUFFICIENT_FUNDS,
        ],
        [
          'an unjail of a validator that is not jailed',
          stakingTx(v1.sender, { op: 'unjail', fee: 0n }),
          CaesarErrorCode.NOT_JAILED,
        ],
        [
          'an unjail by a key that is no validator',
          stakingTx(delegator, { op: 'unjail', fee: 0n }),
          CaesarErrorCode.UNKNOWN_VALIDATOR,
        ],
        [
          'an unknown op',
          rawCaesarTx(delegator, mapItem({ op: textItem('redelegate'), fee: amountItem(0n) })),
          CaesarErrorCode.MALFORMED_BODY,
        ],
        [
          'a transfer field in a delegation',
          rawCaesarTx(
            delegator,
            mapItem({
              op: textItem('delegate'),
              to: bytesItem(new Uint8Array(32)),
              fee: amountItem(0n),
              amount: amountItem(1n),
              validator: bytesItem(v1.address),
            }),
          ),
          CaesarErrorCode.UNKNOWN_FIELD,
        ],
        [
          'a zero delegation',
          rawCaesarTx(
            delegator,
            mapItem({
              op: textItem('delegate'),
              fee: amountItem(0n),
              amount: amountItem(0n),
              validator: bytesItem(v1.address),
            }),
          ),
          CaesarErrorCode.ZERO_AMOUNT,
        ],
      ];
      for (const [name, transaction, expected] of cases) {
        const admission = node.app.checkTx(transaction);
        assert.equal(admission.ok, false, name);
        if (!admission.ok) assert.equal(admission.code, expected, `${name}: ${admission.message}`);
        const result = runBlock(node, [transaction]);
        assert.equal(
          result.txResults[0]!.code,
          code(expected),
          `${name}: ${result.txResults[0]!.log}`,
        );
        assert.match(result.txResults[0]!.log, new RegExp(`^${expected}: `), name);
        onlySequences(node, result);
      }
      assert.equal(balanceOf(node, addressOf(delegator)), 1_000n);
      assert.equal(bondedOf(node), 20_000n);

      // At most MAX_UNBONDING_ENTRIES waiting unbondings per delegator.
      const more = [
        stakingTx(delegator, { op: 'delegate', fee: 0n, amount: 100n, validator: v1.address }),
      ];
      for (let i = 0; i <= MAX_UNBONDING_ENTRIES; i++) {
        more.push(
          stakingTx(delegator, { op: 'unbond', fee: 0n, amount: 1n, validator: v1.address }),
        );
      }
      const result = runBlock(node, more);
      assert.deepEqual(
        result.txResults.map((r) => r.code),
        [
          ...new Array<number>(MAX_UNBONDING_ENTRIES + 1).fill(0),
          code(CaesarErrorCode.TOO_MANY_UNBONDING),
        ],
      );
      assert.equal(unbondingOf(node, addressOf(delegator)).length, MAX_UNBONDING_ENTRIES);
    } finally {
      await node.close();
    }
  });

  it('a chain without a staking section refuses staking transactions and pays no rewards', async () => {
    const v1 = makeValidator();
    const sender = makeSender();
    const node = await openCaesarNode({
      token: { ...TOKEN, supply: 1_000n },
      allocations: [{ address: addressOf(sender), amount: 1_000n }],
    });
    try {
      const delegate = stakingTx(sender, {
        op: 'delegate',
        fee: 0n,
        amount: 1n,
        validator: v1.address,
      });
      const result = runBlock(
        node,
        [delegate, transfer(sender, { to: v1.account, amount: 5n, fee: 3n })],
        {
          proposer: v1,
        },
      );
      assert.equal(result.txResults[0]!.code, code(CaesarErrorCode.STAKING_DISABLED));
      assert.deepEqual(result.validatorUpdates, []);
      assert.equal(feePoolOf(node), 3n, 'fees accumulate as before staking');
      assert.equal(supplyOf(node), 1_000n);
    } finally {
      await node.close();
    }
  });

  it('staking bodies round-trip and encodeStakingTx refuses what the decoder would', () => {
    const v = makeValidator();
    const bodies = [
      {
        op: 'create-validator',
        fee: 3n,
        bond: 1n << 100n,
        pqKey: v.pqKey,
        commission: 10_000,
        storageRoot: v.storageRoot,
      },
      { op: 'delegate', fee: 0n, amount: 5n, validator: v.address },
      { op: 'unbond', fee: 1n, amount: (1n << 128n) - 1n, validator: v.address },
      { op: 'unjail', fee: 0n },
    ] as const;
    for (const body of bodies) assert.deepEqual(decodeCaesarBody(encodeStakingTx(body)), body);
    const refused = (run: () => unknown, expected: CaesarErrorCode) =>
      assert.throws(
        run,
        (error: unknown) => error instanceof CaesarError && error.code === expected,
      );
    refused(
      () => encodeStakingTx({ op: 'delegate', fee: 0n, amount: 0n, validator: v.address }),
      CaesarErrorCode.ZERO_AMOUNT,
    );
    refused(
      () => encodeStakingTx({ op: 'delegate', fee: -1n, amount: 1n, validator: v.address }),
      CaesarErrorCode.INVALID_AMOUNT,
    );
    refused(
      () => encodeStakingTx({ op: 'unbond', fee: 0n, amount: 1n << 128n, validator: v.address }),
      CaesarErrorCode.AMOUNT_TOO_LARGE,
    );
    refused(
      () => encodeStakingTx({ op: 'unbond', fee: 0n, amount: 1n, validator: v.account }),
      CaesarErrorCode.MALFORMED_BODY,
    );
    refused(
      () => encodeStakingTx({ ...bodies[0], commission: 10_001 }),
      CaesarErrorCode.INVALID_COMMISSION,
    );
    refused(
      () => encodeStakingTx({ ...bodies[0], pqKey: new Uint8Array(1792) }),
      CaesarErrorCode.MALFORMED_BODY,
    );
    // Missing fee, fields out of order, a short storage root: refused by the decoder.
    refused(
      () => decodeCaesarBody(mapItem({ op: textItem('unjail') })),
      CaesarErrorCode.MALFORMED_BODY,
    );
    refused(
      () =>
        decodeCaesarBody(
          mapItem({
            op: textItem('create-validator'),
            fee: amountItem(0n),
            bond: amountItem(1n),
            pqKey: bytesItem(v.pqKey),
            commission: uintItem(1),
            storageRoot: bytesItem(new Uint8Array(31)),
          }),
        ),
      CaesarErrorCode.MALFORMED_BODY,
    );
  });
});

describe('caesar staking: epochs, unbonding and queries', () => {
  it('a new validator and a delegation change the set at the next epoch; an unbonding pays out at its exact height', async () => {
    const v1 = makeValidator();
    const v2 = makeValidator();
    const v3 = makeValidator();
    const delegator = makeSender();
    const d = addressOf(delegator);
    const node = await openStakingNode(
      stakingGenesis({
        validators: [
          { validator: v1, selfBond: 10_000n },
          { validator: v2, selfBond: 10_000n },
        ],
        balances: [
          { address: d, amount: 100_000n },
          { address: v3.account, amount: 50_000n },
        ],
      }),
    );
    try {
      const first = runBlock(node, [
        stakingTx(v3.sender, {
          op: 'create-validator',
          fee: 2n,
          bond: 20_000n,
          pqKey: v3.pqKey,
          commission: 500,
          storageRoot: v3.storageRoot,
        }),
        stakingTx(delegator, { op: 'delegate', fee: 1n, amount: 5_000n, validator: v1.address }),
      ]);
      assert.deepEqual(
        first.txResults.map((r) => r.code),
        [0, 0],
      );
      assert.deepEqual(first.validatorUpdates, [], 'height 1 is not an epoch');
      assert.equal(balanceOf(node, v3.account), 29_998n);
      assert.equal(balanceOf(node, d), 94_999n);
      assert.equal(feePoolOf(node), 3n, 'no staking validator proposed or signed: fees wait');
      assert.equal(bondedOf(node), 45_000n);
      assert.equal(recordOf(node, v1)!.tokens, 15_000n);
      assert.equal(recordOf(node, v3)!.power, 0);
      runBlock(node);
      assert.deepEqual(runBlock(node).validatorUpdates, []);
      const epoch = runBlock(node); // height 4
      expectUpdates(epoch.validatorUpdates, [update(v1, 150), update(v3, 200, true)]);
      const joined = epoch.validatorUpdates.find((u) => u.pqPublicKey !== undefined)!;
      assert.deepEqual(joined.pqPublicKey, v3.pqKey);
      assert.deepEqual(joined.storageRoot, v3.storageRoot);
      assert.equal(recordOf(node, v3)!.power, 200);

      // Height 5: the delegator unbonds all of it; it returns at the end of height 10.
      const unbond = runBlock(node, [
        stakingTx(delegator, { op: 'unbond', fee: 0n, amount: 5_000n, validator: v1.address }),
      ]);
      assert.equal(unbond.txResults[0]!.code, 0, unbond.txResults[0]!.log);
      assert.deepEqual(unbondingOf(node, d), [
        { validator: v1.address, amount: 5_000n, creationHeight: 5, completionHeight: 10 },
      ]);
      assert.equal(unbondingTotalOf(node), 5_000n);
      assert.equal(bondedOf(node), 40_000n);
      for (let height = 6; height <= 9; height++) {
        const result = runBlock(node);
        if (height === 8) expectUpdates(result.validatorUpdates, [update(v1, 100)]);
        assert.equal(balanceOf(node, d), 94_999n, `still waiting at height ${height}`);
      }
      runBlock(node); // height 10
      assert.equal(balanceOf(node, d), 99_999n);
      assert.deepEqual(unbondingOf(node, d), []);
      assert.equal(unbondingTotalOf(node), 0n);

      // Every answer is proven against the state root it was read at.
      const at = (request: { path: string; data: Uint8Array }) => node.app.query(request);
      const record = verifyCaesarValidator(v3.address, at(caesarValidatorQuery(v3.address)));
      assert.equal(record?.tokens, 20_000n);
      assert.equal(record?.commissionBps, 500);
      const nobody = makeValidator().address;
      assert.equal(verifyCaesarValidator(nobody, at(caesarValidatorQuery(nobody))), null);
      assert.equal(verifyCaesarValidators(at(caesarValidatorsQuery())).length, 3);
      assert.equal(verifyCaesarValidatorSet(at(caesarValidatorSetQuery())).length, 3);
      assert.equal(
        verifyCaesarDelegation(
          v3.address,
          v3.account,
          at(caesarDelegationQuery(v3.address, v3.account)),
        ),
        20_000n,
      );
      assert.equal(
        verifyCaesarDelegation(v1.address, d, at(caesarDelegationQuery(v1.address, d))),
        0n,
      );
      assert.deepEqual(verifyCaesarUnbonding(d, at(caesarUnbondingQuery(d))), []);
      assert.deepEqual(verifyCaesarStakingParams(at(caesarStakingParamsQuery())), TEST_PARAMS);
      assert.equal(verifyCaesarBonded(at(caesarBondedQuery())), 40_000n);
      assert.equal(verifyCaesarUnbondingTotal(at(caesarUnbondingTotalQuery(5))), 5_000n);
      // A tampered answer fails its proof.
      const answer = at(caesarBondedQuery());
      assert.throws(
        () => verifyCaesarBonded({ ...answer, value: Uint8Array.of(1) }),
        (error: unknown) => error instanceof CaesarStateError,
      );
      assert.throws(
        () => node.app.query({ path: 'caesar/validator', data: new Uint8Array(19) }),
        (error: unknown) =>
          error instanceof CaesarError && error.code === CaesarErrorCode.INVALID_QUERY,
      );
    } finally {
      await node.close();
    }
  });
});

describe('caesar staking: rewards', () => {
  it('mints blockReward and pays it with the fees to the signers by power, the proposer bonus and remainder first', async () => {
    const v1 = makeValidator();
    const v2 = makeValidator();
    const payer = makeSender();
    const genesis = stakingGenesis({
      params: { blockReward: 1_000n },
      validators: [
        { validator: v1, selfBond: 10_000n },
        { validator: v2, selfBond: 10_000n, commission: 1_000 },
      ],
      balances: [{ address: addressOf(payer), amount: 1_000n }],
    });
    const node = await openStakingNode(genesis);
    try {
      const supply = genesis.token.supply;
      const both = {
        signed: [
          { validator: v1, power: 100 },
          { validator: v2, power: 100 },
        ],
      };
      runBlock(node, [transfer(payer, { to: v1.account, amount: 10n, fee: 7n })], {
        proposer: v1,
        lastCommit: both,
      });
      // Pot 1007: bonus 100 to v1; 907 split 453 + 453 by power, the remainder 1 to v1.
      assert.equal(recordOf(node, v1)!.tokens, 10_554n);
      // v2: 453, commission 10% = 45 (floor) to its operator, 408 compounds.
      assert.equal(recordOf(node, v2)!.tokens, 10_408n);
      assert.equal(balanceOf(node, v2.account), 45n);
      assert.equal(balanceOf(node, v1.account), 10n);
      assert.equal(feePoolOf(node), 0n);
      assert.equal(supplyOf(node), supply + 1_000n);
      assert.equal(bondedOf(node), 20_962n);

      // One base unit buys no share of v1 now (a share is worth more than a unit).
      const small = runBlock(
        node,
        [stakingTx(payer, { op: 'delegate', fee: 0n, amount: 1n, validator: v1.address })],
        { proposer: v1 },
      );
      assert.equal(small.txResults[0]!.code, code(CaesarErrorCode.INVALID_DELEGATION));
      assert.equal(supplyOf(node), supply + 2_000n, 'v1 proposed alone: it took all 1000');
      assert.equal(recordOf(node, v1)!.tokens, 11_554n);

      // No lastCommit and no staking proposer: nothing minted, nothing paid.
      runBlock(node);
      assert.equal(supplyOf(node), supply + 2_000n);
      // No lastCommit, proposer v2: it takes everything, less its commission.
      runBlock(node, [], { proposer: v2 });
      assert.equal(recordOf(node, v2)!.tokens, 10_408n + 900n);
      assert.equal(balanceOf(node, v2.account), 145n);
    } finally {
      await node.close();
    }
  });
});

describe('caesar staking: slashing and jailing', () => {
  it('equivocation burns the fraction of stake and of the unbondings that backed its power, jails, and unjail waits jailBlocks', async () => {
    const v1 = makeValidator();
    const v2 = makeValidator();
    const v3 = makeValidator();
    const delegator = makeSender();
    const d = addressOf(delegator);
    const genesis = stakingGenesis({
      validators: [
        { validator: v1, selfBond: 10_000n },
        { validator: v2, selfBond: 10_000n },
        { validator: v3, selfBond: 10_000n },
      ],
      balances: [{ address: d, amount: 5_000n }],
    });
    const node = await openStakingNode(genesis);
    try {
      const supply = genesis.token.supply;
      const unbond = (amount: bigint) =>
        stakingTx(delegator, { op: 'unbond', fee: 0n, amount, validator: v1.address });
      runBlock(node, [
        stakingTx(delegator, { op: 'delegate', fee: 0n, amount: 1_000n, validator: v1.address }),
      ]);
      // The offence at 3 votes with the genesis power (block 4's set counts from 6), so both
      // unbondings, begun after it was set, are slashed (test/caesar/slashing.test.ts).
      runBlock(node, [unbond(400n)]); // height 2: before the offence
      runBlock(node);
      runBlock(node, [unbond(100n)]); // height 4: after the offence
      assert.equal(recordOf(node, v1)!.tokens, 10_500n);
      const slashed = runBlock(node, [], { evidence: [equivocation(v1, 3), equivocation(v1, 3)] }); // 5
      const record = recordOf(node, v1)!;
      // 10% of the 10,000 behind the genesis power it voted with at 3: 50 from the unbondings,
      // 950 from the 10,500 bonded now (the delegation of block 1 did not back that power).
      assert.equal(record.tokens, 9_550n, '1,000 burnt in all');
      assert.equal(record.jailed, JailReason.EQUIVOCATION);
      assert.equal(record.jailedUntil, 8);
      assert.deepEqual(
        unbondingOf(node, d).map((e) => [e.creationHeight, e.amount]),
        [
          [2, 360n],
          [4, 90n],
        ],
      );
      assert.equal(supplyOf(node), supply - 1_000n);
      assert.equal(bondedOf(node), 29_550n);
      assert.equal(unbondingTotalOf(node), 450n);
      expectUpdates(slashed.validatorUpdates, [update(v1, 0)], 'removed at once');
      assert.equal(recordOf(node, v1)!.power, 0);

      // Jailed for equivocation already: further evidence does not slash again.
      const unjail = stakingTx(v1.sender, { op: 'unjail', fee: 0n });
      const early = runBlock(node, [unjail], { evidence: [equivocation(v1, 4)] }); // 6
      assert.equal(early.txResults[0]!.code, code(CaesarErrorCode.JAIL_NOT_OVER));
      assert.equal(recordOf(node, v1)!.tokens, 9_550n);
      const seventh = runBlock(node, [stakingTx(v1.sender, { op: 'unjail', fee: 0n })]); // 7
      assert.equal(seventh.txResults[0]!.code, code(CaesarErrorCode.JAIL_NOT_OVER));
      assert.equal(balanceOf(node, d), 4_360n, 'the first unbonding paid out at height 7');
      const back = runBlock(node, [stakingTx(v1.sender, { op: 'unjail', fee: 0n })]); // 8: epoch
      assert.equal(back.txResults[0]!.code, 0, back.txResults[0]!.log);
      assert.equal(recordOf(node, v1)!.jailed, JailReason.NONE);
      expectUpdates(back.validatorUpdates, [update(v1, 95, true)], 'rejoins at the epoch');
      runBlock(node); // 9
      assert.equal(balanceOf(node, d), 4_450n, 'the second unbonding paid out at height 9');
      assert.equal(unbondingTotalOf(node), 0n);
    } finally {
      await node.close();
    }
  });

  it('missing more than maxMissed of the window jails without slashing, at the exact block', async () => {
    const v1 = makeValidator();
    const v2 = makeValidator();
    const v3 = makeValidator();
    const node = await openStakingNode(
      stakingGenesis({
        validators: [v1, v2, v3].map((validator) => ({ validator, selfBond: 10_000n })),
        balances: [],
      }),
    );
    try {
      const signer = (v: TestValidator) => ({ validator: v, power: 100 });
      const commit = (missed: boolean) => ({
        signed: missed ? [signer(v1), signer(v2)] : [signer(v1), signer(v2), signer(v3)],
        missed: missed ? [signer(v3)] : [],
      });
      // Blocks 5..11 carry the commits of 4..10; window 4, maxMissed 2.
      for (let i = 0; i < 4; i++) runBlock(node);
      const pattern = [true, true, false, false, true, true, true];
      for (const [i, missed] of pattern.entries()) {
        const height = 5 + i;
        const result = runBlock(node, [], { lastCommit: commit(missed) });
        const jailed = recordOf(node, v3)!.jailed;
        if (height < 11) {
          assert.equal(jailed, JailReason.NONE, `height ${height}: at most 2 misses in the window`);
          if (height !== 8) assert.deepEqual(result.validatorUpdates, []);
        } else {
          assert.equal(jailed, JailReason.DOWNTIME, 'three misses of the last four commits');
          assert.equal(recordOf(node, v3)!.jailedUntil, 14);
          assert.equal(recordOf(node, v3)!.tokens, 10_000n, 'not slashed');
          expectUpdates(result.validatorUpdates, [update(v3, 0)]);
        }
      }
    } finally {
      await node.close();
    }
  });

  it('never empties its set: the last validator stays when jailed', async () => {
    const v1 = makeValidator();
    const node = await openStakingNode(
      stakingGenesis({ validators: [{ validator: v1, selfBond: 10_000n }], balances: [] }),
    );
    try {
      const result = runBlock(node, [], { evidence: [equivocation(v1, 1)] });
      assert.equal(recordOf(node, v1)!.jailed, JailReason.EQUIVOCATION);
      assert.deepEqual(result.validatorUpdates, []);
      for (let i = 0; i < 4; i++) assert.deepEqual(runBlock(node).validatorUpdates, []);
      assert.equal(recordOf(node, v1)!.power, 100);
    } finally {
      await node.close();
    }
  });
});

describe('caesar staking: genesis', () => {
  const v1 = makeValidator();
  const v2 = makeValidator();
  const holder = makeSender();
  const genesis = stakingGenesis({
    validators: [
      { validator: v1, selfBond: 10_000n, commission: 250 },
      { validator: v2, selfBond: 20_000n },
    ],
    balances: [{ address: addressOf(holder), amount: 70_000n }],
  });

  it('round-trips through JSON; omitted parameters take their defaults', () => {
    const json = caesarGenesisToJson(genesis);
    assert.equal(json.staking?.validators.length, 2);
    assert.equal(json.staking?.params?.['powerUnit'], '100');
    assert.deepEqual(
      parseCaesarGenesis(JSON.parse(JSON.stringify(json))),
      checkCaesarGenesis(genesis),
    );
    const bare = JSON.parse(JSON.stringify({ ...json, staking: { validators: [] } })) as unknown;
    const parsed = parseCaesarGenesis({
      ...(bare as object),
      token: { ...json.token, supply: '70000' },
    });
    assert.deepEqual(parsed.staking?.params, DEFAULT_STAKING_PARAMS);
  });

  it('refuses bad staking sections with typed errors', () => {
    const json = caesarGenesisToJson(genesis);
    const staking = json.staking!;
    const cases: [string, unknown, CaesarGenesisErrorCode][] = [
      [
        'an unknown parameter',
        { ...staking, params: { ...staking.params, quorum: 1 } },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'maxMissed not below the window',
        { ...staking, params: { ...staking.params, maxMissed: 4 } },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'a 100% slash',
        { ...staking, params: { ...staking.params, slashFractionBps: 10_000 } },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'epochs longer than a slash looks back (899 blocks)',
        { ...staking, params: { ...staking.params, epochBlocks: 900 } },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'a float reward',
        { ...staking, params: { ...staking.params, blockReward: 1.5 } },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'a key twice',
        { ...staking, validators: [staking.validators[0], staking.validators[0]] },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'a self-bond below minValidatorStake',
        {
          ...staking,
          validators: [{ ...staking.validators[0]!, selfBond: '999' }, staking.validators[1]],
        },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'a short FALCON key',
        { ...staking, validators: [{ ...staking.validators[0]!, pqPublicKey: 'ab' }] },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'more validators than maxValidators',
        { ...staking, params: { ...staking.params, maxValidators: 1 } },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'self-bonds that break the supply',
        {
          ...staking,
          validators: [{ ...staking.validators[0]!, selfBond: '10001' }, staking.validators[1]],
        },
        CaesarGenesisErrorCode.SUPPLY_MISMATCH,
      ],
    ];
    for (const [name, section, expected] of cases) {
      assert.throws(
        () => parseCaesarGenesis({ ...json, staking: section }),
        (error: unknown) => error instanceof CaesarGenesisError && error.code === expected,
        name,
      );
    }
  });

  it('checks that the staking validators are the consensus genesis validators', () => {
    const consensus = [
      {
        publicKey: v1.sender.publicKey,
        pqPublicKey: v1.pqKey,
        storageRoot: v1.storageRoot,
        power: 100,
      },
      {
        publicKey: v2.sender.publicKey,
        pqPublicKey: v2.pqKey,
        storageRoot: v2.storageRoot,
        power: 200,
      },
    ];
    const checked = checkCaesarGenesis(genesis);
    checkStakingMatchesValidators(checked, consensus);
    const mismatched: [string, typeof consensus][] = [
      ['another power', [consensus[0]!, { ...consensus[1]!, power: 201 }]],
      ['a missing validator', [consensus[0]!]],
      ['another FALCON key', [consensus[0]!, { ...consensus[1]!, pqPublicKey: v1.pqKey }]],
      ['another storage root', [consensus[0]!, { ...consensus[1]!, storageRoot: v1.storageRoot }]],
      ['another key', [consensus[0]!, { ...consensus[1]!, publicKey: makeSender().publicKey }]],
    ];
    for (const [name, validators] of mismatched) {
      assert.throws(
        () => checkStakingMatchesValidators(checked, validators),
        (error: unknown) =>
          error instanceof CaesarGenesisError &&
          error.code === CaesarGenesisErrorCode.VALIDATOR_MISMATCH,
        name,
      );
    }
    // Without a staking section there is nothing to match.
    checkStakingMatchesValidators({ token: genesis.token, allocations: [] }, consensus);
  });
});

describe('caesar staking: commission changes (edit-validator)', () => {
  const editTx = (validator: TestValidator, commission: number, fee = 0n) =>
    stakingTx(validator.sender, { op: 'edit-validator', fee, commission });

  it('changes the commission within maxCommissionChangeBps, once per epochBlocks; refusals write nothing', async () => {
    const v1 = makeValidator();
    const v2 = makeValidator();
    const outsider = makeSender();
    const node = await openStakingNode(
      stakingGenesis({
        // epochBlocks 4 (TEST_PARAMS); a step bound that is not the default.
        params: { maxCommissionChangeBps: 150 },
        validators: [
          { validator: v1, selfBond: 10_000n, commission: 500 },
          { validator: v2, selfBond: 10_000n },
        ],
        balances: [
          { address: v1.account, amount: 1_000n },
          { address: addressOf(outsider), amount: 1_000n },
        ],
      }),
    );
    try {
      runBlock(node); // height 1 writes the genesis state
      assert.equal(recordOf(node, v1)!.commissionChangedAt, undefined, 'genesis: no change yet');

      // Height 2: 5% -> 6.5%, the largest step up.
      const accepted = runBlock(node, [editTx(v1, 650, 3n)]);
      const result = accepted.txResults[0]!;
      assert.equal(result.code, 0, result.log);
      assert.deepEqual(result.events, [
        {
          type: 'caesar/edit-validator',
          attributes: {
            validator: v1.id,
            operator: toHex(v1.account),
            oldCommissionBps: '500',
            newCommissionBps: '650',
          },
          accounts: [v1.account],
        },
        {
          type: 'caesar/fee',
          attributes: { payer: toHex(v1.account), amount: '3' },
          accounts: [v1.account],
        },
      ]);
      const record = recordOf(node, v1)!;
      assert.equal(record.commissionBps, 650);
      assert.equal(record.commissionChangedAt, 2);
      assert.equal(record.tokens, 10_000n, 'the stake does not move');
      assert.equal(balanceOf(node, v1.account), 997n);
      assert.equal(feePoolOf(node), 3n);

      const refusedAt = (
        name: string,
        transaction: Uint8Array,
        expected: CaesarErrorCode,
        admission = true,
      ) => {
        if (admission) {
          const checked = node.app.checkTx(transaction);
          assert.equal(checked.ok, false, name);
          if (!checked.ok) assert.equal(checked.code, expected, `${name}: ${checked.message}`);
        }
        const block = runBlock(node, [transaction]);
        const txResult = block.txResults[0]!;
        assert.equal(txResult.code, code(expected), `${name}: ${txResult.log}`);
        assert.match(txResult.log, new RegExp(`^${expected}: `), name);
        assert.equal(txResult.events, undefined, `${name}: no events`);
        onlySequences(node, block);
      };
      // Heights 3..5 are within epochBlocks (4) of the change at 2: refused, even a step down.
      refusedAt(
        'a second change at height 3',
        editTx(v1, 600),
        CaesarErrorCode.COMMISSION_CHANGE_TOO_SOON,
      );
      refusedAt('a step of 151', editTx(v2, 151), CaesarErrorCode.COMMISSION_CHANGE_TOO_LARGE);
      refusedAt(
        'a second change at height 5',
        editTx(v1, 650),
        CaesarErrorCode.COMMISSION_CHANGE_TOO_SOON,
      );
      assert.deepEqual(recordOf(node, v1), record, 'refusals leave the record as it was');
      assert.equal(node.nextHeight(), 6);
      // Height 6 = 2 + epochBlocks: accepted again, a step down of the full bound.
      const again = runBlock(node, [editTx(v1, 500)]);
      assert.equal(again.txResults[0]!.code, 0, again.txResults[0]!.log);
      assert.equal(recordOf(node, v1)!.commissionBps, 500);
      assert.equal(recordOf(node, v1)!.commissionChangedAt, 6);

      const cases: [string, Uint8Array, CaesarErrorCode][] = [
        [
          'a key that is no validator',
          stakingTx(outsider, { op: 'edit-validator', fee: 0n, commission: 0 }),
          CaesarErrorCode.UNKNOWN_VALIDATOR,
        ],
        ['a fee above the balance', editTx(v2, 100, 1n), CaesarErrorCode.INSUFFICIENT_FUNDS],
        [
          'a commission above 100%',
          rawCaesarTx(
            v2.sender,
            mapItem({
              op: textItem('edit-validator'),
              fee: amountItem(0n),
              commission: uintItem(10_001),
            }),
          ),
          CaesarErrorCode.INVALID_COMMISSION,
        ],
        [
          'an unknown field',
          rawCaesarTx(
            v2.sender,
            mapItem({
              op: textItem('edit-validator'),
              fee: amountItem(0n),
              commission: uintItem(100),
              validator: bytesItem(v2.address),
            }),
          ),
          CaesarErrorCode.UNKNOWN_FIELD,
        ],
        [
          'a missing commission',
          rawCaesarTx(v2.sender, mapItem({ op: textItem('edit-validator'), fee: amountItem(0n) })),
          CaesarErrorCode.MALFORMED_BODY,
        ],
        [
          'a missing fee',
          rawCaesarTx(
            v2.sender,
            mapItem({ op: textItem('edit-validator'), commission: uintItem(100) }),
          ),
          CaesarErrorCode.MALFORMED_BODY,
        ],
        [
          'a commission not in its shortest form (not canonical)',
          rawCaesarTx(
            v2.sender,
            mapItem({
              op: textItem('edit-validator'),
              fee: amountItem(0n),
              commission: Uint8Array.of(0x19, 0x00, 0x64),
            }),
          ),
          CaesarErrorCode.MALFORMED_BODY,
        ],
      ];
      for (const [name, transaction, expected] of cases) refusedAt(name, transaction, expected);
      assert.equal(recordOf(node, v2)!.commissionBps, 0);
      assert.equal(recordOf(node, v2)!.commissionChangedAt, undefined);
      assert.equal(balanceOf(node, addressOf(outsider)), 1_000n);

      // v2 may still make its first change, at any height.
      const first = runBlock(node, [editTx(v2, 150)]);
      assert.equal(first.txResults[0]!.code, 0, first.txResults[0]!.log);
      assert.equal(recordOf(node, v2)!.commissionBps, 150);
    } finally {
      await node.close();
    }
  });

  it('the rewards paid from the block that applies the change on use the new commission', async () => {
    const v1 = makeValidator();
    const node = await openStakingNode(
      stakingGenesis({
        params: { blockReward: 1_000n },
        validators: [{ validator: v1, selfBond: 10_000n, commission: 1_000 }],
        balances: [],
      }),
    );
    try {
      // v1 proposes alone without a commit: it takes each block's 1,000.
      runBlock(node, [], { proposer: v1 });
      assert.equal(balanceOf(node, v1.account), 100n, '10% of 1,000');
      assert.equal(recordOf(node, v1)!.tokens, 10_900n);
      const changed = runBlock(node, [editTx(v1, 1_100)], { proposer: v1 });
      assert.equal(changed.txResults[0]!.code, 0, changed.txResults[0]!.log);
      assert.equal(balanceOf(node, v1.account), 210n, '+ 11% of 1,000 in the same block');
      assert.equal(recordOf(node, v1)!.tokens, 11_790n);
      runBlock(node, [], { proposer: v1 });
      assert.equal(balanceOf(node, v1.account), 320n);
      assert.equal(recordOf(node, v1)!.tokens, 12_680n);
    } finally {
      await node.close();
    }
  });

  it('a record or parameter set from before edit-validator keeps its bytes and decodes', () => {
    const v = makeValidator();
    const old: ValidatorRecord = {
      publicKey: v.sender.publicKey,
      pqPublicKey: v.pqKey,
      storageRoot: v.storageRoot,
      commissionBps: 300,
      tokens: 5n,
      shares: 5n,
      power: 0,
      jailed: JailReason.NONE,
      jailedUntil: 0,
    };
    const oldBytes = encodeValidatorRecord(old);
    assert.equal(oldBytes[0], 0xa9, 'nine fields, as before the op');
    assert.deepEqual(decodeValidatorRecord(oldBytes), old);
    const changed = { ...old, commissionChangedAt: 12 };
    const changedBytes = encodeValidatorRecord(changed);
    assert.equal(changedBytes[0], 0xaa, 'ten fields with the change height');
    assert.deepEqual(decodeValidatorRecord(changedBytes), changed);
    const corrupt = (value: Uint8Array) =>
      assert.throws(
        () => decodeValidatorRecord(value),
        (error: unknown) => error instanceof CaesarStateError,
      );
    corrupt(encodeCanonical({ ...(decodeCanonical(oldBytes) as object), changed: -1 }));
    corrupt(encodeCanonical({ ...(decodeCanonical(oldBytes) as object), other: 1 }));

    // Parameters: maxCommissionChangeBps is stored only when it is not the default (100).
    const { maxCommissionChangeBps: _omitted, ...before } = TEST_PARAMS;
    const oldParams = mapItem(
      Object.fromEntries(
        Object.entries(before).map(([name, value]) => [
          name,
          typeof value === 'bigint' ? amountItem(value) : uintItem(value),
        ]),
      ),
    );
    assert.deepEqual(encodeStakingParams(TEST_PARAMS), oldParams);
    assert.deepEqual(decodeStakingParams(oldParams), {
      ...TEST_PARAMS,
      maxCommissionChangeBps: 100,
    });
    const other = { ...TEST_PARAMS, maxCommissionChangeBps: 0 };
    assert.deepEqual(decodeStakingParams(encodeStakingParams(other)), other);
    const atDefault = mapItem({
      ...Object.fromEntries(
        Object.entries(before).map(([name, value]) => [
          name,
          typeof value === 'bigint' ? amountItem(value) : uintItem(value),
        ]),
      ),
      maxCommissionChangeBps: uintItem(100),
    });
    assert.throws(
      () => decodeStakingParams(atDefault),
      (error: unknown) => error instanceof CaesarStateError,
      'the default written out is not canonical',
    );
  });

  it('edit-validator bodies round-trip; the encoder refuses a commission above 100%', () => {
    const body = { op: 'edit-validator', fee: 7n, commission: 10_000 } as const;
    assert.deepEqual(decodeCaesarBody(encodeStakingTx(body)), body);
    assert.throws(
      () => encodeStakingTx({ ...body, commission: 10_001 }),
      (error: unknown) =>
        error instanceof CaesarError && error.code === CaesarErrorCode.INVALID_COMMISSION,
    );
    assert.throws(
      () => encodeStakingTx({ ...body, commission: 1.5 }),
      (error: unknown) =>
        error instanceof CaesarError && error.code === CaesarErrorCode.INVALID_COMMISSION,
    );
  });

  it('genesis JSON takes maxCommissionChangeBps (default 100, bounds 0 to 10,000)', () => {
    const v = makeValidator();
    const json = caesarGenesisToJson(
      stakingGenesis({ validators: [{ validator: v, selfBond: 10_000n }], balances: [] }),
    );
    const staking = json.staking!;
    assert.equal(staking.params?.['maxCommissionChangeBps'], 100);
    const parsed = parseCaesarGenesis({
      ...json,
      staking: { ...staking, params: { ...staking.params, maxCommissionChangeBps: 10_000 } },
    });
    assert.equal(parsed.staking?.params.maxCommissionChangeBps, 10_000);
    for (const bad of [-1, 10_001, 1.5]) {
      assert.throws(
        () =>
          parseCaesarGenesis({
            ...json,
            staking: { ...staking, params: { ...staking.params, maxCommissionChangeBps: bad } },
          }),
        (error: unknown) =>
          error instanceof CaesarGenesisError && error.code === CaesarGenesisErrorCode.INVALID,
        String(bad),
      );
    }
  });
});
