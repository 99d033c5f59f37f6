import { toHex } from '../../crypto/bytes.js';
import { ApplicationError, ApplicationErrorCode } from './errors.js';

/**
 * The router's own state: each sender's next sequence number at `acct/<sender hex>/seq`, as an
 * 8-byte big-endian unsigned integer (read and written for every transaction, so no CBOR). A
 * sender that never had a transaction executed has no key (next sequence 0). Modules cannot
 * reach these keys: their keys all start with `<name>/`, and `acct` is not an allowed module
 * name.
 *
 * A transaction whose module names a sequence account of its own (`Module.sequenceAccount`,
 * e.g. a Caesar hybrid account) uses the next sequence at `acct/<module>/<account hex>/seq`
 * instead. Those keys have four segments where a sender's have three, so no sender key (whatever
 * bytes it claims) reaches a module's account, and the module name keeps two modules' accounts
 * apart.
 */
export const ACCOUNT_PREFIX = 'acct';
const SEQUENCE_BYTES = 8;
/** The most bytes a module's sequence account may have. */
export const MAX_SEQUENCE_ACCOUNT_BYTES = 64;

const encoder = new TextEncoder();

export function sequenceKey(sender: Uint8Array): Uint8Array {
  return encoder.encode(`${ACCOUNT_PREFIX}/${toHex(sender)}/seq`);
}

/** Where the next sequence of module `module`'s sequence account `account` is kept. */
export function accountSequenceKey(module: string, account: Uint8Array): Uint8Array {
  return encoder.encode(`${ACCOUNT_PREFIX}/${module}/${toHex(account)}/seq`);
}

/**
 * How the mempool names a sequence owner (`TxAcceptance.sender`): the sender key in hex, or
 * `<module>:<account hex>` for a module's sequence account.
 */
export function sequenceOwner(
  owner: Uint8Array | { readonly module: string; readonly account: Uint8Array },
): string {
  return owner instanceof Uint8Array ? toHex(owner) : `${owner.module}:${toHex(owner.account)}`;
}

export function encodeSequence(next: number): Uint8Array {
  const value = new Uint8Array(SEQUENCE_BYTES);
  const view = new DataView(value.buffer);
  view.setUint32(0, Math.floor(next / 2 ** 32));
  view.setUint32(4, next >>> 0);
  return value;
}

/**
 * The next sequence stored at `sequenceKey` (null: 0). A value of another form is a damaged
 * store, not client input: `ApplicationError INTERNAL`.
 */
export function decodeSequence(value: Uint8Array | null): number {
  if (value === null) return 0;
  if (value.length !== SEQUENCE_BYTES) {
    throw new ApplicationError(
      ApplicationErrorCode.INTERNAL,
      `a stored sequence number is ${value.length} bytes, not ${SEQUENCE_BYTES}`,
    );
  }
  const view = new DataView(value.buffer, value.byteOffset, SEQUENCE_BYTES);
  const high = view.getUint32(0);
  if (high >= 2 ** 21) {
    throw new ApplicationError(
      ApplicationErrorCode.INTERNAL,
      'a stored sequence number exceeds 2^53 - 1',
    );
  }
  return high * 2 ** 32 + view.getUint32(4);
}
