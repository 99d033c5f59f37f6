import { BoundedMap } from '../../codec/bounded-map.js';
import { answer } from '../../trustchain/dns/index.js';
import type { AnswerInfo, ZoneSource } from '../../trustchain/dns/index.js';
import { QueryKeyScan, udpQueryKey } from '../../trustchain/dns/query-key.js';

/**
 * Whole UDP responses, kept so that a question asked again costs a key scan, a map lookup and
 * a copy instead of a run of the answer engine (docs/dns.md, "UDP response cache").
 *
 * - The key is `udpQueryKey`: the lowercased question and the flags the answer depends on;
 *   queries of any other shape go to the engine every time, so their responses are exactly
 *   what the engine gives. Entries are found by the key's hash and hit only when the stored
 *   key bytes are equal; two keys with one hash take turns in one slot. Hashing the bytes in
 *   the scan costs less than making a string of them for a Map to hash again.
 * - A hit is the stored response with the query's ID and the query's question name bytes
 *   written over it (the response's owner names point into the question, so the client gets
 *   its own letter case back, RFC 4343 §4.1).
 * - The cache is emptied whenever the zone source's `generation` changes (a zone swapped in or
 *   removed); a source without `generation` is never cached.
 * - An entry is served for at most `maxAgeMs`, so the RRSIGs in a DO answer are never older
 *   than that next to what the signer would give (it re-signs days before expiry).
 * - At most `entries` entries (oldest out first, `BoundedMap`), each at most
 *   `MAX_CACHED_RESPONSE` bytes.
 */

/** Larger responses are not kept (rare; bounds the memory to entries × this). */
export const MAX_CACHED_RESPONSE = 1232;
/** How long an entry is served (ms). */
export const DEFAULT_CACHE_MAX_AGE_MS = 60_000;

interface Entry {
  readonly key: Uint8Array;
  readonly response: Uint8Array;
  readonly rcode: number;
  readonly qtype: number;
  readonly truncated: boolean;
  /** `now` when it was made (ms, the caller's monotonic clock). */
  readonly made: number;
}

export interface UdpResponseCacheOptions {
  readonly zones: ZoneSource;
  readonly maxUdpPayload: number;
  /** Entries kept; 0 turns the cache off (every query goes to the engine). */
  readonly entries: number;
  readonly maxAgeMs?: number;
}

export class UdpResponseCache {
  private readonly zones: ZoneSource;
  private readonly maxUdpPayload: number;
  private readonly maxAgeMs: number;
  private readonly map: BoundedMap<number, Entry>;
  private readonly scan = new QueryKeyScan();
  private readonly answerOptions: {
    readonly transport: 'udp';
    readonly maxUdpPayload: number;
    readonly info: AnswerInfo;
  };
  /** What the last response says (rcode, QTYPE, TC), as `answer` reports it. */
  readonly info: AnswerInfo = { rcode: 0, qtype: 0, truncated: false };
  /** The zone source's generation the entries were made from. */
  private generation: number | undefined;
  /** Queries answered from the cache / by the engine (for tests and benchmarks). */
  hits = 0;
  misses = 0;

  constructor(options: UdpResponseCacheOptions) {
    this.zones = options.zones;
    this.maxUdpPayload = options.maxUdpPayload;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_CACHE_MAX_AGE_MS;
    this.map = new BoundedMap(options.entries);
    this.answerOptions = {
      transport: 'udp',
      maxUdpPayload: options.maxUdpPayload,
      info: this.info,
    };
  }

  get size(): number {
    return this.map.size;
  }

  /**
   * The response to `query` (null: dropped), exactly as `answer(query, zones, { transport:
   * 'udp', maxUdpPayload })` gives it, with `info` filled as `answer` fills it. `now` is a
   * monotonic time in ms (e.g. `performance.now()`).
   */
  answer(query: Uint8Array, now: number): Uint8Array | null {
    const generation = this.zones.generation;
    const scan = this.scan;
    if (
      generation === undefined ||
      this.map.capacity === 0 ||
      !udpQueryKey(query, this.maxUdpPayload, scan)
    ) {
      return this.engine(query);
    }
    if (generation !== this.generation) {
      this.map.clear();
      this.generation = generation;
    }
    const qnameEnd = 12 + scan.qnameLength;
    const entry = this.map.peek(scan.hash);
    if (entry !== undefined && now - entry.made < this.maxAgeMs && sameKey(entry.key, scan)) {
      this.hits++;
      const cached = entry.response;
      const response = Buffer.allocUnsafe(cached.length);
      response.set(cached);
      response[0] = query[0]!;
      response[1] = query[1]!;
      for (let i = 12; i < qnameEnd; i++) response[i] = query[i]!;
      const info = this.info;
      info.rcode = entry.rcode;
      info.qtype = entry.qtype;
      info.truncated = entry.truncated;
      return response;
    }
    const response = this.engine(query);
    const info = this.info;
    // Every query of the scanned shape gets a response that starts with its question; anything
    // else is not kept.
    if (
      response !== null &&
      response.length <= MAX_CACHED_RESPONSE &&
      response.length >= qnameEnd + 4 &&
      response[4] === 0 &&
      response[5] === 1
    ) {
      this.map.set(scan.hash, {
        key: scan.key.slice(0, scan.keyLength),
        response,
        rcode: info.rcode,
        qtype: info.qtype,
        truncated: info.truncated,
        made: now,
      });
    }
    return response;
  }

  private engine(query: Uint8Array): Uint8Array | null {
    this.misses++;
    return answer(query, this.zones, this.answerOptions);
  }
}

function sameKey(key: Uint8Array, scan: QueryKeyScan): boolean {
  const length = scan.keyLength;
  if (key.length !== length) return false;
  const bytes = scan.key;
  for (let i = 0; i < length; i++) if (key[i] !== bytes[i]) return false;
  return true;
}
