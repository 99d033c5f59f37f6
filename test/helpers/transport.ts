import assert from 'node:assert/strict';
import type { Transport, TransportConnection } from '../../src/stoq/transport.js';

/**
 * Listens on `listening` at `host` (any port), dials it from `dialing` and returns both ends of
 * the one connection (not yet authenticated).
 */
export async function connectTransports(
  listening: Transport,
  dialing: Transport,
  host: string,
): Promise<{ inbound: TransportConnection; outbound: TransportConnection }> {
  const listener = await listening.listen({ host, port: 0 });
  const [inbound, outbound] = await Promise.all([
    listener.accept(),
    dialing.dial(listener.address),
  ]);
  assert.ok(inbound, 'the listener accepted the connection');
  return { inbound, outbound };
}
