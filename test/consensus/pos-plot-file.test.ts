import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { DEV_PROOF_PARAMS } from '../../src/consensus/genesis.js';
import {
  buildStoragePlotFor,
  loadStoragePlot,
  saveStoragePlot,
} from '../../src/consensus/pos/index.js';
import { ProofError, ProofErrorCode } from '../../src/consensus/proof/errors.js';
import { isStorageBlockOf, StoragePlot } from '../../src/consensus/proof/storage-plot.js';

const params = DEV_PROOF_PARAMS.space;

async function assertRejects(
  run: () => Promise<unknown>,
  code: ProofErrorCode,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(run, (error: unknown) => {
    assert.ok(error instanceof ProofError, `expected ProofError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('storage plot file', () => {
  const publicKey = ed25519RawPublicKey(generateEd25519KeyPair().privateKey);
  let directory: string;
  let plot: StoragePlot;
  let path: string;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'hypermesh-plot-'));
    plot = buildStoragePlotFor(params, publicKey);
    path = join(directory, 'storage.plot');
    await saveStoragePlot(path, plot);
  });

  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('builds the honest plot of the key and saves it owner-only', async () => {
    assert.deepEqual(plot.root, StoragePlot.build(publicKey, params).root);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(directory), ['storage.plot'], 'no temporary file is left');
  });

  it('loads it back, checked against the registered root', async () => {
    const loaded = await loadStoragePlot(path, params, plot.root);
    assert.deepEqual(loaded.root, plot.root);
    assert.deepEqual(loaded.data, plot.data);
    assert.deepEqual(loaded.publicKey, publicKey);
    assert.deepEqual(loaded.answer(5), plot.answer(5));
  });

  it('replaces an existing file in one step', async () => {
    const other = join(directory, 'replaced.plot');
    const first = buildStoragePlotFor(
      params,
      ed25519RawPublicKey(generateEd25519KeyPair().privateKey),
    );
    await saveStoragePlot(other, first);
    await saveStoragePlot(other, plot);
    assert.deepEqual((await loadStoragePlot(other, params, plot.root)).root, plot.root);
    await rm(other);
  });

  it('refuses another root, or other space parameters', async () => {
    await assertRejects(
      () => loadStoragePlot(path, params, new Uint8Array(32)),
      ProofErrorCode.PLOT_FILE_MISMATCH,
      /registered storage root/,
    );
    await assertRejects(
      () =>
        loadStoragePlot(path, { ...params, slotDifficulty: params.slotDifficulty + 1 }, plot.root),
      ProofErrorCode.PLOT_FILE_MISMATCH,
      /other space parameters/,
    );
    await assertRejects(
      () => loadStoragePlot(path, { ...params, blockCount: 0 }, plot.root),
      ProofErrorCode.INVALID_PARAMS,
      /blockCount/,
    );
  });

  it('refuses a missing, unreadable, truncated or corrupted file', async () => {
    await assertRejects(
      () => loadStoragePlot(join(directory, 'missing.plot'), params, plot.root),
      ProofErrorCode.PLOT_FILE_IO,
      /no such file/,
    );
    await assertRejects(
      () => saveStoragePlot(join(directory, 'no-such-dir', 'x.plot'), plot),
      ProofErrorCode.PLOT_FILE_IO,
      /cannot write/,
    );
    const bytes = await readFile(path);
    const damaged = join(directory, 'damaged.plot');
    await writeFile(damaged, bytes.subarray(0, bytes.length - 10));
    await assertRejects(
      () => loadStoragePlot(damaged, params, plot.root),
      ProofErrorCode.PLOT_FILE_CORRUPT,
      /not a storage plot file/,
    );
    await writeFile(damaged, 'not a plot');
    await assertRejects(
      () => loadStoragePlot(damaged, params, plot.root),
      ProofErrorCode.PLOT_FILE_CORRUPT,
      /not a storage plot file/,
    );
    // Another nonce in the last block's last slot: still CBOR, but the block no longer fits the key.
    const last = params.blockCount - 1;
    const block = plot.block(last);
    const view = new DataView(block.buffer);
    const slot = block.length - 4;
    do view.setUint32(slot, view.getUint32(slot) + 1);
    while (isStorageBlockOf(publicKey, last, block, params));
    const flipped = Uint8Array.from(bytes);
    flipped.set(block, bytes.indexOf(Buffer.from(plot.data)) + last * block.length);
    await writeFile(damaged, flipped);
    await assertRejects(
      () => loadStoragePlot(damaged, params, plot.root),
      ProofErrorCode.PLOT_FILE_CORRUPT,
      /block 63 does not belong/,
    );
    // Consistent data, but a recorded root that is not the data's.
    const wrongRoot = encodeCanonical({
      format: 'hypermesh-storage-plot',
      v: 1,
      publicKey,
      params: {
        blockCount: params.blockCount,
        slotsPerBlock: params.slotsPerBlock,
        slotDifficulty: params.slotDifficulty,
      },
      root: new Uint8Array(32),
      data: plot.data,
    });
    await writeFile(damaged, wrongRoot);
    await assertRejects(
      () => loadStoragePlot(damaged, params, plot.root),
      ProofErrorCode.PLOT_FILE_CORRUPT,
      /do not hash to the root it records/,
    );
  });
});
