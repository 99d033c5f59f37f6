import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { amountItem, mapItem, textItem, uintItem } from '../../src/caesar/cbor.js';
import {
  CAESAR_RESULT_CODES,
  CaesarError,
  CaesarErrorCode,
  CaesarGenesisError,
  CaesarGenesisErrorCode,
  CaesarStateError,
  DEFAULT_GOV_PARAMS,
  GOV_PARAMS_KEY,
  MAX_ACTIVE_PROPOSALS,
  MAX_EPOCH_BLOCKS,
  MAX_GOV_PERIOD,
  MAX_GOV_RATE_BPS,
  MAX_TITLE_LENGTH,
  ProposalStatus,
  VoteOption,
  caesarGenesisToJson,
  caesarGovActiveQuery,
  caesarGovCountQuery,
  caesarGovDepositsQuery,
  caesarGovParamsQuery,
  caesarInitialState,
  caesarProposalQuery,
  caesarStakingParamsQuery,
  caesarStateKey,
  caesarVotesQuery,
  decodeCaesarBody,
  encodeGovTx,
  parseCaesarGenesis,
  verifyCaesarGovActive,
  verifyCaesarGovCount,
  verifyCaesarGovDeposits,
  verifyCaesarGovParams,
  verifyCaesarProposal,
  verifyCaesarStakingParams,
  verifyCaesarVotes,
} from '../../src/caesar/index.js';
import type { CaesarGenesis, GovTx, ParamChange } from '../../src/caesar/index.js';
import { bytesEqual, concatBytes } from '../../src/crypto/bytes.js';
import { makeSender } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { TOKEN, addressOf, openCaesarNode, rawCaesarTx } from './caesar-fixture.js';
import {
  TEST_GOV,
  depositsOf,
  govParamsOf,
  govTx,
  proposalOf,
  stakingParamsOf,
  votesOf,
} from './gov-fixture.js';
import {
  TEST_PARAMS,
  balanceOf,
  bondedOf,
  feePoolOf,
  makeValidator,
  openStakingNode,
  runBlock,
  stakingGenesis,
  stakingTx,
  supplyOf,
  unbondingTotalOf,
} from './staking-fixture.js';
import type { TestValidator } from './staking-fixture.js';

/**
 * Parameter governance (issue 6 §2): proposals with a deposit, stake-weighted votes, the tally
 * at the end of the voting period (quorum, threshold), the timelock, deposits returned or
 * burnt, the changes applied at exactly their height and proven by queries; every refusal with
 * its typed code and nothing but the sequence written.
 */

const code = (error: CaesarErrorCode): number => CAESAR_RESULT_CODES[error];

interface Chain {
  readonly node: TestNode;
  readonly v: readonly [TestValidator, TestValidator, TestValidator];
  readonly alice: Sender;
  readonly outsider: Sender;
}

/** Three validators with 10,000 each; Alice (1,000 spendable) delegates 600 in block 2. */
async function openChain(governance: Partial<typeof TEST_GOV> = {}): Promise<Chain> {
  const v = [makeValidator(), makeValidator(), makeValidator()] as const;
  const alice = makeSender();
  const outsider = makeSender();
  const genesis: CaesarGenesis = {
    ...stakingGenesis({
      // Power = stake / 1,000: Alice's delegation does not change the set at an epoch.
      // unbondingBlocks 200: governance may raise epochBlocks up to 100 (epochBlocks + 100 ≤ it).
      params: { powerUnit: 1_000n, unbondingBlocks: 200 },
      validators: v.map((validator) => ({ validator, selfBond: 10_000n })),
      balances: [
        { address: addressOf(alice), amount: 1_600n },
        { address: addressOf(outsider), amount: 500n },
        ...v.map((validator) => ({ address: validator.account, amount: 300n })),
      ],
    }),
    governance: { ...TEST_GOV, ...governance },
  };
  const node = await openStakingNode(genesis);
  runBlock(node); // height 1 writes the genesis state
  runBlock(node, [
    stakingTx(alice, { op: 'delegate', fee: 0n, amount: 600n, validator: v[0].address }),
  ]);
  return { node, v, alice, outsider };
}

