import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode as encodeInsertionOrder } from 'cborg';
import fc from 'fast-check';
import { CborError, decodeCanonical, encodeCanonical } from '../../src/codec/cbor.js';
import { SchemaError } from '../../src/codec/schema.js';
import { toHex } from '../../src/crypto/bytes.js';
import { checkBlock } from '../../src/consensus/block.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import { duplicateVoteEvidence } from '../../src/consensus/evidence.js';
import { nextHeightContext } from '../../src/consensus/height-context.js';
import { blockHash, commitHash, evidenceRoot } from '../../src/consensus/messages.js';
import { blockTemplate, buildBlock } from '../../src/consensus/block.js';
import type {
  Block,
  DuplicateVoteEvidence,
  Proposal,
  QuorumCertificate,
  Vote,
} from '../../src/consensus/types.js';
import type { GossipMessage } from '../../src/consensus/driver/ports.js';
import { ed25519SignatureVerifier, MAX_ROUND } from '../../src/consensus/verify.js';
import {
  decodeBlock,
  decodeEvidence,
  decodeGossip,
  decodeProposal,
  decodeQuorumCertificate,
  decodeVote,
  encodeBlock,
  encodeEvidence,
  encodeGossip,
  encodeProposal,
  encodeQuorumCertificate,
  encodeVote,
  MAX_BLOCK_WIRE_BYTES,
  MAX_PRECOMMITS,
  MAX_TX_BYTES,
  MAX_TXS_PER_BLOCK,
  MAX_TXS_PER_GOSSIP,
  MAX_VOTE_WIRE_BYTES,
  WIRE_VERSION,
} from '../../src/consensus/wire.js';
import {
  CHAIN_ID,
  GENESIS_TIME,
  makeBlock,
  makeGenesis,
  makeProposal,
  makeValidators,
  makeVote,
} from './sim/fixtures.js';

// Signed fixtures: a first block, its commit, and a second block carrying that commit and a
// piece of evidence, so every nested record is exercised with real values.
const { validators, set } = makeValidators([1, 1, 1, 1], 7);
const genesis = makeGenesis(set);
const first = makeBlock(genesis, validators[0]!.address, 1);
const firstHash = blockHash(first.header);
const commit: QuorumCertificate = {
  height: 1,
  round: 0,
  blockHash: firstHash,
  precommits: [0, 1, 2]
    .map((index) => ({
      ...makeVote(validators[index]!, 'precommit', 1, 0, firstHash, GENESIS_TIME + 100 + index),
      pqSignature: new Uint8Array(1270).fill(index + 1),
    }))
    .sort((a, b) => (a.validator < b.validator ? -1 : 1)),
};
const evidence = duplicateVoteEvidence(
  makeVote(validators[3]!, 'prevote', 1, 0, firstHash),
  makeVote(validators[3]!, 'prevote', 1, 0, null),
);
const second = nextHeightContext(genesis, first, commit);
const secondBlock = buildBlock(blockTemplate(CHAIN_ID, second, validators[1]!.address), {
  transactions: [Uint8Array.of(9), new Uint8Array(300).fill(7), new Uint8Array(MAX_TX_BYTES)],
  evidence: [evidence],
  appStateRoot: new Uint8Array(32).fill(4),
  consensusProof: new Uint8Array(200).fill(3),
});
const proposal = makeProposal(validators[1]!, secondBlock, 2, 1);
const prevote = makeVote(validators[2]!, 'prevote', 2, 0, null);

const verifyOptions = { chainId: CHAIN_ID, verifier: ed25519SignatureVerifier, requirePq: false };

/** Runs `decode` and returns its ConsensusError, failing if it returned or threw anything else. */
function refusal(decode: () => unknown): ConsensusError {
  try {
    decode();
  } catch (error) {
    assert.ok(error instanceof ConsensusError, `expected ConsensusError, got ${String(error)}`);
    assert.equal(error.code, ConsensusErrorCode.MALFORMED_MESSAGE);
    return error;
  }
  assert.fail('expected the bytes to be refused');
}

