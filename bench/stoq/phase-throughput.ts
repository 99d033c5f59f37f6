/**
 * Throughput over one authenticated session per transport (messages, unary calls, bulk through
 * RPC), and the bare transports below STOQ as the floor under those numbers.
 */
import type { Session, Transport } from '../../src/stoq/index.js';
import type { BenchContext } from '../report.js';
import type { BenchChild } from './control.js';
import { measureRate } from './measure.js';
import type { BenchIdentity } from './pki.js';
import { rawRoundTrip, sendRaw } from './raw-sink.js';
import {
  BARE_TLS_BASELINE,
  HOST,
  KIB,
  MB,
  Measurement,
  attempt,
  withCpu,
  type Failures,
  type PerKind,
  type Settings,
} from './results.js';
import { STACK_KINDS, createTransport } from './stack.js';
import { benchClient, streamMessages, unaryRate } from './throughput.js';

export async function throughput(
  { emit, progress }: BenchContext,
  settings: Settings,
  failures: Failures,
  server: BenchChild,
  sessions: PerKind<Session>,
): Promise<void> {
  const seconds = settings.throughputSeconds;
  const timeoutMs = (seconds + 60) * 1000;
  const messages = new Measurement(
    'message_stream_msgs_per_s',
    'msgs/s',
    '100-byte bodies on one persistent message stream, one connection; until the server confirmed all',
  );
  const unary = new Measurement('unary_rpc_per_s', 'calls/s', 'echo of 32 bytes, 1 in flight');
  const unary32 = new Measurement('unary_rpc_32_in_flight_per_s', 'calls/s', 'echo of 32 bytes');
  const bulk = new Measurement(
    'bulk_rpc_stream_mb_per_s',
    'MB/s',
    '64 KiB messages on one RPC message stream (schema-checked, CBOR-framed); 1 MB = 10^6 bytes',
  );
  for (const kind of STACK_KINDS) {
    const session = sessions[kind];
    if (!session) continue;
    const client = benchClient(session);

    progress(`${kind}: 100-byte messages on one message stream`);
    await attempt(failures, `${kind}_message_stream_warmup`, timeoutMs, () =>
      streamMessages(client, 100, 0.3, 1_000_000),
    );
    const stream = await withCpu(server, failures, `${kind}_message_stream`, timeoutMs, () =>
      streamMessages(client, 100, seconds, 50_000_000),
    );
    messages.values[kind] = stream.result ? stream.result.messages / stream.result.seconds : null;
    messages.cpu[kind] = stream.cpu;

    progress(`${kind}: unary calls`);
    await attempt(failures, `${kind}_unary_warmup`, timeoutMs, () =>
      unaryRate(client, 8, 0.3, 10_000),
    );
    for (const [target, inFlight] of [
      [unary, 1],
      [unary32, 32],
    ] as const) {
      const phase = `${kind}_unary_rpc_${inFlight}_in_flight`;
      const calls = await withCpu(server, failures, phase, timeoutMs, () =>
        unaryRate(client, inFlight, seconds, 5_000_000),
      );
      if (calls.result) failures.fromRate(phase, calls.result);
      target.values[kind] = calls.result ? calls.result.rate : null;
      target.cpu[kind] = calls.cpu;
    }

    progress(`${kind}: bulk through a message stream (64 KiB messages)`);
    await attempt(failures, `${kind}_bulk_rpc_warmup`, timeoutMs, () =>
      streamMessages(client, 64 * KIB, 0.3, 10_000),
    );
    const bytes = await withCpu(server, failures, `${kind}_bulk_rpc_stream`, timeoutMs, () =>
      streamMessages(client, 64 * KIB, seconds, 200_000),
    );
    bulk.values[kind] = bytes.result ? bytes.result.bytes / MB / bytes.result.seconds : null;
    bulk.cpu[kind] = bytes.cpu;
  }
  for (const measurement of [messages, unary, unary32, bulk]) measurement.emit(emit);
}

/**
 * The transports alone, below STOQ authentication and RPC, against sinks in the server process:
 * what a handshake, a stream round trip and a stream's bytes cost before STOQ adds anything.
 */
