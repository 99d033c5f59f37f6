import { createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { HyperMeshError } from '../../codec/error.js';
import { generateP256KeyPair, p256RawPublicKey } from '../../crypto/p256.js';
import { WireWriter } from './buffer.js';
import { CLASS_IN } from './constants.js';
import { canonicalName, nameKey } from './names.js';
import { MAX_TTL } from './records.js';
import type { DnskeyData, DsData, KnownRecord } from './records.js';

/**
 * DNSSEC keys (RFC 4034 §2, RFC 6605): the zone's DNSKEY, its key tag (RFC 4034 Appendix B),
 * the DS record the parent publishes (RFC 4034 §5, RFC 4509 digest type 2), and their
 * presentation text for operators (`hypermesh dns ds`) and validators (a trust-anchor file).
 */

export enum DnssecErrorCode {
  /** A key that is not a P-256 private key, or DNSKEY data of another algorithm. */
  KEY_INVALID = 'DNSSEC_KEY_INVALID',
  /** A DS digest type other than 2 (SHA-256) or 4 (SHA-384). */
  DIGEST_UNSUPPORTED = 'DNSSEC_DIGEST_UNSUPPORTED',
  /** Signing windows out of range (negative, refresh margin not below the validity...). */
  POLICY_INVALID = 'DNSSEC_POLICY_INVALID',
  /** RRSIG or NSEC records handed to a signed zone: the signer makes those itself. */
  GENERATED_TYPE = 'DNSSEC_GENERATED_TYPE',
  /** A signer used for a zone whose apex is not the signer's. */
  APEX_MISMATCH = 'DNSSEC_APEX_MISMATCH',
}

export class DnssecError extends HyperMeshError<DnssecErrorCode> {}

/** RFC 8624 §3.1: ECDSA P-256 with SHA-256, the algorithm this server signs with. */
export const ALGORITHM_ECDSAP256SHA256 = 13;
/** RFC 4034 §2.1.1: Zone Key (bit 7). */
export const DNSKEY_FLAG_ZONE = 0x0100;
/** RFC 4034 §2.1.1 / RFC 3757: Secure Entry Point (bit 15), set on a KSK or a CSK. */
export const DNSKEY_FLAG_SEP = 0x0001;
/** Flags of a combined signing key: zone key and secure entry point (257). */
export const CSK_FLAGS = DNSKEY_FLAG_ZONE | DNSKEY_FLAG_SEP;
/** RFC 4034 §2.1.2: the protocol field is always 3. */
export const DNSKEY_PROTOCOL = 3;
/** RFC 4509: SHA-256 DS digests. */
export const DIGEST_SHA256 = 2;
/** RFC 6605 §2: SHA-384 DS digests. */
export const DIGEST_SHA384 = 4;

const DIGESTS: ReadonlyMap<number, string> = new Map([
  [DIGEST_SHA256, 'sha256'],
  [DIGEST_SHA384, 'sha384'],
]);

/** A private key the zone signs with, and the DNSKEY that publishes it. */
export interface DnssecSigningKey {
  readonly privateKey: KeyObject;
  readonly dnskey: DnskeyData;
  readonly keyTag: number;
}

/** The DNSKEY RDATA (flags, protocol, algorithm, public key), as hashed and tagged. */
export function dnskeyRdata(dnskey: DnskeyData): Uint8Array {
  const w = new WireWriter(4 + dnskey.publicKey.length);
  w.u16(dnskey.flags);
  w.u8(dnskey.protocol);
  w.u8(dnskey.algorithm);
  w.bytes(dnskey.publicKey);
  return w.finish();
}

/** RFC 4034 Appendix B key tag of a DNSKEY (B.1 for the obsolete algorithm 1). */
export function keyTag(dnskey: DnskeyData): number {
  const rdata = dnskeyRdata(dnskey);
  if (dnskey.algorithm === 1) {
    // B.1: the most significant 16 of the least significant 24 bits of the RSA modulus.
    const n = rdata.length;
    return n < 7 ? 0 : (rdata[n - 3]! << 8) | rdata[n - 2]!;
  }
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i]! : rdata[i]! << 8;
  ac += Math.floor(ac / 0x10000) % 0x10000;
  return ac % 0x10000;
}

/**
 * The DNSKEY for a P-256 key: RFC 6605 §4 public key `x || y` (64 bytes, no SEC1 prefix).
 * `flags` defaults to 257, a combined signing key (see docs/dns.md, DNSSEC).
 */
