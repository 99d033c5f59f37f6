import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CAESAR_RESULT_CODES,
  CaesarErrorCode,
  FEE_POOL_KEY,
  MAX_AMOUNT,
  balanceKey,
  caesarStateKey,
  decodeStoredAmount,
} from '../../src/caesar/index.js';
import type { CaesarGenesis } from '../../src/caesar/index.js';
import { TransactionErrorCode } from '../../src/consensus/application/index.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import { toHex } from '../../src/crypto/bytes.js';
import { blockAt, makeSender } from '../consensus/application/fixture.js';
import type { Sender } from '../consensus/application/fixture.js';
import { TOKEN, addressOf, openCaesarNode, transfer } from './caesar-fixture.js';

/**
 * Random transfer sequences among a handful of accounts, executed by two independent nodes
 * (routers over their own stores): one proposes (prepareProposal), the other re-executes
 * (executeBlock). Checked after every block: both reach the same state root; every result
 * matches a reference model; balances and the fee pool sum to the supply exactly; no stored
 * balance is negative or malformed.
 */

const ACCOUNTS = 4;
/** Keys made once; each run starts their sequences at 0 on fresh stores. */
const keys = Array.from({ length: ACCOUNTS }, () => makeSender());
/** An address no key stands behind: funds sent there stay there. */
const outsider = new Uint8Array(32).fill(0x5a);

const small = (max: bigint) => fc.bigInt({ min: 1n, max });
const stepArb = fc.record({
  from: fc.integer({ min: 0, max: ACCOUNTS - 1 }),
  to: fc.integer({ min: 0, max: ACCOUNTS }),
  amount: fc.oneof(
    { arbitrary: small(5_000n), weight: 4 },
    { arbitrary: small(1n << 126n), weight: 1 },
    { arbitrary: fc.constant(MAX_AMOUNT), weight: 1 },
  ),
  fee: fc.oneof(
    { arbitrary: fc.bigInt({ min: 0n, max: 100n }), weight: 4 },
    { arbitrary: fc.bigInt({ min: 0n, max: 1n << 126n }), weight: 1 },
  ),
});
/** Allocations per account: zero (no allocation), small, or large (the sum stays below 2^128). */
const allocationArb = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 1n, max: 10_000n }),
  fc.bigInt({ min: 1n, max: 1n << 125n }),
);
const scenarioArb = fc.record({
  allocations: fc.array(allocationArb, { minLength: ACCOUNTS, maxLength: ACCOUNTS }),
  blocks: fc.array(fc.array(stepArb, { maxLength: 8 }), { minLength: 1, maxLength: 4 }),
});

function genesisFor(allocations: readonly bigint[]): CaesarGenesis {
  const supply = allocations.reduce((sum, amount) => sum + amount, 0n);
  return {
    token: { ...TOKEN, supply },
    allocations: allocations.flatMap((amount, i) =>
      amount === 0n ? [] : [{ address: addressOf(keys[i]!), amount }],
    ),
  };
}

