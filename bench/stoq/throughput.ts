/**
 * Throughput over one authenticated session: messages on one persistent message stream, unary
 * calls (one or many in flight), and bulk bytes through a message stream.
 */
import { RpcClient, type Session } from '../../src/stoq/index.js';
import { measureRate, type RateResult } from './measure.js';
import { benchService, type BenchService } from './service.js';

export function benchClient(session: Session): RpcClient<BenchService> {
  return new RpcClient(benchService, session, { logger: { warn: () => {}, error: () => {} } });
}

export interface StreamResult {
  readonly messages: number;
  readonly bytes: number;
  readonly seconds: number;
}

/**
 * Sends `bodyBytes`-byte messages on one message stream for about `seconds` (at most
 * `maxMessages`), honouring backpressure (`send` false → `drain`), then ends the stream and
 * waits for the server's totals; the clock stops when they arrive and they must match.
 */
export async function streamMessages(
  client: RpcClient<BenchService>,
  bodyBytes: number,
  seconds: number,
  maxMessages: number,
): Promise<StreamResult> {
  const channel = await client.openMessageStream('sink');
  const message = { body: new Uint8Array(bodyBytes).fill(0x5a) };
  const start = performance.now();
  const limit = start + seconds * 1000;
  let sent = 0;
  while (sent < maxMessages) {
    const room = channel.send(message);
    sent += 1;
    if (!room) await channel.drain();
    // Checking the clock every message would cost more than sending a 100-byte one.
    if ((!room || (sent & 255) === 0) && performance.now() >= limit) break;
  }
  await channel.close();
  let totals: { messages: number; bytes: number } | null = null;
  for await (const reply of channel) totals = reply;
  const elapsed = (performance.now() - start) / 1000;
  if (totals === null) throw new Error('the sink ended without its totals');
  if (totals.messages !== sent || totals.bytes !== sent * bodyBytes) {
    throw new Error(
      `the sink counted ${totals.messages} messages / ${totals.bytes} bytes; sent ${sent} / ${sent * bodyBytes}`,
    );
  }
  return { messages: sent, bytes: totals.bytes, seconds: elapsed };
}

export function unaryRate(
  client: RpcClient<BenchService>,
  inFlight: number,
  seconds: number,
  maxCalls: number,
): Promise<RateResult> {
  const data = new Uint8Array(32).fill(7);
  return measureRate(
    async () => {
      const reply = await client.call('echo', { data });
      if (reply.data.length !== data.length) throw new Error('echo returned other bytes');
    },
    { seconds, maxCount: maxCalls, concurrency: inFlight },
  );
}
