import { z } from 'zod';
import { decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput } from '../../codec/schema.js';
import { leafHash } from '../../crypto/merkle.js';
import {
  EMPTY_COMPACT_RANGE,
  appendToCompactRange,
  checkCompactRange,
  compactRangeRoot,
  type CompactRange,
} from '../ct/compact-range.js';
import { encodeMerkleTreeLeaf } from '../ct/leaf.js';
import { CaStateError } from './errors.js';

/**
 * The transparency log's tree head in consensus state (docs/ct.md, "Quorum-signed tree head"):
 * `ca/ct/head` holds the log's size and compact range after the last block that published
 * certificates. Every validator appends the same leaves a node's local log appends (each
 * published certificate as an RFC 6962 `x509_entry` whose timestamp is the publishing block's
 * time, in publication order), so the root equals every honest node's local log root at that
 * size, and the block's commit signs it through `header.appStateRoot`.
 */
export const TREE_HEAD_KEY = new TextEncoder().encode('ct/head');

export interface ConsensusTreeHead {
  readonly range: CompactRange;
  /** Height and time (ms) of the block that last appended (0 and 0 before the first). */
  readonly height: number;
  readonly time: number;
}

export const EMPTY_TREE_HEAD: ConsensusTreeHead = Object.freeze({
  range: EMPTY_COMPACT_RANGE,
  height: 0,
  time: 0,
});

const uint = z.int().min(0);
const schema = z.strictObject({
  n: uint.max(Number.MAX_SAFE_INTEGER),
  edge: z.array(bytes({ length: 32 })).max(64),
  h: uint,
  t: uint,
});

export function encodeTreeHead(head: ConsensusTreeHead): Uint8Array {
  return encodeCanonical({
    n: head.range.size,
    edge: head.range.hashes,
    h: head.height,
    t: head.time,
  });
}

/** Decodes the stored value (null: the empty log); throws `CaStateError` for anything else. */
export function decodeTreeHead(value: Uint8Array | null): ConsensusTreeHead {
  if (value === null) return EMPTY_TREE_HEAD;
  try {
    const r = parseInput(schema, decodeCanonical(value), 'tree head');
    return {
      range: checkCompactRange({ size: r.n, hashes: r.edge }),
      height: r.h,
      time: r.t,
    };
  } catch (error) {
    throw new CaStateError(
      'CA_CORRUPT_STATE',
      `stored tree head does not decode: ${(error as Error).message}`,
      { what: 'tree head' },
      { cause: error },
    );
  }
}

/** MTH of the log at the head's size. */
export function treeHeadRoot(head: ConsensusTreeHead): Uint8Array {
  return compactRangeRoot(head.range);
}

/** The log leaf of a published certificate: what ca-node.ts appends to the local log. */
export function certificateLogLeaf(certificate: Uint8Array, blockTime: number): Uint8Array {
  return encodeMerkleTreeLeaf({ timestamp: blockTime, entry: { type: 'x509', certificate } });
}

/** The head after block (`height`, `time`) publishes `certificates`, in order. */
export function appendCertificates(
  head: ConsensusTreeHead,
  certificates: readonly Uint8Array[],
  height: number,
  time: number,
): ConsensusTreeHead {
  let range = head.range;
  for (const certificate of certificates) {
    range = appendToCompactRange(range, leafHash(certificateLogLeaf(certificate, time)));
  }
  return { range, height, time };
}