describe('caesar ledger properties over random transfer sequences', () => {
  it('supply conserved, no negative balance, results as modelled, identical roots on two nodes', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ allocations, blocks }) => {
        const genesis = genesisFor(allocations);
        const supply = genesis.token.supply;
        const proposer = await openCaesarNode(genesis);
        const validator = await openCaesarNode(genesis);
        try {
          const senders: Sender[] = keys.map((key) => ({ ...key, sequence: 0 }));
          const addresses = [...senders.map(addressOf), outsider];
          // The reference model: balances by address, and the fee pool.
          const model = new Map<string, bigint>();
          allocations.forEach((amount, i) => model.set(toHex(addresses[i]!), amount));
          let pool = 0n;
          /** Every balance key ever written, so the sum covers accounts the model never names. */
          const written = new Set<string>(
            addresses.map((a) => toHex(caesarStateKey(balanceKey(a)))),
          );

          for (const steps of blocks) {
            const expected: number[] = [];
            const transactions = steps.map((step) => {
              const from = toHex(addresses[step.from]!);
              const to = toHex(addresses[step.to]!);
              const balance = model.get(from) ?? 0n;
              if (from === to) {
                expected.push(CAESAR_RESULT_CODES[CaesarErrorCode.SELF_TRANSFER]);
              } else if (balance < step.amount + step.fee) {
                expected.push(CAESAR_RESULT_CODES[CaesarErrorCode.INSUFFICIENT_FUNDS]);
              } else {
                expected.push(0);
                model.set(from, balance - step.amount - step.fee);
                model.set(to, (model.get(to) ?? 0n) + step.amount);
                pool += step.fee;
              }
              return transfer(senders[step.from]!, {
                to: addresses[step.to]!,
                amount: step.amount,
                fee: step.fee,
              });
            });

            const height = proposer.nextHeight();
            const { transactions: chosen, result: proposed } = proposer.app.prepareProposal(
              blockAt(height, []),
              transactions,
              Number.MAX_SAFE_INTEGER,
            );
            assert.equal(chosen.length, transactions.length, 'every transfer is admissible');
            const executed = validator.app.executeBlock(blockAt(height, chosen));
            assert.deepEqual(
              executed.stateRoot,
              proposed.stateRoot,
              `same root at height ${height}`,
            );
            assert.deepEqual(executed.changes, proposed.changes);
            assert.deepEqual(
              executed.txResults.map((r) => r.code),
              expected,
            );
            proposer.commit(proposed);
            validator.commit(executed);
            for (const { key } of executed.changes) {
              const text = Buffer.from(key).toString('latin1');
              if (text.startsWith('caesar/bal/')) written.add(toHex(key));
            }

            let total = 0n;
            for (const key of written) {
              const stored = validator.store.state.get(Buffer.from(key, 'hex'));
              const balance = decodeStoredAmount(stored);
              assert.ok(balance >= 0n);
              total += balance;
            }
            const storedPool = decodeStoredAmount(
              validator.store.state.get(caesarStateKey(FEE_POOL_KEY)),
            );
            assert.equal(storedPool, pool, 'fee pool as modelled');
            assert.equal(total + storedPool, supply, 'balances + fee pool = supply, exactly');
            for (const address of addresses) {
              const stored = decodeStoredAmount(
                proposer.store.state.get(caesarStateKey(balanceKey(address))),
              );
              assert.equal(stored, model.get(toHex(address)) ?? 0n, 'balance as modelled');
            }
          }
          assert.deepEqual(proposer.store.state.root(), validator.store.state.root());
        } finally {
          await proposer.close();
          await validator.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it('replayed and re-ordered sequences are refused by the router, change nothing, and both nodes agree', async () => {
    await fc.assert(
      fc.asyncProperty(sequenceScenarioArb, async ({ allocations, blocks }) => {
        const genesis = genesisFor(allocations);
        const proposer = await openCaesarNode(genesis);
        const validator = await openCaesarNode(genesis);
        try {
          const ledger = new SequenceModel(allocations);
          for (const ops of blocks) {
            checkBlock(proposer, validator, ledger, ledger.block(ops));
          }
          // What is still waiting for an earlier sequence goes through in one last block.
          checkBlock(proposer, validator, ledger, ledger.block([]));
          assert.equal(ledger.pendingCount(), 0, 'every re-ordered transfer applied in the end');
          assert.deepEqual(proposer.store.state.root(), validator.store.state.root());
        } finally {
          await proposer.close();
          await validator.close();
        }
      }),
      { numRuns: 25 },
    );
  });
});

/**
 * Sequence replays and re-orderings. Each block is a list of operations: a fresh transfer (the
 * sender's next sequence), a replay of a transaction already executed (committed in an earlier
 * block or earlier in this one: the exact signed bytes again), or a swapped pair (a sender's two
 * next transfers, the later sequence offered first). The router executes a transaction only at
 * its sender's next sequence: a used one is `SEQUENCE_USED`, one ahead is `SEQUENCE_GAP`. A
 * proposer leaves both out (a gapped one stays in the mempool: here it is offered again at the
 * head of the next block, where it fits), and a block holding either is invalid.
 */
type SequenceOp =
  | { readonly kind: 'transfer'; readonly step: Step }
  | { readonly kind: 'replay'; readonly pick: number }
  | { readonly kind: 'swap'; readonly step: Step; readonly second: Step };
interface Step {
  readonly from: number;
  readonly to: number;
  readonly amount: bigint;
  readonly fee: bigint;
}

const opArb: fc.Arbitrary<SequenceOp> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('transfer' as const), step: stepArb }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('replay' as const), pick: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({ step: stepArb, second: stepArb }).map(({ step, second }) => ({
      kind: 'swap' as const,
      step,
      second: { ...second, from: step.from },
    })),
    weight: 2,
  },
);
const sequenceScenarioArb = fc.record({
  allocations: fc.array(fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 20_000n })), {
    minLength: ACCOUNTS,
    maxLength: ACCOUNTS,
  }),
  blocks: fc.array(fc.array(opArb, { maxLength: 10 }), { minLength: 1, maxLength: 6 }),
});

