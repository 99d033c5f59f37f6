import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CborErrorCode, encodeCanonical } from '../../src/codec/cbor.js';
import { isHyperMeshError } from '../../src/codec/error.js';
import { SchemaError } from '../../src/codec/schema.js';
import { blockTemplate, buildBlock, checkBlock } from '../../src/consensus/block.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import { duplicateVoteEvidence } from '../../src/consensus/evidence.js';
import {
  checkValidatorUpdates,
  EVIDENCE_MAX_AGE,
  genesisContext,
  nextHeightContext,
  nextHeightSchedules,
  validatorsAt,
  type HeightContext,
  type HeightSchedules,
} from '../../src/consensus/height-context.js';
import { blockHash } from '../../src/consensus/messages.js';
import {
  genesisProposerSchedule,
  nextHeightProposerSchedule,
  proposerAt,
  updatedPriorities,
} from '../../src/consensus/proposer.js';
import type { Block, QuorumCertificate } from '../../src/consensus/types.js';
import {
  applyValidatorUpdates,
  createValidatorSet,
  MAX_TOTAL_VOTING_POWER,
  MAX_VALIDATOR_UPDATES,
  MAX_VALIDATORS,
  ValidatorUpdateRejection,
  type ValidatorSet,
  type ValidatorSetUpdate,
} from '../../src/consensus/validator-set.js';
import {
  decodeValidatorUpdates,
  encodeValidatorUpdates,
} from '../../src/consensus/validator-updates.js';
import { ed25519SignatureVerifier } from '../../src/consensus/verify.js';
import { MAX_PRECOMMITS } from '../../src/consensus/wire.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../../src/crypto/falcon.js';
import { sha256 } from '../../src/crypto/hash.js';
import {
  CHAIN_ID,
  GENESIS_HASH,
  GENESIS_TIME,
  makeBlock,
  makeValidators,
  makeVote,
  type TestValidator,
} from './sim/fixtures.js';

/*
 * Validator-set changes (docs/consensus.md "Validator-set changes"): the set arithmetic, the
 * proposer priorities of a changed set (golden values computed by hand below), refused
 * updates, the h + 2 rule, evidence against the set of its height, and the stored encoding.
 */

/** Three validators in address order: v0 < v1 < v2 (ties go to the lower address). */
const { validators: keys } = makeValidators([1, 1, 1, 1], 21);
const [v0, v1, v2, v3] = keys as [TestValidator, TestValidator, TestValidator, TestValidator];

const pqKey = (seed: number) => new Uint8Array(FALCON1024_PUBLIC_KEY_BYTES).fill(seed);
const rootOf = (validator: TestValidator) => sha256(validator.publicKey);

/** An update adding `validator` (with its FALCON key and storage root). */
function join(validator: TestValidator, power: number): ValidatorSetUpdate {
  return {
    publicKey: validator.publicKey,
    power,
    pqPublicKey: pqKey(7),
    storageRoot: rootOf(validator),
  };
}

function setOf(entries: [TestValidator, number][]): ValidatorSet {
  return createValidatorSet(entries.map(([v, power]) => ({ publicKey: v.publicKey, power })));
}

function refusal(run: () => unknown): ValidatorUpdateRejection {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConsensusError, String(error));
    assert.equal(error.code, ConsensusErrorCode.INVALID_VALIDATOR_SET);
    return error.detail.reason as ValidatorUpdateRejection;
  }
  assert.fail('the updates were accepted');
}

/** Schedules from genesis through `heights`, with `updates[h]` returned by block h. */
function walk(
  genesis: ValidatorSet,
  heights: number,
  updates: Record<number, ValidatorSetUpdate[]> = {},
): HeightSchedules[] {
  const context = genesisContext(genesis, { hash: GENESIS_HASH, time: GENESIS_TIME });
  const list: HeightSchedules[] = [context];
  for (let height = 1; height < heights; height++) {
    list.push(nextHeightSchedules(list.at(-1)!, updates[height] ?? []));
  }
  return list;
}

const proposers = (list: readonly HeightSchedules[]) =>
  list.map((s) => proposerAt(s.schedule, 0).address);

