import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeCanonical, encodeMessage } from '../../src/codec/cbor.js';
import { encodeFlatCanonical, type FlatValue } from '../../src/codec/flat-canonical.js';
import { concatBytes, toHex } from '../../src/crypto/bytes.js';
import { FALCON1024_MAX_SIGNATURE_BYTES } from '../../src/crypto/falcon.js';
import { sha256 } from '../../src/crypto/hash.js';
import {
  decodeRecord,
  encodeRecord,
  voteRecord as walVoteRecord,
  voteSchema,
} from '../../src/consensus/driver/records.js';
import {
  COMMIT_DOMAIN,
  EVIDENCE_DOMAIN,
  commitHash,
  evidenceRoot,
} from '../../src/consensus/messages.js';
import type { DuplicateVoteEvidence, QuorumCertificate, Vote } from '../../src/consensus/types.js';
import { voteRecord } from '../../src/consensus/vote-record.js';
import { WIRE_VERSION, encodeVote } from '../../src/consensus/wire.js';

/*
 * The vote record used to be written out twice: in messages.ts for commit and evidence hashes
 * (pqSignature null when absent) and in driver/records.ts for the WAL and signer state
 * (pqSignature omitted). Both now come from vote-record.ts. The two functions below are the
 * old code, copied verbatim, so these tests prove the shared one produces the same bytes: block
 * hashes and WAL files written by older builds depend on them.
 */

function oldHashedVoteRecord(vote: Vote): Record<string, FlatValue> {
  return {
    type: vote.type,
    height: vote.height,
    round: vote.round,
    blockHash: vote.blockHash,
    timestamp: vote.timestamp,
    validator: vote.validator,
    signature: vote.signature,
    pqSignature: vote.pqSignature ?? null,
  };
}

function oldWalVoteRecord(vote: Vote): Record<string, unknown> {
  return {
    type: vote.type,
    height: vote.height,
    round: vote.round,
    blockHash: vote.blockHash,
    timestamp: vote.timestamp,
    validator: vote.validator,
    signature: vote.signature,
    ...(vote.pqSignature === undefined ? {} : { pqSignature: vote.pqSignature }),
  };
}

function oldCommitHash(commit: QuorumCertificate): Uint8Array {
  return sha256(
    encodeFlatCanonical({
      domain: COMMIT_DOMAIN,
      height: commit.height,
      round: commit.round,
      blockHash: commit.blockHash,
      precommits: sha256(
        concatBytes(
          ...commit.precommits.map((vote) => encodeFlatCanonical(oldHashedVoteRecord(vote))),
        ),
      ),
    }),
  );
}

function oldEvidenceRoot(evidence: readonly DuplicateVoteEvidence[]): Uint8Array {
  return sha256(
    encodeCanonical({
      domain: EVIDENCE_DOMAIN,
      evidence: evidence.map((item) => ({
        voteA: oldHashedVoteRecord(item.voteA),
        voteB: oldHashedVoteRecord(item.voteB),
      })),
    }),
  );
}

/** Votes the WAL schema accepts: prevote/precommit, nil or not, with or without pqSignature. */
const voteArbitrary: fc.Arbitrary<Vote> = fc
  .record({
    type: fc.constantFrom('prevote' as const, 'precommit' as const),
    height: fc.oneof(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 2 ** 53 - 1 })),
    round: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 2 ** 31 - 1 })),
    blockHash: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: null }),
    timestamp: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.maxSafeNat()),
    validator: fc.stringMatching(/^[0-9a-f]{40}$/),
    signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    pq: fc.constantFrom('absent', 'undefined', 'present'),
    pqSignature: fc.uint8Array({ minLength: 1, maxLength: FALCON1024_MAX_SIGNATURE_BYTES }),
  })
  .map(({ pq, pqSignature, ...vote }): Vote => {
    // An explicit `pqSignature: undefined` happens in practice (evidence.ts strips it so).
    if (pq === 'absent') return vote;
    if (pq === 'undefined') return { ...vote, pqSignature: undefined };
    return { ...vote, pqSignature };
  });

const filled = (length: number, byte: number) => new Uint8Array(length).fill(byte);

/** Fixed votes whose encodings were captured from the code before the shared record existed. */
const golden = {
  prevoteNil: {
    type: 'prevote',
    height: 3,
    round: 0,
    blockHash: null,
    timestamp: 1_700_000_000_000,
    validator: '0a'.repeat(20),
    signature: filled(64, 0x51),
  },
  prevoteBlock: {
    type: 'prevote',
    height: 9,
    round: 4,
    blockHash: filled(32, 0x22),
    timestamp: 1_700_000_000_777,
    validator: 'b7'.repeat(20),
    signature: filled(64, 0x52),
  },
  precommitPq: {
    type: 'precommit',
    height: 120,
    round: 1,
    blockHash: filled(32, 0x33),
    timestamp: 1_700_000_001_000,
    validator: 'c4'.repeat(20),
    signature: filled(64, 0x53),
    pqSignature: filled(40, 0x9e),
  },
  precommitNil: {
    type: 'precommit',
    height: 2 ** 40,
    round: 2 ** 31 - 1,
    blockHash: null,
    timestamp: 0,
    validator: 'ff'.repeat(20),
    signature: filled(64, 0x54),
  },
} satisfies Record<string, Vote>;

