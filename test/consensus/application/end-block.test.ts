import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeCanonical } from '../../../src/codec/cbor.js';
import type { LastCommitInfo, ValidatorUpdate } from '../../../src/consensus/app.js';
import {
  ApplicationError,
  ApplicationErrorCode,
  ModuleError,
  createApplication,
} from '../../../src/consensus/application/index.js';
import type {
  EndBlockContext,
  Module,
  ModuleState,
} from '../../../src/consensus/application/index.js';
import { ConsensusError, ConsensusErrorCode } from '../../../src/consensus/errors.js';
import type { DuplicateVoteEvidence } from '../../../src/consensus/types.js';
import { CHAIN_ID, DIFFICULTY, blockAt, makeSender, openNode, tx, utf8 } from './fixture.js';

/**
 * The router's end-of-block seam: a module hook after the block's transactions with a writable
 * view and validator updates, run identically by prepareProposal and executeBlock; and the
 * height in CheckContext.
 */

type Behaviour = (ctx: EndBlockContext) => readonly ValidatorUpdate[];

interface Recorder extends Module<{ n: number }> {
  readonly seen: EndBlockContext[];
  readonly checkHeights: number[];
  behaviour: Behaviour;
  stash?: ModuleState;
}

const key32 = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);

/** Counts blocks in its state (`count`), records what endBlock and check saw. */
function recorder(name: string, behaviour: Behaviour = () => []): Recorder {
  const module: Recorder = {
    name,
    seen: [],
    checkHeights: [],
    behaviour,
    decodeBody: () => ({ n: 1 }),
    check(ctx) {
      module.checkHeights.push(ctx.height);
    },
    apply(ctx) {
      ctx.state.set(utf8('tx'), utf8(String(ctx.height)));
    },
    query: (path, data) => (path === 'get' ? { key: data } : undefined),
    endBlock(ctx) {
      module.seen.push(ctx);
      const count = Number(new TextDecoder().decode(ctx.state.get(utf8('count')) ?? utf8('0')));
      ctx.state.set(utf8('count'), utf8(String(count + 1)));
      return module.behaviour(ctx);
    },
  };
  return module;
}

const lastCommit = (height: number): LastCommitInfo => ({
  height: height - 1,
  votes: [
    { validator: 'aa'.repeat(20), power: 3, signed: true },
    { validator: 'bb'.repeat(20), power: 5, signed: false },
  ],
});