export function p256Dnskey(key: KeyObject, flags: number = CSK_FLAGS): DnskeyData {
  let point: Uint8Array;
  try {
    point = p256RawPublicKey(key);
  } catch (error) {
    throw new DnssecError(
      DnssecErrorCode.KEY_INVALID,
      'expected a P-256 key',
      {},
      { cause: error },
    );
  }
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff || (flags & DNSKEY_FLAG_ZONE) === 0) {
    throw new DnssecError(
      DnssecErrorCode.KEY_INVALID,
      `DNSKEY flags ${flags}: a zone-signing key needs the Zone Key bit (256)`,
      { flags },
    );
  }
  return {
    flags,
    protocol: DNSKEY_PROTOCOL,
    algorithm: ALGORITHM_ECDSAP256SHA256,
    publicKey: point.subarray(1),
  };
}

/** The signing key for a P-256 private key (KeyObject), published with `flags` (default 257). */
export function signingKeyFromP256(
  privateKey: KeyObject,
  flags: number = CSK_FLAGS,
): DnssecSigningKey {
  if (privateKey.type !== 'private') {
    throw new DnssecError(DnssecErrorCode.KEY_INVALID, 'expected a P-256 private key');
  }
  const dnskey = p256Dnskey(createPublicKey(privateKey), flags);
  return { privateKey, dnskey, keyTag: keyTag(dnskey) };
}

/** A fresh P-256 combined signing key. */
export function generateSigningKey(flags: number = CSK_FLAGS): DnssecSigningKey {
  return signingKeyFromP256(generateP256KeyPair().privateKey, flags);
}

/** RFC 4034 §5.1.4: digest = hash(owner in canonical wire form || DNSKEY RDATA). */
export function dsFromDnskey(
  owner: string,
  dnskey: DnskeyData,
  digestType: number = DIGEST_SHA256,
): DsData {
  const hash = DIGESTS.get(digestType);
  if (hash === undefined) {
    throw new DnssecError(
      DnssecErrorCode.DIGEST_UNSUPPORTED,
      `DS digest type ${digestType}: only 2 (SHA-256) and 4 (SHA-384) are made (RFC 8624 §3.3)`,
      { digestType },
    );
  }
  const digest = createHash(hash)
    .update(Buffer.from(nameKey(owner), 'latin1'))
    .update(dnskeyRdata(dnskey))
    .digest();
  return {
    keyTag: keyTag(dnskey),
    algorithm: dnskey.algorithm,
    digestType,
    digest: new Uint8Array(digest),
  };
}

/** The DS as a record (owner lowercased), e.g. to put in a parent zone this server also holds. */
export function dsRecord(
  owner: string,
  dnskey: DnskeyData,
  ttl = 3600,
  digestType: number = DIGEST_SHA256,
): KnownRecord<'DS'> {
  checkTtl(ttl);
  return {
    name: canonicalName(owner),
    type: 'DS',
    class: CLASS_IN,
    ttl,
    data: dsFromDnskey(owner, dnskey, digestType),
  };
}

function checkTtl(ttl: number): void {
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL) {
    throw new DnssecError(DnssecErrorCode.POLICY_INVALID, `TTL ${ttl} is not in 0..${MAX_TTL}`, {
      ttl,
    });
  }
}

/** RFC 4034 §5.3 presentation form: `hypermesh. 3600 IN DS 41093 13 2 6E57…` (hex uppercase). */
export function formatDs(owner: string, ds: DsData, ttl = 3600): string {
  checkTtl(ttl);
  const hex = Buffer.from(ds.digest).toString('hex').toUpperCase();
  return `${canonicalName(owner)} ${ttl} IN DS ${ds.keyTag} ${ds.algorithm} ${ds.digestType} ${hex}`;
}

/** The DS record text for the parent zone of `owner` (what `hypermesh dns ds` prints). */
export function dsText(
  owner: string,
  dnskey: DnskeyData,
  ttl = 3600,
  digestType: number = DIGEST_SHA256,
): string {
  return formatDs(owner, dsFromDnskey(owner, dnskey, digestType), ttl);
}

/** RFC 4034 §2.2 presentation form: `hypermesh. 3600 IN DNSKEY 257 3 13 <base64>`. */
export function formatDnskey(owner: string, dnskey: DnskeyData, ttl = 3600): string {
  checkTtl(ttl);
  const key = Buffer.from(dnskey.publicKey).toString('base64');
  return `${canonicalName(owner)} ${ttl} IN DNSKEY ${dnskey.flags} ${dnskey.protocol} ${dnskey.algorithm} ${key}`;
}

/**
 * A BIND `trust-anchors` clause pinning the key (`delv -a <file> +root=<zone>`, or a resolver's
 * configuration): the cluster's trust anchor for a zone whose parent is not signed.
 */
export function bindTrustAnchor(owner: string, dnskey: DnskeyData): string {
  const key = Buffer.from(dnskey.publicKey).toString('base64');
  const name = canonicalName(owner);
  return `trust-anchors {\n  "${name}" static-key ${dnskey.flags} ${dnskey.protocol} ${dnskey.algorithm} "${key}";\n};\n`;
}