const propose = (
  sender: Sender,
  changes: { name: string; value: bigint }[],
  deposit = 100n,
  fee = 0n,
): Uint8Array =>
  govTx(sender, {
    op: 'gov/submit-proposal',
    fee,
    title: 'change parameters',
    changes: changes as ParamChange[],
    deposit,
  });

const vote = (sender: Sender, proposal: number, option: VoteOption, fee = 0n): Uint8Array =>
  govTx(sender, { op: 'gov/vote', fee, proposal, option });

/** Σ balances + bonded + unbonding + fee pool + deposits held = supply. */
function assertSupply(chain: Chain): void {
  const { node, v, alice, outsider } = chain;
  const balances = [addressOf(alice), addressOf(outsider), ...v.map((x) => x.account)].reduce(
    (sum, address) => sum + balanceOf(node, address),
    0n,
  );
  assert.equal(
    balances + bondedOf(node) + unbondingTotalOf(node) + feePoolOf(node) + depositsOf(node),
    supplyOf(node),
  );
}

/** Only the router's sequence keys changed (a refused transaction writes nothing else). */
function onlySequences(result: ReturnType<typeof runBlock>, name: string): void {
  const keys = result.changes.map(({ key }) => new TextDecoder().decode(key.subarray(0, 5)));
  assert.ok(
    keys.every((key) => key === 'acct/'),
    `${name}: only sequences may change, got ${keys.join(', ')}`,
  );
}

