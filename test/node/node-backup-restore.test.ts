import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadChain, storedBlockStateRoot } from '../../src/consensus/driver/chain.js';
import { genesisHash, genesisToJson } from '../../src/consensus/genesis.js';
import { toHex } from '../../src/crypto/bytes.js';
import { lockDataDir } from '../../src/node/data-dir-lock.js';
import { openStore } from '../../src/storage/index.js';
import { makeGenesisDocument, makeIdentities, TestCluster } from '../consensus/driver/fixtures.js';
import { runCli } from '../helpers/cli.js';

/**
 * `hypermesh node backup` and `node restore` on a real chain: a one-validator cluster decides
 * alone, and keeps deciding while its store is backed up (docs/node.md, "Backup and restore").
 */
describe('node backup and node restore', () => {
  let genesis: ReturnType<typeof makeGenesisDocument>;
  let cluster: TestCluster;
  let liveDataDir: string;
  let work: string;

  /** A node configuration whose data directory is `dataDir` (nothing else is read). */
  async function config(name: string, dataDir: string, extra: object = {}): Promise<string> {
    const file = path.join(work, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        name: 'node-1',
        dataDir,
        genesisFile: 'genesis.json',
        identity: { keyFile: 'node.key', certificateFile: 'node.pem' },
        trust: { rootsFile: 'roots.pem' },
        storagePlotFile: 'storage.plot',
        ...extra,
      }),
    );
    return file;
  }

  const sha = (file: string): string =>
    createHash('sha256').update(readFileSync(file)).digest('hex');

  /** `hypermesh node backup --config CONFIG --out OUT`. */
  const backupCli = (configFile: string, out: string) =>
    runCli(['node', 'backup', '--config', configFile, '--out', out]);
  /** `hypermesh node restore --config CONFIG --snapshot SNAPSHOT`. */
  const restoreCli = (configFile: string, snapshot: string) =>
    runCli(['node', 'restore', '--config', configFile, '--snapshot', snapshot]);

  /** The height and state root a backup or restore printed. */
  function printed(out: string): { height: number; root: string } {
    const match = /: height (\d+), state root ([0-9a-f]{64})\n/.exec(out);
    assert.ok(match, `height and state root in: ${out}`);
    return { height: Number(match[1]), root: match[2]! };
  }

  async function backup(name: string): Promise<string> {
    const snapshot = path.join(work, name);
    const result = await backupCli(await config('live', liveDataDir), snapshot);
    assert.equal(result.code, 0, result.err);
    return snapshot;
  }

  before(async () => {
    const identities = await makeIdentities(1);
    genesis = makeGenesisDocument(identities);
    cluster = new TestCluster(identities, genesis);
    await cluster.startAll();
    await cluster.waitForHeight(3);
    liveDataDir = path.dirname(cluster.paths(0).store);
    work = await mkdtemp(path.join(tmpdir(), 'hypermesh-node-backup-'));
    // The configurations' genesisFile: restore checks a snapshot's chain against it.
    await writeFile(path.join(work, 'genesis.json'), genesisToJson(genesis));
  });
  after(async () => {
    await cluster.close();
    await rm(work, { recursive: true, force: true });
  });

  it('backs up the store of a running node and restores it into a new data directory', async () => {
    const snapshot = path.join(work, 'running.snapshot');
    const result = await backupCli(await config('live', liveDataDir), snapshot);
    assert.equal(result.code, 0, result.err);
    const taken = printed(result.out);
    assert.ok(taken.height >= 3, result.out);
    assert.match(result.out, /checked against the header of block \d+/);
    // The node kept committing: the snapshot is one point in time, not the live file.
    await cluster.waitForHeight(taken.height + 2);

    const dataDir = path.join(work, 'restored', 'data');
    const restore = await restoreCli(await config('restored', dataDir), snapshot);
    assert.equal(restore.code, 0, restore.err);
    assert.deepEqual(printed(restore.out), taken);
    assert.match(restore.out, /There is no .*signer-state\.json/);
    assert.match(restore.out, /DRIVER_SIGNER_STATE_MISSING/);
    assert.match(restore.out, /"waitHeights": N/);
    // The store alone: no lock, no temporary copy, no -wal left.
    assert.deepEqual(readdirSync(dataDir), ['store.sqlite']);

    const restored = openStore(path.join(dataDir, 'store.sqlite'), { readonly: true });
    try {
      assert.equal(restored.blocks.latestHeight(), taken.height);
      assert.equal(toHex(restored.state.root()), taken.root);
      assert.equal(loadChain(genesis, restored).committedHeight, taken.height);
      const report = restored.verifyIntegrity({ headerStateRoot: storedBlockStateRoot });
      assert.equal(report.headerChecked, true);
    } finally {
      restored.close();
    }
  });

  it('says that a signer-state.json in the data directory is used as it is', async () => {
    const snapshot = await backup('signer.snapshot');
    const dataDir = path.join(work, 'with-signer-state');
    await mkdir(dataDir);
    await writeFile(path.join(dataDir, 'signer-state.json'), 'copied from the old host');
    const restore = await restoreCli(await config('with-signer-state', dataDir), snapshot);
    assert.equal(restore.code, 0, restore.err);
    assert.match(restore.out, /signer-state\.json is there and is used as it is/);
  });

  it('refuses a data directory that holds a store, leaving it as it was', async () => {
    const snapshot = await backup('occupied.snapshot');
    const dataDir = path.join(work, 'occupied');
    const file = await config('occupied', dataDir);
    const first = await restoreCli(file, snapshot);
    assert.equal(first.code, 0, first.err);
    const store = path.join(dataDir, 'store.sqlite');
    const before = sha(store);

    const again = await restoreCli(file, snapshot);
    assert.equal(again.code, 1, again.err);
    assert.match(again.err, /already holds a store .*\[STORAGE_TARGET_EXISTS\]/);
    assert.equal(again.out, '');
    assert.equal(sha(store), before);
    assert.deepEqual(readdirSync(dataDir), ['store.sqlite']);
  });

  it('refuses a tampered or damaged snapshot, writing nothing', async () => {
    // The latest height holding the state of the height before: only the header tells.
    const tampered = await backup('tampered.snapshot');
    const db = new Database(tampered);
    const latest = Number(db.prepare('SELECT max(height) FROM block').pluck().get());
    db.prepare(
      `UPDATE state_root SET (root, root_id, key_count) =
         (SELECT root, root_id, key_count FROM state_root WHERE height = ?) WHERE height = ?`,
    ).run(latest - 1, latest);
    db.prepare('DELETE FROM state_value WHERE height = ?').run(latest);
    db.close();

    const damaged = path.join(work, 'damaged.snapshot');
    const bytes = readFileSync(await backup('damaged-source.snapshot'));
    bytes.fill(0x5a, 4096, 8192);
    await writeFile(damaged, bytes);

    for (const [snapshot, expected] of [
      [tampered, new RegExp(`block ${latest} .*\\[STORAGE_HEADER_STATE_MISMATCH\\]`)],
      [damaged, /\[STORAGE_CORRUPT\]/],
    ] as const) {
      const dataDir = path.join(work, `from-${path.basename(snapshot)}`, 'data');
      const result = await restoreCli(await config('from-bad', dataDir), snapshot);
      assert.equal(result.code, 1, result.err);
      assert.match(result.err, expected);
      assert.equal(result.out, '');
      // The directories the restore created are gone again.
      assert.equal(existsSync(path.dirname(dataDir)), false, 'no data directory left');
    }
  });

  it('refuses a snapshot of another chain than the configured genesis, writing nothing', async () => {
    const snapshot = await backup('other-chain.snapshot');
    const other = makeGenesisDocument(await makeIdentities(1));
    await writeFile(path.join(work, 'other-genesis.json'), genesisToJson(other));
    const dataDir = path.join(work, 'other-chain', 'data');
    const result = await restoreCli(
      await config('other-chain', dataDir, { genesisFile: 'other-genesis.json' }),
      snapshot,
    );
    assert.equal(result.code, 1, result.err);
    assert.match(
      result.err,
      new RegExp(
        `other-chain\\.snapshot: it is a snapshot of another chain: its block 1 follows ${toHex(genesisHash(genesis))}, not the hash ${toHex(genesisHash(other))} of the genesis .*other-genesis\\.json .*\\[GENESIS_MISMATCH\\]`,
      ),
    );
    assert.equal(result.out, '');
    assert.equal(existsSync(path.dirname(dataDir)), false, 'no data directory left');
  });

  it('run as root, gives the restored store to the owner of the data directory', async (t) => {
    if (process.geteuid?.() !== 0) {
      t.skip('needs root: a restore only changes owners when run as root (CI runs as root)');
      return;
    }
    const nobody = 65534;
    const snapshot = await backup('owned.snapshot');
    const existing = path.join(work, 'owned-existing');
    await mkdir(existing, { mode: 0o700 });
    await chown(existing, nobody, nobody);
    // A data directory the restore creates takes the owner of the directory it is created in.
    const parent = path.join(work, 'owned-parent');
    await mkdir(parent);
    await chown(parent, nobody, nobody);
    const created = path.join(parent, 'node', 'data');
    // Each data directory, and the directories the restore created for it (both of node/data).
    for (const [name, dataDir, createdDirectories] of [
      ['owned-existing', existing, []],
      ['owned-created', created, [created, path.dirname(created)]],
    ] as const) {
      const result = await restoreCli(await config(name, dataDir), snapshot);
      assert.equal(result.code, 0, result.err);
      assert.deepEqual(readdirSync(dataDir), ['store.sqlite']);
      for (const file of [path.join(dataDir, 'store.sqlite'), dataDir, ...createdDirectories]) {
        const { uid, gid } = statSync(file);
        assert.deepEqual({ file, uid, gid }, { file, uid: nobody, gid: nobody });
      }
      assert.equal(statSync(path.join(dataDir, 'store.sqlite')).mode & 0o777, 0o600);
    }
  });

  it('refuses a data directory a running node holds', async () => {
    const snapshot = await backup('locked.snapshot');
    const dataDir = path.join(work, 'locked');
    await mkdir(dataDir);
    const lock = await lockDataDir(dataDir);
    try {
      const result = await restoreCli(await config('locked', dataDir), snapshot);
      assert.equal(result.code, 1, result.err);
      assert.match(result.err, /data directory .* is in use by this process/);
      assert.deepEqual(readdirSync(dataDir), ['node.lock']);
    } finally {
      await lock.release();
    }
  });

  it('backup refuses a missing store, an existing --out and missing options', async () => {
    const empty = path.join(work, 'no-store');
    const noStore = await backupCli(
      await config('no-store', empty),
      path.join(work, 'never.snapshot'),
    );
    assert.equal(noStore.code, 1, noStore.err);
    assert.match(noStore.err, /no store at .*no-store\/store\.sqlite: nothing to back up/);
    assert.equal(existsSync(empty), false);
    assert.equal(existsSync(path.join(work, 'never.snapshot')), false);

    const existing = path.join(work, 'existing.snapshot');
    await writeFile(existing, 'precious');
    const occupied = await backupCli(await config('live', liveDataDir), existing);
    assert.equal(occupied.code, 1, occupied.err);
    assert.match(occupied.err, /\[STORAGE_TARGET_EXISTS\]/);
    assert.equal(readFileSync(existing, 'utf8'), 'precious');

    const usage = await runCli(['node', 'backup', '--config', await config('live', liveDataDir)]);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /--out is required/);
    const noSnapshot = await restoreCli(
      await config('nothing', path.join(work, 'nothing')),
      path.join(work, 'no-such.snapshot'),
    );
    assert.equal(noSnapshot.code, 2, noSnapshot.err);
    assert.match(noSnapshot.err, /no-such\.snapshot: no such file/);
    assert.equal(existsSync(path.join(work, 'nothing')), false);
  });
});
