import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import type { NodeStore, PendingEvidence } from '../../storage/index.js';
import { checkDuplicateVoteEvidence, evidenceKey } from '../evidence.js';
import { EVIDENCE_MAX_AGE, validatorsAt, type HeightContext } from '../height-context.js';
import type { DuplicateVoteEvidence } from '../types.js';
import type { SignatureVerifier } from '../verify.js';
import { decodeEvidence, encodeEvidence } from '../wire.js';
import { includedEvidence } from './block-checks.js';
import type { DriverLogger } from './driver-types.js';

/**
 * Most offences the pool holds. At most `EVIDENCE_MAX_AGE` heights of offences can still be
 * included, and a height has at most one offence per validator, round and vote type, so this is
 * a bound against a flood of equivocations, not a limit honest clusters meet. When it is full,
 * the oldest offence (lowest height, then key) is dropped: it is the first to age out anyway.
 */
export const MAX_PENDING_EVIDENCE = 1_024;

/** Why a stored pending offence was dropped when the pool was loaded. */
export enum PendingEvidenceDrop {
  /** The row's bytes are not evidence in the wire encoding (`decodeEvidence` refused them). */
  UNDECODABLE = 'UNDECODABLE',
  /** The row's key or height is not the one of the evidence it holds. */
  ROW_MISMATCH = 'ROW_MISMATCH',
  /** More than `EVIDENCE_MAX_AGE` heights old: no block may include it any more. */
  TOO_OLD = 'TOO_OLD',
  /** Does not prove an equivocation by a validator of its height (signatures, votes, height). */
  INVALID = 'INVALID',
  /** A stored block includes it already. */
  ALREADY_INCLUDED = 'ALREADY_INCLUDED',
  /** More valid rows than the pool's capacity: the oldest go. */
  OVER_CAPACITY = 'OVER_CAPACITY',
}

/** What `load` found in the store. */
export interface EvidencePoolLoad {
  /** Offences now pending. */
  readonly loaded: number;
  readonly dropped: readonly {
    readonly key: string;
    readonly height: number;
    readonly reason: PendingEvidenceDrop;
  }[];
}

/** What verifying evidence needs beyond the height context (the driver's block checks have it). */
export interface EvidenceVerification {
  readonly chainId: string;
  readonly verifier: SignatureVerifier;
}

export interface EvidencePoolOptions {
  readonly store: NodeStore;
  /** Most offences `forBlock` returns. */
  readonly maxPerBlock: number;
  /** Most offences held (default `MAX_PENDING_EVIDENCE`). */
  readonly capacity?: number;
  readonly log?: DriverLogger;
}

interface Entry {
  readonly evidence: DuplicateVoteEvidence;
  /** The store's key: SHA-256 of the offence key, and its hex (for ordering and logs). */
  readonly key: Uint8Array;
  readonly keyHex: string;
  readonly height: number;
}

const utf8 = new TextEncoder();

/** The pending-evidence row key of an offence: SHA-256 of `evidenceKey` (UTF-8). */
export function pendingEvidenceKey(evidence: DuplicateVoteEvidence): Uint8Array {
  return sha256(utf8.encode(evidenceKey(evidence)));
}

/** Ascending by (height, key): the order rows are loaded in, and the order offences age out. */
function older(a: Entry, b: Entry): boolean {
  return a.height < b.height || (a.height === b.height && a.keyHex < b.keyHex);
}

function entryOf(evidence: DuplicateVoteEvidence): Entry {
  const key = pendingEvidenceKey(evidence);
  return { evidence, key, keyHex: toHex(key), height: evidence.voteA.height };
}

/**
 * Equivocation evidence this node found (the engine's `evidence-found`), waiting to be put in a
 * block this node proposes. One entry per offence (validator, height, round, vote type); an
 * offence leaves the pool once a stored block includes it, or once it is too old to include.
 *
 * The pool writes through to the store's `pendingEvidence` table, so evidence found before a
 * crash is proposed after the restart: `add` returns once the row is fsynced, dropped offences
 * lose their rows, and `load` (the driver calls it at start) reads the rows back, keeping only
 * those that still verify and can still be included.
 */
