import { z } from 'zod';
import { decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { SchemaError, bytes, parseInput } from '../../codec/schema.js';
import { BoundedMap } from '../../codec/bounded-map.js';
import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import {
  FALCON1024_MAX_SIGNATURE_BYTES,
  FALCON1024_PUBLIC_KEY_BYTES,
  FALCON_ALGORITHM_ID,
  defaultFalcon,
  type FalconBackend,
} from '../../crypto/falcon.js';
import { parseCsr, type CsrKeyType, type ParsedCsr } from './csr.js';
import { CaErrorCode, caError } from './errors.js';
import {
  checkDnsName,
  checkIpAddress,
  checkSpiffeId,
  ipInRange,
  isWildcard,
  isWithinZone,
  wildcardBase,
  type NameKind,
} from './names.js';
import { PROFILES, PROFILE_NAMES, type ProfileName } from './profiles.js';

/**
 * Certificate requests: the PKCS#10 CSR, the profile, the names and an optional lifetime, plus
 * (for STOQ identities) a FALCON-1024 public key with a proof of possession. `parseCertificateRequest`
 * does every check that needs no state (syntax, CSR signature, key strength, FALCON proof);
 * `checkRequest` applies the policy for one requester and returns typed refusals. Both run at
 * mempool admission and again at execution, where they must give the same answer on every
 * validator: they are pure functions of their inputs.
 */

export const CERTIFICATE_REQUEST_VERSION = 1;
/** Names per request (Let's Encrypt allows 100 as well). */
export const MAX_REQUEST_NAMES = 100;
/** Longest lifetime anyone may ask for; profiles and policies set the real limits. */
export const MAX_LIFETIME_SECONDS = 398 * 24 * 3600;

/** What a FALCON-1024 key holder signs to prove possession for a CSR's subject key. */
export const FALCON_POSSESSION_CONTEXT = 'hypermesh/trustchain-ca/falcon-key-possession';

export interface FalconKeyClaim {
  /** 1793-byte FALCON-1024 (Round 3) public key. */
  readonly publicKey: Uint8Array;
  /** FALCON signature over `falconPossessionMessage(csr.subjectPublicKeyInfo)`. */
  readonly proof: Uint8Array;
}

export interface CertificateRequest {
  readonly profile: ProfileName;
  readonly csr: ParsedCsr;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly uris: readonly string[];
  /** Requested lifetime; `null` means the profile's (or policy's) maximum. */
  readonly lifetimeSeconds: number | null;
  readonly falcon: FalconKeyClaim | null;
}

/** The request as a client submits it; `csr` is DER bytes or PEM text. */
export interface CertificateRequestInput {
  readonly profile: ProfileName;
  readonly csr: Uint8Array | string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly uris?: readonly string[];
  readonly lifetimeSeconds?: number;
  readonly falcon?: FalconKeyClaim;
}

const nameList = z.array(z.string().max(2048)).max(MAX_REQUEST_NAMES);
const falconSchema = z.strictObject({
  publicKey: bytes({ length: FALCON1024_PUBLIC_KEY_BYTES }),
  proof: bytes({ min: 1, max: FALCON1024_MAX_SIGNATURE_BYTES }),
});
const inputSchema = z.strictObject({
  profile: z.enum(PROFILE_NAMES as [ProfileName, ...ProfileName[]]),
  csr: z.union([bytes({ min: 1 }), z.string().min(1)]),
  dnsNames: nameList.optional(),
  ipAddresses: nameList.optional(),
  uris: nameList.optional(),
  lifetimeSeconds: z.int().min(1).max(MAX_LIFETIME_SECONDS).optional(),
  falcon: falconSchema.optional(),
});

const wireSchema = z.strictObject({
  v: z.literal(CERTIFICATE_REQUEST_VERSION),
  profile: z.string(),
  csr: bytes({ min: 1 }),
  dns: z.array(z.string()),
  ip: z.array(z.string()),
  uri: z.array(z.string()),
  lifetime: z.int().optional(),
  falcon: z.strictObject({ pk: bytes(), pop: bytes() }).optional(),
});

/**
 * The decoder's item budget (RFC 8949 §2 data items), from `wireSchema`: the request map with
 * its 8 keys and values, at most MAX_REQUEST_NAMES names across `dns`, `ip` and `uri` (more is
 * refused by `parseCertificateRequest`), and the 2 keys and values of `falcon`:
 * 1 + 2 × 8 + 100 + 2 × 2 = 121. No request accepted before holds more; the rest are refused
 * before they are built (a `req` is up to 32 KiB, decoded at checkTx and in the block).
 */
const MAX_REQUEST_ITEMS = 1 + 2 * 8 + MAX_REQUEST_NAMES + 2 * 2;

function invalidRequest(message: string, detail: Record<string, unknown>, cause?: unknown): never {
  throw caError(CaErrorCode.INVALID_REQUEST, message, detail, cause);
}

/** The deterministic-CBOR message a FALCON proof of possession signs. */
export function falconPossessionMessage(subjectPublicKeyInfo: Uint8Array): Uint8Array {
  return encodeCanonical([
    FALCON_POSSESSION_CONTEXT,
    CERTIFICATE_REQUEST_VERSION,
    FALCON_ALGORITHM_ID,
    subjectPublicKeyInfo,
  ]);
}

/** Signs the proof of possession of a FALCON key for the CSR's subject key. */
export async function proveFalconPossession(
  subjectPublicKeyInfo: Uint8Array,
  falconSecretKey: Uint8Array,
  falcon: FalconBackend = defaultFalcon(),
): Promise<Uint8Array> {
  return falcon.sign(falconPossessionMessage(subjectPublicKeyInfo), falconSecretKey);
}

export interface ParseRequestOptions {
  readonly falcon?: FalconBackend;
}

/**
 * Parses a request and does every stateless check. Throws `CaError`: `INVALID_REQUEST` (schema,
 * duplicate names, CSR names that differ from the requested ones), `INVALID_NAME`,
 * `INVALID_FALCON_PROOF`, or a `CSR_*` code from `parseCsr`.
 */
export function parseCertificateRequest(
  input: unknown,
  options: ParseRequestOptions = {},
): CertificateRequest {
  let parsed: z.infer<typeof inputSchema>;
  try {
    parsed = parseInput(inputSchema, input, 'request');
  } catch (error) {
    if (error instanceof SchemaError) {
      invalidRequest(error.message, { reason: 'schema', issues: error.issues }, error);
    }
    throw error;
  }
  const csr = parseCsr(parsed.csr);
  const dnsNames = parsed.dnsNames ?? [];
  const ipAddresses = parsed.ipAddresses ?? [];
  const uris = parsed.uris ?? [];
  const total = dnsNames.length + ipAddresses.length + uris.length;
  if (total > MAX_REQUEST_NAMES) {
    invalidRequest(`a request may name at most ${MAX_REQUEST_NAMES} identifiers`, {
      reason: 'too_many_names',
      count: total,
      max: MAX_REQUEST_NAMES,
    });
  }
  dnsNames.forEach(checkDnsName);
  ipAddresses.forEach(checkIpAddress);
  uris.forEach(checkSpiffeId);
  for (const [kind, list] of [
    ['dns', dnsNames],
    ['ip', ipAddresses],
    ['uri', uris],
  ] as const) {
    const duplicate = list.find((name, i) => list.indexOf(name) !== i);
    if (duplicate !== undefined) {
      invalidRequest(`${kind} name ${duplicate} is listed twice`, {
        reason: 'duplicate_name',
        kind,
        name: duplicate,
      });
    }
  }
  checkCsrNames(csr, dnsNames, ipAddresses, uris);
  let falcon: FalconKeyClaim | null = null;
  if (parsed.falcon !== undefined) {
    const backend = options.falcon ?? defaultFalcon();
    const message = falconPossessionMessage(csr.subjectPublicKeyInfo);
    if (!backend.verify(parsed.falcon.proof, message, parsed.falcon.publicKey)) {
      throw caError(
        CaErrorCode.INVALID_FALCON_PROOF,
        'the FALCON-1024 proof of possession does not verify for this CSR key',
      );
    }
    falcon = { publicKey: parsed.falcon.publicKey.slice(), proof: parsed.falcon.proof.slice() };
  }
  return {
    profile: parsed.profile,
    csr,
    dnsNames: [...dnsNames],
    ipAddresses: [...ipAddresses],
    uris: [...uris],
    lifetimeSeconds: parsed.lifetimeSeconds ?? null,
    falcon,
  };
}

/**
 * RFC 8555 §7.4 style: a CSR that names identifiers must name exactly the requested ones
 * (its subjectAltName as a set), and a commonName must be one of them.
 */
function checkCsrNames(
  csr: ParsedCsr,
  dnsNames: readonly string[],
  ipAddresses: readonly string[],
  uris: readonly string[],
): void {
  const requested = new Set([...dnsNames, ...ipAddresses, ...uris]);
  if (csr.requestedNames !== null) {
    const inCsr = csr.requestedNames;
    const csrSet = new Set([...inCsr.dnsNames, ...inCsr.ipAddresses, ...inCsr.uris]);
    const missing = [...requested].filter((name) => !csrSet.has(name)).sort();
    const extra = [...csrSet].filter((name) => !requested.has(name)).sort();
    if (missing.length > 0 || extra.length > 0 || inCsr.otherNames > 0) {
      invalidRequest('the CSR subjectAltName differs from the requested names', {
        reason: 'csr_names_mismatch',
        missing,
        extra,
        otherNames: inCsr.otherNames,
      });
    }
  }
  if (csr.commonName !== null && !requested.has(csr.commonName)) {
    invalidRequest('the CSR commonName is not one of the requested names', {
      reason: 'csr_names_mismatch',
      commonName: csr.commonName,
    });
  }
}

/** The request's deterministic-CBOR form (what a transaction carries). */
export function encodeCertificateRequest(request: CertificateRequest): Uint8Array {
  return encodeCanonical({
    v: CERTIFICATE_REQUEST_VERSION,
    profile: request.profile,
    csr: request.csr.der,
    dns: request.dnsNames,
    ip: request.ipAddresses,
    uri: request.uris,
    ...(request.lifetimeSeconds === null ? {} : { lifetime: request.lifetimeSeconds }),
    ...(request.falcon === null
      ? {}
      : { falcon: { pk: request.falcon.publicKey, pop: request.falcon.proof } }),
  });
}

/** Decodes `encodeCertificateRequest` output (canonical CBOR only) and parses it. */
export function decodeCertificateRequest(
  encoded: Uint8Array,
  options: ParseRequestOptions = {},
): CertificateRequest {
  let wire: z.infer<typeof wireSchema>;
  try {
    wire = parseInput(
      wireSchema,
      decodeCanonical(encoded, { maxItems: MAX_REQUEST_ITEMS }),
      'request',
    );
  } catch (error) {
    return invalidRequest(
      `request is not a canonical v${CERTIFICATE_REQUEST_VERSION} encoding: ${(error as Error).message}`,
      { reason: 'encoding' },
      error,
    );
  }
  return parseCertificateRequest(
    {
      profile: wire.profile,
      csr: wire.csr,
      dnsNames: wire.dns,
      ipAddresses: wire.ip,
      uris: wire.uri,
      ...(wire.lifetime === undefined ? {} : { lifetimeSeconds: wire.lifetime }),
      ...(wire.falcon === undefined
        ? {}
        : { falcon: { publicKey: wire.falcon.pk, proof: wire.falcon.pop } }),
    },
    options,
  );
}

/** Decoded requests kept by `decodeCertificateRequestCached`, per FALCON backend. */
export const DECODED_REQUEST_CACHE_ENTRIES = 4096;

const decodedRequests = new WeakMap<object, BoundedMap<string, CertificateRequest>>();
const DEFAULT_BACKEND_KEY = {};

/**
 * `decodeCertificateRequest`, remembered by the SHA-256 of the bytes: a request is decoded at
 * admission, at execution and for its publication (by the issuer and by every validator that
 * checks it), and the outcome depends only on the bytes and the FALCON backend, so each node
 * parses and checks a CSR once. Refusals are not kept (they throw again).
 * The result is frozen: callers copy it to change it.
 */
export function decodeCertificateRequestCached(
  encoded: Uint8Array,
  options: ParseRequestOptions = {},
): CertificateRequest {
  const backendKey = options.falcon ?? DEFAULT_BACKEND_KEY;
  let cache = decodedRequests.get(backendKey);
  if (cache === undefined) {
    cache = new BoundedMap(DECODED_REQUEST_CACHE_ENTRIES);
    decodedRequests.set(backendKey, cache);
  }
  const key = toHex(sha256(encoded));
  const known = cache.get(key);
  if (known !== undefined) return known;
  const decoded = decodeCertificateRequest(encoded, options);
  const frozen = Object.freeze({
    ...decoded,
    dnsNames: Object.freeze([...decoded.dnsNames]),
    ipAddresses: Object.freeze([...decoded.ipAddresses]),
    uris: Object.freeze([...decoded.uris]),
  });
  cache.set(key, frozen);
  return frozen;
}

// ---------------------------------------------------------------------------------------------
// Policy

export interface IssuancePolicy {
  /** The cluster's SPIFFE trust domain; every URI must be in it. */
  readonly cluster: string;
  /** Maximum lifetimes overriding the profile table. */
  readonly maxLifetimeSeconds?: Partial<Record<ProfileName, number>>;
  /** Minimum RSA modulus; never below the 2048 bits `parseCsr` enforces. */
  readonly minRsaBits?: number;
  /** Key types refused cluster-wide, whatever the profile allows. */
  readonly forbiddenKeyTypes?: readonly CsrKeyType[];
}

/**
 * What one requester (an account) may ask for: this is the outcome of account registration and
 * of domain-control validation, supplied by the state — `checkRequest` only decides.
 */
export interface Requester {
  readonly account: string;
  readonly profiles: readonly ProfileName[];
  /** DNS zones whose names (the zone and everything below it) the account may request. */
  readonly dnsZones: readonly string[];
  /** Whether the account may request wildcard names (in zones it holds). */
  readonly wildcards: boolean;
  /**
   * Whether the account may also request DNS names outside `dnsZones` (external domain names;
   * wildcards still only with `wildcards`). Absent: false. Only for accounts whose names need
   * proof of control (a `requireDcv` grant, docs/ca.md "Names and grants").
   */
  readonly externalDns?: boolean;
  /** IP addresses or CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`). */
  readonly ipRanges: readonly string[];
  /** SPIFFE ID prefixes: an exact ID, or a prefix ending in `/` covering everything below. */
  readonly uriPrefixes: readonly string[];
}

export type Refusal =
  | { readonly code: 'profile_not_allowed'; readonly profile: ProfileName }
  | {
      readonly code: 'key_type_not_allowed';
      readonly profile: ProfileName;
      readonly keyType: CsrKeyType;
    }
  | { readonly code: 'key_too_weak'; readonly bits: number; readonly min: number }
  | { readonly code: 'falcon_key_required'; readonly profile: ProfileName }
  | { readonly code: 'no_names' }
  | {
      readonly code: 'name_kind_not_allowed';
      readonly profile: ProfileName;
      readonly kind: NameKind;
    }
  | {
      readonly code: 'uri_count';
      readonly profile: ProfileName;
      readonly count: number;
      readonly expected: 'one' | 'at-most-one';
    }
  | {
      readonly code: 'uri_role_not_allowed';
      readonly profile: ProfileName;
      readonly uri: string;
      readonly roles: readonly string[];
    }
  | { readonly code: 'wrong_cluster'; readonly uri: string; readonly cluster: string }
  | { readonly code: 'wildcard_not_allowed'; readonly name: string }
  | { readonly code: 'name_not_allowed'; readonly kind: NameKind; readonly name: string }
  | { readonly code: 'lifetime_too_long'; readonly requested: number; readonly max: number }
  | { readonly code: 'lifetime_too_short'; readonly requested: number; readonly min: number };

export type RequestDecision =
  | { readonly ok: true; readonly lifetimeSeconds: number }
  | { readonly ok: false; readonly refusals: readonly Refusal[] };

/**
 * Applies `policy` for `requester` to a parsed request. Returns every refusal (in a fixed
 * order: profile, key, names, lifetime), or the lifetime the certificate gets: the requested
 * one, or the profile's maximum when none was requested.
 */
export function checkRequest(
  request: CertificateRequest,
  policy: IssuancePolicy,
  requester: Requester,
): RequestDecision {
  const profile = PROFILES[request.profile];
  const refusals: Refusal[] = [];
  if (!requester.profiles.includes(profile.name)) {
    refusals.push({ code: 'profile_not_allowed', profile: profile.name });
  }
  const keyType = request.csr.keyType;
  if (!profile.keyTypes.includes(keyType) || policy.forbiddenKeyTypes?.includes(keyType)) {
    refusals.push({ code: 'key_type_not_allowed', profile: profile.name, keyType });
  }
  const minRsaBits = Math.max(2048, policy.minRsaBits ?? 2048);
  if (request.csr.rsaBits !== null && request.csr.rsaBits < minRsaBits) {
    refusals.push({ code: 'key_too_weak', bits: request.csr.rsaBits, min: minRsaBits });
  }
  if (profile.falconKey === 'required' && request.falcon === null) {
    refusals.push({ code: 'falcon_key_required', profile: profile.name });
  }

  const { dnsNames, ipAddresses, uris } = request;
  if (dnsNames.length + ipAddresses.length + uris.length === 0) refusals.push({ code: 'no_names' });
  if (!profile.dnsNames && dnsNames.length > 0) {
    refusals.push({ code: 'name_kind_not_allowed', profile: profile.name, kind: 'dns' });
  }
  if (!profile.ipAddresses && ipAddresses.length > 0) {
    refusals.push({ code: 'name_kind_not_allowed', profile: profile.name, kind: 'ip' });
  }
  if ((profile.uris === 'one' && uris.length !== 1) || uris.length > 1) {
    refusals.push({
      code: 'uri_count',
      profile: profile.name,
      count: uris.length,
      expected: profile.uris,
    });
  }
  for (const name of dnsNames) {
    if (isWildcard(name) && !(profile.wildcards && requester.wildcards)) {
      refusals.push({ code: 'wildcard_not_allowed', name });
    } else if (
      requester.externalDns !== true &&
      !requester.dnsZones.some((zone) => isWithinZone(wildcardBase(name), zone))
    ) {
      refusals.push({ code: 'name_not_allowed', kind: 'dns', name });
    }
  }
  for (const ip of ipAddresses) {
    if (!requester.ipRanges.some((range) => ipInRange(ip, range))) {
      refusals.push({ code: 'name_not_allowed', kind: 'ip', name: ip });
    }
  }
  const clusterPrefix = `spiffe://${policy.cluster}/`;
  for (const uri of uris) {
    if (!uri.startsWith(clusterPrefix)) {
      refusals.push({ code: 'wrong_cluster', uri, cluster: policy.cluster });
      continue;
    }
    if (profile.uriRoles !== null) {
      const segments = uri.slice(clusterPrefix.length).split('/');
      // STOQ reads `<role>/<name>` with a name of at most 64 characters (src/crypto/x509.ts).
      if (
        segments.length !== 2 ||
        !profile.uriRoles.includes(segments[0] as string) ||
        (segments[1] as string).length > 64
      ) {
        refusals.push({
          code: 'uri_role_not_allowed',
          profile: profile.name,
          uri,
          roles: profile.uriRoles,
        });
      }
    }
    const allowed = requester.uriPrefixes.some((prefix) =>
      prefix.endsWith('/') ? uri.startsWith(prefix) && uri.length > prefix.length : uri === prefix,
    );
    if (!allowed) refusals.push({ code: 'name_not_allowed', kind: 'uri', name: uri });
  }

  const max = policy.maxLifetimeSeconds?.[profile.name] ?? profile.maxLifetimeSeconds;
  const lifetimeSeconds = request.lifetimeSeconds ?? max;
  if (lifetimeSeconds > max) {
    refusals.push({ code: 'lifetime_too_long', requested: lifetimeSeconds, max });
  } else if (lifetimeSeconds < profile.minLifetimeSeconds) {
    refusals.push({
      code: 'lifetime_too_short',
      requested: lifetimeSeconds,
      min: profile.minLifetimeSeconds,
    });
  }
  return refusals.length === 0 ? { ok: true, lifetimeSeconds } : { ok: false, refusals };
}
