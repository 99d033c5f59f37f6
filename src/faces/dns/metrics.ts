import { Counter, Gauge, Histogram, type MetricType, type Registry } from 'prom-client';
import {
  RR_TYPES,
  Rcode,
  TYPE_ANY,
  TYPE_AXFR,
  TYPE_IXFR,
  TYPE_OPT,
} from '../../trustchain/dns/index.js';
import type { AnswerInfo } from '../../trustchain/dns/index.js';

/**
 * The DNS servers' metrics. The hot path only increments plain numbers in typed arrays (a few
 * nanoseconds per query); the prom-client metrics read them when the registry is scraped.
 * Label values come from fixed sets (types without a model count as OTHER), so a client cannot
 * grow the number of series.
 */

export const Transport = { udp: 0, tcp: 1, doq: 2 } as const;
export type TransportName = keyof typeof Transport;
export type TransportIndex = (typeof Transport)[TransportName];
const TRANSPORTS = Object.keys(Transport) as TransportName[];

/** Why a packet, frame or stream got no answer. */
export const DropReason = {
  /** `answer` returned null: shorter than a header, or a response (QR set). */
  notQuery: 0,
  /** The response could not be handed to the socket. */
  sendFailed: 1,
  /** TCP: a zero-length frame; DoQ: a stream that broke RFC 9250 §4.2 (ID ≠ 0, short, extra data). */
  badFrame: 2,
  /** DoQ: a connection closed with DOQ_EXCESSIVE_LOAD for holding too many unfinished queries. */
  excessiveLoad: 3,
} as const;
type DropReasonIndex = (typeof DropReason)[keyof typeof DropReason];
const DROP_REASONS = ['not_query', 'send_failed', 'bad_frame', 'excessive_load'];

const TYPE_LABELS = ['NONE', ...Object.keys(RR_TYPES), 'OPT', 'IXFR', 'AXFR', 'ANY', 'OTHER'];
const TYPE_SLOTS = TYPE_LABELS.length;
const typeSlot = new Uint8Array(65_536).fill(TYPE_SLOTS - 1);
typeSlot[0] = 0;
for (const [name, code] of [
  ...Object.entries(RR_TYPES),
  ['OPT', TYPE_OPT],
  ['IXFR', TYPE_IXFR],
  ['AXFR', TYPE_AXFR],
  ['ANY', TYPE_ANY],
] as const) {
  typeSlot[code] = TYPE_LABELS.indexOf(name);
}

const RCODE_LABELS = [...Object.keys(Rcode), 'OTHER'];
const RCODE_SLOTS = RCODE_LABELS.length;
/** Full 12-bit rcode → slot; the engine only produces the named ones. */
const rcodeSlot = new Uint8Array(4_096).fill(RCODE_SLOTS - 1);
for (const [name, code] of Object.entries(Rcode)) rcodeSlot[code] = RCODE_LABELS.indexOf(name);

/** Upper bounds (seconds) of the latency buckets: 10 µs to 1 s. */
export const LATENCY_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1,
];
const BUCKETS = LATENCY_BUCKETS.length + 1;

export class DnsMetrics {
  private readonly queries = new Float64Array(TRANSPORTS.length * TYPE_SLOTS * RCODE_SLOTS);
  private readonly truncated = new Float64Array(TRANSPORTS.length);
  private readonly dropped = new Float64Array(TRANSPORTS.length * DROP_REASONS.length);
  /** Per transport: one count per bucket (not cumulative), then +Inf. */
  private readonly latency = new Float64Array(TRANSPORTS.length * BUCKETS);
  private readonly latencySum = new Float64Array(TRANSPORTS.length);
  private readonly latencyCount = new Float64Array(TRANSPORTS.length);
  private readonly open = new Float64Array(TRANSPORTS.length);
  private readonly refused = new Float64Array(TRANSPORTS.length);
  private readonly evicted = new Float64Array(TRANSPORTS.length);
  /** Bytes of unfinished DoQ queries the servers hold now; [0] so the collector can read it. */
  private readonly doqBuffered = new Float64Array(1);

