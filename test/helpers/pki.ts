import type { KeyObject } from 'node:crypto';
import {
  ed25519PrivateKeyToPkcs8Pem,
  ed25519RawPublicKey,
  ed25519Seed,
  generateEd25519KeyPair,
} from '../../src/crypto/ed25519.js';
import { defaultFalcon, type FalconBackend, type FalconKeyPair } from '../../src/crypto/falcon.js';
import {
  createRootCa,
  derToPem,
  fingerprint,
  identityUri,
  issueIntermediate,
  issueNodeCertificate,
  parseCertificate,
  type CertificateAuthority,
  type CertificateRole,
} from '../../src/crypto/x509.js';
import type { RevocationCheck } from '../../src/stoq/auth/peer.js';

/**
 * A test PKI: a cluster root CA, an intermediate (as each validator holds one), and node
 * identities with Ed25519 transport keys and FALCON-1024 keys, including the broken variants
 * authentication must refuse (expired, not yet valid, revoked, foreign CA, other cluster).
 *
 * FALCON key generation costs tens of milliseconds: create one PKI per test file and reuse an
 * identity's FALCON key (`falcon` option) for its variants.
 */

const DAY_MS = 86_400_000;

export interface TestTransportKey {
  /** Raw 32-byte Ed25519 public key (what transports report as `peerKey`). */
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
  /** RFC 8032 private seed, e.g. for the QUIC transport. */
  readonly seed: Uint8Array;
  readonly privateKeyPem: string;
}

export interface TestIdentity {
  readonly cluster: string;
  readonly role: CertificateRole;
  readonly name: string;
  readonly uri: string;
  readonly transportKey: TestTransportKey;
  readonly falcon: FalconKeyPair;
  /** Leaf DER. */
  readonly certificate: Uint8Array;
  /** Leaf first, then intermediates (not the root). */
  readonly chain: readonly Uint8Array[];
  /** The chain as one PEM bundle, leaf first. */
  readonly chainPem: string;
  readonly serialNumber: string;
  readonly fingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** `valid` spans yesterday to tomorrow; the others lie entirely in the past or future. */
export type TestValidity =
  'valid' | 'expired' | 'not-yet-valid' | { readonly notBefore: Date; readonly notAfter: Date };

export interface IssueTestIdentityOptions {
  readonly name: string;
  readonly role?: CertificateRole;
  /** Default the PKI's cluster. */
  readonly cluster?: string;
  /** Default the PKI's intermediate. */
  readonly issuer?: CertificateAuthority;
  readonly validity?: TestValidity;
  /** Reuse a FALCON key pair (saves key generation); default a fresh one. */
  readonly falcon?: FalconKeyPair;
  /** Reuse a transport key (e.g. a second certificate for the same node); default a fresh one. */
  readonly transportKey?: TestTransportKey;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface TestPki {
  readonly cluster: string;
  readonly falconBackend: FalconBackend;
  readonly root: CertificateAuthority;
  readonly intermediate: CertificateAuthority;
  /** Trust roots to configure: the root's DER. */
  readonly roots: readonly Uint8Array[];
  issue(options: IssueTestIdentityOptions): Promise<TestIdentity>;
  /** Marks a certificate revoked for `revocation`. */
  revoke(identity: Pick<TestIdentity, 'fingerprint'>): void;
  /** A revocation check backed by this PKI's revocation list (`good` for everything else). */
  readonly revocation: RevocationCheck;
  /** How often `revocation` was consulted, by certificate fingerprint. */
  readonly revocationQueries: ReadonlyMap<string, number>;
}

export interface CreateTestPkiOptions {
  readonly cluster?: string;
  readonly falconBackend?: FalconBackend;
}

export function createTestTransportKey(): TestTransportKey {
  const { privateKey } = generateEd25519KeyPair();
  return {
    publicKey: ed25519RawPublicKey(privateKey),
    privateKey,
    seed: ed25519Seed(privateKey),
    privateKeyPem: ed25519PrivateKeyToPkcs8Pem(privateKey),
  };
}

function window(validity: TestValidity, now: number): { notBefore: Date; notAfter: Date } {
  if (typeof validity === 'object') return validity;
  const offsets = {
    valid: [-DAY_MS, DAY_MS],
    expired: [-2 * DAY_MS, -DAY_MS],
    'not-yet-valid': [DAY_MS, 2 * DAY_MS],
  }[validity];
  return { notBefore: new Date(now + offsets[0]!), notAfter: new Date(now + offsets[1]!) };
}

export async function createTestPki(options: CreateTestPkiOptions = {}): Promise<TestPki> {
  const cluster = options.cluster ?? 'test-cluster';
  const falconBackend = options.falconBackend ?? defaultFalcon();
  const root = await createRootCa({ cluster, validityDays: 30 });
  const intermediate = await issueIntermediate({
    issuer: root,
    commonName: `${cluster} test intermediate`,
    organization: cluster,
    validityDays: 30,
  });
  const revoked = new Set<string>();
  const revocationQueries = new Map<string, number>();

  return {
    cluster,
    falconBackend,
    root,
    intermediate,
    roots: [root.certificate],
    revocationQueries,
    revoke(identity) {
      revoked.add(identity.fingerprint);
    },
    revocation: ({ certificate }) => {
      revocationQueries.set(
        certificate.fingerprint,
        (revocationQueries.get(certificate.fingerprint) ?? 0) + 1,
      );
      return revoked.has(certificate.fingerprint) ? 'revoked' : 'good';
    },
    async issue(issue) {
      const role = issue.role ?? 'node';
      const identityCluster = issue.cluster ?? cluster;
      const transportKey = issue.transportKey ?? createTestTransportKey();
      const falcon = issue.falcon ?? (await falconBackend.generateKeyPair());
      const { notBefore, notAfter } = window(issue.validity ?? 'valid', Date.now());
      const issued = await issueNodeCertificate({
        issuer: issue.issuer ?? intermediate,
        subjectEd25519PublicKey: transportKey.publicKey,
        falconPublicKey: falcon.publicKey,
        cluster: identityCluster,
        role,
        name: issue.name,
        notBefore,
        notAfter,
        ...(issue.dnsNames ? { dnsNames: issue.dnsNames } : {}),
        ...(issue.ipAddresses ? { ipAddresses: issue.ipAddresses } : {}),
      });
      const parsed = parseCertificate(issued.certificate);
      return {
        cluster: identityCluster,
        role,
        name: issue.name,
        uri: identityUri(identityCluster, role, issue.name),
        transportKey,
        falcon,
        certificate: issued.certificate,
        chain: issued.chain,
        chainPem: issued.chain.map((der) => derToPem(der)).join(''),
        serialNumber: parsed.serialNumber,
        fingerprint: fingerprint(issued.certificate),
        notBefore: parsed.notBefore,
        notAfter: parsed.notAfter,
      };
    },
  };
}
