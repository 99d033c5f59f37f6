import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isHyperMeshError } from '../../src/codec/error.js';
import { toBase64 } from '../../src/crypto/bytes.js';
import {
  ed25519RawPublicKey,
  ed25519Seed,
  generateEd25519KeyPair,
} from '../../src/crypto/ed25519.js';
import type { FalconKeyPair } from '../../src/crypto/falcon.js';
import { createFalcon } from '../../src/crypto/falcon.js';
import type { KeyFileContent } from '../../src/crypto/keyfile.js';
import {
  KeyFileErrorCode,
  decodeKeyFile,
  encodeKeyFile,
  readKeyFile,
  writeKeyFile,
} from '../../src/crypto/keyfile.js';
import { generateP256KeyPair, p256RawPrivateKey, p256RawPublicKey } from '../../src/crypto/p256.js';

/** Cheap scrypt cost for tests that are not about the KDF; the default is exercised too. */
const fastScrypt = { N: 2 ** 10, r: 8, p: 1 };
const keyFileError = (code: KeyFileErrorCode) => (error: unknown) => isHyperMeshError(error, code);

type Json = Record<string, unknown>;

async function mutate(text: string, change: (document: Json) => void): Promise<string> {
  const document = JSON.parse(text) as Json;
  change(document);
  return JSON.stringify(document);
}

