import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  createAuthenticator,
  localCredentials,
  type AuthenticatorOptions,
} from '../../src/stoq/auth/authenticator.js';
import { CertificateCache } from '../../src/stoq/auth/certificate-cache.js';
import type { AuthMode } from '../../src/stoq/auth/messages.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
let node: TestIdentity;
let other: TestIdentity;

before(async () => {
  pki = await createTestPki({ cluster: 'config-test' });
  node = await pki.issue({ name: 'n1' });
  other = await pki.issue({ name: 'n2' });
});

function options(overrides: Partial<AuthenticatorOptions> = {}): AuthenticatorOptions {
  return {
    local: { chain: node.chain, falcon: node.falcon, falconBackend: pki.falconBackend },
    trust: { roots: pki.roots, revocation: pki.revocation },
    mode: 'strict',
    ...overrides,
  };
}

const invalidArgument = (error: unknown): boolean =>
  error instanceof StoqError && error.code === StoqErrorCode.INVALID_ARGUMENT;

describe('authenticator configuration', () => {
  it('derives the local credentials from the certificate', () => {
    const local = localCredentials({
      chain: node.chain,
      falcon: node.falcon,
      falconBackend: pki.falconBackend,
    });
    assert.equal(local.uri, 'spiffe://config-test/node/n1');
    assert.deepEqual(local.transportKey, node.transportKey.publicKey);
    assert.equal(local.leaf.fingerprint, node.fingerprint);
    createAuthenticator(options());
    createAuthenticator(options({ mode: 'delegated' }));
  });

  it('refuses a configuration that could never authenticate', () => {
    const bad: Partial<AuthenticatorOptions>[] = [
      { local: { chain: [], falcon: node.falcon, falconBackend: pki.falconBackend } },
      // The certificate certifies another FALCON key than the one configured.
      { local: { chain: node.chain, falcon: other.falcon, falconBackend: pki.falconBackend } },
      // A CA certificate has no identity to present.
      {
        local: {
          chain: [pki.intermediate.certificate],
          falcon: node.falcon,
          falconBackend: pki.falconBackend,
        },
      },
      { trust: { roots: [], revocation: pki.revocation } },
      { trust: { roots: [node.certificate], revocation: pki.revocation } },
      { trust: { roots: [new Uint8Array(10)], revocation: pki.revocation } },
      { mode: 'lenient' as AuthMode },
      { timeoutMs: 0 },
      { maxMessageBytes: -1 },
      { lingerMs: 1.5 },
    ];
    for (const overrides of bad) {
      assert.throws(() => createAuthenticator(options(overrides)), invalidArgument);
    }
  });
});

describe('certificate cache', () => {
  it('returns the same parse for the same bytes and evicts the least recently used', () => {
    const cache = new CertificateCache(2);
    const a = cache.parse(node.certificate);
    assert.equal(cache.parse(node.certificate), a);
    const b = cache.parse(other.certificate);
    cache.parse(node.certificate); // node is now the most recent
    cache.parse(pki.intermediate.certificate); // evicts other
    assert.equal(cache.size, 2);
    assert.equal(cache.parse(node.certificate), a);
    assert.notEqual(cache.parse(other.certificate), b, 'other was evicted and parsed again');
  });

  it('is bounded in bytes as well as entries', () => {
    const budget = node.certificate.length + other.certificate.length - 1;
    const cache = new CertificateCache(100, budget);
    cache.parse(node.certificate);
    cache.parse(other.certificate);
    assert.equal(cache.size, 1);
    assert.ok(cache.sizeBytes <= budget);
    const tiny = new CertificateCache(100, 10);
    tiny.parse(node.certificate);
    assert.equal(tiny.size, 0, 'a certificate larger than the budget is parsed but not kept');
  });

  it('with capacity 0 parses every time', () => {
    const cache = new CertificateCache(0);
    assert.notEqual(cache.parse(node.certificate), cache.parse(node.certificate));
    assert.equal(cache.size, 0);
  });
});
