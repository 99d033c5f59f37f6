import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { CborError, decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { SchemaError, bytes, parseInput } from '../../codec/schema.js';
import { tagPrefix } from '../../consensus/proof/hashing.js';
import { validatorAddress } from '../../consensus/validator-set.js';
import { bytesEqual, concatBytes } from '../../crypto/bytes.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  ed25519RawPublicKey,
  ed25519Sign,
  ed25519Verify,
} from '../../crypto/ed25519.js';
import { CaModuleError, CaModuleErrorCode } from './errors.js';

/**
 * Multi-perspective domain control validation (docs/ca.md, "Multi-perspective validation
 * (MPIC)"): each intermediate holder checks an ACME challenge from its own vantage point and
 * signs a DCV attestation of the outcome; a `request` of an account whose grant has
 * `requireDcv` carries them, and the `ca` module counts them with `dcvQuorum`: their signers
 * must hold more than 2/3 of the current validator set's voting power.
 * `ok` means the challenge is met from that perspective AND, for a DNS name, the holder's own
 * CAA check (RFC 8659/8657, the ACME server's src/faces/acme/caa-check.ts) permits issuance —
 * so a quorum for an external name (a grant with `externalDns`) is also a quorum of CAA checks.
 * `wildcard` says the validation was of the ACME wildcard authorization for `*.<name>`: then the
 * method is dns-01 (RFC 8555 §7.1.3) and the CAA check was for the wildcard (RFC 8659 §4.3,
 * `issuewild`). The module counts an attestation only for the form it names: `wildcard: true`
 * for `*.x`, `wildcard: false` for `x`.
 *
 * Wire form, deterministic CBOR (RFC 8949 §4.2.1):
 *
 *   attestation { body: body, sig: bytes(64) }
 *   body { v: 2, chain: text, account: bytes(32), id: text, wildcard: bool, method: text,
 *          kah: bytes(32), height: uint, ok: bool, validator: bytes(32) }
 *
 * Version 1 bodies (no `wildcard`) are refused (`CA_DCV_INVALID`, detail `version: 1`): read
 * as plain-name attestations they once also authorised the wildcard, whatever the method.
 *
 * `sig` is the validator's Ed25519 signature over
 * `tagPrefix("hypermesh/ca/dcv-attestation") || CBOR(body)`.
 */

export type DcvMethod = 'http-01' | 'dns-01' | 'tls-alpn-01';

export const DCV_METHODS: readonly DcvMethod[] = Object.freeze([
  'http-01',
  'dns-01',
  'tls-alpn-01',
]);

export interface DcvAttestationBody {
  readonly chainId: string;
  /** The account that will send the request: node K's ACME account Ed25519 public key (32 bytes). */
  readonly account: Uint8Array;
  /** `dcvIdentifier(type, value)`: "dns:<lowercase name>" or "ip:<canonical address>". */
  readonly identifier: string;
  /**
   * The validation was of the wildcard `*.<name>` (a DNS identifier only): method dns-01, CAA
   * checked for `issuewild`. False for the name itself.
   */
  readonly wildcard: boolean;
  readonly method: DcvMethod;
  /** SHA-256 of the ACME key authorization (token || '.' || account thumbprint), 32 bytes. */
  readonly keyAuthorizationHash: Uint8Array;
  /** The attesting node's latest committed height when it validated. */
  readonly height: number;
  /** The challenge is met and (for a DNS name) CAA permits issuance, from this validator. */
  readonly ok: boolean;
  /** The attesting validator's node Ed25519 public key (32 bytes) = its CA issuer account. */
  readonly validator: Uint8Array;
}

export interface DcvAttestation {
  readonly body: DcvAttestationBody;
  readonly signature: Uint8Array;
  /** The attestation's encoding (what a request body's `dcv` list carries). */
  readonly bytes: Uint8Array;
}

/** Attestations one `request` body may carry. */
export const MAX_DCV_ATTESTATIONS = 256;
/** Largest encoded attestation accepted (a maximal one is about 500 bytes). */
export const MAX_DCV_ATTESTATION_BYTES = 1024;
/**
 * How long a renewal may reuse the domain validation of the request it descends from: 398 days
 * (CA/Browser Forum Baseline Requirements §4.2.1, reuse of validation data), counted in block
 * time from the block that committed the validated request.
 */