describe('key files', () => {
  let directory: string;
  let falconKeys: FalconKeyPair;
  let otherFalconKeys: FalconKeyPair;
  let contents: KeyFileContent[];

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'hypermesh-keyfile-'));
    const falcon = createFalcon('pqclean');
    falconKeys = await falcon.generateKeyPair();
    otherFalconKeys = await falcon.generateKeyPair();
    contents = [
      { kind: 'ed25519', keys: generateEd25519KeyPair() },
      { kind: 'p256', keys: generateP256KeyPair() },
      { kind: 'falcon-1024-r3', keys: falconKeys },
      { kind: 'node-identity', keys: { ed25519: generateEd25519KeyPair(), falcon: falconKeys } },
    ];
  });

  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  const path = (name: string): string => join(directory, name);
  const content = (kind: KeyFileContent['kind']): KeyFileContent => {
    const found = contents.find((entry) => entry.kind === kind);
    assert.ok(found);
    return found;
  };

  function assertSameKeys(actual: KeyFileContent, expected: KeyFileContent): void {
    assert.equal(actual.kind, expected.kind);
    if (actual.kind === 'ed25519' && expected.kind === 'ed25519') {
      assert.deepEqual(ed25519Seed(actual.keys.privateKey), ed25519Seed(expected.keys.privateKey));
      assert.deepEqual(
        ed25519RawPublicKey(actual.keys.publicKey),
        ed25519RawPublicKey(expected.keys.publicKey),
      );
    } else if (actual.kind === 'p256' && expected.kind === 'p256') {
      assert.deepEqual(
        p256RawPrivateKey(actual.keys.privateKey),
        p256RawPrivateKey(expected.keys.privateKey),
      );
      assert.deepEqual(
        p256RawPublicKey(actual.keys.publicKey),
        p256RawPublicKey(expected.keys.publicKey),
      );
    } else if (actual.kind === 'falcon-1024-r3' && expected.kind === 'falcon-1024-r3') {
      assert.deepEqual(actual.keys, expected.keys);
    } else if (actual.kind === 'node-identity' && expected.kind === 'node-identity') {
      assert.deepEqual(
        ed25519Seed(actual.keys.ed25519.privateKey),
        ed25519Seed(expected.keys.ed25519.privateKey),
      );
      assert.deepEqual(actual.keys.falcon, expected.keys.falcon);
    } else {
      assert.fail('kinds differ');
    }
  }

  it('writes every kind with mode 0600 and reads it back, plaintext and encrypted', async () => {
    const previousUmask = process.umask(0);
    try {
      for (const entry of contents) {
        const plain = path(`${entry.kind}.key`);
        await writeKeyFile(plain, entry);
        assert.equal((await stat(plain)).mode & 0o777, 0o600);
        assertSameKeys(await readKeyFile(plain), entry);
        assertSameKeys(await readKeyFile(plain, { kind: entry.kind }), entry);
        const text = await readFile(plain, 'utf8');
        assert.equal(JSON.parse(text).format, 'hypermesh-key');

        const sealed = path(`${entry.kind}.sealed.key`);
        await writeKeyFile(sealed, entry, { passphrase: 'correct horse', scrypt: fastScrypt });
        assert.equal((await stat(sealed)).mode & 0o777, 0o600);
        const sealedText = await readFile(sealed, 'utf8');
        const secretField = Object.values((JSON.parse(text) as { material: Json }).material)[0];
        assert.equal(typeof secretField, 'string');
        assert.equal(sealedText.includes(secretField as string), false, 'material not in clear');
        assert.equal('material' in JSON.parse(sealedText), false);
        assertSameKeys(await readKeyFile(sealed, { passphrase: 'correct horse' }), entry);
      }
    } finally {
      process.umask(previousUmask);
    }
    // `kind` narrows the result type: no switch needed to reach the FALCON key.
    const identity = await readKeyFile(path('node-identity.key'), { kind: 'node-identity' });
    assert.deepEqual(identity.keys.falcon.publicKey, falconKeys.publicKey);
    assert.deepEqual(
      (await readdir(directory)).filter((name) => name.endsWith('.tmp')),
      [],
    );
  });

  it('uses scrypt N=2^15, r=8, p=1 by default and records the parameters', async () => {
    const text = await encodeKeyFile(content('node-identity'), { passphrase: 'pass' });
    const document = JSON.parse(text) as { encryption: Json };
    assert.equal(document.encryption.kdf, 'scrypt');
    assert.equal(document.encryption.N, 32768);
    assert.equal(document.encryption.r, 8);
    assert.equal(document.encryption.p, 1);
    assert.equal(document.encryption.cipher, 'aes-256-gcm');
    assertSameKeys(await decodeKeyFile(text, { passphrase: 'pass' }), content('node-identity'));
  });

  it('accepts byte passphrases and NFC-normalizes string passphrases', async () => {
    const text = await encodeKeyFile(content('ed25519'), {
      passphrase: 'caf\u00e9',
      scrypt: fastScrypt,
    });
    assertSameKeys(await decodeKeyFile(text, { passphrase: 'cafe\u0301' }), content('ed25519'));
    const bytes = await encodeKeyFile(content('ed25519'), {
      passphrase: Uint8Array.of(0, 255),
      scrypt: fastScrypt,
    });
    assertSameKeys(
      await decodeKeyFile(bytes, { passphrase: Uint8Array.of(0, 255) }),
      content('ed25519'),
    );
  });

  it('refuses to overwrite unless asked, leaving the existing file intact', async () => {
    const target = path('existing.key');
    await writeKeyFile(target, content('ed25519'));
    const before = await readFile(target, 'utf8');
    await assert.rejects(
      writeKeyFile(target, content('p256')),
      keyFileError(KeyFileErrorCode.ALREADY_EXISTS),
    );
    assert.equal(await readFile(target, 'utf8'), before);
    await writeKeyFile(target, content('p256'), { overwrite: true });
    assert.equal((await readKeyFile(target)).kind, 'p256');
    assert.equal((await stat(target)).mode & 0o777, 0o600);
    assert.deepEqual(
      (await readdir(directory)).filter((name) => name.endsWith('.tmp')),
      [],
    );
  });

  it('leaves nothing behind when a write fails', async () => {
    const missing = path('no-such-dir/identity.key');
    await assert.rejects(
      writeKeyFile(missing, content('ed25519')),
      keyFileError(KeyFileErrorCode.WRITE_FAILED),
    );
    const sub = path('occupied');
    await mkdir(join(sub, 'target.key'), { recursive: true });
    await assert.rejects(
      writeKeyFile(join(sub, 'target.key'), content('ed25519'), { overwrite: true }),
      keyFileError(KeyFileErrorCode.WRITE_FAILED),
    );
    assert.deepEqual(await readdir(sub), ['target.key']);
    await assert.rejects(
      writeKeyFile(path('bad-options.key'), content('ed25519'), { passphrase: '' }),
      keyFileError(KeyFileErrorCode.INVALID_OPTIONS),
    );
    await assert.rejects(
      writeKeyFile(path('bad-options.key'), content('ed25519'), {
        passphrase: 'x',
        scrypt: { N: 1000, r: 8, p: 1 },
      }),
      keyFileError(KeyFileErrorCode.INVALID_OPTIONS),
    );
    await assert.rejects(stat(path('bad-options.key')), { code: 'ENOENT' });
    assert.deepEqual(
      (await readdir(directory)).filter((name) => name.endsWith('.tmp')),
      [],
    );
  });

  it('reports a missing file, a directory and group/world-readable files', async () => {
    await assert.rejects(readKeyFile(path('absent.key')), keyFileError(KeyFileErrorCode.NOT_FOUND));
    await assert.rejects(readKeyFile(directory), keyFileError(KeyFileErrorCode.NOT_A_KEY_FILE));
    const target = path('loose.key');
    await writeKeyFile(target, content('ed25519'));
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o601]) {
      await chmod(target, mode);
      await assert.rejects(
        readKeyFile(target),
        keyFileError(KeyFileErrorCode.INSECURE_PERMISSIONS),
        mode.toString(8),
      );
    }
    await chmod(target, 0o400);
    assert.equal((await readKeyFile(target)).kind, 'ed25519');
  });

  it('rejects files that are not key files', async () => {
    const cases: Array<[string, string, KeyFileErrorCode]> = [
      ['not JSON', 'ssh-ed25519 AAAA', KeyFileErrorCode.NOT_A_KEY_FILE],
      ['JSON array', '[]', KeyFileErrorCode.NOT_A_KEY_FILE],
      ['other JSON', '{"format":"jwk"}', KeyFileErrorCode.NOT_A_KEY_FILE],
      [
        'version 2',
        '{"format":"hypermesh-key","version":2,"kind":"ed25519"}',
        KeyFileErrorCode.UNSUPPORTED_VERSION,
      ],
      [
        'no version',
        '{"format":"hypermesh-key","kind":"ed25519"}',
        KeyFileErrorCode.UNSUPPORTED_VERSION,
      ],
      [
        'unknown kind',
        '{"format":"hypermesh-key","version":1,"kind":"rsa","material":{}}',
        KeyFileErrorCode.WRONG_KIND,
      ],
    ];
    for (const [name, text, code] of cases) {
      await assert.rejects(decodeKeyFile(text), keyFileError(code), name);
    }
    const big = path('big.key');
    await writeFile(big, ' '.repeat(70 * 1024), { mode: 0o600 });
    await assert.rejects(readKeyFile(big), keyFileError(KeyFileErrorCode.NOT_A_KEY_FILE));
  });

  it('rejects a key of the wrong kind', async () => {
    const text = await encodeKeyFile(content('ed25519'));
    await assert.rejects(
      decodeKeyFile(text, { kind: 'node-identity' }),
      keyFileError(KeyFileErrorCode.WRONG_KIND),
    );
  });

  it('distinguishes missing and wrong passphrases, and detects tampering', async () => {
    const text = await encodeKeyFile(content('node-identity'), {
      passphrase: 'right',
      scrypt: fastScrypt,
    });
    await assert.rejects(decodeKeyFile(text), keyFileError(KeyFileErrorCode.PASSPHRASE_REQUIRED));
    await assert.rejects(
      decodeKeyFile(text, { passphrase: '' }),
      keyFileError(KeyFileErrorCode.PASSPHRASE_REQUIRED),
    );
    await assert.rejects(
      decodeKeyFile(text, { passphrase: 'wrong' }),
      keyFileError(KeyFileErrorCode.WRONG_PASSPHRASE),
    );
    const tampered = [
      await mutate(text, (d) => ((d.encryption as Json).N = 2 ** 11)),
      await mutate(text, (d) => ((d.encryption as Json).salt = toBase64(new Uint8Array(16)))),
      await mutate(text, (d) => ((d.encryption as Json).nonce = toBase64(new Uint8Array(12)))),
      await mutate(text, (d) => {
        const body = Buffer.from(d.ciphertext as string, 'base64');
        body[5] = (body[5] ?? 0) ^ 1;
        d.ciphertext = body.toString('base64');
      }),
    ];
    for (const bad of tampered) {
      await assert.rejects(
        decodeKeyFile(bad, { passphrase: 'right' }),
        keyFileError(KeyFileErrorCode.WRONG_PASSPHRASE),
      );
    }
    // Changing the kind header is caught too: here the kind check fires first.
    const retyped = await mutate(text, (d) => (d.kind = 'falcon-1024-r3'));
    await assert.rejects(
      decodeKeyFile(retyped, { passphrase: 'right', kind: 'node-identity' }),
      keyFileError(KeyFileErrorCode.WRONG_KIND),
    );
    await assert.rejects(
      decodeKeyFile(retyped, { passphrase: 'right' }),
      keyFileError(KeyFileErrorCode.WRONG_PASSPHRASE),
    );
  });

  it('refuses unsupported or unbounded encryption parameters without running them', async () => {
    const text = await encodeKeyFile(content('ed25519'), { passphrase: 'p', scrypt: fastScrypt });
    const cases = [
      await mutate(text, (d) => ((d.encryption as Json).kdf = 'argon2id')),
      await mutate(text, (d) => ((d.encryption as Json).cipher = 'chacha20-poly1305')),
      await mutate(text, (d) => ((d.encryption as Json).N = 2 ** 30)),
      await mutate(text, (d) => ((d.encryption as Json).N = 3000)),
      await mutate(text, (d) => ((d.encryption as Json).p = 1000)),
    ];
    for (const bad of cases) {
      await assert.rejects(
        decodeKeyFile(bad, { passphrase: 'p' }),
        keyFileError(KeyFileErrorCode.UNSUPPORTED_ENCRYPTION),
      );
    }
  });

  it('reports corrupted material precisely', async () => {
    const ed = await encodeKeyFile(content('ed25519'));
    const p256 = await encodeKeyFile(content('p256'));
    const falcon = await encodeKeyFile(content('falcon-1024-r3'));
    const sealed = await encodeKeyFile(content('ed25519'), { passphrase: 'p', scrypt: fastScrypt });
    const material = (d: Json): Json => d.material as Json;
    const cases: Array<[string, string]> = [
      ['short seed', await mutate(ed, (d) => (material(d).seed = toBase64(new Uint8Array(31))))],
      ['seed not base64', await mutate(ed, (d) => (material(d).seed = 'not*base64'))],
      ['missing field', await mutate(ed, (d) => delete material(d).publicKey)],
      ['extra field', await mutate(ed, (d) => (material(d).comment = 'AA=='))],
      ['field not a string', await mutate(ed, (d) => (material(d).seed = 7))],
      ['no material', await mutate(ed, (d) => delete d.material)],
      ['unknown top-level field', await mutate(ed, (d) => (d.extra = true))],
      [
        'ed25519 public key of another seed',
        await mutate(ed, (d) => (material(d).publicKey = toBase64(new Uint8Array(32)))),
      ],
      [
        'p256 scalar zero',
        await mutate(p256, (d) => (material(d).privateKey = toBase64(new Uint8Array(32)))),
      ],
      [
        'p256 public key of another scalar',
        await mutate(p256, (d) => {
          material(d).publicKey = toBase64(p256RawPublicKey(generateP256KeyPair().publicKey));
        }),
      ],
      [
        'falcon public key of another key',
        await mutate(falcon, (d) => (material(d).publicKey = toBase64(otherFalconKeys.publicKey))),
      ],
      [
        'falcon secret key garbage',
        await mutate(falcon, (d) => (material(d).secretKey = toBase64(new Uint8Array(2305)))),
      ],
      ['short salt', await mutate(sealed, (d) => ((d.encryption as Json).salt = 'AAAA'))],
      ['ciphertext too short', await mutate(sealed, (d) => (d.ciphertext = 'AAAA'))],
      ['both material and encryption', await mutate(sealed, (d) => (d.material = {}))],
    ];
    for (const [name, text] of cases) {
      await assert.rejects(
        decodeKeyFile(text, { passphrase: 'p' }),
        keyFileError(KeyFileErrorCode.CORRUPTED),
        name,
      );
    }
  });
});
