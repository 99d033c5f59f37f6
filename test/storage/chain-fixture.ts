import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCanonical, encodeCanonical } from '../../src/codec/cbor.js';
import { sha256 } from '../../src/crypto/hash.js';
import type { StoredBlock } from '../../src/storage/block-store.js';
import type { SaveBlockInput, StateChange } from '../../src/storage/inputs.js';
import type { NodeStore } from '../../src/storage/store.js';

/** A temporary directory for one test file, removed by `cleanup()`. */
export async function temporaryDirectory(prefix: string) {
  const path = await mkdtemp(join(tmpdir(), `hypermesh-${prefix}-`));
  return {
    path,
    file: (name: string): string => join(path, name),
    cleanup: () => rm(path, { recursive: true, force: true }),
  };
}

export const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** A plain Uint8Array copy (cborg may hand out Buffers), so deepEqual compares bytes only. */
export const plain = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

export interface NextBlock {
  readonly stateChanges?: readonly StateChange[];
  readonly evidence?: readonly { hash: Uint8Array; bytes: Uint8Array }[];
}

/**
 * Builds the next block for a store: height and parent from the store's latest block, a hash
 * over the block's encoded bytes, and the state root the store computes for the changes.
 */
export function nextBlock(store: NodeStore, next: NextBlock = {}): SaveBlockInput {
  const latest = store.blocks.latestHeight();
  const parent = latest === null ? null : store.blocks.byHeight(latest);
  const height = latest === null ? 1 : latest + 1;
  const parentHash = parent?.hash ?? new Uint8Array(32);
  const stateChanges = [...(next.stateChanges ?? [])];
  const stateRoot = store.state.computeRoot(stateChanges);
  const timeMs = 1_700_000_000_000 + height * 1000;
  const bytes = plain(
    encodeCanonical({ height, parentHash, timeMs, stateRoot, kind: 'test block' }),
  );
  return {
    block: { height, hash: sha256(bytes), parentHash, timeMs, bytes },
    commit: plain(encodeCanonical({ height, signatures: [`quorum of height ${height}`] })),
    evidence: [...(next.evidence ?? [])],
    stateChanges,
    stateRoot,
  };
}

/**
 * The state root a `nextBlock` block's bytes commit to, as consensus reads `appStateRoot` from
 * a real header: the `headerStateRoot` of `openStoreFromSnapshot` and `verifyIntegrity`.
 */
export function fixtureHeaderStateRoot(block: StoredBlock): Uint8Array {
  const decoded = decodeCanonical(block.bytes) as { stateRoot?: unknown };
  if (!(decoded.stateRoot instanceof Uint8Array)) throw new Error('not a fixture block');
  return decoded.stateRoot;
}

/** `count` changes of keys `prefix/0..count-1` to values derived from `tag`. */
export function changes(prefix: string, count: number, tag: string): StateChange[] {
  return Array.from({ length: count }, (_, i) => ({
    key: text(`${prefix}/${i}`),
    value: text(`${tag}:${prefix}/${i}`),
  }));
}
