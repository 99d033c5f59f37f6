import { isIP } from 'node:net';
import { parseIPv6 } from '../../trustchain/dns/index.js';

/**
 * How the TCP and DoQ servers share their connection slots between clients: each client address
 * holds at most `perAddress` of them, and when every slot is taken the connection idle the
 * longest (no query in flight) makes room for the newcomer, so a client holding many quiet
 * connections cannot lock everyone else out (RFC 7766 §6.2.3 lets a server close idle
 * connections; RFC 9250 §5.5 the same for DoQ).
 */

/**
 * The key a client address counts under: an IPv4 address (also IPv4-mapped IPv6) alone, an IPv6
 * address with its /64, the smallest network one subscriber usually gets.
 */
export function clientAddressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  const unzoned = address.split('%')[0]!;
  if (isIP(unzoned) !== 6) return address;
  const bytes = parseIPv6(unzoned);
  return bytes === undefined ? address : `${Buffer.from(bytes.subarray(0, 8)).toString('hex')}/64`;
}

/** Open connections per client address key, bounded by `limit`. */
export class AddressSlots {
  private readonly open = new Map<string, number>();

  constructor(private readonly limit: number) {}

  /** Takes a slot for `key`; false when the address already holds `limit` connections. */
  take(key: string): boolean {
    const count = this.open.get(key) ?? 0;
    if (count >= this.limit) return false;
    this.open.set(key, count + 1);
    return true;
  }

  /** Gives back a slot `take` granted. */
  release(key: string): void {
    const left = (this.open.get(key) ?? 1) - 1;
    if (left <= 0) this.open.delete(key);
    else this.open.set(key, left);
  }
}

/** What eviction needs to know of a connection. */
export interface IdleState {
  /** `performance.now()` when its last query finished (or it opened); lower is idle longer. */
  readonly idleSince: number;
  /**
   * Whether it owes its client something (a query read and not yet answered, an answer not yet
   * written, input held) or is already stopping; such a connection is never evicted.
   */
  readonly busy: boolean;
}

/** The connection that has been idle the longest with no query in flight, if there is one. */
export function longestIdle<T extends IdleState>(connections: Iterable<T>): T | undefined {
  let found: T | undefined;
  for (const connection of connections) {
    if (connection.busy) continue;
    if (found === undefined || connection.idleSince < found.idleSince) found = connection;
  }
  return found;
}

/**
 * Takes a slot for a new connection from `address` (a `clientAddressKey`): false when it is
 * refused, its address holding its cap already or, at `limit`, no connection being idle. At the
 * limit the connection idle longest leaves `connections` and is handed to `evict`: its slot is
 * free from then on, before it has finished closing. The caller adds the new connection.
 */
export function takeSlot<T extends IdleState>(
  connections: Set<T>,
  perAddress: AddressSlots,
  address: string,
  limit: number,
  evict: (idlest: T) => void,
): boolean {
  if (!perAddress.take(address)) return false;
  if (connections.size >= limit) {
    const idlest = longestIdle(connections);
    if (idlest === undefined) {
      perAddress.release(address);
      return false;
    }
    connections.delete(idlest);
    evict(idlest);
  }
  return true;
}
