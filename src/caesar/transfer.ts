import { ADDRESS_BYTES } from './address.js';
import { isAmount } from './amount.js';
import { amountItem, bytesItem, mapItem, textItem } from './cbor.js';
import type { CaesarReader } from './cbor.js';
import { CaesarError, CaesarErrorCode } from './errors.js';

/**
 * The transfer transaction body (docs/caesar.md, "Transfers"), canonical CBOR:
 *
 *   { op: "transfer", to: bstr(32), fee: amount, memo?: bstr(1..256), amount: amount }
 *
 * (keys in canonical order; `amount` as in cbor.ts: an integer below 2^64, a tag-2 bignum up to
 * 2^128 − 1). `op` names the kind of Caesar transaction, so the staking and governance bodies of
 * later issues can join this module without making any transfer ambiguous. `amount` is above
 * zero, `fee` may be zero, and `memo`, when present, is 1 to 256 bytes the ledger stores nowhere
 * (it is in the block): an empty memo is left out, so every transfer has exactly one encoding.
 * The sender, chain id and sequence number are in the signed envelope around the body.
 */
export const TRANSFER_OP = 'transfer';
export const MAX_MEMO_BYTES = 256;

export interface Transfer {
  readonly op: typeof TRANSFER_OP;
  /** The recipient's 32-byte address. */
  readonly to: Uint8Array;
  /** Base units moved to the recipient, in [1, 2^128). */
  readonly amount: bigint;
  /** Base units moved to the fee pool, in [0, 2^128). */
  readonly fee: bigint;
  readonly memo?: Uint8Array;
}

export interface TransferInput {
  readonly to: Uint8Array;
  readonly amount: bigint;
  readonly fee?: bigint;
  readonly memo?: Uint8Array;
}

/** Field names in canonical order. */
export const TRANSFER_FIELDS = ['op', 'to', 'fee', 'memo', 'amount'] as const;

function zeroAmount(): never {
  throw new CaesarError(
    CaesarErrorCode.ZERO_AMOUNT,
    'transfer.amount: a transfer moves at least one base unit',
  );
}

function checkAmount(field: string, value: unknown): bigint {
  if (typeof value !== 'bigint') {
    throw new CaesarError(
      CaesarErrorCode.INVALID_AMOUNT,
      `transfer.${field}: expected a bigint of base units, got ${typeof value}`,
      { field },
    );
  }
  if (value < 0n) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_AMOUNT,
      `transfer.${field}: ${value} is negative; amounts are non-negative integers in base units`,
      { field },
    );
  }
  if (!isAmount(value)) {
    throw new CaesarError(
      CaesarErrorCode.AMOUNT_TOO_LARGE,
      `transfer.${field}: ${value} is 2^128 or more; the limit is 2^128 - 1`,
      { field },
    );
  }
  return value;
}

/**
 * The body of a transfer. Throws `CaesarError` for what the decoder would refuse: an address
 * that is not 32 bytes, a zero, negative or oversized amount, a negative or oversized fee, an
 * empty or oversized memo.
 */
export function encodeTransfer(input: TransferInput): Uint8Array {
  const { to, memo } = input;
  if (!(to instanceof Uint8Array) || to.length !== ADDRESS_BYTES) {
    throw new CaesarError(
      CaesarErrorCode.MALFORMED_BODY,
      `transfer.to: expected a ${ADDRESS_BYTES}-byte address`,
      { field: 'to' },
    );
  }
  const amount = checkAmount('amount', input.amount);
  if (amount === 0n) zeroAmount();
  const fee = checkAmount('fee', input.fee ?? 0n);
  const fields: Record<string, Uint8Array> = {
    op: textItem(TRANSFER_OP),
    to: bytesItem(to),
    fee: amountItem(fee),
    amount: amountItem(amount),
  };
  if (memo !== undefined) {
    if (!(memo instanceof Uint8Array) || memo.length === 0) {
      throw new CaesarError(
        CaesarErrorCode.MALFORMED_BODY,
        'transfer.memo: expected 1 to 256 bytes (leave it out rather than empty)',
        { field: 'memo' },
      );
    }
    if (memo.length > MAX_MEMO_BYTES) {
      throw new CaesarError(
        CaesarErrorCode.MEMO_TOO_LONG,
        `transfer.memo: ${memo.length} bytes, above the limit of ${MAX_MEMO_BYTES}`,
        { field: 'memo', size: memo.length, limit: MAX_MEMO_BYTES },
      );
    }
    fields['memo'] = bytesItem(memo);
  }
  return mapItem(fields);
}

/**
 * Reads the fields after `op` of a transfer body (`reader` positioned after the op's value,
 * `count` the map's length). Throws `CaesarError`.
 */
export function readTransfer(reader: CaesarReader, count: number): Transfer {
  const op = TRANSFER_OP;
  let previous: string = 'op';
  let to: Uint8Array | undefined;
  let fee: bigint | undefined;
  let memo: Uint8Array | undefined;
  let amount: bigint | undefined;
  for (let i = 1; i < count; i++) {
    const key = reader.readKey(TRANSFER_FIELDS, previous);
    previous = key;
    switch (key) {
      case 'to':
        to = reader.readBytes('to', ADDRESS_BYTES, ADDRESS_BYTES);
        break;
      case 'fee':
        fee = reader.readAmount('fee');
        break;
      case 'memo':
        memo = reader.readBytes('memo', 1, MAX_MEMO_BYTES, CaesarErrorCode.MEMO_TOO_LONG);
        break;
      case 'amount':
        amount = reader.readAmount('amount');
        break;
      default:
        reader.malformed(`field ${JSON.stringify(key)} out of place`);
    }
  }
  reader.end();
  if (to === undefined) reader.malformed('missing field "to"');
  if (fee === undefined) reader.malformed('missing field "fee" (write 0 for no fee)');
  if (amount === undefined) reader.malformed('missing field "amount"');
  if (amount === 0n) zeroAmount();
  return memo === undefined ? { op, to, fee, amount } : { op, to, fee, amount, memo };
}
