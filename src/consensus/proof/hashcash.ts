import { invalidInput, ProofError, ProofErrorCode } from './errors.js';
import { hasLeadingZeroBits, leadingZeroBits, sha256Raw, tagPrefix } from './hashing.js';
import { MAX_STAMP_DIFFICULTY } from './params.js';

/**
 * Hashcash stamps on client transactions (Back, "Hashcash — a denial of service counter-measure",
 * 2002): a nonce such that
 *
 *   SHA-256(prefix("hypermesh/hashcash/stamp") || txHash || u64(nonce))
 *
 * starts with at least d zero bits. Minting costs 2^d hashes on average, checking costs one.
 * `txHash` is the hash of the transaction without its stamp, so the stamp is bound to exactly
 * that transaction and cannot be reused for another.
 */
const STAMP_PREFIX = tagPrefix('hypermesh/hashcash/stamp');
const TX_HASH_OFFSET = 64;
const NONCE_OFFSET = TX_HASH_OFFSET + 32;

function stampInput(txHash: Uint8Array): { input: Uint8Array; view: DataView } {
  const input = new Uint8Array(NONCE_OFFSET + 8);
  input.set(STAMP_PREFIX, 0);
  input.set(txHash, TX_HASH_OFFSET);
  return { input, view: new DataView(input.buffer) };
}

function setNonce(view: DataView, nonce: number): void {
  // Split by hand: DataView.setBigUint64 would allocate a BigInt per attempt.
  view.setUint32(NONCE_OFFSET, Math.floor(nonce / 2 ** 32));
  view.setUint32(NONCE_OFFSET + 4, nonce >>> 0);
}

function isNonce(nonce: unknown): nonce is number {
  return typeof nonce === 'number' && Number.isSafeInteger(nonce) && nonce >= 0;
}

function isTxHash(txHash: unknown): txHash is Uint8Array {
  return txHash instanceof Uint8Array && txHash.length === 32;
}

/** The stamp hash of (txHash, nonce). */
export function stampDigest(txHash: Uint8Array, nonce: number): Uint8Array {
  if (!isTxHash(txHash)) throw invalidInput('txHash must be 32 bytes');
  if (!isNonce(nonce)) throw invalidInput(`stamp nonce must be a non-negative safe integer`);
  const { input, view } = stampInput(txHash);
  setNonce(view, nonce);
  return new Uint8Array(sha256Raw(input));
}

/** The work a stamp carries: the leading zero bits of its hash. */
export function stampWork(txHash: Uint8Array, nonce: number): number {
  return leadingZeroBits(stampDigest(txHash, nonce));
}

/** True if `nonce` is a stamp of at least `difficulty` bits for `txHash`. Never throws. */
export function verifyStamp(txHash: Uint8Array, nonce: number, difficulty: number): boolean {
  if (!isTxHash(txHash) || !isNonce(nonce)) return false;
  if (!Number.isInteger(difficulty) || difficulty < 0 || difficulty > 256) return false;
  return hasLeadingZeroBits(stampDigest(txHash, nonce), difficulty);
}

/**
 * Searches nonces from `startNonce` upwards for a stamp of `difficulty` bits (expected 2^d
 * hashes). Clients that mint several stamps for one transaction, or want unpredictable stamps,
 * pass a random `startNonce`; the search itself is deterministic.
 */
export function mintStamp(txHash: Uint8Array, difficulty: number, startNonce = 0): number {
  if (!isTxHash(txHash)) throw invalidInput('txHash must be 32 bytes');
  if (!Number.isInteger(difficulty) || difficulty < 0 || difficulty > MAX_STAMP_DIFFICULTY) {
    throw invalidInput(`stamp difficulty must be an integer in [0, ${MAX_STAMP_DIFFICULTY}]`);
  }
  if (!isNonce(startNonce)) throw invalidInput('startNonce must be a non-negative safe integer');
  const { input, view } = stampInput(txHash);
  for (let nonce = startNonce; nonce <= Number.MAX_SAFE_INTEGER; nonce++) {
    setNonce(view, nonce);
    if (hasLeadingZeroBits(sha256Raw(input), difficulty)) return nonce;
  }
  throw new ProofError(
    ProofErrorCode.NONCE_SPACE_EXHAUSTED,
    `no stamp of difficulty ${difficulty} at or above nonce ${startNonce}`,
  );
}