function expectRefused(decode: () => unknown, message: RegExp): void {
  assert.match(refusal(decode).message, message);
}

/** A vote as a plain map with `v`, for crafting variants with the general encoder. */
function voteMap(vote: Vote): Record<string, unknown> {
  return { v: WIRE_VERSION, ...vote };
}

describe('wire round trips', () => {
  it('votes, with and without a FALCON signature, and nil votes', () => {
    for (const vote of [prevote, ...commit.precommits, evidence.voteA, evidence.voteB]) {
      const decoded = decodeVote(encodeVote(vote));
      assert.deepEqual(decoded, vote);
      assert.equal('pqSignature' in decoded, vote.pqSignature !== undefined);
    }
  });

  it('blocks keep their hash, roots and validity', () => {
    for (const block of [first, secondBlock]) {
      const bytes = encodeBlock(block);
      const decoded = decodeBlock(bytes);
      assert.deepEqual(decoded, block);
      assert.equal(toHex(blockHash(decoded.header)), toHex(blockHash(block.header)));
      assert.equal(toHex(commitHash(decoded.lastCommit)), toHex(block.header.lastCommitHash));
      assert.equal(toHex(evidenceRoot(decoded.evidence)), toHex(block.header.evidenceRoot));
    }
    assert.equal(checkBlock(verifyOptions, genesis, decodeBlock(encodeBlock(first))), undefined);
    assert.equal(
      checkBlock(verifyOptions, second, decodeBlock(encodeBlock(secondBlock))),
      undefined,
    );
  });

  it('proposals, commits and evidence', () => {
    const decodedProposal = decodeProposal(encodeProposal(proposal));
    assert.deepEqual(decodedProposal, proposal);
    assert.equal(
      toHex(blockHash(decodedProposal.block.header)),
      toHex(blockHash(proposal.block.header)),
    );
    assert.deepEqual(decodeQuorumCertificate(encodeQuorumCertificate(commit)), commit);
    assert.deepEqual(decodeEvidence(encodeEvidence(evidence)), evidence);
  });

  it('every gossip kind', () => {
    const messages: GossipMessage[] = [
      { kind: 'proposal', proposal },
      { kind: 'vote', vote: prevote },
      { kind: 'vote', vote: commit.precommits[0]! },
      { kind: 'txs', txs: [Uint8Array.of(1), new Uint8Array(1000).fill(2)] },
      { kind: 'status', committedHeight: 0, height: 1, round: 0 },
      { kind: 'status', committedHeight: 41, height: 42, round: MAX_ROUND },
    ];
    for (const message of messages) assert.deepEqual(decodeGossip(encodeGossip(message)), message);
  });

  it('encodings are deterministic CBOR tagged v: 1, equal to the general encoder', () => {
    const encodings = [
      encodeVote(prevote),
      encodeVote(commit.precommits[0]!),
      encodeBlock(secondBlock),
      encodeProposal(proposal),
      encodeQuorumCertificate(commit),
      encodeEvidence(evidence),
      encodeGossip({ kind: 'txs', txs: [Uint8Array.of(1)] }),
      encodeGossip({ kind: 'status', committedHeight: 1, height: 2, round: 3 }),
    ];
    for (const bytes of encodings) {
      const value = decodeCanonical(bytes) as { v: number };
      assert.equal(value.v, WIRE_VERSION);
      assert.equal(toHex(encodeCanonical(value)), toHex(bytes));
    }
    assert.equal(
      toHex(encodeVote(prevote)),
      toHex(encodeCanonical(voteMap(prevote))),
      'a vote is the canonical map of its fields',
    );
  });

  it('decoded byte strings do not alias the input buffer', () => {
    for (const [bytes, decode] of [
      [encodeVote(prevote), (b: Uint8Array) => decodeVote(b).signature],
      [encodeBlock(secondBlock), (b: Uint8Array) => decodeBlock(b).transactions[1]!],
    ] as const) {
      const decoded = decode(bytes);
      const before = toHex(decoded);
      bytes.fill(0);
      assert.equal(toHex(decoded), before);
    }
  });
});

