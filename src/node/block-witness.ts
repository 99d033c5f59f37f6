import { bytesEqual, toHex } from '../crypto/bytes.js';
import type { Application, BlockExecutionResult } from '../consensus/app.js';
import { createApplication, type ApplicationOptions } from '../consensus/application/index.js';
import { executionInput, storedParent } from '../consensus/driver/index.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { HeightContext } from '../consensus/height-context.js';
import type { Block } from '../consensus/types.js';
import { decodeBlock } from '../consensus/wire.js';
import { BoundedMap } from '../codec/bounded-map.js';
import { HyperMeshError } from '../codec/error.js';
import {
  EMPTY_STATE_ROOT,
  MAX_STATE_WITNESS_BYTES,
  StateWitnessError,
  StateWitnessErrorCode,
  WitnessState,
  decodeStateWitness,
  encodeStateWitness,
  type NodeStore,
  type StateQueryResult,
  type StateChange,
  type StateReader,
  type StateWitness,
} from '../storage/index.js';

/**
 * Re-executing a committed block without its state (PoWork's state root, docs/consensus-proof.md):
 * the node re-executes a stored block on its stored state after the parent, recording what the
 * execution reads, and answers with the state witness of that (storage/state-witness.ts); the
 * verifier (`hypermesh block verify`) checks the witness against the parent header's state
 * root and executes the block itself with the chain's modules, decided by the genesis alone.
 */
export enum BlockWitnessErrorCode {
  /** The witness would exceed what one response carries. */
  TOO_LARGE = 'BLOCK_WITNESS_TOO_LARGE',
  /** The node's own re-execution of its stored block does not reach the block's state root. */
  STORE_MISMATCH = 'BLOCK_WITNESS_STORE_MISMATCH',
  /** More witnesses were built in the last second than the node allows; retry later. */
  BUSY = 'BLOCK_WITNESS_BUSY',
}

export class BlockWitnessError extends HyperMeshError<BlockWitnessErrorCode> {}

/** Witnesses a node keeps, by height: a verifier asking twice costs one re-execution. */
const WITNESS_CACHE_ENTRIES = 8;
/**
 * Witnesses a node builds per second at most (each one re-executes a block on the node's main
 * thread): whoever asks, the node spends a bounded share of its time on them.
 */
export const WITNESS_BUILDS_PER_SECOND = 4;
/**
 * Of those, the most one caller (a STOQ identity) gets per second: a caller cycling through
 * uncached heights cannot take every build, and others' `block verify` still gets witnesses.
 */
export const WITNESS_BUILDS_PER_CALLER_PER_SECOND = 2;
/** Callers whose recent builds are remembered (the oldest forgotten beyond it). */
const WITNESS_CALLERS = 1024;

/**
 * The chain's modules and their genesis state, created afresh for each execution (no cache of
 * one execution may answer another's reads): `genesisApplication(genesis)` (validator-node.ts).
 */
export type ChainModules = () => {
  readonly modules: ApplicationOptions['modules'];
  readonly initialState: NonNullable<ApplicationOptions['initialState']>;
};

/** The application of `genesis` executing on `state`. */
function chainApplication(
  genesis: GenesisDocument,
  chainModules: ChainModules,
  state: StateReader,
): Application {
  const { modules, initialState } = chainModules();
  return createApplication({
    chainId: genesis.chainId,
    state,
    modules,
    initialState,
    stampDifficulty: genesis.proof.work.stampDifficulty,
  });
}

/**
 * The stored state after block `base` (0: the empty state before block 1) as a `StateReader`
 * for an execution on top of it, recording every key read; `computeRoot` is on top of `base`
 * and builds the witness of the reads so far and those changes (`witnessOf` reuses it when
 * nothing was read after it and the changes are the same, as after an execution's `finish`).
 */
function recordingStateAt(
  store: NodeStore,
  base: number,
): { state: StateReader; witnessOf: (changes: readonly StateChange[]) => StateWitness } {
  const reads: Uint8Array[] = [];
  let built: { changes: readonly StateChange[]; reads: number; witness: StateWitness } | null =
    null;
  const at = base === 0 ? undefined : base;
  const state: StateReader = {
    root: () => (at === undefined ? EMPTY_STATE_ROOT.slice() : store.state.root(at)),
    keyCount: () => (at === undefined ? 0 : store.state.keyCount(at)),
    get: (key) => {
      reads.push(key);
      return at === undefined ? null : store.state.get(key, at);
    },
    getWithProof: (key): StateQueryResult => {
      reads.push(key);
      if (at !== undefined) return store.state.getWithProof(key, at);
      // The empty state: every key is absent, shown by the empty root itself.
      const proof = { siblings: [], leaf: null };
      return { height: null, root: EMPTY_STATE_ROOT.slice(), key, value: null, proof };
    },
    computeRoot: (changes) => {
      const { witness, rootAfter } = store.stateWitness(base, reads, changes);
      built = { changes, reads: reads.length, witness };
      return rootAfter;
    },
  };
  const witnessOf = (changes: readonly StateChange[]): StateWitness =>
    built !== null && built.changes === changes && built.reads === reads.length
      ? built.witness
      : store.stateWitness(base, reads, changes).witness;
  return { state, witnessOf };
}

