import { z } from 'zod';
import { decodeStrict, encodeCanonical } from '../../codec/cbor.js';
import { SchemaError, bytes, parseInput, uint } from '../../codec/schema.js';
import { FALCON1024_MAX_SIGNATURE_BYTES, FALCON_ALGORITHM_ID } from '../../crypto/falcon.js';
import { MAX_CERTIFICATE_BYTES, MAX_CHAIN_LENGTH } from '../../crypto/x509.js';
import { AUTH_FAILURE_REASONS, AuthFailureReason, authFailure } from './reasons.js';

/**
 * The four messages of the STOQ authentication exchange (docs/stoq-auth.md), each one
 * deterministic-CBOR map (RFC 8949 §4.2) with a type tag `t` and protocol version `v`:
 *
 *     C→S  ClientHello  {t:'client_hello', v, mode, nonce, chain, delegation?}
 *     S→C  ServerHello  {t:'server_hello', v, mode, nonce, echo, chain, delegation?, proof?}
 *     C→S  ClientProof  {t:'client_proof', v, echo, proof?}
 *     S→C  Result       {t:'result', v, ok:true} | {t:'result', v, ok:false, reason}
 *
 * Either side may send a failing `Result` in place of its next message. `echo` repeats the
 * other side's nonce, so a message captured on one connection is recognised as a replay on
 * another. Every field is checked by a schema; unknown fields are rejected.
 *
 * Version 2 signs the transport's channel binding in strict mode (transcript.ts). A message of
 * another version is refused as `version_mismatch` before its fields are read, so a v1 and a
 * v2 peer name the problem instead of failing a signature check.
 */
export const AUTH_PROTOCOL_VERSION = 2;
export const NONCE_BYTES = 32;

export type AuthMode = 'strict' | 'delegated';
export const AUTH_MODES: readonly AuthMode[] = ['strict', 'delegated'];

/** What a node's FALCON key signed in delegated mode (see delegation.ts). */
export interface Delegation {
  readonly alg: typeof FALCON_ALGORITHM_ID;
  /** Raw 32-byte Ed25519 transport key the FALCON identity authorizes. */
  readonly transportKey: Uint8Array;
  /** The certificate identity URI, `spiffe://<cluster>/<role>/<name>`. */
  readonly uri: string;
  /** End of the authorization, milliseconds since the Unix epoch. */
  readonly notAfter: number;
  readonly signature: Uint8Array;
}

export interface ClientHello {
  readonly t: 'client_hello';
  readonly v: typeof AUTH_PROTOCOL_VERSION;
  readonly mode: AuthMode;
  readonly nonce: Uint8Array;
  /** DER certificates, leaf first. */
  readonly chain: readonly Uint8Array[];
  readonly delegation?: Delegation;
}

export interface ServerHello {
  readonly t: 'server_hello';
  readonly v: typeof AUTH_PROTOCOL_VERSION;
  readonly mode: AuthMode;
  readonly nonce: Uint8Array;
  /** The client's nonce. */
  readonly echo: Uint8Array;
  readonly chain: readonly Uint8Array[];
  readonly delegation?: Delegation;
  /** Strict mode: the server's FALCON signature over the server transcript. */
  readonly proof?: Uint8Array;
}

export interface ClientProof {
  readonly t: 'client_proof';
  readonly v: typeof AUTH_PROTOCOL_VERSION;
  /** The server's nonce. */
  readonly echo: Uint8Array;
  /** Strict mode: the client's FALCON signature over the client transcript. */
  readonly proof?: Uint8Array;
}

export type AuthResult =
  | { readonly t: 'result'; readonly v: typeof AUTH_PROTOCOL_VERSION; readonly ok: true }
  | {
      readonly t: 'result';
      readonly v: typeof AUTH_PROTOCOL_VERSION;
      readonly ok: false;
      readonly reason: AuthFailureReason;
    };

export type AuthMessage = ClientHello | ServerHello | ClientProof | AuthResult;

const nonce = bytes({ length: NONCE_BYTES });
const chain = z.array(bytes({ min: 1, max: MAX_CERTIFICATE_BYTES })).max(MAX_CHAIN_LENGTH);
const proof = bytes({ min: 1, max: FALCON1024_MAX_SIGNATURE_BYTES });
const version = z.literal(AUTH_PROTOCOL_VERSION);
const mode = z.enum(['strict', 'delegated']);