// Random well-formed values, for property round trips (plain objects, like the decoder's).
const plain = { noNullPrototype: true } as const;
const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });
const address = fc.stringMatching(/^[0-9a-f]{40}$/);
const roundArb = fc.oneof(fc.integer({ min: 0, max: 30 }), fc.constant(MAX_ROUND));
const uintArb = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.maxSafeNat());
const voteArb: fc.Arbitrary<Vote> = fc
  .record({
    type: fc.constantFrom('prevote' as const, 'precommit' as const),
    height: uintArb,
    round: roundArb,
    blockHash: fc.option(hash, { nil: null }),
    timestamp: uintArb,
    validator: address,
    signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    // FALCON-1024 signature lengths; the content is irrelevant to the codec (and cheap to make).
    pq: fc.option(
      fc
        .tuple(fc.integer({ min: 42, max: 1462 }), fc.nat(255))
        .map(([length, byte]) => new Uint8Array(length).fill(byte)),
      { nil: undefined },
    ),
  })
  .map(({ pq, ...vote }) => (pq === undefined ? vote : { ...vote, pqSignature: pq }));
const commitArb: fc.Arbitrary<QuorumCertificate> = fc.record(
  {
    height: uintArb,
    round: roundArb,
    blockHash: hash,
    precommits: fc.array(voteArb, { maxLength: 4 }),
  },
  plain,
);
const evidenceArb: fc.Arbitrary<DuplicateVoteEvidence> = fc.record(
  {
    voteA: voteArb,
    voteB: voteArb,
  },
  plain,
);
const blockArb: fc.Arbitrary<Block> = fc.record(
  {
    header: fc.record(
      {
        chainId: fc
          .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
          .filter((id) => id.length <= 64),
        height: uintArb,
        time: uintArb,
        parentHash: hash,
        transactionsRoot: hash,
        evidenceRoot: hash,
        lastCommitHash: hash,
        appStateRoot: hash,
        validatorsHash: hash,
        proposer: address,
        consensusProof: fc.uint8Array({ maxLength: 64 }),
      },
      plain,
    ),
    transactions: fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { maxLength: 6 }),
    evidence: fc.array(evidenceArb, { maxLength: 2 }),
    lastCommit: fc.option(commitArb, { nil: null }),
  },
  plain,
);
const proposalArb: fc.Arbitrary<Proposal> = fc.record(
  {
    height: uintArb,
    round: roundArb,
    block: blockArb,
    validRound: fc.integer({ min: -1, max: MAX_ROUND }),
    proposer: address,
    signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  },
  plain,
);
const gossipArb: fc.Arbitrary<GossipMessage> = fc.oneof(
  proposalArb.map((p) => ({ kind: 'proposal' as const, proposal: p })),
  voteArb.map((v) => ({ kind: 'vote' as const, vote: v })),
  fc
    .array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { minLength: 1, maxLength: 8 })
    .map((txs) => ({ kind: 'txs' as const, txs })),
  fc
    .record({ committedHeight: uintArb, height: uintArb, round: roundArb })
    .map((status) => ({ kind: 'status' as const, ...status })),
);

interface Codec<T> {
  readonly name: string;
  readonly arb: fc.Arbitrary<T>;
  readonly encode: (value: T) => Uint8Array;
  readonly decode: (bytes: Uint8Array) => T;
}

function codec<T>(
  name: string,
  arb: fc.Arbitrary<T>,
  encode: (value: T) => Uint8Array,
  decode: (bytes: Uint8Array) => T,
): Codec<unknown> {
  return { name, arb, encode, decode } as unknown as Codec<unknown>;
}

