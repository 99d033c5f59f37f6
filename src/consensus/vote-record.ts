import type { FlatItem, FlatRecord } from '../codec/flat-canonical.js';
import type { Vote } from './types.js';

/**
 * A signed vote as a plain map, for every encoding that carries a whole vote: the hashes of
 * commits and evidence (messages.ts), the consensus WAL and signer state (driver/records.ts).
 *
 * `pqSignature` is left out when the vote has none, so the map never holds `undefined`; the
 * hashed form sets it to null instead (messages.ts). Keys are listed in RFC 8949 §4.2.1 order
 * (shorter first, then bytewise), with `pqSignature` last, so the flat encoder need not sort
 * them. Every encoder used here sorts keys itself, so the order never changes the bytes.
 */
export function voteRecord(vote: Vote): FlatRecord {
  const record: Record<string, FlatItem> = {
    type: vote.type,
    round: vote.round,
    height: vote.height,
    blockHash: vote.blockHash,
    signature: vote.signature,
    timestamp: vote.timestamp,
    validator: vote.validator,
  };
  if (vote.pqSignature !== undefined) record.pqSignature = vote.pqSignature;
  return record;
}
