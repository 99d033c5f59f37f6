import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pemToDer } from '../../../src/crypto/x509.js';
import { createLocalCa, type LocalCa } from '../../../src/faces/acme/local-issuer.js';
import {
  startAcmeServer,
  type AcmeServer,
  type AcmeServerOptions,
} from '../../../src/faces/acme/server.js';
import { AcmeStore } from '../../../src/faces/acme/store.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { withDeadline } from '../../helpers/wait.js';

/**
 * Shared pieces of the ACME tests: a local TrustChain CA (one genesis ceremony per test file),
 * an HTTPS certificate for 127.0.0.1 issued by that CA, servers on loopback with their store
 * in a temporary directory, an http-01 responder, a small hand-rolled JWS client for requests
 * no well-behaved client would send, and `openssl verify`.
 */

export const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };

export interface TestPki {
  readonly ca: LocalCa;
  readonly rootPem: string;
  readonly tls: { readonly key: string; readonly cert: string };
  readonly dir: string;
  readonly rootFile: string;
  readonly chainFile: string;
  cleanup(): void;
}

export async function createTestPki(): Promise<TestPki> {
  const ca = await createLocalCa({
    cluster: 'acme-test',
    chainId: 'acme-test-chain',
    passphrase: 'acme test passphrase',
    scrypt: FAST_SCRYPT,
  });
  const serverKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const issued = await ca.issuer.issue({
    orderId: 'https-server-certificate',
    accountId: 'tests',
    csrDer: createCsr({ privateKey: serverKey, ipAddresses: ['127.0.0.1'] }),
    identifiers: [{ type: 'ip', value: '127.0.0.1' }],
  });
  const dir = mkdtempSync(join(tmpdir(), 'hm-acme-'));
  const rootFile = join(dir, 'root.pem');
  const chainFile = join(dir, 'chain.pem');
  writeFileSync(rootFile, ca.issuer.rootPem);
  writeFileSync(chainFile, ca.issuer.chainPem);
  return {
    ca,
    rootPem: ca.issuer.rootPem,
    tls: {
      key: serverKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      cert: `${issued.certificatePem}${issued.chainPem}`,
    },
    dir,
    rootFile,
    chainFile,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface RunningAcme {
  readonly server: AcmeServer;
  readonly store: AcmeStore;
  readonly storePath: string;
  close(): Promise<void>;
}

export async function startTestAcme(
  pki: TestPki,
  options: Partial<AcmeServerOptions> & { storePath?: string } = {},
): Promise<RunningAcme> {
  const storePath = options.storePath ?? join(mkdtempSync(join(pki.dir, 'store-')), 'acme.sqlite');
  const store = AcmeStore.open(storePath);
  const errors: unknown[] = [];
  const server = await startAcmeServer({
    host: '127.0.0.1',
    port: 0,
    tls: pki.tls,
    store,
    issuer: pki.ca.issuer,
    onInternalError: (error) => errors.push(error),
    // Every test client comes from 127.0.0.1; limits.test.ts tests this limit.
    maxNewAccountsPerAddress: 1_000,
    ...options,
  });
  return {
    server,
    store,
    storePath,
    async close() {
      await server.close();
      store.close();
      if (errors.length > 0) throw new Error(`internal errors: ${String(errors[0])}`);
    },
  };
}

/** An http-01 responder on loopback: serves `/.well-known/acme-challenge/<token>`. */
export class Http01Responder {
  readonly tokens = new Map<string, string>();
  readonly hosts: string[] = [];

  private constructor(
    readonly server: http.Server,
    readonly port: number,
  ) {
    server.on('request', (request, response) => {
      this.hosts.push(request.headers.host ?? '');
      const prefix = '/.well-known/acme-challenge/';
      const token = request.url?.startsWith(prefix) ? request.url.slice(prefix.length) : '';
      const body = this.tokens.get(token);
      if (body === undefined) {
        response.writeHead(404).end('not found');
        return;
      }
      response.writeHead(200, { 'Content-Type': 'text/plain' }).end(`${body}\n`);
    });
  }

  static async start(): Promise<Http01Responder> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new Http01Responder(server, (server.address() as AddressInfo).port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** A free TCP port on 127.0.0.1 (for tools that cannot be told to pick one). */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface HttpsReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  readonly json: Record<string, unknown> | undefined;
}

export function httpsRequest(
  url: string,
  ca: string,
  init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<HttpsReply> {
  return withDeadline(
    new Promise<HttpsReply>((resolve, reject) => {
      const request = https.request(url, {
        method: init.method ?? 'GET',
        ca,
        headers: init.headers ?? {},
        agent: false,
      });
      request.on('error', reject);
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> | undefined;
          try {
            json = text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
          } catch {
            json = undefined;
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
        });
      });
      request.end(init.body);
    }),
    15_000,
    `${init.method ?? 'GET'} ${url}`,
  );
}

export type Alg = 'ES256' | 'EdDSA' | 'RS256' | 'ES384';

export function generateAccountKey(alg: Alg): KeyObject {
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  if (alg === 'ES384') return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  if (alg === 'EdDSA') return generateKeyPairSync('ed25519').privateKey;
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

export function publicJwk(key: KeyObject): Record<string, string> {
  const jwk = key.export({ format: 'jwk' }) as Record<string, string>;
  if (jwk.kty === 'EC')
    return { kty: 'EC', crv: jwk.crv as string, x: jwk.x as string, y: jwk.y as string };
  if (jwk.kty === 'OKP') return { kty: 'OKP', crv: jwk.crv as string, x: jwk.x as string };
  return { kty: 'RSA', n: jwk.n as string, e: jwk.e as string };
}

const b64 = (value: string | Buffer): string => Buffer.from(value).toString('base64url');

export interface JwsParts {
  readonly protected: string;
  readonly payload: string;
  readonly signature: string;
}

/** A flattened JWS; `header` is used as given, so tests can put anything in it. */
export function signJws(
  key: KeyObject,
  alg: Alg,
  header: Record<string, unknown>,
  payload: unknown,
): JwsParts {
  const protectedText = b64(JSON.stringify({ alg, ...header }));
  const payloadText =
    payload === '' ? '' : Buffer.isBuffer(payload) ? b64(payload) : b64(JSON.stringify(payload));
  const input = Buffer.from(`${protectedText}.${payloadText}`);
  let signature: Buffer;
  if (alg === 'EdDSA') signature = sign(null, input, key);
  else if (alg === 'RS256') signature = sign('sha256', input, key);
  else
    signature = sign(alg === 'ES384' ? 'sha384' : 'sha256', input, {
      key,
      dsaEncoding: 'ieee-p1363',
    });
  return { protected: protectedText, payload: payloadText, signature: b64(signature) };
}

/**
 * A minimal ACME client over `httpsRequest`: enough to drive the protocol with any key and to
 * send requests that break one rule at a time.
 */
export class RawAcmeClient {
  kid: string | undefined;
  private nonce: string | undefined;
  directory: Record<string, string> = {};

  constructor(
    readonly directoryUrl: string,
    readonly ca: string,
    public key: KeyObject,
    public alg: Alg,
  ) {}

  async init(): Promise<void> {
    const reply = await httpsRequest(this.directoryUrl, this.ca);
    this.directory = reply.json as Record<string, string>;
  }

  async freshNonce(): Promise<string> {
    const reply = await httpsRequest(this.directory.newNonce as string, this.ca, {
      method: 'HEAD',
    });
    return reply.headers['replay-nonce'] as string;
  }

  private async takeNonce(): Promise<string> {
    const nonce = this.nonce ?? (await this.freshNonce());
    this.nonce = undefined;
    return nonce;
  }

  async postBody(
    url: string,
    body: string | Buffer,
    contentType = 'application/jose+json',
  ): Promise<HttpsReply> {
    const reply = await httpsRequest(url, this.ca, {
      method: 'POST',
      body,
      headers: { 'Content-Type': contentType },
    });
    const nonce = reply.headers['replay-nonce'];
    if (typeof nonce === 'string') this.nonce = nonce;
    return reply;
  }

  /** Signs `payload` for `url` (kid when known, else jwk); `override` replaces header fields. */
  async post(
    url: string,
    payload: unknown,
    override: Record<string, unknown> = {},
  ): Promise<HttpsReply> {
    const header: Record<string, unknown> = {
      nonce: await this.takeNonce(),
      url,
      ...(this.kid === undefined ? { jwk: publicJwk(this.key) } : { kid: this.kid }),
      ...override,
    };
    for (const [name, value] of Object.entries(header))
      if (value === undefined) delete header[name];
    return this.postBody(url, JSON.stringify(signJws(this.key, this.alg, header, payload)));
  }

  async newAccount(
    payload: Record<string, unknown> = { termsOfServiceAgreed: true },
  ): Promise<HttpsReply> {
    const reply = await this.post(this.directory.newAccount as string, payload, {
      kid: undefined,
      jwk: publicJwk(this.key),
    });
    if (reply.status === 201 || reply.status === 200) this.kid = reply.headers.location as string;
    return reply;
  }
}

export const PROBLEM = (type: string): string => `urn:ietf:params:acme:error:${type}`;

const opensslPresent = spawnSync('openssl', ['version']).status === 0;
if (!opensslPresent && process.env.CI === 'true') {
  throw new Error('openssl is required in CI (.ci/run installs it) but was not found on PATH');
}
export const SKIP_WITHOUT_OPENSSL = opensslPresent ? false : 'openssl is not installed';

/** `openssl verify` of the first certificate in `chainPem` against the PKI's root and chain. */
export function opensslVerify(
  pki: TestPki,
  chainPem: string,
): { status: number | null; output: string } {
  const leafFile = join(pki.dir, `leaf-${Date.now()}-${Math.random().toString(36).slice(2)}.pem`);
  const blocks =
    chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
  writeFileSync(leafFile, blocks[0] ?? '');
  const untrusted = join(pki.dir, `untrusted-${Date.now()}.pem`);
  writeFileSync(untrusted, blocks.slice(1).join(''));
  const result = spawnSync(
    'openssl',
    ['verify', '-CAfile', pki.rootFile, '-untrusted', untrusted, '-purpose', 'sslserver', leafFile],
    { encoding: 'utf8' },
  );
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

export function leafDerOf(chainPem: string): Uint8Array {
  const first = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/);
  return pemToDer(first?.[0] ?? '');
}
