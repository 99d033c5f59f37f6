import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import {
  CHECKPOINT_TYPE,
  ConsensusWalError,
  ConsensusWalErrorCode,
  DEFAULT_MAX_RECORD_BYTES,
  WAL_HEADER,
  checkpointHeight,
  encodeCheckpoint,
  encodeFrame,
  scanWal,
} from './wal-format.js';
import type { WalRecord, WalScan } from './wal-format.js';

export interface ConsensusWalOptions {
  /** Largest payload `append` accepts (default 16 MiB). */
  readonly maxRecordBytes?: number;
}

/** What the driver needs after a restart: everything since the last committed height. */
export interface WalReplay {
  /** The height of the last `endHeight` checkpoint, or null if there was none yet. */
  readonly lastEndHeight: number | null;
  /** The records appended after that checkpoint, in order. */
  readonly records: readonly WalRecord[];
}

/**
 * The consensus write-ahead log: the driver appends every message it is about to act on (its
 * own votes and proposals above all) and `append` returns only once the record is on disk, so
 * after a crash the replayed records stop the validator from signing a conflicting vote
 * (Tendermint's WAL, Buchman–Kwon–Milosevic 2018 §V "signing rules" rely on this). After a
 * height commits, `endHeight` starts a fresh log that holds only the checkpoint.
 */
export interface ConsensusWal {
  readonly path: string;
  /** Bytes of a torn last record that opening cut off (0 after a clean shutdown). */
  readonly truncatedBytes: number;
  append(record: WalRecord): void;
  endHeight(height: number): void;
  replay(): WalReplay;
  sizeBytes(): number;
  close(): void;
}

function ioFailure(message: string, path: string, error: unknown): ConsensusWalError {
  return new ConsensusWalError(
    ConsensusWalErrorCode.IO_FAILED,
    `${message}: ${(error as Error).message}`,
    { path, errno: (error as NodeJS.ErrnoException).code },
    { cause: error },
  );
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) {
    written += writeSync(fd, bytes, written, bytes.length - written);
  }
}

