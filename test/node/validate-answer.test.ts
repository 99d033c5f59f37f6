import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { QueryRequest } from '../../src/consensus/app.js';
import { toHex } from '../../src/crypto/bytes.js';
import { leafHash, nodeHash } from '../../src/crypto/merkle.js';
import { createCaService, type CaService } from '../../src/node/ca-service.js';
import { checkValidateAnswer, describeValidateAnswer } from '../../src/node/cert-tools.js';
import { CliError } from '../../src/node/cli-error.js';
import { createLogger } from '../../src/node/log.js';
import type { CaValidateResponse } from '../../src/faces/ca-rpc.js';
import {
  caRequestBody,
  certificateLogLeaf,
  treeHeadRoot,
} from '../../src/trustchain/ca-module/index.js';
import type { CaAnswerCheck } from '../../src/trustchain/ca-module/client.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import { encodeCertificateChain, openCtLog, type CtLog } from '../../src/trustchain/ct/index.js';
import { BLOCK_TIME, generateKey } from '../trustchain/ca/fixtures.js';
import {
  GRANTED_ZONE,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from '../trustchain/ca-module/fixture.js';
import { tempDatabase } from '../trustchain/ct/fixtures.js';

/**
 * `cert verify --cluster` does not take a node's word for the CT log entry of a `valid` answer
 * (`checkValidateAnswer`): the entry must be there (an honest node answers `not_in_log`
 * otherwise), its audit path must lead from the certificate's leaf to the answer's root, and
 * that root must be the consensus tree head's proven at the answers' height; an entry at a
 * smaller tree size (a log behind) is printed as the node's claim, not as checked, and one at a
 * larger size is refused. The node answers at the consensus head's size once its log holds it,
 * so an honest answer is checked. The answers' block must be at most --max-block-age old: an
 * answer from before a revocation proves "not revoked" as well as a fresh one.
 */

function requestBody(name: string): Uint8Array {
  return caRequestBody({
    profile: 'service',
    csr: createCsr({ privateKey: generateKey('p256') }),
    dnsNames: [name],
  });
}

describe('cert verify --cluster: the CT log entry of a valid answer', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let log: CtLog;
  let service: CaService;
  let certificates: Uint8Array[];
  let publishedTime: number;
  const cleanups: (() => void)[] = [];
  const checked: string[] = [];
  const accept: CaAnswerCheck = async (request, response) => {
    checked.push(`${request.path}@${response.height}`);
  };
  const query = (request: QueryRequest) => node.node.app.query(request);
  /** The committed time of block `height`: the time the fixture executes it at. */
  const blockTime = (height: number) => Promise.resolve(BLOCK_TIME + height * 1000);
  /** No age limit: the tests of the CT log entry; the age has its own. */
  const anyAge = () => ({
    blockTime,
    now: BLOCK_TIME + 600_000,
    maxBlockAgeMs: Number.MAX_SAFE_INTEGER,
  });

  before(async () => {
    fixture = await createCaFixture();
    node = await fixture.openCaNode();
    const requested = node.block(
      [
        caTx(fixture.operator, requestBody(`a.${GRANTED_ZONE}`)),
        caTx(fixture.operator, requestBody(`b.${GRANTED_ZONE}`)),
      ],
      'val-b',
    );
    assert.ok(requested.txResults.every((result) => result.code === 0));
    const height = node.node.store.blocks.latestHeight() as number;
    const published = await publication(fixture, node, height, 'val-b');
    node.block([publishTx(fixture, 'val-b', published.tx)]);
    const publishedAt = node.node.store.blocks.latestHeight() as number;
    publishedTime = node.state().published(publishedAt)!.time;
    certificates = [...published.certificates];
    const store = tempDatabase();
    cleanups.push(store.cleanup);
    log = openCtLog(store.db, { origin: 'test/ct/log' });
    // What ca-node.ts appends for the publishing block: the consensus head has these two.
    log.appendBatch(
      certificates.map((der) => ({
        leaf: certificateLogLeaf(der, publishedTime),
        extraData: encodeCertificateChain([]),
      })),
      publishedTime,
    );
    assert.equal(node.state().treeHead().range.size, 2);
    service = createCaService({
      ca: fixture.config,
      store: node.node.store,
      state: { get: (key) => node.node.store.state.get(key) },
      query,
      submit: () => Promise.reject(new Error('no mempool in this test')),
      log,
      rpc: null,
      registry: new Registry(),
      logger: createLogger({ node: 'test' }, () => undefined, 'error'),
      falcon: fixture.ca.falcon,
      now: () => BLOCK_TIME + 600_000,
      // The fixture's blocks carry its own clock; freshness has its own tests.
      maxBlockAgeMs: Number.MAX_SAFE_INTEGER,
    });
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) cleanup();
    await node?.close();
  });

  /** Certificate A's honest answer, with its `transparency` replaced. */
  function answerWith(
    transparency: CaValidateResponse['transparency'],
    answer = service.validate(certificates[0]!),
  ): CaValidateResponse {
    assert.equal(answer.valid, true, `${answer.reason}: ${answer.message}`);
    return { ...answer, transparency };
  }

  it('an honest answer is checked against the consensus tree head at its height', async () => {
    const answer = service.validate(certificates[1]!);
    assert.equal(answer.valid, true, `${answer.reason}: ${answer.message}`);
    checked.length = 0;
    const result = (await checkValidateAnswer(answer, certificates[1]!, accept, query, anyAge()))!;
    assert.deepEqual(result.transparency, {
      leafIndex: 1,
      treeSize: 2,
      status: 'committed',
      reason: null,
    });
    const height = result.height;
    assert.deepEqual(checked.slice(-2), [`ca/published@${height}`, `ca/tree-head@${height}`]);
    const { line, valid } = describeValidateAnswer('node-1', answer, result);
    assert.equal(valid, true);
    assert.match(
      line,
      new RegExp(
        `^node-1: valid: not revoked, published at height \\d+, leaf 1 of 2 in its CT log \\(the consensus tree head at height ${height}\\); as of height ${height} \\(${new Date(BLOCK_TIME + height * 1000).toISOString()}, \\d+ min ago\\)$`,
      ),
    );
  });

  it('a log ahead of the commit still answers at the consensus size: checked', async () => {
    // Another log whose latest head is past the consensus head (it appended a later block).
    const store = tempDatabase();
    cleanups.push(store.cleanup);
    const ahead = openCtLog(store.db, { origin: 'test/ct/log' });
    const leaves = certificates.map((der) => ({
      leaf: certificateLogLeaf(der, publishedTime),
      extraData: encodeCertificateChain([]),
    }));
    ahead.appendBatch(leaves, publishedTime);
    ahead.appendBatch([leaves[0]!], publishedTime + 1000);
    const aheadService = createCaService({
      ca: fixture.config,
      store: node.node.store,
      state: { get: (key) => node.node.store.state.get(key) },
      query,
      submit: () => Promise.reject(new Error('no mempool in this test')),
      log: ahead,
      rpc: null,
      registry: new Registry(),
      logger: createLogger({ node: 'test' }, () => undefined, 'error'),
      falcon: fixture.ca.falcon,
      now: () => BLOCK_TIME + 600_000,
      maxBlockAgeMs: Number.MAX_SAFE_INTEGER,
    });
    const answer = aheadService.validate(certificates[0]!);
    assert.equal(answer.transparency?.treeSize, 2);
    const result = await checkValidateAnswer(answer, certificates[0]!, accept, query, anyAge());
    assert.equal(result?.transparency?.status, 'committed');
  });

  it('valid without a log entry is refused: an honest node answers not_in_log', async () => {
    await assert.rejects(
      checkValidateAnswer(answerWith(null), certificates[0]!, accept, query, anyAge()),
      /answered valid without the certificate's CT log entry/,
    );
  });

  it("a made-up tree of the consensus head's size is refused", async () => {
    const leaf = leafHash(certificateLogLeaf(certificates[0]!, publishedTime));
    const sibling = new Uint8Array(randomBytes(32));
    const made = answerWith({
      treeSize: 2,
      leafIndex: 0,
      auditPath: [sibling],
      rootHash: nodeHash(leaf, sibling),
      checkpoint: null,
    });
    await assert.rejects(
      checkValidateAnswer(made, certificates[0]!, accept, query, anyAge()),
      /CT log root at tree size 2 is not the consensus tree head's at height \d+/,
    );
  });

  it('an audit path that does not lead to the stated root is refused', async () => {
    const honest = service.validate(certificates[0]!).transparency!;
    const root = Uint8Array.from(honest.rootHash);
    root[0]! ^= 1;
    await assert.rejects(
      checkValidateAnswer(
        answerWith({ ...honest, rootHash: root }),
        certificates[0]!,
        accept,
        query,
        anyAge(),
      ),
      /inclusion proof \(leaf 0 of 2\) does not lead from this certificate's entry to its root/,
    );
    // Another certificate's entry (leaf 1) does not prove certificate A's.
    const other = service.validate(certificates[1]!).transparency!;
    await assert.rejects(
      checkValidateAnswer(answerWith(other), certificates[0]!, accept, query, anyAge()),
      /does not lead from this certificate's entry/,
    );
  });

  it('an entry at a smaller tree size (a log behind) is printed as the node claim, not as checked', async () => {
    // Certificate A alone: the tree of size 1 before certificate B's entry.
    const leaf = leafHash(certificateLogLeaf(certificates[0]!, publishedTime));
    const answer = answerWith({
      treeSize: 1,
      leafIndex: 0,
      auditPath: [],
      rootHash: leaf,
      checkpoint: null,
    });
    const result = (await checkValidateAnswer(answer, certificates[0]!, accept, query, anyAge()))!;
    assert.equal(result.transparency?.status, 'claimed');
    const { line } = describeValidateAnswer('node-1', answer, result);
    assert.match(
      line,
      /; the node claims leaf 0 of 1 in its CT log, not checked against the consensus tree head \(its log answered at tree size 1, the consensus tree head at height \d+ has size 2\); as of height \d+ \([^)]+\)$/,
    );
    assert.doesNotMatch(line, /, leaf 0 of 1 in its CT log/);
  });

  it('an entry at a larger tree size than the consensus head is refused', async () => {
    const leaf = leafHash(certificateLogLeaf(certificates[0]!, publishedTime));
    const head = node.state().treeHead();
    const extra = new Uint8Array(randomBytes(32));
    // A tree of size 3 whose first two leaves are the consensus head's: no honest node
    // answers it (it answers at the committed size once its log holds it).
    const answer = answerWith({
      treeSize: 3,
      leafIndex: 0,
      auditPath: [leafHash(certificateLogLeaf(certificates[1]!, publishedTime)), extra],
      rootHash: nodeHash(treeHeadRoot(head), extra),
      checkpoint: null,
    });
    assert.equal(
      toHex(nodeHash(leaf, answer.transparency!.auditPath[0]!)),
      toHex(treeHeadRoot(head)),
    );
    await assert.rejects(
      checkValidateAnswer(answer, certificates[0]!, accept, query, anyAge()),
      (error: unknown) =>
        error instanceof CliError &&
        error.exitCode === 1 &&
        /CT log answered at tree size 3, larger than the consensus tree head's 2 at height \d+/.test(
          error.message,
        ),
    );
  });

  it('an answer whose block is older than the limit is refused: it predates any later revocation', async () => {
    // What the node answered at this height; it can replay it after a revocation commits.
    const answer = service.validate(certificates[1]!);
    assert.equal(answer.valid, true, `${answer.reason}: ${answer.message}`);
    const height = answer.consensus!.answers[0]!.height!;
    const time = await blockTime(height);
    const at = (now: number, maxBlockAgeMs = 300_000) =>
      checkValidateAnswer(answer, certificates[1]!, accept, query, {
        blockTime,
        now,
        maxBlockAgeMs,
      });
    await assert.rejects(
      at(time + 301_000),
      (error: unknown) =>
        error instanceof CliError &&
        error.exitCode === 1 &&
        new RegExp(
          `answer holds as of block ${height}, from ${new Date(time).toISOString()}, 5 min ago, older than 300 s: it would not show a later revocation .*--max-block-age SECONDS`,
        ).test(error.message),
    );
    // Just inside the limit is accepted, and the line says the block's time and age.
    const result = (await at(time + 300_000))!;
    assert.deepEqual([result.blockTime, result.checkedAt], [time, time + 300_000]);
    const fresh = describeValidateAnswer('node-1', answer, (await at(time + 12_000))!);
    assert.equal(fresh.valid, true);
    assert.match(
      fresh.line,
      new RegExp(`; as of height ${height} \\(${new Date(time).toISOString()}, 12 s ago\\)$`),
    );
    // A larger limit accepts the older block.
    await at(time + 7_200_000, 3 * 3_600_000);
  });

  it("the node's message and reason are printed escaped", () => {
    const answer: CaValidateResponse = {
      valid: false,
      reason: 'x\u009b2J',
      message: 'evil\u001b[31m\u202eloc',
      serial: null,
      issuer: null,
      revocation: null,
      transparency: null,
      consensus: null,
    };
    const { line, valid } = describeValidateAnswer('node-1', answer, null);
    assert.equal(valid, false);
    assert.equal(line, 'node-1: invalid: evil\\u001b[31m\\u202eloc (x\\u009b2J)');
  });
});
