import { z } from 'zod';
import { bytes, uint } from '../../codec/schema.js';
import { toHex } from '../../crypto/bytes.js';
import { readFileSync, rmSync } from 'node:fs';
import { openConsensusWal, type ConsensusWal } from '../../storage/index.js';
import { CHECKPOINT_TYPE, checkpointHeight, scanWal } from '../../storage/wal-format.js';
import { blockHash } from '../messages.js';
import type { OwnProposal, OwnVote, TendermintState } from '../state.js';
import type { Block } from '../types.js';
import type { ConsensusWalRecord } from '../wal.js';
import { decodeBlock, encodeBlock } from '../wire.js';
import { DriverError, DriverErrorCode } from './errors.js';
import {
  addressSchema,
  decodeRecord,
  encodeRecord,
  hashSchema,
  heightSchema,
  roundSchema,
  voteRecord,
  voteRequestRecord,
  voteRequestSchema,
  voteSchema,
} from './records.js';
import { ED25519_SIGNATURE_BYTES } from '../../crypto/ed25519.js';

/**
 * The driver's side of the consensus WAL (src/storage/consensus-wal.ts): after every step it
 * appends `walRecord(state)` (src/consensus/wal.ts) and the append returns once fsynced, before
 * the step's actions run.
 *
 * Blocks are logged once per height: a record names the locked/valid value and its own
 * proposals' blocks by hash and carries only the blocks no earlier record of this height
 * carried. A record is appended only when the state's logged fields changed — the state is
 * immutable and copied on write, so comparing references is exact and costs nothing — which
 * skips the fsync for most received votes.
 */
export const WAL_STATE_RECORD = 1;

const ownProposalSchema = z.strictObject({
  height: heightSchema,
  round: roundSchema,
  validRound: z.int().min(-1),
  proposer: addressSchema,
  blockHash: hashSchema,
  signature: bytes({ length: ED25519_SIGNATURE_BYTES }).nullable(),
});

const stateRecordSchema = z.strictObject({
  height: heightSchema,
  round: roundSchema,
  step: z.enum(['propose', 'prevote', 'precommit', 'commit']),
  lockedValue: hashSchema.nullable(),
  lockedRound: z.int().min(-1),
  validValue: hashSchema.nullable(),
  validRound: z.int().min(-1),
  ownVotes: z.array(z.strictObject({ request: voteRequestSchema, signed: voteSchema.nullable() })),
  ownProposals: z.array(ownProposalSchema),
  valueRequests: z.array(uint),
  blocks: z.array(bytes({ min: 1 })),
});

type StateRecord = z.infer<typeof stateRecordSchema>;

/** The fields of the state that `walRecord` reads. */
function sameLoggedFields(a: TendermintState, b: TendermintState): boolean {
  return (
    a.height === b.height &&
    a.round === b.round &&
    a.step === b.step &&
    a.lockedValue === b.lockedValue &&
    a.lockedRound === b.lockedRound &&
    a.validValue === b.validValue &&
    a.validRound === b.validRound &&
    a.ownVotes === b.ownVotes &&
    a.ownProposals === b.ownProposals &&
    a.valueRequests === b.valueRequests
  );
}

function corrupt(message: string, cause?: unknown): DriverError {
  return new DriverError(
    DriverErrorCode.WAL_RECORD_CORRUPT,
    cause === undefined ? message : `${message}: ${(cause as Error).message}`,
    {},
    cause === undefined ? undefined : { cause },
  );
}

export interface WalLogStats {
  /** Records appended (each one fsync). */
  appended: number;
  /** Outward steps whose record was unchanged, so nothing was written. */
  unchanged: number;
  /** Steps with no outward action, which need no record (see ConsensusDriver). */
  internal: number;
  bytes: number;
}

export class ConsensusLog {
  private logged: TendermintState | null = null;
  /** Hex hashes of the blocks carried by a record of the current height. */
  private loggedBlocks = new Set<string>();
  private blocksHeight = 0;
  readonly stats: WalLogStats = { appended: 0, unchanged: 0, internal: 0, bytes: 0 };

  constructor(private readonly wal: ConsensusWal) {}

