import { z } from 'zod';
import { CborError, decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { SchemaError, bytes, parseInput } from '../../codec/schema.js';
import { FALCON1024_MAX_SIGNATURE_BYTES } from '../../crypto/falcon.js';
import { MAX_LIFETIME_SECONDS } from '../ca/request.js';
import { MAX_DCV_ATTESTATIONS, MAX_DCV_ATTESTATION_BYTES } from './dcv.js';
import { CaModuleError, CaModuleErrorCode } from './errors.js';
import { MAX_BATCH_CERTIFICATES } from './state.js';

/**
 * Transaction bodies of the `ca` module, deterministic CBOR maps (docs/ca.md):
 *
 *   request { op: "request", req: bytes, dcv?: [bytes] }        req = encodeCertificateRequest,
 *                                                               dcv = DCV attestations (dcv.ts)
 *   renew   { op: "renew", serial: bytes(16), lifetime?: uint, req?: bytes }
 *                                                               req only for a genesis certificate
 *   revoke  { op: "revoke", serial: bytes(16), reason: uint, proof?: bytes }
 *   publish { op: "publish", height: uint, issuer: text, batch: bytes, sigs: [bytes] }
 *   add-intermediate     { op: "add-intermediate", name: text, key: bytes(32), cert: bytes, endo: bytes }
 *   approve-intermediate { op: "approve-intermediate", hash: bytes(32) }
 */

export interface CaRequestTx {
  readonly op: 'request';
  readonly request: Uint8Array;
  /**
   * Encoded DCV attestations (dcv.ts `signDcvAttestation`), at most `MAX_DCV_ATTESTATIONS`.
   * Absent or empty: the body has no `dcv` key (the encoding of a request without them).
   * Decoded individually by the module, so a malformed one is `CA_DCV_INVALID`.
   */
  readonly dcv?: readonly Uint8Array[];
}

export interface CaRenewTx {
  readonly op: 'renew';
  readonly serial: Uint8Array;
  readonly lifetimeSeconds: number | null;
  /**
   * Only to renew a genesis bootstrap certificate, which has no committed request to re-issue:
   * an `encodeCertificateRequest` for the certificate's key, profile and names
   * (genesis-renewal.ts). Absent: the body has no `req` key (the encoding of every other renew).
   */
  readonly request?: Uint8Array;
}

export interface CaRevokeTx {
  readonly op: 'revoke';
  readonly serial: Uint8Array;
  readonly reason: number;
  /** Signature by the certificate's subject key over `revocationMessage` (optional). */
  readonly proof: Uint8Array | null;
}

export interface CaPublishTx {
  readonly op: 'publish';
  /** The block whose issuances this publishes. */
  readonly height: number;
  /** The validator whose intermediate signed the certificates. */
  readonly issuer: string;
  /** `encodeBatchSignature` bytes. */
  readonly batch: Uint8Array;
  /** The ECDSA signature value of each certificate, in batch order. */
  readonly signatures: readonly Uint8Array[];
}

/** Proposes an intermediate issued after genesis (docs/ca.md, "Adding a validator's intermediate"). */
export interface CaAddIntermediateTx {
  readonly op: 'add-intermediate';
  /** The validator's name: the intermediate's commonName. */
  readonly name: string;
  /** The validator's node (Ed25519) key: the account that will publish with it. */
  readonly account: Uint8Array;
  /** The intermediate (DER), issued by the cluster root. */
  readonly certificate: Uint8Array;
  /** The root FALCON key's endorsement of it (bundle.ts `endorsementMessage`). */
  readonly endorsement: Uint8Array;
}

/** An intermediate holder's approval of a proposal, by SHA-256 of the intermediate's DER. */
export interface CaApproveIntermediateTx {
  readonly op: 'approve-intermediate';
  readonly hash: Uint8Array;
}

export type CaTx =
  | CaRequestTx
  | CaRenewTx
  | CaRevokeTx
  | CaPublishTx
  | CaAddIntermediateTx
  | CaApproveIntermediateTx;

/**
 * RFC 5280 §5.3.1 reasons a subscriber may give: unspecified (0), keyCompromise (1),
 * affiliationChanged (3), superseded (4), cessationOfOperation (5), privilegeWithdrawn (9).
 * cACompromise, certificateHold, removeFromCRL and aACompromise are not for leaves' holders.
 */
export const REVOCATION_REASONS: Readonly<Record<number, string>> = Object.freeze({
  0: 'unspecified',
  1: 'keyCompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  9: 'privilegeWithdrawn',
});

/** Largest `req` of a request or renewal body. */
const MAX_REQUEST_BYTES = 32 * 1024;
const serial = bytes({ length: 16 });
const schema = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('request'),
    req: bytes({ min: 1, max: MAX_REQUEST_BYTES }),
    // An empty list is written as no key, so it is refused here: one value, one encoding.
    dcv: z
      .array(bytes({ min: 1, max: MAX_DCV_ATTESTATION_BYTES }))
      .min(1)
      .max(MAX_DCV_ATTESTATIONS)
      .optional(),
  }),
  z.strictObject({
    op: z.literal('renew'),
    serial,
    lifetime: z.int().min(1).max(MAX_LIFETIME_SECONDS).optional(),
    req: bytes({ min: 1, max: 32 * 1024 }).optional(),
  }),
  z.strictObject({
    op: z.literal('revoke'),
    serial,
    reason: z.int().min(0).max(10),
    proof: bytes({ min: 1, max: 1024 }).optional(),
  }),
  z.strictObject({
    op: z.literal('publish'),
    height: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
    issuer: z.string().min(1).max(64),
    batch: bytes({ min: 1, max: 4096 }),
    sigs: z
      .array(bytes({ min: 8, max: 72 }))
      .min(1)
      .max(MAX_BATCH_CERTIFICATES),
  }),
  z.strictObject({
    op: z.literal('add-intermediate'),
    name: z.string().min(1).max(64),
    key: bytes({ length: 32 }),
    cert: bytes({ min: 1, max: 8 * 1024 }),
    endo: bytes({ min: 1, max: FALCON1024_MAX_SIGNATURE_BYTES }),
  }),
  z.strictObject({ op: z.literal('approve-intermediate'), hash: bytes({ length: 32 }) }),
]);

