import * as nodeCrypto from 'node:crypto';
import { decodeCanonical, encodeCanonical } from '../codec/cbor.js';
import { HyperMeshError } from '../codec/error.js';

/**
 * The application state's authenticated structure, as a light client sees it: a sparse Merkle
 * tree of depth 256 over SHA-256(key), in the compact form of Diem's Jellyfish Merkle tree
 * (Gao et al. 2021, "Jellyfish Merkle Tree", §2 and the `SparseMerkleProof` verifier): a
 * subtree that holds exactly one key is represented by that key's leaf, placed as high as it
 * is alone; an empty subtree is the fixed empty hash. So the tree is a function of the key set
 * (deterministic, whatever order keys were written in) and paths are about log2(n) long.
 *
 * This module is pure (no SQLite): a client verifies a queried value against a state root from
 * a committed block header with `verifyStateProof`.
 *
 * Hashes (SHA-256, FIPS 180-4), with prefixes distinct from RFC 9162's 0x00/0x01 so no state
 * node can be confused with a transparency-log node:
 * - key hash   k = SHA-256(key), read as 256 bits, most significant bit of byte 0 first;
 *   bit d chooses the child at depth d (0 = left, 1 = right)
 * - leaf       SHA-256(0x02 || k || SHA-256(value))
 * - internal   SHA-256(0x03 || left || right)
 * - empty      32 zero bytes (no SHA-256 input is known to hash to it)
 */
export enum StateProofErrorCode {
  MALFORMED = 'STATE_PROOF_MALFORMED',
}

export class StateProofError extends HyperMeshError<StateProofErrorCode> {
  constructor(message: string, detail: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(StateProofErrorCode.MALFORMED, message, detail, options);
  }
}

export const STATE_HASH_SIZE = 32;
export const STATE_TREE_DEPTH = 256;

const LEAF_PREFIX = 0x02;
const INTERNAL_PREFIX = 0x03;

/** The hash of an empty subtree, and the root of the empty state. */
export const EMPTY_STATE_ROOT: Uint8Array = new Uint8Array(STATE_HASH_SIZE);

/** The leaf a proof ends at: the key hash and value hash stored there. */
export interface StateLeaf {
  readonly keyHash: Uint8Array;
  readonly valueHash: Uint8Array;
}

/**
 * A path from the root down to where `SHA-256(key)` leads: the sibling hashes at depths
 * 1..siblings.length (index 0 is the root's other child), and what the path ends at — the
 * key's own leaf (inclusion), another key's leaf that holds the whole subtree (absence), or an
 * empty subtree (`leaf: null`, absence).
 */
export interface StateProof {
  readonly siblings: readonly Uint8Array[];
  readonly leaf: StateLeaf | null;
}

const sha256: (data: Uint8Array) => Uint8Array =
  typeof nodeCrypto.hash === 'function'
    ? (data) => new Uint8Array(nodeCrypto.hash('sha256', data, 'buffer'))
    : (data) => new Uint8Array(nodeCrypto.createHash('sha256').update(data).digest());

/** SHA-256(key): the key's position in the tree. */
export function stateKeyHash(key: Uint8Array): Uint8Array {
  return sha256(key);
}

/** SHA-256(value), as stored in the leaf. */
export function stateValueHash(value: Uint8Array): Uint8Array {
  return sha256(value);
}

const nodeInput = new Uint8Array(1 + 2 * STATE_HASH_SIZE);

function hashPair(prefix: number, a: Uint8Array, b: Uint8Array): Uint8Array {
  nodeInput[0] = prefix;
  nodeInput.set(a, 1);
  nodeInput.set(b, 1 + STATE_HASH_SIZE);
  return sha256(nodeInput);
}

export function stateLeafHash(keyHash: Uint8Array, valueHash: Uint8Array): Uint8Array {
  return hashPair(LEAF_PREFIX, keyHash, valueHash);
}

export function stateInternalHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return hashPair(INTERNAL_PREFIX, left, right);
}

/** Bit `depth` of a key hash (0 = most significant bit of byte 0). */
export function keyBit(keyHash: Uint8Array, depth: number): 0 | 1 {
  return (((keyHash[depth >> 3] ?? 0) >> (7 - (depth & 7))) & 1) as 0 | 1;
}

export function hashesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when the first `bits` bits of two key hashes agree. */
function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  for (let depth = 0; depth < bits; depth++)
    if (keyBit(a, depth) !== keyBit(b, depth)) return false;
  return true;
}

const isHash = (value: unknown): value is Uint8Array =>
  value instanceof Uint8Array && value.length === STATE_HASH_SIZE;

/**
 * Checks that `proof` shows `key` holding `value` (or, for `value === null`, holding nothing)
 * in the state whose root is `root`. Any shape problem is simply a failed proof: this never
 * throws, so it can run on untrusted input directly.
 *
 * Soundness rests on SHA-256 collision resistance plus the distinct leaf/internal prefixes: the
 * recomputed path can only meet `root` if every node on it is the real node, and a leaf or
 * the empty hash cannot stand in for an internal node or vice versa.
 */
