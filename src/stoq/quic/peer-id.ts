import { isIP } from 'node:net';
import { base58 } from '@scure/base';
import {
  ed25519Libp2pPublicKeyProto,
  ed25519PublicKeyFromLibp2pProto,
} from '../../crypto/ed25519.js';
import { StoqError, StoqErrorCode } from '../errors.js';
import type { ProvenKey, SocketAddress } from '../transport.js';

/**
 * The quinn binding reports the peer as a multiaddr,
 * `/ip4|ip6/<address>/udp/<port>/quic-v1/p2p/<peer id>`. The peer id is the base58btc text of an
 * identity multihash (code 0x00, length 0x24) over the libp2p PublicKey protobuf
 * `08 01 12 20 || key` (libp2p peer-ids spec: keys of 42 bytes or less are inlined). The libp2p
 * TLS handshake inside quinn proved the peer holds that key (libp2p TLS spec: the certificate
 * extension carries the host key's signature over the certificate key).
 */

const IDENTITY_MULTIHASH = Uint8Array.from([0x00, 0x24]);

export interface QuicPeer {
  readonly address: SocketAddress;
  readonly key: ProvenKey;
}

function malformed(multiaddr: string, reason: string, cause?: unknown): StoqError {
  return new StoqError(
    StoqErrorCode.HANDSHAKE_FAILED,
    `QUIC peer address ${multiaddr} is malformed: ${reason}`,
    { multiaddr },
    { cause },
  );
}

/** Raw Ed25519 key in a libp2p peer id; throws `HANDSHAKE_FAILED` for anything else. */
export function peerKeyFromPeerId(peerId: string): Uint8Array {
  let multihash: Uint8Array;
  try {
    multihash = base58.decode(peerId);
  } catch (error) {
    throw malformed(peerId, 'peer id is not base58btc', error);
  }
  if (multihash[0] !== IDENTITY_MULTIHASH[0] || multihash[1] !== IDENTITY_MULTIHASH[1]) {
    throw malformed(peerId, 'peer id is not an identity multihash of an Ed25519 key');
  }
  try {
    return ed25519PublicKeyFromLibp2pProto(multihash.subarray(IDENTITY_MULTIHASH.length));
  } catch (error) {
    throw malformed(peerId, 'peer id does not hold a libp2p Ed25519 public key', error);
  }
}

/** The libp2p peer id text of a raw Ed25519 key (the inverse of `peerKeyFromPeerId`). */
export function peerIdFromKey(publicKey: Uint8Array): string {
  const proto = ed25519Libp2pPublicKeyProto(publicKey);
  const multihash = new Uint8Array(IDENTITY_MULTIHASH.length + proto.length);
  multihash.set(IDENTITY_MULTIHASH);
  multihash.set(proto, IDENTITY_MULTIHASH.length);
  return base58.encode(multihash);
}

export function parsePeerMultiaddr(multiaddr: string): QuicPeer {
  const parts = multiaddr.split('/');
  const [empty, family, host, udp, port, quic, p2p, peerId] = parts;
  if (
    parts.length !== 8 ||
    empty !== '' ||
    udp !== 'udp' ||
    quic !== 'quic-v1' ||
    p2p !== 'p2p' ||
    host === undefined ||
    port === undefined ||
    peerId === undefined
  ) {
    throw malformed(multiaddr, 'expected /ip4|ip6/<address>/udp/<port>/quic-v1/p2p/<peer id>');
  }
  const expectedFamily = family === 'ip4' ? 4 : family === 'ip6' ? 6 : 0;
  if (expectedFamily === 0 || isIP(host) !== expectedFamily) {
    throw malformed(multiaddr, `${host} is not an ${String(family)} address`);
  }
  const portNumber = Number(port);
  if (!/^\d{1,5}$/.test(port) || portNumber > 65535) {
    throw malformed(multiaddr, `${port} is not a UDP port`);
  }
  return {
    address: { host, port: portNumber },
    key: { algorithm: 'ed25519', publicKey: peerKeyFromPeerId(peerId) },
  };
}
