import { STORAGE_ROOT_BYTES, VALIDATOR_ADDRESS_BYTES } from '../consensus/validator-set.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../crypto/falcon.js';
import { isAmount } from './amount.js';
import { amountItem, bytesItem, mapItem, textItem, uintItem } from './cbor.js';
import type { CaesarReader } from './cbor.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import { BASIS_POINTS } from './staking-params.js';

/**
 * The staking transaction bodies (docs/caesar.md, "Staking transactions"), canonical CBOR maps
 * like the transfer (transfer.ts), each with an `op` and a `fee` (paid to the fee pool; 0 for
 * none):
 *
 *   { op: "create-validator", fee, bond: amount, pqKey: bstr(1793), commission: uint,
 *     storageRoot: bstr(32) }
 *   { op: "delegate", fee, amount: amount, validator: bstr(20) }
 *   { op: "unbond",   fee, amount: amount, validator: bstr(20) }
 *   { op: "unjail",   fee }
 *   { op: "edit-validator", fee, commission: uint }
 *
 * The validator's Ed25519 consensus key is the envelope's sender: the transaction's signature
 * proves that its creator holds the key, and the operator account (which pays the self-bond,
 * receives the commission, may unjail and may change the commission) is that key's address. `validator` is the 20-byte
 * consensus address (SHA-256 of the key, truncated, as blocks and commits name validators).
 */
export const CREATE_VALIDATOR_OP = 'create-validator';
export const DELEGATE_OP = 'delegate';
export const UNBOND_OP = 'unbond';
export const UNJAIL_OP = 'unjail';
export const EDIT_VALIDATOR_OP = 'edit-validator';

export interface CreateValidator {
  readonly op: typeof CREATE_VALIDATOR_OP;
  readonly fee: bigint;
  /** The operator's self-bond, base units, at least 1. */
  readonly bond: bigint;
  /** FALCON-1024 public key (1,793 bytes) for post-quantum precommits. */
  readonly pqKey: Uint8Array;
  /** Commission on the validator's rewards, basis points (0 to 10,000). */
  readonly commission: number;
  /** Root of the validator's PoSpace storage plot (32 bytes). */
  readonly storageRoot: Uint8Array;
}

export interface Delegate {
  readonly op: typeof DELEGATE_OP;
  readonly fee: bigint;
  readonly amount: bigint;
  readonly validator: Uint8Array;
}

export interface Unbond {
  readonly op: typeof UNBOND_OP;
  readonly fee: bigint;
  /** Base units of the delegation's worth to unbond. */
  readonly amount: bigint;
  readonly validator: Uint8Array;
}

export interface Unjail {
  readonly op: typeof UNJAIL_OP;
  readonly fee: bigint;
}

/** A validator changes its commission (the sender is its consensus key, as for `unjail`). */
export interface EditValidator {
  readonly op: typeof EDIT_VALIDATOR_OP;
  readonly fee: bigint;
  /** The new commission, basis points (0 to 10,000). */
  readonly commission: number;
}

export type StakingTx = CreateValidator | Delegate | Unbond | Unjail | EditValidator;

export const STAKING_FIELDS = {
  [CREATE_VALIDATOR_OP]: ['op', 'fee', 'bond', 'pqKey', 'commission', 'storageRoot'],
  [DELEGATE_OP]: ['op', 'fee', 'amount', 'validator'],
  [UNBOND_OP]: ['op', 'fee', 'amount', 'validator'],
  [UNJAIL_OP]: ['op', 'fee'],
  [EDIT_VALIDATOR_OP]: ['op', 'fee', 'commission'],
} as const;

function amountOf(op: string, field: string, value: unknown, positive: boolean): bigint {
  if (typeof value !== 'bigint') {
    throw new CaesarError(
      CaesarErrorCode.INVALID_AMOUNT,
      `${op}.${field}: expected a bigint of base units, got ${typeof value}`,
      { field },
    );
  }
  if (value < 0n) {
    throw new CaesarError(CaesarErrorCode.INVALID_AMOUNT, `${op}.${field}: ${value} is negative`, {
      field,
    });
  }
  if (!isAmount(value)) {
    throw new CaesarError(
      CaesarErrorCode.AMOUNT_TOO_LARGE,
      `${op}.${field}: ${value} is 2^128 or more; the limit is 2^128 - 1`,
      { field },
    );
  }
  if (positive && value === 0n) zero(op, field);
  return value;
}

function zero(op: string, field: string): never {
  throw new CaesarError(
    CaesarErrorCode.ZERO_AMOUNT,
    `${op}.${field}: must be at least one base unit`,
    { field },
  );
}

