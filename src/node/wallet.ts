import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { ed25519Address, hybridAddress } from '../caesar/index.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../crypto/ed25519.js';
import { defaultFalcon } from '../crypto/falcon.js';
import type { FalconKeyPair } from '../crypto/falcon.js';
import { KeyFileError, KeyFileErrorCode, readKeyFile, writeKeyFile } from '../crypto/keyfile.js';
import { CliError } from './cli-error.js';

/**
 * Wallet keys for `hypermesh wallet`: an Ed25519 key in a key file (src/crypto/keyfile.ts: JSON,
 * mode 0600, optionally encrypted with a passphrase). A Caesar account's address is SHA-256 of
 * the raw public key (docs/caesar.md, "Accounts"). A node identity key file (a validator's
 * `node-K.key`, the operator's `operator.key`) is a wallet too: its Ed25519 key is the account
 * `cluster init` funds for each validator.
 *
 * A hybrid wallet (`wallet create --falcon`) holds an Ed25519 and a FALCON-1024 key in one key
 * file of kind `ed25519-falcon-1024-r3`; its account is the hybrid address of both keys, and
 * it spends only with both signatures (src/caesar/hybrid.ts).
 */
export const DEFAULT_WALLET_KEY_FILE = path.join('.hypermesh', 'wallet.key');

export interface WalletKey {
  readonly file: string;
  /**
   * `ed25519` for a wallet key file, `node-identity` for a node's or the operator's, `hybrid`
   * for a hybrid wallet key file.
   */
  readonly kind: 'ed25519' | 'node-identity' | 'hybrid';
  readonly privateKey: KeyObject;
  /** Raw 32-byte Ed25519 public key: the transaction sender. */
  readonly publicKey: Uint8Array;
  /** A hybrid wallet's FALCON-1024 key pair (only for kind `hybrid`). */
  readonly falcon?: FalconKeyPair;
  /** The Caesar account address: SHA-256 of `publicKey`, or the hybrid address of both keys. */
  readonly address: Uint8Array;
}

function walletOf(
  file: string,
  kind: WalletKey['kind'],
  privateKey: KeyObject,
  publicKeyObject: KeyObject,
  falcon?: FalconKeyPair,
): WalletKey {
  const publicKey = ed25519RawPublicKey(publicKeyObject);
  if (falcon !== undefined) {
    return {
      file,
      kind,
      privateKey,
      publicKey,
      falcon,
      address: hybridAddress(publicKey, falcon.publicKey),
    };
  }
  return { file, kind, privateKey, publicKey, address: ed25519Address(publicKey) };
}

function keyFileProblem(file: string, error: unknown, action: string): never {
  if (error instanceof KeyFileError) {
    throw new CliError(`cannot ${action} ${file}: ${error.message} [${error.code}]`, 1);
  }
  throw error;
}

/**
 * Writes a new wallet key (a fresh Ed25519 key, kind `ed25519`; with `hybrid`, a fresh Ed25519
 * and FALCON-1024 pair, kind `ed25519-falcon-1024-r3`; mode 0600) to `file`, creating its
 * directory (0700) if needed. Never replaces an existing file.
 */
export async function createWalletKey(
  file: string,
  options: { readonly passphrase?: string; readonly hybrid?: boolean } = {},
): Promise<WalletKey> {
  const keys = generateEd25519KeyPair();
  const falcon = options.hybrid === true ? await defaultFalcon().generateKeyPair() : undefined;
  await mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  try {
    await writeKeyFile(
      file,
      falcon === undefined
        ? { kind: 'ed25519', keys }
        : { kind: 'ed25519-falcon-1024-r3', keys: { ed25519: keys, falcon } },
      options.passphrase === undefined ? {} : { passphrase: options.passphrase },
    );
  } catch (error) {
    if (error instanceof KeyFileError && error.code === KeyFileErrorCode.ALREADY_EXISTS) {
      throw new CliError(`${file} exists; a wallet key is never replaced (choose another --out)`);
    }
    keyFileProblem(file, error, 'write the wallet key');
  }
  return falcon === undefined
    ? walletOf(file, 'ed25519', keys.privateKey, keys.publicKey)
    : walletOf(file, 'hybrid', keys.privateKey, keys.publicKey, falcon);
}

/**
 * Reads a wallet key file: an `ed25519` key, or a node identity (its Ed25519 key), or, with
 * `allowHybrid`, a hybrid wallet key. Callers that sign with the Ed25519 key alone (a
 * validator's own transactions, service and DNS records, ACME accounts) leave `allowHybrid` out,
 * so a hybrid key is refused rather than acting for the Ed25519-only account of its Ed25519
 * half; those that can wrap their transaction for the hybrid account (`wallet send`, `stake
 * delegate|unbond`, `gov propose|vote`) allow it.
 */
export async function readWalletKey(
  file: string,
  options: { readonly passphrase?: string; readonly allowHybrid?: boolean } = {},
): Promise<WalletKey> {
  let content;
  try {
    content = await readKeyFile(
      file,
      options.passphrase === undefined ? {} : { passphrase: options.passphrase },
    );
  } catch (error) {
    keyFileProblem(file, error, 'read the wallet key');
  }
  switch (content.kind) {
    case 'ed25519':
      return walletOf(file, content.kind, content.keys.privateKey, content.keys.publicKey);
    case 'node-identity':
      return walletOf(
        file,
        content.kind,
        content.keys.ed25519.privateKey,
        content.keys.ed25519.publicKey,
      );
    case 'ed25519-falcon-1024-r3':
      if (options.allowHybrid !== true) {
        throw new CliError(
          `${file} is a hybrid (Ed25519 + FALCON-1024) wallet key; this command signs with Ed25519 alone and cannot act for a hybrid account (a hybrid account sends transfers, delegations, unbonds, proposals and votes: wallet send, stake delegate|unbond, gov propose|vote)`,
          1,
        );
      }
      return walletOf(
        file,
        'hybrid',
        content.keys.ed25519.privateKey,
        content.keys.ed25519.publicKey,
        content.keys.falcon,
      );
    default:
      throw new CliError(
        `${file} holds a "${content.kind}" key; a wallet needs an Ed25519 key (a wallet key file or a node identity)`,
        1,
      );
  }
}

const HEX = /^[0-9a-fA-F]*$/;

/**
 * Parses an account address given on the command line: 64 hex digits (either case; an optional
 * `0x` prefix is accepted). Throws a CliError that says what is wrong with it. Addresses carry
 * no checksum, so a mistyped but well-formed address cannot be told apart from a real one.
 */
export function parseAddressArgument(text: string, what: string): Uint8Array {
  const digits = text.startsWith('0x') || text.startsWith('0X') ? text.slice(2) : text;
  const bad = [...digits].findIndex((char) => !HEX.test(char));
  if (bad >= 0) {
    throw new CliError(
      `${what} "${text}" is not an address: character ${JSON.stringify(digits[bad])} at position ${bad + 1} is not a hex digit (an address is 64 hex digits, the hash of the account's key)`,
    );
  }
  if (digits.length !== 64) {
    throw new CliError(
      `${what} "${text}" is not an address: it has ${digits.length} hex digits, an address has 64`,
    );
  }
  return Uint8Array.from(Buffer.from(digits.toLowerCase(), 'hex'));
}
