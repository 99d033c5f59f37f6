import { encodeCanonical } from '../codec/cbor.js';
import { TRANSACTION_VERSION } from '../consensus/application/envelope.js';
import { tagPrefix } from '../consensus/proof/hashing.js';
import { bytesEqual, concatBytes } from '../crypto/bytes.js';
import {
  FALCON1024_MAX_SIGNATURE_BYTES,
  FALCON1024_MIN_SIGNATURE_BYTES,
  FALCON1024_PUBLIC_KEY_BYTES,
  FALCON1024_PUBLIC_KEY_HEADER,
} from '../crypto/falcon.js';
import type { FalconBackend, FalconKeyPair } from '../crypto/falcon.js';
import { sha256 } from '../crypto/hash.js';
import { ED25519_PUBLIC_KEY_BYTES, hybridAddress } from './address.js';
import { bytesItem, mapItem, textItem, uintItem } from './cbor.js';
import type { CaesarReader } from './cbor.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import { SUBMIT_PROPOSAL_OP, VOTE_OP } from './gov-tx.js';
import type { SubmitProposal, Vote } from './gov-tx.js';
import {
  CREATE_VALIDATOR_OP,
  DELEGATE_OP,
  EDIT_VALIDATOR_OP,
  UNBOND_OP,
  UNJAIL_OP,
} from './staking-tx.js';
import type { Delegate, Unbond } from './staking-tx.js';
import { CAESAR_MODULE_NAME } from './state.js';
import { TRANSFER_OP } from './transfer.js';
import type { Transfer } from './transfer.js';

/**
 * Transactions from hybrid (Ed25519 + FALCON-1024) accounts (docs/caesar.md, "Hybrid
 * accounts"). The envelope's sender is the account's Ed25519 key and its Ed25519 signature is
 * checked by the router as for any transaction; the body wraps the transfer with the FALCON
 * half, canonical CBOR:
 *
 *   { op: "hybrid", tx: bstr, seq: uint, pqKey: bstr(1793), pqSig: bstr(42..1462) }
 *
 * `tx` is the canonical body of the wrapped transaction (`HYBRID_INNER_OPS`: a transfer, a
 * delegation, an unbond, a proposal or a vote, executed with the hybrid address as the account
 * that pays, delegates, proposes or votes), `seq` the envelope's sequence number, `pqKey` the
 * FALCON-1024 public key and `pqSig` a detached FALCON-1024 (Round 3) signature over
 *
 *   prefix("hypermesh/caesar/hybrid-signature/v2") ||
 *     CBOR [version, chainId, sender, seq, "caesar", { op, tx, seq, pqKey }]
 *
 * that is, the envelope's own `unsigned` encoding of this transaction with `pqSig` left out of
 * the body, under its own tag (`HYBRID_SIGNATURE_TAG`) (`prefix` as in the envelope: BIP-340's doubled tag hash). The
 * Ed25519 signature covers the whole envelope, FALCON signature included, so both signatures
 * cover the chain id, sender, sequence, FALCON key and wrapped body, and both must verify:
 * the account's address is `hybridAddress(sender, pqKey)`, never `SHA-256(sender)`, so no
 * Ed25519-only transaction can spend, delegate, unbond or vote for it.
 *
 * `create-validator`, `unjail` and `edit-validator` stay Ed25519-only: the envelope's sender is
 * the validator's consensus key and its operator account is that key's address, so wrapped they are refused
 * (`HYBRID_VALIDATOR_OP`).
 *
 * A module does not see the envelope's sequence, so the body repeats it, and `checkHybridTx`
 * proves it is the envelope's by recomputing the transaction hash (which covers the sequence)
 * from the body and comparing it with the router's `txHash`. Without that binding, whoever
 * broke the Ed25519 key could replay an old FALCON-signed body under a new sequence.
 *
 * The sequence is the hybrid account's own: the module's `sequenceAccount` hook verifies the
 * FALCON half when the router admits the bytes and names the hybrid address, whose next sequence
 * the router keeps apart from the Ed25519 key's (docs/application.md, "Sequence accounts"). So
 * whoever holds only the Ed25519 key cannot use up, skip or refuse the hybrid account's
 * sequence numbers, with plain envelopes or with hybrid bodies under another FALCON key. The
 * tag's `/v2` marks that rule: a signature made when hybrid transactions shared the Ed25519
 * key's sequence (tag without `/v2`) does not verify, so none can be replayed into the new
 * sequence numbers.
 */
