import {
  CAESAR_MODULE_NAME,
  consensusAddress,
  decodeValidatorRecord,
  validatorKey,
} from '../caesar/index.js';
import type {
  CheckContext,
  ExecutionContext,
  ForeignStateReaders,
  Module,
  ModuleQueryAnswer,
  ModuleStateReader,
} from '../consensus/application/module.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { decodeDiscoveryBody } from './body.js';
import { DiscoveryError, DiscoveryErrorCode } from './errors.js';
import {
  DISCOVERY_MODULE_NAME,
  MAX_INSTANCES_PER_OWNER,
  MAX_INSTANCES_PER_SERVICE,
  isLive,
  minRenewInterval,
} from './model.js';
import type { DeregisterTx, DiscoveryTx, RegisterTx, RenewTx, ServiceInstance } from './model.js';
import { ownerHex } from './records.js';
import {
  RESERVED_SERVICE_PREFIX,
  checkInstanceId,
  checkServiceName,
  isReservedService,
} from './rules.js';
import { Catalog, instanceKey, ownerKey, readInstance, serviceKey } from './state.js';

/** Query paths of the module (`discovery/<path>`). */
export const INSTANCE_QUERY = 'instance';
export const SERVICE_QUERY = 'service';
export const OWNER_QUERY = 'owner';

function notFound(service: string, instance: string, why: string): never {
  throw new DiscoveryError(DiscoveryErrorCode.NOT_FOUND, `${service}/${instance}: ${why}`, {
    service,
    instance,
  });
}

/**
 * The rules of renew and deregister that do not depend on the height (so `check` can apply
 * them): the record exists and the sender owns it. A record that expired but is not pruned yet
 * still names its owner, so another key gets NOT_OWNER for it until then.
 */
function authorize(
  state: ModuleStateReader,
  tx: RenewTx | DeregisterTx,
  sender: Uint8Array,
): ServiceInstance {
  const { service, instance } = tx;
  const record = readInstance(state, service, instance);
  if (record === null) return notFound(service, instance, 'no such instance');
  if (!bytesEqual(record.owner, sender)) {
    throw new DiscoveryError(
      DiscoveryErrorCode.NOT_OWNER,
      `${tx.op} ${service}/${instance}: the instance belongs to ${ownerHex(record.owner)}, not to the sender`,
      { service, instance, owner: ownerHex(record.owner) },
    );
  }
  return record;
}

/** The live record the sender owns, at the catalog's height. */
function ownedLive(
  catalog: Catalog,
  tx: RenewTx | DeregisterTx,
  sender: Uint8Array,
): ServiceInstance {
  const record = authorize(catalog.state, tx, sender);
  if (!isLive(record, catalog.height)) {
    notFound(tx.service, tx.instance, `expired at height ${record.expiresAt}; register it again`);
  }
  return record;
}

/**
 * The keys of the chain's nodes, which alone may register and renew instances of the reserved
 * `hypermesh-` services (docs/discovery.md, "Reserved services"). A node's identity key is its
 * validator key, so these are the validator keys the chain has ever had.
 */
export interface DiscoveryNodeKeys {
  /** Raw Ed25519 keys of the genesis validators. */
  readonly genesisValidators: readonly Uint8Array[];
  /**
   * Whether the chain runs the caesar module: then the key of every validator record in its
   * staking state (any status: a jailed or unbonded validator still runs a node) is a node key
   * too, and the module declares `reads: ['caesar']` to look it up.
   */
  readonly caesar: boolean;
}

export interface DiscoveryModuleOptions {
  /**
   * The chain's node keys. Absent, no service is reserved: anyone may register `hypermesh-…`
   * instances (module tests of the other rules). Every node of a chain must build the module
   * the same way, since this decides which transactions apply.
   */
  readonly nodeKeys?: DiscoveryNodeKeys;
}

/** Whether `sender` is a node key: a genesis validator, or a validator in caesar's state. */
type NodeKeyTest = (foreign: ForeignStateReaders | undefined, sender: Uint8Array) => boolean;

function nodeKeyTest(keys: DiscoveryNodeKeys): NodeKeyTest {
  const genesis = new Set(keys.genesisValidators.map(toHex));
  return (foreign, sender) => {
    if (genesis.has(toHex(sender))) return true;
    if (!keys.caesar) return false;
    if (foreign === undefined) {
      // The router always supplies it for a module that declares `reads`: a wiring mistake.
      throw new TypeError(
        `discovery: reserved services need ctx.foreign to read ${CAESAR_MODULE_NAME}`,
      );
    }
    // Records are keyed by consensus address (a prefix of the key's hash); compare the full key.
    const value = foreign(CAESAR_MODULE_NAME).get(validatorKey(consensusAddress(sender)));
    return value !== null && bytesEqual(decodeValidatorRecord(value).publicKey, sender);
  };
}

