import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { genesisValidatorSet } from '../../src/consensus/genesis.js';
import { MAX_VALIDATOR_UPDATE_SPAN } from '../../src/consensus/net/index.js';
import { applyValidatorUpdates, type ValidatorSet } from '../../src/consensus/validator-set.js';
import { encodeValidatorUpdates } from '../../src/consensus/validator-updates.js';
import { encodeBlock } from '../../src/consensus/wire.js';
import type { StoredValidatorUpdates } from '../../src/storage/block-store.js';
import {
  MAX_SET_TRAIL_HEIGHTS,
  highestPossibleHeight,
} from '../../src/node/validator-set-trail.js';
import {
  CommittedRootError,
  CommittedRootErrorCode,
  CommittedRoots,
  type CommittedBlockSource,
  type VerifiedRootCache,
} from '../../src/node/verified-root.js';
import { signCommit } from '../consensus/pos-fixture.js';
import { CommittedBlocks, blockOf } from './committed-roots-fixture.js';

/**
 * What the validator set of a node-chosen height costs the committed-root check
 * (verified-root.ts, validator-set-trail.ts): a height the chain cannot have reached is refused
 * before anything is asked; otherwise the set follows from the nearest verified height and the
 * updates in between, fetched a window at a time with the event loop free between windows and
 * within one deadline, so the cost is the updates, not the height.
 */

function refused(code: CommittedRootErrorCode, height: number, reason: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof CommittedRootError, String(error));
    assert.equal(error.code, code, error.message);
    assert.equal(error.height, height);
    assert.match(error.message, reason);
    return true;
  };
}

/** A node's block source that records what it was asked. */
function recording(source: CommittedBlockSource) {
  const updateRanges: [number, number][] = [];
  const client: CommittedBlockSource = {
    getBlock: (height, options) => source.getBlock(height, options),
    validatorUpdates: (from, to, options) => {
      updateRanges.push([from, to]);
      return source.validatorUpdates(from, to, options);
    },
  };
  return { client, updateRanges };
}

