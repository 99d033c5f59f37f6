import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { blockTemplate, buildBlock } from '../../../src/consensus/block.js';
import {
  ConsensusLog,
  WAL_STATE_RECORD,
  openConsensusLog,
} from '../../../src/consensus/driver/wal-log.js';
import { blockHash } from '../../../src/consensus/messages.js';
import { proposerAt } from '../../../src/consensus/proposer.js';
import { startTendermint, step } from '../../../src/consensus/tendermint.js';
import { walRecord } from '../../../src/consensus/wal.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { openConsensusWal } from '../../../src/storage/index.js';
import { encodeFrame } from '../../../src/storage/wal-format.js';
import {
  CHAIN_ID,
  makeConfig,
  makeGenesis,
  makeProposal,
  makeValidators,
  makeVote,
} from '../sim/fixtures.js';
import { tempDir } from './fixtures.js';

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

describe('a crash while logging a block whose transaction spells a WAL record', () => {
  it('reopens with the torn record cut off, not as a corrupt WAL', () => {
    const { validators, set } = makeValidators([1, 1, 1, 1]);
    const context = makeGenesis(set);
    const proposer = proposerAt(context.schedule, 0);
    const self = validators.find((v) => v.address !== proposer.address)!;
    let { state } = startTendermint(makeConfig(self.address), context);
    // Transaction bytes are the client's choice: here, a whole intact WAL frame.
    const embedded = encodeFrame(WAL_STATE_RECORD, Uint8Array.of(0xa0));
    const block = buildBlock(blockTemplate(CHAIN_ID, context, proposer.address), {
      transactions: [embedded, new Uint8Array(512).fill(0x5a)],
      evidence: [],
      appStateRoot: sha256(Uint8Array.of(7)),
      consensusProof: new Uint8Array(0),
    });
    const hash = blockHash(block.header);
    const proposerKeys = validators.find((v) => v.address === proposer.address)!;
    // Up to the lock on the block: the first record naming it carries its bytes.
    const states = [state];
    const feed = (event: Parameters<typeof step>[1]) => {
      state = step(state, event).state;
      states.push(state);
    };
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
    assert.ok(state.lockedValue !== null, 'the validator locked on the block');

    const path = join(dir, 'torn-block.wal');
    const log = new ConsensusLog(openConsensusWal(path));
    let lastWhole = states[0]!;
    let beforeBlock = 0;
    let at = -1;
    for (const next of states) {
      const size = statSync(path).size;
      if (!log.log(next)) continue;
      at = readFileSync(path).indexOf(Buffer.from(embedded), size);
      if (at >= 0) {
        beforeBlock = size;
        break;
      }
      lastWhole = next;
    }
    assert.ok(at > beforeBlock, 'a record carries the transaction verbatim');
    // The process died with that record written up to just past the embedded frame.
    truncateSync(path, at + embedded.length + 1);

    const warnings: [string, Record<string, unknown>][] = [];
    const opened = openConsensusLog(path, 0, (message, fields) => warnings.push([message, fields]));
    try {
      assert.deepEqual(opened.record, walRecord(lastWhole));
      assert.equal(statSync(path).size, beforeBlock);
      // The cut is reported, with its size.
      assert.deepEqual(warnings, [
        [
          'the consensus WAL ended in an unreadable tail; it was cut off',
          { path, truncatedBytes: at + embedded.length + 1 - beforeBlock },
        ],
      ]);
    } finally {
      opened.close();
    }
  });
});