/**
 * A `register` or `renew` of a reserved service's instance needs a node key. It does not depend
 * on the height (validator records are never deleted), so `check` applies it and the mempool
 * refuses such a transaction outright.
 */
function requireNodeKey(
  isNodeKey: NodeKeyTest | undefined,
  foreign: ForeignStateReaders | undefined,
  tx: RegisterTx | RenewTx,
  sender: Uint8Array,
): void {
  if (isNodeKey === undefined || !isReservedService(tx.service)) return;
  if (isNodeKey(foreign, sender)) return;
  throw new DiscoveryError(
    DiscoveryErrorCode.RESERVED_SERVICE,
    `${tx.op} ${tx.service}/${tx.instance}: services named ${RESERVED_SERVICE_PREFIX}… are reserved for the chain's nodes, and ${ownerHex(sender)} is not a validator key (genesis or staked)`,
    { service: tx.service, instance: tx.instance, sender: ownerHex(sender) },
  );
}

/**
 * A node registers exactly one instance of each reserved service (its name), so a node key holds
 * at most one live instance per reserved service: one validator cannot fill a reserved service
 * or squat other nodes' names. Called after the sender's expired instances were pruned.
 */
function requireOneReserved(catalog: Catalog, tx: RegisterTx, sender: Uint8Array): void {
  if (!isReservedService(tx.service)) return;
  const held = catalog.ownerList(sender).find((ref) => ref.service === tx.service);
  if (held === undefined) return;
  throw new DiscoveryError(
    DiscoveryErrorCode.RESERVED_INSTANCE_HELD,
    `register ${tx.service}/${tx.instance}: the sender already holds ${held.service}/${held.instance}, and a node key holds one instance of each reserved service; deregister it first`,
    { service: tx.service, instance: tx.instance, held: held.instance },
  );
}

function register(catalog: Catalog, tx: RegisterTx, sender: Uint8Array, reserved: boolean): void {
  const { height } = catalog;
  const { op: _op, ...registration } = tx;
  const existing = catalog.record(tx.service, tx.instance);
  if (existing !== null && isLive(existing, height)) {
    if (!bytesEqual(existing.owner, sender)) {
      throw new DiscoveryError(
        DiscoveryErrorCode.NOT_OWNER,
        `register ${tx.service}/${tx.instance}: the instance belongs to ${ownerHex(existing.owner)}, not to the sender`,
        { service: tx.service, instance: tx.instance, owner: ownerHex(existing.owner) },
      );
    }
    catalog.put(
      {
        ...registration,
        owner: existing.owner,
        registeredAt: existing.registeredAt,
        updatedAt: height,
        expiresAt: height + tx.ttl,
      },
      false,
    );
    catalog.pruneService(tx.service);
    return;
  }
  // A new instance, or one whose registration expired (whoever held it): the sender takes it.
  if (existing !== null) catalog.remove(existing);
  catalog.pruneService(tx.service);
  if (catalog.index(tx.service).length >= MAX_INSTANCES_PER_SERVICE) {
    throw new DiscoveryError(
      DiscoveryErrorCode.SERVICE_FULL,
      `register ${tx.service}/${tx.instance}: the service has ${MAX_INSTANCES_PER_SERVICE} live instances, the limit`,
      { service: tx.service, limit: MAX_INSTANCES_PER_SERVICE },
    );
  }
  catalog.pruneOwner(sender);
  if (reserved) requireOneReserved(catalog, tx, sender);
  if (catalog.ownerList(sender).length >= MAX_INSTANCES_PER_OWNER) {
    throw new DiscoveryError(
      DiscoveryErrorCode.OWNER_LIMIT,
      `register ${tx.service}/${tx.instance}: the sender owns ${MAX_INSTANCES_PER_OWNER} live instances, the limit`,
      { owner: ownerHex(sender), limit: MAX_INSTANCES_PER_OWNER },
    );
  }
  catalog.put(
    {
      ...registration,
      owner: sender,
      registeredAt: height,
      updatedAt: height,
      expiresAt: height + tx.ttl,
    },
    true,
  );
}

