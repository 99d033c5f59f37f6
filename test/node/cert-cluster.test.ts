import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseGenesisJson } from '../../src/consensus/genesis.js';
import { derToPem, pemToDerList } from '../../src/crypto/x509.js';
import { CA_FILES } from '../../src/node/ca-genesis.js';
import { checkCtInclusion, ctTimestamp, fetchQuorumCheckpoint } from '../../src/node/cert-tools.js';
import { caService, verifyCaGet } from '../../src/faces/ca-rpc.js';
import { leafHash, verifyInclusion } from '../../src/crypto/merkle.js';
import { parseTrustBundle } from '../../src/trustchain/ca/bundle.js';
import { encodeMerkleTreeLeaf } from '../../src/trustchain/ct/index.js';
import {
  loadClusterTarget,
  openOperatorParts,
  openOperatorSession,
} from '../../src/node/operator.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { findPublishedCertificate, CA_MODULE_NAME } from '../../src/trustchain/ca-module/index.js';
import { runCli, clusterInitArgs } from '../helpers/cli.js';
import { startClusterNodes } from '../helpers/nodes.js';
import { startFakeCtLog } from '../helpers/fake-ct-log.js';
import { assertOpensslVerifies } from '../helpers/openssl.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

const run = promisify(execFile);
const opensslPresent = await run('openssl', ['version']).then(
  () => true,
  () => false,
);
const skip = !opensslPresent && process.env.CI !== 'true' ? 'openssl is not installed' : false;

/**
 * The TrustChain CA end to end on a two-validator cluster in this process: `cluster init` runs
 * the CA ceremony, `cert request` gets a certificate that OpenSSL and `cert verify` accept, the
 * certificate is in every node's CT log with a valid inclusion proof, `cert revoke` revokes it and the issuing validator's CRL lists it.
 */
