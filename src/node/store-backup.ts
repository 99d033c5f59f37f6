import { existsSync } from 'node:fs';
import { chown, mkdir, readdir, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { storedBlockStateRoot } from '../consensus/driver/chain.js';
import { isHyperMeshError } from '../codec/error.js';
import { genesisHash, type GenesisDocument } from '../consensus/genesis.js';
import type { SignerStateMissingPolicy } from '../consensus/driver/signer-state-missing.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import {
  openStore,
  openStoreFromSnapshot,
  StorageError,
  StorageErrorCode,
} from '../storage/index.js';
import { CliError } from './cli-error.js';
import { lockDataDir } from './data-dir-lock.js';
import { SIGNER_STATE_FILE, STORE_FILE } from './validator-node.js';

/** What a snapshot (or a restored store) holds, as its integrity check found it. */
export interface StoreSnapshotReport {
  /** The snapshot (backup) or the restored store file (restore). */
  readonly path: string;
  readonly height: number;
  readonly stateRoot: string;
  readonly blocks: number;
  readonly stateKeys: number;
}

export interface RestoreReport extends StoreSnapshotReport {
  /** `<dataDir>/signer-state.json`, and whether it was there when the restore finished. */
  readonly signerStateFile: string;
  readonly signerStatePresent: boolean;
}

function storageFailure(error: unknown, context: string): never {
  if (error instanceof StorageError) {
    throw new CliError(`${context}: ${error.message} [${error.code}]`, 1);
  }
  throw error;
}

/**
 * Writes a snapshot of the store in `dataDir` to `out` (which must not exist) while its node
 * may be running: the store is opened read-only (in WAL mode a reader and the node's writer do
 * not block each other, so the data directory's lock is neither needed nor taken) and copied
 * with SQLite's online backup API (`NodeStore.backup`: one point in time, whatever the node
 * commits meanwhile). A copy of `store.sqlite` alone would miss the commits still in
 * `store.sqlite-wal`. The copy is made under a temporary name and checked as a restore would
 * check it, its latest state against its latest header, before it is named `out`: a killed or
 * failed backup leaves nothing at `out`. A store without a block is refused before copying.
 */
export async function backupNodeStore(dataDir: string, out: string): Promise<StoreSnapshotReport> {
  const storePath = path.join(dataDir, STORE_FILE);
  if (!existsSync(storePath)) {
    throw new CliError(`no store at ${storePath}: nothing to back up`, 1);
  }
  const target = path.resolve(out);
  try {
    const source = openStore(storePath, { readonly: true });
    try {
      // Blocks are never removed: a store with one now still has it when the copy is taken.
      if (source.blocks.latestHeight() === null) {
        throw new CliError(
          `${storePath} holds no block yet: a snapshot of it could not be restored`,
          1,
        );
      }
      const report = await source.backup(target, { headerStateRoot: storedBlockStateRoot });
      return {
        path: target,
        height: report.latestHeight as number,
        stateRoot: toHex(report.stateRoot),
        blocks: report.blocks,
        stateKeys: report.stateKeys,
      };
    } finally {
      source.close();
    }
  } catch (error) {
    storageFailure(error, `cannot back up ${storePath} to ${target}`);
  }
}

/**
 * Removes the directories `mkdir(dataDir, { recursive: true })` created (`created`, the first of
 * them, down to `dataDir`) if they are still empty: a refused restore leaves no trace.
 */
async function removeCreatedDirectories(dataDir: string, created: string | undefined) {
  if (created === undefined) return;
  let directory = dataDir;
  for (let depth = 0; depth < 64; depth++) {
    if ((await readdir(directory)).length > 0) return;
    await rmdir(directory);
    if (directory === created) return;
    const parent = path.dirname(directory);
    if (parent === directory) return;
    directory = parent;
  }
}

/** The genesis a restored store must start from: the configuration's `genesisFile`. */
export interface RestoreGenesis {
  readonly document: GenesisDocument;
  readonly file: string;
}

/**
 * Refuses a snapshot of another chain before anything is written, as `loadChain` would at the
 * node's next start (GENESIS_MISMATCH): block 1 of a chain names the genesis hash as its parent.
 */
function chainStartCheck(source: string, genesis: RestoreGenesis) {
  const expected = genesisHash(genesis.document);
  return (firstParentHash: Uint8Array): void => {
    if (bytesEqual(firstParentHash, expected)) return;
    throw new CliError(
      `cannot restore ${source}: it is a snapshot of another chain: its block 1 follows ${toHex(firstParentHash)}, not the hash ${toHex(expected)} of the genesis ${genesis.file} (chain ${JSON.stringify(genesis.document.chainId)}) the configuration names; the node would refuse it at start [GENESIS_MISMATCH]`,
      1,
    );
  };
}

/**
 * Who owns `dataDir`, or the directory it is to be created in: a restore run as root gives
 * what it creates to them, since the node runs as that user and could not open a root-owned
 * 0600 store. Undefined when not run as root (what it creates is the caller's already).
 */
async function restoreOwner(dataDir: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.geteuid?.() !== 0) return undefined;
  let directory = path.resolve(dataDir);
  for (let depth = 0; depth < 256; depth++) {
    const found = await stat(directory).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (found !== undefined) return { uid: found.uid, gid: found.gid };
    const parent = path.dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  return undefined;
}

