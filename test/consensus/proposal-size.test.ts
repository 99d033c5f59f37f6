import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import {
  FALCON1024_MAX_SIGNATURE_BYTES,
  FALCON1024_PUBLIC_KEY_BYTES,
} from '../../src/crypto/falcon.js';
import { MAX_BLOCK_EVIDENCE } from '../../src/consensus/block.js';
import { DEFAULT_MAX_EVIDENCE } from '../../src/consensus/driver/driver-config.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import {
  assertGenesisDocument,
  DEFAULT_PROOF_PARAMS,
  genesisToJson,
  largestFittingBlockBytes,
  MAX_BLOCK_BYTES_LIMIT,
  MAX_PROPOSAL_WIRE_BYTES,
  parseGenesisJson,
  PROPOSAL_EVIDENCE_RESERVE,
  proposalOverheadBytes,
  type GenesisDocument,
} from '../../src/consensus/genesis.js';
import { encodeBlockProof } from '../../src/consensus/pos/encoding.js';
import type { ConsensusProofParams } from '../../src/consensus/proof/params.js';
import { DEFAULT_TIMEOUTS } from '../../src/consensus/timeouts.js';
import type { Block, Proposal, Vote } from '../../src/consensus/types.js';
import { validatorAddress } from '../../src/consensus/validator-set.js';
import { MAX_ROUND } from '../../src/consensus/verify.js';
import {
  encodeBlock,
  encodeGossip,
  encodeProposal,
  encodeQuorumCertificate,
  MAX_TXS_PER_BLOCK,
} from '../../src/consensus/wire.js';
import { DEFAULT_MAX_RECORD_BYTES } from '../../src/storage/wal-format.js';
import { DEFAULT_MAX_MESSAGE_BYTES, encodePayload } from '../../src/stoq/rpc/framing.js';
import { messageFrame } from '../../src/stoq/rpc/wire.js';

/**
 * Issue 3, F3: a genesis may not allow blocks whose full proposal is larger than one gossip
 * message (STOQ's 4 MiB) or one WAL record (16 MiB). The bound is checked here against real
 * encodings of the largest proposal each genesis allows.
 */
function pqKey(): Uint8Array {
  const key = new Uint8Array(randomBytes(FALCON1024_PUBLIC_KEY_BYTES));
  key[0] = 0x0a;
  return key;
}

function makeDoc(
  count: number,
  consensus: { maxBlockBytes: number; maxBlockTxs: number },
  proof: ConsensusProofParams = DEFAULT_PROOF_PARAMS,
): GenesisDocument {
  return {
    chainId: 'c'.repeat(64),
    genesisTime: 1_700_000_000_000,
    validators: Array.from({ length: count }, (_, i) => ({
      name: `node-${i + 1}`,
      publicKey: ed25519RawPublicKey(generateEd25519KeyPair().privateKey),
      pqPublicKey: pqKey(),
      power: 1,
      storageRoot: new Uint8Array(randomBytes(32)),
    })),
    consensus: { timeouts: DEFAULT_TIMEOUTS, commitDelayMs: 100, requirePq: true, ...consensus },
    proof,
  };
}

const HASH = new Uint8Array(32).fill(0xab);

/** The largest vote the wire carries: every integer at its maximum, a full FALCON signature. */
function largestVote(validator: string): Vote {
  return {
    type: 'precommit',
    height: Number.MAX_SAFE_INTEGER,
    round: MAX_ROUND,
    blockHash: HASH,
    timestamp: Number.MAX_SAFE_INTEGER,
    validator,
    signature: new Uint8Array(64).fill(1),
    pqSignature: new Uint8Array(FALCON1024_MAX_SIGNATURE_BYTES).fill(2),
  };
}

/**
 * The largest proposal `doc` allows: `maxBlockBytes` of transactions in as many transactions as
 * allowed, every validator's precommit, the evidence reserve, and the largest consensus proof
 * its parameters produce (a 256-character address of 3-byte characters, deepest paths).
 */
