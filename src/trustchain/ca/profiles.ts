import type { CsrKeyType } from './csr.js';

/**
 * Certificate profiles: which keys and names a certificate of each kind may have, the key usage
 * and extended key usage it gets, and its maximum lifetime. The lifetimes are short on purpose
 * (revocation is the slow path; expiry is the fast one); a policy may lower or raise them.
 */
export type ProfileName = 'node' | 'service' | 'client';
export const PROFILE_NAMES: readonly ProfileName[] = ['node', 'service', 'client'];

/** RFC 5280 §4.2.1.3 bit numbers (flag `1 << bit`, as `KeyUsage` in src/crypto/x509.ts). */
export const KeyUsageBit = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

export interface Profile {
  readonly name: ProfileName;
  readonly keyTypes: readonly CsrKeyType[];
  /** RFC 5280 §4.2.1.12 purposes, in the order they are encoded. */
  readonly extendedKeyUsage: readonly string[];
  readonly maxLifetimeSeconds: number;
  readonly minLifetimeSeconds: number;
  readonly dnsNames: boolean;
  readonly ipAddresses: boolean;
  readonly wildcards: boolean;
  /** How many URI SANs (SPIFFE IDs): exactly one, at most one. */
  readonly uris: 'one' | 'at-most-one';
  /** `node` identities need a STOQ role path: `spiffe://<cluster>/{node,validator}/<name>`. */
  readonly uriRoles: readonly string[] | null;
  readonly falconKey: 'required' | 'optional';
}

const HOUR = 3600;
const DAY = 24 * HOUR;

export const PROFILES: Readonly<Record<ProfileName, Profile>> = {
  node: {
    name: 'node',
    keyTypes: ['ed25519'],
    extendedKeyUsage: [EKU.serverAuth, EKU.clientAuth],
    maxLifetimeSeconds: 30 * DAY,
    minLifetimeSeconds: HOUR,
    dnsNames: true,
    ipAddresses: true,
    wildcards: false,
    uris: 'one',
    uriRoles: ['node', 'validator'],
    falconKey: 'required',
  },
  service: {
    name: 'service',
    keyTypes: ['p256', 'ed25519', 'rsa'],
    extendedKeyUsage: [EKU.serverAuth],
    maxLifetimeSeconds: 7 * DAY,
    minLifetimeSeconds: HOUR,
    dnsNames: true,
    ipAddresses: true,
    wildcards: true,
    uris: 'at-most-one',
    uriRoles: null,
    falconKey: 'optional',
  },
  client: {
    name: 'client',
    keyTypes: ['p256', 'ed25519', 'rsa'],
    extendedKeyUsage: [EKU.clientAuth],
    maxLifetimeSeconds: DAY,
    minLifetimeSeconds: 5 * 60,
    dnsNames: false,
    ipAddresses: false,
    wildcards: false,
    uris: 'one',
    uriRoles: null,
    falconKey: 'optional',
  },
};

/**
 * Key usage bits of a leaf: digitalSignature always; keyEncipherment as well for RSA keys in
 * server certificates (TLS 1.2 RSA key transport, CA/Browser Forum BR §7.1.2.7.11).
 */
export function leafKeyUsageBits(profile: Profile, keyType: CsrKeyType): number[] {
  return keyType === 'rsa' && profile.name === 'service'
    ? [KeyUsageBit.digitalSignature, KeyUsageBit.keyEncipherment]
    : [KeyUsageBit.digitalSignature];
}
