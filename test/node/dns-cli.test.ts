import assert from 'node:assert/strict';
import { readFile, stat, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseGenesisJson } from '../../src/consensus/genesis.js';
import { toHex } from '../../src/crypto/bytes.js';
import { createRootCa, derToPem } from '../../src/crypto/x509.js';
import { CliError } from '../../src/node/cli-error.js';
import { initCluster, type ClusterInitResult } from '../../src/node/cluster-init.js';
import { generateZoneKey, loadZoneSigners, writeZoneKeyFile } from '../../src/node/dns-keys.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { createWalletKey, readWalletKey } from '../../src/node/wallet.js';
import { dsText } from '../../src/trustchain/dns/index.js';
import { dnsZonesGenesisFromApp } from '../../src/trustchain/dns-zones/index.js';
import { run, toolPresent } from '../faces/dns-fixture.js';
import { runCli } from '../helpers/cli.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

/**
 * The DNS parts of a running node end to end, with clients nobody here wrote: a cluster from
 * `cluster init` (signed cluster zone, DoQ port), one node in this process, the `hypermesh dns`
 * commands changing and reading the zone through consensus, `delv` validating answers with the
 * trust anchor `hypermesh dns ds` derives from the genesis, `kdig +dnssec` showing the RRSIGs,
 * and `kdig +quic` verifying the node's certificate (from its TrustChain intermediate) against
 * the cluster's TrustChain root and the node's IP address.
 */
const CI = process.env.CI === 'true';
const tools = {
  dig: await toolPresent('dig', ['-v']),
  delv: await toolPresent('delv', ['-v']),
  kdig: await toolPresent('kdig', ['--version']),
};
const missing = Object.entries(tools)
  .filter(([, present]) => !present)
  .map(([name]) => name);
const skip =
  missing.length > 0 && !CI
    ? `${missing.join(', ')} not installed (Debian bind9-dnsutils, knot-dnsutils)`
    : false;

let root: string;
let layout: ClusterInitResult;
let node: ValidatorNode | null = null;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-dns-cli-'));
  layout = await initCluster({
    out: path.join(root, 'cluster'),
    validators: 1,
    basePort: 0,
    metricsBasePort: 0,
  });
});
after(async () => {
  await node?.stop();
  await rm(root, { recursive: true, force: true });
});

async function dns(...args: string[]) {
  return runCli(['dns', ...args, ...(args[0] === 'ds' ? [] : ['--cluster', layout.dir])]);
}