export const HYBRID_OP = 'hybrid';
/** Field names in canonical order. */
export const HYBRID_FIELDS = ['op', 'tx', 'seq', 'pqKey', 'pqSig'] as const;

/** The FALCON signature's domain tag; `/v2`: signed for the hybrid account's own sequence. */
export const HYBRID_SIGNATURE_TAG = 'hypermesh/caesar/hybrid-signature/v2';
const HYBRID_SIGNATURE_PREFIX = tagPrefix(HYBRID_SIGNATURE_TAG);
/** The envelope's transaction hash prefix (src/consensus/application/envelope.ts). */
const TX_HASH_PREFIX = tagPrefix('hypermesh/tx');

/** The transactions a hybrid account may send, by `op`. */
export const HYBRID_INNER_OPS: readonly string[] = [
  TRANSFER_OP,
  DELEGATE_OP,
  UNBOND_OP,
  SUBMIT_PROPOSAL_OP,
  VOTE_OP,
];

/** A transaction a hybrid body may wrap. */
export type HybridInnerTx = Transfer | Delegate | Unbond | SubmitProposal | Vote;

/**
 * The most bytes `tx` may have: room for the largest body of any op (a `create-validator`,
 * about 1.9 KB with its FALCON key, so that one is refused by name, `HYBRID_VALIDATOR_OP`);
 * the largest body a hybrid account may send, a proposal, is below 700 bytes.
 */
export const HYBRID_MAX_INNER_BYTES = 2048;

/** The staking transactions that act for a validator's consensus key: never wrapped. */
const VALIDATOR_KEY_OPS: readonly string[] = [CREATE_VALIDATOR_OP, UNJAIL_OP, EDIT_VALIDATOR_OP];

export interface HybridTx {
  readonly op: typeof HYBRID_OP;
  /** The wrapped transaction, decoded. */
  readonly inner: HybridInnerTx;
  /** The wrapped transaction's canonical body. */
  readonly tx: Uint8Array;
  readonly seq: number;
  /** FALCON-1024 public key, 1,793 bytes. */
  readonly pqKey: Uint8Array;
  /** Detached FALCON-1024 signature. */
  readonly pqSig: Uint8Array;
}

function unsignedBody(tx: Uint8Array, seq: number, pqKey: Uint8Array): Record<string, Uint8Array> {
  return {
    op: textItem(HYBRID_OP),
    tx: bytesItem(tx),
    seq: uintItem(seq),
    pqKey: bytesItem(pqKey),
  };
}

function envelopeUnsigned(
  chainId: string,
  sender: Uint8Array,
  sequence: number,
  body: Uint8Array,
): Uint8Array {
  return encodeCanonical([
    TRANSACTION_VERSION,
    chainId,
    sender,
    sequence,
    CAESAR_MODULE_NAME,
    body,
  ]);
}

/**
 * The bytes the FALCON key signs (see the module comment). `seq` is the hybrid account's
 * sequence number (the envelope's), not the Ed25519 key's.
 */
export function hybridSigningMessage(
  chainId: string,
  sender: Uint8Array,
  tx: Pick<HybridTx, 'tx' | 'seq' | 'pqKey'>,
): Uint8Array {
  const body = mapItem(unsignedBody(tx.tx, tx.seq, tx.pqKey));
  return concatBytes(HYBRID_SIGNATURE_PREFIX, envelopeUnsigned(chainId, sender, tx.seq, body));
}

