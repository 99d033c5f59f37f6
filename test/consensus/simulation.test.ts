import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { blockHash, precommitPqSignBytes } from '../../src/consensus/messages.js';
import type { Block, QuorumCertificate } from '../../src/consensus/types.js';
import { createFalcon } from '../../src/crypto/falcon.js';
import { blockTemplate, buildBlock, checkBlock } from '../../src/consensus/block.js';
import { ConsensusError } from '../../src/consensus/errors.js';
import { genesisContext, nextHeightContext } from '../../src/consensus/height-context.js';
import { proposerAt } from '../../src/consensus/proposer.js';
import { ed25519SignatureVerifier } from '../../src/consensus/verify.js';
import { FORGERY_VARIANTS, forgeValue, PROOF_FORGERIES } from './sim/bad-proof.js';
import { InvariantChecker } from './sim/invariants.js';
import type { ByzantineBehaviour } from './sim/options.js';
import { Prng } from './sim/prng.js';
import { plotOf, simGenesisDocument, SimProofs, stampTransaction } from './sim/proofs.js';
import {
  baseOptions,
  behaviourScenario,
  FAULTY_BEHAVIOURS,
  forkScenario,
  lockScenario,
  randomScenario,
  validatorChangeScenario,
} from './sim/scenario.js';
import { runSeedsInWorkers } from './sim/seeds.js';
import { runSimulation, type SimulationResult } from './sim/simulator.js';
import {
  CHAIN_ID,
  GENESIS_HASH,
  GENESIS_TIME,
  makeBlock,
  makeGenesis,
  makeValidators,
  makeVote,
  TEST_TIMEOUTS,
} from './sim/fixtures.js';
import { createValidatorSet } from '../../src/consensus/validator-set.js';

/**
 * Deterministic simulation (TESTING.md): thousands of random seeds, each a cluster of 4 or 7
 * validators (equal or unequal power) under message delay, loss, duplication and reordering,
 * partitions that heal, crashes with restarts from the write-ahead log, skewed clocks and
 * faulty validators below 1/3 of the power. Invariants are checked after every step.
 *
 *   SIM_SEEDS=10000 node --import tsx --test test/consensus/simulation.test.ts   more seeds
 *   SIM_FIRST_SEED=5000                                                          another range
 *   SIM_SEED=123 node --import tsx --test test/consensus/simulation.test.ts     replay one seed
 *   SIM_WORKERS=1                                                                one thread
 *   SIM_CHANGE_SEEDS=1000                        seeds of the validator-set-change scenario
 *   SIM_SCENARIO=validator-changes SIM_SEED=7    replay one of those
 */
const DEFAULT_SEEDS = 2000;
const DEFAULT_CHANGE_SEEDS = 200;
const seedCount = Number(process.env.SIM_SEEDS ?? DEFAULT_SEEDS);
const changeSeedCount = Number(process.env.SIM_CHANGE_SEEDS ?? DEFAULT_CHANGE_SEEDS);
const changeScenario = process.env.SIM_SCENARIO === 'validator-changes';
const firstSeed = Number(process.env.SIM_FIRST_SEED ?? 1);
const replaySeed = process.env.SIM_SEED === undefined ? undefined : Number(process.env.SIM_SEED);
const workers = Number(process.env.SIM_WORKERS ?? Math.min(2, availableParallelism()));

function replayCommand(seed: number, changes = changeScenario): string {
  const scenario = changes ? 'SIM_SCENARIO=validator-changes ' : '';
  return `${scenario}SIM_SEED=${seed} node --import tsx --test test/consensus/simulation.test.ts`;
}

function describeResult(result: SimulationResult): string {
  const { stats } = result;
  return (
    `seed ${result.seed}: ${result.violations.map((v) => `[${v.kind}] ${v.message} at ${v.timeMs.toFixed(1)} ms`).join('; ')}` +
    `\n  heights ${stats.heights.join(',')}, max round ${stats.maxRound}, ${stats.events} events` +
    `\n  replay: ${replayCommand(result.seed)}`
  );
}

