import { p256PublicKeyFromRaw } from '../../crypto/p256.js';
import { ALGORITHM_ECDSAP256SHA256, DNSKEY_FLAG_ZONE, DNSKEY_PROTOCOL } from '../dns/index.js';
import type { DnskeyData } from '../dns/index.js';
import { DnsZonesGenesisError, DnsZonesGenesisErrorCode } from './errors.js';

/**
 * The DNSKEY a genesis zone entry may carry (`zones[i].dnskey`): the public half of the zone's
 * signing key, so anyone holding the genesis file can derive the DS record and the trust anchor.
 * Only what the node's signer can use is accepted: ECDSA P-256 (algorithm 13, RFC 6605), protocol
 * 3, the Zone Key flag set (RFC 4034 §2.1.1), a 64-byte public key that is a point on the curve.
 */
export function parseGenesisDnskey(
  input: {
    readonly flags: number;
    readonly protocol: number;
    readonly algorithm: number;
    readonly publicKey: string;
  },
  path: string,
): DnskeyData {
  const invalid = (field: string, message: string): never => {
    throw new DnsZonesGenesisError(
      DnsZonesGenesisErrorCode.INVALID,
      `${path}.${field}: ${message}`,
      {
        path: `${path}.${field}`,
      },
    );
  };
  const { flags, protocol, algorithm, publicKey } = input;
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff || (flags & DNSKEY_FLAG_ZONE) === 0) {
    invalid('flags', `expected 16-bit flags with the Zone Key bit (256), got ${flags}`);
  }
  if (protocol !== DNSKEY_PROTOCOL) {
    invalid('protocol', `expected ${DNSKEY_PROTOCOL} (RFC 4034 §2.1.2), got ${protocol}`);
  }
  if (algorithm !== ALGORITHM_ECDSAP256SHA256) {
    invalid(
      'algorithm',
      `expected ${ALGORITHM_ECDSAP256SHA256} (ECDSA P-256, the algorithm the nodes sign with), got ${algorithm}`,
    );
  }
  const bytes = Buffer.from(publicKey, 'base64');
  if (bytes.toString('base64') !== publicKey || bytes.length !== 64) {
    invalid(
      'publicKey',
      'expected the 64-byte P-256 point x || y (RFC 6605 §4) in canonical padded base64',
    );
  }
  try {
    p256PublicKeyFromRaw(Uint8Array.of(0x04, ...bytes));
  } catch {
    invalid('publicKey', 'not a point on the P-256 curve');
  }
  return { flags, protocol, algorithm, publicKey: new Uint8Array(bytes) };
}
