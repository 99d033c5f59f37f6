import { pbkdf2Sync } from 'node:crypto';
import { concatBytes, bytesEqual, toHex } from '../../crypto/bytes.js';
import { taggedHash } from '../../crypto/hash.js';
import type { ProofAnchor } from './anchor.js';
import { anchorDigest } from './anchor.js';
import { invalidInput } from './errors.js';
import { indexFromDigest, u32 } from './hashing.js';
import type { TimeParams } from './params.js';
import { assertTimeParams, checkpointCount } from './params.js';
import type { PartVerdict } from './verdict.js';
import { failure, TimeFailure, VALID } from './verdict.js';

/**
 * The sequential hash chain of PoTime (a proof of sequential work in the sense of Mahmoody,
 * Moran and Vadhan, ITCS 2013; the same shape as Solana's Proof of History). The chain is cut
 * into n = T / C segments, each C sequential HMAC-SHA-256 evaluations computed by PBKDF2
 * (RFC 8018 §5.2, one output block: U_1 = HMAC(x, S || INT(1)), U_i = HMAC(x, U_{i-1}), result
 * U_1 ⊕ … ⊕ U_C — every U_i needs the one before it):
 *
 *   x_0 = seed,  x_{j+1} = PBKDF2-HMAC-SHA-256(P = x_j, S = "hypermesh/sequential-work" || u32(j),
 *                                              c = C, dkLen = 32),  checkpoint_j = x_{j+1}.
 *
 * PBKDF2 rather than a loop of `SHA-256(x)` calls because it runs the whole segment inside
 * OpenSSL: a JavaScript loop pays a native call per hash and runs ~4× slower here than PBKDF2,
 * and ~15× slower than native code a cheater would use, so the honest prover would be the
 * slowest party. Each segment can be re-checked on its own
 * from the checkpoint before it, so a verifier may check them in parallel, or check a sample
 * chosen by Fiat–Shamir (see `sampleSegments` and the docs for what sampling loses).
 */
export interface SequentialWork {
  readonly seed: Uint8Array;
  readonly checkpoints: readonly Uint8Array[];
}

/**
 * The seed binds the chain to its position: chain id, height, parent hash, the previous proof
 * output (derived from the parent block hash, see src/consensus/pos/anchor.ts) and the proposer.
 * So the chain cannot start before the parent block exists, and no other proposer, height or
 * fork can reuse it.
 */
export function sequentialWorkSeed(anchor: ProofAnchor): Uint8Array {
  return anchorDigest('hypermesh/sequential-work/seed', anchor);
}

const SEGMENT_SALT = new TextEncoder().encode('hypermesh/sequential-work');

/** x_{j+1} from x_j: segment j of C iterations. */
export function computeSegment(start: Uint8Array, segment: number, iterations: number): Uint8Array {
  const salt = concatBytes(SEGMENT_SALT, u32(segment));
  return new Uint8Array(pbkdf2Sync(start, salt, iterations, 32, 'sha256'));
}

/** Runs the n segments, recording each one's output as a checkpoint. */
export function computeSequentialWork(seed: Uint8Array, params: TimeParams): SequentialWork {
  assertTimeParams(params);
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw invalidInput('the sequential-work seed must be 32 bytes');
  }
  const checkpoints: Uint8Array[] = [];
  let x = seed;
  for (let j = 0; j < checkpointCount(params); j++) {
    x = computeSegment(x, j, params.checkpointInterval);
    checkpoints.push(x);
  }
  return { seed: seed.slice(), checkpoints };
}

/** How much of the chain a verifier recomputes. */
export type SequentialWorkCheck =
  | { readonly mode: 'full' }
  | {
      readonly mode: 'sampled';
      /** s: segments to recompute; s ≥ T / C means all of them. */
      readonly segments: number;
    };

/**
 * s distinct segment indexes out of n, from a Fiat–Shamir transcript of the seed, every
 * checkpoint and `binding` (bytes the prover did not control when it built the chain — the
 * block's commit), by a partial Fisher–Yates shuffle driven by the transcript.
 */
export function sampleSegments(
  work: SequentialWork,
  binding: Uint8Array,
  segments: number,
): number[] {
  const n = work.checkpoints.length;
  const indexes = Array.from({ length: n }, (_, i) => i);
  if (segments >= n) return indexes;
  const transcript = taggedHash(
    'hypermesh/sequential-work/sample',
    work.seed,
    concatBytes(...work.checkpoints),
    binding,
  );
  for (let i = 0; i < segments; i++) {
    const pick =
      i + indexFromDigest(taggedHash('hypermesh/sequential-work/pick', transcript, u32(i)), n - i);
    const chosen = indexes[pick] as number;
    indexes[pick] = indexes[i] as number;
    indexes[i] = chosen;
  }
  return indexes.slice(0, segments).sort((a, b) => a - b);
}

export interface SequentialWorkVerification {
  readonly expectedSeed: Uint8Array;
  readonly params: TimeParams;
  readonly check: SequentialWorkCheck;
  /** Fiat–Shamir binding for sampled checks (the hash of the block's commit). */
  readonly sampleBinding: Uint8Array;
}

export function verifySequentialWork(
  work: SequentialWork,
  verification: SequentialWorkVerification,
): PartVerdict<'time'> {
  const { expectedSeed, params, check, sampleBinding } = verification;
  if (!bytesEqual(work.seed, expectedSeed)) {
    return failure(
      'time',
      TimeFailure.WRONG_CHAIN_SEED,
      'the hash chain does not start from the seed of this chain position',
      { expected: toHex(expectedSeed), actual: toHex(work.seed) },
    );
  }
  const expectedCount = checkpointCount(params);
  if (work.checkpoints.length !== expectedCount) {
    return failure(
      'time',
      TimeFailure.WRONG_CHECKPOINT_COUNT,
      `expected ${expectedCount} checkpoints, got ${work.checkpoints.length}`,
      { expected: expectedCount, actual: work.checkpoints.length },
    );
  }
  const segments =
    check.mode === 'full'
      ? Array.from({ length: expectedCount }, (_, i) => i)
      : sampleSegments(work, sampleBinding, check.segments);
  for (const segment of segments) {
    const start = segment === 0 ? work.seed : (work.checkpoints[segment - 1] as Uint8Array);
    const end = computeSegment(start, segment, params.checkpointInterval);
    if (!bytesEqual(end, work.checkpoints[segment] as Uint8Array)) {
      return failure(
        'time',
        TimeFailure.CHECKPOINT_MISMATCH,
        `checkpoint ${segment} is not ${params.checkpointInterval} HMAC-SHA-256 iterations after the previous one`,
        { segment },
      );
    }
  }
  return VALID;
}
