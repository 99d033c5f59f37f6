import type { Database, Statement } from 'better-sqlite3';
import { bytesEqual, concatBytes } from '../../crypto/bytes.js';
import { HASH_SIZE, leafHash, nodeHash } from '../../crypto/merkle.js';
import {
  formatCheckpointBody,
  requireOrigin,
  verifySignatures,
  type CheckpointVerifierSet,
  type TreeHead,
} from './checkpoint.js';
import { CtError, CtErrorCode } from './errors.js';
import { MAX_EXTRA_DATA_BYTES, decodeMerkleTreeLeaf } from './leaf.js';
import {
  MAX_NOTE_SIGNATURES,
  formatSignedNote,
  parseSignedNote,
  type NoteSignature,
} from './note.js';
import { migrateCtSchema } from './schema.js';
import { TILE_HEIGHT, TILE_WIDTH } from './tiles.js';
import {
  consistencyPath,
  inclusionPath,
  levelWidth,
  rootAt,
  type SubtreeReader,
} from './tree-math.js';

/** Most entries one `appendBatch` takes (one block's certificates). */
export const MAX_BATCH_ENTRIES = 100_000;
/** Most entries one `entries` read returns. */
export const MAX_ENTRIES_PER_READ = 1_024;

export interface CtEntryInput {
  /** RFC 6962 MerkleTreeLeaf bytes (see `encodeMerkleTreeLeaf`). */
  readonly leaf: Uint8Array;
  /** RFC 6962 §4.6 extra_data (the chain); empty when omitted. */
  readonly extraData?: Uint8Array;
}

export interface CtLogEntry {
  readonly index: number;
  readonly leaf: Uint8Array;
  readonly extraData: Uint8Array;
}

export interface AppendResult {
  /** Index of the batch's first entry. */
  readonly firstIndex: number;
  readonly treeHead: TreeHead;
  /** The unsigned checkpoint body for the new tree head, for cosigners to sign. */
  readonly checkpointBody: string;
}

export interface SignedCheckpoint {
  readonly treeHead: TreeHead;
  readonly note: string;
}

export interface CtLogOptions {
  /** The checkpoint origin (log identity), fixed when the log is created. */
  readonly origin: string;
}

interface Statements {
  readNode: Statement<[number, number], Buffer>;
  readNodes: Statement<[number, number, number], Buffer>;
  insertNode: Statement<[number, number, Uint8Array]>;
  insertEntry: Statement<[number, Uint8Array, Uint8Array]>;
  readEntries: Statement<[number, number], { idx: number; leaf: Buffer; extra_data: Buffer }>;
  readLeaves: Statement<[number, number], Buffer>;
  findLeaf: Statement<[Uint8Array, number], number>;
  insertHead: Statement<[number, number, Uint8Array]>;
  readHead: Statement<[number], { tree_size: number; timestamp_ms: number; root: Buffer }>;
  latestHead: Statement<[], { tree_size: number; timestamp_ms: number; root: Buffer }>;
  latestSignedHead: Statement<[], { tree_size: number; timestamp_ms: number; root: Buffer }>;
  readSignatures: Statement<[number], { key_name: string; key_id: number; signature: Buffer }>;
  countSignatures: Statement<[number], number>;
  insertSignature: Statement<[number, string, number, Uint8Array]>;
}

function outOfRange(message: string, detail: Record<string, unknown> = {}): CtError {
  return new CtError(CtErrorCode.OUT_OF_RANGE, message, detail);
}

function requireCount(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw outOfRange(`${name} must be a non-negative safe integer, got ${String(value)}`, { name });
  }
  return value;
}

function toTreeHead(row: { tree_size: number; timestamp_ms: number; root: Buffer }): TreeHead {
  return {
    treeSize: row.tree_size,
    timestamp: row.timestamp_ms,
    rootHash: new Uint8Array(row.root),
  };
}

/**
 * An append-only RFC 6962 log in SQLite. Every complete subtree hash is stored (about 2n rows
 * for n entries), so any root, inclusion proof or consistency proof at any size reads O(log n)
 * rows, and C2SP tiles are range reads. One `appendBatch` is one SQLite transaction: entries,
 * hashes and the new tree head commit together or not at all. The right edge of the tree (one
 * pending hash per level) is kept in memory and re-read if another connection appended.
 */
export class CtLog {
  readonly origin: string;
  private readonly statements: Statements;
  private treeSize = 0;
  /** frontier[level]: the left sibling waiting for a right one at that level, if any. */
  private frontier: Array<Uint8Array | undefined> = [];
  private closed = false;
  private readonly read: SubtreeReader;

