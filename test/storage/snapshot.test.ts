import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isHyperMeshError } from '../../src/codec/error.js';
import type { HyperMeshError } from '../../src/codec/error.js';
import { STORE_APPLICATION_ID } from '../../src/storage/database.js';
import { StorageErrorCode } from '../../src/storage/errors.js';
import { openStoreFromSnapshot } from '../../src/storage/snapshot.js';
import { verifyStateProof } from '../../src/storage/state-proof.js';
import { openStore } from '../../src/storage/store.js';
import type { NodeStore } from '../../src/storage/store.js';
import {
  changes,
  fixtureHeaderStateRoot,
  hex,
  nextBlock,
  temporaryDirectory,
  text,
} from './chain-fixture.js';

const storageError = (code: StorageErrorCode) => (error: unknown) => isHyperMeshError(error, code);

const restoreOptions = { headerStateRoot: fixtureHeaderStateRoot };

const killer = fileURLToPath(new URL('./restore-killer.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

describe('snapshots', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  let store: NodeStore;

  before(async () => {
    dir = await temporaryDirectory('snapshot');
    store = openStore(dir.file('live.db'));
    for (let i = 0; i < 20; i++)
      store.saveBlock(nextBlock(store, { stateChanges: changes(`s${i % 4}`, 40, `v${i}`) }));
  });
  after(async () => {
    store.close();
    await dir.cleanup();
  });

  it('backs up a live store and restores it as a new, verified store', async () => {
    const snapshot = dir.file('snapshot-1.db');
    const rootAtBackup = hex(store.state.root());
    await store.backup(snapshot);
    // The live store keeps going; the snapshot is a point in time.
    store.saveBlock(nextBlock(store, { stateChanges: changes('after', 5, 'later') }));

    const restored = await openStoreFromSnapshot(
      snapshot,
      dir.file('restored-1.db'),
      restoreOptions,
    );
    try {
      assert.equal(restored.blocks.latestHeight(), 20);
      assert.equal(hex(restored.state.root()), rootAtBackup);
      assert.deepEqual(restored.blocks.byHeight(7), store.blocks.byHeight(7));
      const result = restored.state.getWithProof(text('s1/3'));
      assert.ok(verifyStateProof(result.root, text('s1/3'), result.value, result.proof));
      assert.equal(restored.state.get(text('after/1')), null);
      // The restored store carries on the chain from where the snapshot was taken.
      restored.saveBlock(nextBlock(restored, { stateChanges: changes('after', 5, 'restored') }));
      assert.equal(restored.verifyIntegrity().latestHeight, 21);
    } finally {
      restored.close();
    }
    // The snapshot itself is a self-contained store file.
    const direct = openStore(snapshot, { readonly: true });
    try {
      assert.equal(direct.blocks.latestHeight(), 20);
    } finally {
      direct.close();
    }
  });

  it('a snapshot is one file: refusing it, restoring from it and opening it write nothing beside it', async () => {
    // Its own directory, so that anything SQLite would create beside it shows.
    const folder = dir.file('one-file');
    mkdirSync(folder);
    const snapshot = join(folder, 'snapshot.db');
    await store.backup(snapshot);
    const listing = () => readdirSync(folder).sort();
    assert.deepEqual(listing(), ['snapshot.db']);
    // Rollback journal mode in the header (bytes 18-19: 1, where WAL mode is 2).
    const header = readFileSync(snapshot).subarray(18, 20);
    assert.deepEqual([...header], [1, 1]);
    const bytes = readFileSync(snapshot);

    const refusals: [string, Parameters<typeof openStoreFromSnapshot>[2], StorageErrorCode][] = [
      [
        'another header root',
        { headerStateRoot: () => new Uint8Array(32) },
        StorageErrorCode.HEADER_STATE_MISMATCH,
      ],
      [
        'an unreadable header',
        {
          headerStateRoot: () => {
            throw new Error('not a block');
          },
        },
        StorageErrorCode.CORRUPT,
      ],
    ];
    for (const [label, options, code] of refusals) {
      await assert.rejects(
        openStoreFromSnapshot(snapshot, dir.file(`one-file-refused-${code}.db`), options),
        storageError(code),
        label,
      );
      assert.deepEqual(listing(), ['snapshot.db'], `${label}: nothing written beside the snapshot`);
    }
    const direct = openStore(snapshot, { readonly: true });
    assert.equal(direct.blocks.latestHeight(), store.blocks.latestHeight());
    direct.close();
    assert.deepEqual(listing(), ['snapshot.db'], 'a read-only open writes nothing');

    // Read-only media: a restore needs to write nothing beside the snapshot. chmod does not stop
    // root (CI runs tests as root), so the listing above and below is what shows it there; as
    // another user, SQLite could not create its -wal and -shm here and the restore would fail.
    chmodSync(folder, 0o555);
    try {
      const restored = await openStoreFromSnapshot(
        snapshot,
        dir.file('from-read-only-folder.db'),
        restoreOptions,
      );
      assert.equal(restored.blocks.latestHeight(), store.blocks.latestHeight());
      restored.close();
    } finally {
      chmodSync(folder, 0o755);
    }
    assert.deepEqual(listing(), ['snapshot.db'], 'a restore writes nothing beside the snapshot');
    assert.deepEqual(readFileSync(snapshot), bytes, 'the snapshot is unchanged');
  });

  it('a backup finishes while another connection commits a block between every two of its steps', async () => {
    // A node commits through its own connection while `node backup` copies through another.
    // Each commit restarts SQLite's copy from the first page: at a fixed number of pages per
    // step, a store larger than one step would never be copied. Some 1.5 MiB here, so a few
    // hundred pages against 100 in the first step.
    const livePath = dir.file('busy-live.db');
    const writer = openStore(livePath);
    const value = 'x'.repeat(1000);
    for (let i = 0; i < 30; i++) {
      writer.saveBlock(nextBlock(writer, { stateChanges: changes(`busy${i}`, 50, value) }));
    }
    const reader = openStore(livePath, { readonly: true });
    const snapshot = dir.file('busy-snapshot.db');
    const before = writer.blocks.latestHeight() as number;
    let finished = false;
    const copying = reader.backup(snapshot).then(() => {
      finished = true;
    });
    const maxCommits = 100;
    let commits = 0;
    try {
      while (!finished && commits < maxCommits) {
        writer.saveBlock(nextBlock(writer, { stateChanges: changes('busy', 2, `c${commits}`) }));
        commits++;
        await nextTurn();
      }
      await copying;
    } finally {
      reader.close();
    }
    assert.ok(commits >= 1, 'the writer committed while the copy ran');
    assert.ok(
      commits < maxCommits,
      `the copy finished while the writer kept committing (${commits} commits)`,
    );
    const restored = await openStoreFromSnapshot(
      snapshot,
      dir.file('busy-restored.db'),
      restoreOptions,
    );
    try {
      const height = restored.blocks.latestHeight() as number;
      assert.ok(height >= before && height <= before + commits, `height ${height}`);
      assert.equal(hex(restored.state.root()), hex(writer.state.root(height)));
      assert.equal(
        restored.verifyIntegrity({ headerStateRoot: fixtureHeaderStateRoot }).headerChecked,
        true,
      );
    } finally {
      restored.close();
      writer.close();
    }
  });

  it('never overwrites: an existing backup or restore target is TARGET_EXISTS', async () => {
    const snapshot = dir.file('snapshot-2.db');
    await store.backup(snapshot);
    await assert.rejects(store.backup(snapshot), storageError(StorageErrorCode.TARGET_EXISTS));
    const target = dir.file('occupied.db');
    writeFileSync(target, 'precious');
    await assert.rejects(
      openStoreFromSnapshot(snapshot, target, restoreOptions),
      storageError(StorageErrorCode.TARGET_EXISTS),
    );
  });

  it('a backup is named only when complete and checked; a failed one leaves nothing at its target', async () => {
    const out = dir.file('named-when-checked.db');
    const leftovers = () =>
      readdirSync(dirname(out)).filter((name) => name.startsWith(basename(out)));
    // A copy of a backup killed before it finished, by a process that no longer runs.
    const child = spawn(process.execPath, ['-e', '']);
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
    const stale = `${out}.tmp-${child.pid}-0123456789abcdef`;
    writeFileSync(stale, '');
    writeFileSync(`${stale}-journal`, 'partial');

    let seenWhileChecking: string[] | undefined;
    const report = await store.backup(out, {
      headerStateRoot: (block) => {
        // Called by the check of the finished copy: the target has no name yet.
        seenWhileChecking ??= leftovers();
        return fixtureHeaderStateRoot(block);
      },
    });
    assert.equal(seenWhileChecking?.length, 1, String(seenWhileChecking));
    assert.match(seenWhileChecking[0]!, /^named-when-checked\.db\.tmp-\d+-[0-9a-f]{16}$/);
    assert.notEqual(seenWhileChecking[0], basename(stale));
    assert.equal(report.headerChecked, true);
    assert.equal(report.latestHeight, store.blocks.latestHeight());
    assert.deepEqual(leftovers(), [basename(out)]);

    const refused = dir.file('fails-its-check.db');
    await assert.rejects(
      store.backup(refused, { headerStateRoot: () => new Uint8Array(32) }),
      storageError(StorageErrorCode.HEADER_STATE_MISMATCH),
    );
    assert.deepEqual(
      readdirSync(dirname(refused)).filter((name) => name.startsWith(basename(refused))),
      [],
    );
  });

  it('never follows a symbolic link at the target, even a dangling one', async () => {
    const elsewhere = dir.file('link-destination.db');
    const link = dir.file('link.db');
    symlinkSync(elsewhere, link);
    await assert.rejects(store.backup(link), storageError(StorageErrorCode.TARGET_EXISTS));
    const snapshot = dir.file('snapshot-3.db');
    await store.backup(snapshot);
    await assert.rejects(
      openStoreFromSnapshot(snapshot, link, restoreOptions),
      storageError(StorageErrorCode.TARGET_EXISTS),
    );
    // Nothing was written through the link, and the link itself is left as it was.
    assert.equal(existsSync(elsewhere), false);
    assert.equal(lstatSync(link).isSymbolicLink(), true);
  });

  it('refuses a bad snapshot before creating the target', async () => {
    const garbage = dir.file('garbage-snapshot.db');
    writeFileSync(garbage, Buffer.alloc(4096, 0x42));
    const target = dir.file('from-garbage.db');
    await assert.rejects(
      openStoreFromSnapshot(garbage, target, restoreOptions),
      storageError(StorageErrorCode.NOT_A_DATABASE),
    );
    assert.equal(existsSync(target), false);

    const future = dir.file('future-snapshot.db');
    await store.backup(future);
    const db = new Database(future);
    db.prepare(
      "INSERT INTO schema_version (version, name, applied_at_ms) VALUES (99, 'future', 0)",
    ).run();
    db.close();
    const target2 = dir.file('from-future.db');
    await assert.rejects(
      openStoreFromSnapshot(future, target2, restoreOptions),
      storageError(StorageErrorCode.SCHEMA_TOO_NEW),
    );
    assert.equal(existsSync(target2), false);

    await assert.rejects(
      openStoreFromSnapshot(
        dir.file('no-such-snapshot.db'),
        dir.file('from-nothing.db'),
        restoreOptions,
      ),
      storageError(StorageErrorCode.CANNOT_OPEN),
    );
  });

  it('refuses an empty file, a fresh store and a store without blocks before creating the target', async () => {
    const empty = dir.file('empty-snapshot.db');
    writeFileSync(empty, '');
    const fresh = dir.file('fresh-snapshot.db');
    openStore(fresh).close();
    const unnamed = dir.file('sqlite-without-schema.db');
    const raw = new Database(unnamed);
    raw.pragma(`application_id = ${STORE_APPLICATION_ID}`);
    raw.close();
    for (const [label, snapshot] of [
      ['a 0-byte file', empty],
      ['a new store with no block', fresh],
      ['an HMSH file with no schema', unnamed],
    ] as const) {
      const before = readFileSync(snapshot);
      const target = dir.file(`from-${label.replaceAll(' ', '-')}.db`);
      await assert.rejects(
        openStoreFromSnapshot(snapshot, target, restoreOptions),
        storageError(StorageErrorCode.NOT_A_SNAPSHOT),
        label,
      );
      assert.equal(existsSync(target), false, label);
      assert.deepEqual(readFileSync(snapshot), before, `${label}: the snapshot is unchanged`);
    }
  });

  it('a snapshot whose latest state is not the one its latest header commits to is refused', async () => {
    // Height h's state swapped for height h-1's: the values, the tree and the root agree with
    // each other, so only the header (which commits to the state after block h) tells.
    const snapshot = dir.file('other-height-state.db');
    await store.backup(snapshot);
    const db = new Database(snapshot);
    const latest = Number(db.prepare('SELECT max(height) FROM block').pluck().get());
    db.prepare(
      `UPDATE state_root SET (root, root_id, key_count) =
         (SELECT root, root_id, key_count FROM state_root WHERE height = ?) WHERE height = ?`,
    ).run(latest - 1, latest);
    db.prepare('DELETE FROM state_value WHERE height = ?').run(latest);
    db.close();

    const tampered = openStore(snapshot, { readonly: true });
    try {
      // Without the header reader the store cannot tell, and says so.
      assert.equal(tampered.verifyIntegrity().headerChecked, false);
      assert.throws(
        () => tampered.verifyIntegrity({ headerStateRoot: fixtureHeaderStateRoot }),
        (error: unknown) =>
          storageError(StorageErrorCode.HEADER_STATE_MISMATCH)(error) &&
          (error as HyperMeshError).detail.height === latest,
      );
    } finally {
      tampered.close();
    }
    for (const verify of [true, false]) {
      const target = dir.file(`from-other-height-state-${verify}.db`);
      await assert.rejects(
        openStoreFromSnapshot(snapshot, target, { ...restoreOptions, verify }),
        storageError(StorageErrorCode.HEADER_STATE_MISMATCH),
      );
      assert.equal(existsSync(target), false, 'refused before the target is created');
    }
    const report = store.verifyIntegrity({ headerStateRoot: fixtureHeaderStateRoot });
    assert.equal(report.headerChecked, true);
  });

  it('a snapshot whose latest header cannot be read is CORRUPT', async () => {
    const snapshot = dir.file('unreadable-header.db');
    await store.backup(snapshot);
    const target = dir.file('from-unreadable-header.db');
    await assert.rejects(
      openStoreFromSnapshot(snapshot, target, {
        headerStateRoot: () => {
          throw new Error('not a block');
        },
      }),
      storageError(StorageErrorCode.CORRUPT),
    );
    assert.equal(existsSync(target), false);
  });

  it('a failure between the copy and its move to the target leaves no target and no copy', async () => {
    const snapshot = dir.file('snapshot-fail-late.db');
    await store.backup(snapshot);
    const target = dir.file('fail-late.db');
    let calls = 0;
    await assert.rejects(
      openStoreFromSnapshot(snapshot, target, {
        headerStateRoot: (block) => {
          // The first call checks the snapshot; the second is the copy's integrity check.
          if (++calls === 2) throw new Error('injected failure after the copy');
          return fixtureHeaderStateRoot(block);
        },
      }),
      storageError(StorageErrorCode.CORRUPT),
    );
    assert.equal(calls, 2);
    assert.equal(existsSync(target), false);
    const related = readdirSync(dir.path).filter((name) => name.startsWith(basename(target)));
    assert.deepEqual(related, []);
  });

  it("a restore leaves another running restore's copy alone", async () => {
    const snapshot = dir.file('snapshot-concurrent.db');
    await store.backup(snapshot);
    const target = dir.file('concurrent.db');
    // The copy a restore running in this process (alive) is making to the same target.
    const running = `${target}.restore-tmp-${process.pid}-0123456789abcdef`;
    writeFileSync(running, 'copy in progress');
    const restored = await openStoreFromSnapshot(snapshot, target, restoreOptions);
    restored.close();
    assert.equal(readFileSync(running, 'utf8'), 'copy in progress');
    rmSync(running);
  });

  it('a restore killed after the copy leaves no target; the retry clears the copy and restores', async () => {
    const snapshot = dir.file('snapshot-killed.db');
    await store.backup(snapshot);
    const target = dir.file('killed.db');
    const child = spawn(process.execPath, ['--import', tsx, killer, snapshot, target], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    assert.equal(signal, 'SIGKILL', `the restorer exited with ${code}: ${stderr}`);
    assert.equal(existsSync(target), false, 'no target names the unchecked copy');
    const leftovers = readdirSync(dir.path).filter((name) =>
      name.startsWith(`${basename(target)}.restore-tmp-`),
    );
    assert.ok(leftovers.length > 0, 'the killed restore had made its copy');
    assert.ok(statSync(dir.file(leftovers[0]!)).size > 0);

    const restored = await openStoreFromSnapshot(snapshot, target, restoreOptions);
    try {
      assert.equal(
        restored.verifyIntegrity({ headerStateRoot: fixtureHeaderStateRoot }).headerChecked,
        true,
      );
    } finally {
      restored.close();
    }
    const after = readdirSync(dir.path).filter((name) => name.startsWith(basename(target)));
    assert.deepEqual(after, [basename(target)]);
  });

  it('a leftover -wal or -shm for a missing target is refused, not applied to the restore', async () => {
    const snapshot = dir.file('snapshot-stale-wal.db');
    await store.backup(snapshot);
    for (const suffix of ['-wal', '-shm']) {
      const target = dir.file(`stale${suffix}.db`);
      writeFileSync(`${target}${suffix}`, 'left by another database');
      await assert.rejects(
        openStoreFromSnapshot(snapshot, target, restoreOptions),
        (error: unknown) =>
          storageError(StorageErrorCode.TARGET_EXISTS)(error) &&
          (error as HyperMeshError).detail.stale !== undefined,
      );
      assert.equal(existsSync(target), false);
      assert.equal(readFileSync(`${target}${suffix}`, 'utf8'), 'left by another database');
    }
  });

  it('a snapshot whose state was tampered with fails the restore check', async () => {
    const snapshot = dir.file('tampered-snapshot.db');
    await store.backup(snapshot);
    const db = new Database(snapshot);
    db.prepare(
      "UPDATE state_value SET value = X'00' WHERE key = ? AND height = (SELECT max(height) FROM state_value WHERE key = ?)",
    ).run(text('s2/2'), text('s2/2'));
    db.close();
    const target = dir.file('from-tampered.db');
    await assert.rejects(
      openStoreFromSnapshot(snapshot, target, restoreOptions),
      storageError(StorageErrorCode.CORRUPT),
    );
  });
});