describe('deterministic simulation of Tendermint', () => {
  if (replaySeed !== undefined) {
    it(`replays seed ${replaySeed}`, async () => {
      const options = (changeScenario ? validatorChangeScenario : randomScenario)(replaySeed);
      console.log(
        `seed ${replaySeed}: ${options.powers.length} validators, powers ${options.powers.join(',')}, ` +
          `faulty ${JSON.stringify([...options.byzantine])}, partitions ${JSON.stringify(options.partitions)}, ` +
          `crashes ${JSON.stringify(options.crashes)}, consensus proofs ${options.proofs === true}, ` +
          `validator changes ${JSON.stringify(options.validatorChanges ?? [])}`,
      );
      const result = await runSimulation({ ...options, recordTrace: true });
      const again = await runSimulation(options);
      assert.equal(again.traceHash, result.traceHash, 'the replay is not bit-exact');
      if (result.violations.length > 0) {
        console.log(result.trace.slice(-60).join('\n'));
        assert.fail(describeResult(result));
      }
      console.log(`trace ${result.traceHash}, heights ${result.stats.heights.join(',')}`);
    });
    return;
  }

  it(
    `keeps every invariant over ${seedCount} random seeds (from ${firstSeed})`,
    { timeout: 30 * 60_000 },
    async () => {
      const seeds = Array.from({ length: seedCount }, (_, i) => firstSeed + i);
      const started = performance.now();
      const summaries = await runSeedsInWorkers(seeds, workers);
      const seconds = (performance.now() - started) / 1000;
      assert.equal(summaries.length, seedCount);
      const failures = summaries.filter((summary) => summary.violations.length > 0);
      const events = summaries.reduce((sum, summary) => sum + summary.events, 0);
      const scenarios = seeds.map(randomScenario);
      const proofSeeds = scenarios.filter((options) => options.proofs === true).length;
      const badProofSeeds = scenarios.filter((options) =>
        [...options.byzantine.values()].includes('bad-proof-proposer'),
      ).length;
      console.log(
        `simulation: ${seedCount} seeds (${proofSeeds} with consensus proofs, ${badProofSeeds} with a ` +
          `bad-proof proposer), ${events} events, ${seconds.toFixed(1)} s on ${workers} worker(s), ` +
          `${failures.length} failing`,
      );
      if (seedCount >= 200) assert.ok(badProofSeeds > 0, 'no seed had a bad-proof proposer');
      if (failures.length > 0) {
        const report = failures
          .slice(0, 10)
          .map(
            (failure) =>
              `seed ${failure.seed}: ${failure.violations.map((v) => `[${v.kind}] ${v.message}`).join('; ')}\n  replay: ${replayCommand(failure.seed)}`,
          )
          .join('\n');
        assert.fail(`${failures.length} of ${seedCount} seeds broke an invariant:\n${report}`);
      }
    },
  );

  it(
    `keeps every invariant while the validator set changes, over ${changeSeedCount} seeds (from ${firstSeed})`,
    { timeout: 30 * 60_000 },
    async () => {
      const seeds = Array.from({ length: changeSeedCount }, (_, i) => firstSeed + i);
      const summaries = await runSeedsInWorkers(seeds, workers, 'validator-changes');
      assert.equal(summaries.length, changeSeedCount);
      const failures = summaries.filter((summary) => summary.violations.length > 0);
      if (failures.length > 0) {
        const report = failures
          .slice(0, 10)
          .map(
            (failure) =>
              `seed ${failure.seed}: ${failure.violations.map((v) => `[${v.kind}] ${v.message}`).join('; ')}\n  replay: ${replayCommand(failure.seed, true)}`,
          )
          .join('\n');
        assert.fail(
          `${failures.length} of ${changeSeedCount} seeds broke an invariant:\n${report}`,
        );
      }
      // The scenarios do change the set: every run went past its last planned change + 2.
      for (const summary of summaries) {
        const options = validatorChangeScenario(summary.seed);
        const last = Math.max(...(options.validatorChanges ?? []).map((change) => change.height));
        const correct = summary.heights.filter((_, node) => !options.byzantine.has(node));
        assert.ok(
          Math.min(...correct) >= last + 2,
          `seed ${summary.seed}: ${summary.heights.join(',')}`,
        );
      }
    },
  );

  it('a validator joins, one leaves and one is re-weighted while a node crashes and one double-votes', async () => {
    // Node 4 starts outside the set; block 2 adds it, block 4 removes node 1, block 6 gives
    // node 2 power 3. Node 0 double-votes throughout; node 3 crashes across the first change.
    const options = {
      ...baseOptions(31, [1, 1, 1, 1, 0]),
      byzantine: new Map([[0, 'double-voter' as const]]),
      validatorChanges: [
        { height: 2, node: 4, power: 1 },
        { height: 4, node: 1, power: 0 },
        { height: 6, node: 2, power: 3 },
      ],
      minFinalHeight: 10,
      crashes: [{ node: 3, atMs: 60, restartAtMs: 700 }],
      network: { minDelayMs: 2, meanJitterMs: 10, dropRate: 0.05, duplicateRate: 0.02 },
    };
    const result = await runSimulation({ ...options, recordTrace: true });
    assert.deepEqual(result.violations, [], describeResult(result));
    assert.ok(result.stats.evidenceFound > 0, 'the double voter was caught');
    assert.ok(
      result.trace.some((line) => /boot 3 h=[2-9]/.test(line)),
      'node 3 restarted mid-chain',
    );
    const store = result.stores[2]!;
    assert.ok(store.length >= 10);
    const signers = (height: number) =>
      store[height - 1]!.commit.precommits.map((vote) => vote.validator);
    const setHash = (height: number) => store[height - 1]!.block.header.validatorsHash;
    const joiner = result.addresses[4]!;
    const leaver = result.addresses[1]!;
    for (let height = 1; height <= 3; height++) assert.ok(!signers(height).includes(joiner));
    assert.ok(
      Array.from({ length: store.length - 3 }, (_, i) => i + 4).some((h) =>
        signers(h).includes(joiner),
      ),
      'the joiner signs commits from height 4',
    );
    assert.ok(
      [1, 2, 3, 4, 5].some((h) => signers(h).includes(leaver)),
      'the leaver signed while it was a validator',
    );
    for (let height = 6; height <= store.length; height++) {
      assert.ok(!signers(height).includes(leaver), `height ${height}`);
    }
    assert.deepEqual(setHash(3), setHash(1));
    assert.notDeepEqual(setHash(4), setHash(3));
    assert.deepEqual(setHash(5), setHash(4));
    assert.notDeepEqual(setHash(6), setHash(5));
    assert.notDeepEqual(setHash(8), setHash(7));
  });

  it('replays a seed bit for bit, and another seed differs', async () => {
    for (const seed of [3, 17, 29]) {
      const options = randomScenario(seed);
      const first = await runSimulation({ ...options, recordTrace: true });
      const second = await runSimulation({ ...options, recordTrace: true });
      assert.equal(second.traceHash, first.traceHash, `seed ${seed}`);
      assert.deepEqual(second.trace, first.trace);
      assert.deepEqual(second.stats, first.stats);
    }
    const a = await runSimulation(randomScenario(3));
    const b = await runSimulation(randomScenario(4));
    assert.notEqual(a.traceHash, b.traceHash);
    // With consensus proofs and a bad-proof proposer too.
    const options = behaviourScenario(4, [1, 1, 1, 1], 'bad-proof-proposer');
    const first = await runSimulation({ ...options, recordTrace: true });
    const second = await runSimulation({ ...options, recordTrace: true });
    assert.ok(first.trace.some((line) => line.includes(' forge ')));
    assert.deepEqual(second.trace, first.trace);
    assert.deepEqual(second.stats, first.stats);
  });

  describe('each kind of faulty validator, with 4 equal and 7 unequal validators', () => {
    const clusters: readonly (readonly number[])[] = [
      [1, 1, 1, 1],
      [3, 1, 2, 1, 2, 1, 2],
    ];
    const expectations: Record<ByzantineBehaviour, (result: SimulationResult) => void> = {
      'equivocating-proposer': (result) =>
        assert.ok((result.stats.faults['equivocating-proposer'] ?? 0) > 0),
      'double-voter': (result) => assert.ok(result.stats.evidenceFound > 0, 'no evidence found'),
      silent: (result) => assert.ok((result.stats.faults.silent ?? 0) > 0),
      'invalid-proposer': (result) =>
        assert.ok((result.stats.faults['invalid-proposer'] ?? 0) > 0, 'it never proposed'),
      forger: (result) =>
        assert.ok((result.stats.rejections.BAD_SIGNATURE ?? 0) > 0, 'no forgery rejected'),
      replayer: (result) => assert.ok((result.stats.faults.replayer ?? 0) > 0, 'nothing replayed'),
      'lock-breaker': (result) => assert.ok(result.stats.evidenceFound > 0, 'no evidence found'),
      'bad-proof-proposer': (result) =>
        assert.ok((result.stats.faults['bad-proof-proposer'] ?? 0) > 0, 'it never proposed'),
      'fork-coalition': () => undefined,
    };
    for (const behaviour of [...FAULTY_BEHAVIOURS, 'bad-proof-proposer' as const]) {
      it(behaviour, async () => {
        for (const powers of clusters) {
          for (const seed of [1, 2]) {
            const options = behaviourScenario(seed, powers, behaviour);
            const result = await runSimulation(options);
            assert.deepEqual(result.violations, [], describeResult(result));
            expectations[behaviour](result);
            const correct = result.stats.heights.filter((_, node) => !options.byzantine.has(node));
            assert.ok(Math.min(...correct) >= 6, `heights ${result.stats.heights.join(',')}`);
          }
        }
      });
    }
  });

  it('keeps agreement when a lock-breaker proposes fresh blocks to locked validators', async () => {
    // Without the lock rule (line 23) about one seed in twenty of these forks.
    let reproposals = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const result = await runSimulation({ ...lockScenario(seed), recordTrace: true });
      assert.deepEqual(result.violations, [], describeResult(result));
      if (result.trace.some((line) => /proposal h=\d+ r=\d+ vr=\d/.test(line))) reproposals++;
    }
    assert.ok(reproposals > 10, `only ${reproposals} runs re-proposed a valid value`);
  });

  it('a crashed validator restarts from its write-ahead log and catches up', async () => {
    const options = {
      ...baseOptions(5, [2, 1, 1, 1, 2, 1, 1]),
      crashes: [
        { node: 0, atMs: 120, restartAtMs: 900 },
        { node: 3, atMs: 300, restartAtMs: 310 },
      ],
      network: { minDelayMs: 2, meanJitterMs: 10, dropRate: 0.05, duplicateRate: 0.02 },
    };
    const result = await runSimulation({ ...options, recordTrace: true });
    assert.deepEqual(result.violations, [], describeResult(result));
    assert.ok(result.trace.some((line) => line.includes('boot 0 h=')));
    const heights = result.stats.heights;
    assert.ok(heights[0]! >= Math.max(...heights) - 1, `heights ${heights.join(',')}`);
  });

  it('a partition without a quorum side stalls, then progress resumes after the heal', async () => {
    const options = {
      ...baseOptions(8, [1, 1, 1, 1]),
      partitions: [
        {
          groups: [
            [0, 1],
            [2, 3],
          ],
          fromMs: 50,
          untilMs: 1500,
        },
      ],
    };
    const result = await runSimulation({ ...options, recordTrace: true });
    assert.deepEqual(result.violations, [], describeResult(result));
    const commitsDuring = result.trace.filter((line) => {
      const time = Number(line.split(' ')[0]);
      return / commit \d h=/.test(line) && time > 400 && time < 1500;
    });
    assert.deepEqual(commitsDuring, [], 'nothing can commit while no side has 2/3');
  });

  it('negative control: an f+1 equivocating coalition forks the chain for some seed', async () => {
    const forks: number[] = [];
    for (let seed = 1; seed <= 10 && forks.length === 0; seed++) {
      const result = await runSimulation(forkScenario(seed));
      if (result.violations.some((violation) => violation.kind === 'agreement')) forks.push(seed);
    }
    assert.ok(forks.length > 0, 'the checker found no fork with faulty power beyond f');
  });

  it('a bad-proof proposer: every forged part is refused, nothing forged is committed, progress holds', async () => {
    const faults: Record<string, number> = {};
    const refused = new Set<string>();
    let engineRejections = 0;
    for (const powers of [
      [1, 1, 1, 1],
      [3, 1, 2, 1, 2, 1, 2],
    ]) {
      for (let seed = 1; seed <= 8; seed++) {
        const options = behaviourScenario(seed, powers, 'bad-proof-proposer');
        const result = await runSimulation(options);
        assert.deepEqual(result.violations, [], describeResult(result));
        const correct = result.stats.heights.filter((_, node) => !options.byzantine.has(node));
        assert.ok(Math.min(...correct) >= 6, `heights ${result.stats.heights.join(',')}`);
        for (const [name, count] of Object.entries(result.stats.faults)) {
          faults[name] = (faults[name] ?? 0) + count;
        }
        for (const key of Object.keys(result.stats.proofRejections))
          refused.add(key.split('/')[0]!);
        engineRejections += result.stats.rejections.INVALID_BLOCK ?? 0;
      }
    }
    for (const kind of PROOF_FORGERIES) {
      assert.ok(
        Object.keys(faults).some((name) => name.startsWith(`bad-proof:${kind}/`)),
        `no ${kind} forgery in ${JSON.stringify(faults)}`,
      );
    }
    // The proposer's parts fail the validators' proof check; header forgeries the block rules.
    assert.deepEqual([...refused].sort(), ['space', 'time', 'work']);
    assert.ok(engineRejections > 0, 'no header forgery was refused by the block rules');
  });

  it('negative control: without the proof check, a forged proof is committed and the invariant catches it', async () => {
    const caught: string[] = [];
    for (let seed = 1; seed <= 10 && caught.length === 0; seed++) {
      const options = behaviourScenario(seed, [1, 1, 1, 1], 'bad-proof-proposer');
      const result = await runSimulation({ ...options, checkProofs: false });
      for (const violation of result.violations) {
        if (violation.kind === 'invalid-proof') caught.push(violation.message);
      }
    }
    assert.ok(caught.length > 0, 'no committed forged proof was caught');
    assert.match(caught[0]!, /consensus proof fails: (space|work|time)/);
  });

  it('with FALCON-1024 precommits, every commit carries valid post-quantum signatures', async () => {
    const falcon = createFalcon();
    const result = await runSimulation({
      ...baseOptions(11, [1, 1, 1, 1]),
      pq: true,
      progressHeights: 2,
    });
    assert.deepEqual(result.violations, [], describeResult(result));
    const store = result.stores[0]!;
    assert.ok(store.length >= 2);
    for (const { commit, block } of store) {
      for (const vote of commit.precommits) {
        const validator = result.validators.validators.find((v) => v.address === vote.validator)!;
        assert.ok(vote.pqSignature instanceof Uint8Array, 'precommit without a FALCON signature');
        const message = precommitPqSignBytes(block.header.chainId, {
          height: vote.height,
          round: vote.round,
          blockHash: vote.blockHash!,
        });
        assert.equal(falcon.verify(vote.pqSignature, message, validator.pqPublicKey!), true);
        const other = precommitPqSignBytes(block.header.chainId, {
          height: vote.height + 1,
          round: vote.round,
          blockHash: vote.blockHash!,
        });
        assert.equal(falcon.verify(vote.pqSignature, other, validator.pqPublicKey!), false);
      }
    }
  });
});

