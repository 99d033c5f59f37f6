import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { readClusterLayout } from '../../src/node/cluster-layout.js';
import type { ClusterLayout } from '../../src/node/cluster-init.js';
import {
  DEFAULT_DNS_PORT,
  DEFAULT_METRICS_PORT,
  DEFAULT_STOQ_PORT,
} from '../../src/node/config.js';
import { SELF_SERVICES } from '../../src/node/discovery-self.js';
import { findFreePorts } from '../../src/node/free-ports.js';
import { spawnValidator, type ValidatorProcess } from '../../src/node/node-process.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { waitForCondition } from '../helpers/wait.js';

const run = promisify(execFile);

/**
 * Issue 5 §2 end to end on IPv6: three `hypermesh node start` processes (the built bin, as the
 * other multi-process tests) from `cluster init --host ::1` on ports the OS picks (none of them
 * the defaults): the nodes commit; each registers itself, so the cluster's DNS answers
 * `_hypermesh-node._stoq.hypermesh.` SRV with AAAA records for `::1`; `hypermesh service resolve`
 * returns `::1` addresses (proven); `hypermesh status --cluster` reaches every node, dialling the
 * addresses discovery gives, with the cluster directory's addresses as the bootstrap.
 */

const HOST = '::1';
const DEADLINE_MS = 90_000;

let root: string;
let layout: ClusterLayout;
const nodes: ValidatorProcess[] = [];
/** Emits `commit` for every block any node logs as committed. */
const commits = new EventEmitter();
commits.setMaxListeners(0);

const digPresent = await run('dig', ['-v']).then(
  () => true,
  () => false,
);
const skip = !digPresent && process.env.CI !== 'true' ? 'dig is not installed' : false;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ipv6-'));
});
after(async () => {
  await Promise.all(nodes.map((node) => node.stop(5_000)));
  await rm(root, { recursive: true, force: true });
});

async function dig(server: { host: string; port: number }, ...args: string[]): Promise<string> {
  const { stdout } = await run('dig', [
    `@${server.host}`,
    '-p',
    String(server.port),
    '+tries=1',
    '+time=5',
    ...args,
  ]);
  return stdout;
}

async function cli(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  return runCli([...args, '--cluster', layout.dir]);
}

describe('a cluster on IPv6 loopback with non-default ports', { skip }, () => {
  it('commits, registers its nodes, and is found through discovery and DNS', async () => {
    const dir = path.join(root, 'cluster');
    const init = await runCli([...clusterInitArgs(dir, 3), '--host', HOST]);
    assert.equal(init.code, 0, init.err);
    layout = await readClusterLayout(dir);
    for (const node of layout.nodes) {
      assert.equal(node.stoq.host, HOST);
      assert.notEqual(node.stoq.port, DEFAULT_STOQ_PORT);
      assert.notEqual(node.metrics.port, DEFAULT_METRICS_PORT);
      assert.ok(node.dns !== null, 'cluster init gives every node a DNS server');
      assert.notEqual(node.dns.port, DEFAULT_DNS_PORT);
    }

    for (const node of layout.nodes) {
      const started = spawnValidator(node.name, node.configFile, {
        logFile: path.join(root, `${node.name}.log`),
      });
      started.onLog((entry) => {
        if (entry.msg === 'block committed') commits.emit('commit');
      });
      nodes.push(started);
    }
    await Promise.all(
      nodes.map((node) =>
        node.ready.catch(async (error: unknown) => {
          const log = await readFile(path.join(root, `${node.name}.log`), 'utf8').catch(() => '');
          throw new Error(`${(error as Error).message}\n${log.split('\n').slice(-15).join('\n')}`);
        }),
      ),
    );
    await Promise.all(nodes.map((node) => node.waitForHeight(3, DEADLINE_MS)));

    // DNS: every node registered itself, so the SRV set lists all three, with AAAA ::1.
    const dnsServer = layout.nodes[0]!.dns!;
    const srvName = `_${SELF_SERVICES.node}._stoq.hypermesh.`;
    let srv: string[] = [];
    let digError = '';
    await waitForCondition(
      commits,
      'commit',
      async () => {
        // One failed query (a timeout on a busy machine) is retried at the next commit.
        const answer = await dig(dnsServer, srvName, 'SRV', '+short').catch((error: unknown) => {
          digError = (error as Error).message;
          return null;
        });
        if (answer === null) return false;
        srv = answer.trim().split('\n').filter(Boolean);
        return srv.length === layout.nodes.length;
      },
      () =>
        `${srvName} SRV to list every node (has ${JSON.stringify(srv)}${digError === '' ? '' : `; last dig error: ${digError}`})`,
      DEADLINE_MS,
    );
    const ports = srv.map((line) => Number(line.split(/\s+/)[2])).sort((a, b) => a - b);
    assert.deepEqual(
      ports,
      layout.nodes.map((node) => node.stoq.port).sort((a, b) => a - b),
    );
    for (const node of layout.nodes) {
      const target = `${node.name}._${SELF_SERVICES.node}.hypermesh.`;
      assert.equal((await dig(dnsServer, target, 'AAAA', '+short')).trim(), HOST);
    }
    // The SRV answer carries the targets' AAAA records in its additional section.
    const full = await dig(dnsServer, srvName, 'SRV');
    assert.match(full, /IN\s+AAAA\s+::1/);

    // The proven catalog over STOQ: every node at ::1 on its own port.
    const resolved = await cli(['service', 'resolve', SELF_SERVICES.node, '--json']);
    assert.equal(resolved.code, 0, resolved.err);
    const answer = JSON.parse(resolved.out) as {
      instances: { instance: string; addresses: string[]; ports: { port: number }[] }[];
    };
    assert.deepEqual(
      answer.instances.map((found) => [found.instance, found.addresses, found.ports[0]?.port]),
      layout.nodes.map((node) => [node.name, [HOST], node.stoq.port]),
    );

    // The operator tools: every node reached (through discovery, bootstrapped from the
    // cluster directory's addresses).
    const status = await cli(['status', '--json', '--timeout-ms', '5000']);
    assert.equal(status.code, 0, status.err);
    const view = JSON.parse(status.out) as {
      reachable: number;
      nodes: { name: string; stoq: string; reachable: boolean }[];
    };
    assert.equal(view.reachable, layout.nodes.length, status.out);
    for (const node of view.nodes) assert.match(node.stoq, /^\[::1\]:\d+$/);

    // The cluster directory's addresses are only the bootstrap: with node-2's and node-3's
    // configured ports pointing nowhere (the running processes keep theirs), the operator still
    // reaches them where the catalog, asked of node-1, says they are.
    const [nowhere] = await findFreePorts(HOST, 1);
    for (const node of layout.nodes.slice(1)) {
      const config = JSON.parse(await readFile(node.configFile, 'utf8')) as {
        stoq: { port: number };
      };
      config.stoq.port = nowhere!;
      await writeFile(node.configFile, `${JSON.stringify(config, null, 2)}\n`);
    }
    const moved = await cli(['status', '--json', '--timeout-ms', '5000']);
    assert.equal(moved.code, 0, moved.err);
    const movedView = JSON.parse(moved.out) as typeof view;
    assert.deepEqual(
      movedView.nodes.map((node) => [node.stoq, node.reachable]),
      layout.nodes.map((node, index) => [
        `[${HOST}]:${index === 0 ? node.stoq.port : nowhere}`,
        true,
      ]),
    );
  });
});
