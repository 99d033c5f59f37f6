import { fromHex } from '../../src/crypto/bytes.js';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SEQUENCE_QUERY,
  TransactionErrorCode,
  buildTransaction,
  decodeSequence,
} from '../../src/consensus/application/index.js';
import type { CommitInfo } from '../../src/consensus/driver/index.js';
import { parseGenesisJson } from '../../src/consensus/genesis.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import { decodeBlock, encodeBlock } from '../../src/consensus/wire.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { KV_MODULE_NAME, kvSet } from '../../src/kv/index.js';
import { verifyBlockFromNode, formatBlockVerify } from '../../src/node/block-verify.js';
import {
  decodeStateWitness,
  encodeStateWitness,
  type StateWitness,
} from '../../src/storage/index.js';
import { main } from '../../src/node/cli.js';
import { initCluster, type ClusterLayout } from '../../src/node/cluster-init.js';
import { collectClusterStatus, formatClusterStatus } from '../../src/node/cluster-status.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { loadClusterTarget, openOperatorSession } from '../../src/node/operator.js';
import { readKv, operatorKey, submitKvSet } from '../../src/node/kv-tools.js';
import {
  STORE_FILE,
  genesisApplication,
  startValidatorNode,
  type ValidatorNode,
} from '../../src/node/validator-node.js';
import {
  BlockWitnessErrorCode,
  WITNESS_BUILDS_PER_SECOND,
  WITNESS_BUILDS_PER_CALLER_PER_SECOND,
  blockWitnessSource,
} from '../../src/node/block-witness.js';
import { isHyperMeshError } from '../../src/codec/error.js';
import { openStore } from '../../src/storage/index.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';

/**
 * One validator in this process (it holds all the voting power, so it commits alone): the node
 * wiring, its API as the operator tools use it, and `node start`'s refusals.
 */
