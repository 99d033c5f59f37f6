import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { CborError, decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput, SchemaError } from '../../codec/schema.js';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { ProofError, ProofErrorCode } from '../proof/errors.js';
import type { SpaceParams } from '../proof/params.js';
import { assertSpaceParams } from '../proof/params.js';
import { StoragePlot } from '../proof/storage-plot.js';

/**
 * The validator's PoSpace plot on disk. A plot is a deterministic function of the key and the
 * space parameters but costs N·S·2^d_s hashes to derive (minutes with DEFAULT parameters), so a
 * node builds it once (`hypermesh cluster init`) and keeps it. The file is deterministic CBOR:
 *
 *   { format: "hypermesh-storage-plot", v: 1, publicKey, params: { blockCount, slotsPerBlock,
 *     slotDifficulty }, root, data }
 *
 * `data` is the N blocks one after another. Loading re-checks every block against the key
 * (N·S hashes) and rebuilds the Merkle tree, so a corrupted or substituted file is caught before
 * the node proposes with it.
 */
export const STORAGE_PLOT_FILE_FORMAT = 'hypermesh-storage-plot';
export const STORAGE_PLOT_FILE_VERSION = 1;

/** The honest plot of `publicKey` under `params` (StoragePlot.build). */
export function buildStoragePlotFor(params: SpaceParams, publicKey: Uint8Array): StoragePlot {
  return StoragePlot.build(publicKey, params);
}

function ioError(action: string, path: string, error: unknown): ProofError {
  const errno = (error as NodeJS.ErrnoException | undefined)?.code ?? null;
  const reason = errno === 'ENOENT' ? 'no such file' : (error as Error).message;
  return new ProofError(
    ProofErrorCode.PLOT_FILE_IO,
    `cannot ${action} storage plot ${path}: ${reason}`,
    { path, errno },
    { cause: error },
  );
}

function corrupt(path: string, message: string, detail: Record<string, unknown> = {}): ProofError {
  return new ProofError(ProofErrorCode.PLOT_FILE_CORRUPT, `storage plot ${path}: ${message}`, {
    path,
    ...detail,
  });
}

function mismatch(path: string, message: string, detail: Record<string, unknown> = {}): ProofError {
  return new ProofError(ProofErrorCode.PLOT_FILE_MISMATCH, `storage plot ${path}: ${message}`, {
    path,
    ...detail,
  });
}

/**
 * Writes `plot` to `path` atomically: a 0600 temporary file in the same directory is written and
 * fsynced, renamed over `path`, and the directory fsynced. A crash leaves the old file or the new
 * one, never a mix. Throws `PLOT_FILE_IO`.
 */
export async function saveStoragePlot(path: string, plot: StoragePlot): Promise<void> {
  const encoded = encodeCanonical({
    format: STORAGE_PLOT_FILE_FORMAT,
    v: STORAGE_PLOT_FILE_VERSION,
    publicKey: plot.publicKey,
    params: {
      blockCount: plot.params.blockCount,
      slotsPerBlock: plot.params.slotsPerBlock,
      slotDifficulty: plot.params.slotDifficulty,
    },
    root: plot.root,
    data: plot.data,
  });
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx', 0o600);
    await handle.writeFile(encoded);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temporary, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw ioError('write', path, error);
  }
  const directory = await open(dirname(path), 'r').catch(() => undefined);
  if (directory !== undefined) {
    // Some filesystems refuse to fsync a directory; the rename itself has happened.
    await directory.sync().catch(() => undefined);
    await directory.close();
  }
}

const uint = z.int().min(0);

const fileSchema = z.strictObject({
  format: z.literal(STORAGE_PLOT_FILE_FORMAT),
  v: z.literal(STORAGE_PLOT_FILE_VERSION),
  publicKey: bytes({ length: 32 }),
  params: z.strictObject({ blockCount: uint, slotsPerBlock: uint, slotDifficulty: uint }),
  root: bytes({ length: 32 }),
  data: bytes(),
});

/**
 * Reads the plot at `path` for the chain's space `params` and checks it is the plot whose root
 * the validator registered (`expectedRoot`). Throws `ProofError`: `PLOT_FILE_IO` (missing,
 * unreadable), `PLOT_FILE_CORRUPT` (not a plot file, or a block that does not belong to its key,
 * or data whose tree is not the recorded root), `PLOT_FILE_MISMATCH` (built under other space
 * parameters, or another root than `expectedRoot`), `INVALID_PARAMS` for bad `params`.
 */
export async function loadStoragePlot(
  path: string,
  params: SpaceParams,
  expectedRoot: Uint8Array,
): Promise<StoragePlot> {
  assertSpaceParams(params);
  let encoded: Uint8Array;
  try {
    encoded = await readFile(path);
  } catch (error) {
    throw ioError('read', path, error);
  }
  let file: z.infer<typeof fileSchema>;
  try {
    file = parseInput(fileSchema, decodeCanonical(encoded), 'plot');
  } catch (error) {
    if (!(error instanceof CborError) && !(error instanceof SchemaError)) throw error;
    throw corrupt(path, `not a storage plot file: ${error.message}`);
  }
  const recorded = file.params;
  if (
    recorded.blockCount !== params.blockCount ||
    recorded.slotsPerBlock !== params.slotsPerBlock ||
    recorded.slotDifficulty !== params.slotDifficulty
  ) {
    throw mismatch(path, 'built under other space parameters than the chain uses', {
      file: recorded,
      expected: {
        blockCount: params.blockCount,
        slotsPerBlock: params.slotsPerBlock,
        slotDifficulty: params.slotDifficulty,
      },
    });
  }
  let plot: StoragePlot;
  try {
    plot = StoragePlot.fromData(file.publicKey, params, file.data);
  } catch (error) {
    if (!(error instanceof ProofError)) throw error;
    throw corrupt(path, error.message, { ...error.detail });
  }
  const root = plot.root;
  if (!bytesEqual(root, file.root)) {
    throw corrupt(path, 'its blocks do not hash to the root it records', {
      recorded: toHex(file.root),
      computed: toHex(root),
    });
  }
  if (!(expectedRoot instanceof Uint8Array) || !bytesEqual(root, expectedRoot)) {
    throw mismatch(path, "its root is not the validator's registered storage root", {
      root: toHex(root),
      expected: expectedRoot instanceof Uint8Array ? toHex(expectedRoot) : null,
    });
  }
  return plot;
}
