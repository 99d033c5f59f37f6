import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import {
  certificateEd25519Key,
  certificateIdentity,
  pemToDerList,
  verifyChain,
  parseTrustRoots,
} from '../../src/crypto/x509.js';
import { bytesEqual, toHex } from '../../src/crypto/bytes.js';
import { CliError } from '../../src/node/cli-error.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { checkNodeMembership } from '../../src/node/node-membership.js';
import { loadValidatorPlot } from '../../src/node/stake-validator.js';
import { readWalletKey } from '../../src/node/wallet.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';

/**
 * `hypermesh cluster add-node` (src/node/cluster-add-node.ts) in one process: what it writes for
 * a node of a running cluster (a `node`-role certificate from the cluster CA, a plot for its key,
 * the cluster's zone key, every existing node as a peer), what it refuses without writing
 * anything, and how `node start` checks a node that is not in the genesis. With a TrustChain CA
 * the running cluster issues the certificate, so add-node fails, writing nothing, while no node
 * answers. The node joining a live cluster (its certificate issued through consensus) is
 * test/node/staking-cluster.test.ts.
 */
let root: string;
let clusterDir: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-add-node-'));
  clusterDir = path.join(root, 'cluster');
  const init = await runCli([
    ...clusterInitArgs(clusterDir, 2),
    '--no-ca',
    '--no-discovery',
    '--staking',
  ]);
  assert.equal(init.code, 0, init.err);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('hypermesh cluster add-node', () => {
  it('writes keys, a node-role certificate from the cluster CA, a plot, the zone key and peers', async () => {
    const result = await runCli([
      'cluster',
      'add-node',
      '--cluster',
      clusterDir,
      '--name',
      'node-3',
    ]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /created .*node-3/);
    assert.match(result.out, /stake create-validator --node-dir .*node-3/);
    const nodeDir = path.join(clusterDir, 'node-3');
    const config = await loadValidatorNodeConfig(path.join(nodeDir, 'config.json'), {});
    assert.equal(config.name, 'node-3');
    assert.deepEqual(
      config.peers.map((peer) => peer.name),
      ['node-1', 'node-2'],
    );
    const node1 = await loadValidatorNodeConfig(path.join(clusterDir, 'node-1', 'config.json'), {});
    assert.deepEqual(config.peers[0]?.address, { host: node1.stoq.host, port: node1.stoq.port });
    assert.ok(config.stoq.port > 0 && config.stoq.port !== node1.stoq.port);
    assert.ok(config.metrics !== null && config.metrics.port > 0);
    assert.equal(config.ca, null);
    assert.equal(config.genesisFile, path.join(clusterDir, 'genesis.json'));
    // DNS like the others, with the cluster's zone-signing key.
    assert.ok(config.dns !== null && config.dns.udp.length === 1 && config.dns.doq.length === 1);
    const [zoneKey] = config.dns.dnssecKeys;
    const [node1ZoneKey] = node1.dns?.dnssecKeys ?? [];
    assert.ok(zoneKey !== undefined && node1ZoneKey !== undefined);
    assert.deepEqual(await readFile(zoneKey.keyFile), await readFile(node1ZoneKey.keyFile));

    const key = await readWalletKey(config.identity.keyFile);
    const chain = pemToDerList(await readFile(config.identity.certificateFile, 'utf8'));
    const leaf = chain[0] as Uint8Array;
    assert.deepEqual(
      { ...certificateIdentity(leaf) },
      {
        cluster: 'hypermesh-dev',
        role: 'node',
        name: 'node-3',
        uri: 'spiffe://hypermesh-dev/node/node-3',
      },
    );
    assert.ok(bytesEqual(certificateEd25519Key(leaf), key.publicKey));
    const roots = parseTrustRoots(pemToDerList(await readFile(config.trust.rootsFile, 'utf8')));
    verifyChain({ chain, roots, now: new Date() });

    const genesis = await readGenesisFile(config.genesisFile);
    const plot = await loadValidatorPlot(config.storagePlotFile, genesis, key.publicKey);
    assert.match(result.out, new RegExp(`root ${toHex(plot.root)}`));
    const membership = await checkNodeMembership(config, genesis, {
      publicKey: key.publicKey,
      pqPublicKey: new Uint8Array(0),
    });
    assert.equal(membership.genesisEntry, null);
    assert.ok(bytesEqual(membership.plot.root, plot.root));
    assert.deepEqual(
      (await readdir(clusterDir)).filter((name) => name.includes('.tmp-')),
      [],
      'no staging directory is left',
    );
  });

  it('refuses a taken or bad name and conflicting flags, writing nothing', async () => {
    const before = (await readdir(clusterDir)).sort();
    const cases: [string[], RegExp][] = [
      [['--name', 'node-3'], /already has a node "node-3"/],
      [['--name', 'node-1'], /already has a node "node-1"/],
      [['--name', 'Node_4'], /--name "Node_4" must be a node name/],
      [['--name', 'node-4', '--no-dns', '--dns-port', '53'], /--no-dns cannot be combined/],
      [['--name', 'node-4', '--port', '70000'], /--port must be a port from 0 to 65535/],
      [
        ['--name', 'node-4', '--node', 'node-1'],
        /--node and --timeout-ms apply to a cluster with a TrustChain CA/,
      ],
      [[], /--name is required/],
    ];
    for (const [flags, pattern] of cases) {
      const result = await runCli(['cluster', 'add-node', '--cluster', clusterDir, ...flags]);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.out}${result.err}`);
      assert.match(result.err, pattern);
    }
    const missing = await runCli(['cluster', 'add-node', '--name', 'node-4']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--cluster is required/);
    assert.deepEqual((await readdir(clusterDir)).sort(), before);
  });

  it('with a TrustChain CA, needs the cluster running: no node answers, nothing is written', async () => {
    const caCluster = path.join(root, 'ca-cluster');
    const init = await runCli([
      ...clusterInitArgs(caCluster, 1),
      '--no-discovery',
      '--no-dns',
      '--staking',
    ]);
    assert.equal(init.code, 0, init.err);
    const before = (await readdir(caCluster)).sort();
    const tooLong = await runCli([
      'cluster',
      'add-node',
      '--cluster',
      caCluster,
      '--name',
      'node-2',
      '--validity-days',
      '31',
    ]);
    assert.equal(tooLong.code, 2, tooLong.out + tooLong.err);
    assert.match(
      tooLong.err,
      /--validity-days 31: a node certificate from the cluster's TrustChain CA lives 1 to 30 days \(the node profile's maximum, 2592000 seconds\)/,
    );
    const result = await runCli([
      'cluster',
      'add-node',
      '--cluster',
      caCluster,
      '--name',
      'node-2',
      '--timeout-ms',
      '500',
    ]);
    assert.equal(result.code, 1, result.out + result.err);
    assert.match(
      result.err,
      /no node of the cluster in .*ca-cluster answered within 500 ms \(node-1 at 127\.0\.0\.1:\d+: [^)]+\): with a TrustChain CA \(genesis app\.ca\) add-node has the running cluster issue the node's certificate through consensus, so the cluster must be running/,
    );
    assert.doesNotMatch(result.out, /requesting a node certificate/);
    assert.deepEqual((await readdir(caCluster)).sort(), before, 'nothing is written');
  });

  it('node start refuses a genesis validator’s key under another name, and a foreign plot', async () => {
    const nodeDir = path.join(clusterDir, 'node-3');
    const config = JSON.parse(await readFile(path.join(nodeDir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const genesis = await readGenesisFile(path.join(clusterDir, 'genesis.json'));
    const stolen = path.join(nodeDir, 'stolen.json');
    await writeFile(
      stolen,
      JSON.stringify({
        ...config,
        identity: { keyFile: '../node-1/node-1.key', certificateFile: '../node-1/node-1.pem' },
      }),
    );
    const stolenConfig = await loadValidatorNodeConfig(stolen, {});
    const node1Key = await readWalletKey(stolenConfig.identity.keyFile);
    await assert.rejects(
      checkNodeMembership(stolenConfig, genesis, {
        publicKey: node1Key.publicKey,
        pqPublicKey: new Uint8Array(0),
      }),
      (error: unknown) =>
        error instanceof CliError &&
        /holds the key of genesis validator "node-1", but the configuration names the node "node-3"/.test(
          error.message,
        ),
    );
    const foreignPlot = path.join(nodeDir, 'foreign-plot.json');
    await writeFile(
      foreignPlot,
      JSON.stringify({ ...config, storagePlotFile: '../node-1/storage.plot' }),
    );
    const foreignConfig = await loadValidatorNodeConfig(foreignPlot, {});
    const key = await readWalletKey(foreignConfig.identity.keyFile);
    await assert.rejects(
      checkNodeMembership(foreignConfig, genesis, {
        publicKey: key.publicKey,
        pqPublicKey: new Uint8Array(0),
      }),
      (error: unknown) =>
        error instanceof CliError &&
        error.exitCode === 2 &&
        /cannot load the storage plot: .*plotted for key/.test(error.message),
    );
  });
});