export function verifyStateProof(
  root: Uint8Array,
  key: Uint8Array,
  value: Uint8Array | null,
  proof: StateProof,
): boolean {
  if (!isHash(root) || !(key instanceof Uint8Array)) return false;
  if (value !== null && !(value instanceof Uint8Array)) return false;
  if (typeof proof !== 'object' || proof === null || !Array.isArray(proof.siblings)) return false;
  const { leaf } = proof;
  if (proof.siblings.length > STATE_TREE_DEPTH) return false;
  // An indexed copy, not `every`: `every` skips the holes of a sparse array, which would then
  // reach the hashing below as `undefined` and throw.
  const siblings: Uint8Array[] = [];
  for (let index = 0; index < proof.siblings.length; index++) {
    const sibling: unknown = proof.siblings[index];
    if (!isHash(sibling)) return false;
    siblings.push(sibling);
  }
  if (
    leaf !== null &&
    (typeof leaf !== 'object' || !isHash(leaf.keyHash) || !isHash(leaf.valueHash))
  ) {
    return false;
  }
  const keyHash = stateKeyHash(key);
  if (value !== null) {
    // Inclusion: the path must end at this key's leaf with this value.
    if (leaf === null || !hashesEqual(leaf.keyHash, keyHash)) return false;
    if (!hashesEqual(leaf.valueHash, stateValueHash(value))) return false;
  } else if (leaf !== null) {
    // Absence shown by another key's leaf: it must sit on this key's path (so the subtree
    // where this key would be holds only that other key), and must not be this key.
    if (hashesEqual(leaf.keyHash, keyHash)) return false;
    if (!samePrefix(leaf.keyHash, keyHash, siblings.length)) return false;
  }
  let node = leaf === null ? EMPTY_STATE_ROOT : stateLeafHash(leaf.keyHash, leaf.valueHash);
  for (let depth = siblings.length - 1; depth >= 0; depth--) {
    const sibling = siblings[depth] as Uint8Array;
    node =
      keyBit(keyHash, depth) === 1
        ? stateInternalHash(sibling, node)
        : stateInternalHash(node, sibling);
  }
  return hashesEqual(node, root);
}

/** Format version of the encoded proof, so a later format can be told apart. */
const PROOF_FORMAT = 1;

/** Deterministic CBOR: `[1, [keyHash, valueHash] / null, [sibling, ...]]`. */
export function encodeStateProof(proof: StateProof): Uint8Array {
  const leaf = proof.leaf === null ? null : [proof.leaf.keyHash, proof.leaf.valueHash];
  return encodeCanonical([PROOF_FORMAT, leaf, [...proof.siblings]]);
}

/** A 32-byte hash as a CBOR byte string: head `58 20`, then the 32 bytes. */
const HASH_ITEM_BYTES = 2 + STATE_HASH_SIZE;

/**
 * The largest encoding `encodeStateProof` writes: a proof ending at a leaf with all 256
 * siblings, `[1, [keyHash, valueHash], [sibling × 256]]`. Its bytes are
 *   1 (head of the 3-element array) + 1 (format 1)
 *   + 1 + 2 × 34 (the leaf: a 2-element array head and two hashes)
 *   + 3 (head of the 256-element array, `99 01 00`) + 256 × 34 (the siblings)
 *   = 8,778,
 * so anything longer is refused before it is decoded.
 */
export const MAX_STATE_PROOF_BYTES =
  1 + 1 + (1 + 2 * HASH_ITEM_BYTES) + 3 + STATE_TREE_DEPTH * HASH_ITEM_BYTES;

/**
 * Its data items (RFC 8949 §2), the decoder's budget: the proof array, its 3 elements, the
 * leaf's 2 hashes and 256 siblings, 1 + 3 + 2 + 256 = 262. Every proof `decodeStateProof`
 * accepts has at most these; any other shape is refused after at most this many.
 */
const MAX_STATE_PROOF_ITEMS = 1 + 3 + 2 + STATE_TREE_DEPTH;

function malformed(reason: string, detail: Record<string, unknown> = {}): never {
  throw new StateProofError(`malformed state proof: ${reason}`, detail);
}

/** Parses an encoded proof; anything but the exact canonical form is `STATE_PROOF_MALFORMED`. */
export function decodeStateProof(bytes: Uint8Array): StateProof {
  if (!(bytes instanceof Uint8Array)) malformed('expected bytes');
  if (bytes.length > MAX_STATE_PROOF_BYTES) {
    malformed(`${bytes.length} bytes; the limit is ${MAX_STATE_PROOF_BYTES}`, {
      length: bytes.length,
      limit: MAX_STATE_PROOF_BYTES,
    });
  }
  let decoded: unknown;
  try {
    decoded = decodeCanonical(bytes, { maxItems: MAX_STATE_PROOF_ITEMS });
  } catch (error) {
    throw new StateProofError(
      `malformed state proof: ${(error as Error).message}`,
      { length: bytes.length },
      { cause: error },
    );
  }
  if (!Array.isArray(decoded) || decoded.length !== 3) malformed('expected a 3-element array');
  const [format, leaf, siblings] = decoded as [unknown, unknown, unknown];
  if (format !== PROOF_FORMAT) malformed(`unknown format ${String(format)}`, { format });
  if (!Array.isArray(siblings) || siblings.length > STATE_TREE_DEPTH) {
    malformed(`siblings must be an array of at most ${STATE_TREE_DEPTH} hashes`);
  }
  const hashes = siblings.map((sibling: unknown, index: number) =>
    isHash(sibling) ? sibling : malformed(`sibling ${index} is not a 32-byte hash`, { index }),
  );
  if (leaf === null) return { siblings: hashes, leaf: null };
  if (!Array.isArray(leaf) || leaf.length !== 2 || !isHash(leaf[0]) || !isHash(leaf[1])) {
    malformed('leaf must be null or [keyHash, valueHash] (32 bytes each)');
  }
  return { siblings: hashes, leaf: { keyHash: leaf[0], valueHash: leaf[1] } };
}
