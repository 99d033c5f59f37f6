import { DnsError, DnsErrorCode } from './errors.js';

/**
 * Domain names (RFC 1035 §2.3.4, §3.1, §5.1; RFC 4343 for case). Names cross the public API as
 * presentation text (`www.example.com.`, escapes `\.` `\\` `\DDD`); every name is absolute and
 * the trailing dot is optional on input. Inside the core a name is compared by its **key**: the
 * uncompressed wire form with ASCII letters lowercased, as a latin1 string (one character per
 * byte). A suffix of a key at a label boundary is the key of the ancestor, which makes walking
 * up the tree a matter of `key.slice(offset)`.
 */
export const MAX_LABEL_BYTES = 63;
export const MAX_NAME_BYTES = 255;
export const ROOT_NAME = '.';
/** The key of the root name. */
export const ROOT_KEY = '\0';

const BACKSLASH = 0x5c;
const DOT = 0x2e;
const ASTERISK = 0x2a;

function nameError(code: DnsErrorCode, message: string, text: string): DnsError {
  return new DnsError(code, message, { name: text });
}

/** The uncompressed wire form of a presentation name, case preserved. */
export function nameToWire(text: string): Uint8Array {
  if (text === ROOT_NAME) return Uint8Array.of(0);
  if (text.length === 0) {
    throw nameError(DnsErrorCode.NAME_EMPTY_LABEL, 'name: empty string (the root is ".")', text);
  }
  const out = new Uint8Array(MAX_NAME_BYTES + MAX_LABEL_BYTES + 2);
  let lengthAt = 0;
  let pos = 1;
  const closeLabel = (): void => {
    const length = pos - lengthAt - 1;
    if (length === 0) {
      throw nameError(
        DnsErrorCode.NAME_EMPTY_LABEL,
        `name ${JSON.stringify(text)}: empty label`,
        text,
      );
    }
    out[lengthAt] = length;
    lengthAt = pos;
    pos += 1;
  };
  const push = (byte: number): void => {
    if (pos - lengthAt - 1 === MAX_LABEL_BYTES) {
      throw nameError(
        DnsErrorCode.NAME_LABEL_TOO_LONG,
        `name ${JSON.stringify(text)}: a label is longer than ${MAX_LABEL_BYTES} bytes`,
        text,
      );
    }
    if (pos >= MAX_NAME_BYTES) {
      throw nameError(
        DnsErrorCode.NAME_TOO_LONG,
        `name: longer than ${MAX_NAME_BYTES} bytes in wire form`,
        text,
      );
    }
    out[pos++] = byte;
  };
  let i = 0;
  let endsWithDot = false;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    endsWithDot = c === DOT;
    if (c === DOT) {
      closeLabel();
      i += 1;
      continue;
    }
    if (c === BACKSLASH) {
      const next = text.charCodeAt(i + 1);
      if (Number.isNaN(next)) {
        throw nameError(
          DnsErrorCode.NAME_BAD_TEXT,
          `name ${JSON.stringify(text)}: ends in "\\"`,
          text,
        );
      }
      if (next >= 0x30 && next <= 0x39) {
        const digits = text.slice(i + 1, i + 4);
        if (!/^[0-9]{3}$/.test(digits) || Number(digits) > 255) {
          throw nameError(
            DnsErrorCode.NAME_BAD_TEXT,
            `name ${JSON.stringify(text)}: "\\${digits}" is not a \\DDD escape of 000-255`,
            text,
          );
        }
        push(Number(digits));
        i += 4;
        continue;
      }
      if (next < 0x21 || next > 0x7e) {
        throw nameError(
          DnsErrorCode.NAME_BAD_TEXT,
          `name ${JSON.stringify(text)}: bad escape`,
          text,
        );
      }
      push(next);
      i += 2;
      continue;
    }
    if (c < 0x21 || c > 0x7e) {
      throw nameError(
        DnsErrorCode.NAME_BAD_TEXT,
        `name ${JSON.stringify(text)}: character U+${c.toString(16).padStart(4, '0')} must be written as a \\DDD escape (non-ASCII names go in punycode)`,
        text,
      );
    }
    push(c);
    i += 1;
  }
  if (!endsWithDot) closeLabel();
  out[lengthAt] = 0;
  if (lengthAt + 1 > MAX_NAME_BYTES) {
    throw nameError(
      DnsErrorCode.NAME_TOO_LONG,
      `name: longer than ${MAX_NAME_BYTES} bytes in wire form`,
      text,
    );
  }
  return out.slice(0, lengthAt + 1);
}

function needsEscape(byte: number): boolean {
  return (
    byte < 0x21 ||
    byte > 0x7e ||
    byte === DOT ||
    byte === BACKSLASH ||
    byte === 0x22 || // "
    byte === 0x28 || // (
    byte === 0x29 || // )
    byte === 0x3b || // ;
    byte === 0x40 || // @
    byte === 0x24 // $
  );
}

