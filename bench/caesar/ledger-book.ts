import { toHex } from '../../src/crypto/bytes.js';
import type { CaesarGenesis } from '../../src/caesar/genesis.js';
import type { NodeRpcClient, TxStatus } from '../../src/consensus/net/index.js';

/**
 * The benchmark's own account of the ledger: every transfer it submitted, what became of it
 * (the result code of its commit, read back with `txStatus`), and the balances those outcomes
 * imply. The final check (verify.ts) compares this with the proven state.
 */
export interface PlannedTransfer {
  readonly from: Uint8Array;
  readonly to: Uint8Array;
  readonly amount: bigint;
  readonly fee: bigint;
}

/** How many to ask about at once. */
const STATUS_CONCURRENCY = 64;
const STATUS_DEADLINE_MS = 15_000;

export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class LedgerBook {
  /** Expected balance by hex address: genesis allocations plus every applied transfer. */
  private readonly balances = new Map<string, bigint>();
  /** Submitted transfers whose outcome is not known yet (pending, or not asked yet). */
  private readonly unresolved = new Map<string, PlannedTransfer>();
  feePool = 0n;
  readonly supply: bigint;
  /** Transfers committed with code 0. */
  applied = 0;
  /** Transfers committed with a non-zero code, by `<code> <log code>`. */
  readonly refused = new Map<string, number>();
  /** Admitted transfers that were never committed (expired behind a sequence gap, ...). */
  notCommitted = 0;

  constructor(genesis: CaesarGenesis) {
    this.supply = genesis.token.supply;
    for (const allocation of genesis.allocations) {
      this.balances.set(toHex(allocation.address), allocation.amount);
    }
  }

  /** Every account that held or may hold funds: the ones the final check reads. */
  accounts(): string[] {
    return [...this.balances.keys()];
  }

  expected(address: string): bigint {
    return this.balances.get(address) ?? 0n;
  }

  /** Records transfers a node admitted (hex txHash → what it moves). */
  submitted(transfers: Iterable<readonly [string, PlannedTransfer]>): void {
    for (const [hash, transfer] of transfers) {
      this.unresolved.set(hash, transfer);
      for (const address of [transfer.from, transfer.to]) {
        const key = toHex(address);
        if (!this.balances.has(key)) this.balances.set(key, 0n);
      }
    }
  }

  get unresolvedCount(): number {
    return this.unresolved.size;
  }

  /**
   * Asks the nodes what became of every unresolved transfer and books the committed ones.
   * Until `final`, a transfer not committed yet stays unresolved (it may still be in a mempool,
   * or wait behind a sequence gap until it expires). `final` = no more commits can come
   * (mempools drained, no load left): what is not committed then never was. `only` limits the
   * question to these hashes. Returns how many of those asked about were committed with a
   * non-zero code, and how many are still unresolved.
   */
  async resolve(
    clients: (index: number) => NodeRpcClient,
    final: boolean,
    only?: readonly string[],
  ): Promise<{ refused: number; unresolved: number }> {
    const entries =
      only === undefined
        ? [...this.unresolved]
        : only.flatMap((hash) => {
            const transfer = this.unresolved.get(hash);
            return transfer === undefined ? [] : [[hash, transfer] as const];
          });
    let refused = 0;
    let unresolved = 0;
    await forEachLimited(entries, STATUS_CONCURRENCY, async ([hash, transfer], index) => {
      const txHash = Uint8Array.from(Buffer.from(hash, 'hex'));
      let status: TxStatus = await clients(index).txStatus(txHash, {
        deadlineMs: STATUS_DEADLINE_MS,
      });
      // Another node may be a block behind; the observer (client 0, node-1) is the reference.
      if (status.status !== 'committed') {
        status = await clients(0).txStatus(txHash, { deadlineMs: STATUS_DEADLINE_MS });
      }
      if (status.status === 'committed') {
        this.unresolved.delete(hash);
        if (status.code === 0) {
          this.apply(transfer);
        } else {
          const label = `${status.code} ${status.log.split(':')[0] ?? ''}`;
          this.refused.set(label, (this.refused.get(label) ?? 0) + 1);
          refused += 1;
        }
      } else if (final) {
        this.unresolved.delete(hash);
        this.notCommitted += 1;
      } else {
        unresolved += 1;
      }
    });
    return { refused, unresolved };
  }

  /**
   * Books an applied transfer. Every sender is funded for all of its own transfers, so the
   * order transfers are booked in does not change the final balances.
   */
  private apply(transfer: PlannedTransfer): void {
    const from = toHex(transfer.from);
    const to = toHex(transfer.to);
    this.balances.set(from, this.expected(from) - transfer.amount - transfer.fee);
    this.balances.set(to, this.expected(to) + transfer.amount);
    this.feePool += transfer.fee;
    this.applied += 1;
  }
}
