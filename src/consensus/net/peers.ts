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
  /**
   * The raw Ed25519 key the peer must authenticate with, when known (its validator key): a
   * certificate with the peer's name but another key is refused, dialled or dialling.
   */
  readonly publicKey?: Uint8Array;
}

export interface ConsensusPeer {
  readonly id: string;
  readonly address: SocketAddress;
  /** Null: any key (the certificate name alone identifies the peer). */
  readonly publicKey: Uint8Array | null;
}

/**
 * A peer found at runtime rather than in configuration (the node takes the validators that
 * registered themselves in the service catalog): dialled like a listed peer, authenticated like
 * an unlisted one (`setDiscoveredPeers`).
 */
export type DiscoveredPeerConfig = ConsensusPeerConfig;

export type DiscoveredPeer = ConsensusPeer;

/** Certificate names, as src/crypto/x509.ts accepts them (SPIFFE path segment, ≤ 64). */
const PEER_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Which side of a pair opens the gossip stream: the peer whose id sorts first (UTF-16 code unit
 * order, the same on every node). The other side only accepts, so each pair has one stream.
 */
export function dialsFirst(self: string, peer: string): boolean {
  return self < peer;
}

export function parsePeerAddress(
  text: string,
  code: ConsensusNetworkErrorCode = ConsensusNetworkErrorCode.INVALID_OPTIONS,
): SocketAddress {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text);
  const plain = /^([^:[\]\s]+):(\d{1,5})$/.exec(text);
  const match = bracketed ?? plain;
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port >= 1 && port <= 65_535) || (match[1] as string).length > 253) {
    throw new ConsensusNetworkError(
      code,
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
    const key = peer.publicKey;
    if (key !== undefined && !(key instanceof Uint8Array && key.length === 32)) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.INVALID_OPTIONS,
        `peers[${index}] (${peer.id}): publicKey must be a 32-byte Ed25519 key`,
        { peer: peer.id },
      );
    }
    table.set(
      peer.id,
      Object.freeze({
        id: peer.id,
        address: parsePeerAddress(peer.address),
        publicKey: key === undefined ? null : Uint8Array.from(key),
      }),
    );
  }
  return table;
}

/**
 * Checks a set of discovered peers against this node's id and its configured table: each id a
 * certificate name that is neither this node, nor a listed peer, nor repeated; each address
 * `host:port`; each key, when given, 32 bytes; at most `max` of them. Throws
 * `ConsensusNetworkError` INVALID_PEER or TOO_MANY_PEERS.
 */
export function parseDiscoveredPeers(
  self: string,
  listed: ReadonlyMap<string, ConsensusPeer>,
  peers: readonly DiscoveredPeerConfig[],
  max: number,
): ReadonlyMap<string, DiscoveredPeer> {
  const code = ConsensusNetworkErrorCode.INVALID_PEER;
  if (!Array.isArray(peers)) {
    throw new ConsensusNetworkError(code, 'discovered peers must be an array', {});
  }
  if (peers.length > max) {
    throw new ConsensusNetworkError(
      ConsensusNetworkErrorCode.TOO_MANY_PEERS,
      `${peers.length} discovered peers, at most ${max} (the unlisted policy's maxDiscoveredPeers)`,
      { count: peers.length, max },
    );
  }
  const found = new Map<string, DiscoveredPeer>();
  for (const [index, peer] of peers.entries()) {
    const what = `discovered peer ${index}`;
    if (peer === null || typeof peer !== 'object') {
      throw new ConsensusNetworkError(code, `${what} is not an object`, { index });
    }
    checkId(peer.id, `${what}: id`, code);
    const why =
      peer.id === self
        ? 'is this node'
        : listed.has(peer.id)
          ? 'is a configured peer'
          : found.has(peer.id)
            ? 'is given twice'
            : null;
    if (why !== null) {
      throw new ConsensusNetworkError(code, `${what} (${peer.id}) ${why}`, { peer: peer.id });
    }
    if (typeof peer.address !== 'string') {
      throw new ConsensusNetworkError(code, `${what} (${peer.id}): address must be a string`, {
        peer: peer.id,
      });
    }
    const address = parsePeerAddress(peer.address, code);
    const key = peer.publicKey;
    if (key !== undefined && !(key instanceof Uint8Array && key.length === 32)) {
      throw new ConsensusNetworkError(
        code,
        `${what} (${peer.id}): publicKey must be a 32-byte Ed25519 key`,
        { peer: peer.id },
      );
    }
    found.set(
      peer.id,
      Object.freeze({
        id: peer.id,
        address,
        publicKey: key === undefined ? null : Uint8Array.from(key),
      }),
    );
  }
  return found;
}

function checkId(
  id: unknown,
  what: string,
  code: ConsensusNetworkErrorCode = ConsensusNetworkErrorCode.INVALID_OPTIONS,
): void {
  if (typeof id !== 'string' || !PEER_ID.test(id) || id === '.' || id === '..') {
    throw new ConsensusNetworkError(
      code,
      `${what} must be a certificate name (1-64 of A-Z a-z 0-9 . _ -)`,
      { id: typeof id === 'string' ? id : typeof id },
    );
  }
}
