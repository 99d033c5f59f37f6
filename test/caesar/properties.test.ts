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
});
