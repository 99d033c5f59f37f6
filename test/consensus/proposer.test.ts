import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  genesisProposerSchedule,
  nextHeightProposerSchedule,
  proposerAt,
  proposerElections,
  type ProposerSchedule,
} from '../../src/consensus/proposer.js';
import { createValidatorSet, type ValidatorSet } from '../../src/consensus/validator-set.js';
import { makeValidators } from './sim/fixtures.js';

function proposersOverHeights(set: ValidatorSet, heights: number): string[] {
  const names: string[] = [];
  let schedule: ProposerSchedule = genesisProposerSchedule(set);
  for (let height = 0; height < heights; height++) {
    names.push(proposerAt(schedule, 0).address);
    schedule = nextHeightProposerSchedule(schedule);
  }
  return names;
}

describe('proposer rotation (proposer priorities)', () => {
  it('matches CometBFT TestProposerSelection1 (foo 1000, bar 300, baz 330; 99 heights)', () => {
    // Names by address order, as CometBFT's byte addresses "bar" < "baz" < "foo" order them
    // for tie-breaks.
    const { validators } = makeValidators([1, 1, 1], 11);
    const [bar, baz, foo] = validators as [
      (typeof validators)[0],
      (typeof validators)[0],
      (typeof validators)[0],
    ];
    const powers = new Map([
      [foo.address, 1000],
      [bar.address, 300],
      [baz.address, 330],
    ]);
    const set = createValidatorSet(
      validators.map((v) => ({ publicKey: v.publicKey, power: powers.get(v.address)! })),
    );
    const names = new Map([
      [foo.address, 'foo'],
      [bar.address, 'bar'],
      [baz.address, 'baz'],
    ]);
    const expected =
      'foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar ' +
      'foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar ' +
      'foo baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz ' +
      'foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo ' +
      'foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo';
    const actual = proposersOverHeights(set, 99)
      .map((address) => names.get(address))
      .join(' ');
    assert.equal(actual, expected);
  });

  it('with equal power, rotates through validators in address order', () => {
    const { set } = makeValidators([1, 1, 1, 1, 1]);
    const order = proposersOverHeights(set, 10);
    const addresses = set.validators.map((v) => v.address);
    assert.deepEqual(order, [...addresses, ...addresses]);
  });

  it('proposes in proportion to voting power, exactly over each cycle of total power', () => {
    const { set } = makeValidators([1, 2, 3, 7, 13]);
    const cycles = 20;
    const counts = new Map<string, number>();
    for (const address of proposersOverHeights(set, cycles * set.totalPower)) {
      counts.set(address, (counts.get(address) ?? 0) + 1);
    }
    for (const validator of set.validators) {
      assert.equal(counts.get(validator.address), cycles * validator.power, validator.address);
    }
  });

  it('rounds of one height follow the same weighted rotation', () => {
    const { set } = makeValidators([4, 1, 2]);
    const schedule = genesisProposerSchedule(set);
    const counts = new Map<string, number>();
    const rounds = 7 * 30;
    for (let round = 0; round < rounds; round++) {
      const address = proposerAt(schedule, round).address;
      counts.set(address, (counts.get(address) ?? 0) + 1);
    }
    for (const validator of set.validators) {
      assert.equal(counts.get(validator.address), 30 * validator.power);
    }
  });

  it('round r of a height is the proposer r elections later', () => {
    const { set } = makeValidators([5, 3, 2, 1]);
    let schedule = genesisProposerSchedule(set);
    for (let height = 0; height < 5; height++) {
      let walk = schedule;
      for (let round = 0; round < 12; round++) {
        assert.equal(proposerAt(schedule, round).address, proposerAt(walk, 0).address);
        walk = nextHeightProposerSchedule(walk);
      }
      schedule = nextHeightProposerSchedule(schedule);
    }
  });

  it('is deterministic and does not change the schedule it reads', () => {
    const { set } = makeValidators([3, 1, 1]);
    const schedule = genesisProposerSchedule(set);
    const priorities = [...schedule.priorities];
    const first = proposerAt(schedule, 17).address;
    assert.equal(proposerAt(schedule, 17).address, first);
    assert.equal(proposerAt(genesisProposerSchedule(set), 17).address, first);
    assert.deepEqual(schedule.priorities, priorities);
    // Priorities stay centred near zero and within the CometBFT window.
    let walk = schedule;
    for (let i = 0; i < 500; i++) walk = nextHeightProposerSchedule(walk);
    const max = walk.priorities.reduce((a, b) => (a > b ? a : b));
    const min = walk.priorities.reduce((a, b) => (a < b ? a : b));
    assert.ok(max - min <= 2n * BigInt(set.totalPower) + BigInt(set.totalPower));
  });
});

