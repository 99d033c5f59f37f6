import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ed25519Address, formatAddress } from '../../src/caesar/index.js';
import { decodeQuorumCertificate } from '../../src/consensus/wire.js';
import { validatorAddress } from '../../src/consensus/validator-set.js';
import { ADDED_NODES_FILE } from '../../src/node/cluster-added-nodes.js';
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
import { spawnValidator, type ValidatorProcess } from '../../src/node/node-process.js';
import {
  loadClusterTarget,
  openOperatorSession,
  type OperatorSession,
} from '../../src/node/operator.js';
import { loadValidatorPlot } from '../../src/node/stake-validator.js';
import { readWalletKey } from '../../src/node/wallet.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { killValidators } from '../helpers/nodes.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * `hypermesh cluster add-node` (src/node/cluster-add-node.ts) in one process: what it writes for
 * a node of a running cluster (a `node`-role certificate from the cluster CA, a plot for its key,
 * the cluster's zone key, every existing node as a peer), what it refuses without writing
 * anything, and how `node start` checks a node that is not in the genesis. With a TrustChain CA
 * the running cluster issues the certificate, so add-node fails, writing nothing, while no node
 * answers. The node joining a live cluster (its certificate issued through consensus) is
 * test/node/staking-cluster.test.ts.
 *
 * The last part runs a staking cluster of its own (multi-process: needs `npm run build`; a
 * staking chain has the TrustChain CA, `cluster init` refuses `--staking` with `--no-ca`):
 * node-3, added to the running cluster, its configuration cut down to list node-1 only, gets its
 * intermediate through the governed procedure (`ca intermediate issue`, both holders'
 * approvals) and becomes a validator, and node-2 — which lists
 * neither it nor is listed by it — dials it, having found it in the service catalog
 * (src/node/discovered-validators.ts): with three validators of power 10, every commit needs
 * node-3's and node-2's votes.
 */
let root: string;
let clusterDir: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-add-node-'));
  clusterDir = path.join(root, 'cluster');
  const init = await runCli([...clusterInitArgs(clusterDir, 2), '--no-ca']);
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
    assert.deepEqual(config.peers[0]?.address, {
      host: node1.stoq.host,
      port: node1.stoq.port,
    });
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

  it('with a TrustChain CA, a held manifest lock refuses before the cluster is asked for anything', async () => {
    const caCluster = path.join(root, 'ca-cluster-locked');
    const init = await runCli([
      ...clusterInitArgs(caCluster, 1),
      '--no-discovery',
      '--no-dns',
      '--no-caesar',
    ]);
    assert.equal(init.code, 0, init.err);
    const node1 = await loadValidatorNodeConfig(path.join(caCluster, 'node-1', 'config.json'), {});
    // Stands in for node-1 (STOQ over QUIC, UDP): whatever add-node sends the cluster lands here.
    const socket = createSocket(node1.stoq.host.includes(':') ? 'udp6' : 'udp4');
    const received: Buffer[] = [];
    const sentinel = Buffer.from('sentinel');
    const sentinelArrived = new Promise<void>((resolve) => {
      socket.on('message', (message) => {
        if (message.equals(sentinel)) resolve();
        else received.push(message);
      });
    });
    await new Promise<void>((resolve) => socket.bind(node1.stoq.port, node1.stoq.host, resolve));
    const lock = path.join(caCluster, `${ADDED_NODES_FILE}.lock`);
    await writeFile(lock, '');
    try {
      const before = (await readdir(caCluster)).sort();
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
      assert.equal(result.code, 2, result.out + result.err);
      assert.match(result.err, /added-nodes\.json\.lock exists: another "cluster add-node"/);
      assert.doesNotMatch(result.out, /requesting a node certificate/);
      assert.deepEqual((await readdir(caCluster)).sort(), before, 'nothing is written');
      // Datagrams on loopback arrive in order: once ours is in, any add-node sent would be too.
      const sender = createSocket(node1.stoq.host.includes(':') ? 'udp6' : 'udp4');
      sender.send(sentinel, node1.stoq.port, node1.stoq.host, () => sender.close());
      await sentinelArrived;
      assert.equal(received.length, 0, 'add-node sent nothing to the cluster');
    } finally {
      socket.close();
      await rm(lock);
    }
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
        identity: {
          keyFile: '../node-1/node-1.key',
          certificateFile: '../node-1/node-1.pem',
        },
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

/** Every log line of every node announces itself here; waits re-check on it. */
const activity = new EventEmitter();
activity.setMaxListeners(0);
const nodes = new Map<string, ValidatorProcess>();
const logs = new Map<string, Record<string, unknown>[]>();
const STEP_MS = 60_000;

function until(check: () => boolean | Promise<boolean>, what: () => string, ms = STEP_MS) {
  return waitForCondition(activity, 'line', check, what, ms);
}

function logged(name: string, message: string): Record<string, unknown>[] {
  return (logs.get(name) ?? []).filter((entry) => entry.msg === message);
}

function height(name: string): number {
  return nodes.get(name)?.committedHeight() ?? 0;
}

describe('a joined validator that lists one node (issue 3)', { timeout: 150_000 }, () => {
  let session: OperatorSession | undefined;

  after(async () => {
    await session?.close().catch(() => undefined);
    await killValidators(nodes.values());
  });

  it('is dialled by the validators it does not list, and commits with them', async () => {
    // A staking chain has the TrustChain CA (cluster init refuses --staking with --no-ca): its
    // own two-validator cluster, running, then node-3 added through the governed procedure.
    const clusterDir = path.join(root, 'staking-ca');
    const init = await runCli([
      ...clusterInitArgs(clusterDir, 2),
      '--staking',
      '--staking-param',
      'epochBlocks=2',
      '--staking-param',
      'blockReward=0',
    ]);
    assert.equal(init.code, 0, init.err);
    const fastBlocks = async (name: string, onlyPeer?: string): Promise<void> => {
      const file = path.join(clusterDir, name, 'config.json');
      const config = JSON.parse(await readFile(file, 'utf8')) as {
        consensus: { idleBlockIntervalMs: number };
        peers: { name: string }[];
      };
      config.consensus.idleBlockIntervalMs = 200;
      if (onlyPeer !== undefined)
        config.peers = config.peers.filter((peer) => peer.name === onlyPeer);
      await writeFile(file, `${JSON.stringify(config, null, 2)}\n`);
    };
    const start = (name: string): ValidatorProcess => {
      const node = spawnValidator(name, path.join(clusterDir, name, 'config.json'), {
        logFile: path.join(root, `${name}.log`),
      });
      const lines: Record<string, unknown>[] = [];
      logs.set(name, lines);
      node.onLog((entry) => {
        lines.push(entry);
        activity.emit('line');
      });
      void node.exited.then(() => activity.emit('line'));
      nodes.set(name, node);
      return node;
    };
    for (const name of ['node-1', 'node-2']) await fastBlocks(name);
    await Promise.all(['node-1', 'node-2'].map((name) => start(name).ready));
    await until(
      () => ['node-1', 'node-2'].every((name) => height(name) >= 2),
      () =>
        `the genesis validators to commit height 2 (node-1@${height('node-1')} node-2@${height('node-2')})`,
    );
    // node-3: its certificate issued by the running cluster; it lists node-1 only.
    const added = await runCli([
      'cluster',
      'add-node',
      '--cluster',
      clusterDir,
      '--name',
      'node-3',
    ]);
    assert.equal(added.code, 0, added.err + added.out);
    await fastBlocks('node-3', 'node-1');
    await start('node-3').ready;
    await until(
      () => height('node-3') >= 2,
      () => `node-3 to follow the chain (at ${height('node-3')})`,
    );
    session = await openOperatorSession(await loadClusterTarget(clusterDir));
    const nodeDir = path.join(clusterDir, 'node-3');
    const key = await readWalletKey(path.join(nodeDir, 'node-3.key'));
    const funded = await runCli([
      'wallet',
      'send',
      '--to',
      formatAddress(ed25519Address(key.publicKey)),
      '--amount',
      '20',
      '--key',
      path.join(clusterDir, 'operator', 'treasury.key'),
      '--cluster',
      clusterDir,
      '--wait',
    ]);
    assert.equal(funded.code, 0, funded.err);
    /** Runs `args` again after the next commit while a node's own transaction holds the sequence. */
    const retried = async (args: string[]): ReturnType<typeof runCli> => {
      let result = await runCli(args);
      for (
        let attempt = 1;
        attempt < 10 &&
        /MEMPOOL_SEQUENCE_TAKEN|TX_SEQUENCE_USED/.test(result.err) &&
        result.code !== 0;
        attempt++
      ) {
        const next = height('node-1') + 1;
        await until(
          () => height('node-1') >= next,
          () => `node-1 to commit ${next}`,
        );
        result = await runCli(args);
      }
      return result;
    };
    // Its intermediate through the governed procedure: issued, then approved by both holders.
    const issued = await runCli([
      'ca',
      'intermediate',
      'issue',
      '--cluster',
      clusterDir,
      '--node',
      'node-3',
      '--json',
    ]);
    assert.equal(issued.code, 0, issued.err + issued.out);
    const { hash } = JSON.parse(issued.out) as { hash: string };
    for (const [holder, active] of [
      ['node-1', null],
      ['node-2', 'node-3'],
    ] as const) {
      const approved = await retried([
        'ca',
        'intermediate',
        'approve',
        '--cluster',
        clusterDir,
        '--node',
        holder,
        '--hash',
        hash,
        '--json',
      ]);
      assert.equal(approved.code, 0, approved.err + approved.out);
      assert.equal((JSON.parse(approved.out) as { active: string | null }).active, active);
    }
    // node-3 signs its own catalog registrations with the same key: a transaction of its may
    // hold the sequence the CLI read, and then it tries again after the next commit.
    const created = await retried([
      'stake',
      'create-validator',
      '--node-dir',
      nodeDir,
      '--self-bond',
      '10',
      '--commission',
      '0',
      '--cluster',
      clusterDir,
      '--wait',
    ]);
    assert.equal(created.code, 0, created.out + created.err);
    await until(
      () => logged('node-3', 'this node is in the validator set').length > 0,
      () => `node-3 to join the validator set (at ${height('node-3')})`,
    );
    const joinsAt = height('node-3');
    // node-2 found it in the catalog once its key was a validator's, and dialled it.
    await until(
      () =>
        logged('node-2', 'dialling a validator found in the catalog').some(
          (line) => line.peer === 'node-3',
        ),
      () => `node-2 to dial node-3 (node-2 at ${height('node-2')})`,
    );
    const client = (session as OperatorSession).client.bind(session);
    await until(
      async () => {
        const [two, three] = await Promise.all([
          client('node-2').status(),
          client('node-3').status(),
        ]);
        return (
          (two.peersConnected as string[]).includes('node-3') &&
          [...(three.peersConnected as string[])].sort().join() === 'node-1,node-2'
        );
      },
      () => `node-2 and node-3 to be connected (node-3 at ${height('node-3')})`,
    );
    // From the first commit node-3 signed on, every commit needs its and node-2's precommits
    // (30 of 30 power): three in a row.
    const node3 = validatorAddress(key.publicKey);
    const node2 = validatorAddress(
      (await readWalletKey(path.join(clusterDir, 'node-2', 'node-2.key'))).publicKey,
    );
    const signers = async (h: number): Promise<string[]> => {
      const block = await client('node-2').getBlock(h);
      return decodeQuorumCertificate(block.commit).precommits.map((vote) => vote.validator);
    };
    let first = joinsAt;
    await until(
      async () => {
        for (; first <= height('node-2'); first++) {
          if ((await signers(first)).includes(node3)) return true;
        }
        return false;
      },
      () => `a commit with node-3's precommit from ${joinsAt} (node-2 at ${height('node-2')})`,
    );
    await until(
      () => height('node-3') >= first + 3 && height('node-2') >= first + 3,
      () => `node-3 to commit after ${first} (at ${height('node-3')})`,
    );
    for (let h = first + 1; h <= first + 3; h++) {
      const signed = await signers(h);
      assert.ok(signed.includes(node3) && signed.includes(node2), `height ${h}: ${signed.join()}`);
    }
  });
});
