import { Fifo } from '../../codec/fifo.js';
import type { GossipMessage } from '../driver/ports.js';

export type GossipKind = GossipMessage['kind'];

export interface QueuedGossip {
  readonly kind: GossipKind;
  /** `encodeGossip` bytes. */
  readonly bytes: Uint8Array;
}

export interface SendQueueLimits {
  /** Messages held for one peer while its stream is at its high-water mark. */
  readonly maxMessages: number;
  /** Bytes held for one peer (the sum of the queued encodings). */
  readonly maxBytes: number;
}

/**
 * The messages waiting for one peer's stream to drain, bounded by count and bytes.
 *
 * Consensus messages (proposals, votes, status) go out before transaction gossip: they are few
 * and small, and a vote that waits behind megabytes of `txs` batches on a slow link misses its
 * round. Among consensus messages the order is FIFO (each entry keeps its arrival number and
 * `shift` takes the older of the two heads); `txs` batches go, in order, when none is queued.
 *
 * When full, the oldest transaction batch goes first, then the oldest vote or status message,
 * and a proposal only when nothing else is left: a lost batch is gossiped again by its origin
 * if that is a follower, and a validator origin proposes its own transactions
 * (src/node/tx-gossip.ts); drivers re-broadcast their votes and status every gossip period
 * while a height lasts, whereas a lost proposal costs a round.
 */
export class GossipSendQueue {
  private readonly proposals = new Fifo<Entry>();
  /** Votes and status messages. */
  private readonly control = new Fifo<Entry>();
  private readonly txs = new Fifo<Entry>();
  private bytes = 0;
  private next = 0;

  constructor(private readonly limits: SendQueueLimits) {}

  get length(): number {
    return this.proposals.length + this.control.length + this.txs.length;
  }

  get byteLength(): number {
    return this.bytes;
  }

  /** Queues `item`; returns what had to be dropped to make room (possibly `item` itself). */
  push(item: QueuedGossip): QueuedGossip[] {
    const dropped: QueuedGossip[] = [];
    if (item.bytes.length > this.limits.maxBytes) return [item];
    const entry: Entry = { item, order: this.next++ };
    this.fifoOf(item.kind).push(entry);
    this.bytes += item.bytes.length;
    while (this.length > this.limits.maxMessages || this.bytes > this.limits.maxBytes) {
      const victim = this.txs.shift() ?? this.control.shift() ?? (this.proposals.shift() as Entry);
      this.bytes -= victim.item.bytes.length;
      dropped.push(victim.item);
    }
    return dropped;
  }

  /** The next message to send: the oldest consensus message, else the oldest `txs` batch. */
  shift(): QueuedGossip | undefined {
    const proposal = this.proposals.peek();
    const control = this.control.peek();
    const from =
      proposal && (!control || proposal.order < control.order)
        ? this.proposals
        : control
          ? this.control
          : this.txs;
    const entry = from.shift();
    if (!entry) return undefined;
    this.bytes -= entry.item.bytes.length;
    return entry.item;
  }

  /** Empties the queue, returning what it held (in `shift` order). */
  clear(): QueuedGossip[] {
    const all: QueuedGossip[] = [];
    for (let item = this.shift(); item; item = this.shift()) all.push(item);
    return all;
  }

  private fifoOf(kind: GossipKind): Fifo<Entry> {
    if (kind === 'proposal') return this.proposals;
    return kind === 'txs' ? this.txs : this.control;
  }
}

interface Entry {
  readonly item: QueuedGossip;
  readonly order: number;
}
