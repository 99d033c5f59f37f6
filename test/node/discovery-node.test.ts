import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { WatchEvent } from '../../src/faces/discovery-rpc.js';
import { initCluster } from '../../src/node/cluster-init.js';
import { SELF_SERVICES } from '../../src/node/discovery-self.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { loadClusterTarget } from '../../src/node/operator.js';
import { openServiceSession, type ServiceSession } from '../../src/node/service-tools.js';
import {
  CommittedRootError,
  CommittedRootErrorCode,
  committedRootsOf,
} from '../../src/node/verified-root.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { readFile } from 'node:fs/promises';
import { parseGenesisJson } from '../../src/consensus/genesis.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

const run = promisify(execFile);

/**
 * Service discovery in a running node, end to end: a one-validator cluster from `cluster init`
 * (which installs the catalog and publishes it in the cluster zone), the node's own services
 * registered after its first commit, a service registered with `hypermesh service register`
 * whose HTTP check points at a server this test runs, found by the RPC face (proofs checked)
 * and by `dig SRV` against the node's DNS server; the server stopped, the node's check turns it
 * critical, a renewal is committed, and it leaves DNS — `watch` sees it arrive and change.
 */
let root: string;
let node: ValidatorNode | null = null;
let session: ServiceSession | null = null;
let server: http.Server | null = null;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-discovery-node-'));
});
after(async () => {
  await session?.close();
  await node?.stop();
  if (server?.listening === true) await new Promise((resolve) => server!.close(resolve));
  await rm(root, { recursive: true, force: true });
});

const digPresent = await run('dig', ['-v']).then(
  () => true,
  () => false,
);
const skip = !digPresent && process.env.CI !== 'true' ? 'dig is not installed' : false;