const codecs = [
  codec('vote', voteArb, encodeVote, decodeVote),
  codec('commit', commitArb, encodeQuorumCertificate, decodeQuorumCertificate),
  codec('evidence', evidenceArb, encodeEvidence, decodeEvidence),
  codec('block', blockArb, encodeBlock, decodeBlock),
  codec('proposal', proposalArb, encodeProposal, decodeProposal),
  codec('gossip', gossipArb, encodeGossip, decodeGossip),
];

/** A decoder's refusal must be a ConsensusError caused by the codec layer, not by a bug. */
function assertCleanRefusal(error: unknown): void {
  assert.ok(error instanceof ConsensusError, `threw ${String(error)}`);
  assert.equal(error.code, ConsensusErrorCode.MALFORMED_MESSAGE);
  assert.ok(
    error.cause === undefined ||
      error.cause instanceof CborError ||
      error.cause instanceof SchemaError,
    `refusal caused by ${String(error.cause)}`,
  );
}

const mutation = fc.oneof(
  fc.record(
    {
      kind: fc.constant('flip' as const),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 7 }),
    },
    plain,
  ),
  fc.record(
    {
      kind: fc.constant('set' as const),
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
    },
    plain,
  ),
  fc.record(
    {
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
    },
    plain,
  ),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }, plain),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }, plain),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = Uint8Array.from(bytes);
  for (const m of mutations) {
    if (out.length === 0) break;
    const at = m.at % out.length;
    if (m.kind === 'flip') out[at] = out[at]! ^ (1 << m.bit);
    else if (m.kind === 'set') out[at] = m.byte;
    else if (m.kind === 'insert')
      out = Uint8Array.from([...out.subarray(0, at), m.byte, ...out.subarray(at)]);
    else if (m.kind === 'delete')
      out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1)]);
    else out = out.slice(0, at);
  }
  return out;
}

describe('wire properties', () => {
  for (const { name, arb, encode, decode } of codecs) {
    it(`${name}: decode(encode(x)) equals x and re-encodes to the same bytes`, () => {
      fc.assert(
        fc.property(arb, (value) => {
          const bytes = encode(value);
          const decoded = decode(bytes);
          assert.deepEqual(decoded, value);
          assert.equal(toHex(encode(decoded)), toHex(bytes));
          assert.equal(toHex(encodeCanonical(decodeCanonical(bytes))), toHex(bytes));
        }),
        { numRuns: name === 'block' || name === 'proposal' ? 80 : 150 },
      );
    });

    it(`${name}: random bytes yield a value or a MALFORMED_MESSAGE, nothing else`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
          try {
            decode(bytes);
          } catch (error) {
            assertCleanRefusal(error);
          }
        }),
        { numRuns: 800 },
      );
    });

    it(`${name}: mutated encodings are refused cleanly or are canonical encodings themselves`, () => {
      fc.assert(
        fc.property(arb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (value, changes) => {
          const bytes = mutate(encode(value), changes);
          let decoded: unknown;
          try {
            decoded = decode(bytes);
          } catch (error) {
            assertCleanRefusal(error);
            return;
          }
          // Accepted bytes are exactly what the encoder writes for the decoded value.
          assert.equal(toHex(encode(decoded)), toHex(bytes));
        }),
        { numRuns: 250 },
      );
    });
  }

  it('decoders refuse whatever is not a byte string', () => {
    for (const input of [undefined, null, 'a1', 42, [0xa0], { length: 1 }]) {
      for (const { decode } of codecs) {
        assertCleanRefusal(
          (() => {
            try {
              decode(input as unknown as Uint8Array);
            } catch (error) {
              return error;
            }
            assert.fail(`accepted ${String(input)}`);
          })(),
        );
      }
    }
  });
});