export const DCV_REUSE_MAX_MS = 398 * 86_400_000;
/** How many blocks old an attestation may be when its request is checked (genesis `dcvMaxAgeBlocks`). */
export const DEFAULT_DCV_MAX_AGE_BLOCKS = 100;
/** The largest `dcvMaxAgeBlocks` the genesis section accepts. */
export const MAX_DCV_MAX_AGE_BLOCKS = 100_000;

const DCV_VERSION = 2;
const MAX_CHAIN_ID_LENGTH = 64;
/** "dns:" + a 253-character name. */
const MAX_IDENTIFIER_LENGTH = 4 + 253;
const SIGNATURE_PREFIX = tagPrefix('hypermesh/ca/dcv-attestation');

const bodySchema = z.strictObject({
  v: z.literal(DCV_VERSION),
  chain: z.string().min(1).max(MAX_CHAIN_ID_LENGTH),
  account: bytes({ length: ED25519_PUBLIC_KEY_BYTES }),
  id: z.string().min(4).max(MAX_IDENTIFIER_LENGTH),
  wildcard: z.boolean(),
  method: z.enum(DCV_METHODS as [DcvMethod, ...DcvMethod[]]),
  kah: bytes({ length: 32 }),
  height: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  ok: z.boolean(),
  validator: bytes({ length: ED25519_PUBLIC_KEY_BYTES }),
});

const attestationSchema = z.strictObject({
  body: bodySchema,
  sig: bytes({ length: ED25519_SIGNATURE_BYTES }),
});

/**
 * The decoder's item budget (RFC 8949 §2 data items), from the schemas above: the attestation
 * map with its 2 keys and values, and the body map's 10 keys and values: 1 + 2 × 2 + 2 × 10 = 25.
 * Both maps are strict and hold no lists, so no attestation they accept has more. A request
 * body's 256 attestations of up to 1 KiB are decoded at checkTx and again in the block.
 */
const MAX_ATTESTATION_ITEMS = 1 + 2 * 2 + 2 * 10;

function invalid(message: string, detail: Record<string, unknown> = {}): never {
  throw new CaModuleError(CaModuleErrorCode.DCV_INVALID, `dcv attestation: ${message}`, detail);
}

/**
 * The identifier an attestation names: `dns:<name>` with the name lowercased and a wildcard's
 * `*.` removed (ACME validates `*.x` through a wildcard authorization for `x`: the attestation
 * then says `wildcard: true`), or `ip:<address>` in canonical text (IPv4 dotted decimal
 * without leading zeros, IPv6 per RFC 5952). Throws
 * `CaModuleError CA_DCV_INVALID` for an empty name or a string that is no IP address.
 */
export function dcvIdentifier(type: 'dns' | 'ip', value: string): string {
  if (type === 'dns') {
    const name = value.toLowerCase();
    const base = name.startsWith('*.') ? name.slice(2) : name;
    if (base.length === 0 || base.length > 253) invalid(`DNS name of ${base.length} characters`);
    return `dns:${base}`;
  }
  const version = isIP(value);
  if (version === 4) return `ip:${value.split('.').map(Number).join('.')}`;
  if (version === 6 && !value.includes('%')) {
    return `ip:${new URL(`http://[${value}]/`).hostname.slice(1, -1)}`;
  }
  return invalid(`${JSON.stringify(value.slice(0, 64))} is no IP address`);
}

/** True when `identifier` is already in the form `dcvIdentifier` gives. */
function isCanonicalIdentifier(identifier: string): boolean {
  const colon = identifier.indexOf(':');
  const type = identifier.slice(0, colon);
  if (type !== 'dns' && type !== 'ip') return false;
  const value = identifier.slice(colon + 1);
  if (type === 'dns' && value.startsWith('*.')) return false;
  try {
    return dcvIdentifier(type, value) === identifier;
  } catch {
    return false;
  }
}

function bodyMap(body: DcvAttestationBody): Record<string, unknown> {
  return {
    v: DCV_VERSION,
    chain: body.chainId,
    account: body.account,
    id: body.identifier,
    wildcard: body.wildcard,
    method: body.method,
    kah: body.keyAuthorizationHash,
    height: body.height,
    ok: body.ok,
    validator: body.validator,
  };
}

