import type { Database, Statement } from 'better-sqlite3';
import { StorageError, StorageErrorCode } from './errors.js';
import type { BlockInput, EvidenceInput, ReceiptInput } from './inputs.js';
import { fromSqlite, fromSqliteOrNull } from './sqlite-bytes.js';

/** A block as stored: its indexed header fields and its encoded bytes. */
export interface StoredBlock {
  readonly height: number;
  readonly hash: Uint8Array;
  readonly parentHash: Uint8Array;
  readonly timeMs: number;
  readonly bytes: Uint8Array;
}

/** A block with the quorum certificate that committed it: what a syncing peer needs. */
export interface CommittedBlock {
  readonly block: StoredBlock;
  readonly commit: Uint8Array;
}

export interface StoredEvidence {
  readonly hash: Uint8Array;
  /** The height of the block that included it. */
  readonly height: number;
  readonly bytes: Uint8Array;
}

/** Read access to blocks, commits and evidence. */
export interface BlockReader {
  latestHeight(): number | null;
  earliestHeight(): number | null;
  byHeight(height: number): StoredBlock | null;
  byHash(hash: Uint8Array): StoredBlock | null;
  commitAt(height: number): Uint8Array | null;
  /** Blocks `from..to` (inclusive, ascending) with their commits, at most `limit` of them. */
  range(fromHeight: number, toHeight: number, limit?: number): CommittedBlock[];
  evidence(hash: Uint8Array): StoredEvidence | null;
  evidenceAt(height: number): StoredEvidence[];
  /** The encoded validator updates block `height` returned, or null when it returned none. */
  validatorUpdatesAt(height: number): Uint8Array | null;
  /**
   * Every stored validator update of blocks `from..to` (inclusive, ascending); with `maxBytes`,
   * only up to the first block that takes the total over it.
   */
  validatorUpdatesRange(
    fromHeight: number,
    toHeight: number,
    maxBytes?: number,
  ): StoredValidatorUpdates[];
  /** The receipt of a committed transaction, or null (unknown, or stored before receipts). */
  receipt(txHash: Uint8Array): StoredReceipt | null;
  /**
   * The transactions indexed under `account` (the receipt's `accounts`: those its events name
   * and its sender's, as consensus derives them), newest first, strictly before `before` (a
   * position; default: from the newest), at most `limit` (≤ `MAX_HISTORY_PAGE`).
   */
  accountHistory(account: Uint8Array, before: TxPosition | null, limit: number): AccountTx[];
}

/** Where a transaction is in the chain. */
export interface TxPosition {
  readonly height: number;
  /** Position in its block. */
  readonly index: number;
}

export interface StoredReceipt extends TxPosition {
  readonly txHash: Uint8Array;
  readonly bytes: Uint8Array;
}

export interface AccountTx extends TxPosition {
  readonly txHash: Uint8Array;
}

/** Most entries one `accountHistory` call returns. */
export const MAX_HISTORY_PAGE = 1000;

/** The encoded validator updates of one block (only blocks that returned any have them). */
export interface StoredValidatorUpdates {
  readonly height: number;
  readonly bytes: Uint8Array;
}

/** Default and ceiling for one range read, so a sync request cannot pull the whole chain. */
export const DEFAULT_RANGE_LIMIT = 100;
export const MAX_RANGE_LIMIT = 10_000;

interface BlockRow {
  height: number;
  hash: Buffer;
  parent_hash: Buffer;
  time_ms: number;
  bytes: Buffer;
}

interface CommittedRow extends BlockRow {
  commit: Buffer | null;
}

interface EvidenceRow {
  hash: Buffer;
  height: number;
  bytes: Buffer;
}

const BLOCK_COLUMNS = 'b.height, b.hash, b.parent_hash, b.time_ms, b.bytes';

function toBlock(row: BlockRow): StoredBlock {
  return {
    height: row.height,
    hash: fromSqlite(row.hash),
    parentHash: fromSqlite(row.parent_hash),
    timeMs: row.time_ms,
    bytes: fromSqlite(row.bytes),
  };
}

