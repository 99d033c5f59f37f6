/**
 * Raw transport throughput, below RPC and authentication: a sink on a bare transport listener
 * drains each stream and answers the byte count (8 bytes, big-endian) when the sender finishes;
 * the sender writes fixed-size chunks and stops its clock on that answer.
 */
import type {
  Transport,
  TransportConnection,
  TransportListener,
  TransportStream,
} from '../../src/stoq/index.js';

export interface RawSink {
  readonly listener: TransportListener;
  /** Connections accepted and not closed yet. */
  readonly open: number;
}

export async function startRawSink(transport: Transport, host: string): Promise<RawSink> {
  const listener = await transport.listen({ host, port: 0 });
  const sink = { listener, open: 0 };
  void (async () => {
    for (;;) {
      const connection = await listener.accept().catch(() => null);
      if (connection === null) return;
      sink.open += 1;
      void connection.closed.then(() => (sink.open -= 1));
      void serveConnection(connection);
    }
  })();
  return sink;
}

async function serveConnection(connection: TransportConnection): Promise<void> {
  for (;;) {
    const stream = await connection.acceptStream().catch(() => null);
    if (stream === null) return;
    void drain(stream).catch(() => stream.reset());
  }
}

async function drain(stream: TransportStream): Promise<void> {
  let bytes = 0;
  for (;;) {
    const chunk = await stream.read();
    if (chunk === null) break;
    bytes += chunk.length;
  }
  const answer = new Uint8Array(8);
  new DataView(answer.buffer).setBigUint64(0, BigInt(bytes), false);
  await stream.write(answer);
  await stream.finish();
}

export interface RawSendResult {
  readonly bytes: number;
  readonly seconds: number;
}

/**
 * Writes `chunkBytes` chunks on a new stream for about `seconds` (at most `maxBytes`), then
 * waits for the sink's count, which must equal what was sent.
 */
export async function sendRaw(
  connection: TransportConnection,
  chunkBytes: number,
  seconds: number,
  maxBytes: number,
): Promise<RawSendResult> {
  const chunk = new Uint8Array(chunkBytes).fill(0xab);
  const stream = await connection.openStream();
  const start = performance.now();
  const limit = start + seconds * 1000;
  let sent = 0;
  while (sent + chunkBytes <= maxBytes) {
    await stream.write(chunk);
    sent += chunkBytes;
    if (performance.now() >= limit) break;
  }
  await stream.finish();
  const parts: Uint8Array[] = [];
  for (;;) {
    const part = await stream.read();
    if (part === null) break;
    parts.push(part);
  }
  const elapsed = (performance.now() - start) / 1000;
  const answer = Buffer.concat(parts);
  if (answer.length !== 8) throw new Error(`raw sink answered ${answer.length} bytes, not 8`);
  const received = Number(answer.readBigUInt64BE(0));
  if (received !== sent) throw new Error(`raw sink received ${received} of ${sent} bytes`);
  return { bytes: sent, seconds: elapsed };
}

/** One request/response on a fresh stream: write `data`, finish, read the 8-byte answer. */
export async function rawRoundTrip(
  connection: TransportConnection,
  data: Uint8Array,
): Promise<void> {
  const stream = await connection.openStream();
  await stream.write(data);
  await stream.finish();
  let received = 0;
  for (;;) {
    const part = await stream.read();
    if (part === null) break;
    received += part.length;
  }
  if (received !== 8) throw new Error(`raw sink answered ${received} bytes, not 8`);
}