  /** Appends the state's record unless it equals the last one; true when it wrote. */
  log(state: TendermintState): boolean {
    if (this.logged !== null && sameLoggedFields(this.logged, state)) {
      this.stats.unchanged++;
      return false;
    }
    if (state.height !== this.blocksHeight) {
      this.loggedBlocks = new Set();
      this.blocksHeight = state.height;
    }
    const newBlocks: { key: string; bytes: Uint8Array }[] = [];
    const reference = (block: Block | null): Uint8Array | null => {
      if (block === null) return null;
      const hash = blockHash(block.header);
      const key = toHex(hash);
      if (!this.loggedBlocks.has(key) && !newBlocks.some((entry) => entry.key === key)) {
        newBlocks.push({ key, bytes: encodeBlock(block) });
      }
      return hash;
    };
    const record = {
      height: state.height,
      round: state.round,
      step: state.step,
      lockedValue: reference(state.lockedValue),
      lockedRound: state.lockedRound,
      validValue: reference(state.validValue),
      validRound: state.validRound,
      ownVotes: [...state.ownVotes.values()].map((own) => ({
        request: voteRequestRecord(own.request),
        signed: own.signed === null ? null : voteRecord(own.signed),
      })),
      ownProposals: [...state.ownProposals.values()].map((own) => {
        reference(own.request.block);
        return {
          height: own.request.height,
          round: own.request.round,
          validRound: own.request.validRound,
          proposer: own.request.proposer,
          blockHash: own.blockHash,
          signature: own.signed === null ? null : own.signed.signature,
        };
      }),
      valueRequests: [...state.valueRequests],
      blocks: newBlocks.map((entry) => entry.bytes),
    };
    const payload = encodeRecord(record);
    this.wal.append({ type: WAL_STATE_RECORD, payload });
    for (const entry of newBlocks) this.loggedBlocks.add(entry.key);
    this.logged = state;
    this.stats.appended++;
    this.stats.bytes += payload.length;
    return true;
  }

  /** Counts a step that needed no record. */
  notNeeded(): void {
    this.stats.internal++;
  }

  /** After `height` is stored: a fresh log holding only its checkpoint. */
  endHeight(height: number): void {
    this.wal.endHeight(height);
    this.loggedBlocks = new Set();
    this.blocksHeight = 0;
    this.logged = null;
  }

  /**
   * The last record since the last checkpoint, with its blocks, or null when there is none.
   * Throws `WAL_RECORD_CORRUPT` when a record cannot be decoded or names a block no record
   * carried.
   */
  replay(): { readonly lastEndHeight: number | null; readonly record: ConsensusWalRecord | null } {
    const { lastEndHeight, records } = this.wal.replay();
    const blocks = new Map<string, Block>();
    let last: StateRecord | null = null;
    for (const [index, { type, payload }] of records.entries()) {
      if (type !== WAL_STATE_RECORD) throw corrupt(`WAL record ${index} has unknown type ${type}`);
      let record: StateRecord;
      try {
        record = decodeRecord(stateRecordSchema, payload, `walRecord[${index}]`);
        for (const bytes of record.blocks) {
          const block = decodeBlock(bytes);
          blocks.set(toHex(blockHash(block.header)), block);
        }
      } catch (error) {
        throw corrupt(`WAL record ${index} cannot be decoded`, error);
      }
      last = record;
    }
    if (last === null) return { lastEndHeight, record: null };
    return { lastEndHeight, record: this.restoreRecord(last, blocks) };
  }

  private restoreRecord(
    record: StateRecord,
    blocks: ReadonlyMap<string, Block>,
  ): ConsensusWalRecord {
    const block = (hash: Uint8Array | null): Block | null => {
      if (hash === null) return null;
      const found = blocks.get(toHex(hash));
      if (found === undefined) throw corrupt(`WAL names block ${toHex(hash)} but carries none`);
      return found;
    };
    const ownVotes: OwnVote[] = record.ownVotes.map((own) => ({
      request: own.request,
      signed: own.signed,
    }));
    const ownProposals: OwnProposal[] = record.ownProposals.map((own) => {
      const request = {
        height: own.height,
        round: own.round,
        block: block(own.blockHash) as Block,
        validRound: own.validRound,
        proposer: own.proposer,
      };
      return {
        request,
        blockHash: own.blockHash,
        signed: own.signature === null ? null : { ...request, signature: own.signature },
      };
    });
    return {
      height: record.height,
      round: record.round,
      step: record.step,
      lockedValue: block(record.lockedValue),
      lockedRound: record.lockedRound,
      validValue: block(record.validValue),
      validRound: record.validRound,
      ownVotes,
      ownProposals,
      valueRequests: record.valueRequests,
    };
  }
}

