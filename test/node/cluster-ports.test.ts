import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it, mock } from 'node:test';
import { CliError } from '../../src/node/cli-error.js';
import { initCluster, MAX_VALIDATORS } from '../../src/node/cluster-init.js';
import { checkClusterPorts, clusterPortRanges } from '../../src/node/cluster-ports.js';
import { ensureDevCluster } from '../../src/node/dev.js';
import { findFreePorts, pickRange } from '../../src/node/free-ports.js';
import { runCli } from '../helpers/cli.js';

/**
 * The port ranges of a `cluster init` cluster (src/node/cluster-ports.ts): the default ranges of
 * every service stay apart up to the largest cluster, and a base port whose range passes 65535 or
 * shares a port with another range is refused before anything is written — for every service,
 * CT and ACME included.
 */
let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-cluster-ports-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** What `root` holds besides `keep`: a refused init leaves no directory and no temporary. */
async function leftovers(keep: readonly string[] = []): Promise<string[]> {
  return (await readdir(root)).filter((entry) => !keep.includes(entry));
}

describe('cluster ports', () => {
  it(`the default ranges of every service are apart for ${MAX_VALIDATORS} validators`, () => {
    const ranges = clusterPortRanges({ validators: MAX_VALIDATORS });
    assert.deepEqual(
      ranges.map((range) => range.service),
      ['STOQ', 'metrics', 'DNS', 'DoQ', 'CT', 'ACME'],
    );
    const ports = new Set<number>();
    for (const { service, base } of ranges) {
      for (let k = 0; k < MAX_VALIDATORS; k += 1) {
        assert.ok(base + k <= 65_535, `${service} port of node-${k + 1}`);
        assert.ok(!ports.has(base + k), `${service} port ${base + k} is taken twice`);
        ports.add(base + k);
      }
    }
    for (let validators = 1; validators <= MAX_VALIDATORS; validators += 1) {
      checkClusterPorts({ validators });
    }
  });

  it('cluster init and dev with default ports reach the directory check at 22 and 100 validators', async () => {
    const occupied = path.join(root, 'occupied');
    await mkdir(occupied);
    await writeFile(path.join(occupied, 'notes.txt'), 'keep me\n');
    for (const validators of [22, MAX_VALIDATORS]) {
      const result = await runCli([
        'cluster',
        'init',
        '--validators',
        String(validators),
        '--out',
        occupied,
      ]);
      assert.equal(result.code, 2, result.out);
      assert.match(result.err, /is not empty; choose another --out/);
      await assert.rejects(
        ensureDevCluster({
          dir: occupied,
          nodes: validators,
          host: '127.0.0.1',
          out: () => undefined,
          interrupted: new Promise(() => undefined),
        }),
        /is not empty; choose another --out/,
      );
    }
    // dev hands its base-port flags to cluster init: the refusal is init's, before the directory.
    const devOptions = {
      dir: occupied,
      nodes: 4,
      host: '127.0.0.1',
      out: () => undefined,
      interrupted: new Promise<void>(() => undefined),
    };
    await assert.rejects(
      ensureDevCluster({ ...devOptions, acmeBasePort: 9466 }),
      /ACME ports 9466\.\.9469 overlap metrics ports 9464\.\.9467; choose another --acme-base-port/,
    );
    await assert.rejects(
      ensureDevCluster({ ...devOptions, ctBasePort: 8854 }),
      /CT ports 8854\.\.8857 overlap DNS ports 8853\.\.8856/,
    );
    await assert.rejects(
      ensureDevCluster({ ...devOptions, dnsBasePort: 9290, doqBasePort: 1 }),
      /DNS ports 9290\.\.9293 overlap STOQ ports 9292\.\.9295/,
    );
    await assert.rejects(
      ensureDevCluster({ ...devOptions, doqBasePort: 65_533 }),
      /--doq-base-port 65533 leaves no room/,
    );
    await rm(occupied, { recursive: true });
  });

  it('refuses a CT or ACME range past 65535 or overlapping another range, writing nothing', async () => {
    const out = path.join(root, 'refused');
    const cases: [string[], RegExp][] = [
      [
        ['--ct-base-port', '65534'],
        /--ct-base-port 65534 leaves no room for 4 ports \(the last must be ≤ 65535\)/,
      ],
      [
        ['--ct-base-port', '9464'],
        /CT ports 9464\.\.9467 overlap metrics ports 9464\.\.9467; choose another --ct-base-port/,
      ],
      [
        ['--ct-base-port', '9000', '--base-port', '9002'],
        /STOQ ports 9002\.\.9005 overlap CT ports 9000\.\.9003; choose another --base-port or --ct-base-port/,
      ],
      [['--acme-base-port', '65533'], /--acme-base-port 65533 leaves no room for 4 ports/],
      [['--acme-base-port', '9855'], /ACME ports 9855\.\.9858 overlap DoQ ports 9853\.\.9856/],
      [['--acme-base-port', '6960'], /ACME ports 6960\.\.6963 overlap CT ports 6962\.\.6965/],
      [['--dns-base-port', '8445'], /DNS ports 8445\.\.8448 overlap ACME ports 8443\.\.8446/],
    ];
    for (const [flags, pattern] of cases) {
      const result = await runCli(['cluster', 'init', '--validators', '4', '--out', out, ...flags]);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.out}`);
      assert.match(result.err, pattern, flags.join(' '));
      assert.deepEqual(await leftovers(), [], `${flags.join(' ')}: nothing is written`);
      await assert.rejects(
        initCluster({
          out,
          validators: 4,
          ...(flags[0] === '--ct-base-port'
            ? { ctBasePort: Number(flags[1]) }
            : flags[0] === '--acme-base-port'
              ? { acmeBasePort: Number(flags[1]) }
              : { dnsBasePort: Number(flags[1]) }),
          ...(flags[2] === '--base-port' ? { basePort: Number(flags[3]) } : {}),
        }),
        (error: unknown) => error instanceof CliError && pattern.test(error.message),
      );
      assert.deepEqual(await leftovers(), [], `${flags.join(' ')}: nothing is written`);
    }
  });

  it('a service that does not run has no range to overlap', () => {
    checkClusterPorts({ validators: 4, ctBasePort: 9464, ca: false });
    checkClusterPorts({ validators: 4, acmeBasePort: 9464, acme: false });
    checkClusterPorts({ validators: 4, doqBasePort: 9464, dns: false });
    assert.throws(
      () => checkClusterPorts({ validators: 4, ctBasePort: 65_533, ca: false }),
      /--ct-base-port 65533 leaves no room for 4 ports/,
    );
  });

  const pickable = (() => {
    try {
      return pickRange(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'));
    } catch {
      return null;
    }
  })();

  afterEach(() => mock.restoreAll());

  it(
    'a free port is never one of a fixed range: --base-port 0 beside --dns-base-port',
    { skip: pickable === null && 'the OS picks free ports here (no room below its range)' },
    async () => {
      const range = pickable!;
      // A fixed DNS base inside the range free ports are drawn from, free right now.
      const [dnsBase] = await findFreePorts('127.0.0.1', 1);
      // The first port drawn (STOQ's) is that DNS port; later draws are random again.
      const random = Math.random.bind(Math);
      let pinned = false;
      mock.method(Math, 'random', () => {
        if (!pinned && (new Error().stack ?? '').includes('findFreePorts')) {
          pinned = true;
          return (dnsBase! - range.low + 0.5) / (range.high - range.low + 1);
        }
        return random();
      });
      const out = path.join(root, 'free-beside-fixed');
      const layout = await initCluster({
        out,
        validators: 1,
        basePort: 0,
        dnsBasePort: dnsBase!,
        ca: false,
      });
      assert.ok(pinned, 'the draw was pinned');
      const config = JSON.parse(await readFile(layout.nodes[0]!.configFile, 'utf8')) as {
        stoq: { port: number };
        dns: { udp: { port: number }[]; doq: { port: number }[] };
      };
      assert.equal(config.dns.udp[0]!.port, dnsBase);
      assert.notEqual(config.stoq.port, dnsBase, 'STOQ (QUIC, UDP) and DNS (UDP) share no port');
      assert.notEqual(config.dns.doq[0]!.port, dnsBase);
      assert.notEqual(config.dns.doq[0]!.port, config.stoq.port);
    },
  );

  it('dev offers every base-port flag of cluster init', async () => {
    const help = await runCli(['dev', '--help']);
    assert.equal(help.code, 0, help.err);
    for (const flag of [
      '--base-port',
      '--metrics-base-port',
      '--dns-base-port',
      '--doq-base-port',
      '--ct-base-port',
      '--acme-base-port',
    ]) {
      assert.match(help.out, new RegExp(`\\n {2}${flag} P {2,}\\S`), flag);
    }
    assert.match(help.out, /--acme-base-port P +first ACME server HTTPS port \(default 8443;/);
  });
});