describe('service discovery in a running node', { skip }, () => {
  it('registers, checks, resolves, publishes in DNS and streams changes', async () => {
    const layout = await initCluster({
      out: path.join(root, 'cluster'),
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
    });
    const config = await loadValidatorNodeConfig(layout.nodes[0]!.configFile, {});
    node = await startValidatorNode(
      config,
      createLogger({ node: 'node-1' }, () => undefined, 'error'),
    );
    const running = node;
    const dnsAddress = running.dns?.udp[0];
    assert.ok(dnsAddress !== undefined, 'cluster init gives the node a DNS port');
    const dig = async (...args: string[]): Promise<string> =>
      (
        await run('dig', [
          `@${dnsAddress.host}`,
          '-p',
          String(dnsAddress.port),
          '+tries=1',
          '+time=5',
          ...args,
        ])
      ).stdout;

    const target = await loadClusterTarget(layout.dir);
    session = await openServiceSession(target);
    const client = session.discovery('node-1');

    // The node registers its own services after its first commit (signed with its key).
    const commits = running.driver;
    await waitForCondition(
      commits,
      'commit',
      async () => {
        const resolved = await client.resolve(SELF_SERVICES.node);
        return resolved.instances.some((found) => found.instance === 'node-1');
      },
      'the node to register hypermesh-node/node-1',
      60_000,
    );
    // So are its ACME server (https), its CT log's HTTP API and the OCSP responder on it (http),
    // with the ports they are bound to.
    const portOf = (url: string | null): number => Number(new URL(url ?? 'http://x:0').port);
    const expected: Record<string, { protocol: string; port: number }[]> = {
      [SELF_SERVICES.acme]: [{ protocol: 'https', port: portOf(running.acme) }],
      [SELF_SERVICES.ct]: [{ protocol: 'http', port: portOf(running.ct) }],
      [SELF_SERVICES.ocsp]: [{ protocol: 'http', port: portOf(running.ct) }],
    };
    assert.ok(running.acme !== null && running.ct !== null, 'cluster init serves ACME and CT');
    await waitForCondition(
      commits,
      'commit',
      async () => {
        for (const service of Object.keys(expected)) {
          const found = (await client.resolve(service)).instances;
          if (!found.some((instance) => instance.instance === 'node-1')) return false;
        }
        return true;
      },
      'the node to register hypermesh-acme, hypermesh-ct and hypermesh-ocsp',
      60_000,
    );
    for (const [service, ports] of Object.entries(expected)) {
      const found = (await client.resolve(service)).instances[0];
      assert.deepEqual(found?.ports, ports, service);
      assert.deepEqual(found?.addresses, ['127.0.0.1'], service);
    }
    // Its checks of them (stoq-ping to itself, tcp to its DNS and ACME ports, GET /metrics,
    // GET /ct/v1/get-roots, tcp to the OCSP port) pass.
    const scrape = async () => (await fetch(running.metricsUrl!)).text();
    const counted = (text: string, result: string) =>
      Number(
        new RegExp(
          `^hypermesh_discovery_health_checks_total\\{result="${result}"\\} (\\d+)$`,
          'm',
        ).exec(text)?.[1] ?? 0,
      );
    await waitForCondition(
      commits,
      'commit',
      async () => counted(await scrape(), 'ok') >= 6,
      'the first checks of the node services',
      30_000,
    );
    assert.equal(counted(await scrape(), 'failed'), 0);
    const self = await client.resolve(SELF_SERVICES.node);
    assert.deepEqual(self.instances[0]?.ports, [{ protocol: 'stoq', port: running.stoq.port }]);
    assert.equal(self.instances[0]?.identity, running.uri);

    // A watch stream opened before the service exists: its first message is the empty set.
    const events: WatchEvent[] = [];
    const arrivals = new EventEmitter();
    const watching = new AbortController();
    const streamed = (async () => {
      try {
        for await (const event of client.watch('web', { signal: watching.signal })) {
          events.push(event);
          arrivals.emit('event');
        }
      } catch (error) {
        if (!watching.signal.aborted) throw error;
      }
    })();
    await waitForCondition(
      arrivals,
      'event',
      () => events.length >= 1,
      'the first watch message',
      20_000,
    );
    assert.deepEqual(events[0]?.changes, []);

    // The service behind it: an HTTP server on loopback answering its health path.
    server = http.createServer((request, response) => {
      response.statusCode = request.url === '/health' ? 200 : 404;
      response.end();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const httpPort = (server.address() as AddressInfo).port;

    const registered = await runCli([
      'service',
      'register',
      'web',
      'w1',
      '--address',
      '127.0.0.1',
      '--port',
      'stoq:7000',
      '--port',
      `http:${httpPort}`,
      '--check',
      'http',
      '--check-path',
      '/health',
      '--interval',
      '1000',
      '--timeout',
      '500',
      '--rise',
      '1',
      '--fall',
      '1',
      '--ttl',
      '60',
      '--cluster',
      layout.dir,
    ]);
    assert.equal(registered.code, 0, registered.out + registered.err);
    assert.match(registered.out, /committed at height \d+, code 0 \(applied\)/);

    // By RPC, with every proof checked.
    const resolved = await client.resolve('web');
    assert.equal(resolved.instances.length, 1);
    const web = resolved.instances[0]!;
    assert.equal(web.instance, 'w1');
    assert.equal(web.status, 'passing');
    assert.deepEqual(web.addresses, ['127.0.0.1']);

    // By DNS: SRV at _web._stoq and _web._http, the target's A record.
    await waitForCondition(arrivals, 'event', () => events.length >= 2, 'the added event', 20_000);
    assert.deepEqual(
      events[1]?.changes.map((change) => change.type),
      ['added'],
    );
    assert.equal(
      (await dig('_web._stoq.hypermesh.', 'SRV', '+short')).trim(),
      '0 0 7000 w1._web.hypermesh.',
    );
    assert.equal(
      (await dig('_web._http.hypermesh.', 'SRV', '+short')).trim(),
      `0 0 ${httpPort} w1._web.hypermesh.`,
    );
    assert.equal((await dig('w1._web.hypermesh.', 'A', '+short')).trim(), '127.0.0.1');
    assert.match(
      (await dig(`_${SELF_SERVICES.node}._stoq.hypermesh.`, 'SRV', '+short')).trim(),
      new RegExp(`^0 0 ${running.stoq.port} node-1\\._${SELF_SERVICES.node}\\.hypermesh\\.$`),
    );
    assert.equal(
      (await dig(`_${SELF_SERVICES.acme}._https.hypermesh.`, 'SRV', '+short')).trim(),
      `0 0 ${portOf(running.acme)} node-1._${SELF_SERVICES.acme}.hypermesh.`,
    );
    assert.equal(
      (await dig(`_${SELF_SERVICES.ct}._http.hypermesh.`, 'SRV', '+short')).trim(),
      `0 0 ${portOf(running.ct)} node-1._${SELF_SERVICES.ct}.hypermesh.`,
    );

    // The server goes away: the check fails, the node commits a renewal saying critical, and
    // the instance leaves DNS and healthy resolution.
    await new Promise((resolve) => server!.close(resolve));
    await waitForCondition(
      arrivals,
      'event',
      () =>
        events.some((event) => event.changes.some((change) => change.type === 'status-changed')),
      'the status change',
      30_000,
    );
    const changed = events
      .flatMap((event) => event.changes)
      .find((c) => c.type === 'status-changed');
    assert.deepEqual(changed, {
      type: 'status-changed',
      instance: 'w1',
      from: 'passing',
      to: 'critical',
    });
    assert.match(await dig('_web._stoq.hypermesh.', 'SRV'), /status: NXDOMAIN/);
    assert.equal((await client.resolve('web')).instances.length, 0);
    const all = await client.resolve('web', ['passing', 'warning', 'critical']);
    assert.equal(all.instances[0]?.status, 'critical');

    // Metrics: one flap, the catalog's counts.
    const metrics = await scrape();
    assert.match(metrics, /^hypermesh_discovery_health_flaps_total [1-9]/m);
    assert.match(metrics, /^hypermesh_discovery_instances\{state="registered"\} 7$/m);
    assert.match(metrics, /^hypermesh_discovery_instances\{state="healthy"\} 6$/m);

    // The CLI reads the same, and the stream ends cleanly when the client leaves.
    const listed = await runCli(['service', 'list', '--cluster', layout.dir, '--json']);
    assert.equal(listed.code, 0, listed.err);
    const services = (JSON.parse(listed.out) as { services: { service: string }[] }).services;
    assert.deepEqual(
      services.map((entry) => entry.service),
      [
        SELF_SERVICES.acme,
        SELF_SERVICES.ct,
        SELF_SERVICES.dns,
        SELF_SERVICES.metrics,
        SELF_SERVICES.node,
        SELF_SERVICES.ocsp,
        'web',
      ].sort(),
    );
    watching.abort();
    await withDeadline(streamed, 10_000, 'the watch loop to end');

    const cli = (...args: string[]) => runCli(['service', ...args, '--cluster', layout.dir]);
    const critical = await cli('resolve', 'web', '--all', '--json');
    assert.equal(critical.code, 0, critical.err);
    const shown = JSON.parse(critical.out) as { instances: { instance: string; status: string }[] };
    assert.deepEqual(
      shown.instances.map((i) => [i.instance, i.status]),
      [['w1', 'critical']],
    );
    assert.equal((await cli('resolve', 'web')).code, 1, 'no healthy instance: exit code 1');
    // The CLI took that answer only after block H's header and commit by the validator quorum
    // vouched for its state root (verified-root.ts); the same check refuses any other root.
    const answered = JSON.parse(critical.out) as { height: number; stateRoot: string };
    const roots = committedRootsOf(session.api('node-1'));
    await roots.check(answered.height, Buffer.from(answered.stateRoot, 'hex'));
    const other = Buffer.from(answered.stateRoot, 'hex');
    other[0] = other[0]! ^ 1;
    await assert.rejects(
      roots.check(answered.height, other),
      (error: unknown) =>
        error instanceof CommittedRootError &&
        error.code === CommittedRootErrorCode.ROOT_MISMATCH &&
        error.message.startsWith(
          `state root at height ${answered.height} is not committed by the validator quorum: `,
        ),
    );
    // A wallet read goes through the same check (ProvenReader / readProvenBalance).
    const balance = await runCli([
      'wallet',
      'balance',
      '00'.repeat(32),
      '--cluster',
      layout.dir,
      '--json',
    ]);
    assert.equal(balance.code, 0, balance.err);
    assert.equal((JSON.parse(balance.out) as { balance: string }).balance, '0');
    // Signed with node-1's key while node-1 renews with it: the CLI waits its turn.
    const removed = await cli('deregister', 'web', 'w1');
    assert.equal(removed.code, 0, removed.out + removed.err);
    const watched = await cli('watch', 'web', '--count', '1');
    assert.equal(watched.code, 0, watched.err);
    assert.deepEqual(
      (JSON.parse(watched.out) as { changes: unknown[] }).changes,
      [],
      'the live set of web is empty',
    );
  });

  it('is written into the genesis by cluster init, unless --no-discovery', async () => {
    const genesisOf = async (dir: string) =>
      parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
    const withIt = path.join(root, 'with');
    const made = await runCli(clusterInitArgs(withIt, 1));
    assert.equal(made.code, 0, made.err);
    assert.deepEqual((await genesisOf(withIt)).app?.['discovery'], { dnsZone: 'hypermesh.' });
    const without = path.join(root, 'without');
    const plain = await runCli([...clusterInitArgs(without, 1), '--no-discovery']);
    assert.equal(plain.code, 0, plain.err);
    assert.equal((await genesisOf(without)).app?.['discovery'], undefined);
  });
});