function toEvidence(row: EvidenceRow): StoredEvidence {
  return { hash: fromSqlite(row.hash), height: row.height, bytes: fromSqlite(row.bytes) };
}

/**
 * The block, commit and evidence tables (schema version 1), the validator updates (version 3)
 * and the receipts with the account-history index (version 4) behind prepared statements.
 */
export class BlockTables implements BlockReader {
  private readonly selectLatest: Statement<[], number | null>;
  private readonly selectEarliest: Statement<[], number | null>;
  private readonly selectByHeight: Statement<[number], BlockRow>;
  private readonly selectByHash: Statement<[Uint8Array], BlockRow>;
  private readonly selectHashAt: Statement<[number], Buffer>;
  private readonly selectHeightOfHash: Statement<[Uint8Array], number>;
  private readonly selectCommit: Statement<[number], Buffer>;
  private readonly selectRange: Statement<[number, number, number], CommittedRow>;
  private readonly selectEvidence: Statement<[Uint8Array], EvidenceRow>;
  private readonly selectEvidenceAt: Statement<[number], EvidenceRow>;
  private readonly selectEvidenceHeight: Statement<[Uint8Array], number>;
  private readonly insertBlock: Statement<[number, Uint8Array, Uint8Array, number, Uint8Array]>;
  private readonly insertCommit: Statement<[number, Uint8Array]>;
  private readonly insertEvidence: Statement<[Uint8Array, number, Uint8Array]>;
  private readonly selectUpdates: Statement<[number], Buffer>;
  private readonly selectUpdatesRange: Statement<
    [number, number],
    { height: number; bytes: Buffer }
  >;
  private readonly insertUpdates: Statement<[number, Uint8Array]>;
  private readonly insertReceipt: Statement<[Uint8Array, number, number, Uint8Array]>;
  private readonly insertAccountTx: Statement<[Uint8Array, number, number, Uint8Array]>;
  private readonly selectReceipt: Statement<
    [Uint8Array],
    { tx_hash: Buffer; height: number; idx: number; bytes: Buffer }
  >;
  private readonly selectHistory: Statement<
    [Uint8Array, number, number, number, number],
    { height: number; idx: number; tx_hash: Buffer }
  >;