function largestProposal(doc: GenesisDocument): Proposal {
  const { maxBlockBytes, maxBlockTxs } = doc.consensus;
  const count = Math.min(maxBlockTxs, maxBlockBytes);
  const size = Math.floor(maxBlockBytes / count);
  const transactions = Array.from({ length: count }, (_, i) =>
    new Uint8Array(i === 0 ? maxBlockBytes - size * (count - 1) : size).fill(3),
  );
  const { space, time } = doc.proof;
  const depth = Math.ceil(Math.log2(space.blockCount));
  const consensusProof = encodeBlockProof({
    space: {
      commitmentRoot: HASH,
      address: '\u4e00'.repeat(256),
      addressSignature: new Uint8Array(64),
      answers: Array.from({ length: space.challengeCount }, () => ({
        index: space.blockCount - 1,
        block: new Uint8Array(4 * space.slotsPerBlock),
        path: Array.from({ length: depth }, () => HASH),
      })),
    },
    stamps: transactions.map(() => ({ txHash: HASH, nonce: Number.MAX_SAFE_INTEGER })),
    sequentialWork: {
      seed: HASH,
      checkpoints: Array.from({ length: time.iterations / time.checkpointInterval }, () => HASH),
    },
  });
  const addresses = doc.validators.map((v) => validatorAddress(v.publicKey));
  const proposer = addresses[0]!;
  const block: Block = {
    header: {
      chainId: doc.chainId,
      height: Number.MAX_SAFE_INTEGER,
      time: Number.MAX_SAFE_INTEGER,
      parentHash: HASH,
      transactionsRoot: HASH,
      evidenceRoot: HASH,
      lastCommitHash: HASH,
      appStateRoot: HASH,
      validatorsHash: HASH,
      proposer,
      consensusProof,
    },
    transactions,
    evidence: Array.from({ length: PROPOSAL_EVIDENCE_RESERVE }, () => ({
      voteA: largestVote(proposer),
      voteB: { ...largestVote(proposer), blockHash: null },
    })),
    lastCommit: {
      height: Number.MAX_SAFE_INTEGER,
      round: MAX_ROUND,
      blockHash: HASH,
      precommits: addresses.map(largestVote),
    },
  };
  return {
    height: Number.MAX_SAFE_INTEGER,
    round: MAX_ROUND,
    block,
    validRound: MAX_ROUND - 1,
    proposer,
    signature: new Uint8Array(64),
  };
}

/** What the proposer actually sends and logs for `proposal`. */
function wireSizes(proposal: Proposal) {
  const gossip = encodeGossip({ kind: 'proposal', proposal });
  return {
    proposal: encodeProposal(proposal).length,
    stoqFrame: encodePayload(messageFrame(gossip)).length,
    walBlock: encodeBlock(proposal.block).length,
  };
}

function refused(doc: GenesisDocument): ConsensusError {
  let caught: unknown;
  try {
    assertGenesisDocument(doc);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConsensusError, 'the genesis was accepted');
  assert.equal(caught.code, ConsensusErrorCode.INVALID_GENESIS);
  return caught;
}

