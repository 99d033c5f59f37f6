import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RENEWED_LOG_MESSAGE } from '../../src/node/cert-renewal.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { lacksIssuanceExtensions } from '../../src/trustchain/ca-module/index.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { startClusterNodes } from '../helpers/nodes.js';
import {
  assertRenewedChain,
  leafOf,
  renewingConfig,
  startWatchedNode,
  stoqLeafFingerprint,
} from '../helpers/renewal.js';

/**
 * A node renews its own consensus-issued STOQ certificate (src/node/cert-renewal.ts): a node
 * `cluster add-node` had the running cluster certify starts with `identity.renewAt: 0`, renews
 * through consensus with its own key, writes the new chain to its certificate file and presents
 * it on new STOQ handshakes.
 */

describe('identity certificate renewal', () => {
  let root: string;
  let clusterDir: string;
  const running: ValidatorNode[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-cert-renewal-'));
    clusterDir = path.join(root, 'cluster');
    const init = await runCli([
      ...clusterInitArgs(clusterDir, 1),
      '--no-discovery',
      '--no-dns',
      '--staking',
    ]);
    assert.equal(init.code, 0, init.err);
    await startClusterNodes(running, clusterDir, ['node-1']);
  });

  after(async () => {
    for (const node of running.reverse()) await node.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('an added node renews its certificate through consensus and presents the new one', async () => {
    const added = await runCli([
      'cluster',
      'add-node',
      '--cluster',
      clusterDir,
      '--name',
      'node-9',
    ]);
    assert.equal(added.code, 0, added.err);
    const config = await renewingConfig(clusterDir, 'node-9');
    const file = config.identity.certificateFile;
    const original = await leafOf(file);
    assert.equal(lacksIssuanceExtensions(original.der), false, 'issued through consensus');
    const mode = (await stat(file)).mode & 0o777;

    const watched = await startWatchedNode(config, running);
    const fields = await watched.within(
      watched.logged(RENEWED_LOG_MESSAGE),
      20_000,
      'the node renews its certificate',
    );
    assert.equal(fields.oldSerial, original.serialNumber);
    watched.assertNotLogged('renewal failed');

    // The file: the new leaf (same key and identity) and its intermediate, mode kept.
    const leaf = await assertRenewedChain(file, original, {
      newSerial: fields.newSerial,
      mode,
      clusterDir,
    });
    assert.equal(leaf.notAfter.toISOString(), fields.notAfter);

    // A fresh STOQ connection to the node sees the new leaf.
    assert.equal(await stoqLeafFingerprint(clusterDir, watched.node.stoq), leaf.fingerprint);
  });
});