describe('application router: endBlock and CheckContext.height', () => {
  it('runs endBlock after the transactions, in prepareProposal and executeBlock alike', async () => {
    const update: ValidatorUpdate = { publicKey: key32(7), power: 4 };
    const make = () => recorder('alpha', (ctx) => (ctx.height === 2 ? [update] : []));
    const first = make();
    const second = make();
    const proposer = await openNode({ modules: [first] });
    const validator = await openNode({ modules: [second] });
    try {
      const sender = makeSender();
      const evidence: DuplicateVoteEvidence[] = [];
      for (const height of [1, 2, 3]) {
        const block = { ...blockAt(height, []), evidence, lastCommit: lastCommit(height) };
        const candidates = [tx(sender, new Uint8Array([1]), { module: 'alpha' })];
        const prepared = proposer.app.prepareProposal(block, candidates, 1 << 20);
        const executed = validator.app.executeBlock({
          ...block,
          transactions: prepared.transactions,
        });
        assert.deepEqual(executed.stateRoot, prepared.result.stateRoot);
        assert.deepEqual(executed.validatorUpdates, prepared.result.validatorUpdates);
        assert.deepEqual(executed.validatorUpdates, height === 2 ? [update] : []);
        proposer.commit(prepared.result);
        validator.commit(executed);
      }
      // The hook wrote through its view, after the transaction's write, once per block.
      const read = (path: string) =>
        proposer.app.query({ path: 'alpha/get', data: utf8(path) }).value;
      assert.deepEqual(read('count'), utf8('3'));
      assert.deepEqual(read('tx'), utf8('3'));
      const ctx = second.seen[1]!;
      assert.equal(ctx.height, 2);
      assert.equal(ctx.chainId, 'test-chain');
      assert.equal(ctx.proposer, 'validator-0');
      assert.deepEqual(ctx.lastCommit, lastCommit(2));
      // The view is closed once the hook returned.
      assert.throws(
        () => ctx.state.get(utf8('count')),
        (error: unknown) =>
          error instanceof ApplicationError &&
          error.code === ApplicationErrorCode.STATE_VIEW_CLOSED,
      );
    } finally {
      await proposer.close();
      await validator.close();
    }
  });

  it('without lastCommit the hook sees undefined; updates of several modules are concatenated', async () => {
    const a = recorder('alpha', () => [{ publicKey: key32(1), power: 1 }]);
    const b = recorder('beta', () => [
      { publicKey: key32(2), power: 0 },
      { publicKey: key32(3), power: 9, pqPublicKey: key32(4), storageRoot: key32(5) },
    ]);
    const node = await openNode({ modules: [a, b] });
    try {
      const result = node.app.executeBlock(blockAt(1, []));
      assert.equal(a.seen[0]!.lastCommit, undefined);
      assert.deepEqual(
        result.validatorUpdates.map((u) => [u.publicKey[0], u.power]),
        [
          [1, 1],
          [2, 0],
          [3, 9],
        ],
      );
    } finally {
      await node.close();
    }
  });

  it('a fault in endBlock fails the block, a ModuleError too; bad updates are faults', async () => {
    const cases: [string, Behaviour, (error: unknown) => boolean][] = [
      [
        'plain exception',
        () => {
          throw new Error('hook bug');
        },
        (error) => error instanceof Error && error.message === 'hook bug',
      ],
      [
        'module error',
        () => {
          throw new ModuleError('X_REFUSED', 3, 'no');
        },
        (error) => error instanceof ModuleError,
      ],
      [
        'not a list',
        () => 'nope' as unknown as ValidatorUpdate[],
        (error) =>
          error instanceof ApplicationError &&
          error.code === ApplicationErrorCode.INVALID_VALIDATOR_UPDATES,
      ],
      [
        'a short key',
        () => [{ publicKey: new Uint8Array(31), power: 1 }],
        (error) =>
          error instanceof ApplicationError &&
          error.code === ApplicationErrorCode.INVALID_VALIDATOR_UPDATES,
      ],
      [
        'a fractional power',
        () => [{ publicKey: key32(1), power: 1.5 }],
        (error) =>
          error instanceof ApplicationError &&
          error.code === ApplicationErrorCode.INVALID_VALIDATOR_UPDATES,
      ],
      [
        'one key twice',
        () => [
          { publicKey: key32(1), power: 1 },
          { publicKey: key32(1), power: 2 },
        ],
        (error) =>
          error instanceof ApplicationError &&
          error.code === ApplicationErrorCode.INVALID_VALIDATOR_UPDATES,
      ],
    ];
    for (const [name, behaviour, matches] of cases) {
      const node = await openNode({ modules: [recorder('alpha', behaviour)] });
      try {
        assert.throws(() => node.app.executeBlock(blockAt(1, [])), matches, name);
        assert.throws(
          () => node.app.prepareProposal(blockAt(1, []), [], 1 << 20),
          matches,
          `${name} (proposer)`,
        );
      } finally {
        await node.close();
      }
    }
    // Two modules naming one key: the second one's update is refused.
    const node = await openNode({
      modules: [
        recorder('alpha', () => [{ publicKey: key32(1), power: 1 }]),
        recorder('beta', () => [{ publicKey: key32(1), power: 0 }]),
      ],
    });
    try {
      assert.throws(
        () => node.app.executeBlock(blockAt(1, [])),
        (error: unknown) =>
          error instanceof ApplicationError &&
          error.code === ApplicationErrorCode.INVALID_VALIDATOR_UPDATES &&
          /beta/.test(error.message),
      );
    } finally {
      await node.close();
    }
  });

  it('refuses a lastCommit of the wrong form as an invalid block', async () => {
    const node = await openNode({ modules: [recorder('alpha')] });
    const votes = lastCommit(2).votes;
    const bad: [string, unknown][] = [
      ['another height', { height: 5, votes }],
      ['unsorted votes', { height: 1, votes: [votes[1], votes[0]] }],
      ['repeated validator', { height: 1, votes: [votes[0], votes[0]] }],
      ['negative power', { height: 1, votes: [{ ...votes[0], power: -1 }] }],
      ['signed not boolean', { height: 1, votes: [{ ...votes[0], signed: 1 }] }],
      ['votes not a list', { height: 1, votes: null }],
    ];
    try {
      for (const [name, value] of bad) {
        assert.throws(
          () =>
            node.app.executeBlock({
              ...blockAt(2, []),
              lastCommit: value as LastCommitInfo,
            }),
          (error: unknown) =>
            error instanceof ConsensusError && error.code === ConsensusErrorCode.INVALID_BLOCK,
          name,
        );
      }
    } finally {
      await node.close();
    }
  });

  it('CheckContext.height is the committed height + 1 at admission and the block height in a block', async () => {
    const module = recorder('alpha');
    const node = await openNode({ modules: [module] });
    try {
      const sender = makeSender();
      const body = encodeCanonical(1);
      assert.equal(node.app.checkTx(tx(sender, body, { module: 'alpha', sequence: 0 })).ok, true);
      assert.deepEqual(module.checkHeights, [1], 'nothing committed: height 1');
      node.executeAndCommit([tx(sender, body, { module: 'alpha', sequence: 0 })]);
      node.executeAndCommit([]);
      assert.deepEqual(module.checkHeights, [1, 1], 'in block 1');
      assert.equal(node.app.checkTx(tx(sender, body, { module: 'alpha', sequence: 1 })).ok, true);
      assert.equal(module.checkHeights.at(-1), 3, 'two blocks committed: height 3');
      // A fresh router over the same store (no committed() call yet) reads it from the store.
      const fresh = recorder('alpha');
      const app = createApplication({
        chainId: CHAIN_ID,
        stampDifficulty: DIFFICULTY,
        modules: [fresh],
        state: node.store.state,
      });
      assert.equal(app.checkTx(tx(sender, body, { module: 'alpha', sequence: 1 })).ok, true);
      assert.deepEqual(fresh.checkHeights, [3]);
    } finally {
      await node.close();
    }
  });
});
