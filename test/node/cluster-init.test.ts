import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { readKeyFile } from '../../src/crypto/keyfile.js';
import {
  certificateFalconKey,
  certificateIdentity,
  derToPem,
  parseCertificate,
  pemToDerList,
  verifyChain,
} from '../../src/crypto/x509.js';
import {
  DEV_PROOF_PARAMS,
  parseGenesisJson,
  type GenesisAppValue,
} from '../../src/consensus/genesis.js';
import { loadStoragePlot } from '../../src/consensus/pos/index.js';
import { validatorAddress } from '../../src/consensus/validator-set.js';
import { CliError } from '../../src/node/cli-error.js';
import { CA_RATE_LIMIT_BOUNDS } from '../../src/node/ca-rate-limit.js';
import { initCluster } from '../../src/node/cluster-init.js';
import { readClusterLayout } from '../../src/node/cluster-layout.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { parseTrustBundle } from '../../src/trustchain/ca/bundle.js';
import { CaGenesisError, caGenesisFromApp } from '../../src/trustchain/ca-module/index.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';

let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-cluster-init-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const run = runCli;

const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;
if (!openssl && process.env.CI === 'true') {
  throw new Error('openssl is required in CI (.ci/run installs it) but was not found on PATH');
}
const skipOpenssl = openssl ? false : 'openssl not found on PATH: install it to run this check';

