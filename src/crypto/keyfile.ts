import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { encodeCanonical } from '../codec/cbor.js';
import { HyperMeshError } from '../codec/error.js';
import { BytesError, bytesEqual, fromBase64, toBase64 } from './bytes.js';
import type { Ed25519KeyPair } from './ed25519.js';
import { ed25519KeyPairFromSeed, ed25519RawPublicKey, ed25519Seed } from './ed25519.js';
import type { FalconKeyPair } from './falcon.js';
import { FALCON1024_PUBLIC_KEY_BYTES, FALCON1024_SECRET_KEY_BYTES, FalconError } from './falcon.js';
import { falconPublicKeyFromSecretKey } from './falcon-noble.js';
import type { P256KeyPair } from './p256.js';
import { p256KeyPairFromRaw, p256RawPrivateKey, p256RawPublicKey } from './p256.js';

/**
 * Key files: one JSON document per key, written atomically with mode 0600.
 *
 *   { "format": "hypermesh-key", "version": 1, "kind": <KeyKind>,
 *     "material": { <field>: <base64>, ... } }                       -- plaintext, or
 *   { "format": "hypermesh-key", "version": 1, "kind": <KeyKind>,
 *     "encryption": { "kdf": "scrypt", "N", "r", "p", "salt": <base64 16 bytes>,
 *                     "cipher": "aes-256-gcm", "nonce": <base64 12 bytes> },
 *     "ciphertext": <base64 of AES-256-GCM(JSON material) || tag(16)> }
 *
 * The passphrase key is scrypt (RFC 7914) with the parameters stored in the file; the GCM
 * additional data is the deterministic CBOR of { format, version, kind, encryption }, so editing
 * any header field (kind, KDF cost, salt) fails authentication instead of being trusted.
 * A stored public key must match the one derived from the secret key, else CORRUPTED.
 * Files readable by group or others are refused (like OpenSSH refuses unprotected keys).
 */
export const KEY_FILE_FORMAT = 'hypermesh-key';
export const KEY_FILE_VERSION = 1;

export type KeyKind =
  'ed25519' | 'p256' | 'falcon-1024-r3' | 'node-identity' | 'ed25519-falcon-1024-r3';
export const KEY_KINDS: readonly KeyKind[] = [
  'ed25519',
  'p256',
  'falcon-1024-r3',
  'node-identity',
  'ed25519-falcon-1024-r3',
];

/** A node's long-term identity: its Ed25519 transport key and its FALCON-1024 key. */
export interface NodeIdentityKeys {
  readonly ed25519: Ed25519KeyPair;
  readonly falcon: FalconKeyPair;
}

export type KeyFileContent =
  | { readonly kind: 'ed25519'; readonly keys: Ed25519KeyPair }
  | { readonly kind: 'p256'; readonly keys: P256KeyPair }
  | { readonly kind: 'falcon-1024-r3'; readonly keys: FalconKeyPair }
  | { readonly kind: 'node-identity'; readonly keys: NodeIdentityKeys }
  /** A hybrid signing key (e.g. a post-quantum Caesar account): the same pair, another use. */
  | { readonly kind: 'ed25519-falcon-1024-r3'; readonly keys: NodeIdentityKeys };

export type KeyFileContentOf<K extends KeyKind> = Extract<KeyFileContent, { kind: K }>;

