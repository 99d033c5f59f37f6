import { Gauge, type Registry } from 'prom-client';
import { StoqError, type StoqEndpoint } from '../stoq/index.js';
import type { Logger } from './log.js';
import { nodeService } from './node-service.js';

/**
 * Pings every configured peer at an interval and records the round-trip time, so an operator
 * sees at once which peers this node can reach and authenticate. Reconnection is the pool's job.
 */
export interface PeerMonitor {
  stop(): void;
}

export function startPeerMonitor(options: {
  endpoint: StoqEndpoint;
  peers: readonly string[];
  intervalMs: number;
  registry: Registry;
  logger: Logger;
}): PeerMonitor {
  const rtt = new Gauge({
    name: 'hypermesh_peer_rtt_seconds',
    help: 'Round-trip time of the last successful ping to each configured peer',
    labelNames: ['peer'],
    registers: [options.registry],
  });
  const up = new Gauge({
    name: 'hypermesh_peer_up',
    help: '1 if the last ping to the peer succeeded, else 0',
    labelNames: ['peer'],
    registers: [options.registry],
  });
  const clients = options.peers.map((peer) => ({
    peer,
    client: options.endpoint.client(nodeService, peer),
    wasUp: undefined as boolean | undefined,
  }));
  let stopped = false;
  const round = async (): Promise<void> => {
    await Promise.all(
      clients.map(async (entry) => {
        const started = performance.now();
        try {
          await entry.client.call(
            'ping',
            { sentAt: Date.now() },
            { deadlineMs: options.intervalMs },
          );
          const seconds = (performance.now() - started) / 1000;
          rtt.set({ peer: entry.peer }, seconds);
          up.set({ peer: entry.peer }, 1);
          options.logger.info('peer ping', { peer: entry.peer, rttMs: seconds * 1000 });
          entry.wasUp = true;
        } catch (error) {
          up.set({ peer: entry.peer }, 0);
          if (entry.wasUp !== false) {
            options.logger.warn('peer unreachable', {
              peer: entry.peer,
              code: error instanceof StoqError ? error.code : 'UNKNOWN',
              error: (error as Error).message,
            });
          }
          entry.wasUp = false;
        }
      }),
    );
  };
  let timer: NodeJS.Timeout | undefined;
  const loop = (): void => {
    if (stopped) return;
    void round().finally(() => {
      if (!stopped) timer = setTimeout(loop, options.intervalMs);
    });
  };
  loop();
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