  constructor(db: Database) {
    this.selectLatest = db.prepare<[], number | null>('SELECT max(height) FROM block').pluck();
    this.selectEarliest = db.prepare<[], number | null>('SELECT min(height) FROM block').pluck();
    this.selectByHeight = db.prepare(`SELECT ${BLOCK_COLUMNS} FROM block b WHERE b.height = ?`);
    this.selectByHash = db.prepare(`SELECT ${BLOCK_COLUMNS} FROM block b WHERE b.hash = ?`);
    this.selectHashAt = db
      .prepare<[number], Buffer>('SELECT hash FROM block WHERE height = ?')
      .pluck();
    this.selectHeightOfHash = db
      .prepare<[Uint8Array], number>('SELECT height FROM block WHERE hash = ?')
      .pluck();
    this.selectCommit = db
      .prepare<[number], Buffer>('SELECT bytes FROM block_commit WHERE height = ?')
      .pluck();
    this.selectRange = db.prepare(
      `SELECT ${BLOCK_COLUMNS}, c.bytes AS "commit" FROM block b
       LEFT JOIN block_commit c ON c.height = b.height
       WHERE b.height BETWEEN ? AND ? ORDER BY b.height LIMIT ?`,
    );
    this.selectEvidence = db.prepare('SELECT hash, height, bytes FROM evidence WHERE hash = ?');
    this.selectEvidenceAt = db.prepare(
      'SELECT hash, height, bytes FROM evidence WHERE height = ? ORDER BY hash',
    );
    this.selectEvidenceHeight = db
      .prepare<[Uint8Array], number>('SELECT height FROM evidence WHERE hash = ?')
      .pluck();
    this.insertBlock = db.prepare(
      'INSERT INTO block (height, hash, parent_hash, time_ms, bytes) VALUES (?, ?, ?, ?, ?)',
    );
    this.insertCommit = db.prepare('INSERT INTO block_commit (height, bytes) VALUES (?, ?)');
    this.insertEvidence = db.prepare('INSERT INTO evidence (hash, height, bytes) VALUES (?, ?, ?)');
    this.selectUpdates = db
      .prepare<[number], Buffer>('SELECT bytes FROM validator_update WHERE height = ?')
      .pluck();
    this.selectUpdatesRange = db.prepare(
      'SELECT height, bytes FROM validator_update WHERE height BETWEEN ? AND ? ORDER BY height',
    );
    this.insertUpdates = db.prepare('INSERT INTO validator_update (height, bytes) VALUES (?, ?)');
    this.insertReceipt = db.prepare(
      'INSERT OR IGNORE INTO tx_receipt (tx_hash, height, idx, bytes) VALUES (?, ?, ?, ?)',
    );
    this.insertAccountTx = db.prepare(
      'INSERT OR IGNORE INTO account_tx (account, height, idx, tx_hash) VALUES (?, ?, ?, ?)',
    );
    this.selectReceipt = db.prepare(
      'SELECT tx_hash, height, idx, bytes FROM tx_receipt WHERE tx_hash = ?',
    );
    // (height, idx) < (before height, before idx), newest first.
    this.selectHistory = db.prepare(
      `SELECT height, idx, tx_hash FROM account_tx
       WHERE account = ? AND (height < ? OR (height = ? AND idx < ?))
       ORDER BY height DESC, idx DESC LIMIT ?`,
    );
  }

  receipt(txHash: Uint8Array): StoredReceipt | null {
    const row = this.selectReceipt.get(txHash);
    return row === undefined
      ? null
      : {
          txHash: fromSqlite(row.tx_hash),
          height: row.height,
          index: row.idx,
          bytes: fromSqlite(row.bytes),
        };
  }

  accountHistory(account: Uint8Array, before: TxPosition | null, limit: number): AccountTx[] {
    const bounded = Math.min(Math.max(limit, 0), MAX_HISTORY_PAGE);
    const height = before?.height ?? Number.MAX_SAFE_INTEGER;
    const index = before?.index ?? 0;
    return this.selectHistory
      .all(account, height, height, index, bounded)
      .map((row) => ({ height: row.height, index: row.idx, txHash: fromSqlite(row.tx_hash) }));
  }

  latestHeight(): number | null {
    return this.selectLatest.get() ?? null;
  }

  earliestHeight(): number | null {
    return this.selectEarliest.get() ?? null;
  }

  byHeight(height: number): StoredBlock | null {
    const row = this.selectByHeight.get(height);
    return row === undefined ? null : toBlock(row);
  }

  byHash(hash: Uint8Array): StoredBlock | null {
    const row = this.selectByHash.get(hash);
    return row === undefined ? null : toBlock(row);
  }

  commitAt(height: number): Uint8Array | null {
    return fromSqliteOrNull(this.selectCommit.get(height));
  }

  range(fromHeight: number, toHeight: number, limit = DEFAULT_RANGE_LIMIT): CommittedBlock[] {
    const bounded = Math.min(Math.max(limit, 0), MAX_RANGE_LIMIT);
    return this.selectRange.all(fromHeight, toHeight, bounded).map((row) => {
      if (row.commit === null) {
        throw new StorageError(StorageErrorCode.CORRUPT, `block ${row.height} has no commit`, {
          height: row.height,
        });
      }
      return { block: toBlock(row), commit: fromSqlite(row.commit) };
    });
  }

  evidence(hash: Uint8Array): StoredEvidence | null {
    const row = this.selectEvidence.get(hash);
    return row === undefined ? null : toEvidence(row);
  }