describe('committed roots: the validator set of a height costs its updates', () => {
  let node: CommittedBlocks;
  let joining: CommittedBlocks['chain']['validators'][number];
  let next: ValidatorSet;

  before(async () => {
    node = await CommittedBlocks.create(4);
    joining = (await CommittedBlocks.create(1)).chain.validators[0]!;
    const update = {
      publicKey: joining.publicKey,
      pqPublicKey: joining.pq.publicKey,
      storageRoot: joining.plot.root,
      power: 10,
    };
    next = applyValidatorUpdates(genesisValidatorSet(node.chain.genesis), [update]).validators;
    // Block 40 adds a validator: the set changes at height 42.
    node.updates = [{ height: 40, bytes: encodeValidatorUpdates([update]) }];
  });

  /** Block `height` over `root`, naming and committed by the set after the change. */
  const commitAfterChange = async (height: number, root: Uint8Array): Promise<void> => {
    const block = blockOf(node.header(height, root, { validatorsHash: next.hash }));
    node.serve(
      block,
      await signCommit(node.chain, block, { signers: [...node.chain.validators, joining] }),
    );
  };

  /** A node that answers with a decodable block of height `height` naming a set of its own. */
  const liarAt = async (height: number) => {
    const commit = (await node.getBlock(42)).commit;
    const block = encodeBlock(
      blockOf(node.header(height, randomBytes(32), { validatorsHash: randomBytes(32) })),
    );
    const calls = { getBlock: 0, validatorUpdates: 0 };
    return {
      calls,
      getBlock: (at: number) => {
        calls.getBlock++;
        return Promise.resolve({ height: at, block, commit });
      },
      validatorUpdates: (): Promise<StoredValidatorUpdates[]> => {
        calls.validatorUpdates++;
        return Promise.resolve([]);
      },
    };
  };

  before(async () => {
    await commitAfterChange(42, randomBytes(32));
  });

  it('refuses a height the chain cannot have reached yet, asking the node nothing', async () => {
    const possible = highestPossibleHeight(node.chain.genesis, Date.now());
    for (const height of [Number.MAX_SAFE_INTEGER, possible + 1_000_000]) {
      const liar = await liarAt(height);
      await assert.rejects(
        new CommittedRoots(liar, node.chain.genesis).check(height, randomBytes(32)),
        refused(
          CommittedRootErrorCode.BLOCK_UNAVAILABLE,
          height,
          /no block of this chain can have that height yet: blocks are at least 1 ms apart/,
        ),
      );
      assert.deepEqual(liar.calls, { getBlock: 0, validatorUpdates: 0 }, `height ${height}`);
    }
    // The bound follows the clock it is given: a genesis an hour old admits an hour of
    // millisecond blocks and a day of clock error, not more.
    const hourLater = node.chain.genesis.genesisTime + 3_600_000;
    const bound = highestPossibleHeight(node.chain.genesis, hourLater);
    assert.equal(bound, 3_600_000 + 24 * 3_600_000 + 1);
    const liar = await liarAt(bound + 1);
    await assert.rejects(
      new CommittedRoots(liar, node.chain.genesis, { now: () => hourLater }).check(
        bound + 1,
        randomBytes(32),
      ),
      refused(CommittedRootErrorCode.BLOCK_UNAVAILABLE, bound + 1, /at most at height/),
    );
    assert.equal(liar.calls.getBlock, 0);
  });

  it('asks for the updates of a far height a window at a time, the event loop turning between windows', async () => {
    const height = 30_000_000;
    const liar = await liarAt(height);
    const ranges: [number, number][] = [];
    const turnsAt: number[] = [];
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    const source: CommittedBlockSource = {
      getBlock: liar.getBlock,
      validatorUpdates: (from, to) => {
        ranges.push([from, to]);
        turnsAt.push(turns);
        return liar.validatorUpdates();
      },
    };
    try {
      await assert.rejects(
        new CommittedRoots(source, node.chain.genesis).check(height, randomBytes(32)),
        refused(
          CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED,
          height,
          /block 30000000 names validator set [0-9a-f]{64}, the chain's updates give/,
        ),
      );
    } finally {
      spinning = false;
    }
    // Heights 1 .. H − 2 in windows the node API serves, in order, with no gap.
    const windows = Math.ceil((height - 2) / MAX_VALIDATOR_UPDATE_SPAN);
    assert.equal(ranges.length, windows);
    assert.deepEqual(ranges[0], [1, MAX_VALIDATOR_UPDATE_SPAN]);
    assert.deepEqual(ranges.at(-1)?.[1], height - 2);
    for (let i = 1; i < ranges.length; i++) {
      assert.equal(ranges[i]![0], ranges[i - 1]![1] + 1);
      assert.ok(turnsAt[i]! > turnsAt[i - 1]!, `the event loop turned before window ${i + 1}`);
    }
    // Nothing but the target block was fetched: no update, no handover.
    assert.equal(liar.calls.getBlock, 1);
  });

  it('gives up on a set it cannot derive within its deadline', async () => {
    const height = 30_000_000;
    const liar = await liarAt(height);
    let clock = Date.now();
    const slow: CommittedBlockSource = {
      getBlock: liar.getBlock,
      // Each window takes the node 10 s of the checker's clock.
      validatorUpdates: () => {
        clock += 10_000;
        return liar.validatorUpdates();
      },
    };
    const roots = new CommittedRoots(slow, node.chain.genesis, {
      now: () => clock,
      setTrailDeadlineMs: 60_000,
    });
    await assert.rejects(
      roots.check(height, randomBytes(32)),
      refused(
        CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED,
        height,
        /the validator sets of heights 1\.\.30000000 were not derived within 60000 ms/,
      ),
    );
    assert.equal(liar.calls.validatorUpdates, 6);
  });

  it('starts a later height from the verified ones: no handover fetched twice, only the updates since', async () => {
    const roots50 = randomBytes(32);
    const roots60 = randomBytes(32);
    const roots45 = randomBytes(32);
    await commitAfterChange(50, roots50);
    await commitAfterChange(60, roots60);
    await commitAfterChange(45, roots45);
    const cache: VerifiedRootCache = new Map();
    const first = recording(node);
    node.fetched.length = 0;
    await new CommittedRoots(first.client, node.chain.genesis, { cache }).check(50, roots50);
    // Block 42 starts the set: its handover was checked, and it is a verified header now.
    assert.deepEqual(node.fetched, [50, 42]);
    assert.deepEqual(first.updateRanges, [[1, 48]]);
    assert.deepEqual([...cache.keys()].sort(), [42, 50]);
    assert.equal(cache.get(42)?.validators.hash, cache.get(50)?.validators.hash);

    // Another node's checker sharing the cache: from height 50 on, with the set of 50.
    const second = recording(node);
    node.fetched.length = 0;
    await new CommittedRoots(second.client, node.chain.genesis, { cache }).check(60, roots60);
    assert.deepEqual(node.fetched, [60]);
    assert.deepEqual(second.updateRanges, [[49, 58]]);
    // A height between two verified ones starts from the lower one (42).
    node.fetched.length = 0;
    await new CommittedRoots(second.client, node.chain.genesis, { cache }).check(45, roots45);
    assert.deepEqual(node.fetched, [45]);
    assert.deepEqual(second.updateRanges.at(-1), [41, 43]);
  });

  it('still refuses what a verified starting point does not vouch for', async () => {
    const cache: VerifiedRootCache = new Map();
    const root = randomBytes(32);
    await commitAfterChange(62, randomBytes(32));
    await commitAfterChange(70, root);
    const root50 = randomBytes(32);
    await commitAfterChange(50, root50);
    await new CommittedRoots(node, node.chain.genesis, { cache }).check(50, root50);
    // A node that invents an update after height 50: the first block of its set is signed by
    // none of the verified set, so the invented set is refused.
    const stranger = (await CommittedBlocks.create(1)).chain.validators[0]!;
    const invented = {
      getBlock: (height: number) => node.getBlock(height),
      validatorUpdates: async (from: number, to: number) => [
        ...(await node.validatorUpdates(from, to)),
        ...(from <= 60 && to >= 60
          ? [
              {
                height: 60,
                bytes: encodeValidatorUpdates([
                  {
                    publicKey: stranger.publicKey,
                    pqPublicKey: stranger.pq.publicKey,
                    storageRoot: stranger.plot.root,
                    power: 100,
                  },
                ]),
              },
            ]
          : []),
      ],
    };
    await assert.rejects(
      new CommittedRoots(invented, node.chain.genesis, { cache }).check(70, root),
      refused(
        CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED,
        70,
        /\(header-names-another-set at height 62\)/,
      ),
    );
    // The honest node's updates from the same starting point give the set block 70 names.
    await new CommittedRoots(node, node.chain.genesis, { cache }).check(70, root);
  });
});