/**
 * Refuses a body of another version by name: a version 1 body read by today's schema would only
 * fail on a missing field, and one read as if current would grant the wildcard (see above).
 */
function refuseOtherVersion(input: unknown): void {
  if (typeof input !== 'object' || input === null || !('v' in input)) return;
  const version = (input as { v: unknown }).v;
  if (version === DCV_VERSION || !Number.isSafeInteger(version)) return;
  invalid(
    `version ${String(version)} attestations are not accepted (version ${DCV_VERSION} carries the wildcard flag)`,
    { version },
  );
}

function checkedBody(input: unknown): DcvAttestationBody {
  refuseOtherVersion(input);
  let body: z.infer<typeof bodySchema>;
  try {
    body = parseInput(bodySchema, input, 'dcv attestation body');
  } catch (error) {
    if (error instanceof SchemaError) invalid(error.message, { issues: error.issues });
    throw error;
  }
  if (!isCanonicalIdentifier(body.id)) {
    invalid(`identifier ${JSON.stringify(body.id.slice(0, 64))} is not in canonical form`);
  }
  // RFC 8555 §7.1.3: a wildcard authorization is validated by dns-01 only.
  if (body.wildcard && (!body.id.startsWith('dns:') || body.method !== 'dns-01')) {
    invalid(`a wildcard attestation must be for a DNS name by dns-01, not ${body.method}`, {
      method: body.method,
    });
  }
  return {
    chainId: body.chain,
    account: new Uint8Array(body.account),
    identifier: body.id,
    wildcard: body.wildcard,
    method: body.method,
    keyAuthorizationHash: new Uint8Array(body.kah),
    height: body.height,
    ok: body.ok,
    validator: new Uint8Array(body.validator),
  };
}

function signedMessage(body: DcvAttestationBody): Uint8Array {
  return concatBytes(SIGNATURE_PREFIX, encodeCanonical(bodyMap(body)));
}

/**
 * Signs `body` with the validator's node Ed25519 key and returns the attestation's encoding.
 * Throws `CaModuleError CA_DCV_INVALID` for a body the decoder would refuse or a key that is
 * not `body.validator`'s.
 */
export function signDcvAttestation(body: DcvAttestationBody, privateKey: KeyObject): Uint8Array {
  const checked = checkedBody(bodyMap(body));
  if (!bytesEqual(ed25519RawPublicKey(privateKey), checked.validator)) {
    invalid('the signing key is not the attestation\u2019s validator key');
  }
  const encoded = encodeCanonical({
    body: bodyMap(checked),
    sig: ed25519Sign(signedMessage(checked), privateKey),
  });
  if (encoded.length > MAX_DCV_ATTESTATION_BYTES) {
    invalid(`${encoded.length} bytes, more than ${MAX_DCV_ATTESTATION_BYTES}`);
  }
  return encoded;
}

/**
 * Decodes an attestation: at most `MAX_DCV_ATTESTATION_BYTES`, canonical CBOR, the schema
 * above, a canonical identifier. Throws `CaModuleError CA_DCV_INVALID` otherwise. Does not
 * verify the signature (`verifyDcvAttestation`).
 */
export function decodeDcvAttestation(bytes: Uint8Array): DcvAttestation {
  if (!(bytes instanceof Uint8Array)) invalid('not a byte string');
  if (bytes.length > MAX_DCV_ATTESTATION_BYTES) {
    invalid(`${bytes.length} bytes, more than ${MAX_DCV_ATTESTATION_BYTES}`);
  }
  let decoded: unknown;
  try {
    decoded = decodeCanonical(bytes, { maxItems: MAX_ATTESTATION_ITEMS });
  } catch (error) {
    return invalid(
      (error as Error).message,
      error instanceof CborError ? { cbor: error.code } : {},
    );
  }
  if (typeof decoded === 'object' && decoded !== null && 'body' in decoded) {
    refuseOtherVersion((decoded as { body: unknown }).body);
  }
  let outer: z.infer<typeof attestationSchema>;
  try {
    outer = parseInput(attestationSchema, decoded, 'dcv attestation');
  } catch (error) {
    if (error instanceof SchemaError) invalid(error.message, { issues: error.issues });
    throw error;
  }
  return {
    body: checkedBody(outer.body),
    signature: new Uint8Array(outer.sig),
    bytes: bytes.slice(),
  };
}