const delegationSchema = z.strictObject({
  alg: z.literal(FALCON_ALGORITHM_ID),
  transportKey: bytes({ length: 32 }),
  uri: z.string().max(512),
  notAfter: uint,
  signature: proof,
});

const messageSchema = z.discriminatedUnion('t', [
  z.strictObject({
    t: z.literal('client_hello'),
    v: version,
    mode,
    nonce,
    chain,
    delegation: delegationSchema.optional(),
  }),
  z.strictObject({
    t: z.literal('server_hello'),
    v: version,
    mode,
    nonce,
    echo: nonce,
    chain,
    delegation: delegationSchema.optional(),
    proof: proof.optional(),
  }),
  z.strictObject({
    t: z.literal('client_proof'),
    v: version,
    echo: nonce,
    proof: proof.optional(),
  }),
  z.strictObject({
    t: z.literal('result'),
    v: version,
    ok: z.boolean(),
    reason: z.enum(AUTH_FAILURE_REASONS as [AuthFailureReason, ...AuthFailureReason[]]).optional(),
  }),
]);

/** The message body in deterministic CBOR (no length prefix; see framing.ts). */
export function encodeAuthMessage(message: AuthMessage): Uint8Array {
  // Optional fields are left out rather than encoded as `undefined`, which CBOR cannot carry.
  return encodeCanonical(
    Object.fromEntries(Object.entries(message).filter(([, value]) => value !== undefined)),
  );
}

/**
 * Most CBOR data items a well-formed message holds: the root, a map of at most 8 entries (a
 * `server_hello`: t, v, mode, nonce, echo, chain, delegation, proof; 16 items), a chain of at
 * most `MAX_CHAIN_LENGTH` (8) certificates and a delegation map of 5 entries (10 items): 35,
 * rounded up. The budget is checked as heads announce children, so a message of empty maps or a
 * huge array is refused before anything is built: these are read before the peer is known.
 */
export const MAX_AUTH_MESSAGE_ITEMS = 64;

/** Decodes and schema-checks one message; anything else is a `protocol_error`. */
export function decodeAuthMessage(body: Uint8Array): AuthMessage {
  let value: unknown;
  try {
    value = decodeStrict(body, { maxItems: MAX_AUTH_MESSAGE_ITEMS });
  } catch (error) {
    throw authFailure(
      AuthFailureReason.PROTOCOL_ERROR,
      'authentication message is not CBOR',
      {},
      { cause: error },
    );
  }
  checkVersion(value);
  let message;
  try {
    message = parseInput(messageSchema, value, 'authMessage');
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw authFailure(
      AuthFailureReason.PROTOCOL_ERROR,
      `authentication message is invalid: ${error.message}`,
      {
        issues: error.issues.slice(0, 3),
      },
      { cause: error },
    );
  }
  if (message.t === 'result') {
    // `reason` accompanies exactly the failing results.
    if (message.ok === (message.reason !== undefined)) {
      throw authFailure(
        AuthFailureReason.PROTOCOL_ERROR,
        'result must carry a reason exactly when it fails',
      );
    }
    return message.ok
      ? { t: 'result', v: AUTH_PROTOCOL_VERSION, ok: true }
      : {
          t: 'result',
          v: AUTH_PROTOCOL_VERSION,
          ok: false,
          reason: message.reason as AuthFailureReason,
        };
  }
  return message as AuthMessage;
}

/** A map whose `v` is an integer other than ours is another version of the exchange. */
function checkVersion(value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  const version = (value as { v?: unknown }).v;
  if (typeof version !== 'number' || !Number.isSafeInteger(version)) return;
  if (version !== AUTH_PROTOCOL_VERSION) {
    throw authFailure(
      AuthFailureReason.VERSION_MISMATCH,
      `the peer speaks STOQ authentication v${version}, this side v${AUTH_PROTOCOL_VERSION}`,
      { peerVersion: version, version: AUTH_PROTOCOL_VERSION },
    );
  }
}

export function successResult(): AuthResult {
  return { t: 'result', v: AUTH_PROTOCOL_VERSION, ok: true };
}

export function failureResult(reason: AuthFailureReason): AuthResult {
  return { t: 'result', v: AUTH_PROTOCOL_VERSION, ok: false, reason };
}
