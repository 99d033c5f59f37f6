import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './address.js';
import type { WireReader, WireWriter } from './buffer.js';
import { DnsError, DnsErrorCode } from './errors.js';

/**
 * SVCB/HTTPS SvcParams (RFC 9460 §2.2, §7). Keys 0–6 have a model; any other key is kept as
 * opaque bytes under `keys` and re-encoded unchanged.
 */
export interface SvcParams {
  /** Keys a client must understand to use the record (never 0 itself), ascending. */
  readonly mandatory?: readonly number[];
  /** ALPN protocol ids, each 1–255 bytes (one character per byte, latin1). */
  readonly alpn?: readonly string[];
  readonly noDefaultAlpn?: true;
  readonly port?: number;
  readonly ipv4hint?: readonly string[];
  /** The ECHConfigList, opaque here. */
  readonly ech?: Uint8Array;
  readonly ipv6hint?: readonly string[];
  /** Keys without a model (7 and above), in ascending order. */
  readonly keys?: ReadonlyArray<{ readonly key: number; readonly value: Uint8Array }>;
}

export const SVC_KEYS = {
  mandatory: 0,
  alpn: 1,
  'no-default-alpn': 2,
  port: 3,
  ipv4hint: 4,
  ech: 5,
  ipv6hint: 6,
} as const;

const KEY_NAMES = new Map<number, string>(Object.entries(SVC_KEYS).map(([n, k]) => [k, n]));

/** `alpn`, `port`... or `key65000` for keys without a name (RFC 9460 §2.1). */
export function svcKeyName(key: number): string {
  return KEY_NAMES.get(key) ?? `key${key}`;
}

export function svcKeyCode(name: string): number | undefined {
  if (Object.hasOwn(SVC_KEYS, name)) return SVC_KEYS[name as keyof typeof SVC_KEYS];
  const match = /^key(0|[1-9][0-9]{0,4})$/.exec(name);
  if (match === null) return undefined;
  const key = Number(match[1]);
  return key <= 0xffff ? key : undefined;
}

/** First key without a model. */
export const FIRST_OPAQUE_SVC_KEY = 7;

function invalid(message: string, detail: Record<string, unknown> = {}): DnsError {
  return new DnsError(DnsErrorCode.RECORD_INVALID, `SvcParams: ${message}`, detail);
}

function encodeValue(key: number, params: SvcParams): Uint8Array {
  const bytes: number[] = [];
  const u16 = (value: number, field: string): void => {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
      throw invalid(`${field} ${value} is not an integer in 0..65535`, { field });
    }
    bytes.push(value >> 8, value & 0xff);
  };
  switch (key) {
    case 0:
      for (const k of params.mandatory!) u16(k, 'mandatory');
      break;
    case 1:
      for (const id of params.alpn!) {
        if (id.length < 1 || id.length > 255) throw invalid(`alpn id of ${id.length} bytes`);
        bytes.push(id.length);
        for (let i = 0; i < id.length; i++) {
          const c = id.charCodeAt(i);
          if (c > 0xff) throw invalid('alpn ids are bytes (latin1 characters)');
          bytes.push(c);
        }
      }
      break;
    case 2:
      break;
    case 3:
      u16(params.port!, 'port');
      break;
    case 4:
      for (const address of params.ipv4hint!) {
        const parsed = parseIPv4(address);
        if (parsed === undefined) throw invalid(`ipv4hint ${JSON.stringify(address)} is not IPv4`);
        bytes.push(...parsed);
      }
      break;
    case 5:
      return params.ech!;
    case 6:
      for (const address of params.ipv6hint!) {
        const parsed = parseIPv6(address);
        if (parsed === undefined) throw invalid(`ipv6hint ${JSON.stringify(address)} is not IPv6`);
        bytes.push(...parsed);
      }
      break;
  }
  return Uint8Array.from(bytes);
}