let root: string;
let layout: ClusterLayout;
let node: ValidatorNode | undefined;
const logLines: string[] = [];

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-validator-'));
  layout = await initCluster({
    out: path.join(root, 'cluster'),
    validators: 1,
    basePort: 0,
    metricsBasePort: 0,
  });
});
after(async () => {
  await node?.stop();
  await rm(root, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await main(args, { out: () => undefined, err: (text) => void (err += text) });
  return { code, err };
}

async function waitForHeight(target: ValidatorNode, height: number): Promise<void> {
  while (target.driver.status().committedHeight < height) {
    const [info] = (await once(target.driver, 'commit', {
      signal: AbortSignal.timeout(15_000),
    })) as [CommitInfo];
    if (info.height >= height) return;
  }
}

describe('a validator node', () => {
  /** The kv set the first running node committed; its receipt outlives a restart. */
  let setTxHash: Uint8Array = new Uint8Array(32);

  it('refuses a malformed configuration with exit code 2, naming the file and field', async () => {
    const bad = path.join(root, 'bad.json');
    await writeFile(bad, JSON.stringify({ name: 'node-1', dataDir: 'd', stoq: { port: -1 } }));
    const result = await run(['node', 'start', '--config', bad]);
    assert.equal(result.code, 2);
    assert.match(result.err, new RegExp(`invalid node configuration ${bad}`));
    assert.match(result.err, /stoq\.port: /);
    assert.match(result.err, /genesisFile: /);
    const missing = await run(['node', 'start']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--config is required/);
  });

  it('refuses to start with a key or plot that genesis does not register', async () => {
    const configFile = layout.nodes[0]?.configFile as string;
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    const renamed = path.join(path.dirname(configFile), 'renamed.json');
    await writeFile(renamed, JSON.stringify({ ...config, name: 'node-9' }));
    const notInGenesis = await run(['node', 'start', '--config', renamed]);
    assert.equal(notInGenesis.code, 2);
    // A node that is not in the genesis may start (it follows the chain until staking adds it,
    // docs/node.md "Adding a node"), but not with a genesis validator's key under another name.
    assert.match(
      notInGenesis.err,
      /holds the key of genesis validator "node-1", but the configuration names the node "node-9"/,
    );

    const otherKey = path.join(path.dirname(configFile), 'other-key.json');
    await writeFile(
      otherKey,
      JSON.stringify({
        ...config,
        identity: { keyFile: '../operator/operator.key', certificateFile: 'node-1.pem' },
      }),
    );
    const wrongKey = await run(['node', 'start', '--config', otherKey]);
    assert.equal(wrongKey.code, 2);
    assert.match(wrongKey.err, /holds Ed25519 key [0-9a-f]{64}, but genesis registers/);

    const otherPlot = path.join(path.dirname(configFile), 'other-plot.json');
    await writeFile(otherPlot, JSON.stringify({ ...config, storagePlotFile: 'missing.plot' }));
    const noPlot = await run(['node', 'start', '--config', otherPlot]);
    assert.equal(noPlot.code, 2);
    assert.match(noPlot.err, /cannot load the storage plot: .*missing\.plot/);
  });

  it('commits, answers status, serves blocks that verify, and runs kv transactions', async () => {
    const config = await loadValidatorNodeConfig(layout.nodes[0]?.configFile as string, {});
    node = await startValidatorNode(
      config,
      createLogger({ node: config.name }, (line) => void logLines.push(line), 'info'),
    );
    assert.equal(node.id, layout.nodes[0]?.id);
    await waitForHeight(node, 2);
    assert.ok(
      logLines.some((line) => /"msg":"block committed","height":1,/.test(line)),
      'every commit is logged once, with its height',
    );
    assert.equal(
      logLines.filter((line) => /"msg":"block committed","height":1,/.test(line)).length,
      1,
    );

    const target = await loadClusterTarget(layout.dir);
    const genesis = parseGenesisJson(await readFile(target.genesisFile, 'utf8'));
    const session = await openOperatorSession(target);
    try {
      const status = await collectClusterStatus(target, genesis, session, 5000);
      assert.equal(status.reachable, 1);
      assert.ok((status.height ?? 0) >= 2);
      assert.deepEqual(status.validatorsOnline, ['node-1']);
      assert.equal(status.onlinePower, status.totalPower);
      const text = formatClusterStatus(status).join('\n');
      assert.match(text, /validators online: 1\/1 \(voting power 10\/10\)/);

      const client = session.client('node-1');
      const report = await verifyBlockFromNode(client, genesis, 2);
      assert.equal(report.verdict?.ok, true, JSON.stringify(report.verdict));
      assert.deepEqual(
        report.verdict?.parts.map((part) => `${part.part}:${part.ok ? part.coverage : 'bad'}`),
        ['space:full', 'stake:full', 'work:full', 'time:full'],
      );
      assert.match(
        formatBlockVerify(report, 'node-1').join('\n'),
        /work .*full .*state root: re-executed here on the node's state witness \(\d+ bytes/,
      );
      const stampsOnly = await verifyBlockFromNode(client, genesis, 2, { reexecute: false });
      assert.equal(stampsOnly.ok, true);
      assert.match(
        formatBlockVerify(stampsOnly, 'node-1').join('\n'),
        /stamps-only .*not re-executed \(not asked for/,
      );

      // A node that tampers with the block's consensus proof is caught.
      const tampering: NodeRpcClient = {
        ...client,
        getBlock: async (height, options) => {
          const real = await client.getBlock(height, options);
          if (height !== 2) return real;
          const block = decodeBlock(real.block);
          const proof = block.header.consensusProof.slice();
          proof[proof.length - 1] = (proof[proof.length - 1] as number) ^ 1;
          return {
            ...real,
            block: encodeBlock({ ...block, header: { ...block.header, consensusProof: proof } }),
          };
        },
      };
      const forged = await verifyBlockFromNode(tampering, genesis, 2);
      assert.equal(forged.verdict?.ok, false);

      const privateKey = await operatorKey(target.operator.keyFile);
      const set = await submitKvSet({
        client,
        genesis,
        privateKey,
        key: 'greeting',
        value: 'hello',
        wait: true,
        timeoutMs: 15_000,
      });
      assert.equal(set.sequence, 0);
      assert.equal(set.status.status, 'committed');
      // The node stored its receipt with the block (kv emits no events).
      setTxHash = fromHex(set.txHash);
      const receipt = await client.receipt(setTxHash);
      assert.deepEqual(
        { code: receipt.code, events: receipt.events, height: receipt.height },
        {
          code: 0,
          events: [],
          height: set.status.status === 'committed' ? set.status.height : -1,
        },
      );
      const read = await readKv(client, 'greeting');
      assert.equal(new TextDecoder().decode(read.value ?? new Uint8Array()), 'hello');
      const absent = await readKv(client, 'nothing-here');
      assert.equal(absent.value, null);

      // The kv set's block, re-executed here on the node's witness: the root is the header's.
      const setHeight = set.status.status === 'committed' ? set.status.height : -1;
      const executed = await verifyBlockFromNode(client, genesis, setHeight);
      assert.equal(executed.ok, true, JSON.stringify(executed.verdict));
      assert.equal(executed.reexecution.ran, true);
      const workOf = (verdict: typeof executed.verdict) =>
        verdict?.parts.find((part) => part.part === 'work');
      const executedWork = workOf(executed.verdict);
      assert.ok(executedWork?.ok === true && executedWork.coverage === 'full');
      // A node busy building other witnesses is asked again a second later.
      let busy = 1;
      const busyOnce: NodeRpcClient = {
        ...client,
        blockWitness: async (height, options) => {
          if (busy-- > 0) {
            throw new StoqError(StoqErrorCode.RESOURCE_EXHAUSTED, 'busy', {
              reason: 'witness-busy',
            });
          }
          return client.blockWitness(height, options);
        },
      };
      assert.equal((await verifyBlockFromNode(busyOnce, genesis, setHeight)).reexecution.ran, true);
      // A node whose witness lies is caught, whatever the lie.
      const lyingWith = (forge: (witness: StateWitness) => StateWitness): NodeRpcClient => ({
        ...client,
        blockWitness: async (height, options) =>
          encodeStateWitness(forge(decodeStateWitness(await client.blockWitness(height, options)))),
      });
      const earlier = decodeStateWitness(await client.blockWitness(setHeight - 1));
      for (const [name, forge] of [
        ['another block', () => earlier],
        [
          'an invented value',
          (witness: StateWitness) => ({
            ...witness,
            values: witness.values.map((entry) => ({
              ...entry,
              value: new TextEncoder().encode('invented'),
            })),
          }),
        ],
        ['no nodes', (witness: StateWitness) => ({ ...witness, nodes: new Map() })],
      ] as const) {
        const lied = await verifyBlockFromNode(lyingWith(forge), genesis, setHeight);
        assert.equal(lied.ok, false, name);
        assert.equal(workOf(lied.verdict)?.ok, false, name);
        assert.match(
          formatBlockVerify(lied, 'node-1').join('\n'),
          /work .*INVALID .*(reexecution-failed|state-root-mismatch)/,
          name,
        );
      }
    } finally {
      await session.close();
    }
    await node.stop();
    node = undefined;

    // The node's witness source: at most WITNESS_BUILDS_PER_SECOND builds a second, whoever
    // asks; a cached witness costs none. Read from the stopped node's store with a set clock.
    const genesisOf = parseGenesisJson(
      await readFile((await loadClusterTarget(layout.dir)).genesisFile, 'utf8'),
    );
    const store = openStore(path.join(config.dataDir, STORE_FILE), { readonly: true });
    try {
      let clock = 0;
      const witnesses = blockWitnessSource(
        store,
        genesisOf,
        () => genesisApplication(genesisOf),
        () => clock,
      );
      // Heights 1 to WITNESS_BUILDS_PER_SECOND + 1 are stored (the chain above is at least that
      // long); the last one is never built before the clock moves, so it stays uncached.
      const heights = Array.from({ length: WITNESS_BUILDS_PER_SECOND + 1 }, (_, i) => i + 1);
      assert.ok(
        (store.blocks.latestHeight() ?? 0) >= heights.length,
        `the stopped node stored ${store.blocks.latestHeight()} blocks`,
      );
      const busy = (error: unknown) => isHyperMeshError(error, BlockWitnessErrorCode.BUSY);
      // One caller gets WITNESS_BUILDS_PER_CALLER_PER_SECOND of them; another still gets its
      // share, up to the node's WITNESS_BUILDS_PER_SECOND.
      const callers = ['spiffe://c/client/a', 'spiffe://c/client/b'];
      let next = 0;
      for (const caller of callers) {
        for (let i = 0; i < WITNESS_BUILDS_PER_CALLER_PER_SECOND; i++) {
          const height = heights[next++] as number;
          assert.ok(
            decodeStateWitness(witnesses.witness(height, caller) as Uint8Array).height ===
              height - 1,
          );
        }
        if (caller === callers[0]) {
          assert.throws(() => witnesses.witness(heights.at(-1) as number, caller), busy);
        }
      }
      assert.equal(next, WITNESS_BUILDS_PER_SECOND);
      assert.ok(witnesses.witness(1, 'spiffe://c/client/d') !== null, 'a cached one is free');
      assert.throws(() => witnesses.witness(heights.at(-1) as number, 'spiffe://c/client/e'), busy);
      clock += 1000;
      assert.ok(witnesses.witness(heights.at(-1) as number) !== null);
      assert.equal(witnesses.witness(10_000), null, 'no such block');
    } finally {
      store.close();
    }

    let out = '';
    const code = await main(['status', '--cluster', layout.dir, '--timeout-ms', '500'], {
      out: (text) => void (out += text),
      err: () => undefined,
    });
    assert.equal(code, 1, 'no node answered');
    assert.match(out, /nodes answering: 0\/1/);
    assert.match(out, /node-1 .* unreachable: [A-Z_]+/);
  });

  it('admits a batch of client transactions each on its own and commits the valid ones', async () => {
    const config = await loadValidatorNodeConfig(layout.nodes[0]?.configFile as string, {});
    const running = await startValidatorNode(
      config,
      createLogger({ node: config.name }, () => undefined, 'info'),
    );
    node = running;
    const target = await loadClusterTarget(layout.dir);
    const genesis = parseGenesisJson(await readFile(target.genesisFile, 'utf8'));
    const session = await openOperatorSession(target);
    try {
      const client = session.client('node-1');
      // After a restart the in-memory results are gone; the stored receipt still answers.
      assert.equal((await client.txStatus(setTxHash)).status, 'committed');
      assert.equal((await client.receipt(setTxHash)).code, 0);
      const privateKey = await operatorKey(target.operator.keyFile);
      const account = await client.query({
        path: SEQUENCE_QUERY,
        data: ed25519RawPublicKey(privateKey),
      });
      const sequence = decodeSequence(account.value);
      const build = (key: string, at: number, chainId = genesis.chainId) =>
        buildTransaction({
          chainId,
          privateKey,
          sequence: at,
          module: KV_MODULE_NAME,
          body: kvSet(key, 'batched'),
          stampDifficulty: genesis.proof.work.stampDifficulty,
        });
      const first = build('batch/first', sequence);
      const second = build('batch/second', sequence + 1);
      const forged = build('batch/forged', sequence + 2).bytes.slice();
      forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
      const otherChain = build('batch/other', sequence + 2, 'another-chain');

      const results = await client.submitTxs([
        first.bytes,
        forged,
        first.bytes,
        otherChain.bytes,
        second.bytes,
      ]);
      assert.deepEqual(
        results.map((result) => (result.ok ? 'ok' : result.code)),
        ['ok', TransactionErrorCode.BAD_SIGNATURE, 'ok', TransactionErrorCode.WRONG_CHAIN, 'ok'],
      );
      assert.deepEqual(results[0], { ok: true, txHash: first.txHash });
      assert.deepEqual(results[2], { ok: true, txHash: first.txHash }, 'a duplicate, as submitTx');
      assert.deepEqual(results[4], { ok: true, txHash: second.txHash });

      // Wait for the commits: the next commit is awaited only after both statuses were read.
      for (;;) {
        const nextCommit = once(running.driver, 'commit', { signal: AbortSignal.timeout(15_000) });
        const statuses = await Promise.all([
          client.txStatus(first.txHash),
          client.txStatus(second.txHash),
        ]);
        if (statuses.every((status) => status.status === 'committed')) {
          nextCommit.catch(() => undefined);
          assert.deepEqual(
            statuses.map((status) => status.status === 'committed' && status.code),
            [0, 0],
          );
          break;
        }
        await nextCommit;
      }
      for (const key of ['batch/first', 'batch/second']) {
        const read = await readKv(client, key);
        assert.equal(new TextDecoder().decode(read.value ?? new Uint8Array()), 'batched');
      }
      assert.deepEqual(await client.txStatus(otherChain.txHash), { status: 'unknown' });
      assert.equal((await readKv(client, 'batch/forged')).value, null);
    } finally {
      await session.close();
      await running.stop();
      node = undefined;
    }
  });
});
