import type { Migration } from './migrate.js';

/**
 * The node store's schema, oldest first (see docs/storage.md for the tables). Tables are STRICT
 * so a value of the wrong type is refused by SQLite itself, not stored and misread later.
 */
export const STORE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'blocks, commits and evidence',
    up: (db) => {
      db.exec(`
        CREATE TABLE block (
          height INTEGER PRIMARY KEY CHECK (height >= 0),
          hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
          parent_hash BLOB NOT NULL CHECK (length(parent_hash) = 32),
          time_ms INTEGER NOT NULL CHECK (time_ms >= 0),
          bytes BLOB NOT NULL
        ) STRICT;
        CREATE INDEX block_by_parent_hash ON block (parent_hash);
        CREATE INDEX block_by_time ON block (time_ms);

        CREATE TABLE block_commit (
          height INTEGER PRIMARY KEY REFERENCES block (height),
          bytes BLOB NOT NULL
        ) STRICT;

        CREATE TABLE evidence (
          hash BLOB PRIMARY KEY CHECK (length(hash) = 32),
          height INTEGER NOT NULL REFERENCES block (height),
          bytes BLOB NOT NULL
        ) STRICT;
        CREATE INDEX evidence_by_height ON evidence (height);
      `);
    },
  },
  {
    version: 2,
    name: 'application state with sparse Merkle tree',
    up: (db) => {
      db.exec(`
        -- Tree nodes, append-only, shared by every version that still reaches them.
        -- kind 1 = internal: a, b = left and right child hashes; left_id, right_id = their
        --   ids (NULL for an empty child). kind 2 = leaf: a = SHA-256(key), b = SHA-256(value).
        CREATE TABLE state_node (
          id INTEGER PRIMARY KEY,
          kind INTEGER NOT NULL CHECK (kind IN (1, 2)),
          a BLOB NOT NULL CHECK (length(a) = 32),
          b BLOB NOT NULL CHECK (length(b) = 32),
          left_id INTEGER REFERENCES state_node (id),
          right_id INTEGER REFERENCES state_node (id),
          CHECK (kind = 1 OR (left_id IS NULL AND right_id IS NULL))
        ) STRICT;

        -- Every write of a key, by the height that made it; value NULL is a deletion.
        CREATE TABLE state_value (
          key BLOB NOT NULL,
          height INTEGER NOT NULL REFERENCES block (height),
          value BLOB,
          PRIMARY KEY (key, height)
        ) STRICT;

        CREATE TABLE state_root (
          height INTEGER PRIMARY KEY REFERENCES block (height),
          root BLOB NOT NULL CHECK (length(root) = 32),
          root_id INTEGER REFERENCES state_node (id),
          key_count INTEGER NOT NULL CHECK (key_count >= 0)
        ) STRICT;

        -- Blocks stored before this version had no application state: the empty root.
        INSERT INTO state_root (height, root, root_id, key_count)
          SELECT height, zeroblob(32), NULL, 0 FROM block;
      `);
    },
  },
  {
    version: 3,
    name: 'validator-set updates per block',
    up: (db) => {
      db.exec(`
        -- The validator updates a block's execution returned, encoded by consensus
        -- (opaque here), one row per block that returned any. Blocks stored before this
        -- version returned none: the validator set was fixed at genesis.
        CREATE TABLE validator_update (
          height INTEGER PRIMARY KEY REFERENCES block (height),
          bytes BLOB NOT NULL CHECK (length(bytes) >= 1)
        ) STRICT;
      `);
    },
  },
  {
    version: 4,
    name: 'transaction receipts and account history',
    up: (db) => {
      db.exec(`
        -- One receipt per committed transaction (encoded by consensus, opaque here). A
        -- transaction hash names its first inclusion: a later copy (a replay a block may
        -- carry, refused by its sequence) does not replace it. Blocks stored before this
        -- version have no receipts.
        CREATE TABLE tx_receipt (
          tx_hash BLOB PRIMARY KEY CHECK (length(tx_hash) = 32),
          height INTEGER NOT NULL REFERENCES block (height),
          idx INTEGER NOT NULL CHECK (idx >= 0),
          bytes BLOB NOT NULL CHECK (length(bytes) >= 1)
        ) STRICT, WITHOUT ROWID;

        -- The transactions whose receipts name an account, newest first by (height, idx).
        CREATE TABLE account_tx (
          account BLOB NOT NULL CHECK (length(account) BETWEEN 1 AND 64),
          height INTEGER NOT NULL REFERENCES block (height),
          idx INTEGER NOT NULL CHECK (idx >= 0),
          tx_hash BLOB NOT NULL CHECK (length(tx_hash) = 32),
          PRIMARY KEY (account, height, idx)
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
  {
    version: 5,
    name: 'pending evidence pool',
    up: (db) => {
      db.exec(`
        -- Equivocation evidence this node found and no stored block includes yet (the
        -- consensus evidence pool, kept across restarts). One row per offence: key names it
        -- (32 bytes, derived by consensus), height is the offence's height, bytes the evidence
        -- as consensus encodes it (opaque here). No reference to block: the offence's own
        -- height may not be stored yet. The pool bounds the row count.
        CREATE TABLE pending_evidence (
          key BLOB PRIMARY KEY CHECK (length(key) = 32),
          height INTEGER NOT NULL CHECK (height >= 0),
          bytes BLOB NOT NULL CHECK (length(bytes) >= 1)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX pending_evidence_by_height ON pending_evidence (height, key);
      `);
    },
  },
];

/** The schema version this code writes. */
export const STORE_SCHEMA_VERSION = STORE_MIGRATIONS.length;
