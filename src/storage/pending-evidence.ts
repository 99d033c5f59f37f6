import type { Database, Statement } from 'better-sqlite3';
import { z } from 'zod';
import { bytes, parseInput, uint } from '../codec/schema.js';
import { fromSqlite } from './sqlite-bytes.js';

/** Largest encoded pending offence the store accepts (consensus encodes evidence in 8 KiB). */
export const MAX_PENDING_EVIDENCE_BYTES = 64 * 1024;

/**
 * One offence the consensus evidence pool holds and no stored block includes yet. The store
 * does not interpret it: consensus names the offence (`key`) and encodes the evidence.
 */
export interface PendingEvidence {
  /** Names the offence (32 bytes; consensus derives it, one row per offence). */
  readonly key: Uint8Array;
  /** The height of the offence (its votes' height). */
  readonly height: number;
  /** The evidence as consensus encoded it. */
  readonly bytes: Uint8Array;
}

/**
 * The evidence pool's table (schema version 5). Every write is one SQLite transaction, fsynced
 * when it returns (`synchronous=FULL`). The pool bounds the number of rows; `list` reads them all.
 */
export interface PendingEvidenceStore {
  /** Writes one offence, replacing a row with the same key. */
  put(entry: PendingEvidence): void;
  /** Removes the offences named (unknown keys are ignored) in one transaction; returns how many. */
  delete(keys: readonly Uint8Array[]): number;
  /** Every pending offence, by height, then key. */
  list(): PendingEvidence[];
}

const HASH_BYTES = 32;
const key = bytes({ length: HASH_BYTES });
const entrySchema = z.strictObject({
  key,
  height: uint,
  bytes: bytes({ min: 1, max: MAX_PENDING_EVIDENCE_BYTES }),
});
const keysSchema = z.array(key);

export function parsePendingEvidence(input: unknown): PendingEvidence {
  return parseInput(entrySchema, input, 'pendingEvidence');
}

export function parsePendingEvidenceKeys(input: unknown): Uint8Array[] {
  return parseInput(keysSchema, input, 'keys');
}

interface PendingRow {
  key: Buffer;
  height: number;
  bytes: Buffer;
}

/** The `pending_evidence` table behind prepared statements. */
export class PendingEvidenceTable {
  private readonly insert: Statement<[Uint8Array, number, Uint8Array]>;
  private readonly remove: Statement<[Uint8Array]>;
  private readonly selectAll: Statement<[], PendingRow>;

  constructor(private readonly db: Database) {
    this.insert = db.prepare(
      'INSERT OR REPLACE INTO pending_evidence (key, height, bytes) VALUES (?, ?, ?)',
    );
    this.remove = db.prepare('DELETE FROM pending_evidence WHERE key = ?');
    this.selectAll = db.prepare(
      'SELECT key, height, bytes FROM pending_evidence ORDER BY height, key',
    );
  }

  put(entry: PendingEvidence): void {
    this.insert.run(entry.key, entry.height, entry.bytes);
  }

  delete(keys: readonly Uint8Array[]): number {
    if (keys.length === 0) return 0;
    const removeAll = this.db.transaction((): number => {
      let removed = 0;
      for (const name of keys) removed += this.remove.run(name).changes;
      return removed;
    });
    return removeAll.immediate();
  }

  list(): PendingEvidence[] {
    return this.selectAll.all().map((row) => ({
      key: fromSqlite(row.key),
      height: row.height,
      bytes: fromSqlite(row.bytes),
    }));
  }
}
