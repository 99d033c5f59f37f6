import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { ProblemType, malformed, problem } from './problems.js';
import { isSmallOrderEd25519Key } from '../../crypto/ed25519.js';

/**
 * JSON Web Signatures as RFC 8555 §6.2 uses them: the flattened JSON serialization (RFC 7515
 * §7.2.2) only, a protected header with `alg`, `nonce`, `url` and exactly one of `jwk` / `kid`,
 * and three algorithms — ES256 (P-256, RFC 7518 §3.4), EdDSA with Ed25519 (RFC 8037) and RS256
 * (RFC 7518 §3.3). MAC algorithms and `none` are refused (RFC 8555 §6.2). Everything here is
 * pure: the server supplies the nonce check and the account lookup.
 */

export const SUPPORTED_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const;
export type JwsAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 8192;

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64url (RFC 7515 §2): no padding, no other characters, canonical trailing bits. */
export function decodeBase64Url(text: string, what: string): Buffer {
  if (typeof text !== 'string' || !BASE64URL.test(text) || text.length % 4 === 1) {
    throw malformed(`${what} is not base64url`);
  }
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.toString('base64url') !== text) throw malformed(`${what} is not canonical base64url`);
  return bytes;
}

export function encodeBase64Url(bytes: Uint8Array | string): string {
  return Buffer.from(bytes).toString('base64url');
}

const ecJwk = z.strictObject({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: z.string().max(64),
  y: z.string().max(64),
  alg: z.string().max(16).optional(),
  use: z.literal('sig').optional(),
});
const okpJwk = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string().max(64),
  alg: z.string().max(16).optional(),
  use: z.literal('sig').optional(),
});
const rsaJwk = z.strictObject({
  kty: z.literal('RSA'),
  n: z.string().max(2048),
  e: z.string().max(16),
  alg: z.string().max(16).optional(),
  use: z.literal('sig').optional(),
});

