import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { QueryResponse } from '../../src/consensus/app.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import { genesisValidatorSet } from '../../src/consensus/genesis.js';
import { applyValidatorUpdates } from '../../src/consensus/validator-set.js';
import { encodeValidatorUpdates } from '../../src/consensus/validator-updates.js';
import { CliError } from '../../src/node/cli-error.js';
import { ProvenReader } from '../../src/node/stake-ledger.js';
import {
  CommittedRootError,
  CommittedRootErrorCode,
  CommittedRoots,
  withCommittedRoots,
  type CommittedBlockSource,
  type VerifiedRootCache,
} from '../../src/node/verified-root.js';
import { readZones } from '../../src/node/dns-tools.js';
import { readKv } from '../../src/node/kv-tools.js';
import { readProvenBalance } from '../../src/node/wallet-ledger.js';
import { signCommit } from '../consensus/pos-fixture.js';
import { CommittedBlocks, blockOf } from './committed-roots-fixture.js';

/**
 * The verified state root (src/node/verified-root.ts): a node's answer at height H is taken only
 * when block H's header carries its state root and a commit by more than 2/3 of the validator
 * set of H signs that header. A fake node serves real headers and commits (Ed25519 +
 * FALCON-1024) of a test chain, then lies in each way the check must catch.
 */

function refused(code: CommittedRootErrorCode, height: number | null, reason?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(
      error instanceof CommittedRootError,
      `expected a CommittedRootError: ${String(error)}`,
    );
    assert.equal(error.code, code, error.message);
    assert.equal(error.height, height);
    assert.match(
      error.message,
      new RegExp(
        `^state root at height ${height ?? '-'} is not committed by the validator quorum: `,
      ),
    );
    if (reason !== undefined) assert.match(error.message, reason);
    assert.equal(error.exitCode, 1);
    return true;
  };
}