function renew(catalog: Catalog, tx: RenewTx, sender: Uint8Array): void {
  const record = ownedLive(catalog, tx, sender);
  const lastRenewal = record.expiresAt - record.ttl;
  const spacing = minRenewInterval(record.ttl);
  if (tx.status === record.status && catalog.height - lastRenewal < spacing) {
    throw new DiscoveryError(
      DiscoveryErrorCode.RENEW_TOO_SOON,
      `renew ${tx.service}/${tx.instance}: status unchanged and last renewed at height ${lastRenewal}; the next unchanged renewal is due from height ${lastRenewal + spacing}`,
      { service: tx.service, instance: tx.instance, lastRenewal, next: lastRenewal + spacing },
    );
  }
  catalog.put({ ...record, status: tx.status, expiresAt: catalog.height + record.ttl }, false);
  catalog.pruneService(tx.service);
}

function deregister(catalog: Catalog, tx: DeregisterTx, sender: Uint8Array): void {
  catalog.remove(ownedLive(catalog, tx, sender));
  catalog.pruneService(tx.service);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function invalidQuery(path: string, message: string): never {
  throw new DiscoveryError(DiscoveryErrorCode.INVALID_QUERY, `discovery/${path}: ${message}`);
}

/** Query data as text: a service name, or `<service>/<instance>`. */
function queryText(path: string, data: Uint8Array): string {
  if (data.length > 128) invalidQuery(path, `${data.length} bytes of data, above 128`);
  try {
    return decoder.decode(data);
  } catch {
    return invalidQuery(path, 'data is not UTF-8 text');
  }
}

function labels<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof DiscoveryError)) throw error;
    return invalidQuery(path, error.message);
  }
}

/** The module-relative key a query reads; throws `DiscoveryError INVALID_QUERY` for bad data. */
export function discoveryQueryKey(path: string, data: Uint8Array): Uint8Array | undefined {
  switch (path) {
    case INSTANCE_QUERY: {
      const text = queryText(path, data);
      const slash = text.indexOf('/');
      if (slash === -1) invalidQuery(path, 'data is "<service>/<instance>"');
      return labels(path, () =>
        instanceKey(checkServiceName(text.slice(0, slash)), checkInstanceId(text.slice(slash + 1))),
      );
    }
    case SERVICE_QUERY:
      return labels(path, () => serviceKey(checkServiceName(queryText(path, data))));
    case OWNER_QUERY:
      if (data.length !== 32) invalidQuery(path, `data is a 32-byte key, got ${data.length} bytes`);
      return ownerKey(data);
    default:
      return undefined;
  }
}

/**
 * The discovery module: the replicated service catalog (docs/discovery.md). `register`,
 * `renew` and `deregister` change it; queries answer with one key each (an instance, a service's
 * index, an owner's list), which the router returns with a state proof.
 *
 * Expiry is by height, without an end-of-block hook: an instance is live while the height is
 * below its `expiresAt`; transactions treat expired instances as absent and prune the expired
 * instances of the service they touch (and the sender's own, when it registers a new one).
 * Queries cannot see the height, so their answers carry `expiresAt` and the client-side readers
 * filter by the height of the state they verified. *
 * With `options.nodeKeys`, the `hypermesh-` services are reserved for the chain's nodes (one
 * instance per node key and service); without, nothing is reserved.
 */
export function createDiscoveryModule(options: DiscoveryModuleOptions = {}): Module<DiscoveryTx> {
  const { nodeKeys } = options;
  const isNodeKey = nodeKeys === undefined ? undefined : nodeKeyTest(nodeKeys);
  return {
    name: DISCOVERY_MODULE_NAME,
    ...(nodeKeys?.caesar === true ? { reads: [CAESAR_MODULE_NAME] } : {}),
    decodeBody: decodeDiscoveryBody,
    check(ctx: CheckContext, tx: DiscoveryTx, sender: Uint8Array): void {
      if (tx.op !== 'deregister') requireNodeKey(isNodeKey, ctx.foreign, tx, sender);
      // Whether a register may proceed depends on expiry, hence on the height, which `check`
      // does not get: it is decided in `apply`.
      if (tx.op !== 'register') authorize(ctx.state, tx, sender);
    },
    apply(ctx: ExecutionContext, tx: DiscoveryTx, sender: Uint8Array): void {
      const catalog = new Catalog(ctx.state, ctx.height);
      switch (tx.op) {
        case 'register':
          register(catalog, tx, sender, isNodeKey !== undefined);
          break;
        case 'renew':
          renew(catalog, tx, sender);
          break;
        case 'deregister':
          deregister(catalog, tx, sender);
          break;
      }
      catalog.flush();
    },
    query(path: string, data: Uint8Array): ModuleQueryAnswer | undefined {
      const key = discoveryQueryKey(path, data);
      return key === undefined ? undefined : { key };
    },
  };
}
