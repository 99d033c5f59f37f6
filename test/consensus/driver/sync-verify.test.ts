import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BlockRefusal,
  blockSizeError,
  checkAndExecute,
  readSyncedBlocks,
  verifySyncedBlock,
  type BlockCheckDeps,
} from '../../../src/consensus/driver/block-checks.js';
import { loadChain } from '../../../src/consensus/driver/chain.js';
import { DriverErrorCode } from '../../../src/consensus/driver/errors.js';
import type { SyncedBlock } from '../../../src/consensus/driver/ports.js';
import { ConsensusError, ConsensusErrorCode } from '../../../src/consensus/errors.js';
import { genesisHash, genesisHeightContext } from '../../../src/consensus/genesis.js';
import { blockHash, evidenceRoot } from '../../../src/consensus/messages.js';
import type { DuplicateVoteEvidence } from '../../../src/consensus/types.js';
import { nextHeightContext } from '../../../src/consensus/height-context.js';
import { pqSignatureVerifier } from '../../../src/consensus/verify.js';
import {
  decodeBlock,
  decodeQuorumCertificate,
  encodeBlock,
  encodeQuorumCertificate,
} from '../../../src/consensus/wire.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { openStore, type NodeStore } from '../../../src/storage/index.js';
import {
  falcon,
  makeGenesisDocument,
  makeIdentities,
  tempDir,
  TestCluster,
  type ValidatorIdentity,
} from './fixtures.js';
import { KvTestApp, TestProofs } from './test-app.js';

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