describe('verified state root', () => {
  let node: CommittedBlocks;
  let stranger: CommittedBlocks;
  before(async () => {
    node = await CommittedBlocks.create(4);
    stranger = await CommittedBlocks.create(4);
  });

  it('accepts the root block H commits, and pays for a height once', async () => {
    const root = randomBytes(32);
    await node.commit(5, root);
    const cache: VerifiedRootCache = new Map();
    const roots = new CommittedRoots(node, node.chain.genesis, { cache });
    node.fetched.length = 0;
    await roots.check(5, root);
    await roots.check(5, root);
    // A second checker sharing the cache (another node of the same command) asks nothing.
    await new CommittedRoots(node, node.chain.genesis, { cache }).check(5, root);
    assert.deepEqual(node.fetched, [5]);
    // A quorum of exactly 3 of 4 (30 of 40 power) is enough.
    const three = randomBytes(32);
    await node.commit(6, three, { signers: node.chain.validators.slice(1) });
    await roots.check(6, three);
  });

  it("shares only verified headers between nodes: a lying or stalling node's check is its own", async () => {
    const root = randomBytes(32);
    await node.commit(70, root);
    // Nodes that answer a query with the genuine (70, root), then lie or stall on the block.
    const garbage: CommittedBlockSource = {
      getBlock: (height) =>
        Promise.resolve({ height, block: Uint8Array.of(1, 2, 3), commit: Uint8Array.of(4) }),
      validatorUpdates: () => Promise.resolve([]),
    };
    const stall: CommittedBlockSource = {
      getBlock: () => new Promise<never>(() => undefined),
      validatorUpdates: () => Promise.resolve([]),
    };

    // One cache for every node, as an operator session and the revocation check keep it.
    let cache: VerifiedRootCache = new Map();
    node.fetched.length = 0;
    const [lied, honest] = await Promise.allSettled([
      new CommittedRoots(garbage, node.chain.genesis, { cache }).check(70, root),
      new CommittedRoots(node, node.chain.genesis, { cache }).check(70, root),
    ]);
    assert.equal(lied.status, 'rejected');
    refused(CommittedRootErrorCode.BLOCK_UNAVAILABLE, 70)((lied as PromiseRejectedResult).reason);
    assert.equal(honest.status, 'fulfilled', String((honest as PromiseRejectedResult).reason));
    assert.deepEqual(node.fetched, [70], 'the honest node was asked for its own block');
    // What the honest node proved is shared: the lying node's next check of 70 asks nothing.
    await new CommittedRoots(garbage, node.chain.genesis, { cache }).check(70, root);

    cache = new Map();
    node.fetched.length = 0;
    const stalled = new CommittedRoots(stall, node.chain.genesis, { cache }).check(70, root);
    stalled.catch(() => undefined);
    const checked = new CommittedRoots(node, node.chain.genesis, { cache }).check(70, root);
    // Asked at once, not after the stalling node's check (which never ends).
    assert.deepEqual(node.fetched, [70]);
    await checked;
    assert.deepEqual(cache.get(70)?.appStateRoot, Uint8Array.from(root));
  });

  it("gives the committed header's time, verified once with its root", async () => {
    const root = randomBytes(32);
    await node.commit(40, root);
    const roots = new CommittedRoots(node, node.chain.genesis);
    node.fetched.length = 0;
    await roots.check(40, root);
    assert.equal(await roots.blockTime(40), node.chain.genesis.genesisTime + 40 * 1000);
    assert.deepEqual(node.fetched, [40]);
    // A height it has not verified is verified first: a forged header's time is not taken.
    await node.commit(41, randomBytes(32), { signers: node.chain.validators.slice(2) });
    await assert.rejects(roots.blockTime(41), refused(CommittedRootErrorCode.INVALID_COMMIT, 41));
  });

  it('keeps at most maxCached heights, forgetting the one taken in first', async () => {
    const roots = [randomBytes(32), randomBytes(32), randomBytes(32)];
    for (const [i, root] of roots.entries()) await node.commit(30 + i, root);
    const cache: VerifiedRootCache = new Map();
    const checker = new CommittedRoots(node, node.chain.genesis, { cache, maxCached: 2 });
    for (const [i, root] of roots.entries()) await checker.check(30 + i, root);
    assert.deepEqual([...cache.keys()], [31, 32]);
    node.fetched.length = 0;
    await checker.check(30, roots[0]!);
    assert.deepEqual(node.fetched, [30], 'a forgotten height is asked again');
    assert.throws(
      () => new CommittedRoots(node, node.chain.genesis, { maxCached: 0 }),
      /maxCached/,
    );
  });

  it('refuses a state root that no commit signs', async () => {
    const root = randomBytes(32);
    await node.commit(7, root);
    const roots = new CommittedRoots(node, node.chain.genesis);
    // The node answers with another root than its committed header carries.
    await assert.rejects(
      roots.check(7, randomBytes(32)),
      refused(CommittedRootErrorCode.ROOT_MISMATCH, 7, /the root block 7's committed header/),
    );
    // The node rewrites the header to carry its root and serves the honest commit with it.
    const honest = blockOf(node.header(8, root));
    const commit = await signCommit(node.chain, honest);
    const lie = randomBytes(32);
    node.serve(blockOf({ ...honest.header, appStateRoot: lie }), commit);
    await assert.rejects(
      roots.check(8, lie),
      refused(CommittedRootErrorCode.INVALID_COMMIT, 8, /commit is for another block/),
    );
  });

  it('refuses a forged or insufficient commit', async () => {
    const roots = new CommittedRoots(node, node.chain.genesis);
    // Two of four validators: 20 of 40 power is not more than 2/3.
    const few = randomBytes(32);
    await node.commit(9, few, { signers: node.chain.validators.slice(0, 2) });
    await assert.rejects(
      roots.check(9, few),
      refused(CommittedRootErrorCode.INVALID_COMMIT, 9, /the commit of block 9/),
    );
    // Precommits by keys the chain does not know, for this very header.
    const strangers = randomBytes(32);
    const block = blockOf(node.header(10, strangers));
    node.serve(block, await signCommit(stranger.chain, block));
    await assert.rejects(
      roots.check(10, strangers),
      refused(CommittedRootErrorCode.INVALID_COMMIT, 10),
    );
    // A real commit with one Ed25519 signature altered.
    const forged = randomBytes(32);
    const signed = blockOf(node.header(11, forged));
    const commit = await signCommit(node.chain, signed, {
      signers: node.chain.validators.slice(0, 3),
    });
    const first = commit.precommits[0]!;
    const signature = Uint8Array.from(first.signature);
    signature[0] = signature[0]! ^ 1;
    node.serve(signed, {
      ...commit,
      precommits: [{ ...first, signature }, ...commit.precommits.slice(1)],
    });
    await assert.rejects(
      roots.check(11, forged),
      refused(CommittedRootErrorCode.INVALID_COMMIT, 11),
    );
  });

  it('refuses a header from another chain', async () => {
    const roots = new CommittedRoots(node, node.chain.genesis);
    // Another chain id, committed by this chain's own validators.
    const root = randomBytes(32);
    const other = blockOf(node.header(12, root, { chainId: 'other-chain' }));
    node.serve(other, await signCommit(node.chain, other));
    await assert.rejects(
      roots.check(12, root),
      refused(CommittedRootErrorCode.WRONG_CHAIN, 12, /"other-chain", not "hypermesh-pos-test"/),
    );
    // A fork with the same chain id and its own validators: its header names its own set,
    // which no handover from the genesis set leads to.
    const forked = randomBytes(32);
    const block = blockOf(stranger.header(13, forked));
    node.serve(block, await signCommit(stranger.chain, block));
    await assert.rejects(
      roots.check(13, forked),
      refused(
        CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED,
        13,
        /block 13 names validator set [0-9a-f]{64}, the chain's updates give/,
      ),
    );
    // The node claims an update that would produce that set: the handover check refuses it.
    node.updates = [
      {
        height: 11,
        bytes: encodeValidatorUpdates([
          ...node.chain.validators.map((v) => ({ publicKey: v.publicKey, power: 0 })),
          ...stranger.chain.validators.map((v) => ({
            publicKey: v.publicKey,
            pqPublicKey: v.pq.publicKey,
            storageRoot: v.plot.root,
            power: 10,
          })),
        ]),
      },
    ];
    try {
      await assert.rejects(
        roots.check(13, forked),
        refused(
          CommittedRootErrorCode.VALIDATOR_SET_UNVERIFIED,
          13,
          /\(trusted-power-too-low at height 13\): block 13 was signed by 0 of the 40 voting power of the previous set/,
        ),
      );
    } finally {
      node.updates = [];
    }
  });

  it('follows a validator-set change the light-client rule accepts', async () => {
    const joining = stranger.chain.validators[0]!;
    const update = {
      publicKey: joining.publicKey,
      pqPublicKey: joining.pq.publicKey,
      storageRoot: joining.plot.root,
      power: 10,
    };
    const next = applyValidatorUpdates(genesisValidatorSet(node.chain.genesis), [update]);
    node.updates = [{ height: 40, bytes: encodeValidatorUpdates([update]) }];
    try {
      const root = randomBytes(32);
      const block = blockOf(node.header(42, root, { validatorsHash: next.validators.hash }));
      node.serve(
        block,
        await signCommit(node.chain, block, { signers: [...node.chain.validators, joining] }),
      );
      await new CommittedRoots(node, node.chain.genesis).check(42, root);
      // The new set's commit must still be a quorum of the new set (40 of 50 > 2/3 holds; the
      // joining validator and two others, 30 of 50, does not).
      const weak = randomBytes(32);
      const thin = blockOf(node.header(43, weak, { validatorsHash: next.validators.hash }));
      node.serve(
        thin,
        await signCommit(node.chain, thin, {
          signers: [...node.chain.validators.slice(0, 2), joining],
        }),
      );
      await assert.rejects(
        new CommittedRoots(node, node.chain.genesis).check(43, weak),
        refused(CommittedRootErrorCode.INVALID_COMMIT, 43),
      );
    } finally {
      node.updates = [];
    }
  });

  it('refuses an answer without a height and a block the node does not have; retries later', async () => {
    const roots = new CommittedRoots(node, node.chain.genesis);
    await assert.rejects(
      roots.check(null, randomBytes(32)),
      refused(CommittedRootErrorCode.NO_HEIGHT, null),
    );
    const root = randomBytes(32);
    await assert.rejects(
      roots.check(20, root),
      refused(CommittedRootErrorCode.BLOCK_UNAVAILABLE, 20, /no block 20/),
    );
    await node.commit(20, root);
    await roots.check(20, root);
  });

  it('proven readers take answers only through a client that checks roots', async () => {
    const root = randomBytes(32);
    await node.commit(30, root);
    let answerRoot: Uint8Array = root;
    let answerHeight = 30;
    const plain = {
      getBlock: (height: number) => node.getBlock(height),
      validatorUpdates: (from: number, to: number) => node.validatorUpdates(from, to),
      query: (): Promise<QueryResponse> =>
        Promise.resolve({ height: answerHeight, value: null, stateRoot: answerRoot }),
    } as unknown as NodeRpcClient;
    assert.throws(
      () => new ProvenReader(plain, 30),
      (error: unknown) => error instanceof CliError && /checks state roots/.test(error.message),
    );
    await assert.rejects(
      readProvenBalance(plain, new Uint8Array(32)),
      (error: unknown) => error instanceof CliError && /checks state roots/.test(error.message),
    );
    const client = withCommittedRoots(plain, node.chain.genesis);
    const reader = new ProvenReader(client, 30);
    assert.equal(
      await reader.read(
        () => ({ path: 'x/y', data: new Uint8Array(0) }),
        () => 'ok',
      ),
      'ok',
    );
    // An answer at another height than the one the reader is pinned to is refused.
    answerHeight = 31;
    await assert.rejects(
      reader.read(
        () => ({ path: 'x/y', data: new Uint8Array(0) }),
        () => 'ok',
      ),
      (error: unknown) =>
        error instanceof CliError &&
        /answered at height 31 \[STAKE_PROOF_INVALID\]/.test(error.message),
    );
    // Every proven reader refuses it before checking the proof: a node could answer another
    // height's genuine state (an old "absent") to a read pinned to a later one.
    const wrongHeight = refused(CommittedRootErrorCode.HEIGHT_MISMATCH, 31, /asked for height 30/);
    await assert.rejects(readProvenBalance(client, new Uint8Array(32), 30), wrongHeight);
    await assert.rejects(readKv(client, 'greeting', 30), wrongHeight);
    await assert.rejects(readZones(client, 30), wrongHeight);
    answerHeight = 30;
    answerRoot = randomBytes(32);
    await assert.rejects(
      reader.read(
        () => ({ path: 'x/y', data: new Uint8Array(0) }),
        () => 'ok',
      ),
      refused(CommittedRootErrorCode.ROOT_MISMATCH, 30),
    );
  });
});
