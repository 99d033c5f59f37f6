import type { GenesisDocument } from '../consensus/genesis.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import { validatorAddress } from '../consensus/validator-set.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { certificateEd25519Key, certificateIdentity } from '../crypto/x509.js';
import type { IdentityCheck, RevocationAnswer, RevocationCheck } from '../stoq/auth/index.js';
import { readTbs, splitCertificate } from '../trustchain/ca/certificate.js';
import { readCaValue, type CaAnswerCheck } from '../trustchain/ca-module/client.js';
import { REVOCATION_REASONS, caQuery } from '../trustchain/ca-module/index.js';
import {
  CA_MODULE_NAME,
  certificateKey,
  decodeCertificateRecord,
  decodeRevocation,
  revocationKey,
} from '../trustchain/ca-module/state.js';
import { NOT_ISSUED_REASON } from './ca-service.js';
import {
  checkAnsweredHeight,
  committedRootsOf,
  withCommittedRoots,
  type VerifiedRootCache,
} from './verified-root.js';

/**
 * What the operator tools hold a node's STOQ key to (docs/stoq-auth.md, "Operator clients").
 * A node certificate only says that some CA holder vouched for a name; every validator holds an
 * intermediate key and can sign a leaf for any node name. The node's key is what it cannot
 * fake: a genesis validator's Ed25519 key is its STOQ identity key (genesis.ts
 * `GenesisValidator.publicKey`), and a node `cluster add-node` wrote is recorded with its key's
 * address in the operator's own cluster directory (added-nodes.json, or cluster.json).
 */
export type NodeKeyPin =
  | { readonly source: 'genesis'; readonly publicKey: Uint8Array }
  | { readonly source: 'recorded'; readonly address: string; readonly file: string };

/**
 * The pins of the target's nodes: the genesis key for a genesis validator's name (whatever the
 * target records for it), else the validator address the target records.
 */
export function operatorNodePins(
  genesis: GenesisDocument,
  target: {
    readonly source: string;
    readonly nodes: readonly { readonly name: string; readonly id: string }[];
  },
): ReadonlyMap<string, NodeKeyPin> {
  const pins = new Map<string, NodeKeyPin>();
  for (const node of target.nodes) {
    pins.set(node.name, { source: 'recorded', address: node.id, file: target.source });
  }
  for (const validator of genesis.validators) {
    pins.set(validator.name, { source: 'genesis', publicKey: validator.publicKey });
  }
  return pins;
}

/**
 * The identity check of the operator's endpoint: a peer in a serving role (`validator`,
 * `node`) must certify the key pinned for its name, else it is refused (`UNAUTHENTICATED`,
 * `wrong_key_usage`) with this reason. `client` peers pass: the pool's `isServingNode` refuses
 * them as any node.
 */
export function pinnedNodeKeyCheck(pins: ReadonlyMap<string, NodeKeyPin>): IdentityCheck {
  return ({ identity, leaf }) => {
    if (identity.role === 'client') return null;
    const pin = pins.get(identity.name);
    if (pin === undefined) {
      return (
        `node "${identity.name}" (${identity.uri}) is neither a genesis validator nor a node the ` +
        `cluster directory records, so the operator has no key to hold it to: address a genesis ` +
        `validator or a node "cluster add-node" recorded instead`
      );
    }
    const key = certificateEd25519Key(leaf);
    if (pin.source === 'genesis') {
      if (bytesEqual(key, pin.publicKey)) return null;
      return (
        `node "${identity.name}" presented a certificate for key ${toHex(key)}, but the genesis ` +
        `validator "${identity.name}" has key ${toHex(pin.publicKey)}: not that node`
      );
    }
    const address = validatorAddress(key);
    if (address === pin.address) return null;
    return (
      `node "${identity.name}" presented a certificate for key ${toHex(key)} (address ${address}), ` +
      `but ${pin.file} records node "${identity.name}" with address ${pin.address}: not that node`
    );
  };
}

/** Whether `genesis` sets up the TrustChain CA (`app.ca`), whose state records every leaf. */
export function hasTrustChainCa(genesis: GenesisDocument): boolean {
  return genesis.app?.[CA_MODULE_NAME] !== undefined;
}

export interface ProvenLeafCheckOptions {
  readonly genesis: GenesisDocument;
  /**
   * A node API client for node `name`, of an endpoint that does not run this check itself (its
   * handshakes would otherwise wait on the reads they start).
   */
  readonly client: (name: string) => NodeRpcClient;
  /** The nodes to read from: the nodes of the operator's target. */
  readonly readers: readonly string[];
  /** Time one node has to prove an answer (default 4 s: within the 10 s handshake). */
  readonly deadlineMs?: number;
}

