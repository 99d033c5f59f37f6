import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import {
  createDiscoveryModule,
  decodeServiceIndex,
  discoveryRegister,
  discoveryServiceQuery,
} from '../../src/discovery/index.js';
import type { InstanceRegistration, ServiceSnapshot } from '../../src/discovery/index.js';
import { openNode, tx } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';

/** A node running the discovery module (and nothing else) over a fresh store. */
export function openDiscoveryNode(): Promise<TestNode> {
  return openNode({ modules: [createDiscoveryModule()] });
}

/** A valid registration; `overrides` replace fields. */
export function registration(overrides: Partial<InstanceRegistration> = {}): InstanceRegistration {
  return {
    service: 'trustchain-ca',
    instance: 'node-1',
    addresses: ['192.0.2.10', '2001:db8::10'],
    ports: [
      { protocol: 'stoq', port: 9292 },
      { protocol: 'https', port: 9443 },
    ],
    identity: 'spiffe://hypermesh/node/node-1',
    metadata: { version: '0.1.0', zone: 'eu-west' },
    check: { kind: 'stoq-ping', port: 9292, interval: 5_000, timeout: 1_000, rise: 2, fall: 3 },
    ttl: 20,
    status: 'passing',
    ...overrides,
  };
}

/** A signed discovery transaction from `sender` (its next sequence unless given). */
export function discoveryTx(sender: Sender, body: Uint8Array, sequence?: number): Uint8Array {
  return tx(sender, body, {
    module: 'discovery',
    ...(sequence === undefined ? {} : { sequence }),
  });
}

export function registerTx(
  sender: Sender,
  overrides: Partial<InstanceRegistration> = {},
): Uint8Array {
  return discoveryTx(sender, discoveryRegister(registration(overrides)));
}

/**
 * A face source's proof-less `index` read made from `query`'s answers, for tests that serve a
 * bare application rather than a node's `CatalogView`.
 */
export function indexFromQuery(
  query: (request: QueryRequest) => QueryResponse,
): (service: string) => ServiceSnapshot | null {
  return (service) => {
    const answer = query(discoveryServiceQuery(service));
    if (answer.height === null) return null;
    return {
      height: answer.height,
      entries: answer.value === null ? [] : decodeServiceIndex(answer.value),
    };
  };
}