function bytesOf(op: string, field: string, value: unknown, length: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new CaesarError(
      CaesarErrorCode.MALFORMED_BODY,
      `${op}.${field}: expected ${length} bytes`,
      { field },
    );
  }
  return value;
}

function commissionOf(op: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > BASIS_POINTS) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_COMMISSION,
      `${op}.commission: expected basis points from 0 to ${BASIS_POINTS}, got ${String(value)}`,
      { field: 'commission' },
    );
  }
  return value as number;
}

/** The body of a staking transaction. Throws `CaesarError` for what the decoder refuses. */
export function encodeStakingTx(tx: StakingTx): Uint8Array {
  const { op } = tx;
  const fee = amountOf(op, 'fee', tx.fee, false);
  switch (op) {
    case CREATE_VALIDATOR_OP:
      return mapItem({
        op: textItem(op),
        fee: amountItem(fee),
        bond: amountItem(amountOf(op, 'bond', tx.bond, true)),
        pqKey: bytesItem(bytesOf(op, 'pqKey', tx.pqKey, FALCON1024_PUBLIC_KEY_BYTES)),
        commission: uintItem(commissionOf(op, tx.commission)),
        storageRoot: bytesItem(bytesOf(op, 'storageRoot', tx.storageRoot, STORAGE_ROOT_BYTES)),
      });
    case DELEGATE_OP:
    case UNBOND_OP:
      return mapItem({
        op: textItem(op),
        fee: amountItem(fee),
        amount: amountItem(amountOf(op, 'amount', tx.amount, true)),
        validator: bytesItem(bytesOf(op, 'validator', tx.validator, VALIDATOR_ADDRESS_BYTES)),
      });
    case UNJAIL_OP:
      return mapItem({ op: textItem(op), fee: amountItem(fee) });
    case EDIT_VALIDATOR_OP:
      return mapItem({
        op: textItem(op),
        fee: amountItem(fee),
        commission: uintItem(commissionOf(op, tx.commission)),
      });
    default:
      throw new CaesarError(
        CaesarErrorCode.MALFORMED_BODY,
        `unknown staking op ${JSON.stringify(String(op))}`,
      );
  }
}

/**
 * Reads the fields after `op` of a staking body (`reader` positioned after the op's value,
 * `count` the map's length). Throws `CaesarError`.
 */
export function readStakingTx(reader: CaesarReader, op: StakingTx['op'], count: number): StakingTx {
  const known = STAKING_FIELDS[op];
  const read: Record<string, unknown> = {};
  let previous = 'op';
  for (let i = 1; i < count; i++) {
    const key = reader.readKey(known, previous);
    previous = key;
    switch (key) {
      case 'fee':
      case 'bond':
      case 'amount':
        read[key] = reader.readAmount(key);
        break;
      case 'pqKey':
        read[key] = reader.readBytes(key, FALCON1024_PUBLIC_KEY_BYTES, FALCON1024_PUBLIC_KEY_BYTES);
        break;
      case 'storageRoot':
        read[key] = reader.readBytes(key, STORAGE_ROOT_BYTES, STORAGE_ROOT_BYTES);
        break;
      case 'validator':
        read[key] = reader.readBytes(key, VALIDATOR_ADDRESS_BYTES, VALIDATOR_ADDRESS_BYTES);
        break;
      case 'commission':
        read[key] = reader.readSmallUint(key, Number.MAX_SAFE_INTEGER);
        break;
      default:
        reader.malformed(`field ${JSON.stringify(key)} out of place`);
    }
  }
  reader.end();
  for (const field of known) {
    if (field !== 'op' && read[field] === undefined) {
      reader.malformed(
        `missing field ${JSON.stringify(field)}${field === 'fee' ? ' (write 0 for no fee)' : ''}`,
      );
    }
  }
  const fee = read['fee'] as bigint;
  switch (op) {
    case CREATE_VALIDATOR_OP: {
      const bond = read['bond'] as bigint;
      if (bond === 0n) zero(op, 'bond');
      return {
        op,
        fee,
        bond,
        pqKey: read['pqKey'] as Uint8Array,
        commission: commissionOf(op, read['commission']),
        storageRoot: read['storageRoot'] as Uint8Array,
      };
    }
    case DELEGATE_OP:
    case UNBOND_OP: {
      const amount = read['amount'] as bigint;
      if (amount === 0n) zero(op, 'amount');
      return { op, fee, amount, validator: read['validator'] as Uint8Array };
    }
    case UNJAIL_OP:
      return { op, fee };
    case EDIT_VALIDATOR_OP:
      return { op, fee, commission: commissionOf(op, read['commission']) };
  }
}
