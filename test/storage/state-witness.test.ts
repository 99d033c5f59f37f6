import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isHyperMeshError } from '../../src/codec/error.js';
import { CborErrorCode, encodeCanonical, decodeCanonical } from '../../src/codec/cbor.js';
import type { StateChange } from '../../src/storage/inputs.js';
import { EMPTY_STATE_ROOT } from '../../src/storage/state-proof.js';
import {
  StateWitnessErrorCode,
  WitnessState,
  decodeStateWitness,
  encodeStateWitness,
  type StateWitness,
} from '../../src/storage/state-witness.js';
import type { StateNode } from '../../src/storage/state-tree.js';
import { openStore } from '../../src/storage/store.js';
import type { NodeStore } from '../../src/storage/store.js';
import { nextBlock, temporaryDirectory, text } from './chain-fixture.js';

const witnessError = (code: StateWitnessErrorCode) => (error: unknown) =>
  isHyperMeshError(error, code);

/** Puts, overwrites and deletes over a small key space, different at every height. */
function blockChanges(height: number, count: number): StateChange[] {
  const result: StateChange[] = [];
  for (let i = 0; i < count; i++) {
    const k = (height * 37 + i * 11) % 150;
    if (result.some((change) => new TextDecoder().decode(change.key) === `key/${k}`)) continue;
    const remove = (k + height) % 4 === 0;
    result.push({ key: text(`key/${k}`), value: remove ? null : text(`value ${k} at ${height}`) });
  }
  return result;
}

