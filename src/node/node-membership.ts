import type { ConsensusDriver } from '../consensus/driver/index.js';
import type { GenesisDocument, GenesisValidator } from '../consensus/genesis.js';
import type { StoqConsensusNetwork, UnlistedPeerPolicy } from '../consensus/net/index.js';
import { loadStoragePlot } from '../consensus/pos/index.js';
import type { StoragePlot } from '../consensus/proof/storage-plot.js';
import { findValidator, validatorAddress, type ValidatorSet } from '../consensus/validator-set.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { HyperMeshError } from '../codec/error.js';
import { CliError } from './cli-error.js';
import type { Logger } from './log.js';
import type { ValidatorNodeConfig } from './node-config.js';
import { loadValidatorPlot } from './stake-validator.js';

/**
 * A node's place in the validator set, which changes at runtime with staking: a genesis
 * validator starts in it; a node added later (`hypermesh cluster add-node`, docs/node.md
 * "Adding a node") starts outside it, follows the chain, and takes part in consensus from the
 * first height whose validator set holds its key — the engine checks membership at every
 * height (`ConsensusConfig.self`), so the node always runs with its signing keys.
 */

/** What `node start` checked about the node's keys and plot. */
export interface NodeMembership {
  /** The node's genesis entry, or null for a node that was added later. */
  readonly genesisEntry: GenesisValidator | null;
  readonly plot: StoragePlot;
}

/**
 * Checks the node against the genesis and loads its storage plot. A genesis validator (its
 * `name` in the genesis) must hold the keys and the plot the genesis registers; any other node
 * must not hold a genesis validator's key under another name, and its plot must be plotted for
 * its own key (its root is what `stake create-validator` registers). Throws `CliError`.
 */
export async function checkNodeMembership(
  config: ValidatorNodeConfig,
  genesis: GenesisDocument,
  keys: { readonly publicKey: Uint8Array; readonly pqPublicKey: Uint8Array },
): Promise<NodeMembership> {
  const entry = genesis.validators.find((validator) => validator.name === config.name) ?? null;
  if (entry !== null) {
    if (!bytesEqual(keys.publicKey, entry.publicKey)) {
      throw new CliError(
        `key file ${config.identity.keyFile} holds Ed25519 key ${toHex(keys.publicKey)}, but genesis registers ${toHex(entry.publicKey)} for ${config.name}`,
      );
    }
    if (!bytesEqual(keys.pqPublicKey, entry.pqPublicKey)) {
      throw new CliError(
        `key file ${config.identity.keyFile} holds another FALCON-1024 key than genesis registers for ${config.name}`,
      );
    }
    const plot = await plotStep(() =>
      loadStoragePlot(config.storagePlotFile, genesis.proof.space, entry.storageRoot),
    );
    return { genesisEntry: entry, plot };
  }
  const namesake = genesis.validators.find((validator) =>
    bytesEqual(validator.publicKey, keys.publicKey),
  );
  if (namesake !== undefined) {
    throw new CliError(
      `key file ${config.identity.keyFile} holds the key of genesis validator "${namesake.name}", but the configuration names the node "${config.name}"`,
    );
  }
  const plot = await plotStep(() =>
    loadValidatorPlot(config.storagePlotFile, genesis, keys.publicKey),
  );
  return { genesisEntry: null, plot };
}

async function plotStep(load: () => Promise<StoragePlot>): Promise<StoragePlot> {
  try {
    return await load();
  } catch (error) {
    const detail =
      error instanceof HyperMeshError && !(error instanceof CliError)
        ? `${error.message} [${error.code}]`
        : (error as Error).message;
    throw new CliError(`cannot load the storage plot: ${detail}`, 2);
  }
}

/** Whether `publicKey` is a validator of the driver's current or next height (false before start). */
export function isCurrentOrNextValidator(
  driver: ConsensusDriver | null,
  publicKey: Uint8Array,
): boolean {
  if (driver === null) return false;
  const address = validatorAddress(publicKey);
  const sets = driver.validatorSets();
  return sets.current.indexOf.has(address) || sets.next.indexOf.has(address);
}