  evidenceAt(height: number): StoredEvidence[] {
    return this.selectEvidenceAt.all(height).map(toEvidence);
  }

  validatorUpdatesAt(height: number): Uint8Array | null {
    return fromSqliteOrNull(this.selectUpdates.get(height));
  }

  /**
   * The stored updates of blocks `fromHeight..toHeight`, in height order. With `maxBytes`, rows
   * are read one at a time and reading stops after the first row that takes the total over it
   * (that row included, so a pager knows where to continue), so a wide range never loads more
   * than about `maxBytes` plus one block's updates.
   */
  validatorUpdatesRange(
    fromHeight: number,
    toHeight: number,
    maxBytes = Number.POSITIVE_INFINITY,
  ): StoredValidatorUpdates[] {
    const rows: StoredValidatorUpdates[] = [];
    let total = 0;
    for (const row of this.selectUpdatesRange.iterate(fromHeight, toHeight)) {
      const bytes = fromSqlite(row.bytes);
      rows.push({ height: row.height, bytes });
      total += bytes.length;
      if (total > maxBytes) break;
    }
    return rows;
  }

  /**
   * Writes one block with its commit, evidence and validator updates after checking that it
   * extends the chain. Must run inside the caller's transaction (saveBlock), which also writes
   * the state.
   */
  append(
    block: BlockInput,
    commit: Uint8Array,
    evidence: readonly EvidenceInput[],
    validatorUpdates?: Uint8Array,
    receipts: readonly ReceiptInput[] = [],
  ): void {
    const latest = this.latestHeight();
    if (latest === null) {
      // A chain starts at height 1, whose parent is the genesis document: a store that began
      // later could not be tied to its genesis when the node starts (consensus/driver/chain.ts).
      if (block.height !== 1) {
        throw new StorageError(
          StorageErrorCode.HEIGHT_NOT_NEXT,
          `block height ${block.height} cannot start an empty store: the first block is height 1`,
          { height: block.height, latestHeight: null },
        );
      }
    } else {
      if (block.height !== latest + 1) {
        throw new StorageError(
          StorageErrorCode.HEIGHT_NOT_NEXT,
          `block height ${block.height} does not follow the latest stored height ${latest}`,
          { height: block.height, latestHeight: latest },
        );
      }
      const parentHash = this.selectHashAt.get(latest) as Buffer;
      if (Buffer.compare(parentHash, block.parentHash) !== 0) {
        throw new StorageError(
          StorageErrorCode.PARENT_MISMATCH,
          `block ${block.height} names a parent that is not the stored block ${latest}`,
          { height: block.height },
        );
      }
    }
    const existing = this.selectHeightOfHash.get(block.hash);
    if (existing !== undefined) {
      throw new StorageError(
        StorageErrorCode.DUPLICATE_BLOCK,
        `a block with this hash is already stored at height ${existing}`,
        { height: block.height, existingHeight: existing },
      );
    }
    this.insertBlock.run(block.height, block.hash, block.parentHash, block.timeMs, block.bytes);
    this.insertCommit.run(block.height, commit);
    for (const item of evidence) {
      const included = this.selectEvidenceHeight.get(item.hash);
      if (included !== undefined) {
        throw new StorageError(
          StorageErrorCode.DUPLICATE_EVIDENCE,
          `evidence ${Buffer.from(item.hash).toString('hex')} was already included at height ${included}`,
          { height: block.height, includedAt: included },
        );
      }
      this.insertEvidence.run(item.hash, block.height, item.bytes);
    }
    if (validatorUpdates !== undefined) this.insertUpdates.run(block.height, validatorUpdates);
    for (const receipt of receipts) {
      this.insertReceipt.run(receipt.txHash, block.height, receipt.index, receipt.bytes);
      for (const account of receipt.accounts) {
        this.insertAccountTx.run(account, block.height, receipt.index, receipt.txHash);
      }
    }
  }
}
