import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CborErrorCode, encodeCanonical } from '../../src/codec/cbor.js';
import { isHyperMeshError } from '../../src/codec/error.js';
import {
  EMPTY_STATE_ROOT,
  MAX_STATE_PROOF_BYTES,
  StateProofErrorCode,
  decodeStateProof,
  encodeStateProof,
  stateKeyHash,
  stateValueHash,
  verifyStateProof,
} from '../../src/storage/state-proof.js';
import type { StateProof } from '../../src/storage/state-proof.js';
import { EMPTY_REF, proveStateKey, updateStateTree } from '../../src/storage/state-tree.js';
import type {
  KeyHashChange,
  NodeRef,
  StateNode,
  StateNodeReader,
  TreeUpdate,
} from '../../src/storage/state-tree.js';

/** The hashing rules written out again from the spec in state-proof.ts, independently. */
const H = (...parts: Uint8Array[]): Uint8Array => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
};
const bit = (hash: Uint8Array, depth: number): number =>
  (hash[depth >> 3]! >> (7 - (depth % 8))) & 1;

/**
 * Reference root by the recursive definition: no keys -> 32 zero bytes; one key -> its leaf;
 * more -> internal node over the two halves split by the next bit.
 */
function referenceRoot(
  entries: readonly (readonly [Uint8Array, Uint8Array])[],
  depth = 0,
): Uint8Array {
  if (entries.length === 0) return new Uint8Array(32);
  if (entries.length === 1) {
    const [keyHash, valueHash] = entries[0]!;
    return H(new Uint8Array([0x02]), keyHash, valueHash);
  }
  const left = entries.filter(([keyHash]) => bit(keyHash, depth) === 0);
  const right = entries.filter(([keyHash]) => bit(keyHash, depth) === 1);
  return H(new Uint8Array([0x03]), referenceRoot(left, depth + 1), referenceRoot(right, depth + 1));
}

/** An in-memory node store for the pure tree. */
class MemoryTree implements StateNodeReader {
  readonly nodes = new Map<number, StateNode>();
  root: NodeRef = EMPTY_REF;
  keys = 0;

  read(id: number): StateNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`missing node ${id}`);
    return node;
  }

  apply(changes: readonly KeyHashChange[]): TreeUpdate {
    const update = updateStateTree(this, this.root, changes, this.nodes.size + 1);
    for (const { id, node } of update.created) this.nodes.set(id, node);
    this.root = update.root;
    this.keys += update.keyCountDelta;
    return update;
  }
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const utf8 = (value: string): Uint8Array => new TextEncoder().encode(value);

function flipBit(bytes: Uint8Array, index: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[Math.floor(index / 8) % copy.length]! ^= 1 << (index % 8);
  return copy;
}

/** Key hashes that share long prefixes: a base hash with single bits flipped. */
const clusteredKeyHash = fc
  .tuple(
    fc.constantFrom(...[0, 1, 2].map((i) => H(utf8(`base ${i}`)))),
    fc.array(fc.nat(255), { maxLength: 3 }),
  )
  .map(([base, flips]) => flips.reduce((hash, index) => flipBit(hash, 255 - index), base));

