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
 * The messages waiting for one peer's stream to drain, bounded by count and bytes. When full,
 * the oldest vote, transaction or status message goes first: consensus tolerates their loss
 * (drivers re-broadcast votes and status, the mempool re-gossips), whereas a lost proposal costs
 * a round. Proposals are dropped only when nothing else is left to drop. Order is FIFO across
 * kinds: each entry keeps its arrival number and `shift` takes the older of the two heads.
 */
export class GossipSendQueue {
  private readonly proposals = new Fifo<Entry>();
  private readonly others = new Fifo<Entry>();
  private bytes = 0;
  private next = 0;

  constructor(private readonly limits: SendQueueLimits) {}

  get length(): number {
    return this.proposals.length + this.others.length;
  }

  get byteLength(): number {
    return this.bytes;
  }

  /** Queues `item`; returns what had to be dropped to make room (possibly `item` itself). */
  push(item: QueuedGossip): QueuedGossip[] {
    const dropped: QueuedGossip[] = [];
    if (item.bytes.length > this.limits.maxBytes) return [item];
    const entry: Entry = { item, order: this.next++ };
    (item.kind === 'proposal' ? this.proposals : this.others).push(entry);
    this.bytes += item.bytes.length;
    while (this.length > this.limits.maxMessages || this.bytes > this.limits.maxBytes) {
      const victim = this.others.length > 0 ? this.others.shift() : this.proposals.shift();
      if (!victim) break;
      this.bytes -= victim.item.bytes.length;
      dropped.push(victim.item);
    }
    return dropped;
  }

  /** The oldest queued message. */
  shift(): QueuedGossip | undefined {
    const proposal = this.proposals.peek();
    const other = this.others.peek();
    const from =
      proposal && (!other || proposal.order < other.order)
        ? this.proposals
        : other
          ? this.others
          : null;
    const entry = from?.shift();
    if (!entry) return undefined;
    this.bytes -= entry.item.bytes.length;
    return entry.item;
  }

  /** Empties the queue, returning what it held (oldest first). */
  clear(): QueuedGossip[] {
    const all: QueuedGossip[] = [];
    for (let item = this.shift(); item; item = this.shift()) all.push(item);
    return all;
  }
}

interface Entry {
  readonly item: QueuedGossip;
  readonly order: number;
}

/** An array-backed FIFO with O(1) amortized push and shift. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Compact once the consumed prefix dominates, so memory follows the live length.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
