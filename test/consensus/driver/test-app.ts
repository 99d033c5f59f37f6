import type {
  Application,
  BlockExecutionInput,
  BlockExecutionResult,
  PreparedProposal,
  QueryRequest,
  QueryResponse,
  TxCheckResult,
} from '../../../src/consensus/app.js';
import type { BlockTemplate } from '../../../src/consensus/block.js';
import type { BlockProofs, MempoolPort } from '../../../src/consensus/driver/ports.js';
import { ConsensusError, ConsensusErrorCode } from '../../../src/consensus/errors.js';
import type { HeightContext } from '../../../src/consensus/height-context.js';
import { transactionsRoot } from '../../../src/consensus/messages.js';
import type { Block } from '../../../src/consensus/types.js';
import { bytesEqual, concatBytes, toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import type { NodeStore, StateChange } from '../../../src/storage/index.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TX_PATTERN = /^([a-z0-9]{1,32})=([a-z0-9]{0,64})$/;
const HEIGHT_KEY = encoder.encode('meta/height');

/** A transaction of the test application: `key=value`, lowercase letters and digits. */
export function kvTx(key: string, value: string): Uint8Array {
  return encoder.encode(`${key}=${value}`);
}

function parseTx(tx: Uint8Array): { key: string; value: string } | null {
  if (!(tx instanceof Uint8Array) || tx.length > 128) return null;
  const match = TX_PATTERN.exec(decoder.decode(tx));
  return match === null ? null : { key: match[1] as string, value: match[2] as string };
}

/**
 * A deterministic key-value application over the node store: each transaction writes one key,
 * and every block writes `meta/height`, so every block changes the state root. Blocks with a
 * transaction that is not `key=value` are invalid (executeBlock throws INVALID_BLOCK).
 */
export class KvTestApp implements Application {
  readonly committedHeights: number[] = [];

  constructor(private readonly store: NodeStore) {}

  checkTx(tx: Uint8Array): TxCheckResult {
    const parsed = parseTx(tx);
    if (parsed === null) return { ok: false, code: 'MALFORMED', message: 'not key=value' };
    return { ok: true, txHash: sha256(tx), sender: parsed.key, sequence: 0 };
  }

  prepareProposal(
    block: Omit<BlockExecutionInput, 'transactions'>,
    candidates: Iterable<Uint8Array>,
    maxBytes: number,
    maxTxs: number = Number.MAX_SAFE_INTEGER,
  ): PreparedProposal {
    const transactions: Uint8Array[] = [];
    let bytes = 0;
    for (const tx of candidates) {
      if (parseTx(tx) === null) continue;
      if (bytes + tx.length > maxBytes || transactions.length >= maxTxs) break;
      bytes += tx.length;
      transactions.push(tx);
    }
    return { transactions, result: this.executeBlock({ ...block, transactions }) };
  }

  executeBlock(block: BlockExecutionInput): BlockExecutionResult {
    const changes: StateChange[] = [
      { key: HEIGHT_KEY, value: encoder.encode(String(block.height)) },
    ];
    for (const [index, tx] of block.transactions.entries()) {
      const parsed = parseTx(tx);
      if (parsed === null) {
        throw new ConsensusError(
          ConsensusErrorCode.INVALID_BLOCK,
          `transaction ${index} is not key=value`,
        );
      }
      changes.push({
        key: encoder.encode(`kv/${parsed.key}`),
        value: encoder.encode(parsed.value),
      });
    }
    // Later writes of one key win; the store wants each key once.
    const byKey = new Map<string, StateChange>();
    for (const change of changes) byKey.set(toHex(change.key), change);
    const unique = [...byKey.values()];
    return {
      stateRoot: this.store.state.computeRoot(unique),
      changes: unique,
      txResults: block.transactions.map((tx) => ({ txHash: sha256(tx), code: 0, log: '' })),
      validatorUpdates: [],
    };
  }

  committed(height: number): void {
    this.committedHeights.push(height);
  }

  query(request: QueryRequest): QueryResponse {
    const value = this.store.state.get(concatBytes(encoder.encode('kv/'), request.data));
    return {
      height: this.store.blocks.latestHeight(),
      value,
      stateRoot: this.store.state.root(),
    };
  }
}

/** A FIFO mempool: deduplicates by content, drops what a block committed. */
export class TestMempool implements MempoolPort {
  private readonly txs = new Map<string, Uint8Array>();
  readonly fromPeers: string[] = [];

  add(tx: Uint8Array): void {
    this.txs.set(toHex(tx), tx);
  }

  candidates(): Iterable<Uint8Array> {
    return [...this.txs.values()];
  }

  update(_height: number, committed: readonly Uint8Array[]): void {
    for (const tx of committed) this.txs.delete(toHex(tx));
  }

  addFromPeer(peer: string, txs: readonly Uint8Array[]): void {
    this.fromPeers.push(peer);
    for (const tx of txs) this.add(tx);
  }

  size(): number {
    return this.txs.size;
  }
}

function proofBytes(
  parentHash: Uint8Array,
  height: number,
  proposer: string,
  transactions: readonly Uint8Array[],
): Uint8Array {
  return sha256(
    concatBytes(
      encoder.encode(`test-proof/${height}/${proposer}/`),
      parentHash,
      transactionsRoot(transactions),
    ),
  );
}

/**
 * Consensus proofs for tests: a hash binding the parent, height, proposer and transactions,
 * which `checkProposal` recomputes — a block with another proof is refused.
 */
export class TestProofs implements BlockProofs {
  checked = 0;

  build(template: BlockTemplate, transactions: readonly Uint8Array[]): Uint8Array {
    return proofBytes(template.parentHash, template.height, template.proposer, transactions);
  }

  checkProposal(_context: HeightContext, block: Block): ConsensusError | undefined {
    this.checked++;
    const { header } = block;
    const expected = proofBytes(
      header.parentHash,
      header.height,
      header.proposer,
      block.transactions,
    );
    if (!bytesEqual(expected, header.consensusProof)) {
      return new ConsensusError(ConsensusErrorCode.INVALID_BLOCK, 'consensus proof does not match');
    }
    return undefined;
  }
}
