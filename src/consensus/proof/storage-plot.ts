import { leafHash, MerkleTree } from '../../crypto/merkle.js';
import { invalidInput, ProofError, ProofErrorCode } from './errors.js';
import { hasLeadingZeroBits, sha256Raw, tagPrefix } from './hashing.js';
import type { SpaceParams } from './params.js';
import { assertSpaceParams } from './params.js';

/**
 * The proposer's storage plot (PoSpace data). Block i of validator `pk` is S four-byte nonce
 * slots; slot s holds a nonce n with
 *
 *   SHA-256(prefix("hypermesh/pospace/slot") || pk || u32(i) || u32(s) || u32(n))
 *
 * starting with at least d_s zero bits. Finding a slot costs 2^d_s hashes on average; checking
 * one costs a single hash. That asymmetry is the point of this derivation: a proposer that does
 * not keep its plot must redo S·2^d_s hashes for every challenged block, while a verifier
 * re-checks the block with S hashes. (Re-deriving a hash-chain- or scrypt-expanded block would
 * cost the verifier exactly what it costs the cheater.) The honest plot uses the smallest valid
 * nonce of each slot, so it is a deterministic function of the key; verifiers accept any valid
 * nonce, because minimality cannot be checked cheaply. docs/consensus-proof.md discusses what
 * this does and does not prove.
 *
 * The commitment is the RFC 9162 Merkle Tree Hash over the N blocks (leaf = the block's bytes).
 */
export const SLOT_NONCE_BYTES = 4;
const SLOT_PREFIX = tagPrefix('hypermesh/pospace/slot');
const PUBLIC_KEY_OFFSET = 64;
const BLOCK_OFFSET = PUBLIC_KEY_OFFSET + 32;
const SLOT_OFFSET = BLOCK_OFFSET + 4;
const NONCE_OFFSET = SLOT_OFFSET + 4;
const MAX_SLOT_NONCE = 0xffff_ffff;

/** Reusable slot-hash input for one public key (hashing is synchronous). */
class SlotHasher {
  private readonly input = new Uint8Array(NONCE_OFFSET + SLOT_NONCE_BYTES);
  private readonly view = new DataView(this.input.buffer);

  constructor(publicKey: Uint8Array) {
    this.input.set(SLOT_PREFIX, 0);
    this.input.set(publicKey, PUBLIC_KEY_OFFSET);
  }

  hash(blockIndex: number, slot: number, nonce: number): Uint8Array {
    this.view.setUint32(BLOCK_OFFSET, blockIndex);
    this.view.setUint32(SLOT_OFFSET, slot);
    this.view.setUint32(NONCE_OFFSET, nonce);
    return sha256Raw(this.input);
  }
}

function requirePublicKey(publicKey: unknown): asserts publicKey is Uint8Array {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw invalidInput('storage plot public key must be a 32-byte Ed25519 key');
  }
}

/** Bytes per storage block: S × 4. */
export function storageBlockBytes(params: SpaceParams): number {
  return params.slotsPerBlock * SLOT_NONCE_BYTES;
}

function deriveBlockInto(
  hasher: SlotHasher,
  index: number,
  params: SpaceParams,
  out: DataView,
  offset: number,
): void {
  for (let slot = 0; slot < params.slotsPerBlock; slot++) {
    let nonce = 0;
    while (!hasLeadingZeroBits(hasher.hash(index, slot, nonce), params.slotDifficulty)) {
      if (nonce === MAX_SLOT_NONCE) {
        throw new ProofError(
          ProofErrorCode.NONCE_SPACE_EXHAUSTED,
          `no 32-bit nonce meets slot difficulty ${params.slotDifficulty}`,
          { index, slot },
        );
      }
      nonce++;
    }
    out.setUint32(offset + slot * SLOT_NONCE_BYTES, nonce);
  }
}

/**
 * True if `block` is a valid block `index` of `publicKey`'s plot: the right length and every
 * slot's nonce meets the difficulty. Costs S hashes. Never throws on malformed input.
 */