describe('validator-set updates', () => {
  it('adds, re-weights and removes, leaving the input set as it was', () => {
    const set = setOf([
      [v0, 5],
      [v1, 3],
      [v2, 2],
    ]);
    const change = applyValidatorUpdates(set, [
      join(v3, 4),
      { publicKey: v1.publicKey, power: 7 },
      { publicKey: v2.publicKey, power: 0 },
    ]);
    const powers = Object.fromEntries(
      change.validators.validators.map((v) => [v.address, v.power]),
    );
    assert.deepEqual(powers, { [v0.address]: 5, [v1.address]: 7, [v3.address]: 4 });
    assert.equal(change.validators.totalPower, 16);
    // After the updates (5 + 7 + 2 + 4) and before removing v2's 2.
    assert.equal(change.totalBeforeRemovals, 18);
    const added = change.validators.validators.find((v) => v.address === v3.address)!;
    assert.deepEqual(added.pqPublicKey, pqKey(7));
    assert.deepEqual(added.storageRoot, rootOf(v3));
    assert.equal(set.totalPower, 10);
    assert.equal(set.validators.length, 3);
    // Re-weighting may repeat an existing validator's FALCON key and storage root.
    const withKeys = applyValidatorUpdates(change.validators, [
      { ...join(v3, 1), pqPublicKey: pqKey(7) },
    ]);
    assert.equal(withKeys.validators.totalPower, 13);
  });

  it('refuses each kind of invalid update list, deterministically and with a reason', () => {
    const set = setOf([
      [v0, 1],
      [v1, 1],
    ]);
    const R = ValidatorUpdateRejection;
    const cases: [unknown, ValidatorUpdateRejection][] = [
      [null, R.MALFORMED],
      [[null], R.MALFORMED],
      [[{ publicKey: new Uint8Array(31), power: 1 }], R.MALFORMED],
      [[{ publicKey: v0.publicKey, power: -1 }], R.MALFORMED],
      [[{ publicKey: v0.publicKey, power: 1.5 }], R.MALFORMED],
      [[{ ...join(v2, 1), pqPublicKey: new Uint8Array(10) }], R.MALFORMED],
      [[{ ...join(v2, 1), storageRoot: new Uint8Array(31) }], R.MALFORMED],
      [[join(v2, 1), join(v2, 2)], R.DUPLICATE_KEY],
      [
        [
          { publicKey: v0.publicKey, power: 2 },
          { publicKey: v0.publicKey, power: 0 },
        ],
        R.DUPLICATE_KEY,
      ],
      [[{ publicKey: v2.publicKey, power: 1, storageRoot: rootOf(v2) }], R.MISSING_PQ_KEY],
      [[{ publicKey: v2.publicKey, power: 1, pqPublicKey: pqKey(1) }], R.MISSING_STORAGE_ROOT],
      [[{ publicKey: v0.publicKey, power: 2, pqPublicKey: pqKey(1) }], R.FIXED_FIELD_CHANGED],
      [[{ publicKey: v2.publicKey, power: 0 }], R.REMOVES_UNKNOWN],
      [[join(v2, MAX_TOTAL_VOTING_POWER + 1)], R.TOTAL_POWER_TOO_HIGH],
      [[join(v2, MAX_TOTAL_VOTING_POWER - 1)], R.TOTAL_POWER_TOO_HIGH],
      [
        [
          { publicKey: v0.publicKey, power: 0 },
          { publicKey: v1.publicKey, power: 0 },
        ],
        R.EMPTY_SET,
      ],
      [Array.from({ length: MAX_VALIDATOR_UPDATES + 1 }, () => join(v2, 1)), R.TOO_MANY_UPDATES],
    ];
    for (const [updates, reason] of cases) {
      const run = () => applyValidatorUpdates(set, updates as ValidatorSetUpdate[]);
      assert.equal(refusal(run), reason, JSON.stringify(updates)?.slice(0, 80));
      assert.equal(refusal(run), reason, 'the same answer again');
    }
    // Removing v0 while raising the total to exactly the maximum is fine; one more is not.
    const exact = applyValidatorUpdates(set, [
      { publicKey: v0.publicKey, power: 0 },
      join(v2, MAX_TOTAL_VOTING_POWER - 1),
    ]);
    assert.equal(exact.validators.totalPower, MAX_TOTAL_VOTING_POWER);
    assert.equal(MAX_VALIDATORS, MAX_PRECOMMITS, 'a set must fit in one commit');
  });

  it('never throws anything but a typed refusal for arbitrary input', () => {
    const set = setOf([
      [v0, 1],
      [v1, 2],
    ]);
    const entry = fc.record(
      {
        publicKey: fc.oneof(
          fc.constantFrom(v0.publicKey, v1.publicKey, v2.publicKey),
          fc.uint8Array({ minLength: 30, maxLength: 33 }),
        ),
        power: fc.oneof(fc.integer({ min: -2, max: 5 }), fc.double(), fc.constant(2 ** 60)),
        pqPublicKey: fc.oneof(fc.constant(pqKey(3)), fc.uint8Array({ maxLength: 4 })),
        storageRoot: fc.uint8Array({ minLength: 31, maxLength: 33 }),
      },
      { requiredKeys: ['publicKey', 'power'] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.array(entry, { maxLength: 5 }), fc.anything()), (updates) => {
        try {
          const change = applyValidatorUpdates(set, updates as ValidatorSetUpdate[]);
          assert.ok(change.validators.validators.length > 0);
        } catch (error) {
          assert.ok(error instanceof ConsensusError, String(error));
          assert.ok(Object.values(ValidatorUpdateRejection).includes(error.detail.reason as never));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('proposer priorities of a changed set (CometBFT rules, golden values)', () => {
  it('without updates, the schedule is the one of a fixed set, bit for bit', () => {
    const genesis = setOf([
      [v0, 5],
      [v1, 3],
      [v2, 2],
    ]);
    let schedule = genesisProposerSchedule(genesis);
    const list = walk(genesis, 40);
    for (const entry of list) {
      assert.deepEqual(entry.schedule.priorities, schedule.priorities);
      assert.equal(entry.schedule.validators, genesis);
      schedule = nextHeightProposerSchedule(schedule);
    }
  });

  it('a new validator starts at −(P + ⌊P/8⌋), two heights after the block that adds it', () => {
    // Genesis {v0: 1, v2: 1}; block 1 adds v1 with power 2.
    // h1: [0,0] +1 → [1,1], v0 (tie) → [-1, 1].  h2: [0, 2], v2 → [0, 0].
    // h3: P = 2 + 2 = 4, v1 starts at -4: [0, -4, 0], centred (avg ⌊-4/3⌋ = -2) → [2, -2, 2];
    //     elect: +[1,2,1] → [3, 0, 3], v0 (tie) → [-1, 0, 3].
    // h4: [0, 2, 4], v2 → [0, 2, 0].  h5: [1, 4, 1], v1 → [1, 0, 1].  h6: [2, 2, 2], v0 → [-2, 2, 2].
    const genesis = setOf([
      [v0, 1],
      [v2, 1],
    ]);
    const list = walk(genesis, 6, { 1: [join(v1, 2)] });
    assert.deepEqual(
      proposers(list),
      [v0, v2, v0, v2, v1, v0].map((v) => v.address),
    );
    assert.equal(list[1]!.schedule.validators, genesis, 'height 2 still has the genesis set');
    assert.deepEqual(list[1]!.schedule.priorities, [0n, 0n]);
    const change = applyValidatorUpdates(genesis, [join(v1, 2)]);
    assert.deepEqual(updatedPriorities(list[1]!.schedule, change), [2n, -2n, 2n]);
    assert.deepEqual(
      list.slice(2).map((s) => s.schedule.priorities),
      [
        [-1n, 0n, 3n],
        [0n, 2n, 0n],
        [1n, 0n, 1n],
        [-2n, 2n, 2n],
      ],
    );
  });

  it('removal and join in one block: survivors keep their priority, P counts the removed power', () => {
    // Genesis {v0: 8, v1: 4}. h1: [8, 4], v0 → [-4, 4].  h2: [4, 8], v1 → [4, -4].
    // Block 1 removes v0 and adds v2 (20): P = 12 + 20 = 32, v2 starts at -(32 + 4) = -36.
    // [v1: -4, v2: -36], centred (avg -20) → [16, -16]; elect: [20, 4], v1 → [-4, 4].
    // h4: [0, 24], v2 → [0, 0].  h5: [4, 20], v2 → [4, -4].  h6: [8, 16], v2 → [8, -8].
    // h7: [12, 12], v1 (tie) → [-12, 12].
    const genesis = setOf([
      [v0, 8],
      [v1, 4],
    ]);
    const updates = [{ publicKey: v0.publicKey, power: 0 }, join(v2, 20)];
    const list = walk(genesis, 7, { 1: updates });
    const change = applyValidatorUpdates(genesis, updates);
    assert.equal(change.totalBeforeRemovals, 32);
    assert.deepEqual(updatedPriorities(list[1]!.schedule, change), [16n, -16n]);
    assert.deepEqual(
      proposers(list),
      [v0, v1, v1, v2, v2, v2, v1].map((v) => v.address),
    );
    assert.deepEqual(
      list.slice(2).map((s) => s.schedule.priorities),
      [
        [-4n, 4n],
        [0n, 0n],
        [4n, -4n],
        [8n, -8n],
        [-12n, 12n],
      ],
    );
  });

  it('rescales priorities into 2 × the new total when the set shrinks', () => {
    // Genesis {v0: 100, v1: 1}. h1: [100, 1], v0 → [-1, 1].  h2: [99, 2], v0 → [-2, 2].
    // Block 1 removes v0, adds v2 (1): P = 101 + 1 = 102, v2 starts at -(102 + 12) = -114.
    // [v1: 2, v2: -114]: spread 116 > window 4, divided by ⌈116/4⌉ = 29 (toward zero) → [0, -3];
    // centred (avg ⌊-3/2⌋ = -2) → [2, -1]; elect: [3, 0], v1 → [1, 0].
    // h4: [2, 1], v1 → [0, 1].  h5: [1, 2], v2 → [1, 0].
    const genesis = setOf([
      [v0, 100],
      [v1, 1],
    ]);
    const updates = [{ publicKey: v0.publicKey, power: 0 }, join(v2, 1)];
    const list = walk(genesis, 5, { 1: updates });
    assert.deepEqual(list[1]!.schedule.priorities, [-2n, 2n]);
    assert.deepEqual(
      updatedPriorities(list[1]!.schedule, applyValidatorUpdates(genesis, updates)),
      [2n, -1n],
    );
    assert.deepEqual(
      list.slice(2).map((s) => [proposerAt(s.schedule, 0).address, s.schedule.priorities]),
      [
        [v1.address, [1n, 0n]],
        [v1.address, [0n, 1n]],
        [v2.address, [1n, 0n]],
      ],
    );
  });

  it('a re-weighted validator keeps its priority and proposes by its new power', () => {
    const genesis = setOf([
      [v0, 1],
      [v1, 1],
    ]);
    const list = walk(genesis, 3 + 40, { 1: [{ publicKey: v1.publicKey, power: 3 }] });
    const counts = new Map<string, number>();
    for (const address of proposers(list.slice(3)))
      counts.set(address, (counts.get(address) ?? 0) + 1);
    assert.equal(counts.get(v0.address), 10);
    assert.equal(counts.get(v1.address), 30);
  });
});

describe('when updates take effect (h + 2) and what each height checks', () => {
  const genesis = setOf([
    [v0, 1],
    [v1, 1],
    [v2, 1],
    [v3, 1],
  ]);
  const options = { chainId: CHAIN_ID, verifier: ed25519SignatureVerifier, requirePq: false };

  function commitBy(block: Block, signers: readonly TestValidator[]): QuorumCertificate {
    const hash = blockHash(block.header);
    const precommits = signers
      .map((v) => makeVote(v, 'precommit', block.header.height, 0, hash, block.header.time + 10))
      .sort((a, b) => (a.validator < b.validator ? -1 : 1));
    return { height: block.header.height, round: 0, blockHash: hash, precommits };
  }

  /** A chain where block 1 removes v3: heights 1 and 2 are decided by all four, 3 on by three. */
  function chain(): { contexts: HeightContext[]; blocks: Block[] } {
    const contexts = [genesisContext(genesis, { hash: GENESIS_HASH, time: GENESIS_TIME })];
    const blocks: Block[] = [];
    const removeV3 = [{ publicKey: v3.publicKey, power: 0 }];
    for (let height = 1; height <= 3; height++) {
      const context = contexts.at(-1)!;
      const block = makeBlock(context, proposerAt(context.schedule, 0).address, height);
      assert.equal(checkBlock(options, context, block), undefined, `block ${height}`);
      const signers = height <= 2 ? [v0, v1, v3] : [v0, v1, v2];
      blocks.push(block);
      contexts.push(
        nextHeightContext(context, block, commitBy(block, signers), height === 1 ? removeV3 : []),
      );
    }
    return { contexts, blocks };
  }

  it('the header, the commit and the last commit each use the set of their height', () => {
    const { contexts } = chain();
    const [c1, c2, c3, c4] = contexts as [
      HeightContext,
      HeightContext,
      HeightContext,
      HeightContext,
    ];
    assert.equal(c2.schedule.validators, genesis, 'block 1’s updates do not touch height 2');
    assert.equal(c3.schedule.validators.validators.length, 3);
    assert.ok(!c3.schedule.validators.indexOf.has(v3.address));
    assert.equal(c1.nextSchedule?.validators, genesis);
    assert.equal(c2.nextSchedule?.validators, c3.schedule.validators);
    // Block 3's last commit (of block 2) is signed by v3, a validator of height 2 only.
    assert.equal(c3.parent.kind === 'block' && c3.parent.validators, genesis);
    assert.ok(
      c3.parent.kind === 'block' &&
        c3.parent.commit.precommits.some((p) => p.validator === v3.address),
    );
    // Height 4's last commit is by the set of height 3: v3's precommit is not a validator's.
    const block4 = makeBlock(c4, proposerAt(c4.schedule, 0).address, 4);
    assert.equal(checkBlock(options, c4, block4), undefined);
    assert.deepEqual(block4.header.validatorsHash, c4.schedule.validators.hash);
    const withRemoved = {
      ...block4,
      lastCommit: { ...block4.lastCommit!, precommits: [...block4.lastCommit!.precommits] },
    };
    const c3Block = chain().blocks[2]!;
    const byRemoved = commitBy(c3Block, [v0, v3, v1]);
    assert.match(
      checkBlock(options, c4, { ...withRemoved, lastCommit: byRemoved })?.message ?? '',
      /last commit: precommit \d rejected: UNKNOWN_VALIDATOR/,
    );
    // A header naming the old set at height 3 is refused.
    const old = { ...block4, header: { ...block4.header, validatorsHash: genesis.hash } };
    assert.match(checkBlock(options, c4, old)?.message ?? '', /another validator set/);
  });

  it('evidence is checked against the set of its own height, at most EVIDENCE_MAX_AGE back', () => {
    const { contexts, blocks } = chain();
    const c4 = contexts[3]!;
    const proposer = proposerAt(c4.schedule, 0).address;
    const blockWith = (evidence: ReturnType<typeof duplicateVoteEvidence>) =>
      buildBlock(blockTemplate(CHAIN_ID, c4, proposer), {
        transactions: [],
        evidence: [evidence],
        appStateRoot: new Uint8Array(32),
        consensusProof: new Uint8Array(0),
      });
    // v3 equivocated at height 2, where it was a validator: still provable after its removal.
    const atTwo = duplicateVoteEvidence(
      makeVote(v3, 'prevote', 2, 0, null),
      makeVote(v3, 'prevote', 2, 0, blockHash(blocks[1]!.header)),
    );
    assert.equal(checkBlock(options, c4, blockWith(atTwo)), undefined);
    // At height 3 it was not a validator: its votes prove nothing.
    const atThree = duplicateVoteEvidence(
      makeVote(v3, 'prevote', 3, 0, null),
      makeVote(v3, 'prevote', 3, 0, blockHash(blocks[2]!.header)),
    );
    assert.match(checkBlock(options, c4, blockWith(atThree))?.message ?? '', /UNKNOWN_VALIDATOR/);
    // A context that no longer knows height 2's set refuses it as too old.
    const forgetful = { ...c4, history: [{ fromHeight: 3, validators: c4.schedule.validators }] };
    assert.match(checkBlock(options, forgetful, blockWith(atTwo))?.message ?? '', /older than/);

    assert.equal(validatorsAt(c4, 2), genesis);
    assert.equal(validatorsAt(c4, 3), c4.schedule.validators);
    let far: HeightSchedules = c4;
    for (let i = 0; i < EVIDENCE_MAX_AGE; i++) far = nextHeightSchedules(far);
    const farContext = { ...c4, ...far } as HeightContext;
    assert.equal(farContext.height, 4 + EVIDENCE_MAX_AGE);
    assert.equal(validatorsAt(farContext, 4), c4.schedule.validators);
    assert.equal(validatorsAt(farContext, 3), undefined);
    assert.equal(far.history?.length, 1, 'the history keeps one entry per set in the window');
  });

  it('checkValidatorUpdates refuses updates for the next set, not the current one', () => {
    const { contexts } = chain();
    const c2 = contexts[1]!;
    // At height 2, v3 is a validator, but the set block 2's updates apply to (height 3's) is
    // without it: removing it again is a removal of a non-validator.
    const error = checkValidatorUpdates(c2, [{ publicKey: v3.publicKey, power: 0 }]);
    assert.equal(error?.detail.reason, ValidatorUpdateRejection.REMOVES_UNKNOWN);
    assert.equal(checkValidatorUpdates(c2, []), undefined);
    assert.equal(checkValidatorUpdates(c2, [join(v3, 2)]), undefined);
    assert.throws(
      () => nextHeightSchedules(c2, [{ publicKey: v3.publicKey, power: 0 }]),
      ConsensusError,
    );
  });
});

describe('stored encoding of validator updates', () => {
  it('round-trips and accepts nothing else', () => {
    const updates = [join(v2, 5), { publicKey: v0.publicKey, power: 0 }];
    const bytes = encodeValidatorUpdates(updates);
    assert.deepEqual(decodeValidatorUpdates(bytes), updates);
    assert.deepEqual(encodeValidatorUpdates(decodeValidatorUpdates(bytes)), bytes);
    const bad = [
      new Uint8Array(0),
      bytes.subarray(0, bytes.length - 1),
      Uint8Array.of(...bytes, 0),
      encodeCanonical({ v: 2, updates: [{ publicKey: v0.publicKey, power: 1 }] }),
      encodeCanonical({ v: 1, updates: [] }),
      encodeCanonical({ v: 1, updates: [{ publicKey: v0.publicKey, power: 1, extra: 1 }] }),
      encodeCanonical({ v: 1, updates: [{ publicKey: v0.publicKey, power: -1 }] }),
    ];
    for (const input of bad) {
      assert.throws(
        () => decodeValidatorUpdates(input),
        (error: unknown) => {
          assert.ok(error instanceof ConsensusError);
          assert.equal(error.code, ConsensusErrorCode.MALFORMED_MESSAGE);
          return true;
        },
      );
    }
  });
});

describe('decoding a record a node sends', () => {
  it('reads at most the data items of MAX_VALIDATOR_UPDATES updates of 4 fields each', () => {
    // Every field present, with lengths the schema then refuses, keeps the bytes small: the
    // map, 2 keys and values, 20,000 × (map + 4 keys and values) = 180,005 items.
    const update = {
      publicKey: Uint8Array.of(1),
      power: 1,
      pqPublicKey: Uint8Array.of(2),
      storageRoot: Uint8Array.of(3),
    };
    const record = (count: number) =>
      encodeCanonical({ v: 1, updates: new Array(count).fill(update) });
    const causeOf = (input: Uint8Array): unknown => {
      try {
        decodeValidatorUpdates(input);
      } catch (error) {
        assert.ok(error instanceof ConsensusError);
        assert.equal(error.code, ConsensusErrorCode.MALFORMED_MESSAGE);
        return error.cause;
      }
      return assert.fail('decoded');
    };
    assert.ok(causeOf(record(MAX_VALIDATOR_UPDATES)) instanceof SchemaError);
    assert.ok(
      isHyperMeshError(causeOf(record(MAX_VALIDATOR_UPDATES + 1)), CborErrorCode.TOO_MANY_ITEMS),
    );
    // 1 MiB of empty maps as the list: refused when its head is read.
    const maps = new Uint8Array(1 << 20).fill(0xa0);
    const head = encodeCanonical({ v: 1, updates: [] }).slice(0, -1);
    const count = maps.length - head.length - 5;
    maps.set([...head, 0x9a, 0, count >> 16, (count >> 8) & 255, count & 255]);
    assert.ok(isHyperMeshError(causeOf(maps), CborErrorCode.TOO_MANY_ITEMS));
  });
});

describe('updates that are not a list', () => {
  it('are a typed refusal from every entry point, never a TypeError', () => {
    const context = genesisContext(setOf([[v0, 1]]), { hash: GENESIS_HASH, time: GENESIS_TIME });
    for (const updates of [null, 'x', {}, 7]) {
      const error = checkValidatorUpdates(context, updates as never);
      assert.equal(error?.detail.reason, ValidatorUpdateRejection.MALFORMED);
      assert.throws(
        () => nextHeightProposerSchedule(context.schedule, updates as never),
        ConsensusError,
      );
    }
    assert.equal(checkValidatorUpdates(context, undefined as never), undefined, 'undefined: none');
  });
});
