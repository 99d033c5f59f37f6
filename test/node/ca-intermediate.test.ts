import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import { validatorAddress } from '../../src/consensus/validator-set.js';
import { fromHex, toHex } from '../../src/crypto/bytes.js';
import { writeKeyFile } from '../../src/crypto/keyfile.js';
import { pemToDerList } from '../../src/crypto/x509.js';
import {
  issueNodeIntermediate,
  readIntermediateRequest,
  writeIssuedIntermediate,
} from '../../src/node/ca-intermediate.js';
import { startCaNode } from '../../src/node/ca-node.js';
import { genesisTrustBundle } from '../../src/node/cert-tools.js';
import { CliError } from '../../src/node/cli-error.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { encodeTrustBundle } from '../../src/trustchain/ca/bundle.js';
import {
  checkValidatorIntermediate,
  createValidatorCaRequest,
  issueValidatorIntermediate,
  loadRootSigningKeys,
} from '../../src/trustchain/ca/hierarchy.js';
import { encodeCertificateRequest } from '../../src/trustchain/ca/request.js';
import {
  caAddIntermediateBody,
  caApproveIntermediateBody,
  decodeCaBody,
  encodeCaBody,
  intermediateHash,
} from '../../src/trustchain/ca-module/index.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import { makeSender } from '../consensus/application/fixture.js';
import { CEREMONY_TIME, PASSPHRASE, nodeRequest } from '../trustchain/ca/fixtures.js';
import { caTx, createCaFixture } from '../trustchain/ca-module/fixture.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { startClusterNodes } from '../helpers/nodes.js';

/**
 * The node side of the governed addition of an intermediate (docs/ca.md, "Adding a validator's
 * intermediate"): a node whose intermediate takes effect in committed state starts publishing
 * with it (src/node/ca-node.ts), and the operator's files — `cluster add-node` writes the
 * node's intermediate key and request, `ca intermediate issue`'s offline step turns them into
 * an intermediate the module accepts.
 */

