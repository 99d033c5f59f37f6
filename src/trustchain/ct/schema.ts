import {
  migratePrefixedTables,
  type PrefixedMigration,
} from '../../storage/prefixed-migrations.js';
import type { Database } from 'better-sqlite3';
import { CtError, CtErrorCode } from './errors.js';

/**
 * The log's tables, in the node's SQLite file next to the store's own. They carry a `ct_`
 * prefix and their own version table (`ct_schema_version`), so the store's `schema_version`
 * history and this one never interleave. Applied steps are never edited; a change is a new one.
 */
const MIGRATIONS: readonly PrefixedMigration[] = [
  {
    version: 1,
    name: 'entries, subtree hashes, tree heads and checkpoint signatures',
    sql: `
      -- One row per log entry: its RFC 6962 MerkleTreeLeaf and the submitted chain.
      CREATE TABLE ct_entry (
        idx INTEGER PRIMARY KEY CHECK (idx >= 0),
        leaf BLOB NOT NULL CHECK (length(leaf) BETWEEN 2 AND 65535),
        extra_data BLOB NOT NULL
      ) STRICT;

      -- Every complete subtree: (level, idx) is the root of leaves [idx·2^level, (idx+1)·2^level).
      -- Level 0 holds the leaf hashes; level 8·L holds the hashes of tlog-tiles level L.
      CREATE TABLE ct_node (
        level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
        idx INTEGER NOT NULL CHECK (idx >= 0),
        hash BLOB NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX ct_leaf_by_hash ON ct_node (hash) WHERE level = 0;

      -- One tree head per appended batch (RFC 6962 §3.5 fields).
      CREATE TABLE ct_tree_head (
        tree_size INTEGER PRIMARY KEY CHECK (tree_size >= 1),
        timestamp_ms INTEGER NOT NULL CHECK (timestamp_ms >= 0),
        root BLOB NOT NULL CHECK (length(root) = 32)
      ) STRICT;

      -- Verified signed-note lines over a tree head's checkpoint, in the order they arrived.
      CREATE TABLE ct_signature (
        id INTEGER PRIMARY KEY,
        tree_size INTEGER NOT NULL REFERENCES ct_tree_head (tree_size),
        key_name TEXT NOT NULL,
        key_id INTEGER NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
        signature BLOB NOT NULL,
        UNIQUE (tree_size, key_name, key_id)
      ) STRICT;

      CREATE TABLE ct_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
    `,
  },
];

export const CT_SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the ct_ tables to the newest version, each step in its own immediate transaction. */
export function migrateCtSchema(db: Database): void {
  migratePrefixedTables(
    db,
    'ct',
    MIGRATIONS,
    (message, detail) => new CtError(CtErrorCode.CORRUPT_STORE, message, detail),
  );
}