export async function bareTransports(
  { emit, progress }: BenchContext,
  settings: Settings,
  failures: Failures,
  server: BenchChild,
  identity: BenchIdentity,
  ports: Record<string, number>,
): Promise<void> {
  const seconds = settings.throughputSeconds;
  const timeoutMs = (seconds + 60) * 1000;
  const handshakes = new Measurement(
    'transport_handshakes_per_s',
    'handshakes/s',
    'bare transport dial + close, no STOQ authentication (the floor under STOQ handshakes)',
    BARE_TLS_BASELINE,
  );
  const handshakes50 = new Measurement(
    'transport_handshakes_50_parallel_per_s',
    'handshakes/s',
    'bare transport dial + close, 50 in parallel, no STOQ authentication',
    BARE_TLS_BASELINE,
  );
  const roundTrips = new Measurement(
    'transport_stream_round_trips_per_s',
    'round trips/s',
    'new stream, 32 bytes, FIN, 8-byte answer, FIN; no RPC layer (the floor under unary RPC)',
    BARE_TLS_BASELINE,
  );
  const roundTrips32 = new Measurement(
    'transport_stream_round_trips_32_in_flight_per_s',
    'round trips/s',
    'as transport_stream_round_trips_per_s, 32 in flight',
    BARE_TLS_BASELINE,
  );
  const bulk = new Measurement(
    'bulk_raw_stream_mb_per_s',
    'MB/s',
    '64 KiB writes on one bare transport stream (no STOQ auth, no RPC framing); 1 MB = 10^6 bytes',
    BARE_TLS_BASELINE,
  );
  for (const kind of STACK_KINDS) {
    const port = ports[kind];
    if (port === undefined) continue;
    const address = { host: HOST, port };
    const transport: Transport = createTransport(kind, identity);
    try {
      progress(`${kind}: bare transport handshakes`);
      const dialAndClose = async (): Promise<void> => {
        const connection = await transport.dial(address);
        connection.close('handshake measured');
      };
      await attempt(failures, `${kind}_transport_handshake_warmup`, timeoutMs, () =>
        measureRate(dialAndClose, { seconds: 0.3, maxCount: 20 }),
      );
      for (const [target, concurrency] of [
        [handshakes, 1],
        [handshakes50, 50],
      ] as const) {
        const phase = `${kind}_transport_handshakes_${concurrency}`;
        const rate = await withCpu(server, failures, phase, timeoutMs, () =>
          measureRate(dialAndClose, {
            seconds: settings.handshakeSeconds,
            maxCount: 100_000,
            concurrency,
          }),
        );
        if (rate.result) failures.fromRate(phase, rate.result);
        target.values[kind] = rate.result ? rate.result.rate : null;
        target.cpu[kind] = rate.cpu;
      }

      const connection = await attempt(failures, `${kind}_transport_dial`, timeoutMs, () =>
        transport.dial(address),
      );
      if (connection === null) continue;

      progress(`${kind}: bare stream round trips`);
      const data = new Uint8Array(32).fill(1);
      await attempt(failures, `${kind}_transport_round_trip_warmup`, timeoutMs, () =>
        measureRate(() => rawRoundTrip(connection, data), { seconds: 0.3, maxCount: 1000 }),
      );
      for (const [target, inFlight] of [
        [roundTrips, 1],
        [roundTrips32, 32],
      ] as const) {
        const phase = `${kind}_transport_round_trips_${inFlight}`;
        const rate = await withCpu(server, failures, phase, timeoutMs, () =>
          measureRate(() => rawRoundTrip(connection, data), {
            seconds,
            maxCount: 5_000_000,
            concurrency: inFlight,
          }),
        );
        if (rate.result) failures.fromRate(phase, rate.result);
        target.values[kind] = rate.result ? rate.result.rate : null;
        target.cpu[kind] = rate.cpu;
      }

      progress(`${kind}: bulk on a bare transport stream`);
      await attempt(failures, `${kind}_bulk_raw_warmup`, timeoutMs, () =>
        sendRaw(connection, 64 * KIB, 0.3, 1e9),
      );
      const sent = await withCpu(server, failures, `${kind}_bulk_raw_stream`, timeoutMs, () =>
        sendRaw(connection, 64 * KIB, seconds, 20e9),
      );
      bulk.values[kind] = sent.result ? sent.result.bytes / MB / sent.result.seconds : null;
      bulk.cpu[kind] = sent.cpu;
      connection.close('measured');
    } finally {
      await transport.close();
    }
  }
  for (const measurement of [handshakes, handshakes50, roundTrips, roundTrips32, bulk]) {
    measurement.emit(emit);
  }
}