/**
 * A node that pages its updates as the node API client passes them on (`onPage`, one page at a
 * time), `pageAt` giving page n of a window; `served` counts the pages asked for.
 */
function paging(
  getBlock: CommittedBlockSource['getBlock'],
  pageAt: (
    from: number,
    to: number,
    n: number,
  ) => { page: StoredValidatorUpdates[]; last: boolean },
) {
  const served = { pages: 0 };
  const client: CommittedBlockSource = {
    getBlock,
    validatorUpdates: async (from, to, options) => {
      const kept: StoredValidatorUpdates[] = [];
      for (let n = 0; n < 1_000; n++) {
        served.pages++;
        const { page, last } = pageAt(from, to, n);
        if (options?.onPage === undefined) kept.push(...page);
        else await options.onPage(page);
        if (last) break;
      }
      return kept;
    },
  };
  return { client, served };
}

describe('committed roots: what one node can make a check cost', () => {
  let node: CommittedBlocks;
  /** setAt[k]: the set from height 10k + 2 on (a change every 10 blocks, as a staking chain's). */
  const setAt: ValidatorSet[] = [];
  const CHANGES = 12;
  const tip = 10 * CHANGES + 5;
  const roots = new Map<number, Uint8Array>();

  const serveAt = async (height: number, set: ValidatorSet): Promise<void> => {
    const root = randomBytes(32);
    roots.set(height, root);
    const block = blockOf(node.header(height, root, { validatorsHash: set.hash }));
    node.serve(block, await signCommit(node.chain, block));
  };

  /** A node that answers at `height` with a block naming a set of its own. */
  const liarBlock = (height: number) => async () => {
    const block = blockOf(
      node.header(height, randomBytes(32), { validatorsHash: randomBytes(32) }),
    );
    return { height, block: encodeBlock(block), commit: (await node.getBlock(12)).commit };
  };

  before(async () => {
    node = await CommittedBlocks.create(4);
    let set = genesisValidatorSet(node.chain.genesis);
    setAt[0] = set;
    const first = set.validators[0]!;
    for (let k = 1; k <= CHANGES; k++) {
      const update = [{ publicKey: first.publicKey, power: 11 + (k % 2) }];
      set = applyValidatorUpdates(set, update).validators;
      setAt[k] = set;
      node.updates.push({ height: 10 * k, bytes: encodeValidatorUpdates(update) });
      await serveAt(10 * k + 2, set);
    }
    for (const height of [tip, tip + 1, tip + 2]) await serveAt(height, set);
    await serveAt(65, setAt[6]!);
  });

  it('checks the deadline on every page of a window', async () => {
    let clock = Date.now();
    const { client, served } = paging(liarBlock(1_000), (from, _to, n) => {
      // Each page takes the node 2 s of the checker's clock.
      clock += 2_000;
      return { page: [], last: n === 49 };
    });
    await assert.rejects(
      new CommittedRoots(client, node.chain.genesis, {
        now: () => clock,
        setTrailDeadlineMs: 1_000,
      }).check(1_000, randomBytes(32)),
      refused(CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED, 1_000, /not derived within 1000 ms/),
    );
    assert.equal(served.pages, 1);
  });

  it('refuses a window continued past pages without changes', async () => {
    const { client, served } = paging(liarBlock(1_000), (from, _to, n) => ({
      page: [],
      last: n === 49,
    }));
    await assert.rejects(
      new CommittedRoots(client, node.chain.genesis).check(1_000, randomBytes(32)),
      refused(
        CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED,
        1_000,
        /the node sent 2 pages of validator updates for 1 windows of heights and 0 set changes/,
      ),
    );
    assert.equal(served.pages, 2);
    // An honest node's pages are full of changes, each checked: one change a page passes.
    const honest = paging(
      (height) => node.getBlock(height),
      (from, to, n) => {
        const page = node.updates.filter((e) => e.height >= from && e.height <= to).slice(n, n + 1);
        return { page, last: n + 1 >= CHANGES };
      },
    );
    await new CommittedRoots(honest.client, node.chain.genesis).check(tip, roots.get(tip)!);
    assert.equal(honest.served.pages, CHANGES);
  });

  it('refuses a trail longer than MAX_SET_TRAIL_HEIGHTS before asking for it', async () => {
    const height = MAX_SET_TRAIL_HEIGHTS + 3;
    const now = node.chain.genesis.genesisTime + 2 * MAX_SET_TRAIL_HEIGHTS;
    const { client, served } = paging(liarBlock(height), () => ({ page: [], last: true }));
    await assert.rejects(
      new CommittedRoots(client, node.chain.genesis, { now: () => now }).check(
        height,
        randomBytes(32),
      ),
      refused(CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED, height, /more than the 1000000000/),
    );
    assert.equal(served.pages, 0);
  });

  it("keeps the highest verified heights when another node's trail goes to an old one", async () => {
    const cache: VerifiedRootCache = new Map();
    const honest = new CommittedRoots(node, node.chain.genesis, { cache, maxCached: 4 });
    node.fetched.length = 0;
    await honest.check(tip, roots.get(tip)!);
    assert.equal(node.fetched.length, CHANGES + 1, 'cold: every handover and the tip');
    node.fetched.length = 0;
    await honest.check(tip + 1, roots.get(tip + 1)!);
    assert.deepEqual(node.fetched, [tip + 1]);
    // A genuine old answer, 6 changes above the genesis, checked by another node's checker.
    await new CommittedRoots(node, node.chain.genesis, { cache, maxCached: 4 }).check(
      65,
      roots.get(65)!,
    );
    assert.ok(cache.has(tip + 1), `the tip is kept: ${[...cache.keys()].join(', ')}`);
    node.fetched.length = 0;
    await honest.check(tip + 2, roots.get(tip + 2)!);
    assert.deepEqual(node.fetched, [tip + 2], 'no handover derived again');
  });
});