export interface BlockWitnessSource {
  /** The encoded witness for stored block `height`, or null when the store has no such block. */
  /** `caller`: who asks (its STOQ identity URI), for the per-caller share of the builds. */
  witness(height: number, caller?: string): Uint8Array | null;
}

/**
 * The node side: re-executes stored block `height` on the stored state after `height − 1`, and
 * returns the encoded witness of what it read and changed. Throws `BlockWitnessError`
 * (`TOO_LARGE`, `STORE_MISMATCH`) and whatever the store throws.
 */
export function blockWitnessSource(
  store: NodeStore,
  genesis: GenesisDocument,
  chainModules: ChainModules,
  now: () => number = () => performance.now(),
): BlockWitnessSource {
  const cache = new BoundedMap<number, Uint8Array>(WITNESS_CACHE_ENTRIES);
  const builds: number[] = [];
  const byCaller = new BoundedMap<string, number[]>(WITNESS_CALLERS);
  const busy = (message: string, limit: number): BlockWitnessError =>
    new BlockWitnessError(BlockWitnessErrorCode.BUSY, `${message}; retry in a second`, { limit });
  return {
    witness(height, caller = 'local') {
      const cached = cache.get(height);
      if (cached !== undefined) return cached;
      const stored = store.blocks.byHeight(height);
      if (stored === null) return null;
      const at = now();
      while (builds.length > 0 && at - (builds[0] as number) >= 1000) builds.shift();
      const mine = (byCaller.get(caller) ?? []).filter((built) => at - built < 1000);
      if (mine.length >= WITNESS_BUILDS_PER_CALLER_PER_SECOND) {
        throw busy(
          `the node builds at most ${WITNESS_BUILDS_PER_CALLER_PER_SECOND} block witnesses per second for one caller`,
          WITNESS_BUILDS_PER_CALLER_PER_SECOND,
        );
      }
      if (builds.length >= WITNESS_BUILDS_PER_SECOND) {
        throw busy(
          `the node builds at most ${WITNESS_BUILDS_PER_SECOND} block witnesses per second`,
          WITNESS_BUILDS_PER_SECOND,
        );
      }
      builds.push(at);
      byCaller.set(caller, [...mine, at]);
      const block = decodeBlock(stored.bytes);
      const context = storedParent(genesis, store, height);
      const { state, witnessOf } = recordingStateAt(store, height - 1);
      const result = chainApplication(genesis, chainModules, state).executeBlock(
        executionInput(block, context),
      );
      if (!bytesEqual(result.stateRoot, block.header.appStateRoot)) {
        throw new BlockWitnessError(
          BlockWitnessErrorCode.STORE_MISMATCH,
          `re-executing stored block ${height} on the stored state gives root ${toHex(result.stateRoot)}, not the header's ${toHex(block.header.appStateRoot)}`,
          { height },
        );
      }
      const encoded = encodeStateWitness(witnessOf(result.changes));
      if (encoded.length > MAX_STATE_WITNESS_BYTES) {
        throw new BlockWitnessError(
          BlockWitnessErrorCode.TOO_LARGE,
          `the state witness of block ${height} is ${encoded.length} bytes; one response carries at most ${MAX_STATE_WITNESS_BYTES}`,
          { height, bytes: encoded.length, limit: MAX_STATE_WITNESS_BYTES },
        );
      }
      cache.set(height, encoded);
      return encoded;
    },
  };
}

/**
 * The verifier side: executes `block` in `context` (its parent's set and commit) on the state a
 * witness shows, after checking the witness against `parentStateRoot` (the parent header's
 * `appStateRoot`, or the empty root for block 1). Returns the execution's result; its
 * `stateRoot` is what the block's header must carry. Throws `StateWitnessError` for a witness
 * that is malformed, does not match the root or lacks what the execution reads, and whatever
 * the execution throws for an invalid block.
 */
export function executeWithWitness(
  genesis: GenesisDocument,
  chainModules: ChainModules,
  block: Block,
  context: Pick<HeightContext, 'parent'>,
  witnessBytes: Uint8Array,
  parentStateRoot: Uint8Array,
): BlockExecutionResult {
  const witness = decodeStateWitness(witnessBytes);
  const parentHeight = block.header.height - 1;
  if (witness.height !== parentHeight) {
    throw new StateWitnessError(
      StateWitnessErrorCode.MALFORMED,
      `the witness is of the state after block ${witness.height}, not after block ${parentHeight}`,
      { height: witness.height, expected: parentHeight },
    );
  }
  const state = WitnessState.verify(witness, parentStateRoot);
  return chainApplication(genesis, chainModules, state).executeBlock(
    executionInput(block, context),
  );
}
