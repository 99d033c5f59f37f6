import type {
  CheckContext,
  ExecutionContext,
  Module,
  ModuleQueryAnswer,
  ModuleStateReader,
} from '../consensus/application/module.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { ADDRESS_BYTES, ed25519Address } from './address.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import {
  CAESAR_MODULE_NAME,
  FEE_POOL_KEY,
  PARAMS_KEY,
  balanceKey,
  readAmount,
  writeAmount,
} from './state.js';
import { decodeCaesarBody } from './transfer.js';
import type { CaesarTx, Transfer } from './transfer.js';

/** Query paths of the module (`caesar/<path>`). */
export const BALANCE_QUERY = 'balance';
export const FEE_POOL_QUERY = 'fees';
export const PARAMS_QUERY = 'params';

interface Debit {
  readonly from: Uint8Array;
  /** The sender's balance after paying amount + fee. */
  readonly remaining: bigint;
}

/**
 * The stateful rules of a transfer, shared by `check` and `apply`: the recipient is another
 * address, and the sender's balance covers amount + fee.
 */
function authorize(state: ModuleStateReader, tx: Transfer, sender: Uint8Array): Debit {
  const from = ed25519Address(sender);
  if (bytesEqual(from, tx.to)) {
    throw new CaesarError(
      CaesarErrorCode.SELF_TRANSFER,
      "transfer: the recipient is the sender's own address",
      { address: toHex(from) },
    );
  }
  const balance = readAmount(state, balanceKey(from));
  const cost = tx.amount + tx.fee;
  if (balance < cost) {
    throw new CaesarError(
      CaesarErrorCode.INSUFFICIENT_FUNDS,
      `transfer: balance ${balance} is below amount ${tx.amount} + fee ${tx.fee}`,
      {
        address: toHex(from),
        balance: balance.toString(),
        amount: tx.amount.toString(),
        fee: tx.fee.toString(),
      },
    );
  }
  return { from, remaining: balance - cost };
}

function queryAddress(path: string, data: Uint8Array): Uint8Array {
  if (data.length !== ADDRESS_BYTES) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_QUERY,
      `caesar/${path} takes a ${ADDRESS_BYTES}-byte address, got ${data.length} bytes`,
    );
  }
  return data;
}

function noData(path: string, data: Uint8Array): void {
  if (data.length !== 0) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_QUERY,
      `caesar/${path} takes no data, got ${data.length} bytes`,
    );
  }
}

/**
 * The Caesar ledger module: accounts and transfers (docs/caesar.md). A transfer debits the
 * sender by amount + fee, credits the recipient (creating its account) and adds the fee to the
 * fee pool, in one transaction whose writes the router keeps only if it is applied: a refused
 * transfer moves nothing and charges no fee (the sender's sequence number is still used).
 * Queries answer with one key each, which the router returns with a state proof.
 */
export function createCaesarModule(): Module<CaesarTx> {
  return {
    name: CAESAR_MODULE_NAME,
    decodeBody: decodeCaesarBody,
    check(ctx: CheckContext, tx: CaesarTx, sender: Uint8Array): void {
      authorize(ctx.state, tx, sender);
    },
    apply(ctx: ExecutionContext, tx: CaesarTx, sender: Uint8Array): void {
      const { state } = ctx;
      const { from, remaining } = authorize(state, tx, sender);
      writeAmount(state, balanceKey(from), remaining);
      // Read after the debit: the recipient is never the sender (authorize), but reading the
      // written state keeps this correct even if that rule changes.
      const to = balanceKey(tx.to);
      writeAmount(state, to, readAmount(state, to) + tx.amount);
      if (tx.fee > 0n) writeAmount(state, FEE_POOL_KEY, readAmount(state, FEE_POOL_KEY) + tx.fee);
    },
    query(path: string, data: Uint8Array): ModuleQueryAnswer | undefined {
      switch (path) {
        case BALANCE_QUERY:
          return { key: balanceKey(queryAddress(path, data)) };
        case FEE_POOL_QUERY:
          noData(path, data);
          return { key: FEE_POOL_KEY };
        case PARAMS_QUERY:
          noData(path, data);
          return { key: PARAMS_KEY };
        default:
          return undefined;
      }
    },
  };
}
