import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { genesisToJson, parseGenesisJson } from '../../src/consensus/genesis.js';
import { toHex } from '../../src/crypto/bytes.js';
import {
  DNS_ZONES_MODULE_NAME,
  dnsNameRegister,
  dnsRecordsSet,
} from '../../src/trustchain/dns-zones/index.js';
import { initCluster } from '../../src/node/cluster-init.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { loadClusterTarget, openOperatorSession } from '../../src/node/operator.js';
import { submitTransaction } from '../../src/node/tx-submit.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { readWalletKey } from '../../src/node/wallet.js';
import { waitForCondition } from '../helpers/wait.js';

const run = promisify(execFile);

/**
 * A node serving DNS from consensus state end to end: a genesis with an `app.dns` zone, a node
 * configured with DNS addresses, a name registered and its A record set by signed transactions,
 * and `dig` (BIND's client, not ours) reading the answer from the node's UDP and TCP servers.
 */
let root: string;
let node: ValidatorNode | null = null;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-dns-node-'));
});
after(async () => {
  await node?.stop();
  await rm(root, { recursive: true, force: true });
});

const digPresent = await run('dig', ['-v']).then(
  () => true,
  () => false,
);
const skip = !digPresent && process.env.CI !== 'true' ? 'dig is not installed' : false;

describe('a node serving DNS from consensus state', { skip }, () => {
  it('answers what signed transactions put in the zone, over UDP and TCP', async () => {
    const layout = await initCluster({
      out: path.join(root, 'cluster'),
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
    });
    assert.ok(layout.ledger !== null);
    const owner = await readWalletKey(layout.ledger.treasuryKeyFile);
    const genesisFile = path.join(layout.dir, 'genesis.json');
    const genesis = parseGenesisJson(await readFile(genesisFile, 'utf8'));
    await writeFile(
      genesisFile,
      genesisToJson({
        ...genesis,
        app: {
          ...genesis.app,
          dns: {
            zones: [
              {
                apex: 'hypermesh.',
                admins: [toHex(owner.publicKey)],
                policy: 'open',
                soa: {
                  ttl: 3600,
                  mname: 'ns1.hypermesh.',
                  rname: 'hostmaster.hypermesh.',
                  refresh: 3600,
                  retry: 600,
                  expire: 86400,
                  minimum: 60,
                },
                nameservers: { ttl: 3600, hosts: ['ns1.hypermesh.'] },
              },
            ],
          },
        },
      }),
    );
    const configFile = layout.nodes[0]?.configFile as string;
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    const listen = [{ host: '127.0.0.1', port: 0 }];
    await writeFile(configFile, JSON.stringify({ ...config, dns: { udp: listen, tcp: listen } }));

    const loaded = await loadValidatorNodeConfig(configFile, {});
    node = await startValidatorNode(
      loaded,
      createLogger({ node: 'node-1' }, () => undefined, 'error'),
    );
    const dns = node.dns;
    assert.ok(dns !== null && dns.udp.length === 1 && dns.tcp.length === 1);
    const udp = dns.udp[0]!;
    const tcp = dns.tcp[0]!;
    assert.equal(udp.port, tcp.port, 'one port for UDP and TCP, so a truncated answer retries');

    const dig = async (...args: string[]): Promise<string> =>
      (await run('dig', [`@${udp.host}`, '-p', String(udp.port), '+tries=1', '+time=5', ...args]))
        .stdout;

    // The genesis zones are written by block 1.
    const running = node;
    await waitForCondition(
      running.driver,
      'commit',
      () => running.driver.status().committedHeight >= 1,
      'block 1',
      20_000,
    );
    // Before: the zone exists (SOA from genesis), the name does not.
    assert.match(
      await dig('hypermesh.', 'SOA', '+short'),
      /^ns1\.hypermesh\. hostmaster\.hypermesh\. 1 /,
    );
    assert.match(await dig('www.hypermesh.', 'A'), /status: NXDOMAIN/);

    const target = await loadClusterTarget(layout.dir);
    const session = await openOperatorSession(target);
    try {
      const client = session.client('node-1');
      const submit = async (body: Uint8Array): Promise<void> => {
        const outcome = await submitTransaction({
          client,
          genesis: parseGenesisJson(await readFile(genesisFile, 'utf8')),
          privateKey: owner.privateKey,
          module: DNS_ZONES_MODULE_NAME,
          body,
          wait: true,
          timeoutMs: 20_000,
        });
        assert.ok(outcome.admitted, JSON.stringify(outcome));
        assert.equal(outcome.status.status, 'committed', JSON.stringify(outcome));
        assert.ok(
          outcome.status.status === 'committed' && outcome.status.code === 0,
          JSON.stringify(outcome),
        );
      };
      await submit(dnsNameRegister('www.hypermesh.'));
      await submit(
        dnsRecordsSet([
          { name: 'www.hypermesh.', type: 'A', ttl: 300, data: { address: '192.0.2.7' } },
        ]),
      );
    } finally {
      await session.close();
    }

    // After the commits: the servers answer from the new state, over UDP and over TCP.
    assert.equal((await dig('www.hypermesh.', 'A', '+short')).trim(), '192.0.2.7');
    assert.equal((await dig('www.hypermesh.', 'A', '+short', '+tcp')).trim(), '192.0.2.7');
    assert.match(await dig('www.hypermesh.', 'AAAA'), /status: NOERROR[\s\S]*ANSWER: 0/);
  });
});
