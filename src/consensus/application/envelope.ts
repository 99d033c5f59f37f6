import type { KeyObject } from 'node:crypto';
import { CanonicalReader } from '../../codec/canonical-reader.js';
import { CborError, CborErrorCode, encodeCanonical } from '../../codec/cbor.js';
import { SchemaError } from '../../codec/schema.js';
import { bytesEqual, concatBytes, toHex } from '../../crypto/bytes.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  ed25519RawPublicKey,
  ed25519Sign,
  ed25519Verify,
} from '../../crypto/ed25519.js';
import { mintStamp, verifyStamp } from '../proof/hashcash.js';
import { sha256, tagPrefix } from '../proof/hashing.js';
import { TransactionError, TransactionErrorCode } from './errors.js';
import type { VerificationCache } from './verification-cache.js';

/**
 * The transaction envelope: what a client signs, stamps and submits, and what a block carries.
 *
 *   transaction = CBOR [version, chainId, sender, sequence, module, body, nonce, signature]
 *   unsigned    = CBOR [version, chainId, sender, sequence, module, body]
 *   txHash      = SHA-256(prefix("hypermesh/tx") || unsigned)
 *   signature   = Ed25519(sender, prefix("hypermesh/tx/signature") || unsigned)
 *   stamp       = hashcash nonce over txHash (../proof/hashcash.ts)
 *
 * CBOR is deterministic (RFC 8949 §4.2.1) and decoding insists on it, so one transaction has
 * one encoding. `prefix(tag)` is the 64-byte BIP-340 tag prefix `SHA-256(tag) || SHA-256(tag)`,
 * so the hashed and the signed messages can never be mistaken for one another or for any other
 * hashed or signed object of the system. The stamp and the signature are left out of `txHash`:
 * the stamp is minted over it, and the transaction's identity must not depend on which of the
 * valid stamps the client found.
 */
export const TRANSACTION_VERSION = 1;
/** Largest module-defined body. */
export const MAX_BODY_BYTES = 32 * 1024;
/** Largest encoded transaction: the body plus the other fields (at most ~230 bytes). */
export const MAX_TRANSACTION_BYTES = MAX_BODY_BYTES + 1024;
/** Module names: lowercase, short, usable as a state key prefix and a metrics label. */
export const MODULE_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
/** Longest chain id, as in the block header. */
export const MAX_CHAIN_ID_LENGTH = 64;

const TX_HASH_PREFIX = tagPrefix('hypermesh/tx');
const SIGNATURE_PREFIX = tagPrefix('hypermesh/tx/signature');

/** A decoded transaction; `txHash` and `size` are derived from the other fields. */
export interface Envelope {
  readonly version: number;
  readonly chainId: string;
  /** Raw Ed25519 public key, 32 bytes. */
  readonly sender: Uint8Array;
  /** Per sender, from 0, each used once and in order. */
  readonly sequence: number;
  readonly module: string;
  readonly body: Uint8Array;
  /** The hashcash stamp nonce over `txHash`. */
  readonly nonce: number;
  readonly signature: Uint8Array;
  readonly txHash: Uint8Array;
  /** Length of the encoded transaction. */
  readonly size: number;
}

export interface TransactionStampRef {
  readonly txHash: Uint8Array;
  readonly nonce: number;
}

export interface VerifyOptions {
  readonly chainId: string;
  readonly stampDifficulty: number;
  /** Remembers verified signatures across calls. */
  readonly cache?: VerificationCache;
}

export interface BuildTransactionInput {
  readonly chainId: string;
  readonly privateKey: KeyObject;
  readonly sequence: number;
  readonly module: string;
  readonly body: Uint8Array;
  readonly stampDifficulty: number;
  /** Where the stamp search starts (default 0); a random start gives unpredictable stamps. */
  readonly startNonce?: number;
}

export interface BuiltTransaction {
  readonly bytes: Uint8Array;
  readonly txHash: Uint8Array;
}

/** The `unsigned` encoding of envelopes that came out of `decodeTransaction`. */
const unsignedOf = new WeakMap<Envelope, Uint8Array>();