export interface ScryptParameters {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** RFC 7914 §2 interactive-login guidance scaled to 2^15 (~32 MiB, ~0.1 s here). */
export const DEFAULT_SCRYPT_PARAMETERS: ScryptParameters = { N: 2 ** 15, r: 8, p: 1 };
/** Bounds accepted on read and write, so a hostile file cannot demand unbounded work. */
const SCRYPT_LIMITS = {
  minLogN: 10,
  maxLogN: 20,
  maxR: 32,
  maxP: 16,
  maxMemory: 512 * 1024 * 1024,
};

export enum KeyFileErrorCode {
  NOT_FOUND = 'KEYFILE_NOT_FOUND',
  READ_FAILED = 'KEYFILE_READ_FAILED',
  WRITE_FAILED = 'KEYFILE_WRITE_FAILED',
  ALREADY_EXISTS = 'KEYFILE_ALREADY_EXISTS',
  INSECURE_PERMISSIONS = 'KEYFILE_INSECURE_PERMISSIONS',
  NOT_A_KEY_FILE = 'KEYFILE_NOT_A_KEY_FILE',
  UNSUPPORTED_VERSION = 'KEYFILE_UNSUPPORTED_VERSION',
  WRONG_KIND = 'KEYFILE_WRONG_KIND',
  UNSUPPORTED_ENCRYPTION = 'KEYFILE_UNSUPPORTED_ENCRYPTION',
  PASSPHRASE_REQUIRED = 'KEYFILE_PASSPHRASE_REQUIRED',
  /** GCM authentication failed: a wrong passphrase, or a modified header or ciphertext. */
  WRONG_PASSPHRASE = 'KEYFILE_WRONG_PASSPHRASE',
  CORRUPTED = 'KEYFILE_CORRUPTED',
  INVALID_OPTIONS = 'KEYFILE_INVALID_OPTIONS',
}

export class KeyFileError extends HyperMeshError<KeyFileErrorCode> {}

export interface EncodeKeyFileOptions {
  /** Encrypts the key material when given; strings are used as NFC-normalized UTF-8. */
  readonly passphrase?: string | Uint8Array;
  readonly scrypt?: ScryptParameters;
}

export interface WriteKeyFileOptions extends EncodeKeyFileOptions {
  /** Replace an existing file (atomically). Default: refuse with ALREADY_EXISTS. */
  readonly overwrite?: boolean;
}

export interface DecodeKeyFileOptions<K extends KeyKind = KeyKind> {
  readonly passphrase?: string | Uint8Array;
  /** Expected kind; any other kind is rejected with WRONG_KIND. */
  readonly kind?: K;
}

export type ReadKeyFileOptions<K extends KeyKind = KeyKind> = DecodeKeyFileOptions<K>;

/** Largest file read: a node identity is ~6 KB; anything far larger is not a key file. */
const MAX_FILE_BYTES = 64 * 1024;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const AES_KEY_BYTES = 32;

/** Byte fields of each kind's material and their exact lengths. */
const MATERIAL_FIELDS: Record<KeyKind, Readonly<Record<string, number>>> = {
  ed25519: { seed: 32, publicKey: 32 },
  p256: { privateKey: 32, publicKey: 65 },
  'falcon-1024-r3': {
    secretKey: FALCON1024_SECRET_KEY_BYTES,
    publicKey: FALCON1024_PUBLIC_KEY_BYTES,
  },
  'node-identity': {
    ed25519Seed: 32,
    ed25519PublicKey: 32,
    falconSecretKey: FALCON1024_SECRET_KEY_BYTES,
    falconPublicKey: FALCON1024_PUBLIC_KEY_BYTES,
  },
  'ed25519-falcon-1024-r3': {
    ed25519Seed: 32,
    ed25519PublicKey: 32,
    falconSecretKey: FALCON1024_SECRET_KEY_BYTES,
    falconPublicKey: FALCON1024_PUBLIC_KEY_BYTES,
  },
};

const encryptionSchema = z.strictObject({
  kdf: z.string(),
  N: z.number().int(),
  r: z.number().int(),
  p: z.number().int(),
  salt: z.string(),
  cipher: z.string(),
  nonce: z.string(),
});
type EncryptionHeader = z.infer<typeof encryptionSchema>;

const plaintextFileSchema = z.strictObject({
  format: z.literal(KEY_FILE_FORMAT),
  version: z.literal(KEY_FILE_VERSION),
  kind: z.string(),
  material: z.record(z.string(), z.string()),
});

const encryptedFileSchema = z.strictObject({
  format: z.literal(KEY_FILE_FORMAT),
  version: z.literal(KEY_FILE_VERSION),
  kind: z.string(),
  encryption: encryptionSchema,
  ciphertext: z.string(),
});

function fail(
  code: KeyFileErrorCode,
  message: string,
  detail: Record<string, unknown> = {},
  cause?: unknown,
): KeyFileError {
  return new KeyFileError(code, message, detail, cause === undefined ? undefined : { cause });
}

function materialOf(content: KeyFileContent): Record<string, Uint8Array> {
  switch (content.kind) {
    case 'ed25519':
      return {
        seed: ed25519Seed(content.keys.privateKey),
        publicKey: ed25519RawPublicKey(content.keys.publicKey),
      };
    case 'p256':
      return {
        privateKey: p256RawPrivateKey(content.keys.privateKey),
        publicKey: p256RawPublicKey(content.keys.publicKey),
      };
    case 'falcon-1024-r3':
      return { secretKey: content.keys.secretKey, publicKey: content.keys.publicKey };
    case 'node-identity':
    case 'ed25519-falcon-1024-r3':
      return {
        ed25519Seed: ed25519Seed(content.keys.ed25519.privateKey),
        ed25519PublicKey: ed25519RawPublicKey(content.keys.ed25519.publicKey),
        falconSecretKey: content.keys.falcon.secretKey,
        falconPublicKey: content.keys.falcon.publicKey,
      };
  }
}

function checkScryptParameters(
  parameters: ScryptParameters,
  onError: (message: string) => KeyFileError,
): void {
  const { N, r, p } = parameters;
  const logN = Math.log2(N);
  if (
    !Number.isInteger(logN) ||
    logN < SCRYPT_LIMITS.minLogN ||
    logN > SCRYPT_LIMITS.maxLogN ||
    !Number.isInteger(r) ||
    r < 1 ||
    r > SCRYPT_LIMITS.maxR ||
    !Number.isInteger(p) ||
    p < 1 ||
    p > SCRYPT_LIMITS.maxP ||
    128 * N * r > SCRYPT_LIMITS.maxMemory
  ) {
    throw onError(
      `scrypt parameters N=${N} r=${r} p=${p} outside N=2^${SCRYPT_LIMITS.minLogN}..2^${SCRYPT_LIMITS.maxLogN}, ` +
        `r<=${SCRYPT_LIMITS.maxR}, p<=${SCRYPT_LIMITS.maxP}, 128*N*r<=${SCRYPT_LIMITS.maxMemory}`,
    );
  }
}

function passphraseBytes(passphrase: string | Uint8Array): Uint8Array {
  return typeof passphrase === 'string'
    ? new TextEncoder().encode(passphrase.normalize('NFC'))
    : passphrase;
}

function deriveKey(
  passphrase: Uint8Array,
  salt: Uint8Array,
  parameters: ScryptParameters,
): Promise<Buffer> {
  const { N, r, p } = parameters;
  return new Promise((resolve, reject) => {
    scrypt(
      passphrase,
      salt,
      AES_KEY_BYTES,
      { N, r, p, maxmem: 128 * N * r * 2 + 1024 * 1024 },
      (error, key) => (error === null ? resolve(key) : reject(error)),
    );
  });
}

function additionalData(kind: string, encryption: EncryptionHeader): Uint8Array {
  return encodeCanonical({ format: KEY_FILE_FORMAT, version: KEY_FILE_VERSION, kind, encryption });
}

function materialJson(material: Record<string, Uint8Array>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(material).map(([name, bytes]) => [name, toBase64(bytes)]),
  );
}

