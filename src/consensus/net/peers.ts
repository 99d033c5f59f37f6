import type { SocketAddress } from '../../stoq/index.js';
import { ConsensusNetworkError, ConsensusNetworkErrorCode } from './errors.js';

/**
 * The consensus peer table from configuration: who this node exchanges gossip with and where to
 * reach them. An id is the `<name>` of the peer's certificate URI
 * (`spiffe://<cluster>/<role>/<name>`); the cluster is enforced by STOQ authentication.
 */
export interface ConsensusPeerConfig {
  readonly id: string;
  /** `host:port`, or `[v6-address]:port`. */
  readonly address: string;
}

export interface ConsensusPeer {
  readonly id: string;
  readonly address: SocketAddress;
}

/** Certificate names, as src/crypto/x509.ts accepts them (SPIFFE path segment, ≤ 64). */
const PEER_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Which side of a pair opens the gossip stream: the peer whose id sorts first (UTF-16 code unit
 * order, the same on every node). The other side only accepts, so each pair has one stream.
 */
export function dialsFirst(self: string, peer: string): boolean {
  return self < peer;
}

export function parsePeerAddress(text: string): SocketAddress {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text);
  const plain = /^([^:[\]\s]+):(\d{1,5})$/.exec(text);
  const match = bracketed ?? plain;
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port >= 1 && port <= 65_535) || (match[1] as string).length > 253) {
    throw new ConsensusNetworkError(
      ConsensusNetworkErrorCode.INVALID_OPTIONS,
      `peer address ${JSON.stringify(text)} is not host:port or [v6]:port with a port in 1..65535`,
      { address: text },
    );
  }
  return { host: match[1] as string, port };
}

/** Checks ids and addresses, and that the table neither repeats a peer nor names this node. */
export function parsePeerTable(
  self: string,
  peers: readonly ConsensusPeerConfig[],
): ReadonlyMap<string, ConsensusPeer> {
  checkId(self, 'self');
  const table = new Map<string, ConsensusPeer>();
  for (const [index, peer] of peers.entries()) {
    checkId(peer.id, `peers[${index}].id`);
    if (peer.id === self) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.INVALID_OPTIONS,
        `peers[${index}] is this node (${self})`,
        { peer: peer.id },
      );
    }
    if (table.has(peer.id)) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.INVALID_OPTIONS,
        `peer ${peer.id} is listed twice`,
        { peer: peer.id },
      );
    }
    table.set(peer.id, Object.freeze({ id: peer.id, address: parsePeerAddress(peer.address) }));
  }
  return table;
}

function checkId(id: unknown, what: string): void {
  if (typeof id !== 'string' || !PEER_ID.test(id) || id === '.' || id === '..') {
    throw new ConsensusNetworkError(
      ConsensusNetworkErrorCode.INVALID_OPTIONS,
      `${what} must be a certificate name (1-64 of A-Z a-z 0-9 . _ -)`,
      { id: typeof id === 'string' ? id : typeof id },
    );
  }
}
