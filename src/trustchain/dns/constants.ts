/** Numbers from the IANA DNS parameters registry used by the core. */

/** RR types with a typed data model here (RFC 1035, 2782, 3596, 4034, 6698, 8659, 9460). */
export const RR_TYPES = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  TLSA: 52,
  SVCB: 64,
  HTTPS: 65,
  CAA: 257,
} as const;

export type KnownTypeName = keyof typeof RR_TYPES;

/** Pseudo and meta types the answer engine treats specially. */
export const TYPE_OPT = 41;
/** SIG, as SIG(0) a query's transaction signature (RFC 2931); not supported. */
export const TYPE_SIG = 24;
/** TSIG (RFC 8945); not supported. */
export const TYPE_TSIG = 250;
export const TYPE_IXFR = 251;
export const TYPE_AXFR = 252;
export const TYPE_ANY = 255;

export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const OPCODE_QUERY = 0;

export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended (12-bit) rcode, carried half in the header and half in OPT (RFC 6891 §6.1.3). */
  BADVERS: 16,
} as const;

const TYPE_NAMES = new Map<number, KnownTypeName>(
  Object.entries(RR_TYPES).map(([name, code]) => [code, name as KnownTypeName]),
);
const EXTRA_TYPE_NAMES = new Map<number, string>([
  [TYPE_OPT, 'OPT'],
  [TYPE_IXFR, 'IXFR'],
  [TYPE_AXFR, 'AXFR'],
  [TYPE_ANY, 'ANY'],
]);

/** The mnemonic of a type code: `A`, `HTTPS`, or `TYPE65280` for codes without a model (RFC 3597 §5). */
export function typeName(code: number): string {
  return TYPE_NAMES.get(code) ?? EXTRA_TYPE_NAMES.get(code) ?? `TYPE${code}`;
}

/** The type code of a known mnemonic or of `TYPEnnn`; undefined for anything else. */
export function typeCode(name: string): number | undefined {
  if (Object.hasOwn(RR_TYPES, name)) return RR_TYPES[name as KnownTypeName];
  for (const [code, extra] of EXTRA_TYPE_NAMES) if (extra === name) return code;
  const match = /^TYPE(0|[1-9][0-9]{0,4})$/.exec(name);
  if (match === null) return undefined;
  const code = Number(match[1]);
  return code <= 0xffff ? code : undefined;
}

/** The model's name for a type code, when it has one. */
export function knownTypeName(code: number): KnownTypeName | undefined {
  return TYPE_NAMES.get(code);
}