function invalid(field: string, message: string, detail: Record<string, unknown> = {}): never {
  throw new TransactionError(
    TransactionErrorCode.INVALID_FIELD,
    `transaction ${field}: ${message}`,
    {
      field,
      ...detail,
    },
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) return `array of ${value.length}`;
  if (typeof value === 'number') return `number ${value}`;
  if (typeof value === 'bigint') return `integer ${value}`;
  if (typeof value === 'string') return `string of length ${value.length}`;
  return typeof value;
}

function checkUint(field: string, value: unknown): number {
  if (typeof value !== 'number' && typeof value !== 'bigint') {
    invalid(field, `expected an unsigned integer, got ${describe(value)}`);
  }
  if (typeof value === 'bigint' || !Number.isSafeInteger(value) || value < 0) {
    invalid(field, `expected an integer in [0, 2^53), got ${describe(value)}`);
  }
  return value;
}

function checkChainId(value: unknown): string {
  if (typeof value !== 'string') invalid('chainId', `expected a string, got ${describe(value)}`);
  if (value.length < 1 || value.length > MAX_CHAIN_ID_LENGTH) {
    invalid('chainId', `expected 1 to ${MAX_CHAIN_ID_LENGTH} characters, got ${value.length}`);
  }
  return value;
}

function checkBytes(field: string, value: unknown, length: number): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    invalid(field, `expected a byte string, got ${describe(value)}`);
  }
  if (value.length !== length) invalid(field, `expected ${length} bytes, got ${value.length}`);
  return value;
}

function checkModule(value: unknown): string {
  if (typeof value !== 'string') invalid('module', `expected a string, got ${describe(value)}`);
  if (!MODULE_NAME_PATTERN.test(value)) {
    invalid('module', `expected a name matching ${MODULE_NAME_PATTERN.source}`, {
      module: value.slice(0, 64),
    });
  }
  return value;
}

function checkBody(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    invalid('body', `expected a byte string, got ${describe(value)}`);
  }
  if (value.length > MAX_BODY_BYTES) {
    throw new TransactionError(
      TransactionErrorCode.TOO_LARGE,
      `transaction body is ${value.length} bytes, above the limit of ${MAX_BODY_BYTES}`,
      { field: 'body', size: value.length, limit: MAX_BODY_BYTES },
    );
  }
  return value;
}

function checkVersion(value: unknown): number {
  if (value !== TRANSACTION_VERSION) {
    throw new TransactionError(
      TransactionErrorCode.UNSUPPORTED_VERSION,
      `transaction version ${describe(value)} is not supported (expected ${TRANSACTION_VERSION})`,
      { version: typeof value === 'number' ? value : null },
    );
  }
  return value;
}

const UNSIGNED_ARRAY_HEAD = 0x86;

function hashUnsigned(unsigned: Uint8Array): Uint8Array {
  return sha256(concatBytes(TX_HASH_PREFIX, unsigned));
}

function signingMessage(unsigned: Uint8Array): Uint8Array {
  return concatBytes(SIGNATURE_PREFIX, unsigned);
}

function encodeUnsigned(
  chainId: string,
  sender: Uint8Array,
  sequence: number,
  module: string,
  body: Uint8Array,
): Uint8Array {
  return encodeCanonical([TRANSACTION_VERSION, chainId, sender, sequence, module, body]);
}

/**
 * A plain Uint8Array copy: the envelope must not share memory with the caller's bytes (which
 * may be a Buffer, whose `slice` is a view) nor be a Buffer (whose methods differ).
 */
