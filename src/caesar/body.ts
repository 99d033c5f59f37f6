import { CaesarReader } from './cbor.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import {
  CREATE_VALIDATOR_OP,
  DELEGATE_OP,
  EDIT_VALIDATOR_OP,
  STAKING_FIELDS,
  UNBOND_OP,
  UNJAIL_OP,
  encodeStakingTx,
  readStakingTx,
} from './staking-tx.js';
import type { StakingTx } from './staking-tx.js';
import { GOV_FIELDS, SUBMIT_PROPOSAL_OP, VOTE_OP, encodeGovTx, readGovTx } from './gov-tx.js';
import type { GovTx } from './gov-tx.js';
import { HYBRID_FIELDS, HYBRID_OP, encodeHybridTx, readHybridTx } from './hybrid.js';
import type { HybridTx } from './hybrid.js';
import { TRANSFER_FIELDS, TRANSFER_OP, encodeTransfer, readTransfer } from './transfer.js';
import type { Transfer } from './transfer.js';

/**
 * Every Caesar transaction body: a transfer, a staking or a governance transaction, or a
 * hybrid account's transfer (hybrid.ts), by `op`.
 */
export type CaesarTx = Transfer | StakingTx | GovTx | HybridTx;

export const CAESAR_OPS = [
  TRANSFER_OP,
  CREATE_VALIDATOR_OP,
  DELEGATE_OP,
  UNBOND_OP,
  UNJAIL_OP,
  EDIT_VALIDATOR_OP,
  SUBMIT_PROPOSAL_OP,
  VOTE_OP,
  HYBRID_OP,
];

/** Every field name of any body, for reading the first key before the op is known. */
const ANY_FIELD: readonly string[] = [
  ...new Set<string>([
    ...TRANSFER_FIELDS,
    ...Object.values(STAKING_FIELDS).flat(),
    ...Object.values(GOV_FIELDS).flat(),
    ...HYBRID_FIELDS,
  ]),
];

/**
 * Parses a Caesar transaction body (stateless rules). Accepts only the canonical encoding.
 * `op` sorts before every other field name, so it is the first key of any canonical body and
 * decides which fields may follow. Throws `CaesarError`: `MALFORMED_BODY`, `UNKNOWN_FIELD`,
 * `INVALID_AMOUNT`, `AMOUNT_TOO_LARGE`, `ZERO_AMOUNT`, `MEMO_TOO_LONG` or `INVALID_COMMISSION`,
 * and for a hybrid body also `HYBRID_SIGNATURE_MISSING`, `HYBRID_INVALID_KEY`,
 * `HYBRID_BAD_SIGNATURE` (impossible length) or `HYBRID_UNSUPPORTED_OP`. A hybrid body wraps
 * exactly one transfer: another hybrid body inside is refused.
 */
export function decodeCaesarBody(body: Uint8Array): CaesarTx {
  try {
    const reader = new CaesarReader(body, 'caesar body');
    const count = reader.readMapLength();
    if (count === 0) reader.malformed('empty map; a body has an "op" field');
    const first = reader.readKey(ANY_FIELD, undefined);
    if (first !== 'op') reader.malformed('missing field "op"');
    const op = reader.readAsciiText('op', 32);
    switch (op) {
      case TRANSFER_OP:
        reader.setContext(op);
        return readTransfer(reader, count);
      case CREATE_VALIDATOR_OP:
      case DELEGATE_OP:
      case UNBOND_OP:
      case UNJAIL_OP:
      case EDIT_VALIDATOR_OP:
        reader.setContext(op);
        return readStakingTx(reader, op, count);
      case SUBMIT_PROPOSAL_OP:
      case VOTE_OP:
        reader.setContext(op);
        return readGovTx(reader, op, count);
      case HYBRID_OP:
        reader.setContext(op);
        return readHybridTx(reader, count, decodeCaesarBody);
      default:
        return reader.malformed(
          `unknown op ${JSON.stringify(op)}; known: ${CAESAR_OPS.map((o) => `"${o}"`).join(', ')}`,
        );
    }
  } catch (error) {
    if (error instanceof CaesarError) throw error;
    throw new CaesarError(
      CaesarErrorCode.MALFORMED_BODY,
      `caesar body: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** The body of any Caesar transaction (the inverse of `decodeCaesarBody`). Throws `CaesarError`. */
export function encodeCaesarBody(tx: CaesarTx): Uint8Array {
  switch (tx.op) {
    case TRANSFER_OP:
      return encodeTransfer(tx);
    case SUBMIT_PROPOSAL_OP:
    case VOTE_OP:
      return encodeGovTx(tx);
    case HYBRID_OP:
      return encodeHybridTx(tx);
    default:
      return encodeStakingTx(tx);
  }
}