/**
 * The consensus network's rule for peers this node does not list (docs/stoq-auth.md, "Consensus
 * peers"): they may follow the chain; their proposals and votes count only while their key is
 * a validator of the height being decided or the next. The node is catching up — its sets are
 * a past height's, so followers get more room (`UnlistedPeerPolicy.catchingUp`) — while its
 * driver fetches blocks from a peer ahead (`status().syncing`), and before the driver runs.
 */
export function unlistedPeerPolicy(driver: () => ConsensusDriver | null): UnlistedPeerPolicy {
  return {
    isValidator: (publicKey) => isCurrentOrNextValidator(driver(), publicKey),
    catchingUp: () => {
      const running = driver();
      return running === null || running.status().syncing;
    },
  };
}

/**
 * Starts the driver, then the consensus network, and from then on has the network close the
 * follower streams beyond its quota after each commit (`closeExcessFollowers`: those it took
 * while catching up). The network starts once the driver has read the chain (`started` is
 * called first): until then the unlisted policy knows no validator, so an unlisted validator
 * would be taken for a follower — refused once followers fill their quota, and missing from
 * `certifiedNames`. Before the network starts, peers are refused (`not-running`) and retry.
 */
export async function startDriverThenNetwork(
  driver: { start(): Promise<void>; on(event: 'commit', listener: () => void): unknown },
  network: Pick<StoqConsensusNetwork, 'start' | 'closeExcessFollowers'>,
  started: () => void,
): Promise<void> {
  await driver.start();
  started();
  driver.on('commit', () => network.closeExcessFollowers());
  network.start();
}

/** The power of `publicKey` in `set` (0 when it is not a member). */
function powerIn(set: ValidatorSet, publicKey: Uint8Array | undefined): number {
  if (publicKey === undefined) return 0;
  return findValidator(set, validatorAddress(publicKey))?.power ?? 0;
}

/**
 * The voting power of this node and its connected peers in the set of the height being decided,
 * and that set's total (`hypermesh_consensus_online_voting_power` / `_total_voting_power`).
 * Peers are matched by the key their STOQ authentication proved, so nodes added after genesis
 * count too.
 */
export function onlineVotingPower(
  driver: ConsensusDriver,
  network: StoqConsensusNetwork,
  publicKey: Uint8Array,
): { online: number; total: number } {
  const { current } = driver.validatorSets();
  const online = network
    .peers()
    .reduce(
      (sum, peer) => sum + powerIn(current, network.peerKey(peer)),
      powerIn(current, publicKey),
    );
  return { online, total: current.totalPower };
}

/**
 * Logs, once per distinct root, when a validator set of the next heights registers another
 * storage root for this node than its plot has: its proposals would then fail PoSpace at every
 * other validator (the root came from `stake create-validator`, which read it from a plot).
 */
export function watchRegisteredStorageRoot(
  driver: ConsensusDriver,
  publicKey: Uint8Array,
  plot: StoragePlot,
  logger: Logger,
): void {
  const address = validatorAddress(publicKey);
  const reported = new Set<string>();
  let member = false;
  const check = (): void => {
    const sets = driver.validatorSets();
    const entry = findValidator(sets.next, address) ?? findValidator(sets.current, address);
    if (entry === undefined) {
      if (member) logger.info('this node left the validator set', { validator: address });
      member = false;
      return;
    }
    if (!member) {
      logger.info('this node is in the validator set', {
        validator: address,
        power: entry.power,
      });
    }
    member = true;
    const registered = entry.storageRoot;
    if (registered === undefined || bytesEqual(registered, plot.root)) return;
    const text = toHex(registered);
    if (reported.has(text)) return;
    reported.add(text);
    logger.error('the validator set registers another storage root than this node has', {
      validator: address,
      registered: text,
      plot: toHex(plot.root),
    });
  };
  driver.on('commit', check);
  check();
}
