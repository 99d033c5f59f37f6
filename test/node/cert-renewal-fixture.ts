import type { QueryRequest } from '../../src/consensus/app.js';
import type { MempoolAddResult } from '../../src/consensus/mempool.js';
import { toHex } from '../../src/crypto/bytes.js';
import { createLogger, type Logger } from '../../src/node/log.js';
import { CHAIN_ID } from '../trustchain/ca/fixtures.js';
import type { CaNode } from '../trustchain/ca-module/fixture.js';

/**
 * What the cert-renewal unit tests give `startCertRenewal` / `RenewalSender` besides the
 * certificate: a `ca` node driven block by block (test/trustchain/ca-module/fixture.ts) as the
 * committed state and query, and a mempool that is a map — `submit` runs the node's `checkTx`
 * and keeps what it admits in `pending`, which the test commits (or clears) itself.
 */
export function caNodeRenewalIo(
  node: CaNode,
  options: {
    /** Answered (once, instead of `checkTx`) to the first submission. */
    readonly refuseFirst?: MempoolAddResult;
  } = {},
) {
  const pending = new Map<string, Uint8Array>();
  let refusal = options.refuseFirst;
  return {
    pending,
    io: {
      chainId: CHAIN_ID,
      stampDifficulty: 4,
      state: node.node.store.state,
      query: (request: QueryRequest) => node.node.app.query(request),
      submit: (tx: Uint8Array): Promise<MempoolAddResult> => {
        if (refusal !== undefined) {
          const answer = refusal;
          refusal = undefined;
          return Promise.resolve(answer);
        }
        const checked = node.node.app.checkTx(tx);
        if (!checked.ok) return Promise.resolve(checked);
        pending.set(toHex(checked.txHash), tx);
        return Promise.resolve({ ok: true, txHash: checked.txHash, duplicate: false });
      },
      pending: (txHash: Uint8Array) => pending.has(toHex(txHash)),
    },
  };
}

/** A logger whose lines are kept, parsed, in `lines`. */
export function capturingLogger(level: 'debug' | 'info' = 'debug'): {
  readonly lines: Record<string, unknown>[];
  readonly logger: Logger;
} {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(
    {},
    (line) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    level,
  );
  return { lines, logger };
}