/** Appends one label's presentation text (escaped) to `out`. */
export function labelToText(wire: Uint8Array, start: number, length: number): string {
  let out = '';
  for (let i = start; i < start + length; i++) {
    const byte = wire[i]!;
    if (!needsEscape(byte)) out += String.fromCharCode(byte);
    else if (byte > 0x20 && byte < 0x7f) out += `\\${String.fromCharCode(byte)}`;
    else out += `\\${byte.toString().padStart(3, '0')}`;
  }
  return out;
}

/**
 * The presentation text of an uncompressed wire name starting at `offset` (the caller has
 * checked it: labels ≤ 63, a terminating zero inside `wire`).
 */
export function wireToName(wire: Uint8Array, offset = 0): string {
  let out = '';
  let pos = offset;
  for (;;) {
    const length = wire[pos]!;
    if (length === 0) break;
    out += `${labelToText(wire, pos + 1, length)}.`;
    pos += length + 1;
  }
  return out === '' ? ROOT_NAME : out;
}

/** ASCII lowercase in place (RFC 4343: only A-Z fold). */
export function lowercaseInPlace(bytes: Uint8Array, start = 0, end = bytes.length): void {
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b >= 0x41 && b <= 0x5a) bytes[i] = b | 0x20;
  }
}

/** Lowercase uncompressed wire form as a latin1 string (see the module comment). */
export function wireToKey(wire: Uint8Array): string {
  const lower = Uint8Array.from(wire);
  lowercaseInPlace(lower);
  return Buffer.from(lower.buffer, lower.byteOffset, lower.byteLength).toString('latin1');
}

export function nameKey(text: string): string {
  return wireToKey(nameToWire(text));
}

export function keyToWire(key: string): Uint8Array {
  return new Uint8Array(Buffer.from(key, 'latin1'));
}

export function keyToName(key: string): string {
  return wireToName(keyToWire(key));
}

/** Lowercase presentation form with the trailing dot: the form records carry in a zone. */
export function canonicalName(text: string): string {
  return keyToName(nameKey(text));
}

/** Offsets of each label's length byte in a key, the root's zero last. */
export function keyLabelOffsets(key: string): number[] {
  const offsets: number[] = [];
  let pos = 0;
  for (;;) {
    offsets.push(pos);
    const length = key.charCodeAt(pos);
    if (length === 0) return offsets;
    pos += length + 1;
  }
}

/** Number of labels, not counting the root (`example.com.` has 2). */
export function labelCount(text: string): number {
  return keyLabelOffsets(nameKey(text)).length - 1;
}

/** Case-insensitive equality (RFC 4343). */
export function namesEqual(a: string, b: string): boolean {
  return nameKey(a) === nameKey(b);
}

/** Whether key `name` is `ancestor` or below it. */
export function isSubdomainKey(name: string, ancestor: string): boolean {
  if (ancestor.length > name.length) return false;
  if (ancestor.length === name.length) return name === ancestor;
  if (!name.endsWith(ancestor)) return false;
  // Aligned only if a label of `name` starts exactly where `ancestor` does.
  const start = name.length - ancestor.length;
  let pos = 0;
  while (pos < start) pos += name.charCodeAt(pos) + 1;
  return pos === start;
}

/** Whether `name` is `ancestor` or a name below it, ignoring case. */
export function isSubdomain(name: string, ancestor: string): boolean {
  return isSubdomainKey(nameKey(name), nameKey(ancestor));
}

/** Whether the key's leftmost label is exactly `*` (RFC 4592 §2.1.1). */
export function isWildcardKey(key: string): boolean {
  return key.charCodeAt(0) === 1 && key.charCodeAt(1) === ASTERISK;
}

export function isWildcardName(text: string): boolean {
  return isWildcardKey(nameKey(text));
}

/** The key of the parent name (the root is its own parent). */
export function parentKey(key: string): string {
  const length = key.charCodeAt(0);
  return length === 0 ? key : key.slice(length + 1);
}

/**
 * RFC 4034 §6.1 canonical order of two names: labels compared right to left as lowercase
 * unsigned bytes, a name sorting before its own descendants. Negative, zero or positive.
 */
export function compareNamesCanonical(a: string, b: string): number {
  const ka = nameKey(a);
  const kb = nameKey(b);
  const oa = keyLabelOffsets(ka);
  const ob = keyLabelOffsets(kb);
  let ia = oa.length - 2;
  let ib = ob.length - 2;
  while (ia >= 0 && ib >= 0) {
    const la = ka.slice(oa[ia]! + 1, oa[ia]! + 1 + ka.charCodeAt(oa[ia]!));
    const lb = kb.slice(ob[ib]! + 1, ob[ib]! + 1 + kb.charCodeAt(ob[ib]!));
    if (la !== lb) return la < lb ? -1 : 1;
    ia -= 1;
    ib -= 1;
  }
  return ia - ib;
}