/** Gives the directories `mkdir` created (`created`, the first of them, down to `dataDir`) to `owner`. */
async function chownCreatedDirectories(
  dataDir: string,
  created: string | undefined,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  if (created === undefined || owner === undefined) return;
  const first = path.resolve(created);
  let directory = path.resolve(dataDir);
  for (let depth = 0; depth < 256; depth++) {
    await chown(directory, owner.uid, owner.gid);
    if (directory === first) return;
    const parent = path.dirname(directory);
    if (parent === directory) return;
    directory = parent;
  }
}

/**
 * Restores `snapshot` as the store of `dataDir` (`<dataDir>/store.sqlite`), which must hold no
 * store yet (nor a `-wal`, `-shm` or `-journal` of one). The data directory's lock is held for
 * the restore, so a node cannot start from the directory meanwhile (and a running one refuses
 * the restore). `openStoreFromSnapshot` checks the snapshot (its block 1 against `genesis`, its
 * latest state against its latest block header) before it writes anything, copies it under a
 * temporary name, checks the copy's integrity and only then gives it the store's name: a
 * refused or failed restore leaves no store (and no data directory, if this created it). Run as
 * root, the store and the directories it creates are given to the owner of the data directory
 * (or of the directory it is created in), the user the node runs as.
 */
export async function restoreNodeStore(
  dataDir: string,
  snapshot: string,
  genesis: RestoreGenesis,
): Promise<RestoreReport> {
  const source = path.resolve(snapshot);
  if (!existsSync(source)) throw new CliError(`--snapshot ${source}: no such file`);
  const storePath = path.join(dataDir, STORE_FILE);
  const owner = await restoreOwner(dataDir);
  const created = await mkdir(dataDir, { recursive: true, mode: 0o700 });
  let restored = false;
  try {
    await chownCreatedDirectories(dataDir, created, owner);
    const lock = await lockDataDir(dataDir);
    try {
      const store = await openStoreFromSnapshot(source, storePath, {
        headerStateRoot: storedBlockStateRoot,
        checkChainStart: chainStartCheck(source, genesis),
        ...(owner === undefined ? {} : { owner }),
      }).catch((error: unknown) => {
        if (isHyperMeshError(error, StorageErrorCode.TARGET_EXISTS)) {
          throw new CliError(
            `cannot restore into ${dataDir}: it already holds a store (${error.message}); restore into a data directory without one, or move the old store and its -wal, -shm files aside first [${error.code}]`,
            1,
          );
        }
        return storageFailure(error, `cannot restore ${source} into ${storePath}`);
      });
      restored = true;
      try {
        const height = store.blocks.latestHeight() as number;
        const signerStateFile = path.join(dataDir, SIGNER_STATE_FILE);
        return {
          path: storePath,
          height,
          stateRoot: toHex(store.state.root()),
          blocks: height - (store.blocks.earliestHeight() as number) + 1,
          stateKeys: store.state.keyCount(),
          signerStateFile,
          signerStatePresent: existsSync(signerStateFile),
        };
      } finally {
        store.close();
      }
    } finally {
      await lock.release();
    }
  } finally {
    if (!restored) await removeCreatedDirectories(dataDir, created);
  }
}

/**
 * What to do next about the signer state (docs/consensus.md, "Signer state"), given the
 * configuration's `consensus.signerStateMissing` (undefined: the default, refuse).
 */
export function signerStateAdvice(
  report: RestoreReport,
  policy: SignerStateMissingPolicy | undefined,
): string[] {
  if (report.signerStatePresent) {
    return [
      `${report.signerStateFile} is there and is used as it is: it must be at least as new as the`,
      "key's last signature (copied from the old host after its node stopped, never from a backup",
      'taken while it ran): a stale record lets the validator sign twice at one height (slashing).',
    ];
  }
  const missing = [
    `There is no ${report.signerStateFile}: a snapshot does not carry the signer state, and`,
    'nothing here says what this validator key signed after the snapshot was taken.',
  ];
  if (policy !== undefined && policy !== 'refuse') {
    return [
      ...missing,
      `The configuration sets consensus.signerStateMissing to { "waitHeights": ${policy.waitHeights} }: a validator`,
      `will sign nothing up to height ${report.height} + ${policy.waitHeights}. That is safe only if the cluster`,
      `committed fewer than ${policy.waitHeights} blocks after height ${report.height}; otherwise copy signer-state.json`,
      'from the old host after its node stopped (docs/consensus.md, "Signer state").',
    ];
  }
  return [
    ...missing,
    'A validator refuses to start from this directory (DRIVER_SIGNER_STATE_MISSING) until you either',
    '  - copy signer-state.json from the old host after its node stopped (never from a backup taken',
    '    while it ran: a stale record is as dangerous as none), or',
    '  - start it once with "consensus": { "signerStateMissing": { "waitHeights": N } } in its',
    `    configuration, N above the number of blocks the cluster committed after height ${report.height}:`,
    '    it then signs nothing up to its stored height + N.',
    'A node whose key is in no validator set starts as it is. See docs/consensus.md, "Signer state".',
  ];
}
