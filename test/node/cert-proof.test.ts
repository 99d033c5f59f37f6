import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { QueryRequest } from '../../src/consensus/app.js';
import { genesisValidatorSet } from '../../src/consensus/genesis.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import type { Block, BlockHeader } from '../../src/consensus/types.js';
import { encodeBlock, encodeQuorumCertificate } from '../../src/consensus/wire.js';
import { emptyRoot } from '../../src/crypto/merkle.js';
import {
  DEFAULT_PROOF_MAX_BLOCK_AGE_MS,
  describeCertificateProof,
  fetchCertificateProof,
  issuedWithoutProofError,
  StaleBlockError,
  type InclusionProofSource,
} from '../../src/node/cert-proof.js';
import { CliError } from '../../src/node/cli-error.js';
import { withCommittedRoots } from '../../src/node/verified-root.js';
import {
  caQuery,
  caRequestBody,
  certificateLogLeaf,
} from '../../src/trustchain/ca-module/index.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import { encodeCertificateChain, openCtLog, type CtLog } from '../../src/trustchain/ct/index.js';
import { makeTestChain, signCommit, type TestChain } from '../consensus/pos-fixture.js';
import { runCli } from '../helpers/cli.js';
import { generateKey } from '../trustchain/ca/fixtures.js';
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
 * `cert proof` (and `cert request|renew` when they write one) makes a proof "not revoked as of
 * block H" from the node's latest committed block H: it prints H's time and age, and refuses a
 * block older than the limit (default the nodes' `ca.maxBlockAgeSeconds` default, 300 s;
 * `--max-block-age`) — a node that is behind, or that answers an old height, would otherwise
 * hand out a stale proof.
 */
