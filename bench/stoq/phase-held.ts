/**
 * Many concurrent connections per transport (STOQ sessions, and in the full run bare transport
 * connections too): open rate, memory per connection on both sides, idle CPU.
 */
import { round, type BenchContext } from '../report.js';
import {
  manyConnections,
  perConnectionBytes,
  type ManyConnectionsResult,
} from './many-connections.js';
import {
  BARE_TLS_BASELINE,
  HOST,
  KIB,
  TLS_BASELINE,
  attempt,
  emitPair,
  type Emit,
  type Failures,
  type PerKind,
  type Settings,
} from './results.js';
import { STACK_KINDS } from './stack.js';

export async function heldConnections(
  { emit, progress }: BenchContext,
  settings: Settings,
  failures: Failures,
  dir: string,
): Promise<void> {
  for (const raw of settings.bareConnections > 0 ? [false, true] : [false]) {
    const prefix = raw ? 'held_transport_connections' : 'held_connections';
    const count = raw ? settings.bareConnections : settings.connections;
    const results: PerKind<ManyConnectionsResult | null> = {};
    for (const kind of STACK_KINDS) {
      const label = raw ? `${kind} bare transport` : `${kind} STOQ`;
      progress(`${label}: ${count} concurrent connections`);
      const result = await attempt(
        failures,
        `${kind}_${prefix}`,
        (settings.openSeconds + 180) * 1000,
        () =>
          manyConnections({
            dir,
            kind,
            host: HOST,
            count,
            concurrency: 100,
            openSeconds: settings.openSeconds,
            idleMs: settings.idleMs,
            raw,
            progress,
          }),
      );
      results[kind] = result;
      if (!result) continue;
      if (result.failed > 0) {
        const text = Object.entries(result.errors)
          .map(([error, count]) => `${count}x ${error}`)
          .join('; ');
        failures.record(`${kind}_${prefix}_open`, result.failed, text);
      }
      const counts = [
        result.server.heldAfterOpen,
        result.client.heldAfterOpen,
        result.server.heldAfterIdle,
        result.client.heldAfterIdle,
      ];
      if (counts.some((held) => held !== result.opened)) {
        failures.record(
          `${kind}_${prefix}_mismatch`,
          result.opened - Math.min(...counts),
          `client opened ${result.opened}; held (server/client) after opening ` +
            `${counts[0]}/${counts[1]}, after idle ${counts[2]}/${counts[3]}`,
        );
      }
      for (const warning of result.warnings) progress(`${label}: ${warning}`);
      progress(
        `${label}: opened ${result.opened}/${result.requested} in ${round(result.openSeconds, 1)} s; ` +
          `held (server/client) after opening ${result.server.heldAfterOpen}/${result.client.heldAfterOpen}, ` +
          `after idle ${result.server.heldAfterIdle}/${result.client.heldAfterIdle}`,
      );
    }
    emitHeld(emit, prefix, results, settings, raw);
  }
}

function emitHeld(
  emit: Emit,
  prefix: string,
  results: PerKind<ManyConnectionsResult | null>,
  settings: Settings,
  raw: boolean,
): void {
  const pick = (value: (result: ManyConnectionsResult) => number): PerKind<number | null> =>
    Object.fromEntries(
      STACK_KINDS.map((kind) => {
        const result = results[kind];
        return [kind, result ? value(result) : null];
      }),
    );
  const summary = STACK_KINDS.map((kind) => {
    const result = results[kind];
    return result ? `${kind} opened ${result.opened}/${result.requested}` : `${kind} failed`;
  }).join(', ');
  const what = raw
    ? 'bare transport connections (no STOQ authentication, no RPC server)'
    : 'STOQ sessions, delegated mode';
  const note = `${what}; one client process, one server process; ${summary}`;
  const baselineName = raw ? BARE_TLS_BASELINE : TLS_BASELINE;
  emitPair(
    emit,
    `${prefix}_open_per_s`,
    'connections/s',
    pick((r) => r.opened / r.openSeconds),
    `${note}; opened 100 at a time`,
    baselineName,
  );
  emitPair(
    emit,
    `${prefix}_alive_after_idle`,
    'connections',
    pick((r) => Math.min(r.server.heldAfterIdle, r.client.heldAfterIdle)),
    note,
    baselineName,
  );
  for (const side of ['server', 'client'] as const) {
    emitPair(
      emit,
      `${prefix}_${side}_rss_per_connection_kib`,
      'KiB',
      pick((r) => perConnectionBytes(r[side], 'rss', r.opened) / KIB),
      `${side} process RSS delta / connections, after GC; ${note}`,
      baselineName,
    );
    emitPair(
      emit,
      `${prefix}_${side}_heap_per_connection_kib`,
      'KiB',
      pick((r) => perConnectionBytes(r[side], 'heapUsed', r.opened) / KIB),
      `${side} V8 heapUsed delta / connections, after GC (part of the RSS); ${note}`,
      baselineName,
    );
    emitPair(
      emit,
      `${prefix}_${side}_idle_cpu_percent`,
      '% of one core',
      pick((r) => r[side].idleCpuPercent),
      `${side} process, all threads, over ${settings.idleMs / 1000} s with every connection open; ${note}`,
      baselineName,
    );
  }
}