/**
 * The decoder's item budget (RFC 8949 §2 data items), from the schema above: the body map, at
 * most 5 keys and their values (`publish`, `add-intermediate`), and the one list a body may
 * carry, `dcv` (at most MAX_DCV_ATTESTATIONS) or `sigs` (at most MAX_BATCH_CERTIFICATES):
 * 1 + 2 × 5 + max(256, 256) = 267. Its maps are strict and each list has a maximum, so no body
 * the schema accepts holds more: the budget refuses no body that was accepted before, it only
 * refuses the rest before building them (32 KiB of empty maps would be 32 Ki objects, decoded
 * and re-encoded by every validator at checkTx and again in the block).
 */
const MAX_BODY_ITEMS = 1 + 2 * 5 + Math.max(MAX_DCV_ATTESTATIONS, MAX_BATCH_CERTIFICATES);

function malformed(message: string, detail: Record<string, unknown> = {}): never {
  throw new CaModuleError(CaModuleErrorCode.MALFORMED_BODY, `ca body: ${message}`, detail);
}

/** `{ "op": "request", "req": ` in canonical CBOR: a map of two, "op" < "req" (RFC 8949 §4.2.1). */
const PLAIN_REQUEST_PREFIX = Uint8Array.from([
  0xa2, 0x62, 0x6f, 0x70, 0x67, 0x72, 0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0x63, 0x72, 0x65, 0x71,
]);

/**
 * The `req` of a canonical `{ op: "request", req }` body (no `dcv`), or null for any other
 * bytes. A shortest-form byte-string head (RFC 8949 §4.2.1) of 1 to 32 KiB bytes that end the
 * body is exactly what the general decoder accepts for this shape; every other body goes there.
 * Every node decodes each request body at admission and again in its block.
 */
function plainRequest(body: Uint8Array): Uint8Array | null {
  const prefix = PLAIN_REQUEST_PREFIX.length;
  if (body.length < prefix + 2) return null;
  for (let i = 0; i < prefix; i++) if (body[i] !== PLAIN_REQUEST_PREFIX[i]) return null;
  const head = body[prefix] as number;
  let length: number;
  let start: number;
  if (head >= 0x41 && head <= 0x57) {
    length = head - 0x40;
    start = prefix + 1;
  } else if (head === 0x58) {
    length = body[prefix + 1] as number;
    start = prefix + 2;
    if (length < 24) return null;
  } else if (head === 0x59) {
    if (body.length < prefix + 3) return null;
    length = ((body[prefix + 1] as number) << 8) | (body[prefix + 2] as number);
    start = prefix + 3;
    if (length < 0x100) return null;
  } else {
    return null;
  }
  if (length > MAX_REQUEST_BYTES || start + length !== body.length) return null;
  return body.slice(start);
}