describe('cert proof: the age of the block the proof holds as of', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let chain: TestChain;
  let log: CtLog;
  let certificate: Uint8Array;
  const cleanups: (() => void)[] = [];

  before(async () => {
    fixture = await createCaFixture();
    node = await fixture.openCaNode();
    chain = await makeTestChain(4);
    const requested = node.block(
      [
        caTx(
          fixture.operator,
          caRequestBody({
            profile: 'service',
            csr: createCsr({ privateKey: generateKey('p256') }),
            dnsNames: [`a.${GRANTED_ZONE}`],
          }),
        ),
      ],
      'val-b',
    );
    assert.ok(requested.txResults.every((result) => result.code === 0));
    const height = node.node.store.blocks.latestHeight() as number;
    const published = await publication(fixture, node, height, 'val-b');
    node.block([publishTx(fixture, 'val-b', published.tx)]);
    certificate = published.certificates[0]!;
    const store = tempDatabase();
    cleanups.push(store.cleanup);
    log = openCtLog(store.db, { origin: 'test/ct/log' });
    // What ca-node.ts appends, block by block.
    for (let h = 1; h <= (node.node.store.blocks.latestHeight() as number); h++) {
      const batch = node.state().published(h);
      if (batch === null) continue;
      log.appendBatch(
        batch.serials.map((serial) => ({
          leaf: certificateLogLeaf(node.state().certificate(serial)!.der, batch.time),
          extraData: encodeCertificateChain([]),
        })),
        batch.time,
      );
    }
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) cleanup();
    await node?.close();
  });

  /**
   * A node answering from the CA fixture's state, whose latest block (the state's height) has
   * a header of time `blockTime` committed by the test chain's validators.
   */
  async function nodeWithLatestBlockAt(blockTime: number): Promise<NodeRpcClient> {
    const head = node.node.app.query(caQuery('treeHead', new Uint8Array(0)));
    const header: BlockHeader = {
      chainId: chain.genesis.chainId,
      height: head.height!,
      time: blockTime,
      parentHash: randomBytes(32),
      transactionsRoot: emptyRoot(),
      evidenceRoot: randomBytes(32),
      lastCommitHash: randomBytes(32),
      appStateRoot: head.stateRoot,
      validatorsHash: genesisValidatorSet(chain.genesis).hash,
      proposer: chain.validators[0]!.address,
      consensusProof: new Uint8Array(0),
    };
    const block: Block = { header, transactions: [], evidence: [], lastCommit: null };
    const commit = await signCommit(chain, block, { signers: chain.validators.slice(0, 3) });
    const client = {
      query: (request: QueryRequest) => Promise.resolve(node.node.app.query(request)),
      getBlock: (height: number) => {
        assert.equal(height, header.height);
        return Promise.resolve({
          height,
          block: encodeBlock(block),
          commit: encodeQuorumCertificate(commit),
        });
      },
    } as unknown as NodeRpcClient;
    return withCommittedRoots(client, chain.genesis, { falcon: chain.falcon });
  }

  const inclusionProof: InclusionProofSource = (hash, treeSize) => {
    const leafIndex = log.findLeafIndex(hash, treeSize);
    return Promise.resolve({
      leafIndex,
      treeSize,
      auditPath: log.inclusionProof(leafIndex, treeSize),
    });
  };

  const BLOCK = Date.parse('2026-03-01T12:00:00.000Z');

  function fetchAt(now: number, blockTime: number, maxBlockAgeMs?: number) {
    return nodeWithLatestBlockAt(blockTime).then((client) =>
      fetchCertificateProof({
        client,
        genesis: chain.genesis,
        certificate,
        inclusionProof,
        timeoutMs: 5_000,
        falcon: chain.falcon,
        now: () => now,
        ...(maxBlockAgeMs === undefined ? {} : { maxBlockAgeMs }),
      }),
    );
  }

  it('a fresh block: the proof says its time and age', async () => {
    const now = BLOCK + 12_000;
    const { verified } = await fetchAt(now, BLOCK);
    assert.equal(verified.checkpoint.blockTime, BLOCK);
    const [consensus] = describeCertificateProof(verified, now);
    assert.match(
      consensus!,
      /not revoked as of block (\d+) \(2026-03-01T12:00:00\.000Z, 12 s ago\); block \1 committed by /,
    );
  });

  it('a block older than the limit is refused, naming its age and the limit', async () => {
    assert.equal(DEFAULT_PROOF_MAX_BLOCK_AGE_MS, 300_000);
    await assert.rejects(
      fetchAt(BLOCK + 301_000, BLOCK),
      (error: unknown) =>
        error instanceof CliError &&
        error.exitCode === 1 &&
        /latest committed block \d+ is from 2026-03-01T12:00:00\.000Z, 5 min ago, older than 300 s: a proof "not revoked as of block \d+" would miss any later revocation .*--max-block-age SECONDS/.test(
          error.message,
        ),
    );
    // Just inside the limit is accepted; a larger limit accepts the older block.
    await fetchAt(BLOCK + 300_000, BLOCK);
    const { verified } = await fetchAt(BLOCK + 7_200_000, BLOCK, 3 * 3_600_000);
    assert.match(
      describeCertificateProof(verified, BLOCK + 7_200_000)[0]!,
      /\(2026-03-01T12:00:00\.000Z, 2 h ago\)/,
    );
  });

  it('cert proof, request, renew and verify take --max-block-age in whole seconds', async () => {
    const commands = [
      ['cert', 'proof', 'absent.pem'],
      ['cert', 'request', '--out', 'absent'],
      ['cert', 'renew', 'absent.pem', '--out', 'absent'],
      ['cert', 'verify', 'absent.pem', '--cluster', 'absent.json'],
    ];
    for (const command of commands) {
      for (const value of ['0', '1.5', 'soon', '315360001']) {
        const result = await runCli([...command, '--max-block-age', value]);
        assert.equal(result.code, 2, `${command.join(' ')}: ${result.err}`);
        assert.match(result.err, /--max-block-age must be an integer from 1 to \d+/);
      }
    }
  });

  it('after an issuance, a stale block refuses the proof saying the certificate WAS issued and written', async () => {
    const stale = await fetchAt(BLOCK + 301_000, BLOCK).then(
      () => assert.fail('a stale block made a proof'),
      (error: unknown) => error,
    );
    assert.ok(stale instanceof StaleBlockError);
    const issued = { cert: 'out/alice.pem', hint: ' --cluster c.json --node n1' };
    const refusal = issuedWithoutProofError(stale, issued, 'out/alice.proof.json');
    assert.equal(refusal.exitCode, 1);
    assert.match(
      refusal.message,
      /^the certificate WAS issued and written to out\/alice\.pem \(do not request it again\); only its proof is not written: the node's latest committed block \d+ is from 2026-03-01T12:00:00\.000Z, 5 min ago, older than 300 s/,
    );
    assert.match(
      refusal.message,
      /fetch the proof later with "hypermesh cert proof out\/alice\.pem --out out\/alice\.proof\.json --cluster c\.json --node n1" .*--max-block-age SECONDS/,
    );
    // Not the advice to the caller of "cert proof" (which a script would apply by requesting again).
    assert.doesNotMatch(refusal.message, /accept the age with --max-block-age/);
    const other = issuedWithoutProofError(new CliError('no log entry', 1), issued, 'p.json');
    assert.match(
      other.message,
      /^the certificate WAS issued and written to out\/alice\.pem \(do not request it again\); only its proof is not written: no log entry; fetch it with "hypermesh cert proof out\/alice\.pem --out p\.json --cluster c\.json --node n1"$/,
    );
  });
});