describe('genesis block size within the wire limits (issue 3, F3)', () => {
  it('keeps the proposal bound within one STOQ message and one WAL record', () => {
    assert.ok(MAX_PROPOSAL_WIRE_BYTES <= DEFAULT_MAX_MESSAGE_BYTES);
    assert.ok(MAX_PROPOSAL_WIRE_BYTES <= DEFAULT_MAX_RECORD_BYTES);
    assert.ok(MAX_PROPOSAL_WIRE_BYTES < MAX_BLOCK_BYTES_LIMIT);
    assert.ok(PROPOSAL_EVIDENCE_RESERVE >= DEFAULT_MAX_EVIDENCE);
    assert.ok(PROPOSAL_EVIDENCE_RESERVE >= MAX_BLOCK_EVIDENCE, 'every valid block fits');
  });

  const cases: [string, number, { maxBlockBytes: number; maxBlockTxs: number }][] = [
    [
      'the node defaults (1 MiB, 1,000 transactions)',
      4,
      { maxBlockBytes: 1 << 20, maxBlockTxs: 1000 },
    ],
    ['few large transactions', 50, { maxBlockBytes: 1, maxBlockTxs: 60 }],
    ['many one-byte transactions', 7, { maxBlockBytes: 1, maxBlockTxs: 1_000_000 }],
  ];
  for (const [name, validators, limits] of cases) {
    it(`bounds the real encoding of the largest proposal: ${name}`, () => {
      const base = makeDoc(validators, limits);
      // Raise maxBlockBytes to the largest that is accepted (unless the case fixes it).
      const maxBlockBytes =
        limits.maxBlockBytes === 1 ? largestFittingBlockBytes(base) : limits.maxBlockBytes;
      const doc = { ...base, consensus: { ...base.consensus, maxBlockBytes } };
      assertGenesisDocument(doc);
      const sizes = wireSizes(largestProposal(doc));
      const overhead = proposalOverheadBytes(doc);
      assert.ok(
        sizes.proposal <= maxBlockBytes + overhead.total,
        `encoded ${sizes.proposal}, bound ${maxBlockBytes + overhead.total}`,
      );
      assert.ok(sizes.stoqFrame <= DEFAULT_MAX_MESSAGE_BYTES, `frame of ${sizes.stoqFrame}`);
      // Block sync sends the block beside its own commit (every validator's precommit) in one
      // message: it must fit too, or a node behind could never fetch that block.
      const proposal = largestProposal(doc);
      const synced = encodePayload(
        messageFrame({
          height: Number.MAX_SAFE_INTEGER,
          block: encodeBlock(proposal.block),
          commit: encodeQuorumCertificate(proposal.block.lastCommit!),
        }),
      ).length;
      assert.ok(synced <= DEFAULT_MAX_MESSAGE_BYTES, `synced block message of ${synced}`);
      assert.ok(sizes.walBlock <= DEFAULT_MAX_RECORD_BYTES);
      if (limits.maxBlockBytes === 1) {
        // At the largest accepted size the bound is tight to within a few percent.
        assert.ok(sizes.stoqFrame > 0.9 * MAX_PROPOSAL_WIRE_BYTES, `frame of ${sizes.stoqFrame}`);
        // A wire-valid block: at most MAX_TXS_PER_BLOCK transactions fit the bound.
        assert.ok(Math.min(maxBlockBytes, doc.consensus.maxBlockTxs) <= MAX_TXS_PER_BLOCK);
      }
    });
  }

  it('refuses maxBlockBytes one above the largest that fits, naming the field and the limit', () => {
    const base = makeDoc(10, { maxBlockBytes: 1 << 20, maxBlockTxs: 2000 });
    const largest = largestFittingBlockBytes(base);
    assert.ok(largest > 1 << 20 && largest < DEFAULT_MAX_MESSAGE_BYTES);
    const at = { ...base, consensus: { ...base.consensus, maxBlockBytes: largest } };
    assert.equal(parseGenesisJson(genesisToJson(at)).consensus.maxBlockBytes, largest);
    const above = { ...base, consensus: { ...base.consensus, maxBlockBytes: largest + 1 } };
    const error = refused(above);
    assert.match(
      error.message,
      new RegExp(
        `^genesis\\.consensus\\.maxBlockBytes: a full proposal would take up to ${
          largest + 1 + proposalOverheadBytes(above).total
        } bytes .*above the ${MAX_PROPOSAL_WIRE_BYTES}-byte limit .*maxBlockBytes can be at most ${largest} `,
      ),
    );
    assert.equal(error.detail.largestMaxBlockBytes, largest);
  });

  it('refuses what the schema allowed before: 4 MiB, 16 MiB and 64 MiB blocks', () => {
    for (const maxBlockBytes of [4 << 20, 16 << 20, MAX_BLOCK_BYTES_LIMIT]) {
      const doc = makeDoc(4, { maxBlockBytes, maxBlockTxs: 1000 });
      refused(doc);
      // The JSON path refuses it too, before any node starts with it.
      const text = JSON.stringify({
        ...JSON.parse(genesisToJson({ ...doc, consensus: { ...doc.consensus, maxBlockBytes: 1 } })),
        consensus: { ...doc.consensus },
      });
      assert.throws(() => parseGenesisJson(text), /genesis\.consensus\.maxBlockBytes: a full/);
    }
  });

  it('says when no maxBlockBytes fits because the commit alone is too large', () => {
    const doc = makeDoc(2500, { maxBlockBytes: 1, maxBlockTxs: 1 });
    assert.equal(largestFittingBlockBytes(doc), 0);
    assert.match(refused(doc).message, /2500 validators' precommits.*no maxBlockBytes fits/);
  });
});
