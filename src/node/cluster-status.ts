import { StoqError } from '../stoq/index.js';
import type { NodeStatusRecord } from '../consensus/net/index.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { ClusterTarget, OperatorSession } from './operator.js';

/**
 * `hypermesh status`: every node's own status record (node API `status`), gathered over STOQ,
 * and the cluster picture they add up to.
 */
export interface NodeView {
  readonly name: string;
  readonly id: string;
  readonly stoq: string;
  readonly reachable: boolean;
  /** Why the node could not be asked (a STOQ code and message), when unreachable. */
  readonly error: string | null;
  /** Round trip of the status call, ms. */
  readonly rttMs: number | null;
  readonly status: NodeStatusRecord | null;
}

export interface ClusterStatus {
  readonly chainId: string;
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

function numberField(status: NodeStatusRecord | null, key: string): number | null {
  const value = status?.[key];
  return typeof value === 'number' ? value : null;
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

export async function collectClusterStatus(
  target: ClusterTarget,
  genesis: GenesisDocument,
  session: OperatorSession,
  timeoutMs: number,
): Promise<ClusterStatus> {
  const nodes = await Promise.all(
    target.nodes.map(async (node): Promise<NodeView> => {
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
  const power = new Map(genesis.validators.map((validator) => [validator.name, validator.power]));
  const validatorsOnline = genesis.validators
    .map((validator) => validator.name)
    .filter((name) => online.has(name));
  return {
    chainId: target.chainId,
    height: heights.length === 0 ? null : Math.max(...heights),
    lastCommitTime: commitTimes.length === 0 ? null : Math.max(...commitTimes),
    validatorsOnline,
    onlinePower: validatorsOnline.reduce((sum, name) => sum + (power.get(name) ?? 0), 0),
    totalPower: genesis.validators.reduce((sum, validator) => sum + validator.power, 0),
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
  const lines = [
    `chain ${status.chainId}: height ${status.height ?? '-'}, last commit ${ago(status.lastCommitTime, now)}`,
    `validators online: ${status.validatorsOnline.length}/${total} (voting power ${status.onlinePower}/${status.totalPower})` +
      (status.validatorsOnline.length > 0 ? ` — ${status.validatorsOnline.join(', ')}` : ''),
    `nodes answering: ${status.reachable}/${total}`,
    '',
  ];
  const rows = [
    ['node', 'stoq', 'height', 'round', 'step', 'peers', 'mempool', 'last commit', 'view'],
  ];
  for (const node of status.nodes) {
    if (!node.reachable || node.status === null) {
      rows.push([node.name, node.stoq, '-', '-', '-', '-', '-', '-', `unreachable: ${node.error}`]);
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
  return [...lines, ...table(rows)];
}

/** The `--json` report: plain JSON (bytes in a status record as hex). */
export function clusterStatusJson(status: ClusterStatus): unknown {
  return JSON.parse(
    JSON.stringify(status, (_key, value: unknown) =>
      value instanceof Uint8Array ? Buffer.from(value).toString('hex') : value,
    ),
  );
}
