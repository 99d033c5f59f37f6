import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { derToPem, parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { RENEWED_LOG_MESSAGE } from '../../src/node/cert-renewal.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { lacksIssuanceExtensions } from '../../src/trustchain/ca-module/index.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import {
  assertRenewedChain,
  leafOf,
  renewingConfig,
  startWatchedNode,
  stoqLeafFingerprint,
} from '../helpers/renewal.js';

/**
 * A validator renews its genesis bootstrap certificate through consensus (cert-renewal.ts,
 * genesis-renewal.ts): the node `cluster init` certified starts with `identity.renewAt: 0`,
 * submits a `renew` carrying the request built from its certificate, and once the renewal is
 * published writes it to its certificate file and presents it on new STOQ handshakes.
 */

describe('genesis identity certificate renewal', () => {
  let root: string;
  let clusterDir: string;
  const running: ValidatorNode[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-genesis-renewal-'));
    clusterDir = path.join(root, 'cluster');
    const init = await runCli([...clusterInitArgs(clusterDir, 1), '--no-discovery', '--no-dns']);
    assert.equal(init.code, 0, init.err);
  });

  after(async () => {
    for (const node of running.reverse()) await node.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('a validator renews its genesis certificate and presents the issued one', async () => {
    const config = await renewingConfig(clusterDir, 'node-1');
    const file = config.identity.certificateFile;
    const original = await leafOf(file);
    assert.equal(lacksIssuanceExtensions(original.der), true, 'a genesis bootstrap certificate');
    const mode = (await stat(file)).mode & 0o777;

    const watched = await startWatchedNode(config, running);
    const fields = await watched.within(
      watched.logged(RENEWED_LOG_MESSAGE),
      30_000,
      'the node renews its certificate',
    );
    assert.equal(fields.oldSerial, original.serialNumber);
    watched.assertNotLogged('renewal failed');

    // The file: an issued leaf for the same key and names, and its intermediate; mode kept.
    const leaf = await assertRenewedChain(file, original, {
      newSerial: fields.newSerial,
      mode,
      clusterDir,
    });

    // `cert renew` renews a genesis certificate too, given its keys (the operator sends it).
    const originalPem = path.join(root, 'genesis-original.pem');
    await writeFile(originalPem, derToPem(original.der));
    const prefix = path.join(root, 'renewed-by-cli');
    const keyless = await runCli([
      'cert',
      'renew',
      originalPem,
      '--out',
      prefix,
      '--cluster',
      clusterDir,
    ]);
    assert.notEqual(keyless.code, 0);
    assert.match(keyless.err, /genesis bootstrap certificate.*--identity-key/);
    const byCli = await runCli([
      'cert',
      'renew',
      originalPem,
      '--out',
      prefix,
      '--identity-key',
      config.identity.keyFile,
      '--lifetime',
      String(7 * 86_400),
      '--cluster',
      clusterDir,
    ]);
    assert.equal(byCli.code, 0, byCli.out + byCli.err);
    const cliLeaf = parseCertificate(pemToDerList(await readFile(`${prefix}.pem`, 'utf8'))[0]!);
    assert.ok(cliLeaf.publicKey.equals(original.publicKey));
    assert.deepEqual(cliLeaf.uris, original.uris);
    assert.notEqual(cliLeaf.serialNumber, leaf.serialNumber);
    assert.equal(cliLeaf.notAfter.getTime() - cliLeaf.notBefore.getTime(), 7 * 86_400_000);
    const cliVerified = await runCli([
      'cert',
      'verify',
      `${prefix}.chain.pem`,
      '--cluster',
      clusterDir,
    ]);
    assert.equal(cliVerified.code, 0, cliVerified.out + cliVerified.err);

    // A fresh STOQ connection to the node sees the new leaf.
    assert.equal(await stoqLeafFingerprint(clusterDir, watched.node.stoq), leaf.fingerprint);
  });
});
