import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import {
  defaultFalcon,
  type FalconBackend,
  type FalconKeyPair,
} from '../../../src/crypto/falcon.js';
import { CaError, type CaErrorCode } from '../../../src/trustchain/ca/errors.js';
import {
  createValidatorCaRequest,
  runGenesisCeremony,
  type ValidatorCaKeys,
} from '../../../src/trustchain/ca/hierarchy.js';
import type { TrustBundle } from '../../../src/trustchain/ca/bundle.js';
import {
  certificateTbs,
  leafTbs,
  parseIssuer,
  prepareBlock,
  type BlockIssuance,
  type Issuer,
} from '../../../src/trustchain/ca/issue.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { CertificateBatch, signBatch } from '../../../src/trustchain/ca/batch.js';
import {
  assembleCertificate,
  createDeterministicSigner,
} from '../../../src/trustchain/ca/certificate.js';
import {
  parseCertificateRequest,
  proveFalconPossession,
  type CertificateRequest,
  type Requester,
} from '../../../src/trustchain/ca/request.js';

/**
 * A small TrustChain CA for tests: a genesis ceremony with two validators (cheap scrypt
 * parameters), their intermediate keys, and request builders. FALCON key generation costs tens
 * of milliseconds, so each test file makes one and reuses it.
 */

export const CLUSTER = 'test-cluster';
export const CHAIN_ID = 'test-chain';
export const CEREMONY_TIME = new Date('2026-01-01T00:00:00Z');
export const BLOCK_TIME = Date.parse('2026-03-01T12:00:00.750Z');
export const PASSPHRASE = 'correct horse battery staple';
export const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };

export interface TestCa {
  readonly falcon: FalconBackend;
  readonly bundle: TrustBundle;
  readonly rootKeyFiles: { readonly ecdsa: string; readonly falcon: string };
  readonly validators: Readonly<
    Record<string, { readonly keys: ValidatorCaKeys; readonly issuer: Issuer }>
  >;
  /** A FALCON key pair for requests that need one (node profile). */
  readonly subjectFalcon: FalconKeyPair;
}

export async function createTestCa(names: readonly string[] = ['val-a', 'val-b']): Promise<TestCa> {
  const falcon = defaultFalcon();
  const requests = await Promise.all(
    names.map((name) => createValidatorCaRequest({ name, falcon })),
  );
  const ceremony = await runGenesisCeremony({
    cluster: CLUSTER,
    chainId: CHAIN_ID,
    time: CEREMONY_TIME,
    passphrase: PASSPHRASE,
    validators: requests.map((r) => r.request),
    scrypt: FAST_SCRYPT,
    falcon,
  });
  const validators = Object.fromEntries(
    requests.map((r) => {
      const entry = ceremony.bundle.validators.find((v) => v.name === r.request.name);
      if (entry === undefined) throw new Error(`no intermediate for ${r.request.name}`);
      return [r.request.name, { keys: r.keys, issuer: parseIssuer(entry.certificate) }];
    }),
  );
  return {
    falcon,
    bundle: ceremony.bundle,
    rootKeyFiles: ceremony.rootKeyFiles,
    validators,
    subjectFalcon: await falcon.generateKeyPair(),
  };
}

export type KeyKind = 'p256' | 'ed25519' | 'rsa';

export function generateKey(kind: KeyKind, rsaBits = 2048): KeyObject {
  if (kind === 'p256') return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  if (kind === 'ed25519') return generateKeyPairSync('ed25519').privateKey;
  return generateKeyPairSync('rsa', { modulusLength: rsaBits }).privateKey;
}

/** A parsed `service` request for `dnsNames` with a fresh key of `kind`. */
export function serviceRequest(
  dnsNames: readonly string[] = ['www.example.com'],
  kind: KeyKind = 'p256',
  extra: { ipAddresses?: readonly string[]; lifetimeSeconds?: number } = {},
): CertificateRequest {
  const privateKey = generateKey(kind);
  return parseCertificateRequest({
    profile: 'service',
    csr: createCsr({ privateKey }),
    dnsNames,
    ...(extra.ipAddresses === undefined ? {} : { ipAddresses: extra.ipAddresses }),
    ...(extra.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: extra.lifetimeSeconds }),
  });
}