/** The hybrid body's canonical encoding. */
export function encodeHybridTx(tx: Pick<HybridTx, 'tx' | 'seq' | 'pqKey' | 'pqSig'>): Uint8Array {
  return mapItem({ ...unsignedBody(tx.tx, tx.seq, tx.pqKey), pqSig: bytesItem(tx.pqSig) });
}

export interface HybridTxSignInput {
  readonly chainId: string;
  /** The account's raw Ed25519 public key: the envelope's sender. */
  readonly sender: Uint8Array;
  /** The envelope's sequence number. */
  readonly sequence: number;
  /**
   * The canonical body of the transaction to wrap (`encodeTransfer`, `encodeStakingTx` of a
   * delegate or unbond, `encodeGovTx`); the chain refuses other ops.
   */
  readonly body: Uint8Array;
  readonly falcon: FalconKeyPair;
  readonly backend: FalconBackend;
}

export interface HybridSignInput extends Omit<HybridTxSignInput, 'body'> {
  /** The canonical body of the transfer to wrap (`encodeTransfer`). */
  readonly transfer: Uint8Array;
}

/**
 * The body of a hybrid account's transaction, FALCON-signed; the caller puts it in an envelope
 * with the same chain id, sender and sequence, signed with the Ed25519 key.
 */
export async function signHybridTx(input: HybridTxSignInput): Promise<Uint8Array> {
  const { chainId, sender, sequence, body, falcon, backend } = input;
  if (sender.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new RangeError(`an Ed25519 public key is ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  }
  const unsigned = { tx: body, seq: sequence, pqKey: falcon.publicKey };
  const pqSig = await backend.sign(
    hybridSigningMessage(chainId, sender, unsigned),
    falcon.secretKey,
  );
  return encodeHybridTx({ ...unsigned, pqSig });
}

/** `signHybridTx` for a transfer (the body of `wallet send` from a hybrid wallet). */
export function signHybridTransfer(input: HybridSignInput): Promise<Uint8Array> {
  const { transfer, ...rest } = input;
  return signHybridTx({ ...rest, body: transfer });
}

/**
 * Reads the fields after `op` of a hybrid body; `decodeInner` decodes the wrapped body (any
 * Caesar body, or the call throws). Throws `CaesarError`: `HYBRID_SIGNATURE_MISSING` without
 * `pqSig`, `HYBRID_INVALID_KEY` for a key that is not a FALCON-1024 public key,
 * `HYBRID_BAD_SIGNATURE` for a signature of impossible length, `HYBRID_VALIDATOR_OP` for a
 * wrapped `create-validator`, `unjail` or `edit-validator`, `HYBRID_UNSUPPORTED_OP` for any other op not in
 * `HYBRID_INNER_OPS`, the wrapped body's own codes for a bad one.
 */
export function readHybridTx(
  reader: CaesarReader,
  count: number,
  decodeInner: (body: Uint8Array) => { readonly op: string },
): HybridTx {
  let previous = 'op';
  let tx: Uint8Array | undefined;
  let seq: number | undefined;
  let pqKey: Uint8Array | undefined;
  let pqSig: Uint8Array | undefined;
  for (let i = 1; i < count; i++) {
    const key = reader.readKey(HYBRID_FIELDS, previous);
    previous = key;
    switch (key) {
      case 'tx':
        tx = reader.readBytes('tx', 1, HYBRID_MAX_INNER_BYTES);
        break;
      case 'seq':
        seq = reader.readSmallUint('seq', Number.MAX_SAFE_INTEGER);
        break;
      case 'pqKey':
        pqKey = reader.readBytes('pqKey', 0, FALCON1024_PUBLIC_KEY_BYTES + 1);
        break;
      case 'pqSig':
        pqSig = reader.readBytes('pqSig', 0, FALCON1024_MAX_SIGNATURE_BYTES + 1);
        break;
      default:
        reader.malformed(`field ${JSON.stringify(key)} out of place`);
    }
  }
  reader.end();
  if (tx === undefined) reader.malformed('missing field "tx"');
  if (seq === undefined) reader.malformed('missing field "seq"');
  if (pqKey === undefined) reader.malformed('missing field "pqKey"');
  if (pqKey.length !== FALCON1024_PUBLIC_KEY_BYTES || pqKey[0] !== FALCON1024_PUBLIC_KEY_HEADER) {
    throw new CaesarError(
      CaesarErrorCode.HYBRID_INVALID_KEY,
      `hybrid.pqKey: expected a ${FALCON1024_PUBLIC_KEY_BYTES}-byte FALCON-1024 public key (header 0x0a), got ${pqKey.length} bytes`,
      { field: 'pqKey', size: pqKey.length },
    );
  }
  if (pqSig === undefined) {
    throw new CaesarError(
      CaesarErrorCode.HYBRID_SIGNATURE_MISSING,
      'hybrid: no FALCON signature (pqSig); a hybrid account spends only with both signatures',
      { field: 'pqSig' },
    );
  }
  if (
    pqSig.length < FALCON1024_MIN_SIGNATURE_BYTES ||
    pqSig.length > FALCON1024_MAX_SIGNATURE_BYTES
  ) {
    throw new CaesarError(
      CaesarErrorCode.HYBRID_BAD_SIGNATURE,
      `hybrid.pqSig: ${pqSig.length} bytes; a FALCON-1024 signature is ${FALCON1024_MIN_SIGNATURE_BYTES} to ${FALCON1024_MAX_SIGNATURE_BYTES}`,
      { field: 'pqSig', size: pqSig.length },
    );
  }
  const inner = decodeInner(tx);
  if (VALIDATOR_KEY_OPS.includes(inner.op)) {
    throw new CaesarError(
      CaesarErrorCode.HYBRID_VALIDATOR_OP,
      `hybrid: "${inner.op}" acts for a validator's Ed25519 consensus key; send it from that key, not wrapped in a hybrid body`,
      { op: inner.op },
    );
  }
  if (!HYBRID_INNER_OPS.includes(inner.op)) {
    throw new CaesarError(
      CaesarErrorCode.HYBRID_UNSUPPORTED_OP,
      `hybrid: a hybrid body wraps ${HYBRID_INNER_OPS.map((op) => `"${op}"`).join(', ')}, not "${inner.op}"`,
      { op: inner.op },
    );
  }
  return { op: HYBRID_OP, inner: inner as HybridInnerTx, tx, seq, pqKey, pqSig };
}

