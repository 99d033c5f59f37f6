import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConsensusLog, WAL_STATE_RECORD } from '../../../src/consensus/driver/wal-log.js';
import { DriverErrorCode } from '../../../src/consensus/driver/errors.js';
import type { TendermintState } from '../../../src/consensus/state.js';
import { startTendermint, step } from '../../../src/consensus/tendermint.js';
import { restoreTendermint, walRecord } from '../../../src/consensus/wal.js';
import { openConsensusWal } from '../../../src/storage/index.js';
import {
  makeBlock,
  makeConfig,
  makeGenesis,
  makeProposal,
  makeValidators,
  makeVote,
} from '../sim/fixtures.js';
import { tempDir } from './fixtures.js';
import { blockHash } from '../../../src/consensus/messages.js';
import { proposerAt } from '../../../src/consensus/proposer.js';
import { encodeBlock } from '../../../src/consensus/wire.js';

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

/** A validator that is not round 0's proposer, locked on round 0's block after a prevote quorum. */
function lockedState() {
  const { validators, set } = makeValidators([1, 1, 1, 1]);
  const context = makeGenesis(set);
  const proposer = proposerAt(context.schedule, 0);
  const self = validators.find((v) => v.address !== proposer.address)!;
  const config = makeConfig(self.address);
  const states: TendermintState[] = [];
  let { state } = startTendermint(config, context);
  states.push(state);
  const block = makeBlock(context, proposer.address);
  const hash = blockHash(block.header);
  const feed = (event: Parameters<typeof step>[1]) => {
    const result = step(state, event);
    state = result.state;
    states.push(state);
    return result.actions;
  };
  const proposerKeys = validators.find((v) => v.address === proposer.address)!;
  feed({ type: 'proposal-received', proposal: makeProposal(proposerKeys, block, 0) });
  feed({ type: 'value-validated', height: 1, blockHash: hash, valid: true });
  const prevoteRequest = state.ownVotes.get('0/prevote')!.request;
  feed({
    type: 'vote-signed',
    vote: makeVote(self, 'prevote', 1, 0, hash, prevoteRequest.notBefore),
  });
  for (const other of validators.filter((v) => v !== self)) {
    feed({ type: 'vote-received', vote: makeVote(other, 'prevote', 1, 0, hash) });
  }
  return { config, context, states, state, block };
}

describe('ConsensusLog (the driver side of the consensus WAL)', () => {
  it('round-trips the engine state through the WAL, locks and own votes included', () => {
    const path = join(dir, 'roundtrip.wal');
    const { config, context, states, state, block } = lockedState();
    assert.ok(state.lockedValue !== null, 'the validator locked');
    const wal = openConsensusWal(path);
    const log = new ConsensusLog(wal);
    for (const s of states) log.log(s);
    wal.close();
    const reopened = new ConsensusLog(openConsensusWal(path));
    const { record, lastEndHeight } = reopened.replay();
    assert.equal(lastEndHeight, null);
    assert.deepEqual(record, walRecord(state));
    assert.equal(blockHash(record!.lockedValue!.header).length, 32);
    assert.deepEqual(record!.lockedValue, block);
    const restored = restoreTendermint(config, context, record!);
    assert.equal(restored.state.lockedRound, 0);
    assert.equal(restored.state.step, state.step);
  });

  it('skips unchanged records and carries each block once per height', () => {
    const path = join(dir, 'dedupe.wal');
    const { states, state } = lockedState();
    const log = new ConsensusLog(openConsensusWal(path));
    log.log(states[0]!);
    assert.equal(log.log(states[0]!), false, 'an unchanged state is not appended');
    assert.equal(log.stats.unchanged, 1);
    const before = log.stats.bytes;
    log.log(state);
    const first = log.stats.bytes - before;
    // Another record naming the same locked block: the block is not written again.
    log.log({ ...state, round: state.round + 1 });
    const second = log.stats.bytes - before - first;
    const blockBytes = encodeBlock(state.lockedValue!).length;
    assert.ok(
      first - second >= blockBytes,
      `records of ${first} and ${second} bytes, block ${blockBytes}`,
    );
    const { record } = log.replay();
    assert.equal(record!.round, state.round + 1);
    assert.deepEqual(record!.lockedValue, state.lockedValue);
    // After the height ends, the log holds only the checkpoint.
    log.endHeight(1);
    assert.deepEqual(log.replay(), { lastEndHeight: 1, record: null });
  });

  it('refuses records it cannot decode with WAL_RECORD_CORRUPT', () => {
    for (const [name, record] of [
      ['garbage', { type: WAL_STATE_RECORD, payload: Uint8Array.of(1, 2, 3) }],
      ['unknown type', { type: 7, payload: Uint8Array.of(0xa0) }],
      ['schema', { type: WAL_STATE_RECORD, payload: Uint8Array.of(0xa0) }],
    ] as const) {
      const wal = openConsensusWal(join(dir, `corrupt-${name.replace(' ', '-')}.wal`));
      wal.append(record);
      assert.throws(
        () => new ConsensusLog(wal).replay(),
        (error: Error & { code?: string }) => error.code === DriverErrorCode.WAL_RECORD_CORRUPT,
        name,
      );
      wal.close();
    }
  });
});