/** A verified public key from a JWK, in its canonical members (RFC 7638 §3.2). */
export interface AccountKey {
  readonly algorithm: JwsAlgorithm;
  readonly key: KeyObject;
  /** The required members only, as stored and as hashed for the thumbprint. */
  readonly jwk: Readonly<Record<string, string>>;
  /** RFC 7638 SHA-256 thumbprint, base64url. */
  readonly thumbprint: string;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** RFC 7638: the required members in lexicographic order, no whitespace, SHA-256, base64url. */
export function jwkThumbprint(jwk: Readonly<Record<string, string>>): string {
  const members = Object.keys(jwk).sort();
  const canonical = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`;
  return encodeBase64Url(createHash('sha256').update(canonical, 'utf8').digest());
}

/**
 * Parses a JWK into a public key. Key problems (private members, a point not on the curve, a
 * weak RSA key) are `badPublicKey`; an unknown key type is `badSignatureAlgorithm`.
 */
export function parseJwk(input: unknown): AccountKey {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw malformed('jwk is not a JSON object');
  }
  const record = input as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((member) => member in record)) {
    throw problem(ProblemType.badPublicKey, 'the jwk contains private key material');
  }
  const kty = record.kty;
  let algorithm: JwsAlgorithm;
  let jwk: Record<string, string>;
  if (kty === 'EC') {
    const parsed = ecJwk.safeParse(record);
    if (!parsed.success) throw badKey('an EC jwk must be P-256 with members crv, x, y');
    const x = decodeBase64Url(parsed.data.x, 'jwk.x');
    const y = decodeBase64Url(parsed.data.y, 'jwk.y');
    if (x.length !== 32 || y.length !== 32) throw badKey('P-256 coordinates must be 32 bytes');
    algorithm = 'ES256';
    jwk = { crv: 'P-256', kty: 'EC', x: parsed.data.x, y: parsed.data.y };
  } else if (kty === 'OKP') {
    const parsed = okpJwk.safeParse(record);
    if (!parsed.success) throw badKey('an OKP jwk must be Ed25519 with member x');
    const raw = decodeBase64Url(parsed.data.x, 'jwk.x');
    if (raw.length !== 32) throw badKey('an Ed25519 key must be 32 bytes');
    // OpenSSL accepts signatures under a small-order key for any message (crypto/ed25519.ts).
    if (isSmallOrderEd25519Key(raw)) throw badKey('the Ed25519 key is a small-order point');
    algorithm = 'EdDSA';
    jwk = { crv: 'Ed25519', kty: 'OKP', x: parsed.data.x };
  } else if (kty === 'RSA') {
    const parsed = rsaJwk.safeParse(record);
    if (!parsed.success) throw badKey('an RSA jwk must have members n and e');
    const n = decodeBase64Url(parsed.data.n, 'jwk.n');
    const e = decodeBase64Url(parsed.data.e, 'jwk.e');
    // RFC 7518 §6.3.1: minimal octets, so one key has one thumbprint.
    if (n.length === 0 || n[0] === 0 || e.length === 0 || e[0] === 0) {
      throw badKey('RSA n and e must be unsigned big-endian integers without leading zeros');
    }
    const bits = n.length * 8 - Math.clz32(n[0] as number) + 24;
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
      throw badKey(`RSA keys must have ${MIN_RSA_BITS}–${MAX_RSA_BITS} bits, got ${bits}`);
    }
    const exponent = e.length > 6 ? Number.MAX_SAFE_INTEGER : e.readUIntBE(0, e.length);
    if (exponent % 2 === 0 || exponent < 65537) {
      throw badKey('the RSA public exponent must be odd and at least 65537');
    }
    algorithm = 'RS256';
    jwk = { e: parsed.data.e, kty: 'RSA', n: parsed.data.n };
  } else {
    throw problem(ProblemType.badSignatureAlgorithm, 'jwk key type must be EC, OKP or RSA', {
      algorithms: SUPPORTED_ALGORITHMS,
    });
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    throw badKey('the jwk is not a valid public key');
  }
  return { algorithm, key, jwk, thumbprint: jwkThumbprint(jwk) };
}

function badKey(message: string) {
  return problem(ProblemType.badPublicKey, message);
}

/** The canonical JWK of a public key object (for a certificate key in revokeCert). */
export function keyObjectJwk(key: KeyObject): Record<string, string> | null {
  try {
    const exported = key.export({ format: 'jwk' });
    if (exported.kty === 'EC' && exported.crv === 'P-256') {
      return { crv: 'P-256', kty: 'EC', x: String(exported.x), y: String(exported.y) };
    }
    if (exported.kty === 'OKP' && exported.crv === 'Ed25519') {
      return { crv: 'Ed25519', kty: 'OKP', x: String(exported.x) };
    }
    if (exported.kty === 'RSA') return { e: String(exported.e), kty: 'RSA', n: String(exported.n) };
  } catch {
    return null;
  }
  return null;
}

const flattened = z.strictObject({
  protected: z.string().min(1).max(16_384),
  payload: z.string(),
  signature: z.string().min(1).max(2_048),
});

const protectedHeader = z.strictObject({
  alg: z.string().max(32),
  nonce: z.string().min(1).max(256).optional(),
  url: z.string().min(1).max(2_048),
  jwk: z.record(z.string(), z.unknown()).optional(),
  kid: z.string().min(1).max(2_048).optional(),
});

export type ProtectedHeader = z.infer<typeof protectedHeader>;

/** A decoded, not yet verified, flattened JWS. */
export interface ParsedJws {
  readonly header: ProtectedHeader;
  readonly protectedText: string;
  readonly payloadText: string;
  /** The decoded payload; empty for POST-as-GET. */
  readonly payload: Buffer;
  readonly signature: Buffer;
}

function parseJsonObject(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed(`${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed(`${what} is not a JSON object`);
  }
  return value;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Decodes a request body as a flattened JWS and checks the protected header's shape
 * (RFC 8555 §6.2): `alg` is a supported asymmetric algorithm, `url` is present, and exactly one
 * of `jwk` / `kid`. Nonce and URL values are the server's to check.
 */
export function parseJws(body: string): ParsedJws {
  const outer = flattened.safeParse(parseJsonObject(body, 'request body'));
  if (!outer.success) {
    throw malformed(
      `request body is not a flattened JWS with exactly protected, payload, signature: ${describeIssues(outer.error)}`,
    );
  }
  const protectedText = outer.data.protected;
  const headerJson = decodeBase64Url(protectedText, 'protected header').toString('utf8');
  const header = protectedHeader.safeParse(parseJsonObject(headerJson, 'protected header'));
  if (!header.success) {
    throw malformed(`protected header is malformed: ${describeIssues(header.error)}`);
  }
  if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(header.data.alg)) {
    throw problem(
      ProblemType.badSignatureAlgorithm,
      `JWS algorithm ${JSON.stringify(header.data.alg)} is not supported`,
      { algorithms: SUPPORTED_ALGORITHMS },
    );
  }
  if ((header.data.jwk === undefined) === (header.data.kid === undefined)) {
    throw malformed('the protected header must contain exactly one of jwk and kid');
  }
  return {
    header: header.data,
    protectedText,
    payloadText: outer.data.payload,
    payload: decodeBase64Url(outer.data.payload, 'payload'),
    signature: decodeBase64Url(outer.data.signature, 'signature'),
  };
}

/** Checks the JWS signature with `key`; the header's `alg` must be the key's algorithm. */
export function verifyJwsSignature(jws: ParsedJws, key: AccountKey): void {
  if (jws.header.alg !== key.algorithm) {
    throw problem(
      ProblemType.badSignatureAlgorithm,
      `JWS algorithm ${jws.header.alg} does not match the ${key.jwk.kty} key (expected ${key.algorithm})`,
      { algorithms: SUPPORTED_ALGORITHMS },
    );
  }
  const signingInput = Buffer.from(`${jws.protectedText}.${jws.payloadText}`, 'ascii');
  let ok = false;
  try {
    if (key.algorithm === 'ES256') {
      ok =
        jws.signature.length === 64 &&
        verify('sha256', signingInput, { key: key.key, dsaEncoding: 'ieee-p1363' }, jws.signature);
    } else if (key.algorithm === 'EdDSA') {
      ok = jws.signature.length === 64 && verify(null, signingInput, key.key, jws.signature);
    } else {
      const modulusBytes = Math.ceil((key.key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
      ok =
        jws.signature.length === modulusBytes &&
        verify('sha256', signingInput, key.key, jws.signature);
    }
  } catch {
    ok = false;
  }
  if (!ok) throw malformed('JWS signature verification failed');
}

/** The payload as a JSON object (for requests that are not POST-as-GET). */
export function jsonPayload(jws: ParsedJws): unknown {
  if (jws.payload.length === 0) throw malformed('this request needs a JSON payload');
  return parseJsonObject(jws.payload.toString('utf8'), 'payload');
}

/** Parses `input` with `schema`, refusing with `malformed` and the first issues. */
export function parsePayload<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw malformed(`${what}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
