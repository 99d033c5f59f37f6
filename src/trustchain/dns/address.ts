/** IPv4 and IPv6 text forms for A/AAAA data and SVCB hints. */

const IPV4 =
  /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

/** Four bytes of a dotted-quad address (no leading zeros), or undefined. */
export function parseIPv4(text: string): Uint8Array | undefined {
  if (!IPV4.test(text)) return undefined;
  return Uint8Array.from(text.split('.').map(Number));
}

export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** Sixteen bytes of an RFC 4291 §2.2 address (`::`, an IPv4 tail allowed), or undefined. */
export function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length > 45) return undefined;
  let body = text;
  let tail: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > lastColon) {
    tail = parseIPv4(text.slice(lastColon + 1));
    if (tail === undefined) return undefined;
    body = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === '') return [];
    const groups = part.split(':');
    if (!groups.every((group) => HEXTET.test(group))) return undefined;
    return groups.map((group) => parseInt(group, 16));
  };
  const head = parse(halves[0]!);
  if (head === undefined) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const rest = parse(halves[1]!);
    if (rest === undefined || head.length + rest.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  } else {
    if (head.length !== 8) return undefined;
    groups = head;
  }
  const out = new Uint8Array(16);
  groups.forEach((group, i) => {
    out[2 * i] = group >> 8;
    out[2 * i + 1] = group & 0xff;
  });
  if (tail !== undefined) out.set(tail, 12);
  return out;
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++)
    groups.push((bytes[offset + 2 * i]! << 8) | bytes[offset + 2 * i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]): string => list.map((group) => group.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}
