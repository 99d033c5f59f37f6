import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import type { ConsensusDriver } from '../../../src/consensus/driver/index.js';
import {
  chainSummary,
  conflictingMessages,
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  type TestNode,
  type ValidatorIdentity,
} from './fixtures.js';

const VICTIM = 3;

interface Totals {
  signed: number;
  reused: number;
  refused: number;
}

function addCounters(totals: Totals, driver: ConsensusDriver): void {
  const counters = driver.status().signer!;
  totals.signed += counters.signed;
  totals.reused += counters.reused;
  totals.refused += counters.refused;
}

/**
 * Runs `crashes` incarnations of the victim validator. `arm` installs the crash trigger on each
 * one: it calls `crash()` from inside an event listener, which stops the driver at once — like a
 * kill at that point: nothing after it runs and only what was fsynced survives. WAL snapshots
 * taken at every step boundary (after the boundary's record is durable) are passed to `damage`,
 * which may roll the WAL back before the restart. Returns the signer's counters over all
 * incarnations, the last (still running) one included.
 */
async function crashRepeatedly(
  cluster: TestCluster,
  crashes: number,
  arm: (victim: TestNode, crash: number, kill: () => void) => void,
  damage: (walPath: string, snapshots: readonly Uint8Array[]) => void = () => undefined,
): Promise<{ totals: Totals; last: TestNode }> {
  const totals: Totals = { signed: 0, reused: 0, refused: 0 };
  const paths = cluster.paths(VICTIM);
  for (let crash = 0; crash < crashes; crash++) {
    const victim = cluster.create(VICTIM);
    const snapshots: Uint8Array[] = [];
    victim.driver.on('round', () => snapshots.push(readFileSync(paths.wal)));
    let killed!: () => void;
    const down = new Promise<void>((resolve) => (killed = resolve));
    arm(victim, crash, () => {
      void victim.driver.stop();
      killed();
    });
    await victim.driver.start();
    await down;
    await cluster.stop(VICTIM);
    addCounters(totals, victim.driver);
    damage(paths.wal, snapshots);
  }
  const last = await cluster.start(VICTIM);
  return { totals, last };
}

async function checkAgreement(cluster: TestCluster): Promise<void> {
  const target = cluster.node(0).height + 2;
  await cluster.waitForHeight(target);
  const reference = chainSummary(cluster.node(0).store, target);
  for (const node of cluster.running()) {
    assert.deepEqual(chainSummary(node.store, target), reference, `${node.id} agrees`);
  }
  assert.deepEqual(conflictingMessages(cluster.hub), []);
}

describe('ConsensusDriver: crash safety', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(4);
  });

  it('restarts from its WAL at every step boundary and never sends two different votes', async () => {
    const cluster = new TestCluster(identities, makeGenesisDocument(identities));
    try {
      for (let i = 0; i < VICTIM; i++) await cluster.start(i);
      // Incarnation k dies at its k-th step boundary (the WAL record durable, none of the
      // step's actions run): across them the victim dies in propose, prevote, precommit and
      // commit steps and at the start of a height.
      const { totals, last } = await crashRepeatedly(cluster, 6, (victim, crash, kill) => {
        let boundaries = 0;
        victim.driver.on('round', () => {
          if (++boundaries === crash + 1) kill();
        });
      });
      await checkAgreement(cluster);
      addCounters(totals, last.driver);
      assert.ok(totals.signed > 0, 'the victim signed votes between crashes');
    } finally {
      await cluster.close();
    }
  });

  it('reuses or refuses — never re-signs — after a crash between signing and the WAL record', async () => {
    const cluster = new TestCluster(identities, makeGenesisDocument(identities));
    try {
      for (let i = 0; i < VICTIM; i++) await cluster.start(i);
      // Each incarnation dies the moment its signer releases a signature (the signer's record is
      // durable, the engine has not seen the signature), and the WAL loses its last two step
      // boundaries: the restarted engine asks again for votes it signed — some of them already
      // broadcast — or, after a timeout, for different ones.
      const { totals, last } = await crashRepeatedly(
        cluster,
        6,
        (victim, crash, kill) => {
          let signatures = 0;
          victim.driver.on('signed', () => {
            if (++signatures === 1 + (crash % 3)) kill();
          });
        },
        (walPath, snapshots) => {
          const back = snapshots[Math.max(0, snapshots.length - 3)];
          if (back !== undefined) writeFileSync(walPath, back);
        },
      );
      await checkAgreement(cluster);
      addCounters(totals, last.driver);
      assert.ok(
        totals.reused + totals.refused > 0,
        `the guard answered repeated requests from its record (${JSON.stringify(totals)})`,
      );
    } finally {
      await cluster.close();
    }
  });
});