  constructor(
    private readonly db: Database,
    options: CtLogOptions,
  ) {
    this.origin = requireOrigin(options.origin);
    migrateCtSchema(db);
    db.transaction(() => {
      const stored = db.prepare("SELECT value FROM ct_meta WHERE key = 'origin'").pluck().get() as
        string | undefined;
      if (stored === undefined) {
        db.prepare("INSERT INTO ct_meta (key, value) VALUES ('origin', ?)").run(this.origin);
      } else if (stored !== this.origin) {
        throw new CtError(
          CtErrorCode.INVALID_ORIGIN,
          `this database holds the log ${JSON.stringify(stored)}, not ${JSON.stringify(this.origin)}`,
          { stored, requested: this.origin },
        );
      }
    }).immediate();
    this.statements = {
      readNode: db
        .prepare<[number, number], Buffer>('SELECT hash FROM ct_node WHERE level = ? AND idx = ?')
        .pluck(),
      readNodes: db
        .prepare<[number, number, number], Buffer>(
          'SELECT hash FROM ct_node WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx',
        )
        .pluck(),
      insertNode: db.prepare('INSERT INTO ct_node (level, idx, hash) VALUES (?, ?, ?)'),
      insertEntry: db.prepare('INSERT INTO ct_entry (idx, leaf, extra_data) VALUES (?, ?, ?)'),
      readEntries: db.prepare(
        'SELECT idx, leaf, extra_data FROM ct_entry WHERE idx >= ? AND idx < ? ORDER BY idx',
      ),
      readLeaves: db
        .prepare<[number, number], Buffer>(
          'SELECT leaf FROM ct_entry WHERE idx >= ? AND idx < ? ORDER BY idx',
        )
        .pluck(),
      findLeaf: db
        .prepare<[Uint8Array, number], number>(
          'SELECT idx FROM ct_node WHERE level = 0 AND hash = ? AND idx < ? ORDER BY idx LIMIT 1',
        )
        .pluck(),
      insertHead: db.prepare(
        'INSERT INTO ct_tree_head (tree_size, timestamp_ms, root) VALUES (?, ?, ?)',
      ),
      readHead: db.prepare(
        'SELECT tree_size, timestamp_ms, root FROM ct_tree_head WHERE tree_size = ?',
      ),
      latestHead: db.prepare(
        'SELECT tree_size, timestamp_ms, root FROM ct_tree_head ORDER BY tree_size DESC LIMIT 1',
      ),
      // Walks ct_signature's (tree_size, …) index from the top and stops at the first row whose
      // head exists: O(log n) however many heads are signed or unsigned. CROSS JOIN fixes that
      // loop order; an `IN (SELECT …)` or a walk down ct_tree_head would read every signature
      // or every unsigned head above the latest signed one, on each unauthenticated checkpoint
      // request.
      latestSignedHead: db.prepare(
        `SELECT h.tree_size, h.timestamp_ms, h.root
         FROM ct_signature s CROSS JOIN ct_tree_head h ON h.tree_size = s.tree_size
         ORDER BY s.tree_size DESC LIMIT 1`,
      ),
      readSignatures: db.prepare(
        'SELECT key_name, key_id, signature FROM ct_signature WHERE tree_size = ? ORDER BY id',
      ),
      countSignatures: db
        .prepare<[number], number>('SELECT count(*) FROM ct_signature WHERE tree_size = ?')
        .pluck(),
      insertSignature: db.prepare(
        'INSERT OR IGNORE INTO ct_signature (tree_size, key_name, key_id, signature) VALUES (?, ?, ?, ?)',
      ),
    };
    this.read = (level, index) => {
      const hash = this.statements.readNode.get(level, index);
      if (hash === undefined) {
        throw new CtError(CtErrorCode.CORRUPT_STORE, `subtree (${level}, ${index}) is missing`, {
          level,
          index,
        });
      }
      return new Uint8Array(hash);
    };
    this.loadFrontier();
  }

  /**
   * Entries in the log (the size of the latest tree head), read from the database so that a
   * reader sees batches appended through another connection or `CtLog`.
   */
  get size(): number {
    this.requireOpen();
    this.syncWithDatabase();
    return this.treeSize;
  }

