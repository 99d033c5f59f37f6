/**
 * IP address literals of service instances. The catalog stores an address as its 4 (IPv4) or 16
 * (IPv6) network-order bytes, so each address has exactly one encoding whatever text a client
 * typed; clients see it written back in the canonical text forms: dotted decimal for IPv4, and
 * RFC 5952 §4 for IPv6 (lowercase, no leading zeros, the longest run of two or more zero groups
 * shortened to "::", the first such run on a tie).
 *
 * Refused as instance addresses: the unspecified addresses (0.0.0.0, ::), which name no host, and
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, RFC 4291 §2.5.5.2), which would give an IPv4
 * address a second encoding. Zone identifiers (fe80::1%eth0) are refused: they mean something
 * only on one host.
 */

export const IPV4_BYTES = 4;
export const IPV6_BYTES = 16;

const IPV4_TEXT =
  /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4(text: string): Uint8Array | undefined {
  const match = IPV4_TEXT.exec(text);
  if (match === null) return undefined;
  const octets = match.slice(1).map(Number);
  if (octets.some((octet) => octet > 255)) return undefined;
  return Uint8Array.from(octets);
}

/** Groups of one side of "::" (or of a whole address without it), the last maybe dotted IPv4. */
function parseGroups(text: string, allowIpv4Tail: boolean): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (const [i, part] of parts.entries()) {
    if (allowIpv4Tail && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIpv4(part);
      if (v4 === undefined) return undefined;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else {
      if (!HEX_GROUP.test(part)) return undefined;
      groups.push(parseInt(part, 16));
    }
  }
  return groups;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 1) {
    const all = parseGroups(text, true);
    if (all === undefined || all.length !== 8) return undefined;
    groups = all;
  } else {
    const head = parseGroups(halves[0]!, false);
    const tail = parseGroups(halves[1]!, true);
    // "::" stands for at least one zero group (RFC 4291 §2.2).
    if (head === undefined || tail === undefined || head.length + tail.length > 7) {
      return undefined;
    }
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const bytes = new Uint8Array(IPV6_BYTES);
  groups.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/**
 * The bytes of an IPv4 or IPv6 literal (any standard text form), or undefined for anything
 * else. Does not apply the instance-address rules; see `instanceAddressProblem`.
 */
export function parseIpAddress(text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length > 45) return undefined;
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}

/** The canonical text of 4 or 16 address bytes (RFC 5952 §4 for IPv6). */
export function formatIpAddress(bytes: Uint8Array): string {
  if (bytes.length === IPV4_BYTES) return Array.from(bytes).join('.');
  if (bytes.length !== IPV6_BYTES) {
    throw new RangeError(`an IP address is 4 or 16 bytes, got ${bytes.length}`);
  }
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  // The longest run of at least two zero groups; the first one on a tie (RFC 5952 §4.2.3).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

/**
 * Why `bytes` cannot be an instance address, or undefined if it can: the wrong length, an
 * unspecified address, or an IPv4-mapped IPv6 address.
 */
export function instanceAddressProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length !== IPV4_BYTES && bytes.length !== IPV6_BYTES) {
    return `an address is 4 (IPv4) or 16 (IPv6) bytes, got ${bytes.length}`;
  }
  if (bytes.every((byte) => byte === 0)) return 'the unspecified address names no host';
  if (
    bytes.length === IPV6_BYTES &&
    bytes.subarray(0, 10).every((byte) => byte === 0) &&
    bytes[10] === 0xff &&
    bytes[11] === 0xff
  ) {
    return 'an IPv4-mapped IPv6 address; register the IPv4 address itself';
  }
  return undefined;
}
