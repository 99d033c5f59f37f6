import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isHyperMeshError } from '../../src/codec/error.js';
import { generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import {
  KeyFileErrorCode,
  readKeyFile,
  readSecretFile,
  writeKeyFile,
} from '../../src/crypto/keyfile.js';

/**
 * What a key path may hold besides a key file: a FIFO or a directory is refused at once (a FIFO
 * is never waited on), and `readSecretFile` gives a passphrase file the key files' checks.
 */

const keyFileError = (code: KeyFileErrorCode, message?: RegExp) => (error: unknown) =>
  isHyperMeshError(error, code) && (message === undefined || message.test(error.message));

const mkfifo = spawnSync('mkfifo', ['--version'], { encoding: 'utf8' }).status === 0;
const skipFifo =
  process.platform === 'win32' || !mkfifo ? 'mkfifo not available on this system' : false;

describe('key files that are not regular files', () => {
  let directory: string;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'hypermesh-keyfile-special-'));
  });

  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('a FIFO at a key path is refused at once, not waited on', { skip: skipFifo }, async () => {
    const fifo = join(directory, 'node.key');
    const made = spawnSync('mkfifo', ['-m', '600', fifo], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    // Without a writer, opening the FIFO for reading would block: the test's own timeout is the
    // deadline that catches it.
    await assert.rejects(
      readKeyFile(fifo),
      keyFileError(KeyFileErrorCode.NOT_A_KEY_FILE, /is a FIFO, not a regular file/),
    );
    await assert.rejects(
      readSecretFile(fifo, 'passphrase file'),
      keyFileError(KeyFileErrorCode.NOT_A_KEY_FILE, /^passphrase file .* is a FIFO/),
    );
  });

  it('a directory at a key path is refused', async () => {
    await assert.rejects(
      readKeyFile(directory),
      keyFileError(KeyFileErrorCode.NOT_A_KEY_FILE, /is a directory, not a regular file/),
    );
  });
});

describe('readSecretFile', () => {
  let directory: string;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'hypermesh-secret-file-'));
  });

  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('reads an owner-only file; refuses it readable by group or others', async () => {
    const file = join(directory, 'passphrase.txt');
    await writeFile(file, 'correct horse battery staple\n', { mode: 0o600 });
    await chmod(file, 0o600);
    assert.equal(await readSecretFile(file), 'correct horse battery staple\n');
    for (const mode of [0o640, 0o604, 0o644]) {
      await chmod(file, mode);
      await assert.rejects(
        readSecretFile(file, 'passphrase file'),
        keyFileError(
          KeyFileErrorCode.INSECURE_PERMISSIONS,
          new RegExp(`^passphrase file .* \\(mode ${mode.toString(8)}\\); chmod 600 it$`),
        ),
      );
    }
  });

  it('refuses a file over 64 KiB, and a missing one with NOT_FOUND', async () => {
    const large = join(directory, 'large.txt');
    await writeFile(large, 'x'.repeat(64 * 1024 + 1), { mode: 0o600 });
    await assert.rejects(
      readSecretFile(large),
      keyFileError(KeyFileErrorCode.NOT_A_KEY_FILE, /too large/),
    );
    const exact = join(directory, 'exact.txt');
    await writeFile(exact, 'y'.repeat(64 * 1024), { mode: 0o600 });
    assert.equal((await readSecretFile(exact)).length, 64 * 1024);
    await assert.rejects(
      readSecretFile(join(directory, 'absent.txt')),
      keyFileError(KeyFileErrorCode.NOT_FOUND),
    );
  });

  it('readKeyFile still reads what writeKeyFile wrote', async () => {
    const file = join(directory, 'ed25519.key');
    const keys = generateEd25519KeyPair();
    await writeKeyFile(file, { kind: 'ed25519', keys });
    const read = await readKeyFile(file, { kind: 'ed25519' });
    assert.ok(read.keys.publicKey.equals(keys.publicKey));
  });
});