describe('wire refusals name the field', () => {
  const encodeVariant = (changes: Record<string, unknown>, base = voteMap(prevote)) =>
    encodeCanonical({ ...base, ...changes });

  it('vote fields: lengths, ranges, enums, addresses, missing and unknown keys', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ signature: new Uint8Array(63) }, /^vote\.signature: expected 64 bytes, got 63$/],
      [{ blockHash: new Uint8Array(31) }, /^vote\.blockHash: expected 32 bytes, got 31$/],
      [{ pqSignature: new Uint8Array(10) }, /^vote\.pqSignature: expected 42 to 1462 bytes/],
      [{ validator: 'AB'.repeat(20) }, /^vote\.validator: expected a validator address/],
      [{ validator: 'ab'.repeat(21) }, /^vote\.validator: expected at most 40 bytes/],
      [{ type: 'commit' }, /^vote\.type: expected "prevote" or "precommit", got "commit"$/],
      [{ height: -1 }, /^vote\.height: expected unsigned integer, got negative integer$/],
      [{ height: 1.5 }, /^vote\.height: expected unsigned integer, got float$/],
      [{ height: '1' }, /^vote\.height: expected unsigned integer, got text string$/],
      [{ height: null }, /^vote\.height: expected unsigned integer, got null$/],
      [{ round: MAX_ROUND + 1 }, /^vote\.round: expected an integer in \[0, 2147483647\]/],
      [{ timestamp: true }, /^vote\.timestamp: expected unsigned integer, got boolean$/],
      [{ extra: 1 }, /^vote: unexpected key "extra"$/],
      [{ v: 2 }, /^vote\.v: unsupported version 2 \(expected 1\)$/],
    ];
    for (const [changes, message] of cases) {
      expectRefused(() => decodeVote(encodeVariant(changes)), message);
    }
    const { signature: _signature, ...unsigned } = voteMap(prevote);
    expectRefused(() => decodeVote(encodeCanonical(unsigned)), /^vote\.signature: missing$/);
    const { v: _v, ...untagged } = voteMap(prevote);
    expectRefused(
      () => decodeVote(encodeCanonical(untagged)),
      /^vote\.v: missing version tag \(the first key must be "v", got "type"\)$/,
    );
    expectRefused(() => decodeVote(encodeCanonical({})), /^vote\.v: missing version tag$/);
    expectRefused(() => decodeVote(encodeCanonical([1])), /^vote: expected map, got array$/);
  });

  it('non-canonical CBOR: key order, duplicate keys, long-form heads, trailing bytes', () => {
    const canonical = encodeVote(prevote);
    // "type" written after "round": out of order (shorter keys come first).
    const { type, ...rest } = voteMap(prevote);
    const swapped = { v: rest.v, round: rest.round, type, ...rest };
    const unsorted = encodeInsertionOrder(swapped, { mapSorter: () => 0 });
    const refusal1 = refusal(() => decodeVote(unsorted));
    assert.match(refusal1.message, /^vote: key "type" out of canonical order$/);
    assert.equal(refusal1.detail.reason, 'CBOR_NOT_CANONICAL');
    const reversed = Object.fromEntries(Object.entries(voteMap(prevote)).reverse());
    expectRefused(
      () => decodeVote(encodeInsertionOrder(reversed, { mapSorter: () => 0 })),
      /^vote\.v: missing version tag \(the first key must be "v", got "signature"\)$/,
    );

    // v: 1 written as 0x18 0x01 (a one-byte argument for a value below 24).
    assert.deepEqual([...canonical.subarray(0, 4)], [0xa8, 0x61, 0x76, 0x01]);
    const longForm = Uint8Array.from([0xa8, 0x61, 0x76, 0x18, 0x01, ...canonical.subarray(4)]);
    const refusal2 = refusal(() => decodeVote(longForm));
    assert.match(refusal2.message, /^vote\.v: integer or length not in its shortest form$/);
    assert.equal(refusal2.detail.reason, 'CBOR_NOT_CANONICAL');

    expectRefused(
      () => decodeVote(Uint8Array.from([...canonical, 0x00])),
      /^vote: 1 trailing bytes after the item$/,
    );
    expectRefused(() => decodeVote(canonical.subarray(0, 40)), /unexpected end of input|runs past/);
    // An indefinite-length map and a tagged item.
    expectRefused(() => decodeVote(Uint8Array.of(0xbf, 0xff)), /^vote: indefinite-length/);
    expectRefused(() => decodeVote(Uint8Array.of(0xc0, 0x00)), /^vote: expected map, got tag$/);
    // Heights beyond 2^53 - 1, written as 8-byte integers.
    const huge = encodeCanonical(voteMap({ ...prevote, height: 0x1_0000_0000 }));
    const at = toHex(huge).indexOf('1b0000000100000000') / 2;
    assert.ok(at > 0);
    huge.set([0x1b, 0x00, 0x20, 0, 0, 0, 0, 0, 0], at);
    expectRefused(() => decodeVote(huge), /^vote\.height: integer or length exceeds 2\^53 - 1$/);
    huge.set([0x1b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], at);
    assert.equal(decodeVote(huge).height, Number.MAX_SAFE_INTEGER);
    // A duplicate key: "v" twice.
    expectRefused(
      () => decodeVote(Uint8Array.of(0xa2, 0x61, 0x76, 0x01, 0x61, 0x76, 0x01)),
      /^vote: duplicate key "v"$/,
    );
  });

  it('size limits are checked before anything is allocated', () => {
    expectRefused(
      () => decodeVote(new Uint8Array(MAX_VOTE_WIRE_BYTES + 1)),
      new RegExp(
        `^vote: ${MAX_VOTE_WIRE_BYTES + 1} bytes exceeds the limit of ${MAX_VOTE_WIRE_BYTES}$`,
      ),
    );
    expectRefused(
      () => decodeBlock(new Uint8Array(MAX_BLOCK_WIRE_BYTES + 1)),
      /^block: \d+ bytes exceeds the limit/,
    );
    // A commit whose precommit list claims more entries than allowed, or than the input holds.
    const head = encodeCanonical({ v: 1, round: 0, height: 1, blockHash: firstHash });
    // Rewrite the map head from 4 to 5 entries and append "precommits": array(n) with no items.
    const withList = (count: number) => {
      const key = new TextEncoder().encode('precommits');
      const arrayHead =
        count < 24
          ? [0x80 | count]
          : count < 0x10000
            ? [0x99, count >> 8, count & 0xff]
            : [0x9a, 0, count >> 16, (count >> 8) & 0xff, count & 0xff];
      return Uint8Array.from([0xa5, ...head.subarray(1), 0x6a, ...key, ...arrayHead]);
    };
    expectRefused(
      () => decodeQuorumCertificate(withList(MAX_PRECOMMITS + 1)),
      /^commit\.precommits: expected at most 10000 items, got 10001$/,
    );
    expectRefused(
      () => decodeQuorumCertificate(withList(MAX_PRECOMMITS)),
      /^commit\.precommits: array runs past the input$/,
    );
  });

  it('block limits: transaction count and size, hashes, chain id, addresses', () => {
    // A block map with some fields changed; an undefined change leaves the field out.
    const blockMap = (
      changes: Record<string, unknown>,
      headerChanges: Record<string, unknown> = {},
    ) => {
      const entries = Object.entries({
        v: 1,
        header: { ...first.header, ...headerChanges },
        transactions: first.transactions,
        evidence: [],
        lastCommit: null,
        ...changes,
      });
      return encodeCanonical(
        Object.fromEntries(entries.filter(([, value]) => value !== undefined)),
      );
    };
    assert.deepEqual(decodeBlock(blockMap({})), first);
    const cases: [Uint8Array, RegExp][] = [
      [
        blockMap({ transactions: [new Uint8Array(0)] }),
        /^block\.transactions\[0\]: expected 1 to 65536 bytes, got 0$/,
      ],
      [
        blockMap({ transactions: [Uint8Array.of(1), new Uint8Array(MAX_TX_BYTES + 1)] }),
        /^block\.transactions\[1\]: expected 1 to 65536 bytes, got 65537$/,
      ],
      [
        blockMap({}, { parentHash: new Uint8Array(33) }),
        /^block\.header\.parentHash: expected 32 bytes, got 33$/,
      ],
      [
        blockMap({}, { chainId: '' }),
        /^block\.header\.chainId: expected 1 to 64 characters, got 0$/,
      ],
      [
        blockMap({}, { chainId: 'x'.repeat(65) }),
        /^block\.header\.chainId: expected 1 to 64 characters, got 65$/,
      ],
      [
        blockMap({}, { proposer: 'not an address' }),
        /^block\.header\.proposer: expected a validator address/,
      ],
      [blockMap({ lastCommit: {} }), /^block\.lastCommit\.height: missing$/],
      [
        blockMap({ evidence: [{ voteA: 1 }] }),
        /^block\.evidence\[0\]\.voteA: expected map, got unsigned integer$/,
      ],
      [blockMap({ evidence: undefined }), /^block\.evidence: missing$/],
    ];
    for (const [bytes, message] of cases) expectRefused(() => decodeBlock(bytes), message);
    // The transaction count is checked from the array head, before any item is read.
    const txKey = new TextEncoder().encode('transactions');
    const count = MAX_TXS_PER_BLOCK + 1;
    const tooMany = Uint8Array.from([
      ...blockMap({ transactions: undefined }).map((byte, i) => (i === 0 ? 0xa5 : byte)),
      0x6c,
      ...txKey,
      0x1a + 0x80,
      0,
      count >> 16,
      (count >> 8) & 0xff,
      count & 0xff,
    ]);
    expectRefused(
      () => decodeBlock(tooMany),
      /^block\.transactions: expected at most 100000 items, got 100001$/,
    );
  });

  it('gossip: kinds, their fields, and the transaction-list limits', () => {
    const gossip = (value: Record<string, unknown>) => encodeCanonical({ v: 1, ...value });
    const txs = (n: number) => Array.from({ length: n }, () => Uint8Array.of(1));
    const cases: [Uint8Array, RegExp][] = [
      [gossip({ kind: 'votes', vote: {} }), /^gossip\.kind: unknown kind "votes"$/],
      [gossip({ vote: { ...prevote } }), /^gossip\.kind: missing$/],
      [gossip({ kind: 'vote', txs: txs(1) }), /^gossip\.txs: not a field of a vote message$/],
      [gossip({ kind: 'txs' }), /^gossip\.txs: missing$/],
      [gossip({ kind: 'txs', txs: [] }), /^gossip\.txs: expected at least 1 items, got 0$/],
      [
        gossip({ kind: 'txs', txs: txs(MAX_TXS_PER_GOSSIP + 1) }),
        /^gossip\.txs: expected at most 1000 items, got 1001$/,
      ],
      [gossip({ kind: 'status', height: 1, round: 0 }), /^gossip\.committedHeight: missing$/],
      [
        gossip({ kind: 'status', committedHeight: 0, height: 1, round: -1 }),
        /^gossip\.round: expected unsigned integer, got negative integer$/,
      ],
    ];
    for (const [bytes, message] of cases) expectRefused(() => decodeGossip(bytes), message);
    assert.equal(decodeGossip(gossip({ kind: 'txs', txs: txs(MAX_TXS_PER_GOSSIP) })).kind, 'txs');
  });

  it('proposals: validRound is -1 or a round', () => {
    const base = { v: 1, ...proposal, block: decodeCanonical(encodeBlock(secondBlock)) } as Record<
      string,
      unknown
    >;
    delete (base.block as Record<string, unknown>).v;
    assert.deepEqual(decodeProposal(encodeCanonical(base)), proposal);
    expectRefused(
      () => decodeProposal(encodeCanonical({ ...base, validRound: -2 })),
      /^proposal\.validRound: expected an integer in \[-1, 2147483647\], got -2$/,
    );
    expectRefused(
      () =>
        decodeProposal(encodeCanonical({ ...base, block: { ...(base.block as object), v: 1 } })),
      /^proposal\.block: unexpected key "v"$/,
    );
  });
});