describe('verifySyncedBlock and loadChain', () => {
  let identities: ValidatorIdentity[];
  let genesis: ReturnType<typeof makeGenesisDocument>;
  let served: SyncedBlock[];
  before(async () => {
    // One validator decides alone: a quick source of real committed blocks.
    identities = await makeIdentities(1);
    genesis = makeGenesisDocument(identities);
    const cluster = new TestCluster(identities, genesis);
    try {
      await cluster.startAll();
      await cluster.waitForHeight(3);
      served = readSyncedBlocks(cluster.node(0).store, 1, 3);
    } finally {
      await cluster.close();
    }
  });

  function fresh(name: string): { store: NodeStore; deps: BlockCheckDeps } {
    const store = openStore(join(dir, `${name}.sqlite`));
    return {
      store,
      deps: {
        chainId: genesis.chainId,
        verifier: pqSignatureVerifier(falcon),
        requirePq: true,
        app: new KvTestApp(store),
        proofs: new TestProofs(),
        store,
        maxBlockTxs: genesis.consensus.maxBlockTxs,
        maxBlockBytes: genesis.consensus.maxBlockBytes,
      },
    };
  }

  it('accepts the committed chain block by block and stores it', () => {
    const { store, deps } = fresh('good');
    let context = genesisHeightContext(genesis);
    assert.equal(served.length, 3);
    for (const synced of served) {
      const verified = verifySyncedBlock(deps, context, synced);
      store.saveBlock({
        block: {
          height: synced.height,
          hash: verified.hash,
          parentHash: verified.block.header.parentHash,
          timeMs: verified.block.header.time,
          bytes: synced.block,
        },
        commit: synced.commit,
        evidence: [],
        stateChanges: [...verified.result.changes],
        stateRoot: verified.result.stateRoot,
      });
      context = nextHeightContext(context, verified.block, verified.commit);
    }
    const position = loadChain(genesis, store);
    assert.equal(position.committedHeight, 3);
    assert.equal(position.context.height, 4);
    assert.deepEqual(position.context.schedule.priorities, context.schedule.priorities);
    store.close();
  });

  it('refuses blocks out of order, undecodable, tampered, with another commit or proof', () => {
    const { store, deps } = fresh('bad');
    const context = genesisHeightContext(genesis);
    const [first, second] = served as [SyncedBlock, SyncedBlock];
    const block = decodeBlock(first.block);
    const refused = (synced: SyncedBlock, code: DriverErrorCode, pattern?: RegExp) =>
      assert.throws(
        () => verifySyncedBlock(deps, context, synced),
        (error: Error & { code?: string }) =>
          error.code === code && (pattern === undefined || pattern.test(error.message)),
      );
    refused(second, DriverErrorCode.SYNC_OUT_OF_ORDER);
    refused(
      { ...first, block: Uint8Array.of(1, 2, 3) },
      DriverErrorCode.SYNC_INVALID_BLOCK,
      /decoded/,
    );
    const tampered = encodeBlock({ ...block, transactions: [Uint8Array.of(1)] });
    refused({ ...first, block: tampered }, DriverErrorCode.SYNC_INVALID_BLOCK, /transactions root/);
    refused({ ...first, commit: second.commit }, DriverErrorCode.SYNC_INVALID_BLOCK, /commit/);
    const commit = decodeQuorumCertificate(first.commit);
    const noQuorum = encodeQuorumCertificate({ ...commit, precommits: [] });
    refused({ ...first, commit: noQuorum }, DriverErrorCode.SYNC_INVALID_BLOCK, /commit/);
    const otherProof = encodeBlock({
      ...block,
      header: { ...block.header, consensusProof: sha256(Uint8Array.of(9)) },
    });
    refused({ ...first, block: otherProof }, DriverErrorCode.SYNC_INVALID_BLOCK, /commit/);
    const refusingProofs: BlockCheckDeps = {
      ...deps,
      proofs: {
        build: () => new Uint8Array(0),
        checkProposal: () => new ConsensusError(ConsensusErrorCode.INVALID_BLOCK, 'no plot'),
      },
    };
    assert.throws(
      () => verifySyncedBlock(refusingProofs, context, first),
      /PROOF_INVALID: no plot/,
    );
    store.close();
  });

  it('checks the commit before the block: a block the commit does not name costs no signature', () => {
    const { store, deps } = fresh('commit-first');
    let verified = 0;
    const counting: BlockCheckDeps = {
      ...deps,
      verifier: {
        ...deps.verifier,
        ed25519: (signature, message, key) => {
          verified++;
          return deps.verifier.ed25519(signature, message, key);
        },
      },
    };
    // Height 2: checkBlock would verify the block's last commit before anything else.
    const [first, second] = served as [SyncedBlock, SyncedBlock];
    const context = nextHeightContext(
      genesisHeightContext(genesis),
      decodeBlock(first.block),
      decodeQuorumCertificate(first.commit),
    );
    const block = decodeBlock(second.block);
    const commit = decodeQuorumCertificate(second.commit);
    // Another block (its body matching its header) carrying evidence, beside the genuine commit.
    const { pqSignature: _dropped, ...vote } = commit.precommits[0]!;
    const evidence: DuplicateVoteEvidence[] = [
      { voteA: { ...vote, type: 'prevote' }, voteB: { ...vote, type: 'prevote', blockHash: null } },
    ];
    const other = {
      ...block,
      evidence,
      header: { ...block.header, evidenceRoot: evidenceRoot(evidence) },
    };
    assert.notDeepEqual(blockHash(other.header), commit.blockHash);
    assert.throws(
      () => verifySyncedBlock(counting, context, { ...second, block: encodeBlock(other) }),
      (error: Error & { code?: string }) =>
        error.code === DriverErrorCode.SYNC_INVALID_BLOCK &&
        /commit: commit is for another block/.test(error.message),
    );
    assert.equal(verified, 0);
    store.close();
  });

  it('refuses a block over the genesis transaction count or byte limit before anything else', () => {
    const { store, deps } = fresh('size');
    const context = genesisHeightContext(genesis);
    const block = decodeBlock((served[0] as SyncedBlock).block);
    const txs = [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5)];
    const big = { ...block, transactions: txs };
    assert.equal(blockSizeError({ maxBlockTxs: 2, maxBlockBytes: 5 }, big), undefined);
    assert.match(
      blockSizeError({ maxBlockTxs: 1, maxBlockBytes: 5 }, big)?.message ?? '',
      /has 2 transactions; the limit is 1/,
    );
    assert.match(
      blockSizeError({ maxBlockTxs: 2, maxBlockBytes: 4 }, big)?.message ?? '',
      /has 5 bytes of transactions; the limit is 4/,
    );
    const outcome = checkAndExecute({ ...deps, maxBlockTxs: 1 }, context, big);
    assert.equal(outcome.ok, false);
    assert.equal(!outcome.ok && outcome.refusal, BlockRefusal.TOO_LARGE);
    assert.equal(store.blocks.latestHeight(), null);
    store.close();
  });

  it('refuses stores that do not hold this chain', () => {
    const garbage = openStore(join(dir, 'garbage.sqlite'));
    const stateRoot = garbage.state.computeRoot([]);
    garbage.saveBlock({
      block: {
        height: 1,
        hash: sha256(Uint8Array.of(1)),
        parentHash: genesisHash(genesis),
        timeMs: 1,
        bytes: Uint8Array.of(1, 2, 3),
      },
      commit: Uint8Array.of(4),
      evidence: [],
      stateChanges: [],
      stateRoot,
    });
    assert.throws(() => loadChain(genesis, garbage), {
      code: DriverErrorCode.STORE_INCONSISTENT,
    });
    garbage.close();

    const [first] = served as [SyncedBlock];
    const block = decodeBlock(first.block);
    const otherChain = openStore(join(dir, 'other-chain.sqlite'));
    otherChain.saveBlock({
      block: {
        height: 1,
        hash: sha256(Uint8Array.of(2)),
        parentHash: genesisHash(genesis),
        timeMs: 1,
        bytes: encodeBlock({ ...block, header: { ...block.header, chainId: 'elsewhere' } }),
      },
      commit: first.commit,
      evidence: [],
      stateChanges: [],
      stateRoot,
    });
    assert.throws(() => loadChain(genesis, otherChain), {
      code: DriverErrorCode.GENESIS_MISMATCH,
    });
    otherChain.close();

    const wrongCommit = openStore(join(dir, 'wrong-commit.sqlite'));
    wrongCommit.saveBlock({
      block: {
        height: 1,
        hash: sha256(Uint8Array.of(3)),
        parentHash: genesisHash(genesis),
        timeMs: 1,
        bytes: first.block,
      },
      commit: first.commit,
      evidence: [],
      stateChanges: [],
      stateRoot,
    });
    assert.throws(() => loadChain(genesis, wrongCommit), {
      code: DriverErrorCode.STORE_INCONSISTENT,
    });
    wrongCommit.close();
  });
});