describe('cluster init: a signed cluster zone and a DoQ port', () => {
  it('puts the DNSKEY in the genesis and the key file (0600) in every node directory', async () => {
    const genesis = parseGenesisJson(await readFile(layout.genesisFile, 'utf8'));
    const section = dnsZonesGenesisFromApp(genesis.app);
    const dnskey = section?.dnskeys?.get('hypermesh.');
    assert.ok(dnskey !== undefined, 'app.dns.zones[0].dnskey');
    assert.equal(dnskey.algorithm, 13);
    assert.equal(dnskey.flags, 257);
    const nodeLayout = layout.nodes[0]!;
    const keyFile = path.join(nodeLayout.dir, 'dnssec-hypermesh.key');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    assert.ok(nodeLayout.doq !== null && nodeLayout.doq.port > 0);
    assert.notEqual(nodeLayout.doq.port, nodeLayout.dns?.port);
    const config = await loadValidatorNodeConfig(nodeLayout.configFile, {});
    assert.deepEqual(config.dns?.dnssecKeys, [{ zone: 'hypermesh.', keyFile }]);
    assert.deepEqual(config.dns?.doq, [nodeLayout.doq]);

    // `dns ds` derives the DS from the genesis alone.
    const ds = await dns('ds', '--genesis', layout.genesisFile);
    assert.equal(ds.code, 0, ds.err);
    assert.ok(ds.out.includes(`${dsText('hypermesh.', dnskey)}\n`), ds.out);
    assert.match(ds.out, /trust-anchors \{\n {2}"hypermesh\." static-key 257 3 13 "/);
    const anchor = await dns('ds', 'hypermesh', '--cluster', layout.dir, '--trust-anchor');
    assert.equal(anchor.code, 0, anchor.err);
    assert.match(anchor.out, /^trust-anchors \{\n.*\n\};\n$/);
    const unsigned = await dns('ds', 'example.', '--genesis', layout.genesisFile);
    assert.equal(unsigned.code, 1);
    assert.match(unsigned.err, /zone example\. is not signed/);
  });

  it('a node refuses a zone key that is not the genesis one, or no key for a signed zone', async () => {
    const config = await loadValidatorNodeConfig(layout.nodes[0]!.configFile, {});
    const genesis = parseGenesisJson(await readFile(layout.genesisFile, 'utf8'));
    assert.equal((await loadZoneSigners(config, genesis)).size, 1);

    const other = path.join(root, 'other.key');
    await writeZoneKeyFile(other, generateZoneKey());
    const wrong = {
      ...config,
      dns: { ...config.dns!, dnssecKeys: [{ zone: 'hypermesh.', keyFile: other }] },
    };
    await assert.rejects(loadZoneSigners(wrong, genesis), (error: unknown) => {
      assert.ok(error instanceof CliError && error.exitCode === 2);
      assert.match(
        error.message,
        /holds DNSKEY key tag \d+, but the genesis publishes key tag \d+ for hypermesh\.: this is not the zone's key/,
      );
      return true;
    });
    // Refused by the node itself at start, before it serves anything.
    await assert.rejects(
      startValidatorNode(
        { ...wrong, dataDir: path.join(root, 'refused-data') },
        createLogger({ node: 'node-1' }, () => undefined, 'error'),
      ),
      /this is not the zone's key/,
    );
    const none = { ...config, dns: { ...config.dns!, dnssecKeys: [] } };
    await assert.rejects(
      loadZoneSigners(none, genesis),
      /publishes a DNSKEY for hypermesh\., but dns\.dnssecKeys has no key file/,
    );
    const unknown = {
      ...config,
      dns: {
        ...config.dns!,
        dnssecKeys: [...config.dns!.dnssecKeys, { zone: 'example.', keyFile: other }],
      },
    };
    await assert.rejects(loadZoneSigners(unknown, genesis), /publishes no DNSKEY for example\./);
  });
});

describe('a node serving the signed zone, changed with hypermesh dns', { skip }, () => {
  let udpPort = 0;
  let doqPort = 0;
  let anchorFile = '';

  before(async () => {
    const config = await loadValidatorNodeConfig(layout.nodes[0]!.configFile, {});
    node = await startValidatorNode(
      config,
      createLogger({ node: 'node-1' }, () => undefined, 'error'),
    );
    const running = node;
    assert.ok(running.dns !== null);
    udpPort = running.dns.udp[0]!.port;
    doqPort = running.dns.doq[0]!.port;
    assert.equal(doqPort, layout.nodes[0]!.doq?.port);
    await waitForCondition(
      running.driver,
      'commit',
      () => running.driver.status().committedHeight >= 1,
      'block 1',
      30_000,
    );
    anchorFile = path.join(root, 'anchor.conf');
    const anchor = await dns('ds', '--cluster', layout.dir, '--trust-anchor');
    assert.equal(anchor.code, 0, anchor.err);
    await writeFile(anchorFile, anchor.out);
  });

  async function delv(name: string, type: string) {
    const result = await withDeadline(
      run('delv', [
        '@127.0.0.1',
        '-p',
        String(udpPort),
        '-a',
        anchorFile,
        '+root=hypermesh',
        name,
        type,
      ]),
      30_000,
      `delv ${name} ${type}`,
    );
    return {
      validated: /^; (negative response, )?fully validated$/m.test(result.stdout),
      out: `${result.stdout}${result.stderr}`,
    };
  }

  async function kdig(...args: string[]) {
    const result = await withDeadline(
      run('kdig', ['@127.0.0.1', '+retry=0', '+timeout=5', ...args]),
      30_000,
      `kdig ${args.join(' ')}`,
    );
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  }

  it('sets a record through consensus (registering the name first) and delv validates it', async () => {
    const set = await dns('set', 'www.hypermesh', 'A', '192.0.2.7', '192.0.2.8', '--wait');
    assert.equal(set.code, 0, `${set.out}${set.err}`);
    assert.match(set.out, /^registering www\.hypermesh\. \(name-register/m);
    assert.match(
      set.out,
      /committed at height \d+, code 0 \(applied\)[\s\S]*setting 2 A record\(s\)[\s\S]*committed at height \d+, code 0 \(applied\)/,
    );

    // Committed: the node's zone follows the block (checked after each commit until it does).
    const running = node!;
    await waitForCondition(
      running.driver,
      'commit',
      async () => (await delv('www.hypermesh.', 'A')).out.includes('192.0.2.8'),
      'the record in the served zone',
      30_000,
    );
    const positive = await delv('www.hypermesh.', 'A');
    assert.ok(positive.validated, positive.out);
    assert.match(positive.out, /^www\.hypermesh\.\s+300\s+IN\s+A\s+192\.0\.2\.7$/m);
    const nxdomain = await delv('nope.hypermesh.', 'A');
    assert.ok(nxdomain.validated, nxdomain.out);
    assert.match(nxdomain.out, /NXDOMAIN/);
    const soa = await delv('hypermesh.', 'SOA');
    assert.ok(soa.validated, soa.out);

    // kdig +dnssec shows the signatures and the denial.
    const signed = await kdig('-p', String(udpPort), '+dnssec', 'www.hypermesh.', 'A');
    assert.match(signed, /www\.hypermesh\.\s+300\s+IN\s+RRSIG\s+A 13 2 300 /);
    const denial = await kdig('-p', String(udpPort), '+dnssec', 'nope.hypermesh.', 'A');
    assert.match(denial, /IN\s+NSEC\s+/);
    assert.match(denial, /IN\s+RRSIG\s+NSEC 13 /);
  });

  it('answers over DoQ, the node certificate verified against the TrustChain root', async () => {
    // The certificate comes from node-1's TrustChain intermediate and names the listen address.
    assert.equal(layout.trustRootsFile, path.join(layout.dir, 'ca', 'trustchain-root.pem'));
    const ca = `+tls-ca=${layout.trustRootsFile}`;
    // kdig checks the server address (@127.0.0.1) against the certificate's IP address.
    const answer = await kdig(ca, '+quic', '-p', String(doqPort), '+short', 'www.hypermesh.', 'A');
    assert.deepEqual(answer.trim().split('\n').sort(), ['192.0.2.7', '192.0.2.8']);
    const refused = (...args: string[]) =>
      run('kdig', [
        '@127.0.0.1',
        '+retry=0',
        '+timeout=5',
        ...args,
        '+quic',
        '-p',
        String(doqPort),
        'www.hypermesh.',
        'A',
      ]);
    // Another name than the certificate's fails verification.
    const wrongName = await refused(ca, '+tls-hostname=node-2.example');
    assert.notEqual(wrongName.code, 0, wrongName.stdout);
    // So does another root.
    const otherRoot = path.join(root, 'other-root.pem');
    await writeFile(
      otherRoot,
      derToPem((await createRootCa({ cluster: layout.chainId })).certificate),
    );
    const wrongRoot = await refused(`+tls-ca=${otherRoot}`);
    assert.notEqual(wrongRoot.code, 0, wrongRoot.stdout);
  });

  it('reads names and the zone with proofs checked', async () => {
    const operator = await readWalletKey(layout.operator.keyFile);
    const get = await dns('get', 'www.hypermesh', 'A');
    assert.equal(get.code, 0, get.err);
    assert.match(
      get.out,
      /^www\.hypermesh\. 300 IN A 192\.0\.2\.7\nwww\.hypermesh\. 300 IN A 192\.0\.2\.8\n/,
    );
    assert.ok(
      get.out.includes(`; owner ${toHex(operator.publicKey)}, registered at height`),
      get.out,
    );
    assert.match(
      get.out,
      /; height \d+, proof verified against state root [0-9a-f]{64} \(node-1\)/,
    );

    const json = await dns('get', 'www.hypermesh', '--json');
    const parsed = JSON.parse(json.out) as { owner: string; records: unknown[] };
    assert.equal(parsed.owner, toHex(operator.publicKey));
    assert.deepEqual(parsed.records, [
      { name: 'www.hypermesh.', type: 'A', ttl: 300, data: { address: '192.0.2.7' } },
      { name: 'www.hypermesh.', type: 'A', ttl: 300, data: { address: '192.0.2.8' } },
    ]);

    const apex = await dns('get', 'hypermesh.');
    assert.match(
      apex.out,
      /^hypermesh\. 3600 IN SOA ns1\.hypermesh\. hostmaster\.hypermesh\. \d+ 3600 600 86400 60\nhypermesh\. 3600 IN NS ns1\.hypermesh\.\n/,
    );
    const absent = await dns('get', 'nope.hypermesh');
    assert.equal(absent.code, 0);
    assert.match(absent.out, /; nope\.hypermesh\. is not registered \(proven absent\)/);

    const zone = await dns('zone');
    assert.equal(zone.code, 0, zone.err);
    assert.match(
      zone.out,
      /^; zone hypermesh\. \(cluster, policy open\), serial \d+, 1 registered name\(s\)/,
    );
    assert.match(zone.out, /; DNSSEC: signed online, key tag \d+/);
    assert.match(
      zone.out,
      /\nhypermesh\. 3600 IN SOA [^\n]+\nhypermesh\. 3600 IN NS ns1\.hypermesh\.\n; www\.hypermesh\. owner [0-9a-f]{64}, [^\n]+\nwww\.hypermesh\. 300 IN A 192\.0\.2\.7\n/,
    );
    const zoneJson = JSON.parse((await dns('zone', 'hypermesh', '--json')).out) as {
      names: Array<{ name: string }>;
      serial: number;
    };
    assert.deepEqual(
      zoneJson.names.map((entry) => entry.name),
      ['www.hypermesh.'],
    );

    // A record an admin sets at the apex is in the index too; the zone lists the apex once.
    const caa = await dns('set', 'hypermesh', 'CAA', '0 issue "hypermesh"', '--wait');
    assert.equal(caa.code, 0, caa.err);
    const withApex = await dns('zone', 'hypermesh', '--json');
    assert.equal(withApex.code, 0, withApex.err);
    const listed = JSON.parse(withApex.out) as { names: Array<{ name: string }> };
    assert.deepEqual(
      listed.names.map((entry) => entry.name),
      ['hypermesh.', 'www.hypermesh.'],
    );
    const text = await dns('zone');
    assert.equal(text.code, 0, text.err);
    assert.equal(text.out.match(/^hypermesh\. 3600 IN SOA /gm)?.length, 1, 'the apex once');
    assert.match(text.out, /^hypermesh\. \d+ IN CAA 0 issue "hypermesh"$/m);
  });

  it('refuses precisely, with the module codes', async () => {
    const badValue = await dns('set', 'www.hypermesh', 'A', '2001:db8::1');
    assert.equal(badValue.code, 2);
    assert.match(
      badValue.err,
      /got an IPv6 address \(that goes in AAAA\) \[DNS_ZONES_INVALID_RECORD\]/,
    );
    const badArity = await dns('set', 'mail.hypermesh', 'MX', 'mail.hypermesh.');
    assert.equal(badArity.code, 2);
    assert.match(badArity.err, /MX takes "PREFERENCE EXCHANGE" per VALUE/);
    const managed = await dns('set', 'hypermesh', 'NS', 'ns2.hypermesh.');
    assert.equal(managed.code, 1);
    assert.match(managed.err, /refused the records-set: DNS_ZONES_MANAGED_TYPE: /);
    const outside = await dns('set', 'www.example', 'A', '192.0.2.1');
    assert.equal(outside.code, 1);
    assert.match(
      outside.err,
      /www\.example\. is in no zone \(zones: hypermesh\.\) \[DNS_ZONES_NOT_IN_ZONE\]/,
    );
    const treasury = layout.ledger!.treasuryKeyFile;
    const notOwner = await dns('set', 'www.hypermesh', 'A', '192.0.2.9', '--key', treasury);
    assert.equal(notOwner.code, 1);
    assert.match(
      notOwner.err,
      /www\.hypermesh\. is owned by [0-9a-f]{64}, not by the signing key [0-9a-f]{64} .*\[DNS_ZONES_NOT_OWNER\]/,
    );
    // Refused by the node at admission: a CNAME beside other data.
    const conflict = await dns('set', 'www.hypermesh', 'CNAME', 'other.hypermesh.');
    assert.equal(conflict.code, 1);
    assert.match(conflict.err, /node-1 refused the records-set: DNS_ZONES_CNAME_CONFLICT: /);
    const noRrset = await dns('delete', 'www.hypermesh', 'TXT');
    assert.equal(noRrset.code, 1);
    assert.match(noRrset.err, /DNS_ZONES_NO_SUCH_RRSET/);
    const help = await runCli(['dns', 'set', '--help']);
    assert.match(help.out, /usage: hypermesh dns set NAME TYPE VALUE\.\.\./);
  });

  it('deletes an RRset and releases a name', async () => {
    const txt = await dns('set', 'www.hypermesh', 'TXT', 'hello world', '--ttl', '120', '--wait');
    assert.equal(txt.code, 0, txt.err);
    assert.doesNotMatch(txt.out, /registering/);
    const got = await dns('get', 'www.hypermesh', 'TXT');
    assert.match(got.out, /^www\.hypermesh\. 120 IN TXT "hello world"\n/);
    const deleted = await dns('delete', 'www.hypermesh', 'A', '--wait');
    assert.equal(deleted.code, 0, deleted.err);
    assert.match(
      (await dns('get', 'www.hypermesh', 'A')).out,
      /; no A records at www\.hypermesh\./,
    );
    const released = await dns('delete', 'www.hypermesh', '--wait');
    assert.equal(released.code, 0, released.err);
    assert.match((await dns('get', 'www.hypermesh')).out, /is not registered \(proven absent\)/);
    const running = node!;
    await waitForCondition(
      running.driver,
      'commit',
      async () => /NXDOMAIN/.test((await delv('www.hypermesh.', 'TXT')).out),
      'the released name gone from the served zone',
      30_000,
    );
    const gone = await delv('www.hypermesh.', 'TXT');
    assert.ok(gone.validated, gone.out);
  });

  it('creates a zone (served unsigned), registers and transfers names in it', async () => {
    const treasury = layout.ledger!.treasuryKeyFile;
    // Only an admin of a cluster zone may create zones: the node refuses with the module's code.
    const notAdmin = await dns(
      'zone-create',
      'example',
      '--ns',
      'ns1.hypermesh.',
      '--key',
      treasury,
    );
    assert.equal(notAdmin.code, 1, notAdmin.out);
    assert.match(
      notAdmin.err,
      /node-1 refused the zone-create: DNS_ZONES_NOT_ZONE_ADMIN: zone-create example\.: only an admin of a cluster zone may create zones/,
    );
    const overlap = await dns('zone-create', 'lab.hypermesh', '--ns', 'ns1.hypermesh.');
    assert.equal(overlap.code, 1);
    assert.match(
      overlap.err,
      /DNS_ZONES_ZONE_OVERLAP: zone lab\.hypermesh\. would overlap zone hypermesh\./,
    );
    const wildcard = await dns('zone-create', '*.example', '--ns', 'ns1.hypermesh.');
    assert.equal(wildcard.code, 2);
    assert.match(wildcard.err, /a zone apex cannot be a wildcard \[DNS_ZONES_INVALID_NAME\]/);

    const created = await dns('zone-create', 'Example', '--ns', 'ns1.hypermesh.', '--wait');
    assert.equal(created.code, 0, `${created.out}${created.err}`);
    assert.match(
      created.out,
      /^creating zone example\. \(zone-create, policy open, NS ns1\.hypermesh\./m,
    );
    assert.match(
      created.out,
      /committed at height \d+, code 0 \(applied\)\nzone example\. created; it is served unsigned/,
    );
    const again = await dns('zone-create', 'example', '--ns', 'ns1.hypermesh.');
    assert.equal(again.code, 1);
    assert.match(again.err, /DNS_ZONES_ZONE_EXISTS/);

    // A name in the new zone, set through consensus, answered by the node over UDP.
    const set = await dns('set', 'www.example', 'A', '192.0.2.20', '--wait');
    assert.equal(set.code, 0, `${set.out}${set.err}`);
    assert.match(set.out, /^registering www\.example\./m);
    const running = node!;
    const answer = async (name: string) =>
      (await kdig('-p', String(udpPort), '+short', name, 'A')).trim();
    await waitForCondition(
      running.driver,
      'commit',
      async () => (await answer('www.example.')) === '192.0.2.20',
      'www.example. A in the served zone',
      30_000,
    );
    const soa = await kdig('-p', String(udpPort), '+dnssec', 'example.', 'SOA');
    assert.match(
      soa,
      /example\.\s+3600\s+IN\s+SOA\s+ns1\.hypermesh\. hostmaster\.example\. \d+ 3600 600 86400 60/,
    );
    assert.doesNotMatch(soa, /RRSIG/, 'a zone made by zone-create is served unsigned');
    const zone = await dns('zone', 'example');
    assert.equal(zone.code, 0, zone.err);
    assert.match(
      zone.out,
      /^; zone example\. \(delegated, policy open\), serial \d+, 1 registered name/,
    );
    assert.match(zone.out, /; DNSSEC: unsigned/);

    // register: a name without records; someone else's name is refused by the node.
    const registered = await dns('register', 'mail.example', '--wait');
    assert.equal(registered.code, 0, registered.err);
    assert.match(registered.out, /^mail\.example\. is owned by [0-9a-f]{64}$/m);
    const taken = await dns('register', 'mail.example', '--key', treasury);
    assert.equal(taken.code, 1);
    assert.match(taken.err, /node-1 refused the name-register: DNS_ZONES_ALREADY_OWNED: /);

    // transfer: the new owner changes the name, the old one is refused.
    const operator = await readWalletKey(layout.operator.keyFile);
    const bob = await createWalletKey(path.join(root, 'bob.key'));
    const moved = await dns('transfer', 'www.example', '--to', bob.file, '--wait');
    assert.equal(moved.code, 0, `${moved.out}${moved.err}`);
    assert.match(
      moved.out,
      new RegExp(`^www\\.example\\. is owned by ${toHex(bob.publicKey)}$`, 'm'),
    );
    const bobSets = await dns('set', 'www.example', 'A', '192.0.2.21', '--key', bob.file, '--wait');
    assert.equal(bobSets.code, 0, `${bobSets.out}${bobSets.err}`);
    assert.doesNotMatch(bobSets.out, /registering/);
    const oldOwner = await dns('set', 'www.example', 'A', '192.0.2.22');
    assert.equal(oldOwner.code, 1);
    assert.match(
      oldOwner.err,
      new RegExp(
        `is owned by ${toHex(bob.publicKey)}, not by the signing key ${toHex(operator.publicKey)} .*\\[DNS_ZONES_NOT_OWNER\\]`,
      ),
    );
    const takeBack = await dns('transfer', 'www.example', '--to', toHex(operator.publicKey));
    assert.equal(takeBack.code, 1);
    assert.match(takeBack.err, /node-1 refused the name-transfer: DNS_ZONES_NOT_OWNER: /);
    const owner = JSON.parse((await dns('get', 'www.example', '--json')).out) as { owner: string };
    assert.equal(owner.owner, toHex(bob.publicKey));
    await waitForCondition(
      running.driver,
      'commit',
      async () => (await answer('www.example.')) === '192.0.2.21',
      "bob's record in the served zone",
      30_000,
    );

    for (const command of ['zone-create', 'register', 'transfer']) {
      const help = await runCli(['dns', command, '--help']);
      assert.equal(help.code, 0);
      assert.match(help.out, new RegExp(`usage: hypermesh dns ${command} `));
    }
  });
});