/** WAL bytes (`encodeRecord(voteRecord(vote))`) of the golden votes, from the old code. */
const goldenWalHex: Record<keyof typeof golden, string> = {
  prevoteNil:
    'a7647479706567707265766f746565726f756e6400666865696768740369626c6f636b48617368f6697369676e61747572655840515151515151515151515151515151515151515151515151515151515151515151515151515151515151515151515151515151515151515151515151515151516974696d657374616d701b0000018bcfe568006976616c696461746f72782830613061306130613061306130613061306130613061306130613061306130613061306130613061',
  prevoteBlock:
    'a7647479706567707265766f746565726f756e6404666865696768740969626c6f636b4861736858202222222222222222222222222222222222222222222222222222222222222222697369676e61747572655840525252525252525252525252525252525252525252525252525252525252525252525252525252525252525252525252525252525252525252525252525252526974696d657374616d701b0000018bcfe56b096976616c696461746f72782862376237623762376237623762376237623762376237623762376237623762376237623762376237',
  precommitPq:
    'a8647479706569707265636f6d6d697465726f756e640166686569676874187869626c6f636b4861736858203333333333333333333333333333333333333333333333333333333333333333697369676e61747572655840535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353536974696d657374616d701b0000018bcfe56be86976616c696461746f727828633463346334633463346334633463346334633463346334633463346334633463346334633463346b70715369676e617475726558289e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e',
  precommitNil:
    'a7647479706569707265636f6d6d697465726f756e641a7fffffff666865696768741b000001000000000069626c6f636b48617368f6697369676e61747572655840545454545454545454545454545454545454545454545454545454545454545454545454545454545454545454545454545454545454545454545454545454546974696d657374616d70006976616c696461746f72782866666666666666666666666666666666666666666666666666666666666666666666666666666666',
};

/** Canonical key order (RFC 8949 §4.2.1 for ASCII text keys): shorter first, then bytewise. */
function inCanonicalOrder(keys: readonly string[]): boolean {
  return keys.every(
    (key, i) =>
      i === 0 ||
      keys[i - 1]!.length < key.length ||
      (keys[i - 1]!.length === key.length && keys[i - 1]! < key),
  );
}

describe('shared vote record', () => {
  it('WAL and signer-state bytes equal the old encoding and decode back to the vote', () => {
    fc.assert(
      fc.property(voteArbitrary, (vote) => {
        const bytes = encodeRecord(walVoteRecord(vote));
        assert.equal(toHex(bytes), toHex(encodeMessage(oldWalVoteRecord(vote))));
        const { pqSignature, ...rest } = vote;
        const expected = pqSignature === undefined ? rest : { ...rest, pqSignature };
        assert.deepEqual(decodeRecord(voteSchema, bytes, 'vote'), expected);
      }),
      { numRuns: 300 },
    );
  });

  it('commit hashes and evidence roots equal the old encoding', () => {
    fc.assert(
      fc.property(
        fc.array(voteArbitrary, { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(voteArbitrary, voteArbitrary), { maxLength: 4 }),
        (precommits, pairs) => {
          const commit: QuorumCertificate = {
            height: precommits[0]!.height,
            round: precommits[0]!.round,
            blockHash: precommits[0]!.blockHash ?? filled(32, 0x01),
            precommits,
          };
          assert.equal(toHex(commitHash(commit)), toHex(oldCommitHash(commit)));
          const evidence = pairs.map(([voteA, voteB]) => ({ voteA, voteB }));
          assert.equal(toHex(evidenceRoot(evidence)), toHex(oldEvidenceRoot(evidence)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps the bytes captured from the old code (golden vectors)', () => {
    for (const [name, vote] of Object.entries(golden) as [keyof typeof golden, Vote][]) {
      assert.equal(toHex(encodeRecord(walVoteRecord(vote))), goldenWalHex[name], name);
    }
    const commit: QuorumCertificate = {
      height: 120,
      round: 1,
      blockHash: filled(32, 0x33),
      precommits: [golden.precommitPq, golden.precommitNil],
    };
    assert.equal(
      toHex(commitHash(commit)),
      'e7900d7b30e1ebbd44c46298297ba9b30ac59ecc6774912ba50fb4f7be2a74d4',
    );
    const evidence = [
      { voteA: golden.prevoteNil, voteB: golden.prevoteBlock },
      { voteA: golden.precommitPq, voteB: golden.precommitNil },
    ];
    assert.equal(
      toHex(evidenceRoot(evidence)),
      'fc830f4916bb36079377f09e18e03a6863035e60661a19e25761065bed7244a0',
    );
  });

  it('lists keys in canonical order and matches the wire form of a vote', () => {
    fc.assert(
      fc.property(voteArbitrary, (vote) => {
        const record = voteRecord(vote);
        assert.ok(inCanonicalOrder(Object.keys(record)), Object.keys(record).join(','));
        assert.equal(
          toHex(encodeVote(vote)),
          toHex(encodeFlatCanonical({ v: WIRE_VERSION, ...record })),
        );
      }),
      { numRuns: 200 },
    );
  });
});
