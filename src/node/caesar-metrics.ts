import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The ledger's metrics (docs/caesar.md, "Metrics"), on the registry the node serves at
 * /metrics. caesar-service.ts updates them after each committed block from the block's
 * transactions, their stored receipts and proven state reads at that height.
 */

/** A Caesar transaction of a committed block: its `op` (or `malformed`) and its outcome. */
export interface CaesarTxOutcome {
  readonly type: string;
  readonly outcome: 'applied' | 'refused';
}

/** The ledger as of a committed height, from proven reads. */
export interface CaesarLedgerSnapshot {
  readonly height: number;
  /** Base units. */
  readonly supply: bigint;
  /** Base units bonded (0 without staking). */
  readonly bonded: bigint;
}

export interface CaesarMetrics {
  /** Counts a committed block's Caesar transactions and equivocation slashes. */
  block(txs: readonly CaesarTxOutcome[], slashes: number): void;
  /** Sets the gauges to the ledger at a committed height. */
  ledger(snapshot: CaesarLedgerSnapshot): void;
}

export function createCaesarMetrics(registry: Registry): CaesarMetrics {
  const registers = [registry];
  const height = new Gauge({
    name: 'hypermesh_caesar_height',
    help: 'Committed height the Caesar supply and bonded ratio were read at',
    registers,
  });
  const supply = new Gauge({
    name: 'hypermesh_caesar_supply',
    help: 'Token supply in base units (a float: exact up to 2^53 base units)',
    registers,
  });
  const bondedRatio = new Gauge({
    name: 'hypermesh_caesar_bonded_ratio',
    help: 'Bonded stake / supply (0 without staking)',
    registers,
  });
  const txs = new Counter({
    name: 'hypermesh_caesar_txs_total',
    help: 'Caesar transactions in committed blocks, by op (malformed: body did not decode) and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers,
  });
  const slashes = new Counter({
    name: 'hypermesh_caesar_slashing_events_total',
    help: 'Validators slashed and jailed for equivocation in committed blocks',
    registers,
  });
  // Zero series for what every chain has, so rate() works before the first transaction.
  txs.inc({ type: 'transfer', outcome: 'applied' }, 0);
  txs.inc({ type: 'transfer', outcome: 'refused' }, 0);
  slashes.inc(0);
  return {
    block(outcomes, slashed) {
      for (const { type, outcome } of outcomes) txs.inc({ type, outcome });
      if (slashed > 0) slashes.inc(slashed);
    },
    ledger(snapshot) {
      height.set(snapshot.height);
      supply.set(Number(snapshot.supply));
      // Exact to the float's precision: the quotient of two bigints scaled to 10^-9 first.
      const ratio =
        snapshot.supply === 0n
          ? 0
          : Number((snapshot.bonded * 1_000_000_000n) / snapshot.supply) / 1e9;
      bondedRatio.set(ratio);
    },
  };
}
