import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { ConsensusDriver } from '../../src/consensus/driver/index.js';
import type { CommitInfo, DriverEvents } from '../../src/consensus/driver/driver-types.js';
import { startDriverThenNetwork, unlistedPeerPolicy } from '../../src/node/node-membership.js';

/**
 * How a node starts consensus and what its unlisted-peer policy tells the network: the network
 * is not started before the driver knows the validator sets, and a node catching up gives
 * followers more room (the network test is in test/consensus/net/unlisted.test.ts).
 */

/** A driver whose `start` resolves or fails when the test says. */
class StartingDriver extends EventEmitter<DriverEvents> {
  readonly events: string[];
  private finish: ((error?: Error) => void) | null = null;

  constructor(events: string[]) {
    super();
    this.events = events;
  }

  start(): Promise<void> {
    this.events.push('driver starting');
    return new Promise((resolve, reject) => {
      this.finish = (error) => {
        if (error === undefined) {
          this.events.push('driver running');
          resolve();
        } else {
          reject(error);
        }
      };
    });
  }

  finishStart(error?: Error): void {
    assert.ok(this.finish, 'start was called');
    this.finish(error);
  }
}

function recordingNetwork(events: string[]): { start(): void; closeExcessFollowers(): number } {
  return {
    start: () => void events.push('network started'),
    closeExcessFollowers: () => {
      events.push('excess followers closed');
      return 0;
    },
  };
}

describe('node membership', () => {
  it('starts the network only once the driver runs, and trims followers after each commit', async () => {
    const events: string[] = [];
    const driver = new StartingDriver(events);
    const starting = startDriverThenNetwork(driver, recordingNetwork(events), () =>
      events.push('driver set'),
    );
    assert.deepEqual(events, ['driver starting'], 'no peer is admitted while the chain is read');
    driver.finishStart();
    await starting;
    assert.deepEqual(events, [
      'driver starting',
      'driver running',
      'driver set',
      'network started',
    ]);
    driver.emit('commit', { height: 1 } as CommitInfo);
    assert.equal(events.at(-1), 'excess followers closed');
  });

  it('does not start the network when the driver does not start', async () => {
    const events: string[] = [];
    const driver = new StartingDriver(events);
    const starting = startDriverThenNetwork(driver, recordingNetwork(events), () =>
      events.push('driver set'),
    );
    driver.finishStart(new Error('signer state refused'));
    await assert.rejects(starting, /signer state refused/);
    assert.deepEqual(events, ['driver starting']);
  });

  it('the unlisted policy: catching up before the driver runs and while it syncs', () => {
    let driver: ConsensusDriver | null = null;
    let syncing = false;
    const policy = unlistedPeerPolicy(() => driver);
    assert.equal(policy.catchingUp?.(), true, 'no driver yet: its sets are unknown');
    assert.equal(policy.isValidator(new Uint8Array(32)), false);
    driver = { status: () => ({ syncing }) } as unknown as ConsensusDriver;
    assert.equal(policy.catchingUp?.(), false);
    syncing = true;
    assert.equal(policy.catchingUp?.(), true, 'fetching blocks from a peer ahead');
  });
});