export function isStorageBlockOf(
  publicKey: Uint8Array,
  index: number,
  block: Uint8Array,
  params: SpaceParams,
): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  if (!(block instanceof Uint8Array) || block.length !== storageBlockBytes(params)) return false;
  if (!Number.isInteger(index) || index < 0 || index >= params.blockCount) return false;
  const hasher = new SlotHasher(publicKey);
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  for (let slot = 0; slot < params.slotsPerBlock; slot++) {
    const nonce = view.getUint32(slot * SLOT_NONCE_BYTES);
    if (!hasLeadingZeroBits(hasher.hash(index, slot, nonce), params.slotDifficulty)) return false;
  }
  return true;
}

/** One challenge answer: the block at `index` and its RFC 9162 inclusion path. */
export interface StorageChallengeAnswer {
  readonly index: number;
  readonly block: Uint8Array;
  readonly path: readonly Uint8Array[];
}

/**
 * A validator's plot: N blocks (N·S·4 bytes) and the Merkle tree over them (about 2N hashes).
 * Building costs N·S·2^d_s hashes; the node keeps the data (`data`) and reloads it with
 * `fromData`, which re-checks every block (N·S hashes) so a corrupted file is caught.
 */
export class StoragePlot {
  private constructor(
    readonly publicKey: Uint8Array,
    readonly params: SpaceParams,
    private readonly blocks: Uint8Array,
    private readonly tree: MerkleTree,
  ) {}

  /** Derives the honest plot of `publicKey`. */
  static build(publicKey: Uint8Array, params: SpaceParams): StoragePlot {
    requirePublicKey(publicKey);
    assertSpaceParams(params);
    const blockBytes = storageBlockBytes(params);
    const blocks = new Uint8Array(params.blockCount * blockBytes);
    const view = new DataView(blocks.buffer);
    const hasher = new SlotHasher(publicKey);
    const tree = new MerkleTree();
    for (let index = 0; index < params.blockCount; index++) {
      deriveBlockInto(hasher, index, params, view, index * blockBytes);
      tree.appendLeaf(blocks.subarray(index * blockBytes, (index + 1) * blockBytes));
    }
    return new StoragePlot(publicKey.slice(), params, blocks, tree);
  }

  /** Reloads a plot from its `data`; throws `PROOF_INVALID_INPUT` if any block is invalid. */
  static fromData(publicKey: Uint8Array, params: SpaceParams, data: Uint8Array): StoragePlot {
    requirePublicKey(publicKey);
    assertSpaceParams(params);
    const blockBytes = storageBlockBytes(params);
    if (!(data instanceof Uint8Array) || data.length !== params.blockCount * blockBytes) {
      throw invalidInput(`plot data must be ${params.blockCount * blockBytes} bytes`);
    }
    const blocks = data.slice();
    const tree = new MerkleTree();
    for (let index = 0; index < params.blockCount; index++) {
      const block = blocks.subarray(index * blockBytes, (index + 1) * blockBytes);
      if (!isStorageBlockOf(publicKey, index, block, params)) {
        throw invalidInput(`plot block ${index} does not belong to this key`, { index });
      }
      tree.appendLeafHash(leafHash(block));
    }
    return new StoragePlot(publicKey.slice(), params, blocks, tree);
  }

  /** The commitment registered at genesis. */
  get root(): Uint8Array {
    return this.tree.root();
  }

  /** A copy of the plot's bytes, for persisting. */
  get data(): Uint8Array {
    return this.blocks.slice();
  }

  block(index: number): Uint8Array {
    const size = storageBlockBytes(this.params);
    if (!Number.isInteger(index) || index < 0 || index >= this.params.blockCount) {
      throw invalidInput(`block index ${index} is not in [0, ${this.params.blockCount})`);
    }
    return this.blocks.slice(index * size, (index + 1) * size);
  }

  answer(index: number): StorageChallengeAnswer {
    return { index, block: this.block(index), path: this.tree.inclusionProof(index) };
  }
}
