import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  VoteOption,
  encodeGovTx,
  formatAddress,
  formatConsensusAddress,
} from '../../src/caesar/index.js';
import type { CaesarGenesis, ParamChange } from '../../src/caesar/index.js';
import type { BlockExecutionResult, TxEvent } from '../../src/consensus/app.js';
import { makeSender, openNode, tx } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { createCaesarModule, caesarInitialState } from '../../src/caesar/index.js';
import { TOKEN, addressOf, openCaesarNode, rawCaesarTx, transfer } from './caesar-fixture.js';
import { TEST_GOV } from './gov-fixture.js';
import {
  blockInput,
  equivocation,
  makeValidator,
  openStakingNode,
  recordOf,
  runBlock,
  stakingGenesis,
  stakingTx,
} from './staking-fixture.js';
import type { TestValidator } from './staking-fixture.js';

/**
 * The events Caesar puts in receipts (docs/caesar.md, "Events"): exactly these, in this order,
 * for every kind of applied transaction; none for a refused one; the same on every node.
 */

const hexOf = formatAddress;

function eventsOf(result: BlockExecutionResult, index: number): readonly TxEvent[] | undefined {
  const txResult = result.txResults[index];
  assert.ok(txResult !== undefined, `transaction ${index} has a result`);
  return txResult.events;
}

function applied(result: BlockExecutionResult, index: number): readonly TxEvent[] {
  const txResult = result.txResults[index]!;
  assert.equal(txResult.code, 0, `transaction ${index} applies: ${txResult.log}`);
  return txResult.events ?? [];
}

function refused(result: BlockExecutionResult, index: number): void {
  const txResult = result.txResults[index]!;
  assert.notEqual(txResult.code, 0, `transaction ${index} is refused`);
  assert.equal(eventsOf(result, index), undefined, 'a refused transaction has no events');
}

const ev = (
  type: string,
  attributes: Record<string, string>,
  accounts: readonly Uint8Array[],
): TxEvent => ({ type: `caesar/${type}`, attributes, accounts: [...accounts] });

describe('caesar events: transfers', () => {
  it('a transfer with a fee emits transfer then fee, naming both accounts', async () => {
    const alice = makeSender();
    const bob = makeSender();
    const genesis: CaesarGenesis = {
      token: { ...TOKEN, supply: 1_000n },
      allocations: [{ address: addressOf(alice), amount: 1_000n }],
    };
    const node = await openCaesarNode(genesis);
    try {
      node.executeAndCommit([]);
      const [from, to] = [addressOf(alice), addressOf(bob)];
      const result = node.executeAndCommit([
        transfer(alice, { to, amount: 150n, fee: 7n }),
        transfer(alice, { to, amount: 3n }),
        transfer(alice, { to, amount: 10_000n }),
        transfer(alice, { to: from, amount: 1n }),
        rawCaesarTx(alice, new Uint8Array([0xa0])),
      ]);
      assert.deepEqual(applied(result, 0), [
        ev('transfer', { from: hexOf(from), to: hexOf(to), amount: '150' }, [from, to]),
        ev('fee', { payer: hexOf(from), amount: '7' }, [from]),
      ]);
      // No fee, no fee event.
      assert.deepEqual(applied(result, 1), [
        ev('transfer', { from: hexOf(from), to: hexOf(to), amount: '3' }, [from, to]),
      ]);
      refused(result, 2); // insufficient funds
      refused(result, 3); // self transfer
      refused(result, 4); // malformed body
    } finally {
      await node.close();
    }
  });

  it('amounts up to 2^128 - 1 are written as exact decimal strings', async () => {
    const alice = makeSender();
    const bob = makeSender();
    const max = 2n ** 128n - 1n;
    const node = await openCaesarNode({
      token: { ...TOKEN, supply: max },
      allocations: [{ address: addressOf(alice), amount: max }],
    });
    try {
      node.executeAndCommit([]);
      const result = node.executeAndCommit([
        transfer(alice, { to: addressOf(bob), amount: max - 1n, fee: 1n }),
      ]);
      const events = applied(result, 0);
      assert.equal(events[0]?.attributes['amount'], (max - 1n).toString());
      assert.equal(events[1]?.attributes['amount'], '1');
    } finally {
      await node.close();
    }
  });
});

interface StakingChain {
  readonly node: TestNode;
  readonly v1: TestValidator;
  readonly alice: Sender;
}

