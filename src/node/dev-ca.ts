import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import { generateEd25519KeyPair, ed25519RawPublicKey } from '../crypto/ed25519.js';
import { p256PrivateKeyFromPkcs8Der, p256PrivateKeyToPkcs8Der } from '../crypto/p256.js';
import { readKeyFile, writeKeyFile, type NodeIdentityKeys } from '../crypto/keyfile.js';
import {
  createRootCa,
  derToPem,
  exportCertificateAuthority,
  importCertificateAuthority,
  issueNodeCertificate,
  pemToDer,
  type CertificateAuthority,
  type CertificateRole,
} from '../crypto/x509.js';
import { createPublicKey } from 'node:crypto';
import { CliError } from './cli-error.js';

/**
 * The local development CA: a root certificate and key in a directory, and node identities
 * issued from it. It exists so STOQ can be tested and demonstrated before the TrustChain CA
 * (consensus-governed issuance) replaces it; nothing else in HyperMesh depends on it.
 */
export const DEV_CA_FILES = {
  certificate: 'root.pem',
  key: 'root.key',
  cluster: 'cluster.txt',
} as const;

export interface DevCaPaths {
  readonly certificate: string;
  readonly key: string;
}

export function devCaPaths(dir: string): DevCaPaths {
  return {
    certificate: path.join(dir, DEV_CA_FILES.certificate),
    key: path.join(dir, DEV_CA_FILES.key),
  };
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

export interface InitDevCaOptions {
  readonly dir: string;
  readonly cluster: string;
  readonly validityDays?: number;
  readonly passphrase?: string;
}

/** Creates `root.pem` and `root.key` (0600, optionally encrypted) in `dir`; refuses to overwrite. */
export async function initDevCa(options: InitDevCaOptions): Promise<DevCaPaths> {
  const paths = devCaPaths(options.dir);
  if ((await exists(paths.certificate)) || (await exists(paths.key))) {
    throw new CliError(`a CA already exists in ${options.dir}; remove it or choose another --dir`);
  }
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const ca = await createRootCa({
    cluster: options.cluster,
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
  });
  const exported = await exportCertificateAuthority(ca);
  const privateKey = p256PrivateKeyFromPkcs8Der(exported.privateKeyPkcs8);
  // The key is written first: if that fails nothing is left behind, and a certificate without
  // its key is never the only file in the directory.
  await writeKeyFile(
    paths.key,
    { kind: 'p256', keys: { privateKey, publicKey: createPublicKey(privateKey) } },
    options.passphrase === undefined ? {} : { passphrase: options.passphrase },
  );
  await writeFile(paths.certificate, derToPem(ca.certificate), { flag: 'wx', mode: 0o644 });
  await writeFile(path.join(options.dir, DEV_CA_FILES.cluster), `${options.cluster}\n`, {
    flag: 'wx',
  });
  return paths;
}

export async function loadDevCa(
  dir: string,
  passphrase?: string,
): Promise<{ ca: CertificateAuthority; cluster: string }> {
  const paths = devCaPaths(dir);
  let pem: string;
  let cluster: string;
  try {
    pem = await readFile(paths.certificate, 'utf8');
    cluster = (await readFile(path.join(dir, DEV_CA_FILES.cluster), 'utf8')).trim();
  } catch (error) {
    throw new CliError(`no development CA in ${dir} (${(error as Error).message})`);
  }
  const key = await readKeyFile(paths.key, {
    kind: 'p256',
    ...(passphrase === undefined ? {} : { passphrase }),
  });
  const ca = await importCertificateAuthority({
    certificate: pemToDer(pem),
    privateKeyPkcs8: p256PrivateKeyToPkcs8Der(key.keys.privateKey),
    issuingChain: [],
  });
  return { ca, cluster };
}

export interface IssueDevIdentityOptions {
  readonly ca: CertificateAuthority;
  readonly cluster: string;
  readonly name: string;
  readonly role: CertificateRole;
  /** Directory for `<name>.key` and `<name>.pem`. */
  readonly outDir: string;
  readonly validityDays?: number;
  readonly passphrase?: string;
  readonly falcon?: FalconBackend;
  readonly now?: Date;
  /** Keys to certify; generated (Ed25519 + FALCON-1024) when absent. */
  readonly keys?: NodeIdentityKeys;
}

export interface DevIdentityPaths {
  readonly keyFile: string;
  readonly certificateFile: string;
  /** The identity's keys (as written to `keyFile`). */
  readonly keys: NodeIdentityKeys;
}

/** Generates a node identity: an Ed25519 key and a FALCON-1024 key pair. */
export async function generateNodeIdentity(
  falcon: FalconBackend = defaultFalcon(),
): Promise<NodeIdentityKeys> {
  return { ed25519: generateEd25519KeyPair(), falcon: await falcon.generateKeyPair() };
}

/**
 * Generates a node identity (Ed25519 transport key + FALCON-1024 key pair), has the CA certify
 * it, and writes `<name>.key` (0600) and `<name>.pem` (the chain, leaf first).
 */
export async function issueDevIdentity(
  options: IssueDevIdentityOptions,
): Promise<DevIdentityPaths> {
  const keyFile = path.join(options.outDir, `${options.name}.key`);
  const certificateFile = path.join(options.outDir, `${options.name}.pem`);
  if ((await exists(keyFile)) || (await exists(certificateFile))) {
    throw new CliError(`${keyFile} or ${certificateFile} already exists`);
  }
  await mkdir(options.outDir, { recursive: true, mode: 0o700 });
  const keys = options.keys ?? (await generateNodeIdentity(options.falcon));
  const { ed25519, falcon: falconKeys } = keys;
  const now = options.now ?? new Date();
  const issued = await issueNodeCertificate({
    issuer: options.ca,
    subjectEd25519PublicKey: ed25519RawPublicKey(ed25519.publicKey),
    falconPublicKey: falconKeys.publicKey,
    cluster: options.cluster,
    role: options.role,
    name: options.name,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(now.getTime() + (options.validityDays ?? 30) * 86_400_000),
  });
  await writeKeyFile(
    keyFile,
    { kind: 'node-identity', keys: { ed25519, falcon: falconKeys } },
    options.passphrase === undefined ? {} : { passphrase: options.passphrase },
  );
  await writeFile(certificateFile, issued.chain.map((der) => derToPem(der)).join(''), {
    flag: 'wx',
    mode: 0o644,
  });
  return { keyFile, certificateFile, keys };
}
