import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import type { GenesisAppValue } from '../consensus/genesis.js';
import { toHex } from '../crypto/bytes.js';
import type { FalconBackend, FalconKeyPair } from '../crypto/falcon.js';
import { writeKeyFile } from '../crypto/keyfile.js';
import { encodeTrustBundle, trustBundlePem } from '../trustchain/ca/bundle.js';
import {
  MIN_ROOT_PASSPHRASE_LENGTH,
  createValidatorCaRequest,
  runGenesisCeremony,
} from '../trustchain/ca/hierarchy.js';
import { CaError } from '../trustchain/ca/errors.js';
import { CliError } from './cli-error.js';

/**
 * The TrustChain CA part of `hypermesh cluster init` (docs/ca.md, "Genesis"): each validator
 * makes its intermediate request with a fresh P-256 key (written to its own directory, never
 * leaving it) and its node FALCON key; the ceremony issues the intermediates, and the root keys
 * leave it only encrypted, into the operator directory.
 *
 *   DIR/ca/trust-bundle.json, trustchain-root.pem, trustchain-intermediates.pem
 *   DIR/operator/ca-root-ecdsa.key, ca-root-falcon.key (0600, passphrase-encrypted)
 *   DIR/operator/ca-root-passphrase.txt (0600; only when the passphrase was generated)
 *   DIR/node-K/ca-intermediate.key (0600)
 */
export const CA_FILES = {
  /** Beside the development CA's files (root.pem, root.key: STOQ identities). */
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
  readonly env?: NodeJS.ProcessEnv;
  readonly falcon?: FalconBackend;
}

export interface ClusterCaResult {
  /** The genesis `app.ca` section. */
  readonly section: GenesisAppValue;
  readonly bundleFile: string;
  /** The generated passphrase's file, or null when it came from the environment. */
  readonly passphraseFile: string | null;
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
  const secret = { flag: 'wx', mode: 0o600 } as const;
  await writeFile(
    path.join(options.operatorDir, CA_FILES.rootEcdsaKey),
    ceremony.rootKeyFiles.ecdsa,
    secret,
  );
  await writeFile(
    path.join(options.operatorDir, CA_FILES.rootFalconKey),
    ceremony.rootKeyFiles.falcon,
    secret,
  );
  let passphraseFile: string | null = null;
  if (generated) {
    passphraseFile = path.join(options.operatorDir, CA_FILES.passphrase);
    await writeFile(passphraseFile, `${passphrase}\n`, secret);
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
        profiles: ['service', 'client'],
        dnsZones: zone === null ? [] : [zone],
        wildcards: true,
        ipRanges,
        uriPrefixes: [`spiffe://${options.chainId}/`],
      },
    ],
  };
  return { section, bundleFile, passphraseFile };
}