describe('forged consensus proofs of the bad-proof proposer', () => {
  // Four validators with plots, a committed block 1 and the template of block 2 — the position
  // where every forgery applies (block 2 carries block 1's commit).
  const { validators } = makeValidators([1, 1, 1, 1], 21);
  const keys = validators.map((v) => ({ ...v, storageRoot: plotOf(v.publicKey).root }));
  const set = createValidatorSet(
    keys.map((k) => ({ publicKey: k.publicKey, power: 1, storageRoot: k.storageRoot })),
  );
  const proofs = new SimProofs(
    simGenesisDocument({
      chainId: CHAIN_ID,
      genesisTime: GENESIS_TIME,
      validators: keys.map((k) => ({ keys: k, power: 1 })),
      timeouts: TEST_TIMEOUTS,
      requirePq: false,
    }),
    GENESIS_HASH,
  );
  const keyOf = (address: string) => keys.find((k) => k.address === address)!;
  const stateRoot = new Uint8Array(32).fill(7);

  function commitFor(block: Block): QuorumCertificate {
    const hash = blockHash(block.header);
    const precommits = keys
      .slice(0, 3)
      .map((k) => makeVote(k, 'precommit', block.header.height, 0, hash, block.header.time + 10))
      .sort((a, b) => (a.validator < b.validator ? -1 : 1));
    return { height: block.header.height, round: 0, blockHash: hash, precommits };
  }

  const context1 = genesisContext(set, { hash: GENESIS_HASH, time: GENESIS_TIME });
  const proposer1 = keyOf(proposerAt(context1.schedule, 0).address);
  const template1 = blockTemplate(CHAIN_ID, context1, proposer1.address);
  const txs1 = [stampTransaction(Uint8Array.of(1, 2, 3))];
  const block1 = buildBlock(template1, {
    transactions: txs1,
    evidence: [],
    appStateRoot: stateRoot,
    consensusProof: proofs.build(proposer1, template1, txs1),
  });
  const context2 = nextHeightContext(context1, block1, commitFor(block1));
  const proposer2 = keyOf(proposerAt(context2.schedule, 0).address);
  const template2 = blockTemplate(CHAIN_ID, context2, proposer2.address);
  const content = {
    transactions: [stampTransaction(Uint8Array.of(4, 5)), stampTransaction(Uint8Array.of(6))],
    evidence: [],
    appStateRoot: stateRoot,
    consensusProof: new Uint8Array(0),
  };
  const prove = (template: typeof template2, transactions: readonly Uint8Array[]) =>
    proofs.build(proposer2, template, transactions);
  const rules = (block: Block) =>
    checkBlock(
      { chainId: CHAIN_ID, verifier: ed25519SignatureVerifier, requirePq: false },
      context2,
      block,
    );

  it('the honest blocks pass the proposal check, the block rules and the full verifier', () => {
    const honest = buildBlock(template2, {
      ...content,
      consensusProof: prove(template2, content.transactions),
    });
    assert.equal(proofs.checkProposal(context2, honest), undefined);
    assert.equal(rules(honest), undefined);
    assert.equal(proofs.verifyCommitted(context1, block1, commitFor(block1), stateRoot).ok, true);
    assert.equal(proofs.verifyCommitted(context2, honest, commitFor(honest), stateRoot).ok, true);
  });

  for (const kind of PROOF_FORGERIES) {
    for (const variant of FORGERY_VARIANTS[kind]) {
      it(`${kind}/${variant} fails the verifier`, () => {
        const prng = new Prng(variant.length * 31 + kind.length);
        const forged = forgeValue(
          kind,
          { template: template2, content, context: context2, prove, prng },
          variant,
        );
        assert.equal(forged.name, `${kind}/${variant}`);
        const verdict = proofs.verifyCommitted(
          context2,
          forged.block,
          commitFor(forged.block),
          stateRoot,
        );
        assert.equal(verdict.ok, false, 'the full verifier accepted a forged block');
        const failed = verdict.parts.filter((part) => !part.ok).map((part) => part.part);
        if (forged.viaEngine) {
          // Only the proposer's parts are wrong: the block rules hold, so the engine proposes it.
          assert.equal(rules(forged.block), undefined);
          if (variant === 'state-root') {
            // Caught by re-execution (the application's check before a prevote).
            assert.equal(proofs.checkProposal(context2, forged.block), undefined);
            assert.deepEqual(failed, ['work']);
          } else {
            const error = proofs.checkProposal(context2, forged.block);
            assert.ok(
              error instanceof ConsensusError,
              'the proposal check accepted a forged proof',
            );
            if (kind === 'garbage') assert.deepEqual(failed, ['space', 'work', 'time']);
            else assert.deepEqual(failed, [kind]);
            assert.equal(error.detail.part, failed[0]);
          }
        } else {
          // A header rule is broken: the engine's block rules refuse it before any vote.
          assert.ok(rules(forged.block) !== undefined, 'the block rules accepted it');
          assert.equal(verdict.block.ok, false);
        }
      });
    }
  }
});