/** Serializes key material to the key-file JSON text (encrypting it when a passphrase is given). */
export async function encodeKeyFile(
  content: KeyFileContent,
  options: EncodeKeyFileOptions = {},
): Promise<string> {
  if (!KEY_KINDS.includes(content.kind)) {
    throw fail(KeyFileErrorCode.INVALID_OPTIONS, `unknown key kind "${String(content.kind)}"`);
  }
  const material = materialJson(materialOf(content));
  let document: object;
  if (options.passphrase === undefined) {
    document = { format: KEY_FILE_FORMAT, version: KEY_FILE_VERSION, kind: content.kind, material };
  } else {
    const passphrase = passphraseBytes(options.passphrase);
    if (passphrase.length === 0)
      throw fail(KeyFileErrorCode.INVALID_OPTIONS, 'passphrase must not be empty');
    const parameters = options.scrypt ?? DEFAULT_SCRYPT_PARAMETERS;
    checkScryptParameters(parameters, (message) => fail(KeyFileErrorCode.INVALID_OPTIONS, message));
    const salt = randomBytes(SALT_BYTES);
    const nonce = randomBytes(NONCE_BYTES);
    const encryption: EncryptionHeader = {
      kdf: 'scrypt',
      N: parameters.N,
      r: parameters.r,
      p: parameters.p,
      salt: toBase64(salt),
      cipher: 'aes-256-gcm',
      nonce: toBase64(nonce),
    };
    const key = await deriveKey(passphrase, salt, parameters);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(additionalData(content.kind, encryption));
    const body = Buffer.concat([
      cipher.update(JSON.stringify(material), 'utf8'),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    key.fill(0);
    document = {
      format: KEY_FILE_FORMAT,
      version: KEY_FILE_VERSION,
      kind: content.kind,
      encryption,
      ciphertext: toBase64(body),
    };
  }
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** Parses key-file JSON text; throws `KeyFileError` with a precise code on any problem. */
export async function decodeKeyFile<K extends KeyKind = KeyKind>(
  text: string,
  options: DecodeKeyFileOptions<K> = {},
): Promise<KeyFileContentOf<K>> {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw fail(KeyFileErrorCode.NOT_A_KEY_FILE, 'key file is not JSON', {}, error);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw fail(KeyFileErrorCode.NOT_A_KEY_FILE, 'key file is not a JSON object');
  }
  const header = document as Record<string, unknown>;
  if (header.format !== KEY_FILE_FORMAT) {
    throw fail(KeyFileErrorCode.NOT_A_KEY_FILE, `not a "${KEY_FILE_FORMAT}" file`);
  }
  if (header.version !== KEY_FILE_VERSION) {
    throw fail(
      KeyFileErrorCode.UNSUPPORTED_VERSION,
      `unsupported key file version ${JSON.stringify(header.version)}`,
      {
        version: header.version ?? null,
        supported: KEY_FILE_VERSION,
      },
    );
  }
  const kind = header.kind;
  if (typeof kind !== 'string' || !KEY_KINDS.includes(kind as KeyKind)) {
    throw fail(KeyFileErrorCode.WRONG_KIND, `unsupported key kind ${JSON.stringify(kind)}`, {
      found: kind ?? null,
    });
  }
  if (options.kind !== undefined && kind !== options.kind) {
    throw fail(
      KeyFileErrorCode.WRONG_KIND,
      `key file holds a "${kind}" key, expected "${options.kind}"`,
      {
        found: kind,
        expected: options.kind,
      },
    );
  }
  const material =
    'encryption' in header
      ? await decryptMaterial(header, options.passphrase)
      : plaintextMaterial(header);
  return contentOf(kind as KeyKind, material) as KeyFileContentOf<K>;
}

function plaintextMaterial(header: Record<string, unknown>): Record<string, string> {
  const parsed = plaintextFileSchema.safeParse(header);
  if (!parsed.success)
    throw fail(KeyFileErrorCode.CORRUPTED, `malformed key file: ${parsed.error.message}`);
  return parsed.data.material;
}

function base64Field(value: string, name: string, length?: number): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(value);
  } catch (error) {
    if (error instanceof BytesError)
      throw fail(KeyFileErrorCode.CORRUPTED, `"${name}" is not base64`, { field: name });
    throw error;
  }
  if (length !== undefined && bytes.length !== length) {
    throw fail(
      KeyFileErrorCode.CORRUPTED,
      `"${name}" must be ${length} bytes, is ${bytes.length}`,
      {
        field: name,
        length: bytes.length,
        expected: length,
      },
    );
  }
  return bytes;
}

