import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * STOQ's Prometheus metrics. The registry is passed in (never the global one), so a process
 * can run several endpoints, and tests can read exactly what one endpoint counted.
 */
export interface StoqMetrics {
  /** Open connections by transport and direction. */
  readonly connections: Gauge<'transport' | 'direction'>;
  /** Authentication handshakes by outcome (`ok` or a failure reason) and transport. */
  readonly handshakes: Counter<'transport' | 'outcome'>;
  readonly handshakeSeconds: Histogram<'transport'>;
  /** RPC calls by method and status code (`OK` or a `StoqErrorCode`). */
  readonly rpcCalls: Counter<'method' | 'code' | 'side'>;
  readonly rpcSeconds: Histogram<'method' | 'side'>;
  readonly bytes: Counter<'direction'>;
  /** Frames rejected before decoding (oversize, malformed), by reason. */
  readonly rejectedFrames: Counter<'reason'>;
}

export function createStoqMetrics(registry: Registry, prefix = 'hypermesh_stoq_'): StoqMetrics {
  const registers = [registry];
  return {
    connections: new Gauge({
      name: `${prefix}connections`,
      help: 'Open STOQ connections',
      labelNames: ['transport', 'direction'],
      registers,
    }),
    handshakes: new Counter({
      name: `${prefix}handshakes_total`,
      help: 'STOQ authentication handshakes by outcome (ok or failure reason)',
      labelNames: ['transport', 'outcome'],
      registers,
    }),
    handshakeSeconds: new Histogram({
      name: `${prefix}handshake_seconds`,
      help: 'Time from transport connect to authenticated STOQ session',
      labelNames: ['transport'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    rpcCalls: new Counter({
      name: `${prefix}rpc_calls_total`,
      help: 'RPC calls by method, status code and side (client or server)',
      labelNames: ['method', 'code', 'side'],
      registers,
    }),
    rpcSeconds: new Histogram({
      name: `${prefix}rpc_seconds`,
      help: 'RPC latency by method and side',
      labelNames: ['method', 'side'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    bytes: new Counter({
      name: `${prefix}bytes_total`,
      help: 'Application bytes through STOQ streams by direction (in or out)',
      labelNames: ['direction'],
      registers,
    }),
    rejectedFrames: new Counter({
      name: `${prefix}rejected_frames_total`,
      help: 'Frames rejected before decoding, by reason',
      labelNames: ['reason'],
      registers,
    }),
  };
}