interface ProvenStatus {
  readonly height: number;
  readonly answer: RevocationAnswer;
}

/** `promise`, or a rejection naming `what` after `ms`. */
async function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The operator's revocation check for a TrustChain cluster: the peer's leaf must be the
 * certificate committed state holds at `ca/cert/<serial>` (else `revoked` with reason
 * `notIssuedByConsensus`, as nodes answer: ca-service.ts), and `ca/rev/<serial>` at that height
 * must be empty (else `revoked` with the recorded reason). Both are state proofs checked against
 * the header the validator quorum committed (verified-root.ts). A proof is of some committed
 * height, so whoever holds the leaf's key could show one from before its revocation: the
 * answers are asked of every reader but the node the leaf names, at once, each within
 * `deadlineMs`, and the one of the highest height counts; that node itself is asked only when
 * no other proves an answer (a one-validator cluster, or the others unreachable). Certificates
 * above the leaf are not read: consensus records no leaf from an intermediate it did not put
 * into effect. `client` leaves are not read either: the pool refuses them as any node.
 */
export function provenLeafRevocation(options: ProvenLeafCheckOptions): RevocationCheck {
  const deadlineMs = options.deadlineMs ?? 4000;
  const cache: VerifiedRootCache = new Map();
  const clients = new Map<string, NodeRpcClient>();
  const committedClient = (name: string): NodeRpcClient => {
    let client = clients.get(name);
    if (client === undefined) {
      client = withCommittedRoots(options.client(name), options.genesis, { cache });
      clients.set(name, client);
    }
    return client;
  };

  const readFrom = async (reader: string, der: Uint8Array): Promise<ProvenStatus> => {
    const client = committedClient(reader);
    const check: CaAnswerCheck = async (request, response) => {
      checkAnsweredHeight(request.height, response.height);
      await committedRootsOf(client).check(response.height, response.stateRoot);
    };
    const query = (request: Parameters<NodeRpcClient['query']>[0]) => client.query(request);
    const serial = readTbs(splitCertificate(der).tbs).serial;
    const issued = await readCaValue(
      query,
      caQuery('certificate', serial),
      certificateKey(serial),
      check,
    );
    const height = issued.height ?? 0;
    if (issued.value === null || !bytesEqual(decodeCertificateRecord(issued.value).der, der)) {
      return { height, answer: { status: 'revoked', reason: NOT_ISSUED_REASON } };
    }
    const revoked = await readCaValue(
      query,
      caQuery('revocation', serial, issued.height ?? undefined),
      revocationKey(serial),
      check,
    );
    if (revoked.value === null) return { height, answer: 'good' };
    const reason = decodeRevocation(revoked.value).reason;
    return {
      height,
      answer: { status: 'revoked', reason: REVOCATION_REASONS[reason] ?? String(reason) },
    };
  };

  /** The answer of the highest height among `readers` that prove one within the deadline. */
  const newest = async (
    readers: readonly string[],
    der: Uint8Array,
    failures: string[],
  ): Promise<RevocationAnswer | null> => {
    const settled = await Promise.allSettled(
      readers.map((reader) => withinMs(readFrom(reader, der), deadlineMs, reader)),
    );
    let best: ProvenStatus | null = null;
    for (const [index, result] of settled.entries()) {
      if (result.status === 'rejected') {
        failures.push(`${readers[index]}: ${(result.reason as Error).message}`);
      } else if (best === null || result.value.height > best.height) {
        best = result.value;
      }
    }
    return best?.answer ?? null;
  };

  return async ({ certificate, depth }) => {
    if (depth !== 0) return 'good';
    const { role, name: named } = certificateIdentity(certificate);
    // No `client` certificate is taken for a node (`isServingNode`): nothing to prove.
    if (role === 'client') return 'good';
    const failures: string[] = [];
    const others = options.readers.filter((reader) => reader !== named);
    const answer =
      (await newest(others, certificate.der, failures)) ??
      (options.readers.includes(named) ? await newest([named], certificate.der, failures) : null);
    if (answer !== null) return answer;
    throw new Error(
      `no node proved the status of ${certificate.subject} (serial ${certificate.serialNumber}): ${failures.join('; ') || 'no node to ask'}`,
    );
  };
}
