import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { QUICClient } from '@matrixai/quic';
import Logger, { LogLevel } from '@matrixai/logger';
import { parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { RENEWED_LOG_MESSAGE } from '../../src/node/cert-renewal.js';
import { SWITCHED_LOG_MESSAGE } from '../../src/node/identity-servers.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { startClusterNodes } from '../helpers/nodes.js';
import { httpsLeafSerial, renewingConfig, startWatchedNode } from '../helpers/renewal.js';
import { withDeadline } from '../helpers/wait.js';

/**
 * A node that renews its identity certificate (cert-renewal.ts) switches its DNS-over-QUIC
 * server and its ACME HTTPS face (serving `identity.certificateFile`) to the renewed chain
 * without a restart: fresh connections to both see the new leaf.
 */

describe('DoQ and ACME HTTPS follow an identity certificate renewal', () => {
  let root: string;
  let clusterDir: string;
  const running: ValidatorNode[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-identity-servers-'));
    clusterDir = path.join(root, 'cluster');
    const init = await runCli([...clusterInitArgs(clusterDir, 1), '--no-discovery', '--staking']);
    assert.equal(init.code, 0, init.err);
    await startClusterNodes(running, clusterDir, ['node-1']);
  });

  after(async () => {
    for (const node of running.reverse()) await node.stop();
    await rm(root, { recursive: true, force: true });
  });

  /** The serial of the leaf a fresh DoQ connection to `port` is served. */
  async function doqSerial(port: number): Promise<string> {
    const client = await withDeadline(
      QUICClient.createQUICClient({
        host: '127.0.0.1',
        port,
        crypto: {
          ops: {
            randomBytes: async (data: ArrayBuffer) => void randomFillSync(new Uint8Array(data)),
          },
        },
        config: { verifyPeer: false, applicationProtos: ['doq'] },
        logger: new Logger('identity-servers-test', LogLevel.SILENT),
      }),
      20_000,
      'a DoQ connection',
    );
    try {
      const [leaf] = client.connection.getRemoteCertsChain();
      assert.ok(leaf !== undefined, 'the DoQ server presented a certificate');
      return parseCertificate(leaf).serialNumber;
    } finally {
      await client.destroy({ force: true });
    }
  }

  it('a renewal switches both servers; new connections see the new leaf', async () => {
    const added = await runCli([
      'cluster',
      'add-node',
      '--cluster',
      clusterDir,
      '--name',
      'node-9',
    ]);
    assert.equal(added.code, 0, added.err);
    const validator = await loadValidatorNodeConfig(
      path.join(clusterDir, 'node-1', 'config.json'),
      {},
    );
    assert.ok(validator.acme !== null && validator.acme !== undefined, 'node-1 serves ACME');
    const renewing = await renewingConfig(clusterDir, 'node-9');
    assert.ok(renewing.dns !== null && renewing.dns.doq.length > 0, 'node-9 serves DoQ');
    const config = {
      ...renewing,
      // ACME with the node's identity certificate (no acme.certificateFile), under node-1's
      // ACME account: what decides its names does not matter here.
      acme: {
        https: { host: '127.0.0.1', port: 0 },
        accountKeyFile: validator.acme.accountKeyFile,
      },
    };
    const file = config.identity.certificateFile;
    const original = parseCertificate(pemToDerList(await readFile(file, 'utf8'))[0]!);

    const watched = await startWatchedNode(config, running);
    const node = watched.node;
    const doqPort = node.dns!.doq[0]!.port;
    assert.ok(node.acme !== null);
    const roots = await readFile(config.trust.rootsFile, 'utf8');

    const switchedOn = (server: string) =>
      watched.logged(SWITCHED_LOG_MESSAGE, (fields) => fields.server === server);
    const [renewed, doqSwitched, acmeSwitched] = await watched.within(
      Promise.all([watched.logged(RENEWED_LOG_MESSAGE), switchedOn('doq'), switchedOn('acme')]),
      30_000,
      'the node renews its certificate and switches DoQ and ACME to it',
    );
    const newSerial = String(renewed.newSerial);
    assert.notEqual(newSerial, original.serialNumber);
    assert.equal(doqSwitched.serial, newSerial);
    assert.equal(acmeSwitched.serial, newSerial);
    watched.assertNotLogged('"level":"error"');

    assert.equal(await doqSerial(doqPort), newSerial);
    // Node certificates name the node by URI, not by address: the chain is what is checked.
    assert.equal(await httpsLeafSerial(node.acme, roots, false), newSerial);
  });
});
