import { z } from 'zod';
import { encodeCanonical } from '../../codec/cbor.js';
import { bytes } from '../../codec/schema.js';
import type { ModuleStateReader } from '../../consensus/application/module.js';
import { bytesEqual, concatBytes } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { decodeWith } from './state.js';

/**
 * Compromised subject keys (CA/Browser Forum Baseline Requirements §4.9.1.1 items 3 and 4, and
 * §6.1.1.3: a CA revokes every certificate of a key shown to be compromised and refuses the key
 * afterwards). Two kinds of state, both keyed by the SHA-256 of the subject's
 * SubjectPublicKeyInfo (`subjectKeyHash`):
 *
 *   ca/key-compromised/<32-byte hash>  the keyCompromise revocation that marked the key:
 *                                      serial, height, time
 *   ca/key-certs/<32-byte hash>        the unexpired certificates issued through the module for
 *                                      the key: serial and notAfter, in issuance order, at most
 *                                      `MAX_CERTIFICATES_PER_KEY`
 *
 * Both are consensus rules (module.ts): every issuance is refused for a marked key, a
 * keyCompromise revocation revokes the key's other certificates in the same transaction, and a
 * publication revokes at once any certificate of the block whose key was marked meanwhile.
 */

/**
 * Certificates a key's index keeps: its latest unexpired, unrevoked ones. An issuance beyond it
 * drops the oldest from the index (the certificate itself stays valid), so an issuance
 * rewrites at most ~7 KiB of index and a keyCompromise revocation revokes at most this many
 * certificates (each a revoked-list page write, ≤ ~4.4 KiB). Issuance is never refused for it:
 * anyone may get certificates for another's key (a requested CSR is public), and a cap would let
 * them use up the holder's. Part of the state layout, so a consensus rule.
 */
export const MAX_CERTIFICATES_PER_KEY = 256;

const encoder = new TextEncoder();
const COMPROMISED = encoder.encode('key-compromised/');
const KEY_CERTS = encoder.encode('key-certs/');

export const compromisedKeyKey = (keyHash: Uint8Array): Uint8Array =>
  concatBytes(COMPROMISED, keyHash);
export const keyCertificatesKey = (keyHash: Uint8Array): Uint8Array =>
  concatBytes(KEY_CERTS, keyHash);

/**
 * SHA-256 of the key's SubjectPublicKeyInfo DER. The bytes themselves name the key: the CSR
 * parser (trustchain/ca/csr.ts) admits exactly one encoding per key — strict DER, P-256 on the
 * named curve with an uncompressed point, Ed25519 in RFC 8410 form, RSA with NULL parameters
 * and only when OpenSSL's re-export of the key equals the input byte for byte (OpenSSL alone
 * reads the inner RSAPublicKey, and leniently) — which is the encoding OpenSSL itself writes,
 * and the genesis certificates carry keys OpenSSL exported. (Re-encoding every key here as
 * well cost ~9 % of a validator's time per certificate under load, for the same bytes.)
 * Deterministic: a pure function of the bytes.
 */
export function subjectKeyHash(spki: Uint8Array): Uint8Array {
  return sha256(spki);
}

export interface CompromisedKeyRecord {
  /** The certificate whose keyCompromise revocation marked the key. */
  readonly serial: Uint8Array;
  readonly height: number;
  readonly time: number;
}

export interface KeyCertificate {
  readonly serial: Uint8Array;
  /** notAfter (ms): the entry is dropped once a later issuance sees it expired. */
  readonly notAfter: number;
}

const uint = z.int().min(0);
const serial = bytes({ length: 16 });
const schemas = {
  compromised: z.strictObject({ sn: serial, h: uint, t: uint }),
  certificates: z
    .array(z.strictObject({ sn: serial, na: uint }))
    .min(1)
    .max(MAX_CERTIFICATES_PER_KEY),
};

export function encodeCompromisedKey(record: CompromisedKeyRecord): Uint8Array {
  return encodeCanonical({ sn: record.serial, h: record.height, t: record.time });
}

export function encodeKeyCertificates(entries: readonly KeyCertificate[]): Uint8Array {
  return encodeCanonical(entries.map((entry) => ({ sn: entry.serial, na: entry.notAfter })));
}

export function readCompromisedKey(
  state: ModuleStateReader,
  keyHash: Uint8Array,
): CompromisedKeyRecord | null {
  const value = state.get(compromisedKeyKey(keyHash));
  if (value === null) return null;
  const r = decodeWith(schemas.compromised, value, 'compromised key');
  return { serial: r.sn, height: r.h, time: r.t };
}

export function readKeyCertificates(
  state: ModuleStateReader,
  keyHash: Uint8Array,
): KeyCertificate[] {
  const value = state.get(keyCertificatesKey(keyHash));
  if (value === null) return [];
  return decodeWith(schemas.certificates, value, 'key certificates').map((entry) => ({
    serial: entry.sn,
    notAfter: entry.na,
  }));
}

/**
 * The key's index after an issuance of `added` at `time`: entries expired at `time` or revoked
 * (`isRevoked`) are dropped, then the oldest while more than `MAX_CERTIFICATES_PER_KEY` remain.
 */
export function withKeyCertificate(
  entries: readonly KeyCertificate[],
  added: KeyCertificate,
  time: number,
  isRevoked: (serial: Uint8Array) => boolean,
): KeyCertificate[] {
  const live = entries.filter(
    (entry) =>
      entry.notAfter > time && !isRevoked(entry.serial) && !bytesEqual(entry.serial, added.serial),
  );
  return [...live, added].slice(-MAX_CERTIFICATES_PER_KEY);
}
