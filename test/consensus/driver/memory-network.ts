import { readSyncedBlocks } from '../../../src/consensus/driver/block-checks.js';
import type {
  ConsensusNetwork,
  GossipMessage,
  SyncedBlock,
} from '../../../src/consensus/driver/ports.js';
import { decodeGossip, encodeGossip } from '../../../src/consensus/wire.js';
import type { NodeStore } from '../../../src/storage/index.js';

/** A message as it crossed the network (after wire decoding), for assertions. */
export interface Delivery {
  readonly from: string;
  readonly to: string;
  readonly message: GossipMessage;
}

export interface MemoryHubOptions {
  /** Delay of every delivery in ms (0: next macrotask). */
  readonly delayMs?: number;
}

/**
 * An in-process `ConsensusNetwork` for N drivers: every message goes through the real wire
 * encoding (`encodeGossip`/`decodeGossip`) and is delivered asynchronously, links can be cut,
 * and `fetchBlocks` reads the serving node's store the way a node serves a syncing peer.
 */
export class MemoryHub {
  private readonly endpoints = new Map<string, MemoryEndpoint>();
  private readonly cut = new Set<string>();
  /** Every message any endpoint sent (whether or not it arrived), in order. */
  readonly sent: Delivery[] = [];
  private readonly delayMs: number;

  constructor(options: MemoryHubOptions = {}) {
    this.delayMs = options.delayMs ?? 0;
  }

  /** Connects `id` (replacing an earlier endpoint of that id) and announces it to the others. */
  join(id: string, store: NodeStore | null): MemoryEndpoint {
    this.endpoints.get(id)?.detach();
    const endpoint = new MemoryEndpoint(this, id, store);
    this.endpoints.set(id, endpoint);
    setImmediate(() => {
      if (this.endpoints.get(id) !== endpoint) return;
      for (const other of this.endpoints.values()) {
        if (other === endpoint || !this.linked(id, other.id)) continue;
        other.connected(id);
        endpoint.connected(other.id);
      }
    });
    return endpoint;
  }

  leave(id: string): void {
    this.endpoints.get(id)?.detach();
    this.endpoints.delete(id);
  }

  /** Cuts (or heals) the link between two nodes in both directions. */
  setLink(a: string, b: string, up: boolean): void {
    const key = [a, b].sort().join('|');
    if (up) {
      if (!this.cut.delete(key)) return;
      setImmediate(() => {
        this.endpoints.get(a)?.connected(b);
        this.endpoints.get(b)?.connected(a);
      });
    } else {
      this.cut.add(key);
    }
  }

  linked(a: string, b: string): boolean {
    return !this.cut.has([a, b].sort().join('|'));
  }

  peersOf(id: string): string[] {
    return [...this.endpoints.keys()].filter((other) => other !== id && this.linked(id, other));
  }

  endpoint(id: string): MemoryEndpoint | undefined {
    return this.endpoints.get(id);
  }

  /**
   * Delivers a raw object as `from`, bypassing the wire decoder (so it may be anything); a
   * function is called at delivery time to make the message.
   */
  inject(from: string, to: string, message: unknown): void {
    const target = this.endpoints.get(to);
    if (target === undefined) return;
    setTimeout(() => {
      const made: unknown = typeof message === 'function' ? (message as () => unknown)() : message;
      target.deliver(from, made as GossipMessage);
    }, this.delayMs);
  }

  deliver(from: string, to: string, bytes: Uint8Array): void {
    if (!this.linked(from, to)) return;
    const target = this.endpoints.get(to);
    if (target === undefined) return;
    const message = decodeGossip(bytes);
    setTimeout(() => {
      if (this.endpoints.get(to) === target && this.linked(from, to)) target.deliver(from, message);
    }, this.delayMs);
  }
}

export class MemoryEndpoint implements ConsensusNetwork {
  private messageHandler: ((peer: string, message: GossipMessage) => void) | null = null;
  private connectHandler: ((peer: string) => void) | null = null;
  private attached = true;

  constructor(
    private readonly hub: MemoryHub,
    readonly id: string,
    private readonly store: NodeStore | null,
  ) {}

  detach(): void {
    this.attached = false;
  }

  broadcast(message: GossipMessage): void {
    if (!this.attached) return;
    this.hub.sent.push({ from: this.id, to: '*', message });
    const bytes = encodeGossip(message);
    for (const peer of this.hub.peersOf(this.id)) this.hub.deliver(this.id, peer, bytes);
  }

  send(peer: string, message: GossipMessage): void {
    if (!this.attached) return;
    this.hub.sent.push({ from: this.id, to: peer, message });
    this.hub.deliver(this.id, peer, encodeGossip(message));
  }

  onMessage(handler: (peer: string, message: GossipMessage) => void): void {
    this.messageHandler = handler;
  }

  onPeerConnected(handler: (peer: string) => void): void {
    this.connectHandler = handler;
  }

  peers(): readonly string[] {
    return this.attached ? this.hub.peersOf(this.id) : [];
  }

  async *fetchBlocks(
    peer: string,
    from: number,
    to: number,
    signal?: AbortSignal,
  ): AsyncIterable<SyncedBlock> {
    const server = this.hub.endpoint(peer);
    if (server === undefined || !this.hub.linked(this.id, peer)) {
      throw new Error(`peer ${peer} is not connected`);
    }
    for (const block of server.serve(from, to)) {
      await new Promise((resolve) => setImmediate(resolve));
      if (signal?.aborted === true) return;
      yield block;
    }
  }

  /** What this node serves to a syncing peer (overridable by a faulty test peer). */
  serve(from: number, to: number): SyncedBlock[] {
    return this.store === null ? [] : readSyncedBlocks(this.store, from, to);
  }

  deliver(from: string, message: GossipMessage): void {
    if (this.attached) this.messageHandler?.(from, message);
  }

  connected(peer: string): void {
    if (this.attached) this.connectHandler?.(peer);
  }
}
