import { StoqError } from '../stoq/index.js';
import type { NodeStatusRecord } from '../consensus/net/index.js';
import { genesisValidatorSet, type GenesisDocument } from '../consensus/genesis.js';
import { applyValidatorUpdates, type ValidatorSet } from '../consensus/validator-set.js';
import { decodeValidatorUpdates } from '../consensus/validator-updates.js';
import type { StoredValidatorUpdates } from '../storage/index.js';
import { visible } from './io.js';
import type { ClusterTarget, OperatorSession } from './operator.js';

/**
 * `hypermesh status`: every node's own status record (node API `status`), gathered over STOQ,
 * and the cluster picture they add up to. Which nodes validate comes from the chain's current
 * validator set (the genesis set with the validator updates of the committed blocks, as the
 * most advanced node that answered reports them), or from the genesis when no node can say.
 */
export interface NodeView {
  readonly name: string;
  readonly id: string;
  readonly stoq: string;
  /** In the current validator set (`validator`, with its voting power) or not (`follower`). */
  readonly role: 'validator' | 'follower';
  readonly power: number;
  readonly reachable: boolean;
  /** Why the node could not be asked (a STOQ code and message), when unreachable. */
  readonly error: string | null;
  /** Round trip of the status call, ms. */
  readonly rttMs: number | null;
  readonly status: NodeStatusRecord | null;
}

/** Where the validator set came from: the chain as a node reported it, or the genesis. */
export type ValidatorSetSource =
  | {
      readonly from: 'chain';
      readonly node: string;
      /** The height the set decides: the node's committed height + 1. */
      readonly height: number;
    }
  | {
      readonly from: 'genesis';
      /** Why the chain's set is not shown (no node answered, or its updates were refused). */
      readonly reason: string;
    };

export interface ClusterStatus {
  readonly chainId: string;
  readonly validatorSet: ValidatorSetSource;
  /** The current validators: a node's name when the cluster file knows the key, else its id. */
  readonly validators: readonly {
    readonly name: string;
    readonly id: string;
    readonly power: number;
  }[];
  /** Highest committed height any reachable node reports (null if none is reachable). */
  readonly height: number | null;
  /** Latest local commit time any reachable node reports (ms since the epoch). */
  readonly lastCommitTime: number | null;
  /** Validators that answered or that a node that answered is connected to. */
  readonly validatorsOnline: readonly string[];
  readonly onlinePower: number;
  readonly totalPower: number;
  readonly reachable: number;
  readonly nodes: readonly NodeView[];
}

/** A count or height a node reports: a non-negative safe integer, or null (absent or not one). */
function numberField(status: NodeStatusRecord | null, key: string): number | null {
  const value = status?.[key];
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null;
}

function listField(status: NodeStatusRecord | null, key: string): string[] {
  const value = status?.[key];
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === 'string')
    : [];
}

