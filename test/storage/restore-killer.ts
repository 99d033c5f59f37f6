/**
 * Child process for snapshot.test.ts: restores <snapshot> to <target> and kills itself with
 * SIGKILL once the copy is made, at the integrity check that runs before the copy takes the
 * target's name (the second call of `headerStateRoot`; the first checks the snapshot).
 */
import { openStoreFromSnapshot } from '../../src/storage/snapshot.js';
import { fixtureHeaderStateRoot } from './chain-fixture.js';

const [snapshotPath, targetPath] = process.argv.slice(2);
if (snapshotPath === undefined || targetPath === undefined) {
  process.stderr.write('usage: restore-killer <snapshot> <target>\n');
  process.exit(2);
}

let calls = 0;
await openStoreFromSnapshot(snapshotPath, targetPath, {
  headerStateRoot: (block) => {
    calls++;
    if (calls === 2) process.kill(process.pid, 'SIGKILL');
    return fixtureHeaderStateRoot(block);
  },
});
process.stderr.write('the restore finished without reaching its integrity check\n');
process.exit(3);
