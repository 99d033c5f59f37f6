import type { Submit } from '../consensus/load.js';

/**
 * Each transaction's admission outcome in one step. The step client sends a transaction refused
 * with `MEMPOOL_BUSY` (or `RESOURCE_EXHAUSTED`) again a little later (runStep in
 * bench/consensus/load.ts), so one transaction may get several answers: only its last one says
 * whether it was admitted or finally refused.
 */
export class AdmissionLog {
  /** Last answer per transaction index: null = admitted, else the refusal code. */
  private readonly last = new Map<number, string | null>();

  /** `indexOf`: the step's index of a transaction it built (undefined: not one of them). */
  constructor(private readonly indexOf: (tx: Uint8Array) => number | undefined) {}

  /** `submit`, recording each answer against the transaction's index. */
  wrap(submit: Submit): Submit {
    return async (tx, node, connection) => {
      const i = this.indexOf(tx);
      if (i === undefined) throw new Error('a transaction the step did not build was submitted');
      const code = await submit(tx, node, connection);
      this.last.set(i, code);
      return code;
    };
  }

  /** Indices of the transactions whose last answer admitted them. */
  admitted(): number[] {
    return [...this.last].filter(([, code]) => code === null).map(([i]) => i);
  }

  /** Transactions whose last answer refused them, by that code. */
  refusals(): Map<string, number> {
    const codes = new Map<string, number>();
    for (const code of this.last.values()) {
      if (code !== null) codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    return codes;
  }
}
