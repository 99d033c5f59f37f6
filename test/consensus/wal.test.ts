import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHex } from '../../src/crypto/bytes.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import type { ConsensusAction, ConsensusEvent } from '../../src/consensus/events.js';
import { blockHash } from '../../src/consensus/messages.js';
import { proposerAt } from '../../src/consensus/proposer.js';
import { signVote } from '../../src/consensus/signer.js';
import type { TendermintState } from '../../src/consensus/state.js';
import { startTendermint, step } from '../../src/consensus/tendermint.js';
import { restoreTendermint, walRecord } from '../../src/consensus/wal.js';
import {
  actionsOf,
  CHAIN_ID,
  makeBlock,
  makeConfig,
  makeGenesis,
  makeProposal,
  makeValidators,
  makeVote,
} from './sim/fixtures.js';

const { validators, set } = makeValidators([1, 1, 1, 1], 21);
const context = makeGenesis(set);
const proposer = validators.find((v) => v.address === proposerAt(context.schedule, 0).address)!;
const self = validators.find((v) => v !== proposer)!;
const others = validators.filter((v) => v !== self);
const config = makeConfig(self.address);

function run(
  state: TendermintState,
  events: ConsensusEvent[],
): { state: TendermintState; actions: ConsensusAction[] } {
  const actions: ConsensusAction[] = [];
  for (const event of events) {
    const result = step(state, event);
    state = result.state;
    actions.push(...result.actions);
  }
  return { state, actions };
}

/** Answers every sign-vote request in `actions` (a well-behaved signer). */
function signAll(state: TendermintState, actions: readonly ConsensusAction[]) {
  return run(
    state,
    actionsOf(actions, 'sign-vote').map(({ request }) => ({
      type: 'vote-signed' as const,
      vote: signVote(CHAIN_ID, request, request.notBefore, self.privateKey),
    })),
  );
}

/** This validator locked on a block in round 0 and signed its precommit. */
function lockedState() {
  const block = makeBlock(context, proposer.address, 1);
  const hash = blockHash(block.header);
  let { state } = startTendermint(config, context);
  let result = run(state, [
    { type: 'proposal-received', proposal: makeProposal(proposer, block, 0) },
    { type: 'value-validated', height: 1, blockHash: hash, valid: true },
  ]);
  result = signAll(result.state, result.actions);
  state = result.state;
  result = run(
    state,
    others.map((v) => ({
      type: 'vote-received' as const,
      vote: makeVote(v, 'prevote', 1, 0, hash),
    })),
  );
  const precommitRequest = actionsOf(result.actions, 'sign-vote');
  assert.equal(precommitRequest[0]?.request.type, 'precommit');
  return { block, hash, state: result.state, precommitRequest: result.actions };
}

describe('write-ahead log restore', () => {
  it('restores the lock and re-broadcasts the votes it had signed', () => {
    const { hash, state: beforeSigning, precommitRequest } = lockedState();
    const { state } = signAll(beforeSigning, precommitRequest);
    const record = walRecord(state);
    const restored = restoreTendermint(config, context, record);
    assert.equal(restored.state.lockedRound, 0);
    assert.equal(toHex(blockHash(restored.state.lockedValue!.header)), toHex(hash));
    assert.equal(restored.state.step, 'precommit');
    const rebroadcast = actionsOf(restored.actions, 'broadcast-vote')
      .map((a) => a.vote.type)
      .sort();
    assert.deepEqual(rebroadcast, ['precommit', 'prevote']);
    assert.deepEqual(actionsOf(restored.actions, 'sign-vote'), []);
    // Its own votes count again.
    assert.ok(restored.state.prevotes.get(0)?.votes.has(self.address));
    // Whatever arrives now, it never asks to sign a different round-0 vote.
    const after = run(restored.state, [
      { type: 'timeout-fired', height: 1, round: 0, step: 'propose' },
      { type: 'timeout-fired', height: 1, round: 0, step: 'prevote' },
      ...others.map((v) => ({
        type: 'vote-received' as const,
        vote: makeVote(v, 'prevote', 1, 0, null),
      })),
    ]);
    assert.deepEqual(
      actionsOf(after.actions, 'sign-vote').filter((a) => a.request.round === 0),
      [],
    );
  });

  it('asks again for a signature that was requested but not returned before the crash', () => {
    const { hash, state, precommitRequest } = lockedState();
    assert.equal(actionsOf(precommitRequest, 'sign-vote').length, 1);
    const restored = restoreTendermint(config, context, walRecord(state));
    const again = actionsOf(restored.actions, 'sign-vote');
    assert.equal(again.length, 1);
    assert.equal(again[0]?.request.type, 'precommit');
    assert.equal(toHex(again[0]!.request.blockHash!), toHex(hash));
  });

  it('restores a proposer in the propose step: asks for a value again and schedules the timeout', () => {
    const proposerConfig = makeConfig(proposer.address);
    const { state, actions } = startTendermint(proposerConfig, context);
    assert.equal(actionsOf(actions, 'request-value').length, 1);
    const restored = restoreTendermint(proposerConfig, context, walRecord(state));
    assert.equal(actionsOf(restored.actions, 'request-value').length, 1);
    assert.equal(actionsOf(restored.actions, 'schedule-timeout')[0]?.step, 'propose');
  });

  it('refuses a record of another height or validator', () => {
    const { state } = lockedState();
    const record = walRecord(state);
    const refuses = (run: () => unknown) =>
      assert.throws(run, (error: unknown) => {
        assert.ok(error instanceof ConsensusError);
        assert.equal(error.code, ConsensusErrorCode.INVALID_WAL_RECORD);
        return true;
      });
    refuses(() => restoreTendermint(config, context, { ...record, height: 2 }));
    refuses(() => restoreTendermint(makeConfig(proposer.address), context, record));
    refuses(() => restoreTendermint(config, context, { ...record, round: -1 }));
  });
});