async function decryptMaterial(
  header: Record<string, unknown>,
  passphrase: string | Uint8Array | undefined,
): Promise<Record<string, string>> {
  const parsed = encryptedFileSchema.safeParse(header);
  if (!parsed.success)
    throw fail(KeyFileErrorCode.CORRUPTED, `malformed encrypted key file: ${parsed.error.message}`);
  const { encryption, ciphertext, kind } = parsed.data;
  if (encryption.kdf !== 'scrypt' || encryption.cipher !== 'aes-256-gcm') {
    throw fail(
      KeyFileErrorCode.UNSUPPORTED_ENCRYPTION,
      `unsupported encryption ${encryption.kdf}/${encryption.cipher}`,
      {
        kdf: encryption.kdf,
        cipher: encryption.cipher,
      },
    );
  }
  checkScryptParameters(encryption, (message) =>
    fail(KeyFileErrorCode.UNSUPPORTED_ENCRYPTION, message),
  );
  const salt = base64Field(encryption.salt, 'encryption.salt', SALT_BYTES);
  const nonce = base64Field(encryption.nonce, 'encryption.nonce', NONCE_BYTES);
  const body = base64Field(ciphertext, 'ciphertext');
  if (body.length <= TAG_BYTES)
    throw fail(KeyFileErrorCode.CORRUPTED, 'ciphertext is shorter than its tag');
  if (passphrase === undefined || passphraseBytes(passphrase).length === 0) {
    throw fail(
      KeyFileErrorCode.PASSPHRASE_REQUIRED,
      'key file is encrypted; a passphrase is required',
    );
  }
  const key = await deriveKey(passphraseBytes(passphrase), salt, encryption);
  let plaintext: string;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(additionalData(kind, encryption));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    plaintext = Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch (error) {
    throw fail(
      KeyFileErrorCode.WRONG_PASSPHRASE,
      'wrong passphrase, or the key file was modified (AES-GCM authentication failed)',
      {},
      error,
    );
  } finally {
    key.fill(0);
  }
  let material: unknown;
  try {
    material = JSON.parse(plaintext);
  } catch (error) {
    throw fail(KeyFileErrorCode.CORRUPTED, 'decrypted key material is not JSON', {}, error);
  }
  const fields = z.record(z.string(), z.string()).safeParse(material);
  if (!fields.success)
    throw fail(KeyFileErrorCode.CORRUPTED, 'decrypted key material is not a map of strings');
  return fields.data;
}

