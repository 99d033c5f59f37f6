import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toHex } from '../../src/crypto/bytes.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { buildTransaction, type BuiltTransaction } from '../../src/consensus/application/index.js';
import { KV_MODULE_NAME, kvGetQuery, kvSet, verifyKvGet } from '../../src/kv/index.js';
import { chainOn, txOccurrences } from './chain-scan.js';
import { createTestCluster, eventually, type TestCluster } from './cluster-harness.js';
import { BENIGN_REFUSALS, KvLoad, sequenceOn } from './kv-load.js';

/**
 * Issue 3 §4, multi-process integration: four `hypermesh node start` processes from a real
 * `hypermesh cluster init`, on loopback, under a steady kv load from an operator client.
 * kill -9 of one validator (the rest keep committing), its restart (it catches up to identical
 * blocks and state roots), kill -9 of two (beyond f: progress stops, nothing forks) and the
 * return of one (commits resume). Transactions acknowledged by a validator just before its
 * kill -9 are committed exactly once. Every wait re-checks its condition when a node logs a
 * commit (or becomes ready, or exits), with a deadline; the bounded windows that are themselves
 * the assertion are "no commit for a round" (settled) and "no commit for 3 rounds" with two down.
 */
const VALIDATORS = 4;
/** The whole suite's deadline; the load never outlives it either. */
const SUITE_MS = 150_000;
const START_MS = 40_000;
const PROGRESS_MS = 30_000;
/**
 * A restarted validator says hello to the peers that dial it, which drop the dead stream and dial
 * again at once (docs/consensus.md, "Network"): it is back in the mesh within a second. This
 * test's own client connection to the killed process, though, is only replaced once QUIC's idle
 * timeout (30 s, src/stoq/quic) declares it dead, so the status checks need that plus a margin.
 */
const CATCH_UP_MS = 45_000;

let cluster: TestCluster | undefined;
let load: KvLoad | undefined;

function requireCluster(): TestCluster {
  if (cluster === undefined) throw new Error('the cluster did not start');
  return cluster;
}

async function liveHeights(c: TestCluster): Promise<Map<string, number>> {
  const heights = new Map<string, number>();
  await Promise.all(c.live().map(async (name) => heights.set(name, await c.committedHeight(name))));
  return heights;
}

/** Waits until every running node has committed `height`; returns their heights. */
async function allReach(c: TestCluster, height: number, ms: number, what: string) {
  return eventually(`${what} (every running node at height ≥ ${height})`, ms, async () => {
    const heights = await liveHeights(c);
    return [...heights.values()].every((h) => h >= height) ? heights : undefined;
  });
}

async function maxLiveHeight(c: TestCluster): Promise<number> {
  return Math.max(...(await liveHeights(c)).values());
}

/**
 * Waits until the running nodes agree on their committed height and none has logged a commit
 * for `quietMs`; returns that height. Fails after `ms`.
 */
async function settle(c: TestCluster, quietMs: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let heights = new Map<string, number>();
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining < quietMs) {
      throw new Error(
        `the survivors did not settle within ${ms} ms (heights ${JSON.stringify([...heights])})`,
      );
    }
    // A commit within the window: the heights moved; watch another window.
    if ((await c.commitWithin(quietMs)) !== null) continue;
    heights = await liveHeights(c);
    const values = [...heights.values()];
    if (values.every((h) => h === values[0])) return values[0] as number;
    // Quiet but apart: the one behind catches up with a commit of its own; wait for it.
    await c.commitWithin(deadline - Date.now());
  }
}

/** One round at round 0: the sum of the genesis propose, prevote and precommit timeouts. */
function roundMs(c: TestCluster): number {
  const t = c.genesis.consensus.timeouts;
  return t.proposeMs + t.prevoteMs + t.precommitMs;
}