describe('ca-node: an intermediate added through consensus', () => {
  let root: string;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ca-added-'));
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('a node publishes once its intermediate is in effect, not before', async () => {
    const fixture = await createCaFixture();
    const chain = await fixture.openCaNode();
    const { ca, validators, operator } = fixture;
    const { request, keys } = await createValidatorCaRequest({ name: 'val-c', falcon: ca.falcon });
    const root0 = await loadRootSigningKeys({
      bundle: ca.bundle,
      ecdsaKeyFile: ca.rootKeyFiles.ecdsa,
      falconKeyFile: ca.rootKeyFiles.falcon,
      passphrase: PASSPHRASE,
    });
    const valC = makeSender();
    const issued = await issueValidatorIntermediate({
      cluster: ca.bundle.cluster,
      root: root0,
      request,
      account: valC.publicKey,
      notBefore: CEREMONY_TIME,
      falcon: ca.falcon,
    });
    const dataDir = path.join(root, 'val-c');
    await mkdir(dataDir, { recursive: true });
    const keyFile = path.join(dataDir, 'ca-intermediate.key');
    await writeKeyFile(keyFile, { kind: 'p256', keys: keys.ecdsa });
    const bundleFile = path.join(root, 'trust-bundle.json');
    await writeFile(bundleFile, encodeTrustBundle(ca.bundle));
    const submitted: Uint8Array[] = [];
    const lines: string[] = [];
    const node = await startCaNode({
      config: {
        name: 'val-c',
        dataDir,
        ca: { intermediateKeyFile: keyFile, trustBundleFile: bundleFile },
        ct: null,
      } as never,
      genesis: {
        chainId: fixture.config.chainId,
        proof: { work: { stampDifficulty: 4 } },
      } as unknown as GenesisDocument,
      ca: fixture.config,
      state: { get: (key) => chain.node.store.state.get(key) },
      blocks: chain.node.store.blocks,
      // The fixture's blocks carry fixed times: the node's clock is just past the latest.
      now: () => {
        const height = chain.node.store.blocks.latestHeight() ?? 0;
        return (chain.node.store.blocks.byHeight(height)?.timeMs ?? 0) + 1_000;
      },
      query: (q) => chain.node.app.query(q),
      identity: {
        ed25519: valC.privateKey,
        falconPublicKey: keys.falcon.publicKey,
        falconSecretKey: keys.falcon.secretKey,
      },
      submit: (tx) => {
        submitted.push(tx);
        return Promise.resolve({ ok: true });
      },
      registry: new Registry(),
      logger: createLogger({ node: 'val-c' }, (line) => void lines.push(line), 'info'),
      falcon: ca.falcon,
    });
    try {
      // Not an issuer yet: no CRL, OCSP answers unauthorized, nothing is published.
      assert.equal(node.crl(), null);
      assert.ok(node.ocsp !== null);
      assert.equal(node.ocsp(new Uint8Array([0x30, 0x00])).outcome, 'unauthorized');
      const hash = intermediateHash(issued.certificate, valC.publicKey);
      chain.block([
        caTx(
          operator,
          caAddIntermediateBody({
            name: 'val-c',
            account: valC.publicKey,
            certificate: issued.certificate,
            endorsement: issued.endorsement,
          }),
        ),
      ]);
      chain.block([caTx(validators['val-a'], caApproveIntermediateBody(hash))]);
      node.committed(chain.node.nextHeight() - 1);
      await node.idle();
      assert.equal(node.crl(), null, 'one approval of two holders is not enough');
      chain.block([caTx(validators['val-b'], caApproveIntermediateBody(hash))]);
      // A node-profile request by val-c, in a block val-c proposes: its turn comes first.
      const requestTx = caTx(
        valC,
        encodeCaBody({
          op: 'request',
          request: encodeCertificateRequest(await nodeRequest(ca, 'val-c')),
        }),
      );
      const input = chain.input([requestTx]);
      const result = chain.node.app.executeBlock({
        ...input,
        proposer: validatorAddress(valC.publicKey),
      });
      chain.node.commit(result);
      assert.equal(result.txResults[0]?.code, 0, result.txResults[0]?.log);
      node.committed(input.height);
      await node.idle();
      assert.ok(node.crl() !== null, 'val-c signs its CRL once its intermediate is in effect');
      assert.ok(lines.some((line) => line.includes('ca intermediate in effect: publishing')));
      assert.equal(submitted.length, 1);
      const envelope = decodeTransaction(submitted[0]!);
      const body = decodeCaBody(envelope.body);
      assert.equal(body.op, 'publish');
      assert.ok(body.op === 'publish' && body.issuer === 'val-c' && body.height === input.height);
      // Every validator accepts it: committed, the certificate is val-c's.
      const published = chain.node.app.executeBlock(chain.input([submitted[0]!]));
      chain.node.commit(published);
      assert.equal(published.txResults[0]?.code, 0, published.txResults[0]?.log);
    } finally {
      await node.close();
      await chain.close();
    }
  });
});

