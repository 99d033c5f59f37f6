import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, readFile, readdir, rm, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import { validatorAddress } from '../../src/consensus/validator-set.js';
import { encodeValidatorUpdates } from '../../src/consensus/validator-updates.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../../src/crypto/falcon.js';
import { CliError } from '../../src/node/cli-error.js';
import { ADDED_NODES_FILE, readAddedNodes } from '../../src/node/cluster-added-nodes.js';
import { readClusterLayout, readGenesisFile } from '../../src/node/cluster-layout.js';
import {
  formatClusterStatus,
  validatorSetAfter,
  type ClusterStatus,
} from '../../src/node/cluster-status.js';
import { loadClusterTarget } from '../../src/node/operator.js';
import { readWalletKey } from '../../src/node/wallet.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';

/**
 * How the operator tools read a cluster directory (src/node/cluster-layout.ts): the genesis
 * validators, and the nodes `cluster add-node` recorded in `added-nodes.json`
 * (src/node/cluster-added-nodes.ts) — none when the file is absent, a precise error when it is
 * corrupt. Also the validator set `hypermesh status` derives from the chain's updates.
 */
let root: string;
let clusterDir: string;
let manifestFile: string;
let genesis: GenesisDocument;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-cluster-layout-'));
  clusterDir = path.join(root, 'cluster');
  manifestFile = path.join(clusterDir, ADDED_NODES_FILE);
  const init = await runCli([...clusterInitArgs(clusterDir, 2), '--no-ca', '--no-discovery']);
  assert.equal(init.code, 0, init.err);
  genesis = await readGenesisFile(path.join(clusterDir, 'genesis.json'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Rejects with a CliError whose message matches `pattern`. */
async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof CliError, String(error));
    assert.match(error.message, pattern);
    return true;
  });
}

describe('cluster directory layout', () => {
  it('without added-nodes.json: the genesis validators only', async () => {
    await assert.rejects(access(manifestFile), { code: 'ENOENT' });
    assert.deepEqual(await readAddedNodes(clusterDir), []);
    const layout = await readClusterLayout(clusterDir);
    assert.deepEqual(
      layout.nodes.map((node) => node.name),
      ['node-1', 'node-2'],
    );
    assert.deepEqual(layout.addedNodes, []);
    const target = await loadClusterTarget(clusterDir);
    assert.deepEqual(
      target.nodes.map((node) => node.name),
      ['node-1', 'node-2'],
    );
  });

  it('lists a node added with cluster add-node after the genesis validators', async () => {
    const added = await runCli([
      'cluster',
      'add-node',
      '--cluster',
      clusterDir,
      '--name',
      'node-3',
      '--no-metrics',
    ]);
    assert.equal(added.code, 0, added.err);
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as {
      version: number;
      nodes: { name: string; publicKey: string; addedAt: string }[];
    };
    const key = await readWalletKey(path.join(clusterDir, 'node-3', 'node-3.key'));
    const publicKey = Buffer.from(key.publicKey).toString('hex');
    assert.equal(manifest.version, 1);
    assert.deepEqual(
      manifest.nodes.map(({ name, publicKey: hex }) => ({ name, publicKey: hex })),
      [{ name: 'node-3', publicKey }],
    );
    assert.ok(!Number.isNaN(Date.parse(manifest.nodes[0]?.addedAt ?? '')));
    assert.deepEqual(
      (await readdir(clusterDir)).filter(
        (name) => name.includes('.tmp-') || name.endsWith('.lock'),
      ),
      [],
      'no temporary or lock file is left',
    );

    const layout = await readClusterLayout(clusterDir);
    assert.deepEqual(
      layout.nodes.map((node) => node.name),
      ['node-1', 'node-2'],
      'nodes stays the genesis validators',
    );
    assert.equal(layout.addedNodes.length, 1);
    const [node3] = layout.addedNodes;
    assert.equal(node3?.name, 'node-3');
    assert.equal(node3?.id, validatorAddress(key.publicKey));
    assert.equal(node3?.publicKey, publicKey);
    assert.equal(node3?.metrics, null);
    assert.equal(node3?.configFile, path.join(clusterDir, 'node-3', 'config.json'));
    assert.ok((node3?.stoq.port ?? 0) > 0);

    const target = await loadClusterTarget(clusterDir);
    assert.deepEqual(
      target.nodes.map((node) => [node.name, node.metrics === null]),
      [
        ['node-1', false],
        ['node-2', false],
        ['node-3', true],
      ],
    );
  });

  it('refuses a corrupt manifest with an error naming the file and the problem', async () => {
    const good = await readFile(manifestFile, 'utf8');
    const entry = (JSON.parse(good) as { nodes: Record<string, unknown>[] }).nodes[0] as Record<
      string,
      unknown
    >;
    const file = manifestFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const cases: [string, RegExp][] = [
      ['{"version": 1, "nodes": [', new RegExp(`${file} is not valid JSON`)],
      [
        JSON.stringify({ version: 2, nodes: [] }),
        new RegExp(`invalid added-nodes manifest ${file}:\\n {2}version:`),
      ],
      [
        JSON.stringify({ version: 1, nodes: [{ ...entry, publicKey: 'zz' }] }),
        /nodes\.0\.publicKey: 64 lowercase hex digits/,
      ],
      [
        JSON.stringify({ version: 1, nodes: [{ ...entry, name: '../etc' }] }),
        /nodes\.0\.name: a node name/,
      ],
      [JSON.stringify({ version: 1, nodes: [entry, entry] }), /node "node-3" is listed twice/],
      [
        JSON.stringify({ version: 1, nodes: [{ ...entry, name: 'node-1' }] }),
        /lists "node-1", a genesis validator/,
      ],
      [
        JSON.stringify({ version: 1, nodes: [{ ...entry, name: 'node-9' }] }),
        /node-9[/\\]config\.json/,
      ],
    ];
    try {
      for (const [text, pattern] of cases) {
        await writeFile(manifestFile, text);
        await rejectsWith(readClusterLayout(clusterDir), pattern);
        await rejectsWith(loadClusterTarget(clusterDir), pattern);
        const status = await runCli(['status', '--cluster', clusterDir]);
        assert.equal(status.code, 2, `${text}: ${status.out}`);
        assert.match(status.err, pattern);
      }
    } finally {
      await writeFile(manifestFile, good);
    }
    assert.equal((await readClusterLayout(clusterDir)).addedNodes.length, 1);
  });

  it('add-node refuses while another holds the manifest lock, leaving nothing behind', async () => {
    const lock = `${manifestFile}.lock`;
    const before = (await readdir(clusterDir)).sort();
    await writeFile(lock, '');
    try {
      const result = await runCli([
        'cluster',
        'add-node',
        '--cluster',
        clusterDir,
        '--name',
        'node-4',
      ]);
      assert.equal(result.code, 2, result.out);
      assert.match(result.err, /added-nodes\.json\.lock exists: another "cluster add-node"/);
      assert.deepEqual(
        (await readdir(clusterDir)).sort(),
        [...before, ADDED_NODES_FILE + '.lock'].sort(),
      );
    } finally {
      await rm(lock);
    }
    assert.equal((await readClusterLayout(clusterDir)).addedNodes.length, 1);
  });
});