function contentOf(kind: KeyKind, material: Record<string, string>): KeyFileContent {
  const expected = MATERIAL_FIELDS[kind];
  const names = Object.keys(material).sort();
  const expectedNames = Object.keys(expected).sort();
  if (names.join(',') !== expectedNames.join(',')) {
    throw fail(
      KeyFileErrorCode.CORRUPTED,
      `"${kind}" material must have fields ${expectedNames.join(', ')}`,
      {
        fields: names,
      },
    );
  }
  const field = (name: string): Uint8Array =>
    base64Field(material[name] ?? '', name, expected[name]);
  const mismatch = (name: string): KeyFileError =>
    fail(KeyFileErrorCode.CORRUPTED, `stored "${name}" does not belong to the stored secret key`, {
      field: name,
    });
  const ed25519 = (seedName: string, publicName: string): Ed25519KeyPair => {
    const keys = ed25519KeyPairFromSeed(field(seedName));
    if (!bytesEqual(ed25519RawPublicKey(keys.publicKey), field(publicName)))
      throw mismatch(publicName);
    return keys;
  };
  const falcon = (secretName: string, publicName: string): FalconKeyPair => {
    const secretKey = field(secretName);
    const publicKey = field(publicName);
    let derived: Uint8Array;
    try {
      derived = falconPublicKeyFromSecretKey(secretKey);
    } catch (error) {
      if (error instanceof FalconError) {
        throw fail(
          KeyFileErrorCode.CORRUPTED,
          `"${secretName}" is not a FALCON-1024 secret key`,
          { field: secretName },
          error,
        );
      }
      throw error;
    }
    if (!bytesEqual(derived, publicKey)) throw mismatch(publicName);
    return { secretKey, publicKey };
  };
  switch (kind) {
    case 'ed25519':
      return { kind, keys: ed25519('seed', 'publicKey') };
    case 'p256': {
      let keys: P256KeyPair;
      try {
        keys = p256KeyPairFromRaw(field('privateKey'));
      } catch (error) {
        if (error instanceof KeyFileError) throw error;
        throw fail(
          KeyFileErrorCode.CORRUPTED,
          '"privateKey" is not a P-256 scalar',
          { field: 'privateKey' },
          error,
        );
      }
      if (!bytesEqual(p256RawPublicKey(keys.publicKey), field('publicKey')))
        throw mismatch('publicKey');
      return { kind, keys };
    }
    case 'falcon-1024-r3':
      return { kind, keys: falcon('secretKey', 'publicKey') };
    case 'node-identity':
    case 'ed25519-falcon-1024-r3':
      return {
        kind,
        keys: {
          ed25519: ed25519('ed25519Seed', 'ed25519PublicKey'),
          falcon: falcon('falconSecretKey', 'falconPublicKey'),
        },
      };
  }
}