/** Parses a `ca` body (canonical CBOR only). Throws `CaModuleError MALFORMED_BODY`. */
export function decodeCaBody(body: Uint8Array): CaTx {
  const request = plainRequest(body);
  if (request !== null) return { op: 'request', request };
  let decoded: unknown;
  try {
    decoded = decodeCanonical(body, { maxItems: MAX_BODY_ITEMS });
  } catch (error) {
    return malformed(
      (error as Error).message,
      error instanceof CborError ? { cbor: error.code } : {},
    );
  }
  let tx: z.infer<typeof schema>;
  try {
    tx = parseInput(schema, decoded, 'ca body');
  } catch (error) {
    if (error instanceof SchemaError) malformed(error.message, { issues: error.issues });
    throw error;
  }
  switch (tx.op) {
    case 'request':
      return tx.dcv === undefined
        ? { op: 'request', request: new Uint8Array(tx.req) }
        : {
            op: 'request',
            request: new Uint8Array(tx.req),
            dcv: tx.dcv.map((attestation) => new Uint8Array(attestation)),
          };
    case 'renew':
      return {
        op: 'renew',
        serial: new Uint8Array(tx.serial),
        lifetimeSeconds: tx.lifetime ?? null,
        ...(tx.req === undefined ? {} : { request: new Uint8Array(tx.req) }),
      };
    case 'revoke':
      return {
        op: 'revoke',
        serial: new Uint8Array(tx.serial),
        reason: tx.reason,
        proof: tx.proof === undefined ? null : new Uint8Array(tx.proof),
      };
    case 'publish':
      return {
        op: 'publish',
        height: tx.height,
        issuer: tx.issuer,
        batch: new Uint8Array(tx.batch),
        signatures: tx.sigs.map((sig) => new Uint8Array(sig)),
      };
    case 'add-intermediate':
      return {
        op: 'add-intermediate',
        name: tx.name,
        account: new Uint8Array(tx.key),
        certificate: new Uint8Array(tx.cert),
        endorsement: new Uint8Array(tx.endo),
      };
    case 'approve-intermediate':
      return { op: 'approve-intermediate', hash: new Uint8Array(tx.hash) };
  }
}

export function encodeCaBody(tx: CaTx): Uint8Array {
  switch (tx.op) {
    case 'request':
      return encodeCanonical({
        op: 'request',
        req: tx.request,
        ...(tx.dcv === undefined || tx.dcv.length === 0 ? {} : { dcv: tx.dcv }),
      });
    case 'renew':
      return encodeCanonical({
        op: 'renew',
        serial: tx.serial,
        ...(tx.lifetimeSeconds === null ? {} : { lifetime: tx.lifetimeSeconds }),
        ...(tx.request === undefined ? {} : { req: tx.request }),
      });
    case 'revoke':
      return encodeCanonical({
        op: 'revoke',
        serial: tx.serial,
        reason: tx.reason,
        ...(tx.proof === null ? {} : { proof: tx.proof }),
      });
    case 'publish':
      return encodeCanonical({
        op: 'publish',
        height: tx.height,
        issuer: tx.issuer,
        batch: tx.batch,
        sigs: tx.signatures,
      });
    case 'add-intermediate':
      return encodeCanonical({
        op: 'add-intermediate',
        name: tx.name,
        key: tx.account,
        cert: tx.certificate,
        endo: tx.endorsement,
      });
    case 'approve-intermediate':
      return encodeCanonical({ op: 'approve-intermediate', hash: tx.hash });
  }
}

/** What a subject-key holder signs to revoke a certificate (deterministic CBOR). */
export function revocationMessage(
  chainId: string,
  serialNumber: Uint8Array,
  reason: number,
): Uint8Array {
  return encodeCanonical(['hypermesh/trustchain-ca/revocation', 1, chainId, serialNumber, reason]);
}
