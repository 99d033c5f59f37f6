import net from 'node:net';
import { ipAddressBytes } from '../../trustchain/ca/names.js';

/**
 * Which IP addresses a challenge validation may connect to for an external name (docs/acme.md,
 * "External names"): only globally routable ones. Without this, an account could order a name
 * whose A record is 127.0.0.1, 10.0.0.1 or 169.254.169.254 and have the node (and every
 * corroborating validator) send requests to its own internal hosts. The special-purpose ranges
 * are those of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890) that are
 * not globally reachable, plus multicast and documentation ranges.
 */

/** [prefix bytes, prefix length in bits]. */
type Prefix = readonly [readonly number[], number];

const NON_PUBLIC_V4: readonly Prefix[] = [
  [[0], 8], // "this network" (RFC 791)
  [[10], 8], // private (RFC 1918)
  [[100, 64], 10], // shared address space (RFC 6598)
  [[127], 8], // loopback
  [[169, 254], 16], // link-local (RFC 3927), cloud metadata services
  [[172, 16], 12], // private (RFC 1918)
  [[192, 0, 0], 24], // IETF protocol assignments (RFC 6890)
  [[192, 0, 2], 24], // TEST-NET-1 (RFC 5737)
  [[192, 168], 16], // private (RFC 1918)
  [[198, 18], 15], // benchmarking (RFC 2544)
  [[198, 51, 100], 24], // TEST-NET-2
  [[203, 0, 113], 24], // TEST-NET-3
  [[224], 4], // multicast
  [[240], 4], // reserved, and 255.255.255.255 (limited broadcast)
];

const NON_PUBLIC_V6: readonly Prefix[] = [
  // ::/96: the unspecified address ::, loopback ::1 and the deprecated IPv4-compatible
  // addresses (RFC 4291 §2.5.5.1).
  [[], 96],
  [[0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], 48], // 64:ff9b:1::/48 local-use NAT64 (RFC 8215)
  [[0x01, 0x00, 0, 0, 0, 0, 0, 0], 64], // 100::/64 discard-only (RFC 6666)
  [[0x20, 0x01, 0x0d, 0xb8], 32], // documentation (RFC 3849)
  [[0xfc], 7], // unique local (RFC 4193)
  [[0xfe, 0x80], 10], // link-local
  [[0xff], 8], // multicast
];

/** ::ffff:0:0/96 (IPv4-mapped) and 64:ff9b::/96 (NAT64, RFC 6052): the last 4 bytes are IPv4. */
const EMBEDDED_V4: readonly Prefix[] = [
  [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 96],
  [[0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], 96],
];

/**
 * 2002::/16 (6to4, RFC 3056 §2): bytes 2–5 are the IPv4 address of the relay the traffic goes
 * to, so the address is as public as that IPv4 address.
 */
const SIX_TO_FOUR: Prefix = [[0x20, 0x02], 16];

function matches(bytes: Uint8Array, [prefix, bits]: Prefix): boolean {
  for (let bit = 0; bit < bits; bit += 8) {
    const want = prefix[bit / 8] ?? 0;
    const mask = bits - bit >= 8 ? 0xff : (0xff << (8 - (bits - bit))) & 0xff;
    if (((bytes[bit / 8] ?? 0) & mask) !== (want & mask)) return false;
  }
  return true;
}

/** The 4 or 16 bytes of an address in any text form `net.isIP` accepts; null otherwise. */
function addressBytes(address: string): Uint8Array | null {
  const family = net.isIP(address);
  if (family === 4) return ipAddressBytes(address);
  if (family !== 6 || address.includes('%')) return null;
  // The URL parser puts IPv6 text (embedded dotted IPv4 included) into the compressed hex form
  // `ipAddressBytes` reads.
  return ipAddressBytes(new URL(`http://[${address}]/`).hostname.slice(1, -1));
}

function isPublicV4(bytes: Uint8Array): boolean {
  return !NON_PUBLIC_V4.some((prefix) => matches(bytes, prefix));
}

/**
 * Whether `address` (IPv4 or IPv6 text) is globally routable: false for loopback, private,
 * shared, link-local, documentation, benchmarking, multicast, reserved and unspecified
 * addresses, for local-use NAT64 (64:ff9b:1::/48), for an IPv4-mapped, NAT64 or 6to4 address
 * whose IPv4 is one of those, and for anything
 * that is not an IP address.
 */
export function isPublicAddress(address: string): boolean {
  const bytes = addressBytes(address);
  if (bytes === null) return false;
  if (bytes.length === 4) return isPublicV4(bytes);
  if (EMBEDDED_V4.some((prefix) => matches(bytes, prefix))) return isPublicV4(bytes.subarray(12));
  if (matches(bytes, SIX_TO_FOUR)) return isPublicV4(bytes.subarray(2, 6));
  return !NON_PUBLIC_V6.some((prefix) => matches(bytes, prefix));
}
