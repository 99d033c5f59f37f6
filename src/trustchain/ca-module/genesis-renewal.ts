import { createPublicKey, type KeyObject } from 'node:crypto';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { defaultFalcon, type FalconBackend } from '../../crypto/falcon.js';
import {
  FALCON_PUBLIC_KEY_EXTENSION_OID,
  X509Error,
  certificateFalconKey,
  parseCertificate,
  type ParsedCertificate,
} from '../../crypto/x509.js';
import { createCsr } from '../ca/csr.js';
import { ipAddressBytes, isWildcard, wildcardBase } from '../ca/names.js';
import { PROFILES, PROFILE_NAMES, leafKeyUsageBits, type ProfileName } from '../ca/profiles.js';
import {
  proveFalconPossession,
  type CertificateRequest,
  type CertificateRequestInput,
} from '../ca/request.js';
import type { CaRequester } from './config.js';
import { CaModuleError, CaModuleErrorCode } from './errors.js';

/**
 * Renewal of a genesis bootstrap certificate (docs/ca.md, "Renewing a genesis certificate").
 * A consensus-issued certificate is renewed by re-issuing its committed request; a genesis
 * certificate was issued by `cluster init` outside consensus and has none, so its `renew`
 * carries one (`req`): a CSR signed by the certificate's own key, with the certificate's names,
 * the profile its key usages are those of, and — when it certifies one — its FALCON-1024 key
 * with a proof of possession. The `ca` module accepts the request only if re-issuing it changes
 * nothing a holder could gain from (`genesisRenewalMismatch`); the result is an ordinary
 * issuance, so the renewed certificate's later renewals re-issue that request.
 */

/** What a genesis renewal's request got wrong (`CA_RENEWAL_MISMATCH` `detail.field`). */
export type GenesisRenewalField = 'request' | 'lifetime' | 'key' | 'profile' | 'names' | 'falcon';