const valueHash = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe('state tree (compact sparse Merkle tree)', () => {
  it('the empty tree has the all-zero root and a single key is its own leaf', () => {
    const tree = new MemoryTree();
    assert.deepEqual(tree.root.hash, EMPTY_STATE_ROOT);
    const keyHash = stateKeyHash(utf8('only'));
    const value = stateValueHash(utf8('value'));
    tree.apply([{ keyHash, valueHash: value }]);
    assert.equal(hex(tree.root.hash), hex(H(new Uint8Array([0x02]), keyHash, value)));
    tree.apply([{ keyHash, valueHash: null }]);
    assert.deepEqual(tree.root, EMPTY_REF);
    assert.equal(tree.keys, 0);
  });

  it('keys that differ only in the last bit sit 256 levels deep and still match the reference', () => {
    const a = H(utf8('deep'));
    const b = new Uint8Array(a);
    b[0]! ^= 0x80; // differs from a at depth 0
    const c = new Uint8Array(a);
    c[31]! ^= 0x01; // differs from a only at depth 255
    const tree = new MemoryTree();
    const entries: [Uint8Array, Uint8Array][] = [
      [a, H(utf8('1'))],
      [b, H(utf8('2'))],
      [c, H(utf8('3'))],
    ];
    tree.apply(entries.map(([keyHash, value]) => ({ keyHash, valueHash: value })));
    assert.equal(hex(tree.root.hash), hex(referenceRoot(entries)));
    const proof = proveStateKey(tree, tree.root, c);
    assert.ok(proof.siblings.length >= 255);
  });

  it('the root depends only on the final key set: any order, any split into blocks', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.oneof(clusteredKeyHash, valueHash), valueHash), {
          selector: ([keyHash]) => hex(keyHash),
          maxLength: 40,
        }),
        fc.array(fc.nat(), { maxLength: 60 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        (entries, shuffle, deleteFirst) => {
          // Write everything in shuffled batches, deleting and re-adding some keys on the way.
          const order = entries.map((entry, i) => ({ entry, rank: shuffle[i] ?? i }));
          order.sort((x, y) => x.rank - y.rank);
          const tree = new MemoryTree();
          let batch: KeyHashChange[] = [];
          order.forEach(({ entry: [keyHash, value] }, i) => {
            if (deleteFirst[i] === true) {
              tree.apply([{ keyHash, valueHash: H(utf8('temporary'), value) }]);
              tree.apply([{ keyHash, valueHash: null }]);
            }
            batch.push({ keyHash, valueHash: value });
            if ((shuffle[i] ?? 0) % 3 === 0) {
              tree.apply(batch);
              batch = [];
            }
          });
          tree.apply(batch);
          assert.equal(hex(tree.root.hash), hex(referenceRoot(entries)));
          assert.equal(tree.keys, entries.length);

          const reversed = new MemoryTree();
          reversed.apply(
            entries.map(([keyHash, value]) => ({ keyHash, valueHash: value })).reverse(),
          );
          assert.equal(hex(reversed.root.hash), hex(tree.root.hash));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('deleting keys gives the root of the remaining set', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(clusteredKeyHash, valueHash), {
          selector: ([k]) => hex(k),
          minLength: 1,
          maxLength: 20,
        }),
        fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
        (entries, remove) => {
          const tree = new MemoryTree();
          tree.apply(entries.map(([keyHash, value]) => ({ keyHash, valueHash: value })));
          const removed = entries.filter((_, i) => remove[i] === true);
          const update = tree.apply(removed.map(([keyHash]) => ({ keyHash, valueHash: null })));
          assert.equal(update.keyCountDelta + removed.length, 0);
          const kept = entries.filter((_, i) => remove[i] !== true);
          assert.equal(hex(tree.root.hash), hex(referenceRoot(kept)));
        },
      ),
    );
  });

  it('an update reads and writes only the paths it changes (O(k log n))', () => {
    const tree = new MemoryTree();
    const keys = Array.from({ length: 4096 }, (_, i) => stateKeyHash(utf8(`key ${i}`)));
    tree.apply(keys.map((keyHash) => ({ keyHash, valueHash: H(keyHash) })));
    let reads = 0;
    const counting: StateNodeReader = { read: (id) => (reads++, tree.read(id)) };
    const changed = keys
      .slice(0, 10)
      .map((keyHash) => ({ keyHash, valueHash: H(utf8('new'), keyHash) }));
    const update = updateStateTree(counting, tree.root, changed, tree.nodes.size + 1);
    // log2(4096) = 12; allow for uneven depth and sibling-kind lookups.
    assert.ok(reads <= 10 * 30, `read ${reads} nodes for 10 changes`);
    assert.ok(update.created.length <= 10 * 30, `created ${update.created.length} nodes`);
  });
});

/** A state of real keys in the pure tree, with a model map for checking claims. */
function buildState(entries: readonly (readonly [string, string])[]) {
  const tree = new MemoryTree();
  const model = new Map<string, Uint8Array>();
  for (const [key, value] of entries) model.set(key, utf8(value));
  tree.apply(
    [...model].map(([key, value]) => ({
      keyHash: stateKeyHash(utf8(key)),
      valueHash: stateValueHash(value),
    })),
  );
  const prove = (key: string): StateProof =>
    proveStateKey(tree, tree.root, stateKeyHash(utf8(key)));
  return { tree, model, prove, root: tree.root.hash };
}

const stateEntries = fc.uniqueArray(
  fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 20 })),
  {
    selector: ([key]) => key,
    maxLength: 60,
  },
);

