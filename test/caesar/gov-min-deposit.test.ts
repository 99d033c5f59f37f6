import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CAESAR_RESULT_CODES,
  CaesarErrorCode,
  ProposalStatus,
  VoteOption,
} from '../../src/caesar/index.js';
import { MAX_MIN_DEPOSIT_BPS, maxMinDeposit } from '../../src/caesar/gov-params.js';
import type { CaesarGenesis, ParamChange } from '../../src/caesar/index.js';
import { makeSender } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { addressOf } from './caesar-fixture.js';
import { TEST_GOV, govParamsOf, govTx, proposalOf } from './gov-fixture.js';
import {
  balanceOf,
  equivocation,
  makeValidator,
  openStakingNode,
  runBlock,
  stakingGenesis,
  supplyOf,
} from './staking-fixture.js';
import type { TestValidator } from './staking-fixture.js';

/**
 * Governance cannot lock itself out through `minDeposit` (docs/caesar.md, "Governance
 * parameters"): a proposal may set it to at most 1 % of the total supply, checked at admission
 * and again at `executeHeight` against the supply then, so a slash between the two makes a
 * passed proposal fail with nothing written.
 */

interface Chain {
  readonly node: TestNode;
  readonly v: readonly [TestValidator, TestValidator, TestValidator];
  readonly alice: Sender;
}

/** Three validators with 10,000 each (power 10); supply 33,000, so the bound is 330. */
async function openChain(): Promise<Chain> {
  const v = [makeValidator(), makeValidator(), makeValidator()] as const;
  const alice = makeSender();
  const genesis: CaesarGenesis = {
    ...stakingGenesis({
      params: { powerUnit: 1_000n, unbondingBlocks: 200 },
      validators: v.map((validator) => ({ validator, selfBond: 10_000n })),
      balances: [
        { address: addressOf(alice), amount: 2_100n },
        ...v.map((validator) => ({ address: validator.account, amount: 300n })),
      ],
    }),
    governance: TEST_GOV,
  };
  const node = await openStakingNode(genesis);
  runBlock(node); // height 1 writes the genesis state
  return { node, v, alice };
}

const propose = (sender: Sender, minDeposit: bigint): Uint8Array =>
  govTx(sender, {
    op: 'gov/submit-proposal',
    fee: 0n,
    title: 'minDeposit',
    changes: [{ name: 'minDeposit', value: minDeposit }] as ParamChange[],
    deposit: 100n,
  });

describe('caesar governance: minDeposit stays payable', () => {
  it('bounds minDeposit by 1 % of the supply: the supply itself and one above the bound are refused', async () => {
    const { node, alice } = await openChain();
    try {
      const supply = supplyOf(node);
      assert.equal(supply, 33_000n);
      assert.equal(MAX_MIN_DEPOSIT_BPS, 100);
      assert.equal(maxMinDeposit(supply), 330n);
      for (const minDeposit of [supply, supply - 1n, 331n]) {
        const transaction = propose(alice, minDeposit);
        const admission = node.app.checkTx(transaction);
        assert.equal(admission.ok, false, `minDeposit ${minDeposit}`);
        if (!admission.ok) assert.equal(admission.code, CaesarErrorCode.GOV_INVALID_PARAM);
        const result = runBlock(node, [transaction]);
        assert.equal(
          result.txResults[0]!.code,
          CAESAR_RESULT_CODES[CaesarErrorCode.GOV_INVALID_PARAM],
          result.txResults[0]!.log,
        );
        assert.match(result.txResults[0]!.log, /minDeposit: .* above 1 % of the total supply/);
        assert.equal(proposalOf(node, 1), undefined, 'nothing written');
        assert.equal(balanceOf(node, addressOf(alice)), 2_100n, 'no deposit taken');
      }
      const fits = runBlock(node, [propose(alice, 330n)]);
      assert.equal(fits.txResults[0]!.code, 0, fits.txResults[0]!.log);
      assert.equal(proposalOf(node, 1)!.status, ProposalStatus.VOTING);
    } finally {
      await node.close();
    }
  });

  for (const slashed of [false, true]) {
    it(`a passed proposal setting minDeposit to the bound ${slashed ? 'fails at executeHeight after a slash lowered the supply' : 'applies when the supply held'}`, async () => {
      const { node, v, alice } = await openChain();
      try {
        // Submitted at 2: voting ends at 5, executes at 7 (TEST_GOV: votingPeriod 3, timelock 2).
        runBlock(node, [propose(alice, 330n)]); // 2
        const proposal = proposalOf(node, 1)!;
        assert.equal(proposal.executeHeight, 7);
        runBlock(
          node,
          v.map((x) =>
            govTx(x.sender, { op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES }),
          ),
        ); // 3
        runBlock(node); // 4
        runBlock(node); // 5: tallied
        assert.equal(proposalOf(node, 1)!.status, ProposalStatus.PASSED);
        // 6: v1's equivocation at 5 burns 10% of the 10,000 behind its power: the supply
        // falls to 32,000 and the bound to 320, below the passed 330.
        runBlock(node, [], slashed ? { evidence: [equivocation(v[0], 5)] } : {});
        assert.equal(supplyOf(node), slashed ? 32_000n : 33_000n);
        runBlock(node); // 7: executeHeight
        const record = proposalOf(node, 1)!;
        if (slashed) {
          assert.equal(record.status, ProposalStatus.FAILED);
          assert.deepEqual(govParamsOf(node), TEST_GOV, 'nothing written');
        } else {
          assert.equal(record.status, ProposalStatus.APPLIED);
          assert.deepEqual(govParamsOf(node), { ...TEST_GOV, minDeposit: 330n });
        }
        assert.equal(balanceOf(node, addressOf(alice)), 2_100n, 'a passed deposit returns');
      } finally {
        await node.close();
      }
    });
  }
});
