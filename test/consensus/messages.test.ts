import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCanonical, encodeCanonical } from '../../src/codec/cbor.js';
import { toHex } from '../../src/crypto/bytes.js';
import {
  blockHash,
  blockHeaderBytes,
  commitHash,
  precommitPqSignBytes,
  proposalSignBytes,
  transactionsRoot,
  VOTE_DOMAIN,
  voteSignBytes,
  type VoteContent,
} from '../../src/consensus/messages.js';
import { emptyRoot } from '../../src/crypto/merkle.js';
import { makeBlock, makeGenesis, makeValidators } from './sim/fixtures.js';

function referenceVoteBytes(chainId: string, vote: VoteContent): Uint8Array {
  return encodeCanonical({ domain: VOTE_DOMAIN, chainId, ...vote });
}

describe('canonical sign bytes', () => {
  const vote: VoteContent = {
    type: 'precommit',
    height: 7,
    round: 2,
    blockHash: new Uint8Array(32).fill(0x11),
    timestamp: 1_700_000_000_123,
    validator: 'ab'.repeat(20),
  };

  it('vote sign bytes are deterministic CBOR of the domain-tagged vote (golden vector)', () => {
    const bytes = voteSignBytes('hypermesh-test', vote);
    // The bytes decode back to exactly the signed fields and are in canonical form.
    assert.deepEqual(decodeCanonical(bytes), {
      domain: VOTE_DOMAIN,
      chainId: 'hypermesh-test',
      ...vote,
    });
    assert.equal(toHex(bytes), toHex(referenceVoteBytes('hypermesh-test', vote)));
    // Pinned: map(8) with keys in RFC 8949 §4.2.1 order — "type", "round", "domain", "height",
    // "chainId", "blockHash", "timestamp", "validator". A change here invalidates signatures.
    const text = (value: string) => toHex(new TextEncoder().encode(value));
    assert.equal(
      toHex(bytes),
      'a8' +
        `64${text('type')}69${text('precommit')}` +
        `65${text('round')}02` +
        `66${text('domain')}781b${text(VOTE_DOMAIN)}` +
        `66${text('height')}07` +
        `67${text('chainId')}6e${text('hypermesh-test')}` +
        `69${text('blockHash')}5820${'11'.repeat(32)}` +
        `69${text('timestamp')}1b0000018bcfe5687b` +
        `69${text('validator')}7828${text('ab'.repeat(20))}`,
    );
  });

  it('the fast vote encoder equals encodeCanonical for any vote', () => {
    fc.assert(
      fc.property(
        fc.record({
          type: fc.constantFrom('prevote' as const, 'precommit' as const),
          height: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.maxSafeNat()),
          round: fc.oneof(
            fc.integer({ min: 0, max: 300 }),
            fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          ),
          blockHash: fc.option(fc.uint8Array({ minLength: 0, maxLength: 40 }), { nil: null }),
          timestamp: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.maxSafeNat()),
          validator: fc.oneof(fc.stringMatching(/^[0-9a-f]{40}$/), fc.string()),
        }),
        fc.oneof(fc.string(), fc.constant('hypermesh'), fc.string({ unit: 'binary' })),
        (content, chainId) => {
          // Equal bytes, or the same refusal (a lone surrogate has no UTF-8 form).
          const attempt = (encode: () => Uint8Array) => {
            try {
              return toHex(encode());
            } catch (error) {
              return `error: ${(error as Error).name}`;
            }
          };
          assert.equal(
            attempt(() => voteSignBytes(chainId, content)),
            attempt(() => referenceVoteBytes(chainId, content)),
          );
        },
      ),
      { numRuns: 400 },
    );
  });

  it('binds chain, type, height, round, value, time and validator', () => {
    const base = toHex(voteSignBytes('chain-a', vote));
    const variants: [string, VoteContent][] = [
      ['chain-b', vote],
      ['chain-a', { ...vote, type: 'prevote' }],
      ['chain-a', { ...vote, height: 8 }],
      ['chain-a', { ...vote, round: 3 }],
      ['chain-a', { ...vote, blockHash: null }],
      ['chain-a', { ...vote, timestamp: vote.timestamp + 1 }],
      ['chain-a', { ...vote, validator: 'cd'.repeat(20) }],
    ];
    for (const [chainId, variant] of variants) {
      assert.notEqual(toHex(voteSignBytes(chainId, variant)), base);
    }
  });

  it('separates votes, proposals and FALCON precommit attestations by domain', () => {
    const hash = new Uint8Array(32).fill(3);
    const proposal = proposalSignBytes('c', {
      height: 1,
      round: 0,
      blockHash: hash,
      validRound: -1,
      proposer: 'ab',
    });
    const pq = precommitPqSignBytes('c', { height: 1, round: 0, blockHash: hash });
    const domains = [proposal, pq].map(
      (bytes) => (decodeCanonical(bytes) as { domain: string }).domain,
    );
    assert.deepEqual(domains, [
      'hypermesh/consensus/proposal/v1',
      'hypermesh/consensus/precommit-pq/v1',
    ]);
    assert.equal((decodeCanonical(pq) as { algorithm: string }).algorithm, 'falcon-1024-r3');
  });

  it('block hash covers every header field and the body through its roots', () => {
    const { validators, set } = makeValidators([1, 1, 1, 1]);
    const block = makeBlock(makeGenesis(set), validators[0]!.address);
    const base = toHex(blockHash(block.header));
    assert.equal(toHex(blockHash({ ...block.header })), base);
    for (const field of Object.keys(block.header) as (keyof typeof block.header)[]) {
      const value = block.header[field];
      const changed =
        typeof value === 'number'
          ? value + 1
          : typeof value === 'string'
            ? `${value}x`
            : value.length === 0
              ? Uint8Array.of(0)
              : Uint8Array.from(value, (byte, i) => (i === 0 ? byte ^ 1 : byte));
      assert.notEqual(toHex(blockHash({ ...block.header, [field]: changed })), base, field);
    }
    assert.deepEqual(
      Object.keys(decodeCanonical(blockHeaderBytes(block.header)) as object).length,
      12,
    );
    assert.equal(toHex(transactionsRoot([])), toHex(emptyRoot()));
    assert.notEqual(toHex(commitHash(null)), toHex(transactionsRoot([])));
  });
});