describe('state witnesses', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  let store: NodeStore;
  const HEIGHTS = 6;

  before(async () => {
    dir = await temporaryDirectory('witness');
    store = openStore(dir.file('witness.db'));
    for (let height = 1; height <= HEIGHTS; height++) {
      store.saveBlock(nextBlock(store, { stateChanges: blockChanges(height, 40) }));
    }
  });
  after(async () => {
    store.close();
    await dir.cleanup();
  });

  /** The witness of reading `reads` and making `changes` on top of `height`, round-tripped. */
  function witnessOf(height: number, reads: string[], changes: StateChange[]) {
    const built = store.stateWitness(height, reads.map(text), changes);
    const decoded = decodeStateWitness(encodeStateWitness(built.witness));
    return { ...built, decoded };
  }

  it('answers the reads and computes the root the store computes, from the parent root only', () => {
    for (let height = 1; height < HEIGHTS; height++) {
      const changes = blockChanges(height + 1, 40);
      const reads = ['key/1', 'key/2', 'key/40', 'key/77', 'missing/1', 'key/149'];
      const { decoded, rootAfter } = witnessOf(height, reads, changes);
      const state = WitnessState.verify(decoded, store.state.root(height));
      for (const key of reads) {
        assert.deepEqual(state.get(text(key)), store.state.get(text(key), height), key);
      }
      assert.deepEqual(state.computeRoot(changes), store.state.root(height + 1));
      assert.deepEqual(rootAfter, store.state.root(height + 1));
      // Far fewer nodes than the tree holds: only the touched paths.
      assert.ok(decoded.nodes.size > 0 && decoded.nodes.size < 40 * 12, `${decoded.nodes.size}`);
    }
  });

  it('a write of an existing key reads its path only, as a read of it does', () => {
    for (const key of ['key/1', 'key/2', 'key/40']) {
      if (store.state.get(text(key), 3) === null) continue;
      const read = store.stateWitness(3, [text(key)], []).witness;
      const write = store.stateWitness(3, [], [{ key: text(key), value: text('new') }]).witness;
      // Untouched siblings are not read (their hashes are in the parents): the same nodes.
      assert.deepEqual([...write.nodes.keys()].sort(), [...read.nodes.keys()].sort(), key);
    }
  });

  it('witnesses the empty state before block 1 with no nodes', () => {
    const changes = blockChanges(1, 40);
    const { decoded } = witnessOf(0, ['key/3'], changes);
    assert.equal(decoded.nodes.size, 0);
    const state = WitnessState.verify(decoded, EMPTY_STATE_ROOT);
    assert.equal(state.get(text('key/3')), null);
    assert.deepEqual(state.computeRoot(changes), store.state.root(1));
  });

  it('refuses a witness of another root, and reads or updates outside it', () => {
    const { decoded } = witnessOf(3, ['key/1'], []);
    assert.throws(
      () => WitnessState.verify(decoded, store.state.root(4)),
      witnessError(StateWitnessErrorCode.ROOT_MISMATCH),
    );
    const state = WitnessState.verify(decoded, store.state.root(3));
    // A key whose path leaves the witnessed nodes, and an update that needs other paths.
    const outside = Array.from({ length: 150 }, (_, k) => `key/${k}`).find((key) => {
      try {
        state.get(text(key));
        return false;
      } catch (error) {
        return isHyperMeshError(error, StateWitnessErrorCode.INCOMPLETE);
      }
    });
    assert.ok(outside !== undefined, 'some key lies outside a one-read witness');
    assert.throws(
      () => state.computeRoot(blockChanges(4, 40)),
      witnessError(StateWitnessErrorCode.INCOMPLETE),
    );
  });

  it('catches a tampered node, value, id or extra node', () => {
    const reads = ['key/1', 'key/2', 'key/3', 'missing/1'];
    const { decoded } = witnessOf(4, reads, blockChanges(5, 40));
    const root = store.state.root(4);
    const withNodes = (nodes: Map<number, StateNode>): StateWitness => ({ ...decoded, nodes });

    // A leaf's value hash changed: the parent's hash of it no longer matches.
    const leafId = [...decoded.nodes].find(([, node]) => node.kind === 'leaf')?.[0] as number;
    const leaf = decoded.nodes.get(leafId) as Extract<StateNode, { kind: 'leaf' }>;
    const flipped = leaf.valueHash.slice();
    flipped[0] = (flipped[0] as number) ^ 1;
    const tamperedLeaf = new Map(decoded.nodes).set(leafId, { ...leaf, valueHash: flipped });
    assert.throws(
      () => WitnessState.verify(withNodes(tamperedLeaf), root),
      witnessError(StateWitnessErrorCode.ROOT_MISMATCH),
    );

    // A value that is not the leaf's.
    const present = decoded.values.findIndex((entry) => entry.value !== null);
    const values = decoded.values.map((entry, i) =>
      i === present ? { ...entry, value: text('forged') } : entry,
    );
    assert.throws(
      () => WitnessState.verify({ ...decoded, values }, root),
      witnessError(StateWitnessErrorCode.VALUE_MISMATCH),
    );
    // A value for a key the tree shows absent.
    const absentValues = decoded.values.map((entry) =>
      entry.value === null ? { ...entry, value: text('invented') } : entry,
    );
    assert.throws(
      () => WitnessState.verify({ ...decoded, values: absentValues }, root),
      witnessError(StateWitnessErrorCode.VALUE_MISMATCH),
    );
    // A present key whose value the witness drops: its read is incomplete, not absent.
    const dropped = WitnessState.verify(
      { ...decoded, values: decoded.values.filter((_, i) => i !== present) },
      root,
    );
    assert.throws(
      () => dropped.get(decoded.values[present]?.key as Uint8Array),
      witnessError(StateWitnessErrorCode.INCOMPLETE),
    );

    // A node no reference reaches.
    const extra = new Map(decoded.nodes).set(2 ** 40, leaf);
    assert.throws(
      () => WitnessState.verify(withNodes(extra), root),
      witnessError(StateWitnessErrorCode.MALFORMED),
    );
  });

  it('refuses malformed and non-canonical encodings', () => {
    const { witness } = store.stateWitness(2, [text('key/5')], []);
    const encoded = encodeStateWitness(witness);
    const malformed = witnessError(StateWitnessErrorCode.MALFORMED);
    assert.throws(() => decodeStateWitness(Uint8Array.of(0xff)), malformed);
    assert.throws(() => decodeStateWitness(encodeCanonical([1, 2, [], []])), malformed);
    const [format, height, tree, values] = decodeCanonical(encoded) as [
      number,
      number,
      unknown[],
      unknown[][],
    ];
    const withTree = (items: unknown[]) => encodeCanonical([format, height, items, values]);
    // The round trip is exact, and the decoded tree hashes to the root.
    assert.deepEqual(decodeStateWitness(withTree(tree)).root.hash, store.state.root(2));
    // The empty subtree is null, never its hash; a tree that ends early or has items after it.
    assert.throws(() => decodeStateWitness(withTree([EMPTY_STATE_ROOT])), malformed);
    assert.throws(() => decodeStateWitness(withTree(tree.slice(0, -1))), malformed);
    assert.throws(() => decodeStateWitness(withTree([...tree, null])), malformed);
    assert.throws(() => decodeStateWitness(withTree([7])), malformed);
    // Deeper than 256 levels.
    assert.throws(() => decodeStateWitness(withTree(Array(300).fill(0))), malformed);
    // A key read twice.
    assert.throws(
      () => decodeStateWitness(encodeCanonical([format, height, tree, [...values, values[0]]])),
      malformed,
    );
    // Trailing bytes.
    assert.throws(() => decodeStateWitness(Uint8Array.of(...encoded, 0)), malformed);
  });

  it('refuses more data items than an accepted witness can hold, before building them', () => {
    // The most an accepted witness holds: the witness array and its 4 elements, 2,000,000 tree
    // items, 2 hashes in each of the ⌊(4 MiB − 64 KiB) / 69⌋ = 59,837 leaves that fit, and
    // 200,000 values of 3 items: 2,719,679. One more, as empty maps (one byte each), is 2.7 MB,
    // under the byte limit: [2, 0, [{} × 2,719,675], []].
    const count = 2_719_679 - 5 + 1;
    const head = [0x84, 0x02, 0x00, 0x9a, count >>> 24, (count >> 16) & 255, (count >> 8) & 255];
    const bytes = new Uint8Array(head.length + 1 + count + 1).fill(0xa0);
    bytes.set([...head, count & 255]);
    bytes[bytes.length - 1] = 0x80;
    assert.throws(
      () => decodeStateWitness(bytes),
      (error: unknown) =>
        isHyperMeshError(error, StateWitnessErrorCode.MALFORMED) &&
        isHyperMeshError(error.cause, CborErrorCode.TOO_MANY_ITEMS),
    );
  });
});