function keyUsageMask(bits: readonly number[]): number {
  return bits.reduce((mask, bit) => mask | (1 << bit), 0);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

/**
 * The profile a certificate's renewal is issued under: the one whose extended key usage (in
 * its encoded order) and leaf key usage for the certificate's key type are exactly the
 * certificate's, so the renewal has the same purposes. `cluster init`'s certificates have the
 * `node` profile's (serverAuth and clientAuth, digitalSignature). Null when no profile fits.
 */
export function genesisCertificateProfile(certificate: ParsedCertificate): ProfileName | null {
  const keyType = certificate.publicKey.asymmetricKeyType;
  const csrKeyType =
    keyType === 'ed25519'
      ? 'ed25519'
      : keyType === 'ec'
        ? 'p256'
        : keyType === 'rsa'
          ? 'rsa'
          : null;
  if (csrKeyType === null || certificate.extendedKeyUsage === null) return null;
  const extendedKeyUsage = certificate.extendedKeyUsage;
  return (
    PROFILE_NAMES.find((name) => {
      const profile = PROFILES[name];
      return (
        sameList(profile.extendedKeyUsage, extendedKeyUsage) &&
        keyUsageMask(leafKeyUsageBits(profile, csrKeyType)) === certificate.keyUsage
      );
    }) ?? null
  );
}

/** The FALCON-1024 key a certificate certifies, or null when it carries none. */
function falconKeyOf(certificate: ParsedCertificate): Uint8Array | null {
  return certificate.extensions.some(
    (extension) => extension.oid === FALCON_PUBLIC_KEY_EXTENSION_OID,
  )
    ? certificateFalconKey(certificate)
    : null;
}

const sortedSet = (values: readonly string[]): string => [...values].sort().join('\n');

/**
 * How `request` fails to be a renewal of the genesis certificate `certificate`, or null: it
 * must carry no lifetime of its own (the `renew`'s `lifetime` is the renewal's), its CSR's
 * subject key must be the certificate's (SubjectPublicKeyInfo byte for byte), its profile the
 * one `genesisCertificateProfile` gives, its DNS names, IP addresses and URIs exactly the
 * certificate's subjectAltName entries (as sets; addresses by their bytes), and its FALCON key
 * the one the certificate carries (none when it carries none).
 */
export function genesisRenewalMismatch(
  request: CertificateRequest,
  certificate: ParsedCertificate,
): { readonly field: GenesisRenewalField; readonly message: string } | null {
  if (request.lifetimeSeconds !== null) {
    return {
      field: 'lifetime',
      message: "the request carries a lifetime: a renewal's lifetime is the renew's own",
    };
  }
  if (!bytesEqual(request.csr.subjectPublicKeyInfo, certificate.subjectPublicKeyInfo)) {
    return { field: 'key', message: "the CSR's subject key is not the certificate's" };
  }
  const profile = genesisCertificateProfile(certificate);
  if (profile !== request.profile) {
    return {
      field: 'profile',
      message:
        profile === null
          ? "no profile has the certificate's key usages"
          : `the certificate's key usages are the ${profile} profile's, not ${request.profile}'s`,
    };
  }
  const addresses = (list: readonly string[]): string =>
    sortedSet(list.map((address) => toHex(ipAddressBytes(address))));
  if (
    sortedSet(request.dnsNames) !== sortedSet(certificate.dnsNames) ||
    addresses(request.ipAddresses) !== addresses(certificate.ipAddresses) ||
    sortedSet(request.uris) !== sortedSet(certificate.uris)
  ) {
    return { field: 'names', message: "the requested names are not the certificate's" };
  }
  let falcon: Uint8Array | null;
  try {
    falcon = falconKeyOf(certificate);
  } catch (error) {
    if (error instanceof X509Error) {
      return { field: 'falcon', message: `the certificate's FALCON key: ${error.message}` };
    }
    throw error;
  }
  const requested = request.falcon?.publicKey ?? null;
  if (
    (falcon === null) !== (requested === null) ||
    (falcon !== null && requested !== null && !bytesEqual(falcon, requested))
  ) {
    return { field: 'falcon', message: "the request's FALCON key is not the certificate's" };
  }
  return null;
}

/**
 * The requester a genesis renewal's policy check runs for: the genesis entry's account, allowed
 * the request's profile and exactly its names. The names were authorised by the genesis every
 * validator agreed on, so the account's grant is not consulted for them; the profile's key,
 * FALCON, name-kind, URI-role and lifetime rules and the cluster's trust domain still apply.
 * `requireDcv` is off: a renewal re-issues names without new attestations.
 */
export function genesisRenewalRequester(
  account: Uint8Array,
  request: CertificateRequest,
): CaRequester {
  return {
    account: toHex(account),
    profiles: [request.profile],
    dnsZones: request.dnsNames.map(wildcardBase),
    wildcards: request.dnsNames.some(isWildcard),
    ipRanges: [...request.ipAddresses],
    uriPrefixes: [...request.uris],
    externalDns: false,
    requireDcv: false,
  };
}

/**
 * The request renewing genesis certificate `certificate` (DER): a CSR signed by `privateKey`
 * (the certificate's key) naming the certificate's subjectAltName entries, the certificate's
 * profile, and for a certificate with a FALCON key that key with a proof of possession by
 * `falconSecretKey`. Throws `CaModuleError CA_RENEWAL_MISMATCH` when the key is not the
 * certificate's, no profile fits, or a FALCON secret key is needed and missing.
 */
export async function genesisRenewalRequest(
  certificate: Uint8Array,
  keys: { readonly privateKey: KeyObject; readonly falconSecretKey?: Uint8Array },
  falcon: FalconBackend = defaultFalcon(),
): Promise<CertificateRequestInput> {
  const parsed = parseCertificate(certificate);
  const mismatch = (field: GenesisRenewalField, message: string): never => {
    throw new CaModuleError(CaModuleErrorCode.RENEWAL_MISMATCH, message, { field });
  };
  const spki = new Uint8Array(
    createPublicKey(keys.privateKey).export({ format: 'der', type: 'spki' }),
  );
  if (!bytesEqual(spki, parsed.subjectPublicKeyInfo)) {
    mismatch('key', "the private key is not the certificate's key");
  }
  const profile = genesisCertificateProfile(parsed);
  if (profile === null) return mismatch('profile', "no profile has the certificate's key usages");
  const names = {
    dnsNames: [...parsed.dnsNames],
    ipAddresses: [...parsed.ipAddresses],
    uris: [...parsed.uris],
  };
  const csr = createCsr({ privateKey: keys.privateKey, ...names });
  const falconKey = falconKeyOf(parsed);
  if (falconKey === null) return { profile, csr, ...names };
  if (keys.falconSecretKey === undefined) {
    return mismatch('falcon', 'the certificate carries a FALCON key: its secret key is needed');
  }
  return {
    profile,
    csr,
    ...names,
    falcon: {
      publicKey: falconKey,
      proof: await proveFalconPossession(spki, keys.falconSecretKey, falcon),
    },
  };
}