describe('caesar governance: the proposal lifecycle', () => {
  it('passes a proposal by stake, applies it exactly after the timelock, and proves it', async () => {
    const chain = await openChain();
    const { node, v, alice } = chain;
    try {
      const supply = supplyOf(node);
      // Block 3: Alice proposes (deposit 100, fee 5). Voting ends with block 6, applies at 8.
      let result = runBlock(node, [
        govTx(alice, {
          op: 'gov/submit-proposal',
          fee: 5n,
          title: 'faster epochs',
          changes: [
            { name: 'epochBlocks', value: 8n },
            { name: 'quorumBps', value: 5_000n },
          ],
          deposit: 150n,
        }),
      ]);
      assert.equal(result.txResults[0]!.code, 0, result.txResults[0]!.log);
      assert.equal(balanceOf(node, addressOf(alice)), 1_000n - 155n);
      assert.equal(depositsOf(node), 150n);
      const submitted = proposalOf(node, 1);
      assert.deepEqual(
        { ...submitted, proposer: undefined },
        {
          id: 1,
          proposer: undefined,
          title: 'faster epochs',
          // In canonical key order (shorter names first), whatever order the proposer gave.
          changes: [
            { name: 'quorumBps', value: 5_000n },
            { name: 'epochBlocks', value: 8n },
          ],
          deposit: 150n,
          submitHeight: 3,
          votingEnd: 6,
          executeHeight: 8,
          status: ProposalStatus.VOTING,
        },
      );
      assert.ok(bytesEqual(submitted!.proposer, addressOf(alice)));
      assertSupply(chain);

      // Block 4: v0 yes, v1 no. Block 5: v1 changes its vote to yes (it replaces the first).
      result = runBlock(node, [
        vote(v[0].sender, 1, VoteOption.YES),
        vote(v[1].sender, 1, VoteOption.NO),
      ]);
      assert.deepEqual(
        result.txResults.map((r) => r.code),
        [0, 0],
      );
      runBlock(node, [vote(v[1].sender, 1, VoteOption.YES, 1n)]);
      assert.equal(votesOf(node, 1).length, 2);
      assert.ok(votesOf(node, 1).every((entry) => entry.option === VoteOption.YES));
      // Block 6 (last one of voting): Alice abstains; her weight is her delegation, 600.
      runBlock(node, [vote(alice, 1, VoteOption.ABSTAIN)]);
      const tallied = proposalOf(node, 1)!;
      assert.equal(tallied.status, ProposalStatus.PASSED);
      assert.deepEqual(tallied.tally, { yes: 20_000n, no: 0n, abstain: 600n, bonded: 30_600n });
      // The deposit came back; nothing was burnt.
      assert.equal(balanceOf(node, addressOf(alice)), 1_000n - 5n);
      assert.equal(depositsOf(node), 0n);
      assert.equal(supplyOf(node), supply);

      // Voting is closed from block 7 on.
      const late = vote(v[2].sender, 1, VoteOption.NO);
      const admission = node.app.checkTx(late);
      assert.equal(admission.ok, false);
      if (!admission.ok) assert.equal(admission.code, CaesarErrorCode.GOV_VOTING_CLOSED);
      result = runBlock(node, [late]); // block 7
      assert.equal(result.txResults[0]!.code, code(CaesarErrorCode.GOV_VOTING_CLOSED));
      assert.equal(stakingParamsOf(node).epochBlocks, TEST_PARAMS.epochBlocks, 'not yet');

      runBlock(node); // block 8: the changes apply at its end
      assert.equal(stakingParamsOf(node).epochBlocks, 8);
      assert.equal(govParamsOf(node).quorumBps, 5_000);
      assert.equal(proposalOf(node, 1)!.status, ProposalStatus.APPLIED);
      assertSupply(chain);

      // Proven: the old values at height 7, the new ones from height 8.
      const at = (request: { path: string; data: Uint8Array; height?: number }) =>
        node.app.query(request);
      assert.equal(verifyCaesarStakingParams(at(caesarStakingParamsQuery(7)))!.epochBlocks, 4);
      assert.equal(verifyCaesarStakingParams(at(caesarStakingParamsQuery(8)))!.epochBlocks, 8);
      assert.equal(verifyCaesarGovParams(at(caesarGovParamsQuery(7))).quorumBps, 3_340);
      assert.equal(verifyCaesarGovParams(at(caesarGovParamsQuery(8))).quorumBps, 5_000);
      assert.equal(verifyCaesarProposal(1, at(caesarProposalQuery(1)))!.status, 4);
      assert.equal(verifyCaesarProposal(1, at(caesarProposalQuery(1, 6)))!.status, 1);
      assert.equal(verifyCaesarProposal(1, at(caesarProposalQuery(1, 5)))!.status, 0);
      assert.equal(verifyCaesarProposal(2, at(caesarProposalQuery(2))), null);
      assert.equal(verifyCaesarVotes(1, at(caesarVotesQuery(1))).length, 3);
      assert.equal(verifyCaesarGovCount(at(caesarGovCountQuery())), 1);
      assert.deepEqual(verifyCaesarGovActive(at(caesarGovActiveQuery(7))), [1]);
      assert.deepEqual(verifyCaesarGovActive(at(caesarGovActiveQuery())), []);
      assert.equal(verifyCaesarGovDeposits(at(caesarGovDepositsQuery(5))), 150n);
      const answer = at(caesarProposalQuery(1));
      assert.throws(
        () => verifyCaesarProposal(1, { ...answer, value: Uint8Array.of(0xa0) }),
        (error: unknown) => error instanceof CaesarStateError,
      );
      assert.throws(
        () => node.app.query({ path: 'caesar/gov-proposal', data: new Uint8Array(4) }),
        (error: unknown) =>
          error instanceof CaesarError && error.code === CaesarErrorCode.INVALID_QUERY,
      );
      assert.throws(
        () => node.app.query({ path: 'caesar/gov-params', data: new Uint8Array(1) }),
        (error: unknown) =>
          error instanceof CaesarError && error.code === CaesarErrorCode.INVALID_QUERY,
      );
    } finally {
      await node.close();
    }
  });

  it('burns the deposit without quorum, returns it below the threshold, changes nothing', async () => {
    const chain = await openChain();
    const { node, v, alice } = chain;
    try {
      const supply = supplyOf(node);
      const params = stakingParamsOf(node);
      // Proposal 1 (block 3): only Alice votes, 600 of 30,600 bonded: below the 33.4% quorum.
      // Proposal 2 (block 3): v0 yes, v1 and v2 no: quorum, but 1/3 yes is not above 50%.
      runBlock(node, [
        propose(alice, [{ name: 'blockReward', value: 7n }], 100n),
        propose(alice, [{ name: 'jailBlocks', value: 9n }], 200n),
      ]);
      assert.equal(depositsOf(node), 300n);
      runBlock(node, [
        vote(alice, 1, VoteOption.YES),
        vote(v[0].sender, 2, VoteOption.YES),
        vote(v[1].sender, 2, VoteOption.NO),
        vote(v[2].sender, 2, VoteOption.NO),
      ]);
      runBlock(node);
      assertSupply(chain);
      runBlock(node); // block 6: both tallied
      const noQuorum = proposalOf(node, 1)!;
      const rejected = proposalOf(node, 2)!;
      assert.equal(noQuorum.status, ProposalStatus.REJECTED_NO_QUORUM);
      assert.deepEqual(noQuorum.tally, { yes: 600n, no: 0n, abstain: 0n, bonded: 30_600n });
      assert.equal(rejected.status, ProposalStatus.REJECTED);
      assert.deepEqual(rejected.tally, { yes: 10_000n, no: 20_000n, abstain: 0n, bonded: 30_600n });
      // 100 burnt (the supply fell by it), 200 returned.
      assert.equal(supplyOf(node), supply - 100n);
      assert.equal(balanceOf(node, addressOf(alice)), 1_000n - 100n);
      assert.equal(depositsOf(node), 0n);
      assertSupply(chain);
      for (let i = 0; i < 4; i++) runBlock(node);
      assert.deepEqual(stakingParamsOf(node), params, 'nothing changed');
      assert.equal(proposalOf(node, 1)!.status, ProposalStatus.REJECTED_NO_QUORUM);
    } finally {
      await node.close();
    }
  });

  it('applies at the end of voting with timelock 0; a later proposal that no longer fits fails', async () => {
    const chain = await openChain({ timelock: 0 });
    const { node, v, alice } = chain;
    try {
      // TEST_PARAMS: signedWindow 4, maxMissed 2. Each change is valid alone; after proposal 1
      // (signedWindow 3), proposal 2's maxMissed 3 is not below signedWindow.
      runBlock(node, [
        propose(alice, [{ name: 'signedWindow', value: 3n }]),
        propose(alice, [{ name: 'maxMissed', value: 3n }]),
      ]);
      runBlock(node, [
        ...v.map((x) => vote(x.sender, 1, VoteOption.YES)),
        ...v.map((x) => vote(x.sender, 2, VoteOption.YES)),
      ]);
      runBlock(node);
      assert.equal(stakingParamsOf(node).signedWindow, 4);
      runBlock(node); // block 6: tallied and applied in the same end of block
      assert.equal(proposalOf(node, 1)!.status, ProposalStatus.APPLIED);
      assert.equal(proposalOf(node, 2)!.status, ProposalStatus.FAILED);
      assert.deepEqual(stakingParamsOf(node), {
        ...TEST_PARAMS,
        powerUnit: 1_000n,
        unbondingBlocks: 200,
        signedWindow: 3,
      });
      // Both deposits came back: they passed the vote.
      assert.equal(balanceOf(node, addressOf(alice)), 1_000n);
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });
});

describe('caesar governance: the commission step', () => {
  it('maxCommissionChangeBps is governable: a passed proposal widens the step edit-validator allows', async () => {
    const chain = await openChain();
    const { node, v, alice, outsider } = chain;
    try {
      const edit = (commission: number) =>
        stakingTx(v[2].sender, { op: 'edit-validator', fee: 0n, commission });
      // Block 3: a valid proposal (applies at the end of block 8) and one out of bounds.
      const submitted = runBlock(node, [
        propose(alice, [{ name: 'maxCommissionChangeBps', value: 500n }]),
        propose(outsider, [{ name: 'maxCommissionChangeBps', value: 10_001n }]),
      ]);
      assert.deepEqual(
        submitted.txResults.map((r) => r.code),
        [0, code(CaesarErrorCode.GOV_INVALID_PARAM)],
      );
      runBlock(node, [vote(v[0].sender, 1, VoteOption.YES), vote(v[1].sender, 1, VoteOption.YES)]);
      runBlock(node);
      runBlock(node);
      // Block 7: still the default step of 100.
      const early = runBlock(node, [edit(500)]);
      assert.equal(
        early.txResults[0]!.code,
        code(CaesarErrorCode.COMMISSION_CHANGE_TOO_LARGE),
        early.txResults[0]!.log,
      );
      runBlock(node); // block 8: applied at its end
      assert.equal(proposalOf(node, 1)!.status, ProposalStatus.APPLIED);
      assert.equal(stakingParamsOf(node).maxCommissionChangeBps, 500);
      const late = runBlock(node, [edit(500)]); // block 9
      assert.equal(late.txResults[0]!.code, 0, late.txResults[0]!.log);
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });
});

describe('caesar governance: refusals', () => {
  it('refuses each bad governance transaction with its typed code, writing nothing but the sequence', async () => {
    const chain = await openChain({ votingPeriod: 100 });
    const { node, v, alice, outsider } = chain;
    try {
      // Proposal 1 open, voting until block 6.
      runBlock(node, [propose(alice, [{ name: 'epochBlocks', value: 8n }])]);
      const raw = (fields: Record<string, Uint8Array>) =>
        rawCaesarTx(alice, mapItem({ op: textItem('gov/submit-proposal'), ...fields }));
      const cases: [string, Uint8Array, CaesarErrorCode][] = [
        [
          'an unknown parameter',
          raw({
            fee: amountItem(0n),
            title: textItem('x'),
            changes: mapItem({ epochs: amountItem(1n) }),
            deposit: amountItem(100n),
          }),
          CaesarErrorCode.GOV_UNKNOWN_PARAM,
        ],
        [
          'a parameter governance cannot change',
          raw({
            fee: amountItem(0n),
            title: textItem('x'),
            changes: mapItem({ unbondingBlocks: amountItem(1n) }),
            deposit: amountItem(100n),
          }),
          CaesarErrorCode.GOV_UNKNOWN_PARAM,
        ],
        [
          'a value below its bound',
          propose(alice, [{ name: 'epochBlocks', value: 0n }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'a rate above 100%',
          propose(alice, [{ name: 'proposerBonusBps', value: 10_001n }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'an integer far above its bound',
          propose(alice, [{ name: 'votingPeriod', value: 1n << 100n }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'a threshold of 100%',
          propose(alice, [{ name: 'thresholdBps', value: 10_000n }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        // Values that would lock governance out, or let a slash miss unbondings.
        [
          'a quorum above 2/3 (6,666 basis points)',
          propose(alice, [{ name: 'quorumBps', value: BigInt(MAX_GOV_RATE_BPS + 1) }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'a quorum of 100%',
          propose(alice, [{ name: 'quorumBps', value: 10_000n }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'a threshold above 2/3',
          propose(alice, [{ name: 'thresholdBps', value: BigInt(MAX_GOV_RATE_BPS + 1) }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'a voting period above 1,000,000 blocks',
          propose(alice, [{ name: 'votingPeriod', value: BigInt(MAX_GOV_PERIOD + 1) }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'a voting period of 10^8 blocks',
          propose(alice, [{ name: 'votingPeriod', value: 100_000_000n }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'a timelock above 1,000,000 blocks',
          propose(alice, [{ name: 'timelock', value: BigInt(MAX_GOV_PERIOD + 1) }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'epochBlocks above the slashing look-back (899)',
          propose(alice, [{ name: 'epochBlocks', value: BigInt(MAX_EPOCH_BLOCKS + 1) }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'epochBlocks raised above unbondingBlocks − 100 (stake could leave before evidence)',
          propose(alice, [{ name: 'epochBlocks', value: 101n }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'a minDeposit above the total supply (no later proposal could be paid)',
          propose(alice, [{ name: 'minDeposit', value: 1n << 120n }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'parameters invalid together',
          propose(alice, [{ name: 'maxMissed', value: 4n }]),
          CaesarErrorCode.GOV_INVALID_PARAM,
        ],
        [
          'a deposit below minDeposit',
          propose(alice, [{ name: 'epochBlocks', value: 8n }], 99n),
          CaesarErrorCode.GOV_DEPOSIT_TOO_SMALL,
        ],
        [
          'a deposit above the balance',
          propose(alice, [{ name: 'epochBlocks', value: 8n }], 901n),
          CaesarErrorCode.INSUFFICIENT_FUNDS,
        ],
        [
          'no changes',
          raw({
            fee: amountItem(0n),
            title: textItem('x'),
            changes: mapItem({}),
            deposit: amountItem(100n),
          }),
          CaesarErrorCode.MALFORMED_BODY,
        ],
        [
          'a title too long',
          raw({
            fee: amountItem(0n),
            title: textItem('x'.repeat(MAX_TITLE_LENGTH + 1)),
            changes: mapItem({ epochBlocks: amountItem(8n) }),
            deposit: amountItem(100n),
          }),
          CaesarErrorCode.MALFORMED_BODY,
        ],
        [
          'changes out of canonical order',
          raw({
            fee: amountItem(0n),
            title: textItem('x'),
            // "powerUnit" (9 letters) sorts before "epochBlocks" (11).
            changes: concatBytes(
              Uint8Array.of(0xa2),
              textItem('epochBlocks'),
              amountItem(8n),
              textItem('powerUnit'),
              amountItem(5n),
            ),
            deposit: amountItem(100n),
          }),
          CaesarErrorCode.MALFORMED_BODY,
        ],
        [
          'a vote on an unknown proposal',
          vote(v[0].sender, 2, VoteOption.YES),
          CaesarErrorCode.GOV_UNKNOWN_PROPOSAL,
        ],
        ['a vote without stake', vote(outsider, 1, VoteOption.YES), CaesarErrorCode.GOV_NO_STAKE],
        [
          'a vote whose fee the balance cannot pay',
          vote(v[0].sender, 1, VoteOption.YES, 301n),
          CaesarErrorCode.INSUFFICIENT_FUNDS,
        ],
        [
          'a vote option that is none',
          rawCaesarTx(
            v[0].sender,
            mapItem({
              op: textItem('gov/vote'),
              fee: amountItem(0n),
              option: uintItem(4),
              proposal: uintItem(1),
            }),
          ),
          CaesarErrorCode.MALFORMED_BODY,
        ],
        [
          'proposal 0',
          rawCaesarTx(
            v[0].sender,
            mapItem({
              op: textItem('gov/vote'),
              fee: amountItem(0n),
              option: uintItem(1),
              proposal: uintItem(0),
            }),
          ),
          CaesarErrorCode.MALFORMED_BODY,
        ],
        [
          'a transfer field in a vote',
          rawCaesarTx(
            v[0].sender,
            mapItem({
              op: textItem('gov/vote'),
              fee: amountItem(0n),
              amount: amountItem(1n),
              option: uintItem(1),
              proposal: uintItem(1),
            }),
          ),
          CaesarErrorCode.UNKNOWN_FIELD,
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
        onlySequences(result, name);
      }
      assert.equal(balanceOf(node, addressOf(alice)), 900n);
      assert.equal(votesOf(node, 1).length, 0);
    } finally {
      await node.close();
    }
  });

  it('holds at most MAX_ACTIVE_PROPOSALS proposals in voting or timelock', async () => {
    const chain = await openChain({ minDeposit: 1n });
    const { node, alice } = chain;
    try {
      const many = Array.from({ length: MAX_ACTIVE_PROPOSALS + 1 }, (_, i) =>
        propose(alice, [{ name: 'epochBlocks', value: BigInt(i + 1) }], 1n),
      );
      const result = runBlock(node, many);
      assert.deepEqual(
        result.txResults.map((r) => r.code),
        [
          ...new Array<number>(MAX_ACTIVE_PROPOSALS).fill(0),
          code(CaesarErrorCode.GOV_TOO_MANY_PROPOSALS),
        ],
      );
      assert.equal(depositsOf(node), BigInt(MAX_ACTIVE_PROPOSALS));
      assertSupply(chain);
      // Once their voting ends without votes (no quorum), the slots are free again.
      for (let i = 0; i < TEST_GOV.votingPeriod; i++) runBlock(node);
      assert.equal(proposalOf(node, 1)!.status, ProposalStatus.REJECTED_NO_QUORUM);
      const again = runBlock(node, [propose(alice, [{ name: 'epochBlocks', value: 9n }], 1n)]);
      assert.equal(again.txResults[0]!.code, 0, again.txResults[0]!.log);
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });

  it('explains the refusals in their logs', async () => {
    const chain = await openChain();
    const { node, alice } = chain;
    try {
      const logs = [
        rawCaesarTx(
          alice,
          mapItem({
            op: textItem('gov/submit-proposal'),
            fee: amountItem(0n),
            title: textItem('x'),
            changes: mapItem({ unbondingBlocks: amountItem(9n) }),
            deposit: amountItem(100n),
          }),
        ),
        propose(alice, [{ name: 'maxMissed', value: 4n }]),
        propose(alice, [{ name: 'epochBlocks', value: 8n }], 10n),
      ].map((transaction) => runBlock(node, [transaction]).txResults[0]!.log);
      assert.deepEqual(logs, [
        'CAESAR_GOV_UNKNOWN_PARAM: proposal: "unbondingBlocks" is not governable: unbondingBlocks is fixed for the chain: slashing finds waiting unbondings by it',
        'CAESAR_GOV_INVALID_PARAM: proposal: maxMissed: maxMissed must be below signedWindow',
        'CAESAR_GOV_DEPOSIT_TOO_SMALL: gov/submit-proposal: a deposit of 10 is below minDeposit 100',
      ]);
    } finally {
      await node.close();
    }
  });

  it('refuses governance on a chain without staking', async () => {
    const alice = makeSender();
    const node = await openCaesarNode({
      token: { ...TOKEN, supply: 1_000n },
      allocations: [{ address: addressOf(alice), amount: 1_000n }],
    });
    try {
      runBlock(node);
      for (const transaction of [
        propose(alice, [{ name: 'epochBlocks', value: 8n }]),
        vote(alice, 1, VoteOption.YES),
      ]) {
        const result = runBlock(node, [transaction]);
        assert.equal(result.txResults[0]!.code, code(CaesarErrorCode.STAKING_DISABLED));
        assert.match(result.txResults[0]!.log, /governance weighs votes by bonded stake/);
      }
    } finally {
      await node.close();
    }
  });
});

describe('caesar governance: bodies and genesis', () => {
  it('round-trips the bodies and refuses what the decoder refuses', () => {
    const bodies: GovTx[] = [
      {
        op: 'gov/submit-proposal',
        fee: 3n,
        title: 'raise the reward',
        changes: [
          { name: 'blockReward', value: (1n << 100n) + 5n },
          { name: 'epochBlocks', value: 10n },
        ],
        deposit: 1n << 70n,
      },
      { op: 'gov/vote', fee: 0n, proposal: 2 ** 40, option: VoteOption.ABSTAIN },
    ];
    for (const body of bodies) assert.deepEqual(decodeCaesarBody(encodeGovTx(body)), body);
    const bad: [GovTx, CaesarErrorCode][] = [
      [{ ...bodies[0]!, changes: [] } as GovTx, CaesarErrorCode.MALFORMED_BODY],
      [
        {
          ...bodies[0]!,
          changes: [
            { name: 'epochBlocks', value: 1n },
            { name: 'epochBlocks', value: 2n },
          ],
        } as GovTx,
        CaesarErrorCode.MALFORMED_BODY,
      ],
      [
        { ...bodies[0]!, changes: [{ name: 'supply', value: 1n }] } as unknown as GovTx,
        CaesarErrorCode.GOV_UNKNOWN_PARAM,
      ],
      [{ ...bodies[0]!, title: '' } as GovTx, CaesarErrorCode.MALFORMED_BODY],
      [{ ...bodies[0]!, title: 'naïve' } as GovTx, CaesarErrorCode.MALFORMED_BODY],
      [{ ...bodies[0]!, deposit: -1n } as GovTx, CaesarErrorCode.INVALID_AMOUNT],
      [{ ...bodies[1]!, option: 0 } as unknown as GovTx, CaesarErrorCode.MALFORMED_BODY],
      [{ ...bodies[1]!, proposal: 1.5 } as unknown as GovTx, CaesarErrorCode.MALFORMED_BODY],
    ];
    for (const [body, expected] of bad) {
      assert.throws(
        () => encodeGovTx(body),
        (error: unknown) => error instanceof CaesarError && error.code === expected,
        expected,
      );
    }
  });

  it('reads the governance parameters from the genesis, with defaults, and only stores given ones', () => {
    const validator = makeValidator();
    const base = caesarGenesisToJson(
      stakingGenesis({ validators: [{ validator, selfBond: 10_000n }], balances: [] }),
    );
    // Without a governance section: none is written back, and no state key is added.
    const plain = parseCaesarGenesis(base);
    assert.equal(plain.governance, undefined);
    assert.deepEqual(caesarGenesisToJson(plain), base);
    const key = caesarStateKey(GOV_PARAMS_KEY);
    assert.ok(!caesarInitialState(plain).some((entry) => bytesEqual(entry.key, key)));

    const given = parseCaesarGenesis({
      ...base,
      governance: { votingPeriod: 10, minDeposit: '5' },
    });
    assert.deepEqual(given.governance, {
      ...DEFAULT_GOV_PARAMS,
      votingPeriod: 10,
      minDeposit: 5n,
    });
    assert.deepEqual(parseCaesarGenesis(caesarGenesisToJson(given)), given);
    assert.ok(caesarInitialState(given).some((entry) => bytesEqual(entry.key, key)));

    const refusals: [unknown, RegExp][] = [
      [{ ...base, governance: { votingPeriod: 0 } }, /votingPeriod/],
      [{ ...base, governance: { quorumBps: 10_001 } }, /quorumBps/],
      [{ ...base, governance: { thresholdBps: 10_000 } }, /thresholdBps/],
      [{ ...base, governance: { quorumBps: 6_667 } }, /quorumBps/],
      [{ ...base, governance: { thresholdBps: 6_667 } }, /thresholdBps/],
      [{ ...base, governance: { votingPeriod: 1_000_001 } }, /votingPeriod/],
      [{ ...base, governance: { timelock: 1_000_001 } }, /timelock/],
      [{ ...base, governance: { minDeposit: 5 } }, /minDeposit/],
      [{ ...base, governance: { minDeposit: '0' } }, /minDeposit/],
      [{ ...base, governance: { timelocks: 1 } }, /timelocks/],
      [
        { token: base.token, allocations: base.allocations, governance: {} },
        /governance weighs votes by bonded stake and needs the staking section/,
      ],
    ];
    for (const [json, pattern] of refusals) {
      assert.throws(
        () => parseCaesarGenesis(json),
        (error: unknown) =>
          error instanceof CaesarGenesisError &&
          error.code === CaesarGenesisErrorCode.INVALID &&
          pattern.test(error.message),
        String(pattern),
      );
    }
  });
});