describe('cluster add-node and ca intermediate issue (files)', () => {
  let root: string;
  let clusterDir: string;
  const running: ValidatorNode[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ca-issue-'));
    clusterDir = path.join(root, 'cluster');
    const init = await runCli([
      ...clusterInitArgs(clusterDir, 1),
      '--no-discovery',
      '--no-dns',
      '--staking',
    ]);
    assert.equal(init.code, 0, init.err);
    // add-node has the running cluster issue the node's STOQ certificate through consensus.
    await startClusterNodes(running, clusterDir, ['node-1']);
  });

  after(async () => {
    for (const node of running) await node.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("add-node writes the node's intermediate key (0600), its request and the ca section", async () => {
    const added = await runCli([
      'cluster',
      'add-node',
      '--cluster',
      clusterDir,
      '--name',
      'node-9',
    ]);
    assert.equal(added.code, 0, added.err);
    assert.match(added.out, /CA intermediate key and request/);
    const nodeDir = path.join(clusterDir, 'node-9');
    assert.equal((await stat(path.join(nodeDir, 'ca-intermediate.key'))).mode & 0o777, 0o600);
    const config = await loadValidatorNodeConfig(path.join(nodeDir, 'config.json'), {});
    assert.equal(config.ca?.intermediateKeyFile, path.join(nodeDir, 'ca-intermediate.key'));
    assert.equal(config.ca?.trustBundleFile, path.join(clusterDir, 'ca', 'trust-bundle.json'));
    const { request, account } = await readIntermediateRequest(
      path.join(nodeDir, 'ca-intermediate-request.json'),
    );
    assert.equal(request.name, 'node-9');
    assert.equal(account.length, 32);
  });

  it('issues an intermediate the module accepts; a wrong passphrase is refused', async () => {
    const genesis = await readGenesisFile(path.join(clusterDir, 'genesis.json'));
    const bundle = genesisTrustBundle(genesis);
    const passphrase = (
      await readFile(path.join(clusterDir, 'operator', 'ca-root-passphrase.txt'), 'utf8')
    ).trim();
    await assert.rejects(
      issueNodeIntermediate({
        clusterDir,
        node: 'node-9',
        bundle,
        passphrase: 'not the passphrase at all',
        now: new Date(),
      }),
      (error: unknown) => error instanceof CliError && /CA_ROOT_KEY_MISMATCH/.test(error.message),
    );
    const issued = await issueNodeIntermediate({
      clusterDir,
      node: 'node-9',
      bundle,
      passphrase,
      now: new Date(),
    });
    assert.equal(toHex(issued.hash), toHex(intermediateHash(issued.certificate, issued.account)));
    const extended = checkValidatorIntermediate(bundle, {
      name: 'node-9',
      certificate: issued.certificate,
      endorsement: issued.endorsement,
      account: issued.account,
    });
    const entry = extended.validators.find((v) => v.name === 'node-9');
    const nodeKeys = await loadValidatorNodeConfig(
      path.join(clusterDir, 'node-9', 'config.json'),
      {},
    );
    assert.ok(entry !== undefined && nodeKeys.name === 'node-9');
    // Issuing writes nothing: the command writes the file once the proposal is committed.
    assert.equal(issued.certificateFile, path.join(clusterDir, 'node-9', 'ca-intermediate.pem'));
    await assert.rejects(stat(issued.certificateFile), { code: 'ENOENT' });
    await writeIssuedIntermediate(issued);
    assert.deepEqual(pemToDerList(await readFile(issued.certificateFile, 'utf8')), [
      issued.certificate,
    ]);
  });

  it('ca intermediate issue checks its options before touching the approved file', async () => {
    const pem = path.join(clusterDir, 'node-9', 'ca-intermediate.pem');
    await writeFile(pem, 'the intermediate the holders approved\n');
    const approved = await readFile(pem);
    const issue = (...extra: string[]) =>
      runCli([
        'ca',
        'intermediate',
        'issue',
        '--cluster',
        clusterDir,
        '--node',
        'node-9',
        ...extra,
      ]);
    const badTimeout = await issue('--timeout-ms', '5');
    assert.equal(badTimeout.code, 2, badTimeout.err);
    assert.match(badTimeout.err, /--timeout-ms must be an integer from 100 to 3600000, got "5"/);
    assert.deepEqual(await readFile(pem), approved);
    const badVia = await issue('--via', 'no-such-node');
    assert.equal(badVia.code, 2, badVia.err);
    assert.match(badVia.err, /no-such-node/);
    assert.deepEqual(await readFile(pem), approved);
    const badDays = await issue('--validity-days', '36501');
    assert.equal(badDays.code, 2, badDays.err);
    assert.deepEqual(await readFile(pem), approved);
    // Shorter than the module's minimum remaining validity (90 days) plus a day: refused.
    const shortDays = await issue('--validity-days', '30');
    assert.equal(shortDays.code, 2, shortDays.err);
    assert.match(shortDays.err, /validity-days must be an integer from 91 to 36500/);
    assert.deepEqual(await readFile(pem), approved);
    assert.deepEqual(
      (await readdir(path.join(clusterDir, 'node-9'))).filter((name) => name.endsWith('.tmp')),
      [],
    );
  });

  it('ca intermediate issue writes the file, atomically, once its proposal is committed', async () => {
    const pem = path.join(clusterDir, 'node-9', 'ca-intermediate.pem');
    const proposed = await runCli([
      'ca',
      'intermediate',
      'issue',
      '--cluster',
      clusterDir,
      '--node',
      'node-9',
      '--json',
    ]);
    assert.equal(proposed.code, 0, proposed.err);
    const { hash, account, certificateFile, height } = JSON.parse(proposed.out) as {
      hash: string;
      account: string;
      certificateFile: string;
      height: number;
    };
    assert.equal(certificateFile, pem);
    assert.ok(height > 0);
    const written = pemToDerList(await readFile(pem, 'utf8'));
    assert.equal(written.length, 1);
    assert.equal(toHex(intermediateHash(written[0] as Uint8Array, fromHex(account))), hash);
  });

  it('ca intermediate issue refuses a request whose account is not the node key', async () => {
    const added = await runCli([
      'cluster',
      'add-node',
      '--cluster',
      clusterDir,
      '--name',
      'node-8',
    ]);
    assert.equal(added.code, 0, added.err);
    const requestFile = path.join(clusterDir, 'node-8', 'ca-intermediate-request.json');
    const document = JSON.parse(await readFile(requestFile, 'utf8')) as { account: string };
    const tampered = toHex(makeSender().publicKey);
    await writeFile(requestFile, JSON.stringify({ ...document, account: tampered }));
    const genesis = await readGenesisFile(path.join(clusterDir, 'genesis.json'));
    await assert.rejects(
      issueNodeIntermediate({
        clusterDir,
        node: 'node-8',
        bundle: genesisTrustBundle(genesis),
        passphrase: 'never used: refused before the root keys',
        now: new Date(),
      }),
      (error: unknown) =>
        error instanceof CliError &&
        error.message.includes(
          `binds the intermediate to the key ${tampered}, not to node-8's node key`,
        ),
    );
    await assert.rejects(stat(path.join(clusterDir, 'node-8', 'ca-intermediate.pem')), {
      code: 'ENOENT',
    });
  });

  it('approve --for NAME approves only the certificate in DIR/NAME/ca-intermediate.pem', async () => {
    const pem = path.join(clusterDir, 'node-9', 'ca-intermediate.pem');
    const proposedPem = await readFile(pem);
    const approve = () =>
      runCli([
        'ca',
        'intermediate',
        'approve',
        '--cluster',
        clusterDir,
        '--node',
        'node-1',
        '--for',
        'node-9',
        '--json',
      ]);
    // Another intermediate for node-9 in the file than the one proposed (as after someone
    // else's proposal for the name): refused, nothing approved.
    const genesis = await readGenesisFile(path.join(clusterDir, 'genesis.json'));
    const passphrase = (
      await readFile(path.join(clusterDir, 'operator', 'ca-root-passphrase.txt'), 'utf8')
    ).trim();
    const other = await issueNodeIntermediate({
      clusterDir,
      node: 'node-9',
      bundle: genesisTrustBundle(genesis),
      passphrase,
      now: new Date(Date.now() + 120_000),
    });
    await writeIssuedIntermediate(other);
    const mismatch = await approve();
    assert.notEqual(mismatch.code, 0);
    assert.match(
      mismatch.err,
      /the open proposal for node-9 \([0-9a-f]{64}\) is not the intermediate in/,
    );
    await rm(pem);
    const missing = await approve();
    assert.notEqual(missing.code, 0);
    assert.match(missing.err, /cannot be read .*: use --hash/);
    // The proposed one: approved, and with the only holder's approval it takes effect.
    await writeFile(pem, proposedPem);
    const approved = await approve();
    assert.equal(approved.code, 0, approved.err);
    assert.equal((JSON.parse(approved.out) as { active: string | null }).active, 'node-9');
  });

  it('the commands refuse bad arguments before touching anything', async () => {
    const noNode = await runCli(['ca', 'intermediate', 'issue', '--cluster', clusterDir]);
    assert.equal(noNode.code, 2);
    assert.match(noNode.err, /--node NAME is required/);
    const both = await runCli([
      'ca',
      'intermediate',
      'approve',
      '--cluster',
      clusterDir,
      '--node',
      'node-1',
    ]);
    assert.notEqual(both.code, 0);
    assert.match(both.err, /exactly one of --hash HEX and --for NAME/);
    const help = await runCli(['ca', 'intermediate', 'list', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /pending/);
  });
});
