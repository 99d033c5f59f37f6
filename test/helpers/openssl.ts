import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CA_FILES } from '../../src/node/ca-genesis.js';

const run = promisify(execFile);

/** The first certificate of a PEM chain (the leaf), written to `file`. */
export async function writeLeafPem(chainPem: string, file: string): Promise<void> {
  const leaf = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/.exec(chainPem);
  assert.ok(leaf !== null, 'the chain holds no certificate');
  await writeFile(file, leaf[0]);
}

/**
 * `openssl verify` of the leaf in `leafFile` as a TLS server certificate against a `cluster init`
 * directory's TrustChain root, with its genesis intermediates as untrusted intermediates; with
 * `verifyIp`, the leaf must also name that IP address.
 */
export async function assertOpensslVerifies(
  clusterDir: string,
  leafFile: string,
  verifyIp?: string,
): Promise<void> {
  const caDir = path.join(clusterDir, CA_FILES.dir);
  const openssl = await run('openssl', [
    'verify',
    '-CAfile',
    path.join(caDir, CA_FILES.root),
    '-untrusted',
    path.join(caDir, CA_FILES.intermediates),
    '-purpose',
    'sslserver',
    ...(verifyIp === undefined ? [] : ['-verify_ip', verifyIp]),
    leafFile,
  ]);
  assert.match(openssl.stdout, /: OK/, openssl.stderr);
}
