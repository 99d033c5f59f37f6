import { isIP } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { CaErrorCode, caError } from './errors.js';

/**
 * Syntax of the names a certificate may carry (RFC 5280 §4.2.1.6): DNS names as IDNA A-labels,
 * IP addresses in their canonical text form, and SPIFFE IDs. Inputs are never rewritten: a name
 * in another spelling (upper case, a trailing dot, a U-label, `::0:1`) is refused, so the
 * certificate carries exactly the bytes that were requested and validators agree on them.
 */

export type NameKind = 'dns' | 'ip' | 'uri';

/** Why a name was refused (`detail.reason` of `CA_INVALID_NAME`). */
export type InvalidNameReason =
  | 'empty'
  | 'too_long'
  | 'not_lowercase_ascii'
  | 'trailing_dot'
  | 'label_length'
  | 'label_syntax'
  | 'reserved_label'
  | 'invalid_a_label'
  | 'numeric_top_label'
  | 'wildcard_position'
  | 'wildcard_too_broad'
  | 'not_canonical_ip'
  | 'embedded_ipv4'
  | 'not_spiffe_id';

/** RFC 1035 §2.3.4 / RFC 5280: at most 253 characters in text form. */
export const MAX_DNS_NAME_LENGTH = 253;
/** SPIFFE ID spec §2.3: URIs up to 2048 bytes. */
export const MAX_URI_LENGTH = 2048;

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function invalid(kind: NameKind, name: string, reason: InvalidNameReason): never {
  throw caError(
    CaErrorCode.INVALID_NAME,
    `invalid ${kind} name ${JSON.stringify(name)}: ${reason}`,
    {
      kind,
      name,
      reason,
    },
  );
}

export function isWildcard(name: string): boolean {
  return name.startsWith('*.');
}

/** The name a wildcard covers the children of (`*.a.example` → `a.example`); other names unchanged. */
export function wildcardBase(name: string): string {
  return isWildcard(name) ? name.slice(2) : name;
}

/**
 * Checks a DNS name: lowercase LDH labels of 1–63 characters (RFC 1123 §2.1), at most 253 in
 * total, no trailing dot, a top label that is not all digits (so an IPv4 address is never read
 * as a DNS name), `xn--` labels that are valid IDNA A-labels (RFC 5891: they decode and
 * re-encode to themselves under UTS #46), no other reserved `??--` labels (RFC 5890 §2.3.1),
 * and a wildcard only as the whole left-most label with at least two labels below it.
 */
export function checkDnsName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) invalid('dns', String(name), 'empty');
  if (name.length > MAX_DNS_NAME_LENGTH) invalid('dns', name, 'too_long');
  if (!/^[a-z0-9.*-]+$/.test(name)) invalid('dns', name, 'not_lowercase_ascii');
  if (name.endsWith('.')) invalid('dns', name, 'trailing_dot');
  const labels = name.split('.');
  const wildcard = labels[0] === '*';
  if (name.includes('*') && (!wildcard || labels.slice(1).some((label) => label.includes('*')))) {
    invalid('dns', name, 'wildcard_position');
  }
  const rest = wildcard ? labels.slice(1) : labels;
  if (wildcard && rest.length < 2) invalid('dns', name, 'wildcard_too_broad');
  for (const label of rest) {
    if (label.length === 0 || label.length > 63) invalid('dns', name, 'label_length');
    if (!LDH_LABEL.test(label)) invalid('dns', name, 'label_syntax');
    if (label.length >= 4 && label[2] === '-' && label[3] === '-') {
      if (!label.startsWith('xn--')) invalid('dns', name, 'reserved_label');
      const unicode = domainToUnicode(label);
      if (unicode === '' || unicode === label || domainToASCII(unicode) !== label) {
        invalid('dns', name, 'invalid_a_label');
      }
    }
  }
  if (/^[0-9]+$/.test(rest[rest.length - 1] as string)) invalid('dns', name, 'numeric_top_label');
}

