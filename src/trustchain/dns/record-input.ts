import { z } from 'zod';
import { parseInput } from '../../codec/schema.js';
import { formatIPv6, parseIPv4, parseIPv6 } from './address.js';
import { RR_TYPES, knownTypeName, typeCode, typeName } from './constants.js';
import type { KnownTypeName } from './constants.js';
import { DnsError } from './errors.js';
import { canonicalName } from './names.js';
import { MAX_TTL } from './records.js';
import type { RecordDataByType, ResourceRecord } from './records.js';
import { FIRST_OPAQUE_SVC_KEY, SVC_KEYS, svcKeyCode, svcKeyName } from './svcb.js';
import type { SvcParams } from './svcb.js';

/**
 * The JSON form of a record, for the zone module's transactions and the CLI:
 *
 *   { "name": "www.hypermesh.", "type": "AAAA", "ttl": 300, "data": { "address": "2001:db8::1" } }
 *
 * `class` may be given and must be "IN". Text goes in as text (TXT strings and CAA values as
 * UTF-8), binary fields as lowercase hex (TLSA data, DS digest, opaque RDATA and SvcParams) or
 * base64 (DNSKEY keys, RRSIG signatures, ECH). `parseRecord` turns it into a `ResourceRecord`
 * (names in lowercase canonical form) or throws `SchemaError` naming the field and the rule;
 * `recordToInput` is its inverse. Zone rules (CNAME exclusivity, one SOA...) are checked when a
 * zone is built (zone.ts), since they concern several records.
 */

const u8 = z.int().min(0).max(0xff);
const u16 = z.int().min(0).max(0xffff);
const u32 = z.int().min(0).max(0xffffffff);

const name = z.string().transform((text, ctx) => {
  try {
    return canonicalName(text);
  } catch (error) {
    ctx.addIssue({
      code: 'custom',
      message: error instanceof DnsError ? error.message : 'not a domain name',
    });
    return z.NEVER;
  }
});

const ipv4 = z.string().refine((text) => parseIPv4(text) !== undefined, {
  error: (issue) =>
    typeof issue.input === 'string' && parseIPv6(issue.input) !== undefined
      ? 'expected an IPv4 address, got an IPv6 address (that goes in AAAA)'
      : 'expected an IPv4 address (dotted quad, no leading zeros)',
});

const ipv6 = z
  .string()
  .refine((text) => parseIPv6(text) !== undefined, {
    error: (issue) =>
      typeof issue.input === 'string' && parseIPv4(issue.input) !== undefined
        ? 'expected an IPv6 address, got an IPv4 address (that goes in A)'
        : 'expected an IPv6 address',
  })
  .transform((text) => formatIPv6(parseIPv6(text)!));

const hex = z
  .string()
  .regex(/^(?:[0-9a-f]{2})*$/, { error: 'expected lowercase hex digits, two per byte' })
  .transform((text) => new Uint8Array(Buffer.from(text, 'hex')));

const base64 = z
  .string()
  .refine(
    (text) =>
      /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text) &&
      Buffer.from(text, 'base64').toString('base64') === text,
    {
      error: 'expected canonical padded base64',
    },
  )
  .transform((text) => new Uint8Array(Buffer.from(text, 'base64')));

/** A character-string (RFC 1035 §3.3): text whose UTF-8 form is at most 255 bytes. */
const characterString = z
  .string()
  .refine((text) => Buffer.byteLength(text, 'utf8') <= 255, {
    error: (issue) =>
      `expected at most 255 bytes of UTF-8 (one character-string), got ${typeof issue.input === 'string' ? Buffer.byteLength(issue.input, 'utf8') : 0}`,
  })
  .transform((text) => new Uint8Array(Buffer.from(text, 'utf8')));