/** The WAL opened for a height, with the record to restore it from (null: start afresh). */
export interface OpenedLog {
  readonly log: ConsensusLog;
  readonly record: ConsensusWalRecord | null;
  close(): void;
}

/**
 * Opens the consensus WAL of a node whose store ends at `committedHeight`, for deciding
 * `committedHeight + 1`. The last record applies only if it is of that height; a record of an
 * earlier height belongs to a block stored since (a crash between storing it and rotating the
 * WAL), so the WAL is rotated now. A WAL checkpointed beyond the store (the store was restored
 * from an older copy) cannot apply at all and is replaced; the signer's own record still stops
 * any equivocation.
 */
export function openConsensusLog(
  path: string,
  committedHeight: number,
  warn: (message: string, fields: Record<string, unknown>) => void,
): OpenedLog {
  let wal = openConsensusWal(path);
  try {
    if (wal.truncatedBytes > 0) {
      // A torn last append (a crash mid-write), or damage to fsynced records near the end,
      // which looks the same (docs/storage.md): either way the operator hears of it.
      warn('the consensus WAL ended in an unreadable tail; it was cut off', {
        path,
        truncatedBytes: wal.truncatedBytes,
      });
    }
    let log = new ConsensusLog(wal);
    let { lastEndHeight, record } = log.replay();
    if (lastEndHeight !== null && lastEndHeight > committedHeight) {
      warn('the consensus WAL is ahead of the store; starting a fresh WAL', {
        walHeight: lastEndHeight,
        committedHeight,
      });
      wal.close();
      rmSync(path, { force: true });
      wal = openConsensusWal(path);
      log = new ConsensusLog(wal);
      ({ lastEndHeight, record } = log.replay());
    }
    if (record !== null && record.height !== committedHeight + 1) record = null;
    if (record === null && committedHeight > 0 && lastEndHeight !== committedHeight) {
      log.endHeight(committedHeight);
    }
    const opened = wal;
    return { log, record, close: () => opened.close() };
  } catch (error) {
    wal.close();
    throw error;
  }
}

/** What a node's consensus WAL shows about its past (`walSigningHistory`). */
export interface WalSigningHistory {
  /** The highest height the WAL recorded as stored (`endHeight`), or null. */
  readonly checkpointHeight: number | null;
  /** The highest height of a record holding one of the node's own signatures, or null. */
  readonly signedHeight: number | null;
}

/**
 * Reads the WAL at `path` without writing anything (a missing or empty file shows nothing):
 * whether this node stored blocks or signed before (signer-state-missing.ts). Throws the
 * storage layer's `NOT_A_WAL`/`CORRUPT` and `WAL_RECORD_CORRUPT` as opening it would.
 */
export function walSigningHistory(path: string): WalSigningHistory {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return { checkpointHeight: null, signedHeight: null };
    }
    throw error;
  }
  if (bytes.length === 0) return { checkpointHeight: null, signedHeight: null };
  let checkpoint: number | null = null;
  let signed: number | null = null;
  for (const [index, { type, payload }] of scanWal(bytes).records.entries()) {
    if (type === CHECKPOINT_TYPE) {
      checkpoint = Math.max(checkpoint ?? 0, checkpointHeight(payload) as number);
      continue;
    }
    if (type !== WAL_STATE_RECORD) throw corrupt(`WAL record ${index} has unknown type ${type}`);
    let record: StateRecord;
    try {
      record = decodeRecord(stateRecordSchema, payload, `walRecord[${index}]`);
    } catch (error) {
      throw corrupt(`WAL record ${index} cannot be decoded`, error);
    }
    const ownSignature =
      record.ownVotes.some((own) => own.signed !== null) ||
      record.ownProposals.some((own) => own.signature !== null);
    if (ownSignature) signed = Math.max(signed ?? 0, record.height);
  }
  return { checkpointHeight: checkpoint, signedHeight: signed };
}
