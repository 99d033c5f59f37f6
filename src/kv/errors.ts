import { HyperMeshError } from '../codec/error.js';
import { ModuleError } from '../consensus/application/errors.js';

/** Why the KV module refuses a transaction or a query. */
export enum KvErrorCode {
  /** The body is not a canonical CBOR `set` or `delete` of the right shape. */
  MALFORMED_BODY = 'KV_MALFORMED_BODY',
  KEY_TOO_LONG = 'KV_KEY_TOO_LONG',
  VALUE_TOO_LARGE = 'KV_VALUE_TOO_LARGE',
  /** The key exists and another sender created it. */
  NOT_OWNER = 'KV_NOT_OWNER',
  /** `delete` of a key that does not exist. */
  NOT_FOUND = 'KV_NOT_FOUND',
  /** Query data that is not a valid key. */
  INVALID_QUERY = 'KV_INVALID_QUERY',
}

/** The `TxResult.code` recorded for each refusal (0 is "applied"). */
export const KV_RESULT_CODES: Readonly<Record<KvErrorCode, number>> = Object.freeze({
  [KvErrorCode.MALFORMED_BODY]: 1,
  [KvErrorCode.KEY_TOO_LONG]: 2,
  [KvErrorCode.VALUE_TOO_LARGE]: 3,
  [KvErrorCode.NOT_OWNER]: 4,
  [KvErrorCode.NOT_FOUND]: 5,
  [KvErrorCode.INVALID_QUERY]: 6,
});

export class KvError extends ModuleError<KvErrorCode> {
  constructor(code: KvErrorCode, message: string, detail: Record<string, unknown> = {}) {
    super(code, KV_RESULT_CODES[code], message, detail);
  }
}

/** A stored entry that does not decode: the store is damaged (never a client's doing). */
export class KvStateError extends HyperMeshError<'KV_CORRUPT_ENTRY'> {}