describe('state proofs', () => {
  it('inclusion proofs verify for every key and absence proofs for keys not there', () => {
    fc.assert(
      fc.property(
        stateEntries,
        fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 10 }),
        (entries, probes) => {
          const { model, prove, root } = buildState(entries);
          for (const [key, value] of model) {
            assert.ok(verifyStateProof(root, utf8(key), value, prove(key)), `inclusion of ${key}`);
          }
          for (const key of probes) {
            const value = model.get(key) ?? null;
            assert.ok(verifyStateProof(root, utf8(key), value, prove(key)), `query of ${key}`);
            // The opposite claim never verifies.
            const wrong = value === null ? utf8('anything') : null;
            assert.equal(verifyStateProof(root, utf8(key), wrong, prove(key)), false);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('any tampering with value, proof, key or root makes verification fail (or prove a true fact)', () => {
    fc.assert(
      fc.property(
        stateEntries.filter((entries) => entries.length > 0),
        fc.nat(),
        fc.string({ minLength: 1, maxLength: 12 }),
        fc.boolean(),
        fc.constantFrom(
          'value',
          'root',
          'sibling',
          'leafKey',
          'leafValue',
          'key',
          'encoded',
          'drop',
          'extend',
        ),
        fc.nat(),
        (entries, pick, absentKey, queryPresent, target, position) => {
          const { model, prove, root } = buildState(entries);
          const keys = [...model.keys()];
          const key = queryPresent ? keys[pick % keys.length]! : absentKey;
          const value = model.get(key) ?? null;
          const proof = prove(key);
          assert.ok(verifyStateProof(root, utf8(key), value, proof));
          let claimKey = utf8(key);
          let claimValue = value;
          let claimRoot = root;
          let claimProof: StateProof = proof;
          switch (target) {
            case 'value':
              if (value === null) claimValue = new Uint8Array([position % 256]);
              else claimValue = value.length === 0 ? new Uint8Array(1) : flipBit(value, position);
              break;
            case 'root':
              claimRoot = flipBit(root, position);
              break;
            case 'sibling':
              if (proof.siblings.length === 0) return;
              claimProof = {
                ...proof,
                siblings: proof.siblings.map((s, i) =>
                  i === position % proof.siblings.length ? flipBit(s, position) : s,
                ),
              };
              break;
            case 'leafKey':
            case 'leafValue':
              if (proof.leaf === null) return;
              claimProof = {
                ...proof,
                leaf:
                  target === 'leafKey'
                    ? { ...proof.leaf, keyHash: flipBit(proof.leaf.keyHash, position) }
                    : { ...proof.leaf, valueHash: flipBit(proof.leaf.valueHash, position) },
              };
              break;
            case 'key':
              claimKey = flipBit(utf8(key), position);
              break;
            case 'encoded': {
              const bytes = flipBit(encodeStateProof(proof), position);
              try {
                claimProof = decodeStateProof(bytes);
              } catch (error) {
                assert.ok(isHyperMeshError(error, StateProofErrorCode.MALFORMED));
                return;
              }
              break;
            }
            case 'drop':
              if (proof.siblings.length === 0) return;
              claimProof = { ...proof, siblings: proof.siblings.slice(0, -1) };
              break;
            case 'extend':
              claimProof = { ...proof, siblings: [...proof.siblings, EMPTY_STATE_ROOT] };
              break;
          }
          const verified = verifyStateProof(claimRoot, claimKey, claimValue, claimProof);
          if (!verified) return;
          // Only a different key can still verify, and only as an absence that is true: it
          // falls into the same empty subtree (or next to the same other key's leaf).
          assert.equal(target, 'key', `tampered ${target} still verified`);
          assert.equal(claimValue, null, 'a tampered key proved a value');
          const present = new Set(keys.map((k) => hex(utf8(k))));
          assert.ok(!present.has(hex(claimKey)), 'a tampered key proved a present key absent');
        },
      ),
      { numRuns: 400 },
    );
  });

  it("another key's leaf proves absence only if it lies on the queried key's path", () => {
    // Find two keys whose hashes differ in the first bit.
    const key = utf8('queried');
    const first = bit(stateKeyHash(key), 0);
    let other = 0;
    while (bit(stateKeyHash(utf8(`other ${other}`)), 0) === first) other++;
    const leaf = { keyHash: stateKeyHash(utf8(`other ${other}`)), valueHash: H(utf8('v')) };
    const leafNode = H(new Uint8Array([0x02]), leaf.keyHash, leaf.valueHash);
    // A malformed tree that puts the other key's leaf on the queried key's side.
    const root =
      first === 0
        ? H(new Uint8Array([0x03]), leafNode, EMPTY_STATE_ROOT)
        : H(new Uint8Array([0x03]), EMPTY_STATE_ROOT, leafNode);
    assert.equal(verifyStateProof(root, key, null, { siblings: [EMPTY_STATE_ROOT], leaf }), false);
    // The same shape with the leaf on its own side is a valid absence proof for that side.
    const sameSide = utf8(`other ${other}`);
    const wellFormed =
      first === 0
        ? H(new Uint8Array([0x03]), EMPTY_STATE_ROOT, leafNode)
        : H(new Uint8Array([0x03]), leafNode, EMPTY_STATE_ROOT);
    assert.ok(verifyStateProof(wellFormed, key, null, { siblings: [leafNode], leaf: null }));
    assert.ok(
      verifyStateProof(wellFormed, sameSide, utf8('v'), { siblings: [EMPTY_STATE_ROOT], leaf }),
    );
  });

  it('verification never throws, whatever it is given', () => {
    fc.assert(
      fc.property(
        fc.anything(),
        fc.anything(),
        fc.anything(),
        fc.anything(),
        (root, key, value, proof) => {
          assert.equal(
            typeof verifyStateProof(root as never, key as never, value as never, proof as never),
            'boolean',
          );
        },
      ),
    );
    const { root, prove } = buildState([['k', 'v']]);
    const proof = prove('k');
    assert.equal(
      verifyStateProof(root, utf8('k'), utf8('v'), {
        siblings: new Array(257).fill(root),
        leaf: proof.leaf,
      }),
      false,
    );
    assert.equal(verifyStateProof(root.subarray(1), utf8('k'), utf8('v'), proof), false);
    // A sparse array: `every` would skip the hole and the hashing would meet `undefined`.
    const holed = new Array<Uint8Array>(2);
    holed[1] = root;
    assert.equal(
      verifyStateProof(root, utf8('k'), utf8('v'), { ...proof, siblings: holed }),
      false,
    );
    assert.equal(verifyStateProof(root, utf8('k'), null, { siblings: holed, leaf: null }), false);
  });

  it('proofs round-trip through their canonical encoding; other bytes are MALFORMED', () => {
    fc.assert(
      fc.property(stateEntries, fc.string({ minLength: 1, maxLength: 12 }), (entries, key) => {
        const { prove } = buildState(entries);
        const proof = prove(key);
        const decoded = decodeStateProof(encodeStateProof(proof));
        assert.deepEqual(
          {
            siblings: decoded.siblings.map(hex),
            leaf: decoded.leaf && [hex(decoded.leaf.keyHash), hex(decoded.leaf.valueHash)],
          },
          {
            siblings: proof.siblings.map(hex),
            leaf: proof.leaf && [hex(proof.leaf.keyHash), hex(proof.leaf.valueHash)],
          },
        );
      }),
    );
    const malformed = (error: unknown) => isHyperMeshError(error, StateProofErrorCode.MALFORMED);
    const hash = new Uint8Array(32);
    for (const bad of [
      new Uint8Array([0xff]),
      encodeCanonical([2, null, []]),
      encodeCanonical([1, null]),
      encodeCanonical([1, [hash], []]),
      encodeCanonical([1, null, [new Uint8Array(31)]]),
      encodeCanonical([1, null, new Array(257).fill(hash)]),
      encodeCanonical({ format: 1 }),
      new Uint8Array([0x9f, 0x01, 0xf6, 0x80, 0xff]), // indefinite-length array: not canonical
    ]) {
      assert.throws(() => decodeStateProof(bad), malformed);
    }
  });

  it('refuses a proof longer than the largest one before decoding it, and bounds its items', () => {
    const hash = new Uint8Array(32).fill(7);
    const largest = encodeStateProof({
      siblings: new Array<Uint8Array>(256).fill(hash),
      leaf: { keyHash: hash, valueHash: hash },
    });
    // [1, [keyHash, valueHash], [sibling × 256]]: 1 + 1 + (1 + 2·34) + 3 + 256·34 bytes.
    assert.equal(largest.length, 8_778);
    assert.equal(MAX_STATE_PROOF_BYTES, 8_778);
    assert.equal(decodeStateProof(largest).siblings.length, 256);
    const refusedByLength = (error: unknown): boolean =>
      isHyperMeshError(error, StateProofErrorCode.MALFORMED) &&
      error.detail.limit === MAX_STATE_PROOF_BYTES &&
      error.cause === undefined; // no CBOR error behind it: nothing was decoded
    assert.throws(() => decodeStateProof(Uint8Array.of(...largest, 0)), refusedByLength);
    // 1 MiB of empty maps (what the node API lets a proof be): refused by its length alone.
    const maps = (count: number, head: number[]): Uint8Array => {
      const bytes = new Uint8Array(3 + head.length + count).fill(0xa0);
      bytes.set([0x83, 0x01, 0xf6, ...head]);
      return bytes;
    };
    assert.throws(() => decodeStateProof(maps(1 << 20, [0x9a, 0, 0x10, 0, 0])), refusedByLength);
    // Within the length, more data items than the largest proof's 262: the decoder's budget
    // refuses them when the head announcing them is read.
    const tooManyItems = (error: unknown): boolean =>
      isHyperMeshError(error, StateProofErrorCode.MALFORMED) &&
      isHyperMeshError(error.cause, CborErrorCode.TOO_MANY_ITEMS);
    assert.throws(() => decodeStateProof(maps(8_192, [0x99, 0x20, 0x00])), tooManyItems);
    const empty = new Uint8Array(0);
    assert.throws(
      () => decodeStateProof(encodeCanonical([1, null, new Array(259).fill(empty)])),
      tooManyItems,
    );
  });
});