function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string'
    ? error.code
    : undefined;
}

/** A file-system failure on the key file at `path`, with its errno for callers that switch on it. */
function ioFailure(
  code: KeyFileErrorCode,
  action: 'write' | 'open' | 'read',
  path: string,
  error: unknown,
): KeyFileError {
  return fail(
    code,
    `cannot ${action} key file ${path}: ${(error as Error).message}`,
    { path, errno: errnoCode(error) ?? null },
    error,
  );
}

/**
 * Writes a key file atomically: the bytes go to a 0600 temporary file in the same directory,
 * are fsynced, and then appear under `path` in one step — `link` when overwriting is not allowed
 * (fails with EEXIST, so an existing file is never replaced even by a concurrent writer),
 * `rename` otherwise. On any failure the temporary file is removed and `path` is untouched.
 */
export async function writeKeyFile(
  path: string,
  content: KeyFileContent,
  options: WriteKeyFileOptions = {},
): Promise<void> {
  const text = await encodeKeyFile(content, options);
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx', 0o600);
    await handle.chmod(0o600);
    await handle.writeFile(text, 'utf8');
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (options.overwrite === true) {
      await rename(temporary, path);
    } else {
      await link(temporary, path);
      await unlink(temporary);
    }
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    if (errnoCode(error) === 'EEXIST') {
      throw fail(
        KeyFileErrorCode.ALREADY_EXISTS,
        `${path} exists; pass { overwrite: true } to replace it`,
        { path },
        error,
      );
    }
    throw ioFailure(KeyFileErrorCode.WRITE_FAILED, 'write', path, error);
  }
  await syncDirectory(dirname(path));
}

/** Makes the new directory entry durable; some filesystems refuse to fsync a directory. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r').catch(() => undefined);
  if (handle === undefined) return;
  await handle.sync().catch(() => undefined);
  await handle.close();
}

/** What a non-regular file at a key path is, for the refusal's message. */
function fileType(stats: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
}): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  return 'a device or other special file';
}

/**
 * Reads a secret file (a key file, or a passphrase file beside one) as UTF-8 text with the
 * checks a key file gets: a regular file (a FIFO or device is refused, not waited on: it is
 * opened non-blocking and checked with fstat before any read), not accessible by group or others
 * (INSECURE_PERMISSIONS, like OpenSSH), and at most 64 KiB (counted while reading, so a file
 * that grows meanwhile is refused too). `what` names it in messages ("key file").
 */
export async function readSecretFile(path: string, what = 'key file'): Promise<string> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT')
      throw fail(KeyFileErrorCode.NOT_FOUND, `no ${what} at ${path}`, { path }, error);
    throw ioFailure(KeyFileErrorCode.READ_FAILED, 'open', path, error);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw fail(
        KeyFileErrorCode.NOT_A_KEY_FILE,
        `${what} ${path} is ${fileType(stats)}, not a regular file`,
        { path },
      );
    }
    if (process.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
      throw fail(
        KeyFileErrorCode.INSECURE_PERMISSIONS,
        `${what} ${path} is accessible by group or others (mode ${(stats.mode & 0o777).toString(8)}); chmod 600 it`,
        { path, mode: stats.mode & 0o777 },
      );
    }
    const buffer = Buffer.alloc(MAX_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_FILE_BYTES) {
        throw fail(
          KeyFileErrorCode.NOT_A_KEY_FILE,
          `${what} ${path} is larger than ${MAX_FILE_BYTES} bytes, too large for a ${what}`,
          { path },
        );
      }
    }
    return buffer.subarray(0, length).toString('utf8');
  } catch (error) {
    if (error instanceof KeyFileError) throw error;
    throw ioFailure(KeyFileErrorCode.READ_FAILED, 'read', path, error);
  } finally {
    await handle.close();
  }
}

/**
 * Reads and decodes a key file (see `decodeKeyFile`), refusing what `readSecretFile` refuses:
 * a non-regular, group/world-accessible or oversized file.
 */
export async function readKeyFile<K extends KeyKind = KeyKind>(
  path: string,
  options: ReadKeyFileOptions<K> = {},
): Promise<KeyFileContentOf<K>> {
  return decodeKeyFile(await readSecretFile(path), options);
}
