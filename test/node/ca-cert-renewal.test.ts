import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { RENEWED_LOG_MESSAGE } from '../../src/node/cert-renewal.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { loadClusterTarget, openOperatorParts } from '../../src/node/operator.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { lacksIssuanceExtensions } from '../../src/trustchain/ca-module/index.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { withDeadline } from '../helpers/wait.js';
import { startClusterNodes } from '../helpers/nodes.js';

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
    const loaded = await loadValidatorNodeConfig(
      path.join(clusterDir, 'node-9', 'config.json'),
      {},
    );
    const config = { ...loaded, identity: { ...loaded.identity, renewAt: 0 } };
    const file = config.identity.certificateFile;
    const [originalDer] = pemToDerList(await readFile(file, 'utf8'));
    const original = parseCertificate(originalDer!);
    assert.equal(lacksIssuanceExtensions(original.der), false, 'issued through consensus');
    const mode = (await stat(file)).mode & 0o777;

    let renewedLine: (fields: Record<string, unknown>) => void = () => undefined;
    const renewed = new Promise<Record<string, unknown>>((resolve) => {
      renewedLine = resolve;
    });
    const lines: string[] = [];
    const logger = createLogger(
      { node: config.name },
      (line) => {
        lines.push(line);
        const fields = JSON.parse(line) as Record<string, unknown>;
        if (fields.msg === RENEWED_LOG_MESSAGE) renewedLine(fields);
      },
      'info',
    );
    const node = await startValidatorNode(config, logger);
    running.push(node);
    const fields = await withDeadline(renewed, 20_000, 'the node renews its certificate').catch(
      (error: unknown) => {
        throw new Error(`${(error as Error).message}\n${lines.join('')}`);
      },
    );
    assert.equal(fields.oldSerial, original.serialNumber);
    assert.notEqual(fields.newSerial, original.serialNumber);
    assert.ok(!lines.some((line) => line.includes('renewal failed')), lines.join(''));

    // The file: the new leaf (same key and identity) and its intermediate, mode kept.
    const chain = pemToDerList(await readFile(file, 'utf8'));
    assert.equal(chain.length, 2);
    const leaf = parseCertificate(chain[0]!);
    assert.equal(leaf.serialNumber, fields.newSerial);
    assert.equal(leaf.notAfter.toISOString(), fields.notAfter);
    assert.ok(leaf.publicKey.equals(original.publicKey));
    assert.deepEqual(leaf.uris, original.uris);
    assert.equal((await stat(file)).mode & 0o777, mode);
    const verified = await runCli(['cert', 'verify', file, '--cluster', clusterDir]);
    assert.equal(verified.code, 0, verified.out + verified.err);

    // A fresh STOQ connection to the node sees the new leaf.
    const operator = await openOperatorParts(await loadClusterTarget(clusterDir));
    try {
      const session = await operator.parts.endpoint.connect(node.stoq);
      assert.equal(session.peer.certificateFingerprint, leaf.fingerprint);
      session.connection.close('done');
    } finally {
      await operator.close();
    }
  });
});