export class EvidencePool {
  private readonly pending = new Map<string, Entry>();
  private readonly store: NodeStore;
  private readonly maxPerBlock: number;
  private readonly capacity: number;
  private readonly log: DriverLogger;

  constructor(options: EvidencePoolOptions) {
    const capacity = options.capacity ?? MAX_PENDING_EVIDENCE;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`evidence pool capacity must be a positive integer, got ${capacity}`);
    }
    this.store = options.store;
    this.maxPerBlock = options.maxPerBlock;
    this.capacity = capacity;
    this.log = options.log ?? (() => undefined);
  }

  /**
   * Replaces what the pool holds with the stored rows, in (height, key) order, for a node whose
   * next height to decide is `context.height`. Each row is decoded with the strict wire decoder
   * and must name its own offence and height, be at most `EVIDENCE_MAX_AGE` heights old, pass
   * `checkDuplicateVoteEvidence` against the validator set of its height (as evidence in a block
   * does, `checkBlock`), and not be in a stored block; any other row is deleted and logged with
   * its reason. Throws only when the store cannot be read.
   */
  load(context: HeightContext, verification: EvidenceVerification): EvidencePoolLoad {
    this.pending.clear();
    const dropped: { key: string; height: number; reason: PendingEvidenceDrop }[] = [];
    const dropKeys: Uint8Array[] = [];
    const drop = (row: PendingEvidence, reason: PendingEvidenceDrop, error?: string): void => {
      const key = toHex(row.key);
      dropped.push({ key, height: row.height, reason });
      dropKeys.push(row.key);
      this.log('warn', 'stored pending evidence dropped', {
        key,
        height: row.height,
        reason,
        ...(error === undefined ? {} : { error }),
      });
    };
    const valid: { row: PendingEvidence; entry: Entry }[] = [];
    const rows = this.store.pendingEvidence.list();
    const included = rows.length === 0 ? new Set<string>() : this.recentlyIncludedOffences();
    for (const row of rows) {
      let evidence: DuplicateVoteEvidence;
      try {
        evidence = decodeEvidence(row.bytes);
      } catch (error) {
        drop(row, PendingEvidenceDrop.UNDECODABLE, (error as Error).message);
        continue;
      }
      const entry = entryOf(evidence);
      if (entry.keyHex !== toHex(row.key) || entry.height !== row.height) {
        drop(row, PendingEvidenceDrop.ROW_MISMATCH);
        continue;
      }
      const rejection = this.rejection(context, verification, entry, included);
      if (rejection !== undefined) {
        drop(row, rejection.reason, rejection.error);
        continue;
      }
      valid.push({ row, entry });
    }
    for (const [index, { row, entry }] of valid.entries()) {
      if (index < valid.length - this.capacity) drop(row, PendingEvidenceDrop.OVER_CAPACITY);
      else this.pending.set(entry.keyHex, entry);
    }
    this.forget(dropKeys);
    if (valid.length > 0 || dropped.length > 0) {
      this.log('info', 'evidence pool loaded', {
        pending: this.pending.size,
        dropped: dropped.length,
      });
    }
    return { loaded: this.pending.size, dropped };
  }

  /**
   * The offence keys of the evidence in the stored blocks that can still matter: the latest
   * `EVIDENCE_MAX_AGE` + 1. A block may include an offence under another pair of votes than the
   * one this node found (another validator's evidence), so a pending row is matched by offence
   * as well as by its bytes. Read once per `load`; stored evidence was checked when its block
   * was, and anything that does not decode is skipped.
   */
  private recentlyIncludedOffences(): Set<string> {
    const offences = new Set<string>();
    const latest = this.store.blocks.latestHeight();
    if (latest === null) return offences;
    for (let height = Math.max(1, latest - EVIDENCE_MAX_AGE); height <= latest; height++) {
      for (const stored of this.store.blocks.evidenceAt(height)) {
        try {
          offences.add(evidenceKey(decodeEvidence(stored.bytes)));
        } catch {
          continue;
        }
      }
    }
    return offences;
  }

  private rejection(
    context: HeightContext,
    verification: EvidenceVerification,
    entry: Entry,
    included: ReadonlySet<string>,
  ): { reason: PendingEvidenceDrop; error?: string } | undefined {
    // The next block this node can propose is at `context.height`.
    if (entry.height < context.height - EVIDENCE_MAX_AGE) {
      return { reason: PendingEvidenceDrop.TOO_OLD };
    }
    const validators = validatorsAt(context, entry.height);
    if (validators === undefined) {
      // Height 0, or one this node has not reached (a store restored from an older snapshot).
      return {
        reason: PendingEvidenceDrop.INVALID,
        error: `no validator set known for height ${entry.height}`,
      };
    }
    // Found while deciding `context.height` itself: a block of the next height includes it.
    const error = checkDuplicateVoteEvidence(
      {
        chainId: verification.chainId,
        validators,
        verifier: verification.verifier,
        requirePq: false,
      },
      entry.evidence,
      context.height + 1,
    );
    if (error !== undefined) return { reason: PendingEvidenceDrop.INVALID, error: error.message };
    if (
      included.has(evidenceKey(entry.evidence)) ||
      includedEvidence(this.store, [entry.evidence]) !== undefined
    ) {
      return { reason: PendingEvidenceDrop.ALREADY_INCLUDED };
    }
    return undefined;
  }

  /**
   * Keeps `evidence` and returns true once it is durable in the store. False when the offence
   * was already pending, or the pool is full and it is older than every pending offence (the
   * oldest is dropped to make room otherwise). Throws the store's error when the row cannot be
   * written; the pool is then unchanged.
   */
  add(evidence: DuplicateVoteEvidence): boolean {
    const entry = entryOf(evidence);
    if (this.pending.has(entry.keyHex)) return false;
    let evicted: Entry | undefined;
    if (this.pending.size >= this.capacity) {
      for (const candidate of this.pending.values()) {
        if (evicted === undefined || older(candidate, evicted)) evicted = candidate;
      }
      if (evicted === undefined || older(entry, evicted)) return false;
    }
    this.store.pendingEvidence.put({
      key: entry.key,
      height: entry.height,
      bytes: encodeEvidence(evidence),
    });
    if (evicted !== undefined) {
      // After the new row is written: a crash in between leaves one row too many, which the
      // next `load` drops (OVER_CAPACITY), the same one.
      this.pending.delete(evicted.keyHex);
      this.forget([evicted.key]);
    }
    this.pending.set(entry.keyHex, entry);
    return true;
  }

  /**
   * Evidence for a block at `height`: offences of earlier heights, at most `EVIDENCE_MAX_AGE`
   * back, that no stored block holds. Older offences can no longer be included and are dropped.
   */
  forBlock(height: number): DuplicateVoteEvidence[] {
    const chosen: DuplicateVoteEvidence[] = [];
    const dropped: Uint8Array[] = [];
    for (const [name, entry] of this.pending) {
      if (chosen.length >= this.maxPerBlock) break;
      if (entry.height >= height) continue;
      if (
        entry.height < height - EVIDENCE_MAX_AGE ||
        includedEvidence(this.store, [entry.evidence]) !== undefined
      ) {
        this.pending.delete(name);
        dropped.push(entry.key);
        continue;
      }
      chosen.push(entry.evidence);
    }
    this.forget(dropped);
    return chosen;
  }

  /** Drops the offences a stored block included. */
  committed(evidence: readonly DuplicateVoteEvidence[]): void {
    const dropped: Uint8Array[] = [];
    for (const item of evidence) {
      const entry = this.pending.get(toHex(pendingEvidenceKey(item)));
      if (entry === undefined) continue;
      this.pending.delete(entry.keyHex);
      dropped.push(entry.key);
    }
    this.forget(dropped);
  }

  get size(): number {
    return this.pending.size;
  }

  /**
   * Deletes rows of offences the pool no longer holds. A failure is logged, not thrown: the
   * offence is gone from memory, and a row left behind is dropped by the next `load` (it is
   * then included, too old or over capacity).
   */
  private forget(keys: readonly Uint8Array[]): void {
    if (keys.length === 0) return;
    try {
      this.store.pendingEvidence.delete(keys);
    } catch (error) {
      this.log('warn', 'cannot delete stored pending evidence', {
        keys: keys.length,
        error: (error as Error).message,
      });
    }
  }
}
