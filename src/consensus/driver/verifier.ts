import type { KeyObject } from 'node:crypto';
import { concatBytes, toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import type { SignatureVerifier } from '../verify.js';

/** Default number of verified signatures remembered. */
export const DEFAULT_VERIFIED_CACHE = 16_384;

/**
 * A `SignatureVerifier` that remembers signatures it found valid, with the same answers as
 * `base`. The same precommits are checked several times — as votes, then inside every proposal's
 * `lastCommit` of the next height, then in a synced block's commit — and a FALCON-1024 check
 * costs ~130 µs against ~1 µs to hash the triple. Only valid signatures are remembered, so a
 * peer sending forgeries cannot fill the cache; the oldest entry goes first when it is full.
 * Ed25519 keys are KeyObjects (the validator set imports them once); each is numbered on first
 * sight so the memo key names the exact key.
 */
export function memoizingVerifier(
  base: SignatureVerifier,
  capacity = DEFAULT_VERIFIED_CACHE,
): SignatureVerifier {
  const verified = new Set<string>();
  const keyIds = new WeakMap<KeyObject, number>();
  let nextKeyId = 0;
  const remember = (key: string) => {
    verified.add(key);
    if (verified.size > capacity) {
      const oldest = verified.values().next();
      if (oldest.done !== true) verified.delete(oldest.value);
    }
  };
  const memoKey = (prefix: string, signature: Uint8Array, message: Uint8Array) =>
    `${prefix}:${toHex(sha256(concatBytes(signature, message)))}`;
  const ed25519 = (signature: Uint8Array, message: Uint8Array, publicKey: KeyObject): boolean => {
    if (!(signature instanceof Uint8Array) || !(message instanceof Uint8Array)) return false;
    let id = keyIds.get(publicKey);
    if (id === undefined) {
      id = nextKeyId++;
      keyIds.set(publicKey, id);
    }
    const key = memoKey(`e${id}`, signature, message);
    if (verified.has(key)) return true;
    const valid = base.ed25519(signature, message, publicKey);
    if (valid) remember(key);
    return valid;
  };
  const falconBase = base.falcon;
  if (falconBase === undefined) return { ed25519 };
  const falcon = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean => {
    if (
      !(signature instanceof Uint8Array) ||
      !(message instanceof Uint8Array) ||
      !(publicKey instanceof Uint8Array)
    ) {
      return false;
    }
    const key = memoKey(`f${toHex(sha256(publicKey))}`, signature, message);
    if (verified.has(key)) return true;
    const valid = falconBase(signature, message, publicKey);
    if (valid) remember(key);
    return valid;
  };
  return { ed25519, falcon };
}
