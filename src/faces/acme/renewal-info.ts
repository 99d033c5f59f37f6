import { DerError, TAG, children, contentOf, expect, readWhole } from '../../crypto/der.js';
import type { ParsedCertificate } from '../../crypto/x509.js';
import { decodeBase64Url, encodeBase64Url } from './jws.js';
import { malformed } from './problems.js';

/**
 * ACME Renewal Information (RFC 9773): the certificate identifier clients name a certificate by
 * (§4.1), the renewal window this server suggests for it (§4.2) and the polling interval it
 * sends with it. Pure functions; service.ts looks certificates up and server.ts serves them.
 *
 * The window rule: a certificate's window opens when 2/3 of its validity has passed (the same
 * fraction as a node's own `identity.renewAt` default, src/node/cert-renewal.ts) and closes at
 * 5/6, leaving the last sixth for retries. A revoked certificate gets a window that has already
 * closed, which tells a client to renew at once (§4.2: a selected time in the past means renew
 * immediately). The end is always after the start (§4.2: a server MUST NOT serve otherwise).
 */

/** Fraction of the validity after which the suggested window opens, as [numerator, denominator]. */
export const RENEWAL_WINDOW_START: readonly [number, number] = [2, 3];
/** Fraction of the validity at which the suggested window closes. */
export const RENEWAL_WINDOW_END: readonly [number, number] = [5, 6];
/** Bounds of the `Retry-After` polling interval (seconds). */
export const MIN_RETRY_AFTER_SECONDS = 60;
export const MAX_RETRY_AFTER_SECONDS = 6 * 3600;
/** Longest certID accepted: 64-byte key identifier plus a 20-octet serial (RFC 5280 §4.1.2.2), with room. */
export const MAX_CERT_ID_LENGTH = 200;

const AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
/** `keyIdentifier [0] IMPLICIT OCTET STRING` inside AuthorityKeyIdentifier (RFC 5280 §4.2.1.1). */
const KEY_IDENTIFIER_TAG = 0x80;

/** A parsed RFC 9773 §4.1 certificate identifier. */
export interface CertId {
  /** The keyIdentifier of the certificate's AuthorityKeyIdentifier extension. */
  readonly keyIdentifier: Uint8Array;
  /** The serial number's DER content octets (a minimal, non-negative INTEGER). */
  readonly serialDer: Uint8Array;
  /** The serial as `ParsedCertificate.serialNumber` writes it: lowercase hex, no leading zero byte. */
  readonly serialHex: string;
}

/**
 * Parses `base64url(keyIdentifier) "." base64url(serial)` (RFC 9773 §4.1) strictly: canonical
 * unpadded base64url, both parts non-empty, the serial a minimal DER encoding of a non-negative
 * integer. So each certificate has exactly one certID string. Anything else is `malformed`.
 */
export function parseCertId(text: string): CertId {
  if (text.length > MAX_CERT_ID_LENGTH) {
    throw malformed(`the certID is longer than ${MAX_CERT_ID_LENGTH} characters`);
  }
  const parts = text.split('.');
  if (parts.length !== 2) {
    throw malformed('a certID is base64url(keyIdentifier) "." base64url(serial) (RFC 9773 §4.1)');
  }
  const [akiText = '', serialText = ''] = parts;
  if (akiText === '' || serialText === '') {
    throw malformed('both parts of a certID must be non-empty (RFC 9773 §4.1)');
  }
  const keyIdentifier = new Uint8Array(decodeBase64Url(akiText, 'the certID keyIdentifier'));
  const serialDer = new Uint8Array(decodeBase64Url(serialText, 'the certID serial'));
  const first = serialDer[0] as number;
  if (first & 0x80) throw malformed('the certID serial is negative');
  if (first === 0 && serialDer.length > 1 && !((serialDer[1] as number) & 0x80)) {
    throw malformed('the certID serial is not a minimal DER INTEGER');
  }
  const serialHex = Buffer.from(serialDer)
    .toString('hex')
    .replace(/^(?:00)+(?=.)/, '');
  return { keyIdentifier, serialDer, serialHex };
}

/** The keyIdentifier of a certificate's AuthorityKeyIdentifier extension, or null when absent. */
export function authorityKeyIdentifier(certificate: ParsedCertificate): Uint8Array | null {
  const extension = certificate.extensions.find((e) => e.oid === AUTHORITY_KEY_IDENTIFIER);
  if (extension === undefined) return null;
  try {
    const bytes = extension.value;
    const fields = children(
      bytes,
      expect(readWhole(bytes), TAG.sequence, 'AuthorityKeyIdentifier'),
    );
    const keyId = fields.find((field) => field.tag === KEY_IDENTIFIER_TAG);
    return keyId === undefined ? null : contentOf(bytes, keyId).slice();
  } catch (error) {
    if (error instanceof DerError) return null;
    throw error;
  }
}

/** The serial's DER INTEGER content octets from `ParsedCertificate.serialNumber` hex. */
export function serialDerOf(serialHex: string): Uint8Array {
  const bytes = Buffer.from(serialHex.length % 2 === 1 ? `0${serialHex}` : serialHex, 'hex');
  return (bytes[0] as number) & 0x80 ? new Uint8Array([0, ...bytes]) : new Uint8Array(bytes);
}

/** The RFC 9773 §4.1 certID of a certificate, or null when it has no AKI keyIdentifier. */
export function certIdOf(certificate: ParsedCertificate): string | null {
  const keyId = authorityKeyIdentifier(certificate);
  if (keyId === null) return null;
  return `${encodeBase64Url(keyId)}.${encodeBase64Url(serialDerOf(certificate.serialNumber))}`;
}

export interface RenewalWindow {
  readonly startMs: number;
  readonly endMs: number;
}

/** The suggested window (see the rule above); `nowMs` only matters for a revoked certificate. */
export function suggestedWindow(
  validity: { readonly notBefore: Date; readonly notAfter: Date },
  revoked: boolean,
  nowMs: number,
): RenewalWindow {
  if (revoked) return { startMs: nowMs - 60_000, endMs: nowMs - 1_000 };
  const from = validity.notBefore.getTime();
  const lifetime = validity.notAfter.getTime() - from;
  // Integer arithmetic, so that a whole-second validity gives exact instants (no 0.999… ms).
  const at = ([numerator, denominator]: readonly [number, number]): number =>
    from + Math.floor((lifetime * numerator) / denominator);
  const startMs = at(RENEWAL_WINDOW_START);
  const endMs = at(RENEWAL_WINDOW_END);
  // Never an empty window, even for a (never issued) lifetime of a few milliseconds.
  return endMs > startMs ? { startMs, endMs } : { startMs, endMs: startMs + 1_000 };
}

/**
 * Seconds a client should wait before asking again: a quarter of the window (so a client
 * polling at this rate looks several times inside it), at least a minute, at most six hours.
 */
export function retryAfterSeconds(window: RenewalWindow): number {
  const quarter = Math.floor((window.endMs - window.startMs) / 4_000);
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(MIN_RETRY_AFTER_SECONDS, quarter));
}

/** The RenewalInfo object of RFC 9773 §4.2. */
export function renewalInfoObject(window: RenewalWindow) {
  return {
    suggestedWindow: {
      start: new Date(window.startMs).toISOString(),
      end: new Date(window.endMs).toISOString(),
    },
  };
}