  /**
   * Appends one batch (one block's entries) and records its tree head, in one transaction.
   * Every leaf must be a well-formed MerkleTreeLeaf; `timestamp` (ms) must not be earlier than
   * the previous tree head's. An empty batch writes nothing and returns the latest head.
   */
  appendBatch(entries: readonly CtEntryInput[], timestamp: number): AppendResult {
    this.requireOpen();
    if (!Array.isArray(entries)) {
      throw new CtError(CtErrorCode.INVALID_ENTRY, 'entries must be an array');
    }
    if (entries.length > MAX_BATCH_ENTRIES) {
      throw new CtError(
        CtErrorCode.BATCH_TOO_LARGE,
        `a batch holds at most ${MAX_BATCH_ENTRIES} entries, got ${entries.length}`,
        { count: entries.length },
      );
    }
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw new CtError(CtErrorCode.INVALID_TIMESTAMP, 'timestamp must be a non-negative integer');
    }
    const checked = entries.map((entry, i) => {
      if (typeof entry !== 'object' || entry === null || !(entry.leaf instanceof Uint8Array)) {
        throw new CtError(CtErrorCode.INVALID_ENTRY, `entry ${i} has no leaf bytes`, { entry: i });
      }
      try {
        decodeMerkleTreeLeaf(entry.leaf);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new CtError(CtErrorCode.INVALID_ENTRY, `entry ${i}: ${message}`, { entry: i });
      }
      const extraData = entry.extraData ?? new Uint8Array(0);
      if (!(extraData instanceof Uint8Array) || extraData.length > MAX_EXTRA_DATA_BYTES) {
        throw new CtError(
          CtErrorCode.INVALID_ENTRY,
          `entry ${i}: extraData must be at most ${MAX_EXTRA_DATA_BYTES} bytes`,
          { entry: i },
        );
      }
      return { leaf: entry.leaf, extraData, hash: leafHash(entry.leaf) };
    });
    const write = this.db.transaction((): AppendResult => {
      this.syncWithDatabase();
      const latest = this.statements.latestHead.get();
      if (latest !== undefined && timestamp < latest.timestamp_ms) {
        throw new CtError(
          CtErrorCode.INVALID_TIMESTAMP,
          `timestamp ${timestamp} is before the latest tree head's ${latest.timestamp_ms}`,
          { timestamp, latest: latest.timestamp_ms },
        );
      }
      const firstIndex = this.treeSize;
      if (checked.length === 0) {
        if (latest === undefined) {
          throw new CtError(CtErrorCode.INVALID_ENTRY, 'the first batch must hold entries');
        }
        const treeHead = toTreeHead(latest);
        return { firstIndex, treeHead, checkpointBody: this.bodyOf(treeHead) };
      }
      const frontier = [...this.frontier];
      let size = this.treeSize;
      for (const entry of checked) {
        this.statements.insertEntry.run(size, entry.leaf, entry.extraData);
        let node = entry.hash;
        for (let level = 0; ; level++) {
          const position = levelWidth(size, level);
          this.statements.insertNode.run(level, position, node);
          if (position % 2 === 0) {
            frontier[level] = node;
            break;
          }
          node = nodeHash(frontier[level] as Uint8Array, node);
          frontier[level] = undefined;
        }
        size++;
      }
      const treeHead: TreeHead = {
        treeSize: size,
        timestamp,
        rootHash: this.rootFromFrontier(frontier, size),
      };
      this.statements.insertHead.run(size, timestamp, treeHead.rootHash);
      this.frontier = frontier;
      this.treeSize = size;
      return { firstIndex, treeHead, checkpointBody: this.bodyOf(treeHead) };
    });
    try {
      return write.immediate();
    } catch (error) {
      // The transaction rolled back; the in-memory right edge may be ahead of the file.
      this.loadFrontier();
      throw error;
    }
  }

  /** The latest tree head, or undefined for an empty log. */
  latestTreeHead(): TreeHead | undefined {
    this.requireOpen();
    const row = this.statements.latestHead.get();
    return row === undefined ? undefined : toTreeHead(row);
  }

  /** The tree head recorded at `size` (the end of a batch); `UNKNOWN_TREE_HEAD` otherwise. */
  treeHead(size: number): TreeHead {
    this.requireOpen();
    const row = this.statements.readHead.get(requireCount(size, 'tree size'));
    if (row === undefined) {
      throw new CtError(CtErrorCode.UNKNOWN_TREE_HEAD, `no tree head at size ${size}`, { size });
    }
    return toTreeHead(row);
  }

  /** MTH of the first `size` entries, for any size up to the log's. */
  rootAt(size: number): Uint8Array {
    this.requireSize(size);
    return rootAt(this.read, size);
  }

  /** The Merkle leaf hash of entry `index`. */
  leafHash(index: number): Uint8Array {
    this.requireIndex(index, this.size);
    return this.read(0, index);
  }

  /** PATH(index, D[size]) (RFC 9162 §2.1.3.1), the audit path of `get-proof-by-hash`. */
  inclusionProof(index: number, size: number): Uint8Array[] {
    this.requireSize(size);
    this.requireIndex(index, size);
    return inclusionPath(this.read, index, size);
  }

  /** PROOF(first, D[second]) (RFC 9162 §2.1.4.1); empty when first is 0 or second. */
  consistencyProof(first: number, second: number): Uint8Array[] {
    this.requireSize(second);
    requireCount(first, 'first');
    if (first > second) throw outOfRange(`first ${first} is larger than second ${second}`);
    return consistencyPath(this.read, first, second);
  }

  /** The lowest index below `size` whose leaf hash is `hash`; `UNKNOWN_LEAF` if none. */
  findLeafIndex(hash: Uint8Array, size: number): number {
    this.requireSize(size);
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_SIZE) {
      throw new CtError(CtErrorCode.INVALID_HASH, 'leaf hash must be 32 bytes');
    }
    const index = this.statements.findLeaf.get(hash, size);
    if (index === undefined) {
      throw new CtError(
        CtErrorCode.UNKNOWN_LEAF,
        `no leaf with this hash in the tree of size ${size}`,
        {
          size,
        },
      );
    }
    return index;
  }

  /** Entries [start, end) with end - start ≤ MAX_ENTRIES_PER_READ and end ≤ size. */
  entries(start: number, end: number): CtLogEntry[] {
    this.requireOpen();
    requireCount(start, 'start');
    requireCount(end, 'end');
    const size = this.size;
    if (start > end || end > size || end - start > MAX_ENTRIES_PER_READ) {
      throw outOfRange(
        `entries [${start}, ${end}) are not a range of at most ${MAX_ENTRIES_PER_READ} in a log of ${size}`,
        { start, end, size },
      );
    }
    return this.statements.readEntries.all(start, end).map((row) => ({
      index: row.idx,
      leaf: new Uint8Array(row.leaf),
      extraData: new Uint8Array(row.extra_data),
    }));
  }

  /**
   * The hashes of tlog-tiles tile (level, index) of `width` hashes, concatenated, when the log
   * holds them; undefined otherwise (the tile is not (yet) that wide).
   */
  tile(level: number, index: number, width: number): Uint8Array | undefined {
    this.requireOpen();
    const treeLevel = level * TILE_HEIGHT;
    const start = index * TILE_WIDTH;
    if (!this.tileFits(start, width, levelWidth(this.size, treeLevel))) return undefined;
    const hashes = this.statements.readNodes.all(treeLevel, start, start + width);
    if (hashes.length !== width) {
      throw new CtError(CtErrorCode.CORRUPT_STORE, `tile ${level}/${index} has missing hashes`);
    }
    return concatBytes(...hashes);
  }

  /** The tlog-tiles entry bundle `index` of `width` entries (uint16 length-prefixed leaves). */
  entryBundle(index: number, width: number): Uint8Array | undefined {
    this.requireOpen();
    const start = index * TILE_WIDTH;
    if (!this.tileFits(start, width, this.size)) return undefined;
    const leaves = this.statements.readLeaves.all(start, start + width);
    const parts: Uint8Array[] = [];
    for (const leaf of leaves) {
      parts.push(Uint8Array.of(leaf.length >> 8, leaf.length & 0xff), leaf);
    }
    return concatBytes(...parts);
  }

  /** The checkpoint body of the tree head at `size`. */
  checkpointBody(size: number): string {
    return this.bodyOf(this.treeHead(size));
  }

  /**
   * Stores the signature lines of `note` for the tree head at `size`, after checking that its
   * body is this log's body for that size and that every line is from a key in `set` and
   * verifies (`UNKNOWN_SIGNER`, `INVALID_SIGNATURE`); an RFC 6962 line must also carry the
   * tree head's timestamp. Lines already stored for a key are kept. Returns the stored note.
   */
  addCheckpointSignatures(size: number, note: string, set: CheckpointVerifierSet): string {
    this.requireOpen();
    const head = this.treeHead(size);
    if (set.origin !== this.origin) {
      throw new CtError(CtErrorCode.INVALID_ORIGIN, 'the verifier set is for another log');
    }
    const verified = verifySignatures(note, set, { requireKnown: true });
    const body = this.bodyOf(head);
    if (formatCheckpointBody(verified.checkpoint) !== body) {
      throw new CtError(
        CtErrorCode.CHECKPOINT_MISMATCH,
        `the note's checkpoint is not this log's tree head at size ${size}`,
        { size },
      );
    }
    for (const signature of verified.rfc6962) {
      if (signature.timestamp !== head.timestamp) {
        throw new CtError(
          CtErrorCode.CHECKPOINT_MISMATCH,
          `RFC 6962 signature timestamp ${signature.timestamp} is not the tree head's ${head.timestamp}`,
        );
      }
    }
    const lines = parseSignedNote(note).signatures;
    this.db
      .transaction(() => {
        for (const line of lines) {
          this.statements.insertSignature.run(size, line.name, line.keyId, line.signature);
        }
        const count = this.statements.countSignatures.get(size) as number;
        if (count > MAX_NOTE_SIGNATURES) {
          throw new CtError(
            CtErrorCode.TOO_MANY_SIGNATURES,
            `tree head ${size} would carry ${count} signatures, the limit is ${MAX_NOTE_SIGNATURES}`,
            { size, count },
          );
        }
      })
      .immediate();
    return this.signedCheckpoint(size) as string;
  }

  /** The stored signed note for the tree head at `size`, or undefined when it has no signatures. */
  signedCheckpoint(size: number): string | undefined {
    const head = this.treeHead(size);
    const signatures: NoteSignature[] = this.statements.readSignatures.all(size).map((row) => ({
      name: row.key_name,
      keyId: row.key_id,
      signature: new Uint8Array(row.signature),
    }));
    return signatures.length === 0 ? undefined : formatSignedNote(this.bodyOf(head), signatures);
  }

  /** The newest tree head that carries at least one signature, with its note. */
  latestSignedCheckpoint(): SignedCheckpoint | undefined {
    this.requireOpen();
    const row = this.statements.latestSignedHead.get();
    if (row === undefined) return undefined;
    const treeHead = toTreeHead(row);
    return { treeHead, note: this.signedCheckpoint(treeHead.treeSize) as string };
  }

  /** Stops using the database handle (which stays open: the caller owns it). */
  close(): void {
    this.closed = true;
  }

  private bodyOf(head: TreeHead): string {
    return formatCheckpointBody({ origin: this.origin, size: head.treeSize, root: head.rootHash });
  }

  private tileFits(start: number, width: number, available: number): boolean {
    return (
      Number.isSafeInteger(start) &&
      Number.isSafeInteger(width) &&
      start >= 0 &&
      width >= 1 &&
      width <= TILE_WIDTH &&
      start + width <= available
    );
  }

  /** The root from the right edge: fold the pending left siblings from the lowest level up. */
  private rootFromFrontier(
    frontier: ReadonlyArray<Uint8Array | undefined>,
    size: number,
  ): Uint8Array {
    let hash: Uint8Array | undefined;
    for (let level = 0; level < frontier.length; level++) {
      if (levelWidth(size, level) % 2 === 0) continue;
      const left = frontier[level] as Uint8Array;
      hash = hash === undefined ? left : nodeHash(left, hash);
    }
    return hash as Uint8Array;
  }

  private syncWithDatabase(): void {
    const latest = this.statements.latestHead.get();
    if ((latest?.tree_size ?? 0) !== this.treeSize) this.loadFrontier();
  }

  private loadFrontier(): void {
    const latest = this.statements.latestHead.get();
    const size = latest?.tree_size ?? 0;
    const frontier: Array<Uint8Array | undefined> = [];
    for (let level = 0; 2 ** level <= size; level++) {
      const width = levelWidth(size, level);
      frontier[level] = width % 2 === 1 ? this.read(level, width - 1) : undefined;
    }
    if (latest !== undefined && !bytesEqual(this.rootFromFrontier(frontier, size), latest.root)) {
      throw new CtError(
        CtErrorCode.CORRUPT_STORE,
        `stored hashes do not give the root at size ${size}`,
      );
    }
    this.frontier = frontier;
    this.treeSize = size;
  }

  private requireOpen(): void {
    if (this.closed) throw new CtError(CtErrorCode.CLOSED, 'the CT log was closed');
  }

  private requireSize(size: number): void {
    requireCount(size, 'tree size');
    const logSize = this.size;
    if (size > logSize) {
      throw outOfRange(`tree size ${size} is beyond the log's ${logSize}`, { size, logSize });
    }
  }

  private requireIndex(index: number, size: number): void {
    requireCount(index, 'leaf index');
    if (index >= size) {
      throw outOfRange(`leaf index ${index} is not in a tree of size ${size}`, { index, size });
    }
  }
}

/** Opens (creating its tables on first use) the CT log kept in `db`, the node's SQLite file. */
export function openCtLog(db: Database, options: CtLogOptions): CtLog {
  return new CtLog(db, options);
}
