import { isIP } from 'node:net';
import { parseIPv6 } from '../../trustchain/dns/index.js';

/**
 * How the TCP and DoQ servers share their connection slots between clients: each client address
 * holds at most `perAddress` of them (and each IPv6 /48 at most `perNetwork`), and when every
 * slot is taken the connection idle the longest (no query in flight) makes room for the
 * newcomer, so a client holding many quiet connections cannot lock everyone else out (RFC 7766
 * §6.2.3 lets a server close idle connections; RFC 9250 §5.5 the same for DoQ). A connection
 * whose client has taken none of its answers for a while counts as idle too (`stalledSince`):
 * else clients that ask for large answers and never read them would hold every slot.
 */

/** The IPv4 address inside an IPv4-mapped IPv6 address, else undefined. */
function mappedIPv4(address: string): string | undefined {
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
}

/** The bytes of an IPv6 address (zone index dropped) that is not IPv4-mapped, else undefined. */
function ipv6Bytes(address: string): Uint8Array | undefined {
  if (mappedIPv4(address) !== undefined) return undefined;
  const unzoned = address.split('%')[0]!;
  return isIP(unzoned) === 6 ? parseIPv6(unzoned) : undefined;
}

/**
 * The key a client address counts under: an IPv4 address (also IPv4-mapped IPv6) alone, an IPv6
 * address with its /64, the smallest network one subscriber usually gets.
 */
export function clientAddressKey(address: string): string {
  const mapped = mappedIPv4(address);
  if (mapped !== undefined) return mapped;
  const bytes = ipv6Bytes(address);
  return bytes === undefined ? address : `${Buffer.from(bytes.subarray(0, 8)).toString('hex')}/64`;
}

/**
 * The key of the network an IPv6 client address lies in, its /48 (what a site is usually
 * given, RFC 6177 §2), where one holder has 65,536 /64s; undefined for IPv4.
 */
export function clientNetworkKey(address: string): string | undefined {
  const bytes = ipv6Bytes(address);
  return bytes === undefined
    ? undefined
    : `${Buffer.from(bytes.subarray(0, 6)).toString('hex')}/48`;
}

/**
 * Open connections per client address key (`clientAddressKey`), bounded by `perAddress`, and
 * per IPv6 /48 (`clientNetworkKey`), bounded by `perNetwork`.
 */
export class AddressSlots {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly perAddress: number,
    private readonly perNetwork: number,
  ) {}

  /**
   * Takes a slot for the client at `address` (as the socket reports it); false when its address
   * or its /48 already holds its limit of connections.
   */
  take(address: string): boolean {
    const key = clientAddressKey(address);
    const network = clientNetworkKey(address);
    if ((this.open.get(key) ?? 0) >= this.perAddress) return false;
    if (network !== undefined && (this.open.get(network) ?? 0) >= this.perNetwork) return false;
    this.count(key, 1);
    if (network !== undefined) this.count(network, 1);
    return true;
  }

  /** Gives back a slot `take` granted to `address`. */
  release(address: string): void {
    this.count(clientAddressKey(address), -1);
    const network = clientNetworkKey(address);
    if (network !== undefined) this.count(network, -1);
  }

  private count(key: string, delta: 1 | -1): void {
    const count = (this.open.get(key) ?? 0) + delta;
    if (count <= 0) this.open.delete(key);
    else this.open.set(key, count);
  }
}

/** What eviction needs to know of a connection. */
export interface IdleState {
  /** `performance.now()` when its last query finished (or it opened); lower is idle longest. */
  readonly idleSince: number;
  /**
   * Whether it owes its client something (a query read and not yet answered, an answer not yet
   * written, input held) or is already stopping; such a connection is not evicted, unless it is
   * stalled (below).
   */
  readonly busy: boolean;
  /**
   * While answers wait for the client to take them: `performance.now()` when one was last taken
   * (or, when none has been since, when the first of them was queued). Undefined when none waits,
   * and for a transport that does not track it.
   */
  readonly stalledSince?: number | undefined;
}

/**
 * The connection that has been idle the longest among those that may be evicted: the ones with
 * no query in flight, and the busy ones whose client has taken no answer since
 * `stalledBefore` (a `performance.now()` time; by default none of them).
 */
export function longestIdle<T extends IdleState>(
  connections: Iterable<T>,
  stalledBefore = -Infinity,
): T | undefined {
  let found: T | undefined;
  for (const connection of connections) {
    if (connection.busy) {
      const stalled = connection.stalledSince;
      if (stalled === undefined || stalled > stalledBefore) continue;
    }
    if (found === undefined || connection.idleSince < found.idleSince) found = connection;
  }
  return found;
}

/**
 * Takes a slot for a new connection from `address` (the remote address): false when it is
 * refused, its address or /48 holding its cap already or, at `limit`, no connection being idle
 * (or stalled since before `stalledBefore`, see `longestIdle`). At the limit the connection idle
 * longest leaves `connections` and is handed to `evict`: its slot is free from then on, before
 * it has finished closing. The caller adds the new connection.
 */
export function takeSlot<T extends IdleState>(
  connections: Set<T>,
  perAddress: AddressSlots,
  address: string,
  limit: number,
  evict: (idlest: T) => void,
  stalledBefore = -Infinity,
): boolean {
  if (!perAddress.take(address)) return false;
  if (connections.size >= limit) {
    const idlest = longestIdle(connections, stalledBefore);
    if (idlest === undefined) {
      perAddress.release(address);
      return false;
    }
    connections.delete(idlest);
    evict(idlest);
  }
  return true;
}