/** `openssl verify` with its exit status and what it printed. */
function opensslVerify(args: readonly string[]): { status: number | null; output: string } {
  const result = spawnSync('openssl', ['verify', ...args], { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

async function mode(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

describe('hypermesh cluster init', () => {
  it('writes keys, certificates, plots, configs and a genesis that agree with each other', async () => {
    const out = path.join(root, 'four');
    const result = await run([
      'cluster',
      'init',
      '--validators',
      '4',
      '--out',
      out,
      '--chain-id',
      'testnet-1',
      '--base-port',
      '19300',
      '--metrics-base-port',
      '19400',
    ]);
    assert.equal(result.code, 0, result.err);
    for (const name of ['node-1', 'node-2', 'node-3', 'node-4']) {
      assert.match(
        result.out,
        new RegExp(`${name} +[0-9a-f]{40} +keys, certificate from its intermediate, storage plot`),
      );
    }
    assert.deepEqual((await readdir(out)).sort(), [
      'ca',
      'genesis.json',
      'node-1',
      'node-2',
      'node-3',
      'node-4',
      'operator',
    ]);
    assert.equal(
      (await readdir(root)).filter((entry) => entry.includes('.tmp-')).length,
      0,
      'no staging directory is left behind',
    );

    const genesis = parseGenesisJson(await readFile(path.join(out, 'genesis.json'), 'utf8'));
    assert.equal(genesis.chainId, 'testnet-1');
    const bundle = parseTrustBundle(
      await readFile(path.join(out, 'ca', 'trust-bundle.json'), 'utf8'),
    );
    const intermediateOf = (name: string): Uint8Array => {
      const found = bundle.validators.find((validator) => validator.name === name);
      assert.ok(found !== undefined, `an intermediate for ${name}`);
      return found.certificate;
    };
    assert.deepEqual(genesis.proof, DEV_PROOF_PARAMS);
    assert.equal(genesis.consensus.requirePq, true);
    assert.equal(genesis.validators.length, 4);

    for (const [index, validator] of genesis.validators.entries()) {
      const dir = path.join(out, validator.name);
      const keyFile = path.join(dir, `${validator.name}.key`);
      assert.equal(await mode(keyFile), 0o600, `${keyFile} is private`);
      assert.equal(await mode(path.join(dir, 'storage.plot')), 0o600);
      const identity = await readKeyFile(keyFile, { kind: 'node-identity' });
      assert.deepEqual(ed25519RawPublicKey(identity.keys.ed25519.publicKey), validator.publicKey);
      assert.deepEqual(identity.keys.falcon.publicKey, validator.pqPublicKey);

      const chain = pemToDerList(await readFile(path.join(dir, `${validator.name}.pem`), 'utf8'));
      const leaf = chain[0] as Uint8Array;
      assert.equal(certificateIdentity(leaf).uri, `spiffe://testnet-1/validator/${validator.name}`);
      assert.deepEqual(certificateFalconKey(leaf), validator.pqPublicKey);
      // Leaf, then the validator's own TrustChain intermediate (not the root).
      assert.equal(chain.length, 2);
      assert.deepEqual(chain[1], intermediateOf(validator.name));

      const plot = await loadStoragePlot(
        path.join(dir, 'storage.plot'),
        genesis.proof.space,
        validator.storageRoot,
      );
      assert.deepEqual(plot.publicKey, validator.publicKey);

      const config = await loadValidatorNodeConfig(path.join(dir, 'config.json'), {});
      assert.equal(config.name, validator.name);
      assert.deepEqual(config.stoq, {
        host: '127.0.0.1',
        port: 19300 + index,
        transport: 'quic',
        authMode: 'delegated',
      });
      assert.deepEqual(config.metrics, { host: '127.0.0.1', port: 19400 + index });
      assert.deepEqual(
        config.peers.map((peer) => `${peer.name}@${peer.address.port}`),
        genesis.validators
          .map((other, otherIndex) => `${other.name}@${19300 + otherIndex}`)
          .filter((entry) => !entry.startsWith(`${validator.name}@`)),
      );
      assert.equal(config.genesisFile, path.join(out, 'genesis.json'));
      assert.equal(config.trust.rootsFile, path.join(out, 'ca', 'trustchain-root.pem'));
    }
    // No development CA: the TrustChain root is the cluster's only root.
    assert.deepEqual((await readdir(path.join(out, 'ca'))).sort(), [
      'trust-bundle.json',
      'trustchain-intermediates.pem',
      'trustchain-root.pem',
    ]);
    assert.equal(await mode(path.join(out, 'operator', 'operator.key')), 0o600);
    const operatorChain = pemToDerList(
      await readFile(path.join(out, 'operator', 'operator.pem'), 'utf8'),
    );
    assert.equal(
      certificateIdentity(operatorChain[0] as Uint8Array).uri,
      'spiffe://testnet-1/client/operator',
    );
    assert.deepEqual(operatorChain.slice(1), [intermediateOf('node-1')]);

    const layout = await readClusterLayout(out);
    assert.equal(layout.trustRootsFile, path.join(out, 'ca', 'trustchain-root.pem'));
    assert.deepEqual(
      layout.nodes.map((node) => node.id),
      genesis.validators.map((validator) => validatorAddress(validator.publicKey)),
    );
  });

  it(
    'issues every certificate from a TrustChain intermediate that openssl verifies against the root',
    { skip: skipOpenssl },
    async () => {
      const out = path.join(root, 'trustchain');
      const layout = await initCluster({
        out,
        validators: 2,
        basePort: 0,
        metricsBasePort: 0,
        chainId: 'verify-1',
      });
      const rootFile = path.join(out, 'ca', 'trustchain-root.pem');
      assert.equal(layout.trustRootsFile, rootFile);
      for (const file of ['root.pem', 'root.key', 'cluster.txt']) {
        await assert.rejects(stat(path.join(out, 'ca', file)), { code: 'ENOENT' });
      }
      const bundle = parseTrustBundle(
        await readFile(path.join(out, 'ca', 'trust-bundle.json'), 'utf8'),
      );
      const intermediateFile = (name: string): string => path.join(root, `trustchain-${name}.pem`);
      for (const validator of bundle.validators) {
        await writeFile(intermediateFile(validator.name), derToPem(validator.certificate));
      }
      const verify = (file: string, intermediate: string, ...extra: string[]) =>
        opensslVerify([
          ...extra,
          '-CAfile',
          rootFile,
          '-untrusted',
          intermediateFile(intermediate),
          file,
        ]);
      for (const [file, issuer] of [
        [path.join(out, 'node-1', 'node-1.pem'), 'node-1'],
        [path.join(out, 'node-2', 'node-2.pem'), 'node-2'],
        [path.join(out, 'operator', 'operator.pem'), 'node-1'],
        [path.join(out, 'node-1', 'acme-https.pem'), 'node-1'],
        [path.join(out, 'node-2', 'acme-https.pem'), 'node-2'],
      ] as const) {
        const result = verify(file, issuer);
        assert.equal(result.status, 0, `${file}: ${result.output}`);
        assert.match(result.output, /: OK$/m);
        const leaf = parseCertificate(pemToDerList(await readFile(file, 'utf8'))[0] as Uint8Array);
        const intermediate = bundle.validators.find((validator) => validator.name === issuer);
        assert.equal(leaf.issuer, intermediate?.parsed.subject, `${file} is issued by ${issuer}`);
      }
      // Another validator's intermediate did not issue node-1's certificate.
      const wrong = verify(path.join(out, 'node-1', 'node-1.pem'), 'node-2');
      assert.notEqual(wrong.status, 0, wrong.output);
      // The listen address is in node-1's STOQ (and DoQ) certificate, for TLS clients to check.
      const address = verify(
        path.join(out, 'node-1', 'node-1.pem'),
        'node-1',
        '-purpose',
        'sslserver',
        '-verify_ip',
        '127.0.0.1',
      );
      assert.equal(address.status, 0, address.output);
      const otherAddress = verify(
        path.join(out, 'node-1', 'node-1.pem'),
        'node-1',
        '-verify_ip',
        '127.0.0.2',
      );
      assert.notEqual(otherAddress.status, 0, otherAddress.output);
    },
  );

  it('keeps the genesis certificates within the intermediate, and STOQ path validation accepts them', async () => {
    const out = path.join(root, 'long-validity');
    await initCluster({
      out,
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
      dns: false,
      acme: false,
      validityDays: 5000,
    });
    const [rootDer] = pemToDerList(
      await readFile(path.join(out, 'ca', 'trustchain-root.pem'), 'utf8'),
    );
    for (const file of [
      path.join(out, 'node-1', 'node-1.pem'),
      path.join(out, 'operator', 'operator.pem'),
    ]) {
      const chain = pemToDerList(await readFile(file, 'utf8'));
      const leaf = parseCertificate(chain[0] as Uint8Array);
      const intermediate = parseCertificate(chain[1] as Uint8Array);
      assert.equal(leaf.notAfter.getTime(), intermediate.notAfter.getTime(), file);
      assert.ok(leaf.notBefore.getTime() >= intermediate.notBefore.getTime(), file);
      // node-1's certificate names the listen address; the operator's names none.
      assert.deepEqual(leaf.ipAddresses, file.endsWith('node-1.pem') ? ['127.0.0.1'] : [], file);
      const verified = verifyChain({
        chain,
        roots: [rootDer as Uint8Array],
        now: new Date(),
        purpose: file.endsWith('node-1.pem') ? 'serverAuth' : 'clientAuth',
      });
      assert.equal(verified.path.length, 3);
    }
  });

  it('with --no-ca, the development CA issues the certificates, as before', async () => {
    const out = path.join(root, 'no-ca');
    const result = await run([
      'cluster',
      'init',
      '--validators',
      '1',
      '--out',
      out,
      '--base-port',
      '0',
      '--metrics-base-port',
      '0',
      '--no-ca',
    ]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /development CA, root certificate ca\/root\.pem/);
    assert.match(result.out, /node-1 +[0-9a-f]{40} +keys, certificate, storage plot/);
    assert.deepEqual((await readdir(path.join(out, 'ca'))).sort(), [
      'cluster.txt',
      'root.key',
      'root.pem',
    ]);
    assert.equal(await mode(path.join(out, 'ca', 'root.key')), 0o600);
    const config = await loadValidatorNodeConfig(path.join(out, 'node-1', 'config.json'), {});
    assert.equal(config.trust.rootsFile, path.join(out, 'ca', 'root.pem'));
    const layout = await readClusterLayout(out);
    assert.equal(layout.trustRootsFile, path.join(out, 'ca', 'root.pem'));
    const rootDer = pemToDerList(await readFile(path.join(out, 'ca', 'root.pem'), 'utf8'))[0];
    for (const file of [
      path.join(out, 'node-1', 'node-1.pem'),
      path.join(out, 'operator', 'operator.pem'),
    ]) {
      const chain = pemToDerList(await readFile(file, 'utf8'));
      assert.equal(chain.length, 1, `${file}: the development CA issues from its root`);
      const leaf = parseCertificate(chain[0] as Uint8Array);
      assert.equal(leaf.issuer, parseCertificate(rootDer as Uint8Array).subject);
      if (openssl) {
        const verified = opensslVerify(['-CAfile', path.join(out, 'ca', 'root.pem'), file]);
        assert.equal(verified.status, 0, verified.output);
      }
    }
  });

  it('validates --validators precisely', async () => {
    for (const [value, shown] of [
      ['0', '"0"'],
      ['101', '"101"'],
      ['four', '"four"'],
      ['2.5', '"2.5"'],
    ] as const) {
      const result = await run(['cluster', 'init', '--validators', value, '--out', root]);
      assert.equal(result.code, 2);
      assert.match(
        result.err,
        new RegExp(`--validators must be an integer from 1 to 100, got ${shown}`),
      );
    }
    const missing = await run(['cluster', 'init', '--out', path.join(root, 'x')]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--validators is required/);
    const badChain = await run([
      'cluster',
      'init',
      '--validators',
      '1',
      '--out',
      path.join(root, 'x'),
      '--chain-id',
      'Bad Chain',
    ]);
    assert.equal(badChain.code, 2);
    assert.match(badChain.err, /--chain-id "Bad Chain" must be lowercase/);
    const overlap = await run([
      'cluster',
      'init',
      '--validators',
      '3',
      '--out',
      path.join(root, 'x'),
      '--base-port',
      '9000',
      '--metrics-base-port',
      '9002',
    ]);
    assert.equal(overlap.code, 2);
    assert.match(overlap.err, /STOQ ports 9000\.\.9002 overlap metrics ports 9002\.\.9004/);
  });

  it('refuses a non-empty directory, and --force replaces only a cluster directory', async () => {
    const other = path.join(root, 'not-a-cluster');
    await mkdir(other);
    await writeFile(path.join(other, 'notes.txt'), 'keep me\n');
    const refused = await run(['cluster', 'init', '--validators', '1', '--out', other]);
    assert.equal(refused.code, 2);
    assert.match(refused.err, /is not empty; choose another --out or pass --force/);
    const forced = await run(['cluster', 'init', '--validators', '1', '--out', other, '--force']);
    assert.equal(forced.code, 2);
    assert.match(forced.err, /holds no genesis\.json; --force only replaces a cluster directory/);
    assert.equal(await readFile(path.join(other, 'notes.txt'), 'utf8'), 'keep me\n');

    const cluster = path.join(root, 'replace-me');
    const first = await initCluster({
      out: cluster,
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
    });
    const again = await run(['cluster', 'init', '--validators', '1', '--out', cluster]);
    assert.equal(again.code, 2);
    assert.match(again.err, /is not empty/);
    const second = await initCluster({
      out: cluster,
      validators: 2,
      basePort: 0,
      metricsBasePort: 0,
      force: true,
    });
    assert.equal(second.nodes.length, 2);
    assert.notEqual(second.nodes[0]?.id, first.nodes[0]?.id, 'new keys were generated');
    const genesis = parseGenesisJson(await readFile(path.join(cluster, 'genesis.json'), 'utf8'));
    assert.equal(genesis.validators.length, 2);
    assert.equal(
      (await readdir(root)).filter((entry) => /\.(tmp|old)-/.test(entry)).length,
      0,
      'nothing is left beside the cluster directory',
    );
  });

  it('leaves nothing behind when the ceremony fails half-way', async () => {
    const out = path.join(root, 'fails');
    await assert.rejects(
      initCluster({
        out,
        validators: 2,
        basePort: 0,
        metricsBasePort: 0,
        // The CA and the first keys are written before the plot build refuses these parameters.
        proofParams: { ...DEV_PROOF_PARAMS, space: { ...DEV_PROOF_PARAMS.space, blockCount: 0 } },
      }),
      /blockCount/,
    );
    await assert.rejects(stat(out), { code: 'ENOENT' });
    assert.deepEqual(
      (await readdir(root)).filter((entry) => entry.startsWith('fails')),
      [],
      'the staging directory was removed',
    );
    await assert.rejects(
      initCluster({ out, validators: 0 }),
      (error: unknown) => error instanceof CliError && /from 1 to 100, got 0/.test(error.message),
    );
  });

  it('--ca-rate-limit COUNT/SECONDS writes app.ca.rateLimit; bad values and --no-ca are refused', async () => {
    const out = path.join(root, 'rate-limit');
    const result = await run([...clusterInitArgs(out, 1), '--ca-rate-limit', '1000/3600']);
    assert.equal(result.code, 0, result.err);
    const genesis = parseGenesisJson(await readFile(path.join(out, 'genesis.json'), 'utf8'));
    const section = genesis.app?.ca as Record<string, GenesisAppValue>;
    assert.deepEqual(section.rateLimit, { max: 1000, windowSeconds: 3600 });
    assert.deepEqual(caGenesisFromApp(genesis.app, genesis)?.rateLimit, {
      max: 1000,
      windowSeconds: 3600,
    });
    // The flag's upper bounds are the app.ca schema's (config.ts): accepted there, one more is not.
    const { count, seconds } = CA_RATE_LIMIT_BOUNDS;
    const load = (max: number, windowSeconds: number) =>
      caGenesisFromApp({ ca: { ...section, rateLimit: { max, windowSeconds } } }, genesis);
    assert.deepEqual(load(count.max, seconds.max)?.rateLimit, {
      max: count.max,
      windowSeconds: seconds.max,
    });
    assert.throws(() => load(count.max + 1, 3600), CaGenesisError);
    assert.throws(() => load(1, seconds.max + 1), CaGenesisError);

    const refused = path.join(root, 'rate-limit-refused');
    for (const [flag, message] of [
      [['--ca-rate-limit', '0/3600'], /--ca-rate-limit "0\/3600": COUNT .* from 1 to 1000000/],
      [['--ca-rate-limit', '10'], /--ca-rate-limit must be COUNT\/SECONDS .*got "10"/],
      [['--ca-rate-limit', '10/x'], /--ca-rate-limit "10\/x": SECONDS .* got "x"/],
      [['--ca-rate-limit=-1/60'], /--ca-rate-limit "-1\/60": COUNT .* got "-1"/],
      [['--ca-rate-limit', '-1/60'], /--ca-rate-limit/],
      [['--ca-rate-limit', '1000001/3600'], /COUNT .* from 1 to 1000000, got "1000001"/],
      [['--ca-rate-limit', '10/31622401'], /SECONDS .* from 1 to 31622400, got "31622401"/],
      [['--ca-rate-limit', '10/3600', '--no-ca'], /cannot be combined with --no-ca/],
    ] as const) {
      const bad = await run([...clusterInitArgs(refused, 1), ...flag]);
      assert.equal(bad.code, 2, `${flag.join(' ')}: ${bad.err}`);
      assert.match(bad.err, message);
      await assert.rejects(stat(refused), { code: 'ENOENT' });
    }
    assert.deepEqual(
      (await readdir(root)).filter((entry) => entry.startsWith('rate-limit-refused')),
      [],
    );
    await assert.rejects(
      initCluster({ out: refused, validators: 1, caRateLimit: { max: 10, windowSeconds: 0 } }),
      (error: unknown) => error instanceof CliError && /SECONDS/.test(error.message),
    );
  });
});
