import { randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import type { GenesisAppValue } from '../consensus/genesis.js';
import { toBase64, toHex } from '../crypto/bytes.js';
import type { FalconBackend, FalconKeyPair } from '../crypto/falcon.js';
import { writeKeyFile, type NodeIdentityKeys } from '../crypto/keyfile.js';
import {
  DNS_NAME_PATTERN,
  FALCON_PUBLIC_KEY_EXTENSION_OID,
  derToPem,
  encodeFalconKeyExtension,
  identityUri,
  parseCertificate,
  type CertificateRole,
} from '../crypto/x509.js';
import { encodeTrustBundle, trustBundlePem } from '../trustchain/ca/bundle.js';
import {
  OIDS,
  assembleCertificate,
  authorityKeyIdentifier,
  basicConstraints,
  buildTbs,
  createRandomizedSigner,
  encodeName,
  extendedKeyUsage,
  keyIdentifier,
  keyUsage,
  readTbs,
  splitCertificate,
  subjectAltName,
  subjectKeyIdentifier,
} from '../trustchain/ca/certificate.js';
import { TAG, contentOf, expect, readWhole } from '../trustchain/ca/der.js';
import { KeyUsageBit, PROFILES } from '../trustchain/ca/profiles.js';
import {
  MIN_ROOT_PASSPHRASE_LENGTH,
  createValidatorCaRequest,
  runGenesisCeremony,
} from '../trustchain/ca/hierarchy.js';
import { CaError } from '../trustchain/ca/errors.js';
import type { RateLimit } from '../trustchain/ca/rate-limit.js';
import { CliError } from './cli-error.js';
import { writeFileAtomically } from './io.js';

/**
 * The TrustChain CA part of `hypermesh cluster init` (docs/ca.md, "Genesis"): each validator
 * makes its intermediate request with a fresh P-256 key (written to its own directory, never
 * leaving it) and its node FALCON key; the ceremony issues the intermediates, and the root keys
 * leave it only encrypted, into the operator directory. The ceremony hands back each validator's
 * intermediate with its key, from which `cluster init` issues the cluster's bootstrap
 * certificates (`issueGenesisCertificate`): every validator's STOQ identity, the
 * operator's client certificate and the nodes' ACME HTTPS certificates. Those are issued before
 * consensus runs, outside it; the result records each one in issuance order, and
 * `withGenesisCertificates` lists them in the genesis `app.ca.genesisCertificates`, so the
 * block at height 1 publishes them (CT log, revocation: src/trustchain/ca-module/genesis.ts),
 * revocable by the operator's account.
 *
 *   DIR/ca/trust-bundle.json, trustchain-root.pem, trustchain-intermediates.pem
 *   DIR/operator/ca-root-ecdsa.key, ca-root-falcon.key (0600, passphrase-encrypted)
 *   DIR/operator/ca-root-passphrase.txt (0600; only when the passphrase was generated)
 *   DIR/node-K/ca-intermediate.key (0600)
 */
export const CA_FILES = {
  /** The cluster's CA directory (with `--no-ca`, the development CA's root.pem and root.key). */
  dir: 'ca',
  bundle: 'trust-bundle.json',
  root: 'trustchain-root.pem',
  intermediates: 'trustchain-intermediates.pem',
  intermediateKey: 'ca-intermediate.key',
  /** A node added later: its public intermediate request and, once issued, the intermediate. */
  intermediateRequest: 'ca-intermediate-request.json',
  intermediateCertificate: 'ca-intermediate.pem',
  rootEcdsaKey: 'ca-root-ecdsa.key',
  rootFalconKey: 'ca-root-falcon.key',
  passphrase: 'ca-root-passphrase.txt',
} as const;

/** The `ca` section of a node configuration written by `cluster init` (relative to node-K/). */
export function nodeCaConfig(): { intermediateKeyFile: string; trustBundleFile: string } {
  return {
    intermediateKeyFile: CA_FILES.intermediateKey,
    trustBundleFile: path.join('..', CA_FILES.dir, CA_FILES.bundle),
  };
}

export interface ClusterCaOptions {
  /** The cluster directory being written (staging). */
  readonly dir: string;
  readonly chainId: string;
  readonly time: Date;
  readonly validators: readonly {
    readonly name: string;
    readonly nodeDir: string;
    readonly falconKeys: FalconKeyPair;
  }[];
  readonly operatorDir: string;
  readonly operatorPublicKey: Uint8Array;
  /** The cluster zone granted to the operator (a trailing dot is dropped), or null. */
  readonly dnsZone: string | null;
  /** The nodes' listen address: granted to the operator when it is an IP address. */
  readonly host: string;
  /** Environment variable holding the root key passphrase; absent: one is generated. */
  readonly passphraseEnv?: string;
  /** The CA's per-account issuance limit (`app.ca.rateLimit`); absent: the CA's default. */
  readonly rateLimit?: RateLimit;
  readonly env?: NodeJS.ProcessEnv;
  readonly falcon?: FalconBackend;
}

export interface ClusterCaResult {
  /** The genesis `app.ca` section. */
  readonly section: GenesisAppValue;
  readonly bundleFile: string;
  /** The generated passphrase's file, or null when it came from the environment. */
  readonly passphraseFile: string | null;
  /**
   * Each validator's intermediate with its key, by validator name, for the certificates
   * `cluster init` issues at genesis (`issueGenesisCertificate`).
   */
  readonly issuers: ReadonlyMap<string, GenesisIssuer>;
  /**
   * `section` (this result's `section`, possibly with more grants) with `genesisCertificates`:
   * every certificate issued so far from `issuers`, in issuance order, each revocable by the
   * operator's account.
   */
  withGenesisCertificates(section: GenesisAppValue): GenesisAppValue;
}

function passphraseOf(options: ClusterCaOptions): { passphrase: string; generated: boolean } {
  if (options.passphraseEnv === undefined) {
    return { passphrase: randomBytes(24).toString('base64url'), generated: true };
  }
  const value = (options.env ?? process.env)[options.passphraseEnv];
  if (value === undefined || value.length < MIN_ROOT_PASSPHRASE_LENGTH) {
    throw new CliError(
      `--ca-passphrase-env ${options.passphraseEnv}: the variable must hold a passphrase of at least ${MIN_ROOT_PASSPHRASE_LENGTH} characters`,
    );
  }
  return { passphrase: value, generated: false };
}

export async function runClusterCaCeremony(options: ClusterCaOptions): Promise<ClusterCaResult> {
  const { passphrase, generated } = passphraseOf(options);
  const requests = [];
  const intermediateKeys = new Map<string, KeyObject>();
  for (const validator of options.validators) {
    const { request, keys } = await createValidatorCaRequest({
      name: validator.name,
      falconKeys: validator.falconKeys,
      ...(options.falcon === undefined ? {} : { falcon: options.falcon }),
    });
    await writeKeyFile(path.join(validator.nodeDir, CA_FILES.intermediateKey), {
      kind: 'p256',
      keys: keys.ecdsa,
    });
    intermediateKeys.set(validator.name, keys.ecdsa.privateKey);
    requests.push(request);
  }
  let ceremony: Awaited<ReturnType<typeof runGenesisCeremony>>;
  try {
    ceremony = await runGenesisCeremony({
      cluster: options.chainId,
      chainId: options.chainId,
      time: options.time,
      passphrase,
      validators: requests,
      ...(options.falcon === undefined ? {} : { falcon: options.falcon }),
    });
  } catch (error) {
    if (error instanceof CaError) throw new CliError(`CA genesis ceremony: ${error.message}`);
    throw error;
  }
  const caDir = path.join(options.dir, CA_FILES.dir);
  await mkdir(caDir, { recursive: true });
  const bundleText = encodeTrustBundle(ceremony.bundle);
  const pem = trustBundlePem(ceremony.bundle);
  const bundleFile = path.join(caDir, CA_FILES.bundle);
  await writeFile(bundleFile, bundleText, { flag: 'wx', mode: 0o644 });
  await writeFile(path.join(caDir, CA_FILES.root), pem.root, { flag: 'wx', mode: 0o644 });
  await writeFile(path.join(caDir, CA_FILES.intermediates), pem.intermediates, {
    flag: 'wx',
    mode: 0o644,
  });
  // The root keys (and a generated passphrase) exist nowhere else: each is fsynced with its
  // directory entry, so a power loss after `cluster init` cannot leave them empty.
  const secret = { mode: 0o600 } as const;
  await writeFileAtomically(
    path.join(options.operatorDir, CA_FILES.rootEcdsaKey),
    ceremony.rootKeyFiles.ecdsa,
    secret,
  );
  await writeFileAtomically(
    path.join(options.operatorDir, CA_FILES.rootFalconKey),
    ceremony.rootKeyFiles.falcon,
    secret,
  );
  let passphraseFile: string | null = null;
  if (generated) {
    passphraseFile = path.join(options.operatorDir, CA_FILES.passphrase);
    await writeFileAtomically(passphraseFile, `${passphrase}\n`, secret);
  }
  const zone = options.dnsZone?.replace(/\.$/, '') ?? null;
  const ipRanges =
    isIP(options.host) === 4
      ? [`${options.host}/32`]
      : isIP(options.host) === 6
        ? [`${options.host}/128`]
        : [];
  const section: GenesisAppValue = {
    trustBundle: JSON.parse(bundleText) as GenesisAppValue,
    grants: [
      {
        account: toHex(options.operatorPublicKey),
        // node: `cluster add-node` requests a joining node's STOQ certificate with it.
        profiles: ['node', 'service', 'client'],
        dnsZones: zone === null ? [] : [zone],
        wildcards: true,
        ipRanges,
        uriPrefixes: [`spiffe://${options.chainId}/`],
      },
    ],
    ...(options.rateLimit === undefined
      ? {}
      : {
          rateLimit: { max: options.rateLimit.max, windowSeconds: options.rateLimit.windowSeconds },
        }),
  };
  const issuers = new Map<string, GenesisIssuer>();
  const issued: { issuer: string; certificate: Uint8Array }[] = [];
  for (const intermediate of ceremony.bundle.validators) {
    const privateKey = intermediateKeys.get(intermediate.name);
    if (privateKey === undefined) {
      throw new RangeError(`the ceremony issued an intermediate for unknown ${intermediate.name}`);
    }
    const name = intermediate.name;
    issuers.set(name, {
      certificate: intermediate.certificate,
      privateKey,
      issued: (certificate) => issued.push({ issuer: name, certificate }),
    });
  }
  const operatorAccount = toHex(options.operatorPublicKey);
  return {
    section,
    bundleFile,
    passphraseFile,
    issuers,
    withGenesisCertificates: (withGrants) => ({
      ...(withGrants as { readonly [key: string]: GenesisAppValue }),
      genesisCertificates: issued.map((entry) => ({
        issuer: entry.issuer,
        account: operatorAccount,
        certificate: toBase64(entry.certificate),
      })),
    }),
  };
}

/** A validator's intermediate and its key, as the ceremony hands them to `cluster init`. */
export interface GenesisIssuer {
  readonly certificate: Uint8Array;
  /** ECDSA P-256. */
  readonly privateKey: KeyObject;
  /** Told of every certificate `issueGenesisCertificate` issues (the genesis list). */
  readonly issued?: (certificate: Uint8Array) => void;
}

const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * A certificate issued at genesis from a validator intermediate, outside consensus (reported
 * to `issuer.issued`, for the genesis `app.ca.genesisCertificates`), with TrustChain's certificate encoding (src/trustchain/ca/certificate.ts): subject
 * CN=<name>, OU=<node|client>, O=<cluster> (never the intermediate's own name); SAN the DNS names,
 * IP addresses and `spiffe://<cluster>/<role>/<name>`; key usage digitalSignature; extended key
 * usage serverAuth and clientAuth — the node profile's, which STOQ requires of a validator
 * certificate from a TrustChain intermediate; key identifiers as TrustChain computes them; the
 * FALCON key extension; a random 128-bit serial. Valid from five minutes before `now` for
 * `validityDays`, within the intermediate's validity. Returns the chain: leaf, intermediate.
 */
export function issueGenesisCertificate(options: {
  readonly issuer: GenesisIssuer;
  readonly chainId: string;
  readonly role: CertificateRole;
  readonly name: string;
  readonly keys: NodeIdentityKeys;
  readonly validityDays: number;
  readonly now: Date;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}): readonly Uint8Array[] {
  const { issuer, chainId, role, name } = options;
  for (const dnsName of options.dnsNames ?? []) {
    if (!DNS_NAME_PATTERN.test(dnsName)) {
      throw new CliError(
        `${JSON.stringify(dnsName)} is not a lowercase host name for a certificate`,
      );
    }
  }
  for (const ip of options.ipAddresses ?? []) {
    if (isIP(ip) === 0) throw new CliError(`${JSON.stringify(ip)} is not an IP address`);
  }
  const issuerParts = readTbs(splitCertificate(issuer.certificate).tbs);
  const issuerParsed = parseCertificate(issuer.certificate);
  const ski = issuerParts.extensions.find(
    (extension) => extension.oid === OIDS.subjectKeyIdentifier,
  );
  if (ski === undefined) throw new RangeError('the intermediate has no subjectKeyIdentifier');
  const issuerKeyId = contentOf(
    ski.value,
    expect(readWhole(ski.value), TAG.octetString, 'KeyIdentifier'),
  );
  const spki = new Uint8Array(
    options.keys.ed25519.publicKey.export({ format: 'der', type: 'spki' }),
  );
  const wantedStart = new Date(Math.floor((options.now.getTime() - CLOCK_SKEW_MS) / 1000) * 1000);
  const wantedEnd = new Date(
    wantedStart.getTime() + CLOCK_SKEW_MS + options.validityDays * 86_400_000,
  );
  const notBefore = wantedStart < issuerParsed.notBefore ? issuerParsed.notBefore : wantedStart;
  const notAfter = wantedEnd > issuerParsed.notAfter ? issuerParsed.notAfter : wantedEnd;
  if (notAfter <= notBefore) {
    throw new CliError(`cannot issue ${name}'s certificate: the intermediate has expired`);
  }
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01;
  const tbs = buildTbs({
    serial,
    issuerName: issuerParts.subjectName,
    notBefore,
    notAfter,
    subjectName: encodeName([
      ['CN', name],
      ['OU', role === 'client' ? 'client' : 'node'],
      ['O', chainId],
    ]),
    subjectPublicKeyInfo: spki,
    extensions: [
      basicConstraints(false),
      keyUsage([KeyUsageBit.digitalSignature]),
      extendedKeyUsage(PROFILES.node.extendedKeyUsage),
      subjectAltName(
        {
          dnsNames: options.dnsNames ?? [],
          ipAddresses: options.ipAddresses ?? [],
          uris: [identityUri(chainId, role, name)],
        },
        false,
      ),
      subjectKeyIdentifier(keyIdentifier(spki)),
      authorityKeyIdentifier(issuerKeyId),
      {
        oid: FALCON_PUBLIC_KEY_EXTENSION_OID,
        critical: false,
        value: encodeFalconKeyExtension(options.keys.falcon.publicKey),
      },
    ],
  });
  const leaf = assembleCertificate(tbs, createRandomizedSigner(issuer.privateKey).sign(tbs));
  issuer.issued?.(leaf);
  return [leaf, issuer.certificate];
}

/**
 * Issues an identity's genesis certificate (`issueGenesisCertificate`) — role `validator` for a
 * node's STOQ identity, `client` for the operator — and writes `<name>.key` (0600) and
 * `<name>.pem` (leaf, then the intermediate) into `outDir`.
 */
export async function writeGenesisIdentity(options: {
  readonly issuer: GenesisIssuer;
  readonly chainId: string;
  readonly name: string;
  readonly role: CertificateRole;
  readonly outDir: string;
  readonly keys: NodeIdentityKeys;
  readonly validityDays: number;
  readonly now: Date;
  readonly ipAddresses?: readonly string[];
}): Promise<{ readonly keyFile: string; readonly certificateFile: string }> {
  const keyFile = path.join(options.outDir, `${options.name}.key`);
  const certificateFile = path.join(options.outDir, `${options.name}.pem`);
  await mkdir(options.outDir, { recursive: true, mode: 0o700 });
  const chain = issueGenesisCertificate(options);
  await writeKeyFile(keyFile, { kind: 'node-identity', keys: options.keys });
  await writeFile(certificateFile, chain.map((der) => derToPem(der)).join(''), {
    flag: 'wx',
    mode: 0o644,
  });
  return { keyFile, certificateFile };
}
