import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { decodeCanonical } from '../codec/cbor.js';
import { HyperMeshError } from '../codec/error.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import { loadStoragePlot } from '../consensus/pos/index.js';
import type { StoragePlot } from '../consensus/proof/storage-plot.js';
import { STORAGE_ROOT_BYTES } from '../consensus/validator-set.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../crypto/falcon.js';
import { KeyFileError, readKeyFile } from '../crypto/keyfile.js';
import { CliError } from './cli-error.js';
import { loadValidatorNodeConfig } from './node-config.js';
import { StakeCliError, StakeErrorCode } from './stake-ledger.js';
import { readWalletKey, type WalletKey } from './wallet.js';

/**
 * What `hypermesh stake create-validator` registers (docs/caesar.md, "Staking transactions"):
 * the validator's Ed25519 key (the transaction's sender, hence its consensus key and operator
 * account), its FALCON-1024 public key and the root of its PoSpace storage plot. A node
 * directory written by `cluster init` (or laid out the same way) holds all three: its
 * config.json names the identity key file (Ed25519 + FALCON) and the plot file.
 */
export interface ValidatorIdentity {
  readonly privateKey: KeyObject;
  /** Raw 32-byte Ed25519 key. */
  readonly publicKey: Uint8Array;
  readonly pqPublicKey: Uint8Array;
  readonly storageRoot: Uint8Array;
}

export interface ValidatorIdentitySources {
  /** A node directory with config.json; excludes the three below. */
  readonly nodeDir?: string;
  /** The Ed25519 key file (a node identity or an Ed25519 key). */
  readonly keyFile?: string;
  /** A key file with the FALCON-1024 key (a node identity or a FALCON key); default `keyFile`. */
  readonly falconKeyFile?: string;
  /** The storage root, 64 hex digits; or `plotFile`. */
  readonly storageRoot?: string;
  /** A storage plot file, checked against the chain's space parameters and the key. */
  readonly plotFile?: string;
  readonly passphrase?: string;
}

function identityProblem(message: string): never {
  throw new StakeCliError(StakeErrorCode.BAD_VALIDATOR_IDENTITY, message);
}

async function readFalconPublicKey(file: string, passphrase?: string): Promise<Uint8Array> {
  let content;
  try {
    content = await readKeyFile(file, passphrase === undefined ? {} : { passphrase });
  } catch (error) {
    if (error instanceof KeyFileError) {
      throw new CliError(`cannot read the FALCON key ${file}: ${error.message} [${error.code}]`, 1);
    }
    throw error;
  }
  switch (content.kind) {
    case 'node-identity':
      return content.keys.falcon.publicKey;
    case 'falcon-1024-r3':
      return content.keys.publicKey;
    default:
      return identityProblem(
        `${file} holds a "${content.kind}" key; --falcon-key needs a FALCON-1024 key (a node identity or a FALCON key file)`,
      );
  }
}

/**
 * A storage plot file, after checking it: built under the chain's space parameters, its blocks
 * hashing to the root it records (loadStoragePlot), and plotted for `publicKey` (a plot is bound
 * to its validator's key). What `create-validator` registers is its root, and what a node
 * added to a cluster (`hypermesh cluster add-node`) proves storage with is the plot itself, so
 * both read it here. Throws `StakeCliError` (BAD_VALIDATOR_IDENTITY) naming the problem.
 */
export async function loadValidatorPlot(
  file: string,
  genesis: GenesisDocument,
  publicKey: Uint8Array,
): Promise<StoragePlot> {
  let recorded: unknown;
  try {
    recorded = (decodeCanonical(await readFile(file)) as { root?: unknown } | null)?.root;
  } catch (error) {
    identityProblem(`cannot read the storage plot ${file}: ${(error as Error).message}`);
  }
  if (!(recorded instanceof Uint8Array) || recorded.length !== STORAGE_ROOT_BYTES) {
    identityProblem(`${file} is not a storage plot file (it records no 32-byte root)`);
  }
  let plot;
  try {
    plot = await loadStoragePlot(file, genesis.proof.space, recorded);
  } catch (error) {
    if (error instanceof HyperMeshError) identityProblem(`${error.message} [${error.code}]`);
    throw error;
  }
  if (!bytesEqual(plot.publicKey, publicKey)) {
    identityProblem(
      `storage plot ${file} is plotted for key ${toHex(plot.publicKey)}, not the validator's key ${toHex(publicKey)}`,
    );
  }
  return plot;
}

