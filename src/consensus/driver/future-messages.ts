import { bytesEqual } from '../../crypto/bytes.js';
import type { ConsensusEvent } from '../events.js';
import type { Proposal, Vote } from '../types.js';
import { MAX_VOTE_WIRE_BYTES } from '../wire.js';

export interface BufferedMessage {
  readonly peer: string;
  readonly height: number;
  readonly event: ConsensusEvent;
}

/** What one peer may park (`FutureMessages`). */
export interface FutureMessageLimits {
  /** Messages per peer. */
  readonly messagesPerPeer: number;
  /** Approximate bytes per peer (`bufferSlot`). */
  readonly bytesPerPeer: number;
}

/**
 * `added`; `held`: the very same message (same signature) is parked already, nothing changes;
 * `conflicting`: the peer's slot for it is taken by another message (see `FutureMessages`);
 * `full`: the peer's share of messages or bytes would be exceeded.
 */
export type BufferOutcome = 'added' | 'held' | 'conflicting' | 'full';

/** Charged per proposal beyond its variable fields: header hashes, numbers, map keys. */
export const PROPOSAL_FIXED_BYTES = 1024;
/** Charged per vote beyond its signatures: type, height, round, hash, time, address, keys. */
export const VOTE_FIXED_BYTES = 192;
/** Charged per transaction beyond its bytes (its CBOR header, with slack). */
export const TRANSACTION_OVERHEAD_BYTES = 16;

/**
 * The default `bytesPerPeer`: two proposals of the largest block genesis allows (a proposal and
 * a re-proposal in a later round) plus `messagesPerPeer` votes of the largest wire size.
 */