/** True when `att.signature` is `att.body.validator`'s signature over the body. */
export function verifyDcvAttestation(att: DcvAttestation): boolean {
  let message: Uint8Array;
  try {
    message = signedMessage(att.body);
  } catch {
    return false;
  }
  return ed25519Verify(att.signature, message, att.body.validator);
}

/**
 * The validator set a DCV quorum is counted against (docs/ca.md, "Multi-perspective validation
 * (MPIC)"): every validator's voting power by consensus address (validator-set.ts
 * `validatorAddress` of its Ed25519 key). Read by `readDcvElectorate` (voting-power.ts).
 */
export interface DcvElectorate {
  readonly powers: ReadonlyMap<string, number>;
  /** The sum of `powers`: at least 1, at most `MAX_TOTAL_VOTING_POWER`. */
  readonly totalPower: number;
}

/** How far the corroborating validators are from the quorum (`dcvQuorum`). */
export interface DcvQuorum {
  /** More than 2/3 of the electorate's voting power corroborated. */
  readonly reached: boolean;
  /** Distinct validators counted (whatever their power). */
  readonly corroborating: number;
  /** The sum of their voting power; a validator outside the electorate adds 0. */
  readonly corroboratedPower: number;
  readonly totalPower: number;
}

/**
 * The quorum rule of multi-perspective validation, shared by the `ca` module and the ACME
 * server: the distinct `validators` (32-byte Ed25519 keys) that corroborated a name hold more
 * than 2/3 of the electorate's voting power (`3 · corroborated > 2 · total`, the Tendermint
 * commit bound). A key outside the electorate carries no power; a key listed twice counts once.
 * Integer arithmetic on powers bounded by `MAX_TOTAL_VOTING_POWER` (2^50), so exact.
 */
export function dcvQuorum(electorate: DcvElectorate, validators: readonly Uint8Array[]): DcvQuorum {
  const counted = new Set<string>();
  let corroboratedPower = 0;
  for (const validator of validators) {
    const address = validatorAddress(validator);
    if (counted.has(address)) continue;
    counted.add(address);
    corroboratedPower += electorate.powers.get(address) ?? 0;
  }
  const { totalPower } = electorate;
  return {
    reached: BigInt(corroboratedPower) * 3n > BigInt(totalPower) * 2n,
    corroborating: counted.size,
    corroboratedPower,
    totalPower,
  };
}

/** `part / total` as a percentage rounded down to one decimal ("40%", "66.6%"). */
function percentOf(part: number, total: number): string {
  const tenths = (BigInt(part) * 1000n) / BigInt(total);
  const whole = tenths / 10n;
  const fraction = tenths % 10n;
  return fraction === 0n ? `${whole}%` : `${whole}.${fraction}%`;
}

/**
 * The reason a quorum is not reached, for problem details and refusals: "validators holding 40%
 * of voting power corroborated (2 of 4 holders), more than 66.7% needed".
 */
export function dcvQuorumShortfall(quorum: DcvQuorum, holders: number): string {
  return `validators holding ${percentOf(quorum.corroboratedPower, quorum.totalPower)} of voting power corroborated (${quorum.corroborating} of ${holders} holders), more than 66.7% needed`;
}

/**
 * Holders needed when all `holders` hold equal power and make up the whole validator set: the
 * smallest count above 2/3, `floor(2n/3) + 1` (1→1, 2→2, 3→3, 4→3, 5→4, 6→5, 7→5, 8→6, 9→7,
 * 10→7). The special case of `dcvQuorum` that docs/ca.md compares with the CA/Browser Forum
 * MPIC table. Throws `RangeError` for fewer than 1.
 */
export function dcvRequiredCount(holders: number): number {
  if (!Number.isSafeInteger(holders) || holders < 1) {
    throw new RangeError(`dcvRequiredCount: holders must be a positive integer, got ${holders}`);
  }
  return Math.floor((2 * holders) / 3) + 1;
}
