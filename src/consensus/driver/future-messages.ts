import type { ConsensusEvent } from '../events.js';

export interface BufferedMessage {
  readonly peer: string;
  readonly height: number;
  readonly event: ConsensusEvent;
}

/**
 * Proposals and votes of a height this node has not started yet (peers move on while it waits
 * out the commit delay, executes a block, or syncs). Each peer may park at most `perPeer`
 * messages, so a faulty peer cannot fill memory; anything dropped is gossiped again by its
 * sender (the driver re-broadcasts its own messages while a height lasts).
 */
export class FutureMessages {
  private readonly byPeer = new Map<string, BufferedMessage[]>();

  constructor(private readonly perPeer: number) {}

  /** False when the peer's share is full. */
  add(message: BufferedMessage): boolean {
    let list = this.byPeer.get(message.peer);
    if (list === undefined) {
      list = [];
      this.byPeer.set(message.peer, list);
    }
    if (list.length >= this.perPeer) return false;
    list.push(message);
    return true;
  }

  /** The messages of `height`, in arrival order per peer; drops those below it. */
  take(height: number): BufferedMessage[] {
    const taken: BufferedMessage[] = [];
    for (const [peer, list] of this.byPeer) {
      const kept = list.filter((message) => message.height > height);
      for (const message of list) if (message.height === height) taken.push(message);
      if (kept.length === 0) this.byPeer.delete(peer);
      else this.byPeer.set(peer, kept);
    }
    return taken;
  }

  get size(): number {
    let size = 0;
    for (const list of this.byPeer.values()) size += list.length;
    return size;
  }

  clear(): void {
    this.byPeer.clear();
  }
}