interface Candidate {
  readonly bytes: Uint8Array;
  readonly from: number;
  readonly sequence: number;
  readonly step: Step;
}

/** One block as the model sees it: what is offered, what a proposer must keep, what it refuses. */
interface PlannedBlock {
  readonly candidates: readonly Uint8Array[];
  readonly chosen: readonly Uint8Array[];
  readonly codes: readonly number[];
  /** Refused by sequence: the bytes, the code, and how many chosen transactions precede it. */
  readonly refused: readonly { bytes: Uint8Array; code: TransactionErrorCode; at: number }[];
  /** Replays of transactions committed in earlier blocks (the mempool refuses these). */
  readonly committedReplays: readonly Uint8Array[];
}

class SequenceModel {
  readonly addresses: Uint8Array[];
  readonly balances = new Map<string, bigint>();
  readonly supply: bigint;
  pool = 0n;
  /** The router's next sequence per sender (committed, then moved by this block's transactions). */
  private readonly next: number[] = Array.from({ length: ACCOUNTS }, () => 0);
  /** The next sequence handed out to a new transfer, per sender. */
  private readonly allocated: number[] = Array.from({ length: ACCOUNTS }, () => 0);
  /** Executed transactions (whatever their result code): replaying any is refused. */
  private readonly used: Candidate[] = [];
  private pending: Candidate[] = [];

  constructor(allocations: readonly bigint[]) {
    this.addresses = [...keys.map(addressOf), outsider];
    allocations.forEach((amount, i) => this.balances.set(toHex(this.addresses[i]!), amount));
    this.supply = allocations.reduce((sum, amount) => sum + amount, 0n);
  }

  pendingCount(): number {
    return this.pending.length;
  }

  private fresh(step: Step, sequence: number): Candidate {
    const bytes = transfer(
      keys[step.from]!,
      { to: this.addresses[step.to]!, amount: step.amount, fee: step.fee },
      sequence,
    );
    return { bytes, from: step.from, sequence, step };
  }

  block(ops: readonly SequenceOp[]): PlannedBlock {
    const candidates: Uint8Array[] = [];
    const chosen: Uint8Array[] = [];
    const codes: number[] = [];
    const refused: { bytes: Uint8Array; code: TransactionErrorCode; at: number }[] = [];
    const committedReplays: Uint8Array[] = [];
    const committedCount = this.used.length;
    const waiting = this.pending.sort((a, b) => a.from - b.from || a.sequence - b.sequence);
    this.pending = [];

    const offer = (candidate: Candidate): void => {
      candidates.push(candidate.bytes);
      const next = this.next[candidate.from]!;
      if (candidate.sequence !== next) {
        const code =
          candidate.sequence < next
            ? TransactionErrorCode.SEQUENCE_USED
            : TransactionErrorCode.SEQUENCE_GAP;
        refused.push({ bytes: candidate.bytes, code, at: chosen.length });
        if (code === TransactionErrorCode.SEQUENCE_GAP) this.pending.push(candidate);
        return;
      }
      this.next[candidate.from] = next + 1;
      chosen.push(candidate.bytes);
      codes.push(this.apply(candidate.step));
      this.used.push(candidate);
    };

    for (const candidate of waiting) offer(candidate);
    for (const op of ops) {
      if (op.kind === 'transfer') {
        offer(this.fresh(op.step, this.allocated[op.step.from]!++));
      } else if (op.kind === 'swap') {
        const first = this.allocated[op.step.from]!;
        this.allocated[op.step.from] = first + 2;
        const earlier = this.fresh(op.step, first);
        offer(this.fresh(op.second, first + 1));
        offer(earlier);
      } else if (this.used.length > 0) {
        const index = op.pick % this.used.length;
        const replayed = this.used[index]!;
        offer(replayed);
        if (index < committedCount) committedReplays.push(replayed.bytes);
      }
    }
    return { candidates, chosen, codes, refused, committedReplays };
  }

