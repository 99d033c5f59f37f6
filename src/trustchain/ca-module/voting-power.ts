import { z } from 'zod';
import { encodeCanonical } from '../../codec/cbor.js';
import { bytes } from '../../codec/schema.js';
import type { LastCommitInfo } from '../../consensus/app.js';
import type { ModuleStateReader } from '../../consensus/application/module.js';
import { MAX_TOTAL_VOTING_POWER, VALIDATOR_ADDRESS_BYTES } from '../../consensus/validator-set.js';
import { bytesEqual, fromHex, toHex } from '../../crypto/bytes.js';
import type { CaModuleConfig } from './config.js';
import type { DcvElectorate } from './dcv.js';
import { decodeWith } from './state.js';

/**
 * The validator set multi-perspective validation counts voting power against (docs/ca.md,
 * "Multi-perspective validation (MPIC)"). Consensus hands every module's `endBlock` the set that
 * committed the previous block, with each validator's power (`EndBlockContext.lastCommit`,
 * CometBFT's LastCommitInfo, derived from the block itself so every node sees the same). The
 * `ca` module keeps a copy under `ca/powers`, rewritten only when the set or a power changes:
 *
 *   ca/powers   deterministic CBOR [[address: bytes(20), power: uint], …], ascending address
 *
 * so `check` (at admission and in a block) and the ACME server (on committed state) read the same
 * set. Until a block has recorded one (a chain's first block has no previous commit), the genesis
 * validators and their genesis powers are the set (`CaModuleConfig.genesisVotingPowers`).
 */

export const VOTING_POWERS_KEY = new TextEncoder().encode('powers');

const powersSchema = z
  .array(
    z.tuple([
      bytes({ length: VALIDATOR_ADDRESS_BYTES }),
      z.int().min(1).max(MAX_TOTAL_VOTING_POWER),
    ]),
  )
  .min(1);

/** Encodes a set (address hex → power, powers ≥ 1) in ascending address order. */
export function encodeVotingPowers(powers: ReadonlyMap<string, number>): Uint8Array {
  const entries = [...powers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return encodeCanonical(entries.map(([address, power]) => [fromHex(address), power]));
}

export function decodeVotingPowers(value: Uint8Array): Map<string, number> {
  const entries = decodeWith(powersSchema, value, 'voting powers');
  return new Map(entries.map(([address, power]) => [toHex(address), power]));
}

function electorateOf(powers: ReadonlyMap<string, number>): DcvElectorate {
  let totalPower = 0;
  for (const power of powers.values()) totalPower += power;
  if (totalPower < 1 || totalPower > MAX_TOTAL_VOTING_POWER) {
    throw new RangeError(`a validator set with a total voting power of ${totalPower}`);
  }
  return { powers, totalPower };
}

/**
 * The current validator set as the `ca` module state `state` records it, else the genesis set.
 * Throws `CaStateError CA_CORRUPT_STATE` for a stored value that does not decode.
 */
export function readDcvElectorate(
  config: Pick<CaModuleConfig, 'genesisVotingPowers'>,
  state: ModuleStateReader,
): DcvElectorate {
  const stored = state.get(VOTING_POWERS_KEY);
  return electorateOf(stored === null ? config.genesisVotingPowers : decodeVotingPowers(stored));
}

/**
 * What `endBlock` writes to `VOTING_POWERS_KEY` for a block with `lastCommit`: the encoded set
 * when it differs from the stored one, else null (also without a `lastCommit`, or when it names
 * no validator with power).
 */
export function votingPowersUpdate(
  state: ModuleStateReader,
  lastCommit: LastCommitInfo | undefined,
): Uint8Array | null {
  if (lastCommit === undefined) return null;
  const powers = new Map<string, number>();
  for (const vote of lastCommit.votes) {
    if (vote.power > 0) powers.set(vote.validator, vote.power);
  }
  if (powers.size === 0) return null;
  const encoded = encodeVotingPowers(powers);
  const stored = state.get(VOTING_POWERS_KEY);
  return stored !== null && bytesEqual(stored, encoded) ? null : encoded;
}