function plainCopy(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Turns a reader error at `field` into the transaction error it means. */
function readError(error: unknown, field: string, size: number): TransactionError {
  if (error instanceof TransactionError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof CborError) {
    return new TransactionError(
      error.code === CborErrorCode.NOT_CANONICAL
        ? TransactionErrorCode.NOT_CANONICAL
        : TransactionErrorCode.MALFORMED,
      `transaction: ${message}`,
      { field, size },
      { cause: error },
    );
  }
  if (error instanceof SchemaError && field === 'fields') {
    return new TransactionError(
      TransactionErrorCode.MALFORMED,
      `a transaction is a CBOR array of 8 fields: ${message}`,
      { size },
      { cause: error },
    );
  }
  if (error instanceof SchemaError && field === 'version') {
    return new TransactionError(
      TransactionErrorCode.UNSUPPORTED_VERSION,
      `transaction version is not ${TRANSACTION_VERSION}: ${message}`,
      { size },
      { cause: error },
    );
  }
  return new TransactionError(
    TransactionErrorCode.INVALID_FIELD,
    `transaction ${field}: ${message}`,
    { field, size },
    { cause: error },
  );
}

/**
 * Decodes and schema-checks a transaction. Throws `TransactionError` (and nothing else) for any
 * input: `TOO_LARGE`, `MALFORMED`, `NOT_CANONICAL`, `UNSUPPORTED_VERSION` or `INVALID_FIELD`.
 * Checks the form only; `verifyTransaction` checks chain, stamp and signature.
 *
 * The reader accepts only the deterministic encoding and reads the fields in place, without
 * building a generic CBOR value and re-encoding it to prove it canonical.
 */
export function decodeTransaction(bytes: Uint8Array): Envelope {
  if (!(bytes instanceof Uint8Array)) {
    throw new TransactionError(
      TransactionErrorCode.MALFORMED,
      `a transaction must be a byte string, got ${describe(bytes)}`,
    );
  }
  if (bytes.length > MAX_TRANSACTION_BYTES) {
    throw new TransactionError(
      TransactionErrorCode.TOO_LARGE,
      `transaction is ${bytes.length} bytes, above the limit of ${MAX_TRANSACTION_BYTES}`,
      { size: bytes.length, limit: MAX_TRANSACTION_BYTES },
    );
  }
  let field = 'fields';
  try {
    const reader = new CanonicalReader(bytes);
    const count = reader.readArrayLength('transaction', 255);
    field = 'version';
    checkVersion(reader.readUint('transaction.version'));
    if (count !== 8) {
      throw new TransactionError(
        TransactionErrorCode.MALFORMED,
        `a version ${TRANSACTION_VERSION} transaction has 8 fields, got ${count}`,
        { fields: count },
      );
    }
    field = 'chainId';
    const chainId = checkChainId(reader.readText('transaction.chainId', 4 * MAX_CHAIN_ID_LENGTH));
    field = 'sender';
    const sender = plainCopy(reader.readBytes('transaction.sender', 32, 32));
    field = 'sequence';
    const sequence = reader.readUint('transaction.sequence');
    field = 'module';
    const module = checkModule(reader.readText('transaction.module', 64));
    field = 'body';
    const body = plainCopy(
      checkBody(reader.readBytes('transaction.body', 0, MAX_TRANSACTION_BYTES)),
    );
    // The fields so far, re-headed as a 6-item array, are exactly `unsigned`: every item is
    // already in canonical form, and the 8-item head is one byte.
    const unsignedEnd = bytes.length - reader.remaining;
    field = 'nonce';
    const nonce = reader.readUint('transaction.nonce');
    field = 'signature';
    const signature = plainCopy(reader.readBytes('transaction.signature', 64, 64));
    field = 'end';
    reader.end('transaction');
    const unsigned = new Uint8Array(unsignedEnd);
    unsigned[0] = UNSIGNED_ARRAY_HEAD;
    unsigned.set(bytes.subarray(1, unsignedEnd), 1);
    const envelope: Envelope = Object.freeze({
      version: TRANSACTION_VERSION,
      chainId,
      sender,
      sequence,
      module,
      body,
      nonce,
      signature,
      txHash: hashUnsigned(unsigned),
      size: bytes.length,
    });
    unsignedOf.set(envelope, unsigned);
    return envelope;
  } catch (error) {
    throw readError(error, field, bytes.length);
  }
}

/**
 * The unsigned encoding of an envelope: remembered for decoded ones; recomputed and checked
 * against the claimed txHash for envelopes built by hand.
 */
function unsignedEncoding(envelope: Envelope): Uint8Array {
  const known = unsignedOf.get(envelope);
  if (known !== undefined) return known;
  checkVersion(envelope.version);
  const unsigned = encodeUnsigned(
    checkChainId(envelope.chainId),
    checkBytes('sender', envelope.sender, ED25519_PUBLIC_KEY_BYTES),
    checkUint('sequence', envelope.sequence),
    checkModule(envelope.module),
    checkBody(envelope.body),
  );
  checkUint('nonce', envelope.nonce);
  checkBytes('signature', envelope.signature, ED25519_SIGNATURE_BYTES);
  if (
    !(envelope.txHash instanceof Uint8Array) ||
    !bytesEqual(hashUnsigned(unsigned), envelope.txHash)
  ) {
    invalid('txHash', 'does not match the hash of the transaction fields');
  }
  return unsigned;
}

/**
 * Checks the chain id, the stamp and the signature, cheapest first. Throws `TransactionError`
 * `WRONG_CHAIN`, `INSUFFICIENT_STAMP` or `BAD_SIGNATURE` (or `INVALID_FIELD` for a hand-built
 * envelope whose fields are malformed).
 */
export function verifyTransaction(envelope: Envelope, options: VerifyOptions): void {
  const unsigned = unsignedEncoding(envelope);
  const { chainId, stampDifficulty, cache } = options;
  if (envelope.chainId !== chainId) {
    throw new TransactionError(
      TransactionErrorCode.WRONG_CHAIN,
      `transaction is for chain "${envelope.chainId}", this is "${chainId}"`,
      { chainId: envelope.chainId, expected: chainId },
    );
  }
  if (!verifyStamp(envelope.txHash, envelope.nonce, stampDifficulty)) {
    throw new TransactionError(
      TransactionErrorCode.INSUFFICIENT_STAMP,
      `transaction stamp has fewer than ${stampDifficulty} leading zero bits`,
      { txHash: toHex(envelope.txHash), difficulty: stampDifficulty },
    );
  }
  if (cache?.wasVerified(envelope.txHash, envelope.signature) === true) return;
  const valid = ed25519Verify(envelope.signature, signingMessage(unsigned), envelope.sender);
  if (!valid) {
    throw new TransactionError(
      TransactionErrorCode.BAD_SIGNATURE,
      "transaction signature does not verify under the sender's key",
      { sender: toHex(envelope.sender), txHash: toHex(envelope.txHash) },
    );
  }
  cache?.markVerified(envelope.txHash, envelope.signature);
}

/**
 * Builds, stamps and signs a transaction. The private key's public half is the sender. Throws
 * `TransactionError INVALID_FIELD`/`TOO_LARGE` for bad fields and `ProofError` for a stamp
 * difficulty out of range.
 */
export function buildTransaction(input: BuildTransactionInput): BuiltTransaction {
  const chainId = checkChainId(input.chainId);
  const sequence = checkUint('sequence', input.sequence);
  const module = checkModule(input.module);
  const body = checkBody(input.body);
  const sender = ed25519RawPublicKey(input.privateKey);
  const unsigned = encodeUnsigned(chainId, sender, sequence, module, body);
  const txHash = hashUnsigned(unsigned);
  const nonce = mintStamp(txHash, input.stampDifficulty, input.startNonce ?? 0);
  const signature = ed25519Sign(signingMessage(unsigned), input.privateKey);
  const bytes = encodeCanonical([
    TRANSACTION_VERSION,
    chainId,
    sender,
    sequence,
    module,
    body,
    nonce,
    signature,
  ]);
  return { bytes, txHash };
}

/** The stamp of an encoded transaction, or undefined if the bytes are not a transaction. */
export function stampOf(bytes: Uint8Array): TransactionStampRef | undefined {
  try {
    const { txHash, nonce } = decodeTransaction(bytes);
    return { txHash, nonce };
  } catch (error) {
    if (error instanceof TransactionError) return undefined;
    throw error;
  }
}

/** The sender as lowercase hex (the mempool's per-sender key). */
export function txSender(envelope: Envelope): string {
  return toHex(envelope.sender);
}