function describe(error: unknown): string {
  if (error instanceof StoqError) {
    const reason = typeof error.detail.reason === 'string' ? ` (${error.detail.reason})` : '';
    return `${error.code}${reason}: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * The validator set of height `committedHeight + 1`: the genesis set with the updates of blocks
 * 1 .. committedHeight − 1 applied in order (the updates block u returns decide height u + 2,
 * docs/consensus.md). Throws the ConsensusError of updates that do not decode or apply.
 */
export function validatorSetAfter(
  genesis: GenesisDocument,
  stored: readonly StoredValidatorUpdates[],
  committedHeight: number,
): ValidatorSet {
  let set = genesisValidatorSet(genesis);
  for (const entry of [...stored].sort((a, b) => a.height - b.height)) {
    if (entry.height > committedHeight - 1) break;
    set = applyValidatorUpdates(set, decodeValidatorUpdates(entry.bytes)).validators;
  }
  return set;
}

/**
 * The validator set the report shows: the genesis set with the validator updates of the node
 * whose committed height is the median of those reported (the lower one of an even count). Not
 * the highest: one node claiming a height far ahead would otherwise be the only source of the
 * set, and the update windows up to its claim would keep the command asking for ever.
 */
export async function currentValidatorSet(
  genesis: GenesisDocument,
  session: Pick<OperatorSession, 'client'>,
  answered: readonly Pick<NodeView, 'name' | 'status'>[],
  timeoutMs: number,
): Promise<{ set: ValidatorSet; source: ValidatorSetSource }> {
  const reported = answered
    .map((node) => ({ node: node.name, height: numberField(node.status, 'committedHeight') }))
    .filter((entry): entry is { node: string; height: number } => entry.height !== null)
    .sort((a, b) => a.height - b.height);
  const best = reported.length === 0 ? null : reported[Math.floor((reported.length - 1) / 2)]!;
  if (best === null) {
    return {
      set: genesisValidatorSet(genesis),
      source: { from: 'genesis', reason: 'no node reported a committed height' },
    };
  }
  try {
    // One deadline for all the windows: a node claiming a height far ahead (any safe integer
    // passes the schema) answering each window at once would otherwise keep this paging for
    // ever (2^53 heights are ~10^11 windows), each call within its own deadline.
    const stored =
      best.height >= 2
        ? await session.client(best.node).validatorUpdates(1, best.height - 1, {
            deadlineMs: timeoutMs,
            signal: AbortSignal.timeout(timeoutMs),
          })
        : [];
    return {
      set: validatorSetAfter(genesis, stored, best.height),
      source: { from: 'chain', node: best.node, height: best.height + 1 },
    };
  } catch (error) {
    return {
      set: genesisValidatorSet(genesis),
      source: {
        from: 'genesis',
        reason: `the validator updates from ${best.node}: ${describe(error)}`,
      },
    };
  }
}

export async function collectClusterStatus(
  target: ClusterTarget,
  genesis: GenesisDocument,
  session: OperatorSession,
  timeoutMs: number,
): Promise<ClusterStatus> {
  const polled = await Promise.all(
    target.nodes.map(async (node): Promise<Omit<NodeView, 'role' | 'power'>> => {
      const stoq = `${node.stoq.host.includes(':') ? `[${node.stoq.host}]` : node.stoq.host}:${node.stoq.port}`;
      const started = performance.now();
      try {
        const status = await session.client(node.name).status({ deadlineMs: timeoutMs });
        return {
          name: node.name,
          id: node.id,
          stoq,
          reachable: true,
          error: null,
          rttMs: performance.now() - started,
          status,
        };
      } catch (error) {
        return {
          name: node.name,
          id: node.id,
          stoq,
          reachable: false,
          error: describe(error),
          rttMs: null,
          status: null,
        };
      }
    }),
  );
  const { set, source } = await currentValidatorSet(
    genesis,
    session,
    polled
      .filter((node) => node.reachable)
      .map((node) => ({ ...node, role: 'follower', power: 0 })),
    timeoutMs,
  );
  const powerOf = new Map(set.validators.map((validator) => [validator.address, validator.power]));
  const nodes = polled.map((node): NodeView => {
    const power = powerOf.get(node.id) ?? 0;
    return { ...node, role: power > 0 ? 'validator' : 'follower', power };
  });
  const nameOf = new Map<string, string>(
    genesis.validators.map((validator) => [
      Buffer.from(validator.publicKey).toString('hex'),
      validator.name,
    ]),
  );
  const names = new Map(target.nodes.map((node) => [node.id, node.name]));
  const validators = set.validators.map((validator) => ({
    name:
      names.get(validator.address) ??
      nameOf.get(Buffer.from(validator.publicKey).toString('hex')) ??
      validator.address,
    id: validator.address,
    power: validator.power,
  }));
  const answered = nodes.filter((node) => node.reachable);
  const heights = answered
    .map((node) => numberField(node.status, 'committedHeight'))
    .filter((height): height is number => height !== null);
  const commitTimes = answered
    .map((node) => numberField(node.status, 'lastCommitTime'))
    .filter((time): time is number => time !== null);
  const online = new Set<string>();
  for (const node of answered) {
    online.add(node.name);
    for (const peer of listField(node.status, 'peersConnected')) online.add(peer);
  }
  const onlineValidators = validators.filter((validator) => online.has(validator.name));
  // By name (node-2 before node-10), not by the set's address order.
  const validatorsOnline = onlineValidators
    .map((validator) => validator.name)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return {
    chainId: target.chainId,
    validatorSet: source,
    validators,
    height: heights.length === 0 ? null : Math.max(...heights),
    lastCommitTime: commitTimes.length === 0 ? null : Math.max(...commitTimes),
    validatorsOnline,
    onlinePower: onlineValidators.reduce((sum, validator) => sum + validator.power, 0),
    totalPower: set.totalPower,
    reachable: answered.length,
    nodes,
  };
}

function ago(time: number | null, now: number): string {
  if (time === null) return '-';
  const seconds = Math.max(0, (now - time) / 1000);
  return `${new Date(time).toISOString()} (${seconds.toFixed(1)} s ago)`;
}

function table(rows: readonly string[][]): string[] {
  const widths = (rows[0] ?? []).map((_, column) =>
    Math.max(...rows.map((row) => (row[column] ?? '').length)),
  );
  return rows.map(
    (row) =>
      `  ${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}`,
  );
}

/** The human-readable report. */
export function formatClusterStatus(status: ClusterStatus, now: number = Date.now()): string[] {
  const total = status.nodes.length;
  const source = status.validatorSet;
  const lines = [
    `chain ${status.chainId}: height ${status.height ?? '-'}, last commit ${ago(status.lastCommitTime, now)}`,
    `validators online: ${status.validatorsOnline.length}/${status.validators.length} (voting power ${status.onlinePower}/${status.totalPower})` +
      (status.validatorsOnline.length > 0 ? ` — ${status.validatorsOnline.join(', ')}` : ''),
    source.from === 'chain'
      ? `validator set: of height ${source.height}, from ${source.node}'s validator updates`
      : `validator set: the genesis set (${source.reason})`,
    `nodes answering: ${status.reachable}/${total}`,
    '',
  ];
  const rows = [
    ['node', 'role', 'stoq', 'height', 'round', 'step', 'peers', 'mempool', 'last commit', 'view'],
  ];
  for (const node of status.nodes) {
    const role = node.role === 'validator' ? `validator (${node.power})` : 'follower';
    if (!node.reachable || node.status === null) {
      rows.push([
        node.name,
        role,
        node.stoq,
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        `unreachable: ${node.error}`,
      ]);
      continue;
    }
    const s = node.status;
    const peers = listField(s, 'peersConnected');
    const peerHeights = s.peerHeights;
    const view =
      peers.length === 0
        ? 'no peers connected'
        : peers
            .map((peer) => {
              const height =
                typeof peerHeights === 'object' &&
                peerHeights !== null &&
                !Array.isArray(peerHeights)
                  ? (peerHeights as Record<string, unknown>)[peer]
                  : undefined;
              return `${peer}@${typeof height === 'number' ? height : '?'}`;
            })
            .join(' ');
    const flags = [
      s.halted ? `HALTED: ${String(s.halted)}` : '',
      s.syncing === true ? 'syncing' : '',
    ]
      .filter(Boolean)
      .join(' ');
    rows.push([
      node.name,
      role,
      node.stoq,
      String(s.committedHeight ?? '-'),
      String(s.round ?? '-'),
      String(s.step ?? '-'),
      String(peers.length),
      String(s.mempoolSize ?? '-'),
      typeof s.lastCommitTime === 'number'
        ? `${((now - s.lastCommitTime) / 1000).toFixed(1)} s ago`
        : '-',
      flags ? `${flags} ${view}` : view,
    ]);
  }
  // Cells and lines hold what nodes answered (step, halt reason, peer names, errors): escaped
  // before the table measures them, so a node cannot move the cursor or rewrite lines.
  return [...lines.map(visible), ...table(rows.map((row) => row.map(visible)))];
}

/** The `--json` report: plain JSON (bytes in a status record as hex). */
export function clusterStatusJson(status: ClusterStatus): unknown {
  return JSON.parse(
    JSON.stringify(status, (_key, value: unknown) =>
      value instanceof Uint8Array ? Buffer.from(value).toString('hex') : value,
    ),
  );
}
