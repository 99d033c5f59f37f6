import type { ModuleStateReader } from '../consensus/application/module.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { IntermediateStateReader } from '../trustchain/ca-module/intermediates.js';
import { CaesarError, CaesarErrorCode, CaesarStateError, CaesarStateErrorCode } from './errors.js';

/**
 * On a chain with the `ca` module, a new validator first obtains a TrustChain intermediate
 * through the governed procedure (issue 6 §2; docs/ca.md, "Adding a validator's intermediate"),
 * then registers with `create-validator` (docs/caesar.md, "Staking transactions"). Its consensus
 * key must then be the key of an intermediate holder in effect: a genesis intermediate's holder,
 * or the `account` (node Ed25519 key) of an intermediate the ca module added, read from the ca
 * module's state (`ints`, `int/<name>`) with the module's own reader over the state the
 * transaction runs on (`ctx.foreign`), so an intermediate that took effect earlier in the same
 * block counts.
 */
export interface ValidatorIntermediates {
  /**
   * The Ed25519 keys of the genesis intermediates' holders (`CaModuleConfig.issuers[].account`,
   * from the genesis alone: the ca module does not store them in its state).
   */
  readonly genesisHolders: readonly Uint8Array[];
}

/** Whether `consensusKey` holds an intermediate in effect; `ca` is the ca module's state. */
export function holdsIntermediate(
  intermediates: ValidatorIntermediates,
  ca: ModuleStateReader,
  consensusKey: Uint8Array,
): boolean {
  if (intermediates.genesisHolders.some((holder) => bytesEqual(holder, consensusKey))) return true;
  const reader = new IntermediateStateReader(ca);
  return reader.addedNames().some((name) => {
    const record = reader.added(name);
    if (record === null) {
      throw new CaesarStateError(
        CaesarStateErrorCode.CORRUPT_VALUE,
        `the ca module lists added intermediate ${name}, whose record is missing`,
        { name },
      );
    }
    return bytesEqual(record.account, consensusKey);
  });
}

/** `CAESAR_VALIDATOR_NO_INTERMEDIATE` unless `consensusKey` holds an intermediate in effect. */
export function requireIntermediate(
  intermediates: ValidatorIntermediates,
  ca: ModuleStateReader,
  consensusKey: Uint8Array,
): void {
  if (holdsIntermediate(intermediates, ca, consensusKey)) return;
  throw new CaesarError(
    CaesarErrorCode.VALIDATOR_NO_INTERMEDIATE,
    `create-validator: key ${toHex(consensusKey)} holds no TrustChain intermediate in effect; a new validator gets one first (hypermesh ca intermediate issue, then approvals by the holders)`,
    { key: toHex(consensusKey) },
  );
}