async function openStakingChain(): Promise<StakingChain> {
  const v1 = makeValidator();
  const alice = makeSender();
  const node = await openStakingNode({
    ...stakingGenesis({
      validators: [{ validator: v1, selfBond: 10_000n }],
      balances: [
        { address: addressOf(alice), amount: 50_000n },
        { address: v1.account, amount: 1_000n },
      ],
    }),
    governance: TEST_GOV,
  });
  runBlock(node);
  return { node, v1, alice };
}

describe('caesar events: staking and governance', () => {
  it('create-validator, delegate, self-bond and unbond name the delegator and the operator', async () => {
    const { node, v1, alice } = await openStakingChain();
    try {
      const v2 = makeValidator();
      const a = addressOf(alice);
      const fund = runBlock(node, [transfer(alice, { to: v2.account, amount: 20_000n })]);
      applied(fund, 0);
      const result = runBlock(node, [
        stakingTx(v2.sender, {
          op: 'create-validator',
          fee: 2n,
          bond: 5_000n,
          pqKey: v2.pqKey,
          commission: 250,
          storageRoot: v2.storageRoot,
        }),
        stakingTx(alice, { op: 'delegate', fee: 0n, amount: 2_000n, validator: v1.address }),
        stakingTx(v1.sender, { op: 'delegate', fee: 1n, amount: 500n, validator: v1.address }),
        stakingTx(alice, {
          op: 'delegate',
          fee: 0n,
          amount: 1n,
          validator: v2.pqKey.subarray(0, 20),
        }),
      ]);
      assert.deepEqual(applied(result, 0), [
        ev(
          'create-validator',
          {
            validator: formatConsensusAddress(v2.address),
            operator: hexOf(v2.account),
            bond: '5000',
            commissionBps: '250',
          },
          [v2.account],
        ),
        ev('fee', { payer: hexOf(v2.account), amount: '2' }, [v2.account]),
      ]);
      assert.deepEqual(applied(result, 1), [
        ev(
          'delegate',
          {
            delegator: hexOf(a),
            validator: formatConsensusAddress(v1.address),
            operator: hexOf(v1.account),
            amount: '2000',
            shares: '2000',
          },
          [a, v1.account],
        ),
      ]);
      // A self-bond: the delegator is the operator, named once.
      assert.deepEqual(applied(result, 2), [
        ev(
          'delegate',
          {
            delegator: hexOf(v1.account),
            validator: formatConsensusAddress(v1.address),
            operator: hexOf(v1.account),
            amount: '500',
            shares: '500',
          },
          [v1.account],
        ),
        ev('fee', { payer: hexOf(v1.account), amount: '1' }, [v1.account]),
      ]);
      refused(result, 3); // no such validator

      const height = node.nextHeight();
      const unbonded = runBlock(node, [
        stakingTx(alice, { op: 'unbond', fee: 3n, amount: 2_000n, validator: v1.address }),
        stakingTx(alice, { op: 'unbond', fee: 0n, amount: 1n, validator: v1.address }),
      ]);
      assert.deepEqual(applied(unbonded, 0), [
        ev(
          'unbond',
          {
            delegator: hexOf(a),
            validator: formatConsensusAddress(v1.address),
            operator: hexOf(v1.account),
            amount: '2000',
            shares: '2000',
            completionHeight: String(height + 5),
          },
          [a, v1.account],
        ),
        ev('fee', { payer: hexOf(a), amount: '3' }, [a]),
      ]);
      refused(unbonded, 1); // nothing left to unbond
    } finally {
      await node.close();
    }
  });

  it('unjail after an equivocation; the slash itself is in no receipt', async () => {
    const { node, v1 } = await openStakingChain();
    try {
      const at = node.nextHeight();
      const slashed = runBlock(node, [], { evidence: [equivocation(v1, at - 1)] });
      assert.deepEqual(slashed.txResults, [], 'end-of-block effects have no transaction');
      const until = recordOf(node, v1)!.jailedUntil;
      const early = runBlock(node, [stakingTx(v1.sender, { op: 'unjail', fee: 0n })]);
      refused(early, 0);
      while (node.nextHeight() < until) runBlock(node);
      const result = runBlock(node, [stakingTx(v1.sender, { op: 'unjail', fee: 4n })]);
      assert.deepEqual(applied(result, 0), [
        ev(
          'unjail',
          { validator: formatConsensusAddress(v1.address), operator: hexOf(v1.account) },
          [v1.account],
        ),
        ev('fee', { payer: hexOf(v1.account), amount: '4' }, [v1.account]),
      ]);
    } finally {
      await node.close();
    }
  });

  it('submit-proposal and vote; refused governance transactions have none', async () => {
    const { node, v1, alice } = await openStakingChain();
    try {
      const a = addressOf(alice);
      const height = node.nextHeight();
      const changes: ParamChange[] = [{ name: 'epochBlocks', value: 2n }];
      const gov = (sender: Sender, body: Parameters<typeof encodeGovTx>[0]) =>
        tx(sender, encodeGovTx(body), { module: 'caesar' });
      const result = runBlock(node, [
        gov(alice, {
          op: 'gov/submit-proposal',
          fee: 5n,
          title: 'faster epochs',
          changes,
          deposit: 100n,
        }),
        gov(v1.sender, { op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES }),
        gov(alice, { op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.NO }),
        gov(v1.sender, { op: 'gov/vote', fee: 1n, proposal: 1, option: VoteOption.ABSTAIN }),
        gov(v1.sender, { op: 'gov/vote', fee: 0n, proposal: 9, option: VoteOption.YES }),
      ]);
      assert.deepEqual(applied(result, 0), [
        ev(
          'submit-proposal',
          {
            proposal: '1',
            proposer: hexOf(a),
            title: 'faster epochs',
            deposit: '100',
            votingEnd: String(height + TEST_GOV.votingPeriod),
            executeHeight: String(height + TEST_GOV.votingPeriod + TEST_GOV.timelock),
          },
          [a],
        ),
        ev('fee', { payer: hexOf(a), amount: '5' }, [a]),
      ]);
      assert.deepEqual(applied(result, 1), [
        ev('vote', { proposal: '1', voter: hexOf(v1.account), option: 'yes' }, [v1.account]),
      ]);
      refused(result, 2); // Alice has no bonded stake
      assert.deepEqual(applied(result, 3), [
        ev('vote', { proposal: '1', voter: hexOf(v1.account), option: 'abstain' }, [v1.account]),
        ev('fee', { payer: hexOf(v1.account), amount: '1' }, [v1.account]),
      ]);
      refused(result, 4); // no proposal 9
    } finally {
      await node.close();
    }
  });
});

