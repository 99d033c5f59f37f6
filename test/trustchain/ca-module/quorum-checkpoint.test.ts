import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { genesisToJson, genesisValidatorSet } from '../../../src/consensus/genesis.js';
import type { Block, BlockHeader, QuorumCertificate } from '../../../src/consensus/types.js';
import { toBase64, toHex } from '../../../src/crypto/bytes.js';
import { emptyRoot, leafHash, rootFromLeafHashes } from '../../../src/crypto/merkle.js';
import { startCtHttpServer, type CtHttpServer } from '../../../src/faces/ct-http.js';
import { localLogMismatch } from '../../../src/node/ca-node.js';
import { checkServedLog } from '../../../src/node/cert-tools.js';
import { CliError } from '../../../src/node/cli-error.js';
import {
  QuorumCheckpointErrorCode,
  caQuery,
  caRequestBody,
  certificateLogLeaf,
  ctLogOrigin,
  parseQuorumCheckpoint,
  quorumCheckpointToJson,
  verifyQuorumCheckpoint,
  type QuorumCheckpoint,
  type VerifiedQuorumCheckpoint,
} from '../../../src/trustchain/ca-module/index.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import {
  addCosignatures,
  encodeCertificateChain,
  openCtLog,
  signCheckpointEd25519,
  type CheckpointVerifierSet,
  type CtLog,
} from '../../../src/trustchain/ct/index.js';
import { makeTestChain, signCommit, type TestChain } from '../../consensus/pos-fixture.js';
import { runCli } from '../../helpers/cli.js';
import { generateKey } from '../ca/fixtures.js';
import { tempDatabase } from '../ct/fixtures.js';
import {
  GRANTED_ZONE,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from './fixture.js';

/**
 * The consensus tree head (`ca/ct/head`): equal to the local log every node builds, and a
 * quorum-signed checkpoint of it — the ca module's proven state under a header the validators'
 * commit signs — verified offline, refused when any part is tampered with, and compared with a
 * node's served checkpoint (split view, consistency).
 */

function requestBody(name: string): Uint8Array {
  return caRequestBody({
    profile: 'service',
    csr: createCsr({ privateKey: generateKey('p256') }),
    dnsNames: [name],
  });
}

/** What ca-node.ts appends for block `height`: `pub/<height>` in order, the block time. */
function appendLikeTheNode(log: CtLog, node: CaNode, height: number): void {
  const published = node.state().published(height);
  if (published === null) return;
  log.appendBatch(
    published.serials.map((serial) => ({
      leaf: certificateLogLeaf(node.state().certificate(serial)!.der, published.time),
      extraData: encodeCertificateChain([]),
    })),
    published.time,
  );
}

function flipHex(hex: string, at: number): string {
  const digit = hex[at] === '0' ? '1' : '0';
  return hex.slice(0, at) + digit + hex.slice(at + 1);
}

function expectCode(code: QuorumCheckpointErrorCode, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.equal((error as { code?: string }).code, code, (error as Error).message);
    if (pattern !== undefined) assert.match((error as Error).message, pattern);
    return true;
  };
}

