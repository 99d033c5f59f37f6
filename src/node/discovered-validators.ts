import type { DiscoveredPeerConfig, StoqConsensusNetwork } from '../consensus/net/index.js';
import { validatorAddress } from '../consensus/validator-set.js';
import { fromHex, toHex } from '../crypto/bytes.js';
import type { ServiceInstance } from '../discovery/index.js';
import type { SocketAddress } from '../stoq/index.js';
import { stoqAddressesOf, type CatalogReader } from './discovery-resolver.js';
import { SELF_SERVICES } from './discovery-self.js';
import type { Logger } from './log.js';

/**
 * Validators this node dials although its configuration does not list them (docs/consensus.md,
 * "Validator-set changes"). A node added to a running cluster lists only the nodes its
 * configuration was written with; the running nodes list none of it. Every node registers itself
 * in the catalog as an instance of `hypermesh-node` named after it and owned by its identity key,
 * which is its validator key; so after each commit the node takes the live instances whose owner
 * is a validator of the height being decided or the next, other than itself and its configured
 * peers, and hands them to the consensus network to dial (`setDiscoveredPeers`). The dialled peer
 * must authenticate with that name and that key. Followers (keys outside the set) are never
 * dialled; a validator that leaves the set, or whose instance expires, is dropped.
 *
 * The catalog does not tie an instance's name to its owner's certificate: any validator key may
 * register an unowned or expired `hypermesh-node/x`. The certificates this node has seen do
 * (`StoqConsensusNetwork.certifiedNames`), so an instance they contradict is left out — its
 * owner's certificate names another node, or another validator key holds the certificate for
 * its name — and logged. The network accepts the real `x` whatever the catalog says.
 */

export interface DiscoveredValidatorsInput {
  /** Live `hypermesh-node` instances of the committed catalog. */
  readonly instances: readonly ServiceInstance[];
  readonly self: string;
  /** Names of the configured peers (dialled anyway). */
  readonly configured: ReadonlySet<string>;
  /** Whether a raw Ed25519 key is a validator of the height being decided or of the next. */
  readonly isValidator: (publicKey: Uint8Array) => boolean;
  /** At most this many are dialled (the network's `maxDiscoveredPeers`). */
  readonly max: number;
  /**
   * Hex validator key → the certificate name it authenticated with (the network's
   * `certifiedNames`); default none.
   */
  readonly certified?: ReadonlyMap<string, string>;
}

export interface DiscoveredValidators {
  /** By name; one per validator key (the first name in sort order). */
  readonly peers: readonly DiscoveredPeerConfig[];
  /** Validators left out beyond `max`, by name. */
  readonly dropped: readonly string[];
  /** Instances left out because a certificate says their name is not their owner's, by name. */
  readonly contradicted: readonly string[];
}

/** `host:port`, with IPv6 hosts in brackets. */
function hostPort(address: SocketAddress): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** Per certificate name, the validator keys (hex) that authenticated with it. */
function certifiedValidatorKeys(
  certified: ReadonlyMap<string, string>,
  isValidator: (publicKey: Uint8Array) => boolean,
): Map<string, string[]> {
  const byName = new Map<string, string[]>();
  for (const [key, name] of certified) {
    if (!isValidator(fromHex(key))) continue;
    byName.set(name, [...(byName.get(name) ?? []), key]);
  }
  return byName;
}

/** The validators to dial, from the catalog's `hypermesh-node` instances (pure). */
export function discoveredValidators(input: DiscoveredValidatorsInput): DiscoveredValidators {
  const candidates = [...input.instances]
    .filter((record) => record.service === SELF_SERVICES.node)
    .sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
  const certified = input.certified ?? new Map<string, string>();
  const holders = certifiedValidatorKeys(certified, input.isValidator);
  const owners = new Set<string>();
  const peers: DiscoveredPeerConfig[] = [];
  const dropped: string[] = [];
  const contradicted: string[] = [];
  for (const record of candidates) {
    const name = record.instance;
    if (name === input.self || input.configured.has(name)) continue;
    const address = stoqAddressesOf(record)[0];
    if (address === undefined || !input.isValidator(record.owner)) continue;
    const owner = toHex(record.owner);
    const ownerName = certified.get(owner);
    if (
      (ownerName !== undefined && ownerName !== name) ||
      (holders.get(name) ?? []).some((holder) => holder !== owner)
    ) {
      contradicted.push(name);
      continue;
    }
    if (owners.has(owner)) continue;
    owners.add(owner);
    if (peers.length >= input.max) {
      dropped.push(name);
      continue;
    }
    peers.push({ id: name, address: hostPort(address), publicKey: record.owner });
  }
  return { peers, dropped, contradicted };
}

export interface DiscoveredValidatorsFollowerOptions {
  readonly self: string;
  readonly configured: readonly string[];
  /** The node's committed catalog, or null (no discovery on this chain, or not set up yet). */
  readonly catalog: () => CatalogReader | null;
  readonly isValidator: (publicKey: Uint8Array) => boolean;
  readonly network: Pick<
    StoqConsensusNetwork,
    'setDiscoveredPeers' | 'maxDiscoveredPeers' | 'certifiedNames'
  >;
  readonly logger: Logger;
}

/**
 * Keeps the network's discovered peers in step with the catalog, the validator sets and the
 * certificates the network saw: call `update` after each commit (cheap when nothing changed).
 * Logs each validator added or removed at info, and instances a certificate contradicts at warn
 * (when they change); a set the network refuses is logged and leaves the previous one in place.
 */
export function followDiscoveredValidators(options: DiscoveredValidatorsFollowerOptions): {
  update(): void;
} {
  const configured = new Set(options.configured);
  let last = '';
  let lastDropped = '';
  let lastContradicted = '';
  return {
    update: () => {
      const catalog = options.catalog();
      const found = discoveredValidators({
        instances: catalog === null ? [] : catalog.live(SELF_SERVICES.node),
        self: options.self,
        configured,
        isValidator: options.isValidator,
        max: options.network.maxDiscoveredPeers,
        certified: options.network.certifiedNames(),
      });
      const key = found.peers
        .map((peer) => `${peer.id}@${peer.address}/${toHex(peer.publicKey ?? new Uint8Array())}`)
        .join(' ');
      const droppedKey = found.dropped.join(' ');
      if (droppedKey !== lastDropped && found.dropped.length > 0) {
        options.logger.warn('more discovered validators than the consensus network dials', {
          max: options.network.maxDiscoveredPeers,
          notDialled: found.dropped,
        });
      }
      lastDropped = droppedKey;
      const contradictedKey = found.contradicted.join(' ');
      if (contradictedKey !== lastContradicted && found.contradicted.length > 0) {
        options.logger.warn(
          'catalog instances not dialled: a certificate says the name is not their owner’s',
          { service: SELF_SERVICES.node, instances: found.contradicted },
        );
      }
      lastContradicted = contradictedKey;
      if (key === last) return;
      let change: { added: readonly string[]; removed: readonly string[] };
      try {
        change = options.network.setDiscoveredPeers(found.peers);
      } catch (error) {
        options.logger.warn('discovered validators not taken by the consensus network', {
          error: error instanceof Error ? error.message : String(error),
        });
        return;
      }
      last = key;
      for (const name of change.removed) {
        options.logger.info('no longer dialling a discovered validator', { peer: name });
      }
      for (const name of change.added) {
        const peer = found.peers.find((entry) => entry.id === name);
        options.logger.info('dialling a validator found in the catalog', {
          peer: name,
          address: peer?.address,
          validator: peer?.publicKey === undefined ? undefined : validatorAddress(peer.publicKey),
        });
      }
    },
  };
}
