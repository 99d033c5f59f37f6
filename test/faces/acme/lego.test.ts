import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCertificate } from '../../../src/crypto/x509.js';
import { withDeadline } from '../../helpers/wait.js';
import {
  SKIP_WITHOUT_OPENSSL,
  createTestPki,
  freePort,
  leafDerOf,
  opensslVerify,
  startTestAcme,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * Debian's `lego` (Go, go-acme/lego) against the server: account, http-01 served by lego itself
 * on loopback, finalize, download, then `lego revoke`. lego validates a DNS name, so the server
 * runs with the test-only `testOnlyConnectAddress` (every http-01 fetch goes to 127.0.0.1, with
 * the name in the Host header). In CI (.ci/run installs lego) a missing lego is a failure.
 */

const legoPresent = spawnSync('lego', ['--version']).status === 0;
const inCi = process.env.CI === 'true';
if (!legoPresent && inCi)
  throw new Error('lego is required in CI (.ci/run installs it) but is missing');
const SKIP = legoPresent ? SKIP_WITHOUT_OPENSSL : 'lego is not installed (Debian package lego)';

const NAME = 'lego.acme.test';

async function runLego(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const child = spawn('lego', args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    const [code] = (await withDeadline(once(child, 'exit'), 90_000, `lego ${args.at(-1)}`)) as [
      number | null,
    ];
    return { code, output };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

describe('ACME server with lego', { skip: SKIP }, () => {
  let pki: TestPki;
  let running: RunningAcme;
  let httpPort: number;
  let tlsPort: number;

  before(async () => {
    pki = await createTestPki();
    httpPort = await freePort();
    tlsPort = await freePort();
    running = await startTestAcme(pki, {
      http01Port: httpPort,
      tlsAlpn01Port: tlsPort,
      testOnlyConnectAddress: '127.0.0.1',
    });
  });

  after(async () => {
    await running?.close();
    pki?.cleanup();
  });

  it('obtains a certificate with http-01 and revokes it', async () => {
    const path = mkdtempSync(join(pki.dir, 'lego-'));
    const common = [
      '--server',
      running.server.directoryUrl,
      '--accept-tos',
      '--email',
      'a@example.test',
      '--domains',
      NAME,
      '--http',
      '--http.port',
      `127.0.0.1:${httpPort}`,
      '--path',
      path,
    ];
    const env = { LEGO_CA_CERTIFICATES: pki.rootFile };
    const obtained = await runLego([...common, 'run'], env);
    assert.equal(obtained.code, 0, obtained.output);
    const chain = readFileSync(join(path, 'certificates', `${NAME}.crt`), 'utf8');
    assert.deepEqual(parseCertificate(leafDerOf(chain)).dnsNames, [NAME]);
    const verified = opensslVerify(pki, chain);
    assert.equal(verified.status, 0, verified.output);

    const revoked = await runLego([...common, 'revoke'], env);
    assert.equal(revoked.code, 0, revoked.output);
    const serial = parseCertificate(leafDerOf(chain)).serialNumber;
    assert.ok(
      pki.ca.issuer.revocations().some((r) => r.serialHex === serial),
      'the CA saw the revocation',
    );
  });

  it('obtains a certificate with tls-alpn-01', async () => {
    const path = mkdtempSync(join(pki.dir, 'lego-tls-'));
    const name = 'tls.acme.test';
    const obtained = await runLego(
      [
        '--server',
        running.server.directoryUrl,
        '--accept-tos',
        '--email',
        'a@example.test',
        '--domains',
        name,
        '--tls',
        '--tls.port',
        `127.0.0.1:${tlsPort}`,
        '--path',
        path,
        'run',
      ],
      { LEGO_CA_CERTIFICATES: pki.rootFile },
    );
    assert.equal(obtained.code, 0, obtained.output);
    assert.match(obtained.output, /TLS-ALPN-01/i);
    const chain = readFileSync(join(path, 'certificates', `${name}.crt`), 'utf8');
    assert.deepEqual(parseCertificate(leafDerOf(chain)).dnsNames, [name]);
    const verified = opensslVerify(pki, chain);
    assert.equal(verified.status, 0, verified.output);
  });
});