/**
 * proposer(h, r) from scratch, written out independently of proposer.ts: CometBFT
 * `CopyIncrementProposerPriority(r)` — rescale into 2 × total power (truncating division),
 * centre on the floored average, then r elections (highest priority, ties to the lower index).
 */
function referenceProposerIndex(schedule: ProposerSchedule, round: number): number {
  if (round === 0) return schedule.proposerIndex;
  const powers = schedule.validators.validators.map((v) => BigInt(v.power));
  const total = BigInt(schedule.validators.totalPower);
  let priorities = [...schedule.priorities];
  const max = priorities.reduce((a, b) => (a > b ? a : b));
  const min = priorities.reduce((a, b) => (a < b ? a : b));
  const window = 2n * total;
  if (max - min > window) {
    const ratio = (max - min + window - 1n) / window;
    priorities = priorities.map((p) => p / ratio);
  }
  const sum = priorities.reduce((a, b) => a + b, 0n);
  const n = BigInt(priorities.length);
  const average = sum % n !== 0n && sum < 0n ? sum / n - 1n : sum / n;
  priorities = priorities.map((p) => p - average);
  let proposer = 0;
  for (let election = 0; election < round; election++) {
    priorities = priorities.map((p, i) => p + powers[i]!);
    proposer = 0;
    for (let i = 1; i < priorities.length; i++) {
      if (priorities[i]! > priorities[proposer]!) proposer = i;
    }
    priorities[proposer] = priorities[proposer]! - total;
  }
  return proposer;
}

describe('proposer(h, r) for many rounds (issue 3, F1)', () => {
  it('extends from the highest round computed: distinct rounds cost the highest once', () => {
    const { set } = makeValidators([5, 3, 2, 1, 1, 7]);
    const schedule = genesisProposerSchedule(set);
    assert.equal(proposerElections(schedule), 0);
    proposerAt(schedule, 0);
    assert.equal(proposerElections(schedule), 0);
    proposerAt(schedule, 300);
    assert.equal(proposerElections(schedule), 300);
    for (const round of [120, 7, 299, 300, 1]) proposerAt(schedule, round);
    assert.equal(proposerElections(schedule), 300);
    proposerAt(schedule, 450);
    assert.equal(proposerElections(schedule), 450);
    // Another schedule object keeps its own elections.
    assert.equal(proposerElections(genesisProposerSchedule(set)), 0);
  });

  it('refuses a round that is not a non-negative integer', () => {
    const { set } = makeValidators([1, 1]);
    const schedule = genesisProposerSchedule(set);
    for (const round of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      assert.throws(() => proposerAt(schedule, round), RangeError);
    }
  });

  it('answers rounds in any order exactly as elections from scratch do (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 9 }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 1_000 }),
        (powers, heights, rounds, seed) => {
          const { set } = makeValidators(powers, seed);
          let schedule = genesisProposerSchedule(set);
          for (let height = 0; height < heights; height++) {
            schedule = nextHeightProposerSchedule(schedule);
          }
          for (const round of rounds) {
            const expected = set.validators[referenceProposerIndex(schedule, round)]!.address;
            assert.equal(proposerAt(schedule, round).address, expected, `round ${round}`);
          }
          assert.equal(proposerElections(schedule), Math.max(...rounds));
        },
      ),
      { numRuns: 60 },
    );
  });
});