/**
 * The identity key file and its passphrase a node directory's config.json names (the passphrase
 * from `identity.passphraseEnv` unless `passphrase` is given). Throws `CliError`.
 */
async function nodeDirKey(
  nodeDir: string,
  passphrase: string | undefined,
): Promise<{ keyFile: string; plotFile: string; passphrase: string | undefined }> {
  const config = await loadValidatorNodeConfig(path.join(nodeDir, 'config.json'), {});
  const variable = config.identity.passphraseEnv;
  if (variable !== undefined && passphrase === undefined) {
    passphrase = process.env[variable];
    if (passphrase === undefined || passphrase === '') {
      throw new CliError(`environment variable ${variable} (identity.passphraseEnv) is not set`);
    }
  }
  return { keyFile: config.identity.keyFile, plotFile: config.storagePlotFile, passphrase };
}

/**
 * The validator's Ed25519 key alone (what `unjail` and `edit-validator` are signed with): from a
 * node directory's config.json or a key file, exactly one of them. Throws `CliError`.
 */
export async function readValidatorKey(sources: {
  readonly nodeDir?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly passphrase?: string | undefined;
}): Promise<WalletKey> {
  let { keyFile, passphrase } = sources;
  if (sources.nodeDir !== undefined) {
    if (keyFile !== undefined) {
      throw new CliError('--node-dir takes the key from the node; drop --key');
    }
    ({ keyFile, passphrase } = await nodeDirKey(sources.nodeDir, passphrase));
  }
  if (keyFile === undefined) {
    throw new CliError('give --node-dir DIR, or --key with the validator key (see --help)');
  }
  return readWalletKey(keyFile, passphrase === undefined ? {} : { passphrase });
}

/** Reads the validator's keys and storage root from a node directory or the separate files. */
export async function readValidatorIdentity(
  sources: ValidatorIdentitySources,
  genesis: GenesisDocument,
): Promise<ValidatorIdentity> {
  let { keyFile, plotFile, passphrase } = sources;
  let falconKeyFile = sources.falconKeyFile;
  if (sources.nodeDir !== undefined) {
    const given = (
      [
        ['--key', keyFile],
        ['--falcon-key', falconKeyFile],
        ['--storage-root', sources.storageRoot],
        ['--plot', plotFile],
      ] as const
    ).find(([, value]) => value !== undefined);
    if (given !== undefined) {
      throw new CliError(`--node-dir takes the keys and plot from the node; drop ${given[0]}`);
    }
    ({ keyFile, plotFile, passphrase } = await nodeDirKey(sources.nodeDir, passphrase));
    falconKeyFile = keyFile;
  }
  if (keyFile === undefined) {
    throw new CliError('give --node-dir DIR, or --key with the validator key (see --help)');
  }
  if ((sources.storageRoot === undefined) === (plotFile === undefined)) {
    throw new CliError(
      'give the storage root with --storage-root HEX or --plot FILE (exactly one; see --help)',
    );
  }
  const wallet = await readWalletKey(keyFile, passphrase === undefined ? {} : { passphrase });
  const pqPublicKey = await readFalconPublicKey(falconKeyFile ?? keyFile, passphrase);
  if (pqPublicKey.length !== FALCON1024_PUBLIC_KEY_BYTES) {
    identityProblem(`the FALCON-1024 public key is ${pqPublicKey.length} bytes, not 1793`);
  }
  let storageRoot: Uint8Array;
  if (plotFile !== undefined) {
    storageRoot = (await loadValidatorPlot(plotFile, genesis, wallet.publicKey)).root;
  } else {
    const text = (sources.storageRoot as string).toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(text)) {
      identityProblem(
        `--storage-root "${sources.storageRoot}" is not a storage root: expected 64 hex digits (the plot's Merkle root)`,
      );
    }
    storageRoot = Uint8Array.from(Buffer.from(text, 'hex'));
  }
  return { privateKey: wallet.privateKey, publicKey: wallet.publicKey, pqPublicKey, storageRoot };
}