describe('invariant checker', () => {
  const { validators, set } = makeValidators([1, 1, 1, 1], 13);
  const genesis = makeGenesis(set);
  const chainId = 'hypermesh-test';

  function commitFor(block: Block, signers: number[]): QuorumCertificate {
    const hash = blockHash(block.header);
    return {
      height: block.header.height,
      round: 0,
      blockHash: hash,
      precommits: signers
        .map((i) =>
          makeVote(validators[i]!, 'precommit', block.header.height, 0, hash, GENESIS_TIME + 5),
        )
        .sort((a, b) => (a.validator < b.validator ? -1 : 1)),
    };
  }

  it('flags two correct nodes committing different blocks at one height (a constructed fork)', () => {
    const checker = new InvariantChecker(chainId, set, () => true);
    const blockA = makeBlock(genesis, validators[0]!.address, 1);
    const blockB = makeBlock(genesis, validators[0]!.address, 2);
    checker.onCommit(0, blockA, commitFor(blockA, [0, 1, 2]), 10);
    assert.equal(checker.violations.length, 0);
    checker.onCommit(1, blockA, commitFor(blockA, [1, 2, 3]), 11);
    assert.equal(checker.violations.length, 0);
    checker.onCommit(2, blockB, commitFor(blockB, [0, 2, 3]), 12);
    assert.deepEqual(
      checker.violations.map((v) => v.kind),
      ['agreement'],
    );
  });

  it('flags a commit without a valid quorum certificate', () => {
    const block = makeBlock(genesis, validators[0]!.address, 1);
    const cases: [QuorumCertificate, string][] = [
      [commitFor(block, [0, 1]), 'not more than 2/3'],
      [
        {
          ...commitFor(block, [0, 1, 2]),
          precommits: commitFor(block, [0, 1, 2]).precommits.map((v, i) =>
            i === 1 ? { ...v, signature: new Uint8Array(64) } : v,
          ),
        },
        'signature is invalid',
      ],
      [
        {
          ...commitFor(block, [0, 1, 2]),
          precommits: [
            ...commitFor(block, [0, 1]).precommits,
            commitFor(block, [0]).precommits[0]!,
          ],
        },
        'counted twice',
      ],
      [commitFor(makeBlock(genesis, validators[0]!.address, 9), [0, 1, 2]), 'another block'],
    ];
    for (const [commit, fragment] of cases) {
      const checker = new InvariantChecker(chainId, set, () => true);
      checker.onCommit(0, block, commit, 1);
      assert.equal(checker.violations[0]?.kind, 'invalid-quorum-certificate', fragment);
      assert.match(checker.violations[0]!.message, new RegExp(fragment));
    }
  });

  it('flags a correct validator signing two values, a repeated height and a changed store', () => {
    const checker = new InvariantChecker(chainId, set, () => true);
    const validator = validators[0]!;
    checker.onSigned(0, validator.address, makeVote(validator, 'prevote', 1, 0, null), 1);
    checker.onSigned(0, validator.address, makeVote(validator, 'prevote', 1, 0, null, 7), 2);
    assert.equal(checker.violations.length, 0);
    checker.onSigned(
      0,
      validator.address,
      makeVote(validator, 'prevote', 1, 0, new Uint8Array(32)),
      3,
    );
    assert.equal(checker.violations[0]?.kind, 'honest-equivocation');

    const block = makeBlock(genesis, validator.address, 1);
    const commit = commitFor(block, [0, 1, 2]);
    const again = new InvariantChecker(chainId, set, () => true);
    again.onCommit(0, block, commit, 1);
    again.onCommit(0, block, commit, 2);
    assert.equal(again.violations[0]?.kind, 'double-commit');

    const stores = new InvariantChecker(chainId, set, () => true);
    stores.onCommit(0, block, commit, 1);
    stores.checkStore(0, [{ block }], 2);
    assert.equal(stores.violations.length, 0);
    stores.checkStore(0, [{ block: { ...block } }], 3);
    assert.equal(stores.violations[0]?.kind, 'committed-block-changed');
    const tampered = { ...block, header: { ...block.header, appStateRoot: new Uint8Array(32) } };
    stores.checkStoresFully(new Map([[0, [{ block: tampered }]]]), 4);
    assert.equal(stores.violations.at(-1)?.kind, 'committed-block-changed');
  });

  it('with a changing set, checks each height against its own set and the nodes’ schedules', () => {
    // The model: validator 3 left the set before height 1's commit is checked.
    const reduced = createValidatorSet(
      validators.slice(0, 3).map((v) => ({ publicKey: v.publicKey, power: v.power })),
    );
    const checker = new InvariantChecker(
      chainId,
      () => reduced,
      () => true,
    );
    const block = makeBlock(genesis, validators[0]!.address, 1);
    checker.onCommit(0, block, commitFor(block, [0, 1, 3]), 1);
    assert.deepEqual(
      checker.violations.map((v) => v.kind),
      ['validator-set', 'invalid-quorum-certificate'],
    );
    assert.match(checker.violations[1]!.message, /non-validator/);

    const schedules = new InvariantChecker(chainId, set, () => true);
    schedules.onContext(0, genesis, 1);
    schedules.onContext(1, genesis, 2);
    assert.equal(schedules.violations.length, 0);
    const shifted = {
      ...genesis,
      schedule: { ...genesis.schedule, priorities: genesis.schedule.priorities.map((p) => p + 1n) },
    };
    schedules.onContext(2, shifted, 3);
    assert.equal(schedules.violations[0]?.kind, 'validator-set');
    schedules.onContext(
      3,
      { ...genesis, schedule: { ...genesis.schedule, validators: reduced } },
      4,
    );
    assert.match(schedules.violations[1]!.message, /another validator set/);
  });

  it('ignores what faulty nodes commit or sign', () => {
    const checker = new InvariantChecker(chainId, set, (node) => node !== 3);
    const blockA = makeBlock(genesis, validators[0]!.address, 1);
    const blockB = makeBlock(genesis, validators[0]!.address, 2);
    checker.onCommit(0, blockA, commitFor(blockA, [0, 1, 2]), 1);
    checker.onCommit(3, blockB, commitFor(blockB, [0, 1, 2]), 2);
    assert.equal(checker.violations.length, 0);
  });
});
