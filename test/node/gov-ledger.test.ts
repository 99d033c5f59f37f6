import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DELEGATE_OP,
  VoteOption,
  caesarBalanceQuery,
  caesarDelegationQuery,
} from '../../src/caesar/index.js';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import { GOV_READ_CONCURRENCY, readProvenProposals } from '../../src/node/gov-ledger.js';
import { StakeCliError, StakeErrorCode } from '../../src/node/stake-ledger.js';
import { withCommittedRoots } from '../../src/node/verified-root.js';
import { makeSender, type TestNode } from '../consensus/application/fixture.js';
import { addressOf } from '../caesar/caesar-fixture.js';
import { TEST_GOV, govTx } from '../caesar/gov-fixture.js';
import {
  makeValidator,
  openStakingNode,
  runBlock,
  stakingGenesis,
  stakingTx,
} from '../caesar/staking-fixture.js';
import { CommittedBlocks } from './committed-roots-fixture.js';

/**
 * `readProvenProposals` (`hypermesh gov list`) weighs each vote of a proposal in voting with
 * proven reads of the voter's delegator index and every delegation it names: one read per
 * voter and per delegation. They run `GOV_READ_CONCURRENCY` at a time (not one after another),
 * every answer still proven, and the whole read stops at its deadline with a clear error.
 */
const DELEGATION_PATH = caesarDelegationQuery(new Uint8Array(20), new Uint8Array(32)).path;
const VOTERS = 40;
const VALIDATORS = 4;
let node: TestNode;
let blocks: CommittedBlocks;
const voters = Array.from({ length: VOTERS }, () => makeSender());

before(async () => {
  const validators = Array.from({ length: VALIDATORS }, () => makeValidator());
  const proposer = makeSender();
  node = await openStakingNode({
    ...stakingGenesis({
      params: { powerUnit: 1_000n, unbondingBlocks: 200, maxValidators: 32 },
      validators: validators.map((validator) => ({ validator, selfBond: 10_000n })),
      balances: [
        { address: addressOf(proposer), amount: 1_000n },
        ...voters.map((voter) => ({ address: addressOf(voter), amount: 100n })),
      ],
    }),
    governance: { ...TEST_GOV, votingPeriod: 1_000 },
  });
  runBlock(node);
  runBlock(node, [
    govTx(proposer, {
      op: 'gov/submit-proposal',
      fee: 0n,
      title: 'quorum',
      changes: [{ name: 'quorumBps', value: 3_000n }],
      deposit: 100n,
    }),
  ]);
  // Each voter delegates one base unit to every validator, then votes yes.
  runBlock(
    node,
    voters.flatMap((voter) =>
      validators.map((validator) =>
        stakingTx(voter, { op: DELEGATE_OP, fee: 0n, amount: 1n, validator: validator.address }),
      ),
    ),
  );
  runBlock(
    node,
    voters.map((voter) =>
      govTx(voter, { op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES }),
    ),
  );
  blocks = await CommittedBlocks.create(4);
  const latest = node.app.query(caesarBalanceQuery(addressOf(proposer)));
  await blocks.commit(latest.height!, latest.stateRoot);
});

after(() => node?.close());

/**
 * A checking client of the node whose answers come a turn of the event loop later (as over a
 * network), through `answer` (default: the node's own); counts the queries in flight.
 */
function clientOf(
  answer: (request: QueryRequest, honest: QueryResponse) => Promise<QueryResponse> = (
    _request,
    honest,
  ) => Promise.resolve(honest),
) {
  const flight = { now: 0, most: 0, total: 0 };
  const plain = {
    getBlock: (height: number) => blocks.getBlock(height),
    validatorUpdates: (from: number, to: number) => blocks.validatorUpdates(from, to),
    query: async (request: QueryRequest) => {
      flight.total++;
      flight.now++;
      flight.most = Math.max(flight.most, flight.now);
      try {
        await new Promise((resolve) => setImmediate(resolve));
        return await answer(request, node.app.query(request));
      } finally {
        flight.now--;
      }
    },
  } as unknown as NodeRpcClient;
  return { client: withCommittedRoots(plain, blocks.chain.genesis), flight };
}

describe('gov list weighs the votes', () => {
  it('reads the stakes a bounded number at a time, and tallies as the chain does', async () => {
    const { client, flight } = clientOf();
    const read = await readProvenProposals(client, { limit: 20 });
    const [proposal] = read.proposals;
    assert.equal(proposal?.votes.length, VOTERS);
    assert.equal(proposal?.tallySoFar?.yes, BigInt(VOTERS * VALIDATORS));
    // The index of each voter and one delegation per validator it names.
    assert.ok(flight.total >= VOTERS * (1 + VALIDATORS), `${flight.total} reads`);
    assert.equal(flight.most, GOV_READ_CONCURRENCY, 'as many in flight as allowed, no more');
  });

  it('still checks every answer it weighs', async () => {
    const victim = addressOf(voters[VOTERS - 1]!);
    const { client } = clientOf((request, honest) => {
      if (request.path !== DELEGATION_PATH || honest.value === null) return Promise.resolve(honest);
      if (!isDelegationOf(request, victim)) return Promise.resolve(honest);
      const value = Uint8Array.from(honest.value);
      value[value.length - 1] = (value.at(-1) ?? 0) ^ 1;
      return Promise.resolve({ ...honest, value });
    });
    await assert.rejects(
      readProvenProposals(client),
      (error: unknown) =>
        error instanceof StakeCliError && error.code === StakeErrorCode.PROOF_INVALID,
    );
  });

  it('stops at its deadline with a clear error', async () => {
    const never = new Promise<QueryResponse>(() => undefined);
    const { client } = clientOf((request, honest) =>
      request.path === DELEGATION_PATH ? never : Promise.resolve(honest),
    );
    await assert.rejects(readProvenProposals(client, { timeoutMs: 200 }), (error: unknown) => {
      assert.ok(error instanceof StakeCliError, String(error));
      assert.equal(error.code, StakeErrorCode.DEADLINE_EXCEEDED);
      assert.match(error.message, /not read within 200 ms \(\d+ proven reads so far/);
      return true;
    });
  });
});

/** Whether `request` (a delegation query) asks about `delegator`'s delegation. */
function isDelegationOf(request: QueryRequest, delegator: Uint8Array): boolean {
  const data = request.data;
  const tail = data.subarray(data.length - delegator.length);
  return tail.every((byte, i) => byte === delegator[i]);
}