/** The same blocks 1..height on every running node: equal hashes, recomputed from headers. */
async function assertSameChain(c: TestCluster, height: number): Promise<void> {
  const chains = await Promise.all(
    c.live().map(async (name) => ({ name, blocks: await chainOn(c, name, 1, height) })),
  );
  const [first, ...rest] = chains;
  assert.ok(first, 'at least one running node');
  for (const other of rest) {
    for (let i = 0; i < height; i++) {
      assert.equal(
        other.blocks[i]?.hash,
        first.blocks[i]?.hash,
        `block ${i + 1}: ${other.name} and ${first.name} differ`,
      );
    }
  }
}

describe('a 4-validator cluster under kill -9', { timeout: SUITE_MS }, () => {
  const preKill: { sender: string; txs: BuiltTransaction[] } = { sender: '', txs: [] };

  before(async () => {
    cluster = await createTestCluster(VALIDATORS);
    const c = cluster;
    await Promise.all(c.names.map((name) => c.start(name)));
  });

  after(async () => {
    await load?.stop();
    await cluster?.close();
  });

  it('commits blocks with transactions', async () => {
    const c = requireCluster();
    await allReach(c, 2, START_MS, 'the first blocks');
    load = new KvLoad(c, {
      senders: 6,
      pauseMs: 50,
      resubmitMs: 6_000,
      // Far above what the run needs: at most one per sender per block, a few hundred in ~80 s.
      maxTxsPerSender: 1_000,
      maxDurationMs: SUITE_MS,
      prefix: 'load',
    });
    load.start();
    const running = load;
    await eventually('10 load transactions committed', PROGRESS_MS, async () =>
      running.confirmed >= 10 ? true : undefined,
    );
    assert.deepEqual(c.commits.forks, []);
  });

  it('keeps committing with one validator killed (kill -9)', async () => {
    const c = requireCluster();
    const running = load as KvLoad;
    // Transactions the victim and one other node acknowledge just before the kill: some may
    // have been gossiped, some live only in the victim's (volatile) mempool.
    const key = generateEd25519KeyPair().privateKey;
    preKill.sender = toHex(ed25519RawPublicKey(key));
    for (let sequence = 0; sequence < 12; sequence++) {
      preKill.txs.push(
        buildTransaction({
          chainId: c.genesis.chainId,
          privateKey: key,
          sequence,
          module: KV_MODULE_NAME,
          body: kvSet(`pre-kill-${sequence}`, `value-${sequence}`),
          stampDifficulty: c.genesis.proof.work.stampDifficulty,
        }),
      );
    }
    for (const [index, tx] of preKill.txs.entries()) {
      for (const node of index % 2 === 0 ? ['node-4', 'node-1'] : ['node-4']) {
        const result = await c.client(node).submitTx(tx.bytes, { deadlineMs: 3_000 });
        assert.ok(
          result.ok || BENIGN_REFUSALS.has(result.code),
          `${node} refused pre-kill tx ${index}: ${JSON.stringify(result)}`,
        );
      }
    }
    await c.kill('node-4');
    const base = await maxLiveHeight(c);
    const confirmedAtKill = running.confirmed;
    await allReach(c, base + 3, PROGRESS_MS, 'three more blocks without node-4');
    await eventually('load transactions committed without node-4', PROGRESS_MS, async () =>
      running.confirmed > confirmedAtKill ? true : undefined,
    );
    assert.deepEqual(c.commits.forks, []);
  });

  it('commits transactions acknowledged before a kill -9 exactly once', async () => {
    const c = requireCluster();
    // A client that saw no commit resubmits the same bytes; several mempools now hold them.
    for (const tx of preKill.txs) {
      for (const node of c.live()) {
        const result = await c.client(node).submitTx(tx.bytes, { deadlineMs: 3_000 });
        assert.ok(
          result.ok || BENIGN_REFUSALS.has(result.code),
          `${node} refused a resubmitted tx: ${JSON.stringify(result)}`,
        );
      }
    }
    const expected = preKill.txs.length;
    await eventually('every pre-kill transaction committed', PROGRESS_MS, async () => {
      const seen = await Promise.all(c.live().map((n) => sequenceOn(c, n, preKill.sender)));
      return seen.every((s) => s.next === expected) ? true : undefined;
    });
    const height = await c.committedHeight('node-1');
    const occurrences = txOccurrences(await chainOn(c, 'node-1', 1, height));
    for (const [index, tx] of preKill.txs.entries()) {
      assert.equal(occurrences.get(toHex(tx.txHash)), 1, `pre-kill tx ${index} occurs once`);
      const status = await c.client('node-1').txStatus(tx.txHash, { deadlineMs: 3_000 });
      assert.equal(status.status, 'committed', `pre-kill tx ${index} status`);
      if (status.status === 'committed') assert.equal(status.code, 0, status.log);
    }
    const request = kvGetQuery('pre-kill-11');
    const entry = verifyKvGet(request.data, await c.client('node-2').query(request));
    assert.equal(Buffer.from(entry?.value ?? []).toString(), 'value-11');
  });

  it('the restarted validator catches up to identical blocks and state roots', async () => {
    const c = requireCluster();
    const target = await maxLiveHeight(c);
    await c.start('node-4');
    await allReach(c, target + 2, CATCH_UP_MS, 'node-4 caught up');
    const heights = await liveHeights(c);
    const common = Math.min(...heights.values());
    await assertSameChain(c, common);
    const roots = await Promise.all(
      c.names.map(async (name) => ({
        name,
        read: await sequenceOn(c, name, preKill.sender, common),
      })),
    );
    for (const { name, read } of roots) {
      assert.equal(read.height, common, `${name} answered at height ${common}`);
      assert.equal(read.next, preKill.txs.length, `${name}: the pre-kill sender's sequence`);
      assert.equal(read.stateRoot, roots[0]?.read.stateRoot, `${name}: state root at ${common}`);
    }
    assert.deepEqual(c.commits.forks, []);
  });

  it('stops with two validators killed (beyond f) and never forks', async () => {
    const c = requireCluster();
    await Promise.all([c.kill('node-3'), c.kill('node-4')]);
    const atKill = await maxLiveHeight(c);
    // A block whose precommits were already out may still be committed by the survivors, so
    // the stall is measured from the moment they agree and none has logged a commit for a round.
    const round = roundMs(c);
    const settled = await settle(c, round, 4 * round);
    assert.ok(settled <= atKill + 1, `settled at ${settled}, ${atKill} when killed`);
    // Three more rounds: any commit a survivor logs in them fails the test at once.
    const moved = await c.commitWithin(3 * round);
    assert.equal(
      moved,
      null,
      `${moved?.node} committed height ${moved?.height} with two of four validators down`,
    );
    for (const [name, h] of await liveHeights(c)) {
      assert.equal(h, settled, `${name} committed height ${h} with two of four validators down`);
    }
    await assertSameChain(c, settled);
    assert.deepEqual(c.commits.forks, []);
  });

  it('resumes committing when one of them returns', async () => {
    const c = requireCluster();
    const running = load as KvLoad;
    const stalled = await maxLiveHeight(c);
    const confirmed = running.confirmed;
    await c.start('node-3');
    await allReach(c, stalled + 2, CATCH_UP_MS, 'commits resumed with three validators');
    await eventually('load transactions committed again', PROGRESS_MS, async () =>
      running.confirmed > confirmed ? true : undefined,
    );
    await running.stop();
    load = undefined;
    const height = await maxLiveHeight(c);
    await allReach(c, height, PROGRESS_MS, 'every node at the last confirmed height');
    const occurrences = txOccurrences(await chainOn(c, 'node-1', 1, height));
    const confirmedTxs = running.txs.filter((tx) => tx.confirmed);
    assert.ok(confirmedTxs.length > 0);
    for (const tx of confirmedTxs) {
      assert.equal(occurrences.get(tx.txHash), 1, `load tx ${tx.key} occurs once in the chain`);
    }
    assert.deepEqual(running.problems, []);
    assert.deepEqual(c.commits.forks, []);
    assert.ok(c.commits.maxHeight >= height);
  });
});
