import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsensusDriver } from '../../src/consensus/driver/index.js';
import { MAX_STATUS_ENTRIES, nodeApiService } from '../../src/consensus/net/index.js';
import type { ValidatorNodeConfig } from '../../src/node/node-config.js';
import { statusRecord } from '../../src/node/validator-node.js';
import type { NodeStore } from '../../src/storage/index.js';

/** The node's status answer keeps within the node API's schema however many peers it has. */
describe('node status record', () => {
  it('lists at most MAX_STATUS_ENTRIES peers and counts them all', () => {
    const peers = Array.from({ length: 300 }, (_, i) => ({
      peer: `node-${i}`,
      committedHeight: i,
    }));
    const driver = {
      status: () => ({
        running: true,
        halted: null,
        syncing: false,
        committedHeight: 5,
        height: 6,
        round: 0,
        step: 'propose',
        lastCommitTime: 1,
        lastBlockTime: 1,
        validators: { count: 4, totalPower: 40, hash: 'ab', proposer: 'node-0' },
        peers,
        mempoolSize: 0,
        pendingEvidence: 0,
        wal: { bytes: 0 },
      }),
    } as unknown as ConsensusDriver;
    const store = { fileSizes: () => ({ database: 1, wal: 1 }) } as unknown as NodeStore;
    const record = statusRecord(driver, { name: 'node-1' } as ValidatorNodeConfig, 'id', store);
    assert.equal((record.peersConnected as unknown[]).length, MAX_STATUS_ENTRIES);
    assert.equal(Object.keys(record.peerHeights as object).length, MAX_STATUS_ENTRIES);
    assert.equal(record.peerCount, 300);
    const parsed = nodeApiService.methods.status.response.safeParse(record);
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues.slice(0, 2)));
  });
});