export interface HybridCheckContext {
  readonly chainId: string;
  readonly txHash: Uint8Array;
}

/**
 * Checks the FALCON half of a hybrid transaction from `sender` and returns the account's
 * address. Throws `CaesarError HYBRID_SEQUENCE_MISMATCH` when `seq` is not the envelope's
 * sequence (the recomputed transaction hash differs from `ctx.txHash`) and
 * `HYBRID_BAD_SIGNATURE` when the FALCON signature does not verify.
 */
export function checkHybridTx(
  ctx: HybridCheckContext,
  tx: HybridTx,
  sender: Uint8Array,
  falcon: FalconBackend,
): Uint8Array {
  const body = encodeHybridTx(tx);
  const txHash = sha256(
    concatBytes(TX_HASH_PREFIX, envelopeUnsigned(ctx.chainId, sender, tx.seq, body)),
  );
  if (!bytesEqual(txHash, ctx.txHash)) {
    throw new CaesarError(
      CaesarErrorCode.HYBRID_SEQUENCE_MISMATCH,
      `hybrid.seq: ${tx.seq} is not this transaction's sequence number`,
      { seq: tx.seq },
    );
  }
  if (!falcon.verify(tx.pqSig, hybridSigningMessage(ctx.chainId, sender, tx), tx.pqKey)) {
    throw new CaesarError(
      CaesarErrorCode.HYBRID_BAD_SIGNATURE,
      "hybrid: the FALCON signature does not verify under the account's FALCON key",
      {},
    );
  }
  return hybridAddress(sender, tx.pqKey);
}