  /** The transfer's result code, moving the modelled balances when it applies. */
  private apply(step: Step): number {
    const from = toHex(this.addresses[step.from]!);
    const to = toHex(this.addresses[step.to]!);
    const balance = this.balances.get(from) ?? 0n;
    if (from === to) return CAESAR_RESULT_CODES[CaesarErrorCode.SELF_TRANSFER];
    if (balance < step.amount + step.fee) {
      return CAESAR_RESULT_CODES[CaesarErrorCode.INSUFFICIENT_FUNDS];
    }
    this.balances.set(from, balance - step.amount - step.fee);
    this.balances.set(to, (this.balances.get(to) ?? 0n) + step.amount);
    this.pool += step.fee;
    return 0;
  }
}

type CaesarNode = Awaited<ReturnType<typeof openCaesarNode>>;

/**
 * Offers the planned block to the proposer and re-executes it on the validator: the proposer
 * keeps exactly the transactions at their sender's next sequence; every refused one makes a
 * block invalid with its sequence code at its index; replays of committed transactions are
 * refused by both mempools; both nodes reach the same root; balances and the fee pool are as
 * modelled (refused transactions moved nothing) and sum to the supply.
 */
function checkBlock(
  proposer: CaesarNode,
  validator: CaesarNode,
  model: SequenceModel,
  plan: PlannedBlock,
): void {
  const height = proposer.nextHeight();
  for (const bytes of plan.committedReplays) {
    for (const node of [proposer, validator]) {
      const check = node.app.checkTx(bytes);
      assert.equal(check.ok ? 'admitted' : check.code, TransactionErrorCode.SEQUENCE_USED);
    }
  }
  const { transactions, result: proposed } = proposer.app.prepareProposal(
    blockAt(height, []),
    plan.candidates,
    Number.MAX_SAFE_INTEGER,
  );
  assert.deepEqual(
    transactions.map(toHex),
    plan.chosen.map(toHex),
    "the proposer keeps exactly the transactions at their sender's next sequence",
  );
  for (const { bytes, code, at } of plan.refused) {
    assert.throws(
      () => validator.app.executeBlock(blockAt(height, [...plan.chosen.slice(0, at), bytes])),
      (error: unknown) =>
        error instanceof ConsensusError &&
        error.code === ConsensusErrorCode.INVALID_BLOCK &&
        error.detail['reason'] === code &&
        error.detail['index'] === at,
      `a block with a ${code} transaction at index ${at} is invalid`,
    );
  }
  const executed = validator.app.executeBlock(blockAt(height, transactions));
  assert.deepEqual(executed.stateRoot, proposed.stateRoot, `same root at height ${height}`);
  assert.deepEqual(
    executed.txResults.map((r) => r.code),
    plan.codes,
  );
  proposer.commit(proposed);
  validator.commit(executed);
  for (const node of [proposer, validator]) {
    let total = decodeStoredAmount(node.store.state.get(caesarStateKey(FEE_POOL_KEY)));
    assert.equal(total, model.pool, 'fee pool as modelled');
    for (const address of model.addresses) {
      const stored = decodeStoredAmount(node.store.state.get(caesarStateKey(balanceKey(address))));
      assert.equal(stored, model.balances.get(toHex(address)) ?? 0n, 'balance as modelled');
      total += stored;
    }
    assert.equal(total, model.supply, 'balances + fee pool = supply, exactly');
  }
}