/** Writes the params in ascending key order; refuses duplicates and opaque keys that have a model. */
export function encodeSvcParams(params: SvcParams, w: WireWriter): void {
  const entries: Array<[number, Uint8Array]> = [];
  if (params.mandatory !== undefined) entries.push([0, encodeValue(0, params)]);
  if (params.alpn !== undefined) entries.push([1, encodeValue(1, params)]);
  if (params.noDefaultAlpn === true) entries.push([2, new Uint8Array(0)]);
  if (params.port !== undefined) entries.push([3, encodeValue(3, params)]);
  if (params.ipv4hint !== undefined) entries.push([4, encodeValue(4, params)]);
  if (params.ech !== undefined) entries.push([5, params.ech]);
  if (params.ipv6hint !== undefined) entries.push([6, encodeValue(6, params)]);
  for (const { key, value } of params.keys ?? []) {
    if (!Number.isInteger(key) || key < FIRST_OPAQUE_SVC_KEY || key > 0xffff) {
      throw invalid(`opaque key ${key} must be an integer in ${FIRST_OPAQUE_SVC_KEY}..65535`, {
        key,
      });
    }
    entries.push([key, value]);
  }
  entries.sort((a, b) => a[0] - b[0]);
  for (let i = 0; i < entries.length; i++) {
    const [key, value] = entries[i]!;
    if (i > 0 && entries[i - 1]![0] === key) throw invalid(`key ${svcKeyName(key)} twice`, { key });
    if (value.length > 0xffff) throw invalid(`value of ${svcKeyName(key)} above 65535 bytes`);
    w.u16(key);
    w.u16(value.length);
    w.bytes(value);
  }
}

function wireInvalid(r: WireReader, message: string): DnsError {
  return new DnsError(DnsErrorCode.WIRE_RDATA_INVALID, `SVCB SvcParams: ${message}`, {
    offset: r.offset,
  });
}

/** Reads params until the end of the rdata: keys strictly ascending, each value well formed. */
export function decodeSvcParams(r: WireReader): SvcParams {
  const params: {
    -readonly [K in keyof SvcParams]: SvcParams[K];
  } = {};
  const opaque: Array<{ key: number; value: Uint8Array }> = [];
  let last = -1;
  while (r.remaining() > 0) {
    const key = r.u16('SvcParamKey');
    if (key <= last) throw wireInvalid(r, `key ${key} after key ${last} (keys must ascend)`);
    last = key;
    const length = r.u16('SvcParamValue length');
    const value = r.bytes(length, `SvcParamValue of ${svcKeyName(key)}`);
    switch (key) {
      case 0: {
        if (length === 0 || length % 2 !== 0) throw wireInvalid(r, `mandatory of ${length} bytes`);
        const keys: number[] = [];
        for (let i = 0; i < length; i += 2) {
          const k = (value[i]! << 8) | value[i + 1]!;
          if (k === 0) throw wireInvalid(r, 'mandatory lists itself');
          if (keys.length > 0 && k <= keys[keys.length - 1]!) {
            throw wireInvalid(r, 'mandatory keys must ascend');
          }
          keys.push(k);
        }
        params.mandatory = keys;
        break;
      }
      case 1: {
        if (length === 0) throw wireInvalid(r, 'empty alpn');
        const ids: string[] = [];
        for (let i = 0; i < length;) {
          const idLength = value[i]!;
          if (idLength === 0 || i + 1 + idLength > length) {
            throw wireInvalid(r, `alpn id of ${idLength} bytes at ${i}`);
          }
          ids.push(String.fromCharCode(...value.subarray(i + 1, i + 1 + idLength)));
          i += 1 + idLength;
        }
        params.alpn = ids;
        break;
      }
      case 2:
        if (length !== 0) throw wireInvalid(r, 'no-default-alpn has a value');
        params.noDefaultAlpn = true;
        break;
      case 3:
        if (length !== 2) throw wireInvalid(r, `port of ${length} bytes`);
        params.port = (value[0]! << 8) | value[1]!;
        break;
      case 4:
        if (length === 0 || length % 4 !== 0) throw wireInvalid(r, `ipv4hint of ${length} bytes`);
        params.ipv4hint = Array.from({ length: length / 4 }, (_, i) => formatIPv4(value, 4 * i));
        break;
      case 5:
        params.ech = value;
        break;
      case 6:
        if (length === 0 || length % 16 !== 0) throw wireInvalid(r, `ipv6hint of ${length} bytes`);
        params.ipv6hint = Array.from({ length: length / 16 }, (_, i) => formatIPv6(value, 16 * i));
        break;
      default:
        opaque.push({ key, value });
    }
  }
  if (opaque.length > 0) params.keys = opaque;
  return params;
}
