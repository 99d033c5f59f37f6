import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import { toHex } from '../../src/crypto/bytes.js';
import { CT_LOG_FILE, ctOrigin, startCaNode, type CaNode } from '../../src/node/ca-node.js';
import { createLogger } from '../../src/node/log.js';
import type { ValidatorNodeConfig } from '../../src/node/node-config.js';
import { openDatabase } from '../../src/storage/database.js';
import { caRequestBody, treeHeadRoot } from '../../src/trustchain/ca-module/index.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import {
  encodeCertificateChain,
  encodeMerkleTreeLeaf,
  openCtLog,
} from '../../src/trustchain/ct/index.js';
import { makeSender } from '../consensus/application/fixture.js';
import { CHAIN_ID, generateKey } from '../trustchain/ca/fixtures.js';
import {
  GRANTED_ZONE,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode as CaModuleNode,
} from '../trustchain/ca-module/fixture.js';

/**
 * The node's check of its CT log against the consensus tree head (src/node/ca-node.ts): an
 * honest log agrees and `hypermesh_ct_split_view_total` stays 0; a log file holding an entry the
 * chain never published is reported once (error line with both roots, counter 1), and the node
 * goes on appending.
 */
describe('ca-node: local CT log against the consensus tree head', () => {
  let fixture: CaFixture;
  let chain: CaModuleNode;
  let root: string;

  before(async () => {
    fixture = await createCaFixture();
    chain = await fixture.openCaNode();
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ca-node-'));
    chain.block(
      [
        caTx(
          fixture.operator,
          caRequestBody({
            profile: 'service',
            csr: createCsr({ privateKey: generateKey('p256') }),
            dnsNames: [`n.${GRANTED_ZONE}`],
          }),
        ),
      ],
      'val-b',
    );
    const height = chain.node.store.blocks.latestHeight() as number;
    const { tx } = await publication(fixture, chain, height, 'val-b');
    chain.block([publishTx(fixture, 'val-b', tx)]);
  });

  after(async () => {
    await chain?.close();
    await rm(root, { recursive: true, force: true });
  });

  async function observer(
    name: string,
  ): Promise<{ node: CaNode; registry: Registry; lines: string[] }> {
    const registry = new Registry();
    const lines: string[] = [];
    await mkdir(path.join(root, name), { recursive: true });
    const node = await startCaNode({
      config: {
        name,
        dataDir: path.join(root, name),
        ca: null,
        ct: null,
      } as unknown as ValidatorNodeConfig,
      genesis: { chainId: CHAIN_ID } as GenesisDocument,
      ca: fixture.config,
      state: { get: (key) => chain.node.store.state.get(key) },
      query: (request) => chain.node.app.query(request),
      identity: {
        ed25519: makeSender().privateKey,
        falconPublicKey: new Uint8Array(0),
        falconSecretKey: new Uint8Array(0),
      },
      submit: () => Promise.resolve({ ok: true }),
      registry,
      logger: createLogger({ node: name }, (line) => void lines.push(line), 'error'),
    });
    return { node, registry, lines };
  }

  async function splitViews(registry: Registry): Promise<number> {
    const metric = await registry.getSingleMetric('hypermesh_ct_split_view_total')?.get();
    return metric?.values[0]?.value ?? Number.NaN;
  }

  it('an honest log equals the consensus head; no split view is counted', async () => {
    const { node, registry, lines } = await observer('honest');
    try {
      node.committed(chain.node.store.blocks.latestHeight() as number);
      const head = chain.state().treeHead();
      assert.equal(head.range.size, 1);
      assert.equal(node.log.size, 1);
      assert.equal(toHex(node.log.rootAt(1)), toHex(treeHeadRoot(head)));
      assert.equal(await splitViews(registry), 0);
      assert.deepEqual(lines, []);
    } finally {
      await node.close();
    }
  });

  it('a log with an entry the chain never published is reported once, and the node keeps going', async () => {
    const dataDir = path.join(root, 'damaged');
    await mkdir(dataDir, { recursive: true });
    const db = openDatabase(path.join(dataDir, CT_LOG_FILE));
    openCtLog(db, { origin: ctOrigin(CHAIN_ID) }).appendBatch(
      [
        {
          leaf: encodeMerkleTreeLeaf({
            timestamp: 1,
            entry: { type: 'x509', certificate: new Uint8Array([0x30, 0x00]) },
          }),
          extraData: encodeCertificateChain([]),
        },
      ],
      1,
    );
    db.close();
    const { node, registry, lines } = await observer('damaged');
    try {
      const height = chain.node.store.blocks.latestHeight() as number;
      node.committed(height);
      assert.equal(node.log.size, 2, 'the published certificate is still appended');
      assert.equal(await splitViews(registry), 1);
      assert.equal(lines.length, 1);
      const line = JSON.parse(lines[0] as string) as Record<string, unknown>;
      assert.equal(line.msg, 'ct log differs from the quorum-signed consensus tree head');
      assert.equal(line.localSize, 2);
      assert.equal(line.consensusSize, 1);
      assert.equal(line.consensusRoot, toHex(treeHeadRoot(chain.state().treeHead())));
      // The same difference at the next commit is not counted again.
      node.committed(height);
      assert.equal(await splitViews(registry), 1);
      assert.equal(lines.length, 1);
    } finally {
      await node.close();
    }
  });
});