  /** One answered query: its type and rcode, TC, and how long answering took. */
  answered(transport: TransportIndex, info: AnswerInfo, seconds: number): void {
    const slot = typeSlot[info.qtype]! * RCODE_SLOTS + rcodeSlot[info.rcode & 0xfff]!;
    this.queries[transport * TYPE_SLOTS * RCODE_SLOTS + slot]!++;
    if (info.truncated) this.truncated[transport]!++;
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[bucket]!) bucket++;
    this.latency[transport * BUCKETS + bucket]!++;
    this.latencySum[transport]! += seconds;
    this.latencyCount[transport]!++;
  }

  drop(transport: TransportIndex, reason: DropReasonIndex): void {
    this.dropped[transport * DROP_REASONS.length + reason]!++;
  }

  connectionOpened(transport: TransportIndex): void {
    this.open[transport]!++;
  }

  connectionClosed(transport: TransportIndex): void {
    this.open[transport]!--;
  }

  connectionRefused(transport: TransportIndex): void {
    this.refused[transport]!++;
  }

  /** An idle connection closed to make room for a new one, or (DoQ) for holding no query. */
  connectionEvicted(transport: TransportIndex): void {
    this.evicted[transport]!++;
  }

  /** Bytes of unfinished DoQ queries held now (read from streams that have not ended). */
  doqBufferedChanged(delta: number): void {
    this.doqBuffered[0]! += delta;
  }

  doqBufferedBytes(): number {
    return this.doqBuffered[0]!;
  }

  /** Connections open now (for tests and the close path). */
  openConnections(transport: TransportIndex): number {
    return this.open[transport]!;
  }

  /** Registers the `hypermesh_dns_*` metrics on `registry`; they read this object when scraped. */
  register(registry: Registry): void {
    const registers = [registry];
    const { queries, truncated, dropped, open, refused, evicted, doqBuffered } = this;
    new Counter({
      name: 'hypermesh_dns_queries_total',
      help: 'DNS queries answered, by transport, query type and response code',
      labelNames: ['transport', 'type', 'rcode'],
      registers,
      collect() {
        this.reset();
        const q = queries;
        for (let t = 0; t < TRANSPORTS.length; t++) {
          for (let type = 0; type < TYPE_SLOTS; type++) {
            for (let rcode = 0; rcode < RCODE_SLOTS; rcode++) {
              const value = q[(t * TYPE_SLOTS + type) * RCODE_SLOTS + rcode]!;
              if (value === 0) continue;
              const labels = {
                transport: TRANSPORTS[t]!,
                type: TYPE_LABELS[type]!,
                rcode: RCODE_LABELS[rcode]!,
              };
              this.inc(labels, value);
            }
          }
        }
      },
    });
    new Counter({
      name: 'hypermesh_dns_truncated_total',
      help: 'UDP answers sent with TC set (the client should retry over TCP)',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset();
        for (let t = 0; t < TRANSPORTS.length; t++) {
          this.inc({ transport: TRANSPORTS[t]! }, truncated[t]!);
        }
      },
    });
    new Counter({
      name: 'hypermesh_dns_dropped_total',
      help: 'Packets, frames or streams that got no answer, by transport and reason',
      labelNames: ['transport', 'reason'],
      registers,
      collect() {
        this.reset();
        for (let t = 0; t < TRANSPORTS.length; t++) {
          for (let r = 0; r < DROP_REASONS.length; r++) {
            const value = dropped[t * DROP_REASONS.length + r]!;
            this.inc({ transport: TRANSPORTS[t]!, reason: DROP_REASONS[r]! }, value);
          }
        }
      },
    });
    new Gauge({
      name: 'hypermesh_dns_connections_open',
      help: 'Open TCP and DoQ connections',
      labelNames: ['transport'],
      registers,
      collect() {
        this.set({ transport: 'tcp' }, open[Transport.tcp]!);
        this.set({ transport: 'doq' }, open[Transport.doq]!);
      },
    });
    new Counter({
      name: 'hypermesh_dns_connections_refused_total',
      help: 'TCP and DoQ connections closed at once: the per-address limit, or the connection limit with no idle connection to close',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset();
        this.inc({ transport: 'tcp' }, refused[Transport.tcp]!);
        this.inc({ transport: 'doq' }, refused[Transport.doq]!);
      },
    });
    new Counter({
      name: 'hypermesh_dns_connections_evicted_total',
      help: 'Idle TCP and DoQ connections closed to make room for a new one, or DoQ connections closed for holding no query',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset();
        this.inc({ transport: 'tcp' }, evicted[Transport.tcp]!);
        this.inc({ transport: 'doq' }, evicted[Transport.doq]!);
      },
    });
    new Gauge({
      name: 'hypermesh_dns_doq_buffered_bytes',
      help: 'Bytes of unfinished DoQ queries (streams without FIN) held by the DoQ servers',
      registers,
      collect() {
        this.set(doqBuffered[0]!);
      },
    });
    registry.registerMetric(new LatencyHistogram(this.latency, this.latencySum, this.latencyCount));
  }
}

/** prom-client types `type` as a numeric enum; at run time (and in the exposition) it is this string. */
const HISTOGRAM_TYPE = 'histogram' as unknown as MetricType;
const LATENCY_HELP = 'Time from receiving a DNS query to handing its answer to the socket';

type LatencyValue = {
  value: number;
  labels: Partial<Record<string, string | number>>;
  metricName: string;
};

/**
 * `hypermesh_dns_query_duration_seconds`: a histogram read from plain bucket counts, so that a
 * query costs one array increment instead of a prom-client `observe` (label hashing, closures).
 */
class LatencyHistogram extends Histogram<'transport'> {
  constructor(
    private readonly counts: Float64Array,
    private readonly sums: Float64Array,
    private readonly totals: Float64Array,
  ) {
    super({
      name: 'hypermesh_dns_query_duration_seconds',
      help: LATENCY_HELP,
      labelNames: ['transport'],
      buckets: LATENCY_BUCKETS,
      registers: [],
    });
  }

  private snapshot() {
    const name = 'hypermesh_dns_query_duration_seconds';
    const values: LatencyValue[] = [];
    for (let t = 0; t < TRANSPORTS.length; t++) {
      const transport = TRANSPORTS[t]!;
      let cumulative = 0;
      for (let b = 0; b < LATENCY_BUCKETS.length; b++) {
        cumulative += this.counts[t * BUCKETS + b]!;
        values.push({
          value: cumulative,
          labels: { le: LATENCY_BUCKETS[b]!, transport },
          metricName: `${name}_bucket`,
        });
      }
      values.push({
        value: this.totals[t]!,
        labels: { le: '+Inf', transport },
        metricName: `${name}_bucket`,
      });
      values.push({ value: this.sums[t]!, labels: { transport }, metricName: `${name}_sum` });
      values.push({ value: this.totals[t]!, labels: { transport }, metricName: `${name}_count` });
    }
    return {
      name,
      help: LATENCY_HELP,
      type: HISTOGRAM_TYPE,
      values,
      aggregator: 'sum' as const,
    };
  }

  override async get() {
    return { ...this.snapshot(), collect: () => {} };
  }

  /** What the registry's text exposition reads (prom-client calls it when present). */
  async getForPromString() {
    return this.get();
  }
}
