import {
  DnsError,
  ROOT_KEY,
  isWildcardKey,
  keyToName,
  keyToWire,
  nameKey,
  parentKey,
} from '../dns/index.js';
import { DnsZonesError, DnsZonesErrorCode } from './errors.js';

/**
 * Names as the module handles them. Bodies and stored zone parameters carry **canonical name
 * text**: lowercase, with the trailing dot, escaped as `keyToName` escapes (so each name has one
 * encoding in a signed body). State keys carry the name's **wire form** (lowercase, uncompressed,
 * at most 255 bytes), which is the DNS core's key as bytes.
 */

/** Longest name text read (255 wire bytes written with `\DDD` escapes). */
export const MAX_NAME_TEXT = 1024;

export interface CheckedName {
  /** Canonical presentation text (`www.hypermesh.`). */
  readonly text: string;
  /** The DNS core's key: lowercase wire form as latin1. */
  readonly key: string;
  /** The wire form as bytes (what state keys hold). */
  readonly wire: Uint8Array;
}

function invalid(field: string, message: string, code: DnsZonesErrorCode): never {
  throw new DnsZonesError(code, `${field}: ${message}`, { field });
}

/**
 * Checks that `value` is a non-root domain name in canonical text and returns its forms. Throws
 * `DnsZonesError` with `code` (default INVALID_NAME) naming `field`.
 */
export function checkName(
  value: unknown,
  field: string,
  code: DnsZonesErrorCode = DnsZonesErrorCode.INVALID_NAME,
): CheckedName {
  if (typeof value !== 'string') return invalid(field, 'expected a domain name as text', code);
  if (value.length > MAX_NAME_TEXT) {
    return invalid(field, `${value.length} characters, above ${MAX_NAME_TEXT}`, code);
  }
  let key: string;
  try {
    key = nameKey(value);
  } catch (error) {
    if (!(error instanceof DnsError)) throw error;
    return invalid(field, error.message, code);
  }
  if (key === ROOT_KEY) return invalid(field, 'the root is not allowed here', code);
  const text = keyToName(key);
  if (text !== value) {
    return invalid(
      field,
      `${JSON.stringify(value.slice(0, 80))} is not in canonical form; write ${JSON.stringify(text.slice(0, 80))} (lowercase, trailing dot)`,
      code,
    );
  }
  return { text, key, wire: keyToWire(key) };
}

/** The forms of a name given as any presentation text (queries accept any case). */
export function anyName(value: string): CheckedName {
  const key = nameKey(value);
  return { text: keyToName(key), key, wire: keyToWire(key) };
}

export function nameFromWire(wire: Uint8Array): CheckedName {
  const key = Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength).toString('latin1');
  return { text: keyToName(key), key, wire };
}

export function nameFromKey(key: string): CheckedName {
  return { text: keyToName(key), key, wire: keyToWire(key) };
}

/** Whether the name's leftmost label is `*`. */
export function isWildcard(name: CheckedName): boolean {
  return isWildcardKey(name.key);
}

/** The keys strictly between `key` and `apexKey` (both excluded), nearest first. */
export function keysBetween(key: string, apexKey: string): string[] {
  const out: string[] = [];
  for (let k = parentKey(key); k !== apexKey && k !== ROOT_KEY; k = parentKey(k)) out.push(k);
  return out;
}