describe('caesar events: determinism', () => {
  it('two nodes executing the same blocks record the same events', async () => {
    const v1 = makeValidator();
    const alice = makeSender();
    const bob = makeSender();
    const genesis = stakingGenesis({
      params: { blockReward: 1_000n },
      validators: [{ validator: v1, selfBond: 10_000n }],
      balances: [{ address: addressOf(alice), amount: 50_000n }],
    });
    const options = { modules: [createCaesarModule()], initialState: caesarInitialState(genesis) };
    const [one, two] = [await openNode(options), await openNode(options)];
    try {
      const blocks = [
        [],
        [
          transfer(alice, { to: addressOf(bob), amount: 10n, fee: 1n }),
          stakingTx(alice, { op: 'delegate', fee: 2n, amount: 900n, validator: v1.address }),
          transfer(alice, { to: addressOf(bob), amount: 10n ** 9n }),
        ],
        [stakingTx(alice, { op: 'unbond', fee: 0n, amount: 300n, validator: v1.address })],
      ];
      for (const transactions of blocks) {
        const height = one.nextHeight();
        const input = blockInput(
          height,
          transactions,
          height === 1
            ? {}
            : { proposer: v1, lastCommit: { signed: [{ validator: v1, power: 100 }] } },
        );
        const a = one.app.executeBlock(input);
        const b = two.app.executeBlock(input);
        one.commit(a);
        two.commit(b);
        assert.deepEqual(b.txResults, a.txResults);
        assert.deepEqual(b.stateRoot, a.stateRoot);
        // Rewards were paid at the end of the block; no receipt mentions them.
        for (const result of a.txResults) {
          for (const event of result.events ?? []) {
            assert.ok(
              ['caesar/transfer', 'caesar/fee', 'caesar/delegate', 'caesar/unbond'].includes(
                event.type,
              ),
              event.type,
            );
          }
        }
      }
    } finally {
      await one.close();
      await two.close();
    }
  });
});