/** The 4 or 16 address bytes of a canonical IP address (see `checkIpAddress`). */
export function ipAddressBytes(address: string): Uint8Array {
  if (isIP(address) === 4) return Uint8Array.from(address.split('.').map(Number));
  const [head = '', tail = ''] = address.split('::');
  const groups = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((group) => parseInt(group, 16));
  const left = groups(head);
  const right = address.includes('::') ? groups(tail) : [];
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/**
 * Checks an IP address a certificate may name (an IP SAN, an ACME `ip` identifier): canonical
 * text (`checkIpAddressText`), and no IPv6 form of an IPv4 address, which would not be classed
 * or granted as that IPv4 (grants and ranges compare within one family) yet which some clients
 * match against it (Go's `net.IP.Equal` treats `::ffff:a.b.c.d` as `a.b.c.d`). Refused
 * (`embedded_ipv4`): IPv4-mapped `::ffff:0:0/96` (RFC 4291 §2.5.5.2), IPv4-compatible
 * `::/96` (RFC 4291 §2.5.5.1, deprecated; this includes the unspecified `::`, but not `::1`)
 * and Teredo `2001::/32` (RFC 4380 §4: a server IPv4 and an obfuscated client IPv4 behind a
 * NAT mapping, no stable host to certify). Request the IPv4 address itself instead.
 */
export function checkIpAddress(address: string): void {
  checkIpAddressText(address);
  if (isIP(address) !== 6) return;
  const bytes = ipAddressBytes(address);
  const zeros = (from: number, to: number): boolean =>
    bytes.subarray(from, to).every((b) => b === 0);
  const mapped = zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff;
  // The loopback address (fifteen zero bytes, then 1) is not an IPv4-compatible one.
  const loopback = zeros(0, 15) && bytes[15] === 1;
  const compatible = zeros(0, 12) && !loopback;
  const teredo = bytes[0] === 0x20 && bytes[1] === 0x01 && zeros(2, 4);
  if (mapped || compatible || teredo) invalid('ip', address, 'embedded_ipv4');
}

/**
 * Checks an IP address in canonical text: IPv4 dotted decimal without leading zeros, IPv6 in
 * the RFC 5952 form (lowercase, longest zero run compressed, no embedded IPv4). The base of a
 * grant's range (`::/0`) is checked with this alone.
 */
export function checkIpAddressText(address: string): void {
  if (typeof address !== 'string' || address.length === 0) invalid('ip', String(address), 'empty');
  const version = isIP(address);
  if (version === 4) {
    if (address.split('.').some((octet) => octet.length > 1 && octet.startsWith('0'))) {
      invalid('ip', address, 'not_canonical_ip');
    }
    return;
  }
  if (version !== 6 || address.includes('.') || address.includes('%')) {
    invalid('ip', address, 'not_canonical_ip');
  }
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  if (canonical !== address) invalid('ip', address, 'not_canonical_ip');
}

/** SPIFFE ID spec §2.1 trust-domain characters. */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
/** SPIFFE ID spec §2.2 path-segment characters. */
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * Checks a SPIFFE ID `spiffe://<trust domain>/<path>` (SPIFFE ID spec §2): lowercase trust
 * domain, a non-empty path of non-empty segments that are not `.` or `..`, no query, fragment,
 * port, user info or trailing slash. Returns the trust domain.
 */
export function checkSpiffeId(uri: string): string {
  if (typeof uri !== 'string' || uri.length === 0) invalid('uri', String(uri), 'empty');
  if (uri.length > MAX_URI_LENGTH) invalid('uri', uri, 'too_long');
  const match = /^spiffe:\/\/([^/]+)(\/.*)$/.exec(uri);
  if (!match) invalid('uri', uri, 'not_spiffe_id');
  const [, trustDomain = '', path = ''] = match;
  if (!TRUST_DOMAIN.test(trustDomain)) invalid('uri', uri, 'not_spiffe_id');
  const segments = path.slice(1).split('/');
  for (const segment of segments) {
    if (!PATH_SEGMENT.test(segment) || segment === '.' || segment === '..') {
      invalid('uri', uri, 'not_spiffe_id');
    }
  }
  return trustDomain;
}

/** `name` equals `zone` or lies below it (label-wise, so `badexample.com` is not under `example.com`). */
export function isWithinZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/**
 * Whether `address` lies in `range`: an address (exact match) or a CIDR prefix `address/bits`
 * of the same family. A malformed range matches nothing.
 */
export function ipInRange(address: string, range: string): boolean {
  const [base = '', bitsText] = range.split('/');
  const family = isIP(base);
  if (family === 0 || family !== isIP(address)) return false;
  const a = ipAddressBytes(address);
  const b = ipAddressBytes(base);
  const bits = bitsText === undefined ? a.length * 8 : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > a.length * 8) return false;
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i & 7);
    if (((a[i >> 3] as number) & mask) !== ((b[i >> 3] as number) & mask)) return false;
  }
  return true;
}
