import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { bytesEqual, fromBase64, fromHex, toBase64, toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import type { FalconBackend, FalconKeyPair } from '../crypto/falcon.js';
import { KeyFileError, readKeyFile, readSecretFile, writeKeyFile } from '../crypto/keyfile.js';
import { derToPem, pemToDerList } from '../crypto/x509.js';
import type { TrustBundle } from '../trustchain/ca/bundle.js';
import { CaError } from '../trustchain/ca/errors.js';
import {
  DEFAULT_INTERMEDIATE_VALIDITY_DAYS,
  createValidatorCaRequest,
  issueValidatorIntermediate,
  loadRootSigningKeys,
  type ValidatorCaRequest,
} from '../trustchain/ca/hierarchy.js';
import { intermediateHash } from '../trustchain/ca-module/index.js';
import { MIN_INTERMEDIATE_REMAINING_MS } from '../trustchain/ca-module/intermediates.js';
import { CA_FILES } from './ca-genesis.js';
import { CliError } from './cli-error.js';
import { CLUSTER_FILES } from './cluster-init.js';
import { writeFileAtomically } from './io.js';
import { loadValidatorNodeConfig } from './node-config.js';

/**
 * The files of the governed addition of an intermediate (docs/ca.md, "Adding a validator's
 * intermediate"):
 *
 *   DIR/<node>/ca-intermediate.key           the node's P-256 intermediate key (0600; add-node)
 *   DIR/<node>/ca-intermediate-request.json  its public request: name, node key, CSR, FALCON
 *                                            key and proof of possession (add-node)
 *   DIR/<node>/ca-intermediate.pem           the intermediate the root issued, written once
 *                                            `ca intermediate issue` has its proposal
 *                                            committed (for reference: the module holds it)
 */

export const INTERMEDIATE_REQUEST_FORMAT = 'hypermesh-intermediate-request';
const DAY_MS = 86_400_000;
/**
 * The shortest intermediate `issue` makes: a day more than the module's minimum remaining
 * validity at proposal and approval (MIN_INTERMEDIATE_REMAINING_MS), for the approval delay.
 */
export const MIN_INTERMEDIATE_VALIDITY_DAYS = MIN_INTERMEDIATE_REMAINING_MS / DAY_MS + 1;

const requestSchema = z.strictObject({
  format: z.literal(INTERMEDIATE_REQUEST_FORMAT),
  version: z.literal(1),
  name: z.string().min(1).max(64),
  /** The node's Ed25519 key, hex: the account that will publish with the intermediate. */
  account: z.string().regex(/^[0-9a-f]{64}$/),
  csr: z
    .string()
    .min(1)
    .max(16 * 1024),
  falconPublicKey: z.string().min(1).max(4096),
  falconProof: z.string().min(1).max(4096),
});

export interface IntermediateRequestFile {
  readonly request: ValidatorCaRequest;
  readonly account: Uint8Array;
}

/**
 * The node's side (run by `cluster add-node`): a fresh P-256 intermediate key in the node
 * directory (0600; it never leaves it) and the public request the root key holders sign.
 */
export async function writeIntermediateRequest(options: {
  readonly nodeDir: string;
  readonly name: string;
  readonly account: Uint8Array;
  readonly falconKeys: FalconKeyPair;
  readonly falcon?: FalconBackend;
}): Promise<void> {
  const { request, keys } = await createValidatorCaRequest({
    name: options.name,
    falconKeys: options.falconKeys,
    ...(options.falcon === undefined ? {} : { falcon: options.falcon }),
  });
  await writeKeyFile(path.join(options.nodeDir, CA_FILES.intermediateKey), {
    kind: 'p256',
    keys: keys.ecdsa,
  });
  const csr =
    typeof request.csr === 'string' ? request.csr : derToPem(request.csr, 'CERTIFICATE REQUEST');
  const document = {
    format: INTERMEDIATE_REQUEST_FORMAT,
    version: 1,
    name: request.name,
    account: toHex(options.account),
    csr,
    falconPublicKey: toBase64(request.falconPublicKey),
    falconProof: toBase64(request.falconProof),
  };
  await writeFile(
    path.join(options.nodeDir, CA_FILES.intermediateRequest),
    `${JSON.stringify(document, null, 2)}\n`,
    { flag: 'wx', mode: 0o644 },
  );
}

export async function readIntermediateRequest(file: string): Promise<IntermediateRequestFile> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new CliError(`cannot read the intermediate request ${file}: ${(error as Error).message}`);
  }
  const parsed = requestSchema.safeParse(json);
  if (!parsed.success) {
    throw new CliError(
      `${file} is not an intermediate request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const r = parsed.data;
  return {
    request: {
      name: r.name,
      csr: r.csr,
      falconPublicKey: fromBase64(r.falconPublicKey),
      falconProof: fromBase64(r.falconProof),
    },
    account: fromHex(r.account),
  };
}

/** DIR/<node>/ca-intermediate.pem: where the intermediate the root issued for `node` goes. */
export function intermediateCertificateFile(clusterDir: string, node: string): string {
  return path.join(clusterDir, node, CA_FILES.intermediateCertificate);
}

export interface IssuedNodeIntermediate {
  readonly name: string;
  readonly account: Uint8Array;
  readonly certificate: Uint8Array;
  readonly endorsement: Uint8Array;
  /** The proposal hash of the certificate and the node key: what approvals name. */
  readonly hash: Uint8Array;
  /** Where `writeIssuedIntermediate` puts it: DIR/<node>/ca-intermediate.pem. */
  readonly certificateFile: string;
}

/** Writes the issued intermediate to its `certificateFile`, atomically (old or new, never part). */
export async function writeIssuedIntermediate(issued: IssuedNodeIntermediate): Promise<void> {
  await writeFileAtomically(issued.certificateFile, derToPem(issued.certificate));
}

/** A secret file's read failure for a message, with its KeyFileError code when it has one. */
function secretFileProblem(error: unknown): string {
  const message = (error as Error).message;
  return error instanceof KeyFileError ? `${message} [${error.code}]` : message;
}

/** The passphrase of the root key files: `--passphrase-env VAR`, else the file `cluster init` wrote. */
export async function rootPassphrase(
  clusterDir: string,
  variable: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (variable !== undefined) {
    const value = env[variable];
    if (value === undefined || value === '') {
      throw new CliError(`environment variable ${variable} (from --passphrase-env) is not set`);
    }
    return value;
  }
  const file = path.join(clusterDir, CLUSTER_FILES.operatorDir, CA_FILES.passphrase);
  try {
    // The key files' checks: an owner-only regular file of a sane size (a 0644 copy restored
    // from an archive is refused, not used).
    return (await readSecretFile(file, 'passphrase file')).replace(/\r?\n$/, '');
  } catch (error) {
    throw new CliError(
      `cannot read the root key passphrase ${file} (${secretFileProblem(error)}); give --passphrase-env VAR`,
    );
  }
}

/**
 * The root key holders' offline step: decrypts the root keys (`loadRootSigningKeys` checks they
 * are the bundle's root), issues the node's intermediate from its request and endorses it with
 * the root FALCON key, binding it to the node key of the request (`account`). Nothing is written: the caller writes it (`writeIssuedIntermediate`) once
 * it has been proposed, so the node directory never holds one the cluster was not asked to add.
 * Validity: from a minute before `now` (clock skew between the operator and the block time; not
 * before the root's start) for `validityDays`, cut at the root's end.
 */
export async function issueNodeIntermediate(options: {
  readonly clusterDir: string;
  readonly node: string;
  readonly bundle: TrustBundle;
  readonly passphrase: string;
  readonly now: Date;
  readonly validityDays?: number;
  readonly falcon?: FalconBackend;
}): Promise<IssuedNodeIntermediate> {
  const nodeDir = path.join(options.clusterDir, options.node);
  const { request, account } = await readIntermediateRequest(
    path.join(nodeDir, CA_FILES.intermediateRequest),
  );
  if (request.name !== options.node) {
    throw new CliError(`${nodeDir}'s intermediate request names "${request.name}"`);
  }
  // The request file is only as trusted as the directory: bind the intermediate to the key the
  // node actually runs with, never to whatever key the file names.
  const nodeKey = ed25519RawPublicKey(
    createPublicKey(await nodeIdentityKey(options.clusterDir, options.node)),
  );
  if (!bytesEqual(nodeKey, account)) {
    throw new CliError(
      `${path.join(nodeDir, CA_FILES.intermediateRequest)} binds the intermediate to the key ${toHex(account)}, not to ${options.node}'s node key ${toHex(nodeKey)} (${path.join(nodeDir, CLUSTER_FILES.nodeConfig)}): refusing to issue`,
    );
  }
  const operatorDir = path.join(options.clusterDir, CLUSTER_FILES.operatorDir);
  const keyText = async (file: string): Promise<string> => {
    try {
      return await readSecretFile(path.join(operatorDir, file), 'root key file');
    } catch (error) {
      throw new CliError(`cannot read the root key ${file}: ${secretFileProblem(error)}`);
    }
  };
  const notBefore = new Date(
    Math.max(
      options.bundle.root.parsed.notBefore.getTime(),
      Math.floor((options.now.getTime() - 60_000) / 1000) * 1000,
    ),
  );
  const rootEnd = options.bundle.root.parsed.notAfter.getTime();
  const wanted = options.validityDays ?? DEFAULT_INTERMEDIATE_VALIDITY_DAYS;
  const validityDays = Math.min(wanted, Math.floor((rootEnd - notBefore.getTime()) / DAY_MS));
  if (validityDays < MIN_INTERMEDIATE_VALIDITY_DAYS) {
    throw new CliError(
      `the intermediate would be valid ${validityDays} days (the cluster root's end, or --validity-days); the cluster accepts no fewer than ${MIN_INTERMEDIATE_VALIDITY_DAYS}`,
    );
  }
  try {
    const root = await loadRootSigningKeys({
      bundle: options.bundle,
      ecdsaKeyFile: await keyText(CA_FILES.rootEcdsaKey),
      falconKeyFile: await keyText(CA_FILES.rootFalconKey),
      passphrase: options.passphrase,
    });
    const issued = await issueValidatorIntermediate({
      cluster: options.bundle.cluster,
      root,
      request,
      account,
      notBefore,
      validityDays,
      ...(options.falcon === undefined ? {} : { falcon: options.falcon }),
    });
    return {
      name: issued.name,
      account,
      certificate: issued.certificate,
      endorsement: issued.endorsement,
      hash: intermediateHash(issued.certificate, account),
      certificateFile: intermediateCertificateFile(options.clusterDir, options.node),
    };
  } catch (error) {
    if (error instanceof CaError) throw new CliError(`${error.message} [${error.code}]`);
    throw error;
  }
}

/** The Ed25519 node key of `DIR/<node>/` (its identity key file), for approvals. */
export async function nodeIdentityKey(clusterDir: string, node: string): Promise<KeyObject> {
  const config = await loadValidatorNodeConfig(
    path.join(clusterDir, node, CLUSTER_FILES.nodeConfig),
    {},
  );
  try {
    return (await readKeyFile(config.identity.keyFile, { kind: 'node-identity' })).keys.ed25519
      .privateKey;
  } catch (error) {
    throw new CliError(
      `cannot read ${node}'s node key ${config.identity.keyFile}: ${(error as Error).message}`,
    );
  }
}

/** The intermediate in a PEM file (`ca-intermediate.pem`). */
export async function readIntermediateCertificate(file: string): Promise<Uint8Array> {
  const list = pemToDerList(await readFile(file, 'utf8'));
  if (list.length !== 1) throw new CliError(`${file} must hold exactly one certificate`);
  return list[0] as Uint8Array;
}
