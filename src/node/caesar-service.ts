import type { Registry } from 'prom-client';
import { HyperMeshError } from '../codec/error.js';
import {
  CAESAR_MODULE_NAME,
  CaesarError,
  HYBRID_OP,
  JailReason,
  caesarBondedQuery,
  caesarGenesisFromApp,
  caesarParamsQuery,
  caesarValidatorQuery,
  decodeCaesarBody,
  verifyCaesarBonded,
  verifyCaesarParams,
  verifyCaesarValidator,
  type ValidatorRecord,
} from '../caesar/index.js';
import type { QueryResponse, QueryRequest } from '../consensus/app.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import { decodeTransaction } from '../consensus/application/index.js';
import type { MempoolAddResult } from '../consensus/mempool.js';
import type { ServiceRegistry } from '../consensus/net/index.js';
import { decodeBlock } from '../consensus/wire.js';
import { fromHex } from '../crypto/bytes.js';
import { registerCaesarRpc } from '../faces/caesar-rpc.js';
import type { NodeStore } from '../storage/index.js';
import { createCaesarMetrics, type CaesarTxOutcome } from './caesar-metrics.js';
import type { Logger } from './log.js';
import { accountHistoryPage, storedReceipt } from './tx-receipts.js';

/**
 * The ledger in a running node: the `hypermesh.caesar.v1` RPC face and the Caesar metrics
 * (docs/caesar.md, "RPC service" and "Metrics"). Installed by validator-node.ts only when the
 * genesis has an `app.caesar` section; `committed` is called after each committed block.
 */
export interface CaesarServiceOptions {
  readonly genesis: GenesisDocument;
  /** Where `hypermesh.caesar.v1` is served (the node's STOQ endpoint). */
  readonly rpc: ServiceRegistry;
  readonly registry: Registry;
  readonly store: NodeStore;
  /** The application's query (answers with proofs). */
  readonly query: (request: QueryRequest) => QueryResponse;
  /**
   * Client admission, as the node API's `submitTx`; `caller` is the client's identity URI (the
   * intake's per-caller share).
   */
  readonly submit: (tx: Uint8Array, caller?: string) => Promise<MempoolAddResult>;
  /**
   * Whether the node's mempool holds a transaction (by its txHash), so `receipt` answers
   * `pending` for it rather than `NOT_FOUND`.
   */
  readonly pending: (txHash: Uint8Array) => boolean;
  readonly logger: Logger;
}

export interface CaesarService {
  /** Updates the metrics from committed block `height`. Never throws (failures are logged). */
  committed(height: number): void;
}

function describe(error: unknown): string {
  if (error instanceof HyperMeshError) return `${error.message} [${error.code}]`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * The `type` label of a Caesar transaction body: its op, the op it wraps for a hybrid account's
 * (a hybrid transfer counts as a transfer), or `malformed` when the body does not decode.
 */
export function caesarTxType(body: Uint8Array): string {
  try {
    const tx = decodeCaesarBody(body);
    return tx.op === HYBRID_OP ? tx.inner.op : tx.op;
  } catch (error) {
    if (!(error instanceof CaesarError)) throw error;
    return 'malformed';
  }
}

/** The Caesar transactions of a stored block with their outcomes, from the stored receipts. */
function blockOutcomes(
  store: NodeStore,
  height: number,
): {
  txs: CaesarTxOutcome[];
  offenders: Uint8Array[];
} {
  const stored = store.blocks.byHeight(height);
  if (stored === null) return { txs: [], offenders: [] };
  const block = decodeBlock(stored.bytes);
  const txs: CaesarTxOutcome[] = [];
  for (const bytes of block.transactions) {
    const envelope = decodeTransaction(bytes);
    if (envelope.module !== CAESAR_MODULE_NAME) continue;
    const receipt = storedReceipt(store, envelope.txHash);
    txs.push({
      type: caesarTxType(envelope.body),
      outcome: receipt?.code === 0 ? 'applied' : 'refused',
    });
  }
  // The module slashes an offender at most once per block, whatever the evidence count.
  const offenders = [...new Set(block.evidence.map((evidence) => evidence.voteA.validator))];
  return { txs, offenders: offenders.map(fromHex) };
}

/**
 * Whether the module slashed a validator named by the evidence of the block at `height`, from
 * its proven record at `height` (`after`) and, only for a record without the `slashedAt`
 * watermark, at `height - 1`: a record that carries the watermark was slashed at `height`
 * exactly when it says so (also when the validator was already jailed: evidence of a later
 * offence slashes it again, docs/caesar.md); a record from before the watermark counts when it
 * is jailed for equivocation at `height` and was not at `height - 1`.
 */
export function slashedInBlock(
  height: number,
  after: ValidatorRecord | null,
  before: () => ValidatorRecord | null,
): boolean {
  if (after === null) return false;
  if (after.slashedAt !== undefined) return after.slashedAt === height;
  return after.jailed === JailReason.EQUIVOCATION && before()?.jailed !== JailReason.EQUIVOCATION;
}

/** Serves and measures the ledger; null when the genesis has no Caesar section. */
export function startCaesarService(options: CaesarServiceOptions): CaesarService | null {
  // genesisApplication has already refused an invalid section.
  if (caesarGenesisFromApp(options.genesis.app) === undefined) return null;
  const { store, query, logger, pending } = options;
  registerCaesarRpc(options.rpc, {
    query,
    submit: options.submit,
    receipt: (txHash) => storedReceipt(store, txHash),
    pending,
    history: (account, before, limit) => accountHistoryPage(store, account, before, limit),
  });
  const metrics = createCaesarMetrics(options.registry);

  /** Proven reads at `height`: the supply and the bonded stake. */
  const readLedger = (height: number): void => {
    const token = verifyCaesarParams(query(caesarParamsQuery(height)));
    if (token === null) return;
    const bonded = verifyCaesarBonded(query(caesarBondedQuery(height)));
    metrics.ledger({ height, supply: token.supply, bonded });
  };

  /** How many of the block's offenders the module slashed at `height` (`slashedInBlock`). */
  const slashedAt = (height: number, offenders: readonly Uint8Array[]): number => {
    let slashed = 0;
    for (const validator of offenders) {
      const after = verifyCaesarValidator(
        validator,
        query(caesarValidatorQuery(validator, height)),
      );
      const before = () =>
        height > 1
          ? verifyCaesarValidator(validator, query(caesarValidatorQuery(validator, height - 1)))
          : null;
      if (slashedInBlock(height, after, before)) slashed++;
    }
    return slashed;
  };

  const latest = store.blocks.latestHeight();
  if (latest !== null) {
    try {
      readLedger(latest);
    } catch (error) {
      logger.warn('cannot read the Caesar ledger for metrics', { error: describe(error) });
    }
  }

  return {
    committed(height) {
      try {
        const { txs, offenders } = blockOutcomes(store, height);
        metrics.block(txs, offenders.length === 0 ? 0 : slashedAt(height, offenders));
        readLedger(height);
      } catch (error) {
        logger.warn('cannot update the Caesar metrics', { height, error: describe(error) });
      }
    },
  };
}