describe('TrustChain CA on a running cluster', { skip }, () => {
  let root: string;
  let dir: string;
  const nodes: ValidatorNode[] = [];
  /** How many bootstrap certificates `cluster init` listed in the genesis. */
  let genesisCertificateCount = 0;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-cert-'));
    dir = path.join(root, 'cluster');
    const init = await runCli([...clusterInitArgs(dir, 2), '--no-caesar']);
    assert.equal(init.code, 0, init.err);
    assert.match(init.out, /TrustChain CA/);
    const genesis = parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
    const section = genesis.app?.[CA_MODULE_NAME] as { genesisCertificates?: unknown[] };
    genesisCertificateCount = section.genesisCertificates?.length ?? 0;
    await startClusterNodes(nodes, dir, ['node-1', 'node-2']);
  });

  after(async () => {
    for (const node of nodes) await node.stop();
    await rm(root, { recursive: true, force: true });
  });

  /** Node `name`'s quorum-verified tree head (what `ct proof` checks a log's audit path against). */
  async function quorumHead(name: string) {
    const genesis = parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
    const session = await openOperatorSession(await loadClusterTarget(dir));
    try {
      return (await fetchQuorumCheckpoint(session.client(name), genesis)).verified;
    } finally {
      await session.close();
    }
  }

  it('cluster init: intermediates in node dirs, encrypted root keys, app.ca in the genesis', async () => {
    const genesis = parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
    assert.ok(genesis.app?.[CA_MODULE_NAME] !== undefined);
    for (const file of [
      path.join(dir, 'node-1', CA_FILES.intermediateKey),
      path.join(dir, 'operator', CA_FILES.rootEcdsaKey),
      path.join(dir, 'operator', CA_FILES.rootFalconKey),
      path.join(dir, 'operator', CA_FILES.passphrase),
    ]) {
      assert.equal((await stat(file)).mode & 0o777, 0o600, file);
    }
    const rootKey = await readFile(path.join(dir, 'operator', CA_FILES.rootEcdsaKey), 'utf8');
    assert.match(rootKey, /"encryption"|scrypt/i, 'the root key file is encrypted');
    for (const node of nodes) {
      assert.ok(node.ct !== null && node.ct.startsWith('http://127.0.0.1:'));
      assert.equal(node.trustBundleFile, path.join(dir, CA_FILES.dir, CA_FILES.bundle));
    }
  });

  it('cert request → a certificate OpenSSL and cert verify accept, in every CT log', async () => {
    const prefix = path.join(root, 'www');
    const requested = await withDeadline(
      runCli([
        'cert',
        'request',
        '--cluster',
        dir,
        '--dns',
        'www.hypermesh',
        '--ip',
        '127.0.0.1',
        '--out',
        prefix,
      ]),
      90_000,
      'cert request',
    );
    assert.equal(requested.code, 0, requested.err + requested.out);
    assert.match(requested.out, /published at height \d+ by node-\d/);
    assert.equal((await stat(`${prefix}.key`)).mode & 0o777, 0o600);

    await assertOpensslVerifies(dir, `${prefix}.pem`);
    const caDir = path.join(dir, CA_FILES.dir);
    const chainCheck = await run('openssl', [
      'verify',
      '-CAfile',
      path.join(caDir, CA_FILES.root),
      '-untrusted',
      `${prefix}.chain.pem`,
      `${prefix}.pem`,
    ]);
    assert.match(chainCheck.stdout, /: OK/);

    const bundle = path.join(caDir, CA_FILES.bundle);
    const verified = await runCli([
      'cert',
      'verify',
      `${prefix}.pem`,
      '--bundle',
      bundle,
      '--purpose',
      'serverAuth',
    ]);
    assert.equal(verified.code, 0, verified.out + verified.err);
    assert.match(verified.out, /^valid: issued by node-\d/);
    const shown = await runCli(['cert', 'show', `${prefix}.pem`, '--json']);
    assert.deepEqual(JSON.parse(shown.out).dnsNames, ['www.hypermesh']);

    const certificate = pemToDerList(await readFile(`${prefix}.pem`, 'utf8'))[0]!;
    const target = await loadClusterTarget(dir);
    const session = await openOperatorSession(target);
    try {
      const client = session.client('node-1');
      const serial = Uint8Array.from(Buffer.from(JSON.parse(shown.out).serial, 'hex'));
      const status = await findPublishedCertificate(
        (request) => client.query(request),
        Uint8Array.from(Buffer.from(JSON.parse(shown.out).issuance.txHash, 'hex')),
      );
      assert.equal(status.status, 'published');
      assert.ok(status.status === 'published');
      assert.deepEqual(status.serial, serial);
      const timestamp = await ctTimestamp(client, status.publishedAt);
      for (const node of nodes) {
        await waitForCondition(
          node.driver,
          'commit',
          () => node.driver.status().committedHeight >= status.publishedAt,
          `${node.config.name} commits the publication`,
          30_000,
        );
        const head = await quorumHead(node.config.name);
        const inclusion = await checkCtInclusion(node.ct as string, certificate, timestamp, head);
        assert.equal(inclusion.treeSize, genesisCertificateCount + 1);
      }
      const proof = await runCli([
        'ct',
        'proof',
        `${prefix}.pem`,
        '--url',
        nodes[1]!.ct as string,
        '--cluster',
        dir,
      ]);
      assert.equal(proof.code, 0, proof.out + proof.err);
      assert.match(
        proof.out,
        /^included: leaf \d+ of tree size \d+, .*the quorum-signed tree head of block \d+\n$/,
      );

      // The quorum-signed tree head: fetched and verified, then checked offline and against
      // both nodes' signed checkpoints (the same root at the same size).
      const checkpointFile = path.join(root, 'ct-checkpoint.json');
      const sth = await runCli(['ct', 'sth', '--cluster', dir, '--out', checkpointFile]);
      assert.equal(sth.code, 0, sth.out + sth.err);
      // The genesis bootstrap certificates (height 1), then this one.
      const size = genesisCertificateCount + 1;
      assert.match(
        sth.out,
        new RegExp(`quorum-signed tree head of .*/ct/log\n {2}tree size {3}${size}\n`),
      );
      const ctVerified = await runCli([
        'ct',
        'verify',
        checkpointFile,
        '--cluster',
        dir,
        ...nodes.flatMap((node) => ['--url', node.ct as string]),
      ]);
      assert.equal(ctVerified.code, 0, ctVerified.out + ctVerified.err);
      assert.match(ctVerified.out, /^valid: quorum-signed tree head/);
      assert.equal(
        ctVerified.out.match(new RegExp(`same root at tree size ${size} `, 'g'))?.length,
        2,
        ctVerified.out,
      );

      // OCSP at the issuing validator's node: good; another node answers unauthorized.
      const issuingNode = nodes.find((node) => node.config.name === status.issuer)!;
      const otherNode = nodes.find((node) => node.config.name !== status.issuer)!;
      const bundleFile = path.join(caDir, CA_FILES.bundle);
      const parsedBundle = parseTrustBundle(await readFile(bundleFile, 'utf8'));
      const issuerPem = path.join(root, 'issuer.pem');
      await writeFile(
        issuerPem,
        derToPem(parsedBundle.validators.find((v) => v.name === status.issuer)!.certificate),
      );
      const ocsp = (url: string) =>
        run('openssl', [
          'ocsp',
          '-issuer',
          issuerPem,
          '-cert',
          `${prefix}.pem`,
          '-url',
          url,
          '-CAfile',
          path.join(caDir, CA_FILES.root),
          '-resp_text',
        ]).then(
          ({ stdout, stderr }) => stdout + stderr,
          (error: { stdout?: string; stderr?: string }) =>
            `${error.stdout ?? ''}${error.stderr ?? ''}`,
        );
      const good = await ocsp(issuingNode.ct as string);
      assert.match(good, /Response verify OK/);
      assert.match(good, /www\.pem: good/);
      assert.match(await ocsp(otherNode.ct as string), /unauthorized/i);

      // hypermesh.trustchain.ca.v1: validate, get, and the log's read API.
      const operator = await openOperatorParts(target);
      try {
        const rpc = operator.parts.endpoint.client(caService, 'node-1');
        const validated = await rpc.call('validate', { certificate, purpose: 'serverAuth' });
        assert.equal(validated.valid, true, `${validated.reason}: ${validated.message}`);
        assert.equal(validated.issuer, status.issuer);
        assert.ok(validated.transparency !== null);
        const got = await rpc.call('get', { serial });
        const proven = await verifyCaGet(got.answers, { serial });
        assert.ok(proven.status === 'published');
        assert.deepEqual(proven.certificate, certificate);
        const sth = await rpc.call('sth', {});
        const hash = leafHash(
          encodeMerkleTreeLeaf({ timestamp, entry: { type: 'x509', certificate } }),
        );
        const inclusion = await rpc.call('inclusionProof', {
          leafHash: hash,
          treeSize: sth.treeSize,
        });
        assert.ok(
          verifyInclusion(
            hash,
            inclusion.leafIndex,
            sth.treeSize,
            inclusion.auditPath,
            sth.rootHash,
          ),
        );
        const consistency = await rpc.call('consistencyProof', {
          first: 1,
          second: sth.treeSize,
        });
        assert.ok(Array.isArray(consistency.proof));
        if (sth.treeSize === 1) assert.deepEqual(consistency.proof, []);
      } finally {
        await operator.close();
      }
      const onCluster = await runCli([
        'cert',
        'verify',
        `${prefix}.pem`,
        '--cluster',
        dir,
        '--purpose',
        'serverAuth',
      ]);
      assert.equal(onCluster.code, 0, onCluster.out + onCluster.err);
      assert.match(
        onCluster.out,
        /^node-1: valid: not revoked, published at height \d+, leaf \d+ of \d+ in its CT log \(the consensus tree head at height (\d+)\); as of height \1 \(\S+, \d+ s ago\)$/m,
      );

      const revoked = await runCli([
        'cert',
        'revoke',
        `${prefix}.pem`,
        '--reason',
        'superseded',
        '--cluster',
        dir,
      ]);
      assert.equal(revoked.code, 0, revoked.out + revoked.err);
      const after = await findPublishedCertificate(
        (request) => client.query(request),
        Uint8Array.from(Buffer.from(JSON.parse(shown.out).issuance.txHash, 'hex')),
      );
      assert.ok(after.status === 'published' && after.revocation?.reason === 4);

      // The issuing validator's CRL lists it; OpenSSL then refuses the certificate.
      const issuing = nodes.find((node) => node.config.name === status.issuer)!;
      const revokedAt = Number(/at height (\d+)/.exec(revoked.out)?.[1]);
      await waitForCondition(
        issuing.driver,
        'commit',
        () => issuing.driver.status().committedHeight >= revokedAt,
        `${status.issuer} commits the revocation`,
        30_000,
      );
      const crl = new Uint8Array(await (await fetch(`${issuing.ct}/crl`)).arrayBuffer());
      const crlFile = path.join(root, 'issuer.crl.pem');
      await writeFile(crlFile, derToPem(crl, 'X509 CRL'));
      const refused = await run('openssl', [
        'verify',
        '-crl_check',
        '-CRLfile',
        crlFile,
        '-CAfile',
        path.join(caDir, CA_FILES.root),
        '-untrusted',
        path.join(caDir, CA_FILES.intermediates),
        `${prefix}.pem`,
      ]).then(
        () => 'accepted',
        (error: { stdout?: string; stderr?: string }) =>
          `${error.stdout ?? ''}${error.stderr ?? ''}`,
      );
      assert.match(refused, /certificate revoked/);

      // OCSP says revoked (reason, time) right after the revocation's block.
      const revokedOcsp = await ocsp(issuing.ct as string);
      assert.match(revokedOcsp, /Response verify OK/);
      assert.match(revokedOcsp, /www\.pem: revoked/);
      assert.match(revokedOcsp, /Reason: superseded/);

      const refusedOnCluster = await runCli([
        'cert',
        'verify',
        `${prefix}.pem`,
        '--bundle',
        bundleFile,
        '--cluster',
        dir,
        '--node',
        status.issuer,
      ]);
      assert.equal(refusedOnCluster.code, 1, refusedOnCluster.out + refusedOnCluster.err);
      assert.match(refusedOnCluster.out, /^valid: issued by/m);
      assert.match(
        refusedOnCluster.out,
        /invalid: revoked at height \d+ \(superseded\) \(revoked\); as of height \d+ \(\S+, \d+ s ago\)$/m,
      );

      // The CA metrics moved on the issuing node.
      assert.ok(issuing.metricsUrl !== null);
      const scraped = await (await fetch(`${issuing.metricsUrl}`)).text();
      const value = (pattern: RegExp): number => Number(pattern.exec(scraped)?.[1] ?? 'NaN');
      assert.ok(value(/hypermesh_ca_issuance_total\{outcome="accepted"\} (\d+)/) >= 1, scraped);
      assert.ok(value(/hypermesh_ca_issuance_total\{outcome="published"\} (\d+)/) >= 1);
      assert.ok(value(/hypermesh_ca_issuance_latency_seconds_count (\d+)/) >= 1);
      assert.ok(value(/hypermesh_ct_log_size (\d+)/) >= 1);
      assert.equal(value(/hypermesh_ca_revocations_total\{reason="superseded"\} (\d+)/), 1);
      const first = await (await fetch(`${nodes[0]!.metricsUrl}`)).text();
      assert.match(first, /hypermesh_ct_proof_requests_total\{kind="inclusion"\} [1-9]/);
      assert.match(first, /hypermesh_ct_proof_requests_total\{kind="sth"\} [1-9]/);
    } finally {
      await session.close();
    }
  });

  it('genesis bootstrap certificates: in the CT log at height 1, verifiable, revocable by the operator', async () => {
    // node-K.pem and acme-https.pem of each node, then operator.pem.
    assert.equal(genesisCertificateCount, 5);
    const genesis = parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
    const file = (name: string): string => path.join(dir, name);
    const der = async (name: string): Promise<Uint8Array> =>
      pemToDerList(await readFile(file(name), 'utf8'))[0]!;
    const stoqIdentity = await der('node-2/node-2.pem');
    for (const node of nodes) {
      const inclusion = await checkCtInclusion(
        node.ct as string,
        stoqIdentity,
        genesis.genesisTime,
        await quorumHead(node.config.name),
      );
      assert.equal(inclusion.leafIndex, 2);
      assert.ok(inclusion.treeSize >= genesisCertificateCount);
      // The local log agrees with the consensus tree head: no split view was counted.
      const scraped = await (await fetch(`${node.metricsUrl}`)).text();
      assert.match(scraped, /^hypermesh_ct_split_view_total 0$/m);
    }
    const proof = await runCli([
      'ct',
      'proof',
      file('node-2/node-2.pem'),
      '--url',
      nodes[0]!.ct as string,
      '--cluster',
      dir,
    ]);
    assert.equal(proof.code, 0, proof.out + proof.err);
    assert.match(proof.out, /^included: leaf 2 of tree size \d+/);

    // A log at another URL serving a made-up tree that holds node-2.pem (self-consistent: its
    // audit path verifies against its own get-sth) is refused: `ct proof` verifies against the
    // quorum-signed root at the quorum's size. A malformed body and a log that is behind are
    // clear errors too.
    const head = await quorumHead('node-1');
    const certLeaf = leafHash(
      encodeMerkleTreeLeaf({
        timestamp: genesis.genesisTime,
        entry: { type: 'x509', certificate: stoqIdentity },
      }),
    );
    const madeUp = [
      randomBytes(32),
      randomBytes(32),
      certLeaf,
      ...Array.from({ length: head.size + 5 }, () => randomBytes(32)),
    ];
    const fakeProof = (url: string) =>
      runCli(['ct', 'proof', file('node-2/node-2.pem'), '--url', url, '--cluster', dir]);
    for (const [options, pattern] of [
      [{ leafHashes: madeUp }, /does not verify against the quorum tree head \(size \d+, root/],
      [
        { leafHashes: madeUp, proof: { leaf_index: 2 } },
        /get-proof-by-hash\?.*: malformed answer: body\.audit_path: /,
      ],
      [
        { leafHashes: madeUp.slice(0, head.size - 1) },
        new RegExp(
          `is behind the quorum tree head \\(size ${head.size - 1} < ${head.size}\\); retry`,
        ),
      ],
    ] as const) {
      const fake = await startFakeCtLog(options);
      try {
        const refused = await fakeProof(fake.url);
        assert.equal(refused.code, 1, refused.out + refused.err);
        assert.equal(refused.out, '');
        assert.match(refused.err, pattern);
        assert.ok(refused.err.includes(fake.url), refused.err);
      } finally {
        await fake.close();
      }
    }

    const onCluster = await runCli(['cert', 'verify', file('node-1/node-1.pem'), '--cluster', dir]);
    assert.equal(onCluster.code, 0, onCluster.out + onCluster.err);
    assert.match(
      onCluster.out,
      /^node-1: valid: not revoked, published at height 1 \(genesis bootstrap certificate\), leaf 0 of \d+ in its CT log \(the consensus tree head at height (\d+)\); as of height \1 \(\S+, \d+ s ago\)$/m,
    );
    const offline = await runCli([
      'cert',
      'verify',
      file('node-1/node-1.pem'),
      '--bundle',
      file(path.join(CA_FILES.dir, CA_FILES.bundle)),
    ]);
    assert.equal(offline.code, 1, offline.out + offline.err);
    assert.match(offline.out, /^genesis bootstrap certificate: chain verified; no batch proof/);

    // The operator revokes node-2's ACME HTTPS certificate (nothing here connects to it).
    const acme = 'node-2/acme-https.pem';
    const revoked = await runCli([
      'cert',
      'revoke',
      file(acme),
      '--reason',
      'cessationOfOperation',
      '--cluster',
      dir,
    ]);
    assert.equal(revoked.code, 0, revoked.out + revoked.err);
    const revokedAt = Number(/at height (\d+)/.exec(revoked.out)?.[1]);
    const issuing = nodes[1]!;
    await waitForCondition(
      issuing.driver,
      'commit',
      () => issuing.driver.status().committedHeight >= revokedAt,
      'node-2 commits the revocation',
      30_000,
    );
    const serial = (await runCli(['cert', 'show', file(acme), '--json'])).out;
    const serialHex = String(JSON.parse(serial).serial).toUpperCase();
    const crlFile = path.join(root, 'node-2.crl.pem');
    const crl = new Uint8Array(await (await fetch(`${issuing.ct}/crl`)).arrayBuffer());
    await writeFile(crlFile, derToPem(crl, 'X509 CRL'));
    const crlText = (await run('openssl', ['crl', '-in', crlFile, '-noout', '-text'])).stdout;
    assert.match(crlText, new RegExp(`Serial Number: 0*${serialHex}`));
    const issuerPem = path.join(root, 'node-2-intermediate.pem');
    await writeFile(issuerPem, derToPem(pemToDerList(await readFile(file(acme), 'utf8'))[1]!));
    const ocsp = await run('openssl', [
      'ocsp',
      '-issuer',
      issuerPem,
      '-cert',
      file(acme),
      '-url',
      issuing.ct as string,
      '-CAfile',
      file(path.join(CA_FILES.dir, CA_FILES.root)),
    ]).then(
      ({ stdout, stderr }) => stdout + stderr,
      (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
    );
    assert.match(ocsp, /acme-https\.pem: revoked/);
    const refused = await runCli([
      'cert',
      'verify',
      file(acme),
      '--cluster',
      dir,
      '--node',
      'node-2',
    ]);
    assert.equal(refused.code, 1, refused.out + refused.err);
    assert.match(
      refused.out,
      /invalid: revoked at height \d+ \(cessationOfOperation\) \(revoked\); as of height \d+ \(\S+, \d+ s ago\)$/m,
    );
  });

  it('cert request writes a certificate proof: consensus and CT inclusion verified offline', async () => {
    const prefix = path.join(root, 'proven');
    const requested = await withDeadline(
      runCli(['cert', 'request', '--cluster', dir, '--dns', 'proven.hypermesh', '--out', prefix]),
      90_000,
      'cert request',
    );
    assert.equal(requested.code, 0, requested.err + requested.out);
    assert.match(requested.out, /consensus: published at height \d+ by node-\d/);
    assert.match(requested.out, new RegExp(`wrote ${prefix}\\.proof\\.json`));
    const bundle = path.join(dir, CA_FILES.dir, CA_FILES.bundle);
    const genesisFile = path.join(dir, 'genesis.json');
    const proofFile = `${prefix}.proof.json`;
    const verify = (proof: string, cert = `${prefix}.pem`, genesis = genesisFile) =>
      runCli(['cert', 'verify', cert, '--bundle', bundle, '--proof', proof, '--genesis', genesis]);

    // Offline, nothing stopped: chain, batch, then the commit and the log inclusion.
    const ok = await verify(proofFile);
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.match(ok.out, /^valid: issued by node-\d/);
    assert.match(
      ok.out,
      /valid: consensus: published at height \d+ by node-\d, not revoked as of block \d+ \(\d{4}-\d\d-\d\dT[\d:.]+Z, \d+ (s|min) ago\); block \d+ committed by node-/,
    );
    assert.match(ok.out, /valid: transparency: leaf \d+ \(timestamp \d+\) of tree size \d+/);
    assert.doesNotMatch(ok.out, /not checked offline/);
    // Without --proof the output names the checks it did not do; --proof needs the genesis.
    const bare = await runCli(['cert', 'verify', `${prefix}.pem`, '--bundle', bundle]);
    assert.equal(bare.code, 0, bare.out + bare.err);
    assert.match(
      bare.out,
      /not checked offline: the consensus proof .* and its transparency-log inclusion/,
    );
    const noGenesis = await runCli(['cert', 'verify', `${prefix}.pem`, '--proof', proofFile]);
    assert.equal(noGenesis.code, 2);
    assert.match(noGenesis.err, /--proof needs --genesis FILE/);

    const original = JSON.parse(await readFile(proofFile, 'utf8')) as {
      checkpoint: { commit: string };
      log: { leafIndex: number; auditPath: string[] };
    };
    const tampered = async (name: string, edit: (json: typeof original) => void) => {
      const copy = structuredClone(original);
      edit(copy);
      const file = path.join(root, `${name}.proof.json`);
      await writeFile(file, JSON.stringify(copy));
      return verify(file);
    };
    const refusedWith = (result: { code: number; out: string; err: string }, code: string) => {
      assert.equal(result.code, 1, result.out + result.err);
      assert.match(result.out, new RegExp(`invalid: proof .*\\[${code}\\]`), result.out);
    };
    const { decodeQuorumCertificate, encodeQuorumCertificate } =
      await import('../../src/consensus/wire.js');
    refusedWith(
      await tampered('commit', (json) => {
        const commit = decodeQuorumCertificate(Buffer.from(json.checkpoint.commit, 'hex'));
        const [first, ...rest] = commit.precommits;
        const signature = Uint8Array.from(first!.signature);
        signature[0]! ^= 1;
        json.checkpoint.commit = Buffer.from(
          encodeQuorumCertificate({ ...commit, precommits: [{ ...first!, signature }, ...rest] }),
        ).toString('hex');
      }),
      'CERT_PROOF_COMMIT_INVALID',
    );
    assert.ok(original.log.auditPath.length > 0, 'the log holds the genesis certificates too');
    refusedWith(
      await tampered('path', (json) => {
        const hash = json.log.auditPath[0]!;
        json.log.auditPath[0] = (hash[0] === '0' ? '1' : '0') + hash.slice(1);
      }),
      'CERT_PROOF_NOT_INCLUDED',
    );
    refusedWith(
      await tampered('index', (json) => void (json.log.leafIndex ^= 1)),
      'CERT_PROOF_NOT_INCLUDED',
    );
    refusedWith(
      await tampered('garbage', (json) => void (json.log.auditPath = ['zz'])),
      'CERT_PROOF_MALFORMED',
    );

    // Another certificate's proof: `cert proof` fetches one for a genesis bootstrap certificate,
    // which it completes offline (published at height 1, in the log).
    const nodeCert = path.join(dir, 'node-1', 'node-1.pem');
    const otherProof = path.join(root, 'node-1.proof.json');
    const fetched = await runCli([
      'cert',
      'proof',
      nodeCert,
      '--cluster',
      dir,
      '--out',
      otherProof,
    ]);
    assert.equal(fetched.code, 0, fetched.out + fetched.err);
    assert.match(fetched.out, /consensus: published at height 1 by /);
    const genesisOk = await verify(otherProof, nodeCert);
    assert.equal(genesisOk.code, 0, genesisOk.out + genesisOk.err);
    assert.match(genesisOk.out, /^genesis bootstrap certificate: chain verified/);
    refusedWith(await verify(otherProof), 'CERT_PROOF_OTHER_CERTIFICATE');
    // The genesis alone (its app.ca bundle) is enough; a certificate the cluster never
    // published gets no proof.
    const genesisOnly = await runCli([
      'cert',
      'verify',
      `${prefix}.pem`,
      '--proof',
      proofFile,
      '--genesis',
      genesisFile,
    ]);
    assert.equal(genesisOnly.code, 0, genesisOnly.out + genesisOnly.err);
    assert.match(genesisOnly.out, /valid: transparency: /);
    const unpublished = await runCli([
      'cert',
      'proof',
      path.join(dir, CA_FILES.dir, CA_FILES.root),
      '--cluster',
      dir,
      '--out',
      path.join(root, 'root.proof.json'),
    ]);
    assert.equal(unpublished.code, 1, unpublished.out + unpublished.err);
    assert.match(unpublished.err, /has published no certificate with serial/);
    await assert.rejects(stat(path.join(root, 'root.proof.json')));

    // A genesis with another validator set (one power changed) refuses the commit.
    const genesisJson = JSON.parse(await readFile(genesisFile, 'utf8')) as {
      validators: { power: number }[];
    };
    genesisJson.validators[0]!.power += 1;
    const otherGenesis = path.join(root, 'other-genesis.json');
    await writeFile(otherGenesis, JSON.stringify(genesisJson));
    refusedWith(
      await verify(proofFile, `${prefix}.pem`, otherGenesis),
      'CERT_PROOF_VALIDATOR_SET_CHANGED',
    );
  });

  it('cert request refuses a name the operator holds no grant for', async () => {
    const refused = await runCli([
      'cert',
      'request',
      '--cluster',
      dir,
      '--dns',
      'www.example.org',
      '--out',
      path.join(root, 'nope'),
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.err + refused.out, /CA_POLICY_REFUSED/);
  });
});