export function defaultBufferedBytesPerPeer(
  maxBlockBytes: number,
  maxBlockTxs: number,
  messagesPerPeer: number,
): number {
  const proposal = PROPOSAL_FIXED_BYTES + maxBlockBytes + maxBlockTxs * TRANSACTION_OVERHEAD_BYTES;
  return 2 * proposal + messagesPerPeer * MAX_VOTE_WIRE_BYTES;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function voteBytes(vote: unknown): number | null {
  if (!isRecord(vote) || !(vote.signature instanceof Uint8Array)) return null;
  const pq = vote.pqSignature;
  if (pq !== undefined && !(pq instanceof Uint8Array)) return null;
  return VOTE_FIXED_BYTES + vote.signature.length + (pq?.length ?? 0);
}

function blockBytes(block: unknown): number | null {
  if (!isRecord(block)) return null;
  const { header, transactions, evidence, lastCommit } = block;
  if (!isRecord(header)) return null;
  if (!(header.consensusProof instanceof Uint8Array)) return null;
  if (!Array.isArray(transactions) || !Array.isArray(evidence)) return null;
  let bytes = header.consensusProof.length;
  for (const tx of transactions as unknown[]) {
    if (!(tx instanceof Uint8Array)) return null;
    bytes += tx.length + TRANSACTION_OVERHEAD_BYTES;
  }
  for (const item of evidence as unknown[]) {
    if (!isRecord(item)) return null;
    const a = voteBytes(item.voteA);
    const b = voteBytes(item.voteB);
    if (a === null || b === null) return null;
    bytes += a + b;
  }
  if (lastCommit !== null) {
    if (!isRecord(lastCommit) || !Array.isArray(lastCommit.precommits)) return null;
    for (const precommit of lastCommit.precommits as unknown[]) {
      const size = voteBytes(precommit);
      if (size === null) return null;
      bytes += size;
    }
  }
  return bytes;
}

/** Where a message is parked per peer, and what it costs. */
export interface BufferSlot {
  /** One proposal per (height, round, proposer named); one vote per (validator, height, round, type). */
  readonly key: string;
  /** Tells a repeat of the same message (same signature) from another one. */
  readonly signature: Uint8Array;
  /** Approximate wire size: byte fields' lengths plus fixed charges per record. */
  readonly bytes: number;
}

/**
 * The slot and approximate size of a proposal or vote, from its shape only (no signature is
 * checked: that is the engine's work once the height starts); null when it has no such shape.
 * Linear in the number of transactions and votes a proposal carries, with no hashing.
 */
export function bufferSlot(event: ConsensusEvent): BufferSlot | null {
  if (event.type === 'vote-received') {
    const vote: unknown = event.vote;
    const bytes = voteBytes(vote);
    if (bytes === null) return null;
    const { type, height, round, validator, signature } = vote as Vote;
    if (typeof type !== 'string' || typeof validator !== 'string') return null;
    if (!Number.isSafeInteger(height) || !Number.isSafeInteger(round)) return null;
    return { key: `vote/${validator}/${height}/${round}/${type}`, signature, bytes };
  }
  if (event.type === 'proposal-received') {
    const proposal: unknown = event.proposal;
    if (!isRecord(proposal)) return null;
    const { height, round, proposer, signature, block } = proposal as unknown as Proposal;
    if (!Number.isSafeInteger(height) || !Number.isSafeInteger(round)) return null;
    if (typeof proposer !== 'string' || !(signature instanceof Uint8Array)) return null;
    const size = blockBytes(block);
    if (size === null) return null;
    return {
      key: `proposal/${proposer}/${height}/${round}`,
      signature,
      bytes: PROPOSAL_FIXED_BYTES + signature.length + size,
    };
  }
  return null;
}

interface Parked extends BufferedMessage {
  readonly slot: BufferSlot;
}

interface PeerShare {
  /** In arrival order. */
  list: Parked[];
  /** The same messages by slot key. */
  readonly slots: Map<string, Parked[]>;
  bytes: number;
}

/**
 * Proposals and votes of a height this node has not started yet (peers move on while it waits
 * out the commit delay, executes a block, or syncs). A peer's share is bounded twice — at most
 * `messagesPerPeer` messages and `bytesPerPeer` approximate bytes — so a faulty peer cannot
 * fill memory with large proposals; anything dropped is gossiped again by its sender (the
 * driver re-broadcasts its own messages while a height lasts).
 *
 * Each peer holds one proposal per (height, round, proposer named in it). A different proposal
 * for a taken slot is dropped (the first one stays): whichever is genuine, the engine sees at
 * most one proposal of a proposer per round from this peer anyway. A vote slot (validator,
 * height, round, type) holds the first vote and at most one conflicting vote after it, so a
 * validator's equivocation sent while this node was behind still becomes evidence; any later
 * one is dropped. A repeat of a parked message (gossip re-sends it every period) changes
 * nothing and is not counted as a drop.
 */
export class FutureMessages {
  private readonly byPeer = new Map<string, PeerShare>();
  private totalCount = 0;
  private totalBytes = 0;

  constructor(private readonly limits: FutureMessageLimits) {}

  /** Parks `message` in `slot` (`bufferSlot` of its event). */
  add(message: BufferedMessage, slot: BufferSlot): BufferOutcome {
    let share = this.byPeer.get(message.peer);
    const parked = share?.slots.get(slot.key);
    if (parked !== undefined) {
      if (parked.some((held) => bytesEqual(held.slot.signature, slot.signature))) return 'held';
      const room = message.event.type === 'vote-received' ? 2 : 1;
      if (parked.length >= room) return 'conflicting';
    }
    if (
      (share?.list.length ?? 0) >= this.limits.messagesPerPeer ||
      (share?.bytes ?? 0) + slot.bytes > this.limits.bytesPerPeer
    ) {
      return 'full';
    }
    if (share === undefined) {
      share = { list: [], slots: new Map(), bytes: 0 };
      this.byPeer.set(message.peer, share);
    }
    const entry: Parked = { ...message, slot };
    share.list.push(entry);
    if (parked === undefined) share.slots.set(slot.key, [entry]);
    else parked.push(entry);
    share.bytes += slot.bytes;
    this.totalCount += 1;
    this.totalBytes += slot.bytes;
    return 'added';
  }

  /** The messages of `height`, in arrival order per peer; drops those below it. */
  take(height: number): BufferedMessage[] {
    const taken: BufferedMessage[] = [];
    for (const [peer, share] of this.byPeer) {
      const kept: Parked[] = [];
      for (const entry of share.list) {
        if (entry.height > height) {
          kept.push(entry);
          continue;
        }
        if (entry.height === height) {
          taken.push({ peer: entry.peer, height: entry.height, event: entry.event });
        }
        share.bytes -= entry.slot.bytes;
        this.totalCount -= 1;
        this.totalBytes -= entry.slot.bytes;
      }
      if (kept.length === 0) {
        this.byPeer.delete(peer);
        continue;
      }
      share.list = kept;
      share.slots.clear();
      for (const entry of kept) {
        const parked = share.slots.get(entry.slot.key);
        if (parked === undefined) share.slots.set(entry.slot.key, [entry]);
        else parked.push(entry);
      }
    }
    return taken;
  }

  /** Messages parked, all peers. */
  get size(): number {
    return this.totalCount;
  }

  /** Approximate bytes parked, all peers. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Approximate bytes `peer` has parked. */
  bytesOf(peer: string): number {
    return this.byPeer.get(peer)?.bytes ?? 0;
  }

  clear(): void {
    this.byPeer.clear();
    this.totalCount = 0;
    this.totalBytes = 0;
  }
}