describe('quorum-signed tree head of the CT log', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let chain: TestChain;
  let checkpoint: QuorumCheckpoint;
  let verified: VerifiedQuorumCheckpoint;
  const leaves: Uint8Array[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    fixture = await createCaFixture();
    node = await fixture.openCaNode();
    chain = await makeTestChain(4);
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await node?.close();
  });

  it('the ca module appends every publication: its root is the local log root at every height', async () => {
    const local = tempDatabase();
    cleanups.push(local.cleanup);
    const log = openCtLog(local.db, { origin: 'test/ct/log' });
    const empty = node.state().treeHead();
    assert.equal(empty.range.size, 0);
    assert.equal(localLogMismatch(log, empty), null);

    // Two blocks of requests, the first published by two publications in one block.
    const first = node.block(
      [
        caTx(fixture.operator, requestBody(`a.${GRANTED_ZONE}`)),
        caTx(fixture.operator, requestBody(`b.${GRANTED_ZONE}`)),
      ],
      'val-b',
    );
    assert.ok(first.txResults.every((result) => result.code === 0));
    const h1 = node.node.store.blocks.latestHeight() as number;
    const second = node.block([caTx(fixture.operator, requestBody(`c.${GRANTED_ZONE}`))], 'val-a');
    assert.ok(second.txResults.every((result) => result.code === 0));
    const h2 = h1 + 1;
    const p1 = await publication(fixture, node, h1, 'val-b');
    const p2 = await publication(fixture, node, h2, 'val-a');
    node.block([publishTx(fixture, 'val-b', p1.tx), publishTx(fixture, 'val-a', p2.tx)]);
    const h3 = h2 + 1;
    for (let height = 1; height <= h3; height++) appendLikeTheNode(log, node, height);

    const head = node.state().treeHead();
    assert.equal(head.range.size, 3);
    assert.equal(head.height, h3);
    const time = node.state().published(h3)!.time;
    assert.equal(head.time, time);
    for (const certificate of [...p1.certificates, ...p2.certificates]) {
      leaves.push(leafHash(certificateLogLeaf(certificate, time)));
    }
    assert.equal(log.size, 3);
    assert.equal(localLogMismatch(log, head), null, 'local log agrees with the consensus head');
    assert.equal(toHex(log.rootAt(3)), toHex(rootFromLeafHashes(leaves)));

    // A local log with one entry too many, or other leaves, is reported with both roots.
    const extra = tempDatabase();
    cleanups.push(extra.cleanup);
    const longer = openCtLog(extra.db, { origin: 'test/ct/log' });
    for (let height = 1; height <= h3; height++) appendLikeTheNode(longer, node, height);
    longer.appendBatch(
      [
        {
          leaf: certificateLogLeaf(p1.certificates[0]!, time + 1),
          extraData: encodeCertificateChain([]),
        },
      ],
      time + 1,
    );
    const mismatch = localLogMismatch(longer, head);
    assert.equal(mismatch?.localSize, 4);
    assert.equal(mismatch?.consensusSize, 3);
    assert.equal(mismatch?.localRoot, toHex(rootFromLeafHashes(leaves)));
  });

  /** Block `height`'s header over the fixture's state root, committed by the test chain. */
  async function committedHeader(
    stateRoot: Uint8Array,
    height: number,
  ): Promise<{ header: BlockHeader; commit: QuorumCertificate }> {
    const header: BlockHeader = {
      chainId: chain.genesis.chainId,
      height,
      time: chain.genesis.genesisTime + height * 1000,
      parentHash: randomBytes(32),
      transactionsRoot: emptyRoot(),
      evidenceRoot: randomBytes(32),
      lastCommitHash: randomBytes(32),
      appStateRoot: stateRoot,
      validatorsHash: genesisValidatorSet(chain.genesis).hash,
      proposer: chain.validators[0]!.address,
      consensusProof: new Uint8Array(0),
    };
    const commit = await signCommit(chain, { header } as unknown as Block, {
      signers: chain.validators.slice(0, 3),
    });
    return { header, commit };
  }

  it('a checkpoint verifies offline against the genesis, also after its JSON round trip', async () => {
    const answer = node.node.app.query(caQuery('treeHead', new Uint8Array(0)));
    assert.ok(answer.proof !== undefined && answer.height !== null);
    const { header, commit } = await committedHeader(answer.stateRoot, answer.height);
    checkpoint = { header, commit, value: answer.value, proof: answer.proof };
    verified = verifyQuorumCheckpoint(checkpoint, chain.genesis, chain.falcon);
    assert.equal(verified.size, 3);
    assert.equal(toHex(verified.root), toHex(rootFromLeafHashes(leaves)));
    assert.equal(verified.origin, ctLogOrigin(chain.genesis.chainId));
    assert.equal(verified.signers.length, 3);
    assert.equal(verified.falconSignatures, 3);

    const { checkpoint: parsed, claims } = parseQuorumCheckpoint(
      quorumCheckpointToJson(checkpoint),
    );
    const again = verifyQuorumCheckpoint(parsed, chain.genesis, chain.falcon, claims);
    assert.equal(toHex(again.root), toHex(verified.root));
    assert.equal(claims.treeSize, 3);
  });

  it('tampered checkpoints are refused with the step that fails', async () => {
    const json = JSON.parse(quorumCheckpointToJson(checkpoint)) as Record<string, unknown>;
    const verifyText = (edit: (copy: Record<string, unknown>) => void) => {
      const copy = structuredClone(json);
      edit(copy);
      const { checkpoint: parsed, claims } = parseQuorumCheckpoint(JSON.stringify(copy));
      return verifyQuorumCheckpoint(parsed, chain.genesis, chain.falcon, claims);
    };
    // Claims: size and root that the proven head does not have.
    assert.throws(
      () => verifyText((c) => void (c.treeSize = 4)),
      expectCode(QuorumCheckpointErrorCode.CLAIM_MISMATCH, /treeSize: the checkpoint claims 4/),
    );
    assert.throws(
      () => verifyText((c) => void (c.rootHash = flipHex(c.rootHash as string, 0))),
      expectCode(QuorumCheckpointErrorCode.CLAIM_MISMATCH, /rootHash/),
    );
    // The stored value (another size and edge) under the same proof.
    const head = node.state().treeHead();
    const { encodeTreeHead, appendCertificates } =
      await import('../../../src/trustchain/ca-module/index.js');
    const forged = encodeTreeHead(appendCertificates(head, [new Uint8Array([1])], 99, 1));
    assert.throws(
      () => verifyText((c) => void (c.value = toHex(forged))),
      expectCode(QuorumCheckpointErrorCode.INVALID_STATE_PROOF),
    );
    assert.throws(
      () =>
        verifyText(
          (c) => void (c.proof = flipHex(c.proof as string, (c.proof as string).length - 1)),
        ),
      expectCode(QuorumCheckpointErrorCode.INVALID_STATE_PROOF),
    );
    // The header: another state root is another block, which the commit does not certify.
    assert.throws(
      () =>
        verifyText((c) => {
          const header = c.header as Record<string, string>;
          header.appStateRoot = flipHex(header.appStateRoot!, 5);
        }),
      expectCode(QuorumCheckpointErrorCode.INVALID_COMMIT, /another block/),
    );
    // The commit: a forged signature, and too few signers.
    const { decodeQuorumCertificate, encodeQuorumCertificate } =
      await import('../../../src/consensus/wire.js');
    const withCommit = (commit: QuorumCertificate) => (c: Record<string, unknown>) =>
      void (c.commit = toHex(encodeQuorumCertificate(commit)));
    const commit = decodeQuorumCertificate(Buffer.from(json.commit as string, 'hex'));
    const [firstVote, ...rest] = commit.precommits;
    const badSignature = { ...firstVote!, signature: randomBytes(64) };
    assert.throws(
      () => verifyText(withCommit({ ...commit, precommits: [badSignature, ...rest] })),
      expectCode(QuorumCheckpointErrorCode.INVALID_COMMIT, /rejected/),
    );
    const badFalcon = { ...firstVote!, pqSignature: randomBytes(1200) };
    assert.throws(
      () => verifyText(withCommit({ ...commit, precommits: [badFalcon, ...rest] })),
      expectCode(QuorumCheckpointErrorCode.INVALID_COMMIT),
    );
    assert.throws(
      () => verifyText(withCommit({ ...commit, precommits: commit.precommits.slice(0, 2) })),
      expectCode(QuorumCheckpointErrorCode.INVALID_COMMIT, /no more than 2\/3/),
    );
    // Another chain's genesis, and garbage.
    const other = await makeTestChain(1);
    assert.throws(
      () =>
        verifyQuorumCheckpoint(
          checkpoint,
          { ...chain.genesis, chainId: 'other-chain' },
          chain.falcon,
        ),
      expectCode(QuorumCheckpointErrorCode.WRONG_CHAIN, /not "other-chain"/),
    );
    assert.throws(
      () =>
        verifyQuorumCheckpoint(
          checkpoint,
          { ...other.genesis, chainId: chain.genesis.chainId },
          chain.falcon,
        ),
      expectCode(QuorumCheckpointErrorCode.VALIDATOR_SET_CHANGED),
    );
    assert.throws(
      () => parseQuorumCheckpoint('{'),
      expectCode(QuorumCheckpointErrorCode.MALFORMED),
    );
    assert.throws(
      () => verifyText((c) => void (c.version = 2)),
      expectCode(QuorumCheckpointErrorCode.MALFORMED, /version/),
    );
  });

  /** A node's CT log serving a checkpoint signed by validator 0's identity key. */
  async function servedLog(certificates: readonly Uint8Array[], time: number): Promise<string> {
    const store = tempDatabase();
    const origin = ctLogOrigin(chain.genesis.chainId);
    const log = openCtLog(store.db, { origin });
    const { treeHead, checkpointBody } = log.appendBatch(
      certificates.map((der) => ({
        leaf: certificateLogLeaf(der, time),
        extraData: encodeCertificateChain([]),
      })),
      time,
    );
    const signer = chain.validators[0]!;
    const name = `${origin}/${signer.name}`;
    const set: CheckpointVerifierSet = {
      origin,
      cosigners: [{ name, publicKey: signer.publicKey, weight: 1 }],
    };
    log.addCheckpointSignatures(
      treeHead.treeSize,
      addCosignatures(checkpointBody, [
        signCheckpointEd25519(checkpointBody, name, signer.privateKey),
      ]),
      set,
    );
    const server: CtHttpServer = await startCtHttpServer({
      log,
      host: '127.0.0.1',
      port: 0,
      roots: () => [],
      registry: new Registry(),
    });
    cleanups.push(async () => {
      await server.close();
      store.cleanup();
    });
    return server.url;
  }

  it('split view: a node signing another root for the same size is reported with both heads', async () => {
    const certificates = [0, 1, 2].map((index) => {
      const serial = node.state().published(verified.appendedAt)!.serials[index]!;
      return node.state().certificate(serial)!.der;
    });
    const honest = await servedLog(certificates, verified.timestamp);
    const same = await checkServedLog(honest, verified, chain.genesis);
    assert.equal(same.outcome, 'same', same.lines.join('\n'));

    // Same certificates, another timestamp: another root at size 3.
    const forked = await servedLog(certificates, verified.timestamp + 1);
    const split = await checkServedLog(forked, verified, chain.genesis);
    assert.equal(split.outcome, 'split-view');
    const text = split.lines.join('\n');
    assert.match(text, /two different signed tree heads for tree size 3/);
    assert.match(text, new RegExp(toBase64(verified.root).replace(/[+/]/g, '.')));
    assert.match(text, /signed by node-1/);
    assert.match(text, /— hypermesh-pos-test\/ct\/log\/node-1 /, 'the served note is printed');

    // A longer log that extends the quorum's head is consistent; one that rewrote it is not.
    const extended = await servedLog([...certificates, certificates[0]!], verified.timestamp);
    assert.equal((await checkServedLog(extended, verified, chain.genesis)).outcome, 'consistent');
    const rewritten = await servedLog([certificates[1]!, ...certificates], verified.timestamp);
    assert.equal(
      (await checkServedLog(rewritten, verified, chain.genesis)).outcome,
      'inconsistent',
    );
    const shorter = await servedLog(certificates.slice(0, 2), verified.timestamp);
    assert.equal((await checkServedLog(shorter, verified, chain.genesis)).outcome, 'behind');

    // A checkpoint no genesis validator signed proves nothing.
    const stranger = await makeTestChain(1);
    const unsignedFor = { ...verified };
    await assert.rejects(
      checkServedLog(forked, unsignedFor, stranger.genesis),
      (error: unknown) =>
        error instanceof CliError &&
        /no signature by a genesis validator|does not verify/.test(error.message),
    );

    // The CLI: offline verification, then the comparison with both nodes.
    const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-ctqc-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const genesisFile = path.join(dir, 'genesis.json');
    const checkpointFile = path.join(dir, 'checkpoint.json');
    await writeFile(genesisFile, genesisToJson(chain.genesis));
    await writeFile(checkpointFile, quorumCheckpointToJson(checkpoint));
    const ok = await runCli([
      'ct',
      'verify',
      checkpointFile,
      '--genesis',
      genesisFile,
      '--url',
      honest,
    ]);
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.match(ok.out, /^valid: quorum-signed tree head of hypermesh-pos-test\/ct\/log/);
    assert.match(ok.out, /same root at tree size 3/);
    const bad = await runCli([
      'ct',
      'verify',
      checkpointFile,
      '--genesis',
      genesisFile,
      '--url',
      forked,
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /split view: two different signed tree heads for tree size 3/);
    const tampered = JSON.parse(quorumCheckpointToJson(checkpoint)) as { treeSize: number };
    tampered.treeSize = 2;
    await writeFile(checkpointFile, JSON.stringify(tampered));
    const refused = await runCli(['ct', 'verify', checkpointFile, '--genesis', genesisFile]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.out,
      /^invalid: .*treeSize: the checkpoint claims 2, the proven tree head has 3 \[CT_QC_CLAIM_MISMATCH\]/,
    );
  });

  it("a split view prints what the node serves escaped: no terminal controls of the node's making", async () => {
    const certificates = [0, 1, 2].map((index) => {
      const serial = node.state().published(verified.appendedAt)!.serials[index]!;
      return node.state().certificate(serial)!.der;
    });
    const forked = await servedLog(certificates, verified.timestamp + 1);
    const note = await (await fetch(`${forked}/checkpoint`)).text();
    // A node serving that note, and a get-sth of CSI (C1) sequences and a right-to-left override.
    const hostile = '{"x":"\u009b2J\u009b31m\u202eEVIL\u2066"}';
    const server = createServer((request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(request.url === '/checkpoint' ? note : hostile);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const split = await checkServedLog(`http://127.0.0.1:${port}`, verified, chain.genesis);
    assert.equal(split.outcome, 'split-view');
    const text = split.lines.join('\n');
    assert.match(text, /served get-sth: .*\\u009b2J\\u009b31m\\u202eEVIL\\u2066/);
    assert.doesNotMatch(text, /[\u0080-\u009f\u202a-\u202e\u2066-\u2069]/u);
  });
});