describe('the validator set status shows', () => {
  const joining = {
    publicKey: new Uint8Array(randomBytes(32)),
    pqPublicKey: new Uint8Array(randomBytes(FALCON1024_PUBLIC_KEY_BYTES)),
    storageRoot: new Uint8Array(randomBytes(32)),
  };
  const stored = [
    { height: 7, bytes: encodeValidatorUpdates([{ publicKey: joining.publicKey, power: 0 }]) },
    { height: 3, bytes: encodeValidatorUpdates([{ ...joining, power: 5 }]) },
  ];
  const address = validatorAddress(joining.publicKey);

  it('applies block u’s updates from height u + 2', () => {
    const genesisTotal = genesis.validators.reduce((sum, validator) => sum + validator.power, 0);
    const at = (committed: number) => validatorSetAfter(genesis, stored, committed);
    assert.equal(at(3).indexOf.has(address), false, 'set of height 4 is the genesis set');
    assert.equal(at(4).indexOf.has(address), true, 'set of height 5 has the new validator');
    assert.equal(at(4).totalPower, genesisTotal + 5);
    assert.equal(at(7).indexOf.has(address), true);
    assert.equal(at(8).indexOf.has(address), false, 'removed from height 9');
    assert.equal(at(8).totalPower, genesisTotal);
  });

  it('refuses updates that do not apply (removing an unknown validator)', () => {
    assert.throws(
      () => validatorSetAfter(genesis, [stored[0] as (typeof stored)[number]], 9),
      /removes-unknown-validator|not a validator/,
    );
  });

  it('marks validators and followers in the report', () => {
    const status: ClusterStatus = {
      chainId: 'c',
      validatorSet: { from: 'chain', node: 'node-1', height: 12 },
      validators: [{ name: 'node-1', id: 'a'.repeat(40), power: 10 }],
      height: 11,
      lastCommitTime: null,
      validatorsOnline: ['node-1'],
      onlinePower: 10,
      totalPower: 10,
      reachable: 0,
      nodes: [
        {
          name: 'node-1',
          id: 'a'.repeat(40),
          stoq: '127.0.0.1:1',
          role: 'validator',
          power: 10,
          reachable: false,
          error: 'UNAVAILABLE: down',
          rttMs: null,
          status: null,
        },
        {
          name: 'node-3',
          id: 'b'.repeat(40),
          stoq: '127.0.0.1:2',
          role: 'follower',
          power: 0,
          reachable: false,
          error: 'UNAVAILABLE: down',
          rttMs: null,
          status: null,
        },
      ],
    };
    const text = formatClusterStatus(status, 0).join('\n');
    assert.match(text, /validators online: 1\/1 \(voting power 10\/10\)/);
    assert.match(text, /validator set: of height 12, from node-1's validator updates/);
    assert.match(text, /node-1 +validator \(10\) +127\.0\.0\.1:1/);
    assert.match(text, /node-3 +follower +127\.0\.0\.1:2/);
  });
});