/** A parsed `node` request: Ed25519 key, `spiffe://<cluster>/node/<name>`, FALCON key with proof. */
export async function nodeRequest(ca: TestCa, name = 'node-1'): Promise<CertificateRequest> {
  const privateKey = generateKey('ed25519');
  const csr = createCsr({ privateKey });
  const spki = new Uint8Array(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
  return parseCertificateRequest(
    {
      profile: 'node',
      csr,
      uris: [`spiffe://${CLUSTER}/node/${name}`],
      falcon: {
        publicKey: ca.subjectFalcon.publicKey,
        proof: await proveFalconPossession(spki, ca.subjectFalcon.secretKey, ca.falcon),
      },
    },
    { falcon: ca.falcon },
  );
}

export const EVERYTHING: Requester = {
  account: 'acct-1',
  profiles: ['node', 'service', 'client'],
  dnsZones: ['example.com'],
  wildcards: true,
  ipRanges: ['192.0.2.0/24', '2001:db8::/32'],
  uriPrefixes: [`spiffe://${CLUSTER}/`],
};

export function txHash(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  if (length < 0x100) return [0x81, length];
  return [0x82, length >> 8, length & 0xff];
}

/**
 * `tbs` (a TBSCertificate) with its serial replaced by `serial`, the content of a positive DER
 * INTEGER (first byte 0x01..0x7f).
 */
function tbsWithSerial(tbs: Uint8Array, serial: Uint8Array): Uint8Array {
  // TBSCertificate ::= SEQUENCE { [0] version, serialNumber INTEGER, ... } (RFC 5280 §4.1).
  const first = tbs[1]!;
  const body = tbs.subarray(first & 0x80 ? 2 + (first & 0x7f) : 2);
  const version = body.subarray(0, 2 + body[1]!);
  const afterVersion = body.subarray(version.length);
  const rest = afterVersion.subarray(2 + afterVersion[1]!);
  const content = [...version, 0x02, ...derLength(serial.length), ...serial, ...rest];
  return Uint8Array.from([0x30, ...derLength(content.length), ...content]);
}

/**
 * The first certificate of `block` as its issuer (val-a's keys in `keys`) would sign it with
 * `serial` instead of the 16-byte TrustChain serial: a batch of that one leaf, signed with the
 * issuer's FALCON key, and the certificate with its inclusion — every offline check but the
 * serial's length holds. Consensus cannot have published such a certificate.
 */
export async function issueWithSerial(
  ca: TestCa,
  keys: ValidatorCaKeys,
  block: BlockIssuance,
  serial: Uint8Array,
): Promise<Uint8Array> {
  const prepared = prepareBlock(block);
  const inputs = prepared.inputs[0]!;
  const batch = CertificateBatch.fromLeaves([tbsWithSerial(leafTbs(inputs), serial)]);
  const signature = await signBatch(
    { ...prepared.statement, rootHash: batch.rootHash, treeSize: batch.size },
    keys.falcon.secretKey,
    ca.falcon,
  );
  const tbs = tbsWithSerial(
    certificateTbs(inputs, {
      leafIndex: 0,
      treeSize: batch.size,
      rootHash: batch.rootHash,
      path: batch.inclusionPath(0),
      signature: { algorithm: signature.algorithm, value: signature.signature },
    }),
    serial,
  );
  return assembleCertificate(tbs, createDeterministicSigner(keys.ecdsa.privateKey).sign(tbs));
}

/** For `assert.throws`: a CaError with `code` (and, if given, `detail.reason`). */
export function isCaError(code: CaErrorCode, reason?: string) {
  return (error: unknown): boolean =>
    error instanceof CaError &&
    error.code === code &&
    (reason === undefined || error.detail.reason === reason);
}

const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
export const OPENSSL_AVAILABLE = openssl.status === 0;
if (!OPENSSL_AVAILABLE && process.env.CI === 'true') {
  throw new Error('openssl is required in CI (.ci/run installs it) but was not found on PATH');
}
export const SKIP_WITHOUT_OPENSSL = OPENSSL_AVAILABLE
  ? false
  : 'openssl not found on PATH: install it to run the CA interop tests';

export function runOpenssl(
  args: readonly string[],
  input?: string | Uint8Array,
): { status: number | null; output: string; stdout: Buffer } {
  const result = spawnSync('openssl', args, input === undefined ? {} : { input });
  return {
    status: result.status,
    output: `${result.stdout?.toString() ?? ''}${result.stderr?.toString() ?? ''}`,
    stdout: result.stdout ?? Buffer.alloc(0),
  };
}