/** fsync the directory, so a created or renamed file's name is durable too (POSIX fsync(2)). */
function syncDirectory(path: string): void {
  const fd = openSync(dirname(path), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces the log with one holding `content` after the header, atomically: a temporary file
 * is written and fsynced, renamed over the log, and the directory fsynced. A crash leaves
 * either the old log or the new one, never a mix.
 */
function replaceLog(path: string, content: Uint8Array): void {
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeAll(fd, WAL_HEADER);
    writeAll(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  syncDirectory(path);
}

function lastCheckpoint(scan: WalScan): { height: number | null; index: number } {
  for (let index = scan.records.length - 1; index >= 0; index--) {
    const record = scan.records[index] as WalScan['records'][number];
    if (record.type === CHECKPOINT_TYPE) {
      return { height: checkpointHeight(record.payload) as number, index };
    }
  }
  return { height: null, index: -1 };
}

class FileConsensusWal implements ConsensusWal {
  private fd: number;
  private size: number;
  private lastEnd: number | null;
  private failed: Error | undefined;
  private closed = false;

  constructor(
    readonly path: string,
    readonly truncatedBytes: number,
    scan: WalScan,
    private readonly maxRecordBytes: number,
  ) {
    this.size = scan.validEnd;
    this.lastEnd = lastCheckpoint(scan).height;
    this.fd = openSync(path, 'a');
  }

  private usable(operation: string): void {
    if (this.closed) {
      throw new ConsensusWalError(ConsensusWalErrorCode.CLOSED, `${operation}: the WAL is closed`, {
        path: this.path,
      });
    }
    if (this.failed !== undefined) {
      throw new ConsensusWalError(
        ConsensusWalErrorCode.IO_FAILED,
        `${operation}: an earlier write failed and could not be undone; reopen the WAL`,
        { path: this.path },
        { cause: this.failed },
      );
    }
  }

  append(record: WalRecord): void {
    this.usable('append');
    const { type, payload } = record;
    if (!Number.isInteger(type) || type < 1 || type > 255) {
      throw new ConsensusWalError(
        ConsensusWalErrorCode.INVALID_RECORD,
        `record type must be an integer 1..255 (0 is the checkpoint), got ${String(type)}`,
        { type },
      );
    }
    if (!(payload instanceof Uint8Array)) {
      throw new ConsensusWalError(
        ConsensusWalErrorCode.INVALID_RECORD,
        'record payload must be a Uint8Array',
      );
    }
    if (payload.length > this.maxRecordBytes) {
      throw new ConsensusWalError(
        ConsensusWalErrorCode.RECORD_TOO_LARGE,
        `record payload of ${payload.length} bytes exceeds ${this.maxRecordBytes}`,
        { length: payload.length, max: this.maxRecordBytes },
      );
    }
    this.appendFrame(encodeFrame(type, payload));
  }

  /** One write and one fsync per record; a failed write is cut off again so the log stays clean. */
  private appendFrame(frame: Uint8Array): void {
    try {
      writeAll(this.fd, frame);
      fsyncSync(this.fd);
      this.size += frame.length;
    } catch (error) {
      try {
        ftruncateSync(this.fd, this.size);
        fsyncSync(this.fd);
      } catch (undo) {
        this.failed = undo as Error;
      }
      throw ioFailure('cannot append to the consensus WAL', this.path, error);
    }
  }

  endHeight(height: number): void {
    this.usable('endHeight');
    if (!Number.isSafeInteger(height) || height < 0) {
      throw new ConsensusWalError(
        ConsensusWalErrorCode.INVALID_RECORD,
        `checkpoint height must be a non-negative safe integer, got ${String(height)}`,
        { height },
      );
    }
    if (this.lastEnd !== null && height <= this.lastEnd) {
      throw new ConsensusWalError(
        ConsensusWalErrorCode.CHECKPOINT_ORDER,
        `checkpoint ${height} does not follow the last checkpoint ${this.lastEnd}`,
        { height, lastEndHeight: this.lastEnd },
      );
    }
    const checkpoint = encodeCheckpoint(height);
    try {
      replaceLog(this.path, checkpoint);
      closeSync(this.fd);
      this.fd = openSync(this.path, 'a');
    } catch (error) {
      // Which file the descriptor now points at is unknown (the rename may have happened):
      // refuse further appends rather than write into an unlinked file.
      this.failed = error as Error;
      throw ioFailure('cannot rotate the consensus WAL', this.path, error);
    }
    this.size = WAL_HEADER.length + checkpoint.length;
    this.lastEnd = height;
  }

  replay(): WalReplay {
    this.usable('replay');
    const scan = scanWal(readFileSync(this.path), this.maxRecordBytes);
    if (scan.tornBytes > 0) {
      // Opening cut any torn tail off, and appends undo failed writes: this is damage.
      throw new ConsensusWalError(
        ConsensusWalErrorCode.CORRUPT,
        `unreadable bytes at offset ${scan.validEnd} of a WAL that was repaired when opened`,
        { offset: scan.validEnd, unreadable: scan.tornBytes },
      );
    }
    const { height, index } = lastCheckpoint(scan);
    const records = scan.records
      .slice(index + 1)
      .map(({ type, payload }) => ({ type, payload: payload.slice() }));
    return { lastEndHeight: height, records };
  }

  sizeBytes(): number {
    this.usable('sizeBytes');
    return this.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/**
 * Opens the consensus WAL at `path`, creating it if missing. A torn last record (a crash in
 * the middle of `append`) is cut off and fsynced; anything worse is `CORRUPT`, a file that is
 * not a WAL is `NOT_A_WAL`, and file-system failures are `IO_FAILED`.
 */
export function openConsensusWal(path: string, options: ConsensusWalOptions = {}): ConsensusWal {
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!Number.isSafeInteger(maxRecordBytes) || maxRecordBytes < 1 || maxRecordBytes > 2 ** 31) {
    throw new RangeError(`maxRecordBytes must be 1..2^31, got ${maxRecordBytes}`);
  }
  try {
    // A leftover temporary file is a rotation that crashed before its rename: the old log wins.
    rmSync(`${path}.tmp`, { force: true });
    if (!existsSync(path) || statSync(path).size === 0) replaceLog(path, new Uint8Array(0));
    const scan = scanWal(readFileSync(path), maxRecordBytes);
    if (scan.tornBytes > 0) {
      const fd = openSync(path, 'r+');
      try {
        ftruncateSync(fd, scan.validEnd);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    return new FileConsensusWal(path, scan.tornBytes, scan, maxRecordBytes);
  } catch (error) {
    if (error instanceof ConsensusWalError) throw error;
    throw ioFailure(`cannot open the consensus WAL ${path}`, path, error);
  }
}

/** The conventional WAL location next to a node's store file. */
export function consensusWalPathFor(storePath: string): string {
  return `${storePath}.consensus-wal`;
}