const typeMnemonic = z.string().transform((text, ctx) => {
  const code = typeCode(text);
  if (code === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a type mnemonic such as "A" or "TYPE65280"`,
    });
    return z.NEVER;
  }
  return code;
});

const alpnId = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, { error: 'expected printable ASCII without spaces' });

const svcParams = z
  .strictObject({
    mandatory: z.array(z.string()).min(1).optional(),
    alpn: z.array(alpnId).min(1).optional(),
    'no-default-alpn': z.literal(true).optional(),
    port: u16.optional(),
    ipv4hint: z.array(ipv4).min(1).optional(),
    ech: base64.optional(),
    ipv6hint: z.array(ipv6).min(1).optional(),
  })
  .catchall(hex)
  .superRefine((params, ctx) => {
    for (const key of Object.keys(params)) {
      if (Object.hasOwn(SVC_KEYS, key)) continue;
      const code = svcKeyCode(key);
      if (code === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'expected a SvcParamKey name or keyNNNNN',
        });
      } else if (code < FIRST_OPAQUE_SVC_KEY) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `write this key as "${svcKeyName(code)}"`,
        });
      } else if (code === 0xffff) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'key65535 is the reserved "invalid key" (RFC 9460 §14.3.2)',
        });
      }
    }
    const mandatory = params.mandatory ?? [];
    mandatory.forEach((key, i) => {
      const code = svcKeyCode(key);
      if (code === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['mandatory', i],
          message: 'expected a SvcParamKey name or keyNNNNN',
        });
      } else if (code === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['mandatory', i],
          message: 'mandatory must not list itself (RFC 9460 §8)',
        });
      } else if (!Object.hasOwn(params, svcKeyName(code))) {
        ctx.addIssue({
          code: 'custom',
          path: ['mandatory', i],
          message: `lists ${key}, which is not present`,
        });
      } else if (mandatory.findIndex((other) => svcKeyCode(other) === code) !== i) {
        ctx.addIssue({ code: 'custom', path: ['mandatory', i], message: `lists ${key} twice` });
      }
    });
    if (params['no-default-alpn'] === true && params.alpn === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['no-default-alpn'],
        message: 'needs alpn (RFC 9460 §7.1.1)',
      });
    }
  });

const svcb = z
  .strictObject({ priority: u16, target: name, params: svcParams.optional() })
  .superRefine((data, ctx) => {
    if (data.priority === 0 && data.params !== undefined && Object.keys(data.params).length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['params'],
        message: 'AliasMode (priority 0) takes no SvcParams (RFC 9460 §2.4.2)',
      });
    }
  })
  .transform((data) => ({
    priority: data.priority,
    target: data.target,
    params: toSvcParams(data.params ?? {}),
  }));

function toSvcParams(input: Record<string, unknown>): SvcParams {
  const params: { -readonly [K in keyof SvcParams]: SvcParams[K] } = {};
  const opaque: Array<{ key: number; value: Uint8Array }> = [];
  for (const [key, value] of Object.entries(input)) {
    switch (key) {
      case 'mandatory':
        params.mandatory = (value as string[]).map((k) => svcKeyCode(k)!).sort((a, b) => a - b);
        break;
      case 'alpn':
        params.alpn = value as string[];
        break;
      case 'no-default-alpn':
        params.noDefaultAlpn = true;
        break;
      case 'port':
        params.port = value as number;
        break;
      case 'ipv4hint':
        params.ipv4hint = value as string[];
        break;
      case 'ech':
        params.ech = value as Uint8Array;
        break;
      case 'ipv6hint':
        params.ipv6hint = value as string[];
        break;
      default:
        opaque.push({ key: svcKeyCode(key)!, value: value as Uint8Array });
    }
  }
  if (opaque.length > 0) params.keys = opaque.sort((a, b) => a.key - b.key);
  return params;
}

const DATA_SCHEMAS: { [K in KnownTypeName]: z.ZodType<RecordDataByType[K]> } = {
  A: z.strictObject({ address: ipv4 }),
  AAAA: z.strictObject({ address: ipv6 }),
  NS: z.strictObject({ host: name }),
  CNAME: z.strictObject({ target: name }),
  SOA: z.strictObject({
    mname: name,
    rname: name,
    serial: u32,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
  }),
  MX: z.strictObject({ preference: u16, exchange: name }),
  TXT: z.strictObject({ strings: z.array(characterString).min(1) }),
  SRV: z.strictObject({ priority: u16, weight: u16, port: u16, target: name }),
  CAA: z.strictObject({
    flags: u8,
    tag: z
      .string()
      .regex(/^[A-Za-z0-9]{1,15}$/, { error: 'expected 1-15 ASCII letters and digits' }),
    value: z.string().transform((text) => new Uint8Array(Buffer.from(text, 'utf8'))),
  }),
  TLSA: z.strictObject({ usage: u8, selector: u8, matchingType: u8, data: hex }),
  SVCB: svcb,
  HTTPS: svcb,
  DNSKEY: z.strictObject({ flags: u16, protocol: u8, algorithm: u8, publicKey: base64 }),
  RRSIG: z.strictObject({
    typeCovered: typeMnemonic,
    algorithm: u8,
    labels: u8,
    originalTtl: u32,
    expiration: u32,
    inception: u32,
    keyTag: u16,
    signerName: name,
    signature: base64,
  }),
  NSEC: z.strictObject({
    next: name,
    types: z
      .array(typeMnemonic)
      .superRefine((codes, ctx) => {
        if (new Set(codes).size !== codes.length)
          ctx.addIssue({ code: 'custom', message: 'lists a type twice' });
      })
      .transform((codes) => [...codes].sort((a, b) => a - b)),
  }),
  DS: z.strictObject({ keyTag: u16, algorithm: u8, digestType: u8, digest: hex }),
};

const opaqueData = z.strictObject({
  rdata: hex.refine((bytes) => bytes.length <= 0xffff, { error: 'expected at most 65535 bytes' }),
});

const envelope = z.strictObject({
  name,
  type: z.string(),
  class: z.literal('IN').optional(),
  ttl: z.int().min(0).max(MAX_TTL),
  data: z.unknown(),
});

/** The JSON input form (see the module comment). */
export interface RecordInput {
  readonly name: string;
  readonly type: string;
  readonly class?: 'IN';
  readonly ttl: number;
  readonly data: unknown;
}

/** Parses one record in JSON form; `context` prefixes the paths in errors (`record.data.port`). */
export function parseRecord(input: unknown, context = 'record'): ResourceRecord {
  const outer = parseInput(envelope, input, context);
  const code = typeCode(outer.type);
  const typeSchema = z.string().refine(() => false, {
    error: `expected a record type (${Object.keys(RR_TYPES).join(', ')} or TYPEnnn for others)`,
  });
  if (code === undefined || code === 41 || (code >= 128 && code <= 255)) {
    parseInput(z.strictObject({ type: typeSchema }), { type: outer.type }, context);
  }
  const known = knownTypeName(code!);
  if (outer.type.startsWith('TYPE') && known !== undefined) {
    const message = `type ${outer.type} has a model: write it as "${known}"`;
    parseInput(
      z.strictObject({ type: z.string().refine(() => false, { error: message }) }),
      { type: outer.type },
      context,
    );
  }
  const base = { name: outer.name, class: 1, ttl: outer.ttl };
  if (known !== undefined) {
    const data = parseInput(
      DATA_SCHEMAS[known] as z.ZodType<unknown>,
      outer.data,
      `${context}.data`,
    );
    return { ...base, type: known, data } as ResourceRecord;
  }
  const data = parseInput(opaqueData, outer.data, `${context}.data`);
  return { ...base, type: typeName(code!) as `TYPE${number}`, data };
}

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const toUtf8 = (bytes: Uint8Array): string =>
  new TextDecoder('utf-8', { fatal: true }).decode(bytes);

function svcParamsToInput(params: SvcParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (params.mandatory !== undefined) out.mandatory = params.mandatory.map(svcKeyName);
  if (params.alpn !== undefined) out.alpn = [...params.alpn];
  if (params.noDefaultAlpn === true) out['no-default-alpn'] = true;
  if (params.port !== undefined) out.port = params.port;
  if (params.ipv4hint !== undefined) out.ipv4hint = [...params.ipv4hint];
  if (params.ech !== undefined) out.ech = toBase64(params.ech);
  if (params.ipv6hint !== undefined) out.ipv6hint = [...params.ipv6hint];
  for (const { key, value } of params.keys ?? []) out[svcKeyName(key)] = toHex(value);
  return out;
}

/**
 * The JSON form of a record. TXT strings and CAA values that are not valid UTF-8 (possible in
 * decoded data, never from `parseRecord`) cannot be shown as text and throw a TypeError.
 */
export function recordToInput(rr: ResourceRecord): RecordInput {
  const base = { name: rr.name, type: rr.type, ttl: rr.ttl };
  let data: unknown;
  switch (rr.type) {
    case 'TXT':
      data = { strings: rr.data.strings.map(toUtf8) };
      break;
    case 'CAA':
      data = { flags: rr.data.flags, tag: rr.data.tag, value: toUtf8(rr.data.value) };
      break;
    case 'TLSA':
      data = { ...rr.data, data: toHex(rr.data.data) };
      break;
    case 'SVCB':
    case 'HTTPS': {
      const params = svcParamsToInput(rr.data.params);
      data = {
        priority: rr.data.priority,
        target: rr.data.target,
        ...(Object.keys(params).length > 0 ? { params } : {}),
      };
      break;
    }
    case 'DNSKEY':
      data = { ...rr.data, publicKey: toBase64(rr.data.publicKey) };
      break;
    case 'RRSIG':
      data = {
        ...rr.data,
        typeCovered: typeName(rr.data.typeCovered),
        signature: toBase64(rr.data.signature),
      };
      break;
    case 'NSEC':
      data = { next: rr.data.next, types: rr.data.types.map(typeName) };
      break;
    case 'DS':
      data = { ...rr.data, digest: toHex(rr.data.digest) };
      break;
    case 'A':
    case 'AAAA':
    case 'NS':
    case 'CNAME':
    case 'SOA':
    case 'MX':
    case 'SRV':
      data = { ...rr.data };
      break;
    default:
      data = { rdata: toHex(rr.data.rdata) };
  }
  return { ...base, data };
}
