import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import {
  verifyCommittedBlock,
  type BlockProofVerdict,
  type CommittedBlockInput,
} from '../../src/consensus/pos/index.js';
import {
  SpaceFailure,
  StakeFailure,
  TimeFailure,
  WorkFailure,
} from '../../src/consensus/proof/verdict.js';
import { evidenceRoot } from '../../src/consensus/messages.js';
import type { Block, DuplicateVoteEvidence, QuorumCertificate } from '../../src/consensus/types.js';
import {
  buildChain,
  makeTestChain,
  stampOf,
  toyStateRoot,
  type ChainBlock,
  type TestChain,
} from './pos-fixture.js';

/**
 * `verifyCommittedBlock` on blocks and commits of any shape: whatever a caller hands it, a bad
 * block or commit is a verdict, never an exception (docs/consensus-proof.md, API).
 */

let chain: TestChain;
/** Height 2: its last commit (the parent's, with FALCON signatures) is checked too. */
let base: ChainBlock;

before(async () => {
  chain = await makeTestChain(4);
  const blocks = await buildChain(chain, 2);
  base = blocks[1] as ChainBlock;
});

function verify(
  block: unknown,
  commit: unknown,
  extra: Partial<CommittedBlockInput> = {},
): BlockProofVerdict {
  return verifyCommittedBlock({
    genesis: chain.genesis,
    genesisHash: chain.genesisHash,
    block: block as Block,
    commit: commit as QuorumCertificate,
    context: base.context,
    stampOf,
    reexecute: () => toyStateRoot(base.parentStateRoot, base.block.transactions),
    falcon: chain.falcon,
    ...extra,
  });
}

function withHeader(field: string, value: unknown): unknown {
  return { ...base.block, header: { ...base.block.header, [field]: value } };
}

function withoutHeaderField(field: string): unknown {
  const header: Record<string, unknown> = { ...base.block.header };
  delete header[field];
  return { ...base.block, header };
}

function withCommit(field: string, value: unknown): unknown {
  return { ...base.commit, [field]: value };
}

function reasons(verdict: BlockProofVerdict): Record<string, string> {
  return Object.fromEntries(verdict.parts.map((part) => [part.part, part.ok ? 'ok' : part.reason]));
}

/** A block that is not well formed: rules and all four parts fail, and it has no hash. */
function assertMalformedBlock(verdict: BlockProofVerdict, error: RegExp): void {
  assert.equal(verdict.ok, false);
  assert.equal(verdict.blockHash, null);
  assert.equal(verdict.block.ok, false);
  if (!verdict.block.ok) assert.match(verdict.block.message, error);
  assert.deepEqual(reasons(verdict), {
    space: SpaceFailure.UNDECODABLE_PROOF,
    stake: StakeFailure.WRONG_BLOCK,
    work: WorkFailure.UNDECODABLE_PROOF,
    time: TimeFailure.UNDECODABLE_PROOF,
  });
}

/** A well-formed block with a commit that is not: only PoStake fails, as `malformed-commit`. */
function assertMalformedCommit(verdict: BlockProofVerdict, error: RegExp): void {
  assert.equal(verdict.ok, false);
  assert.deepEqual(verdict.block, { ok: true });
  assert.equal(verdict.height, 2);
  assert.deepEqual(verdict.blockHash, base.commit.blockHash);
  assert.deepEqual(reasons(verdict), {
    space: 'ok',
    stake: StakeFailure.MALFORMED_COMMIT,
    work: 'ok',
    time: 'ok',
  });
  const stake = verdict.parts[1];
  if (stake !== undefined && !stake.ok) assert.match(stake.message, error);
}

describe('verifyCommittedBlock on malformed input', () => {
  it('verifies the honest block, so every failure below comes from the mutation', () => {
    const verdict = verify(base.block, base.commit);
    assert.equal(verdict.ok, true, JSON.stringify(reasons(verdict)));
  });

  it('reports a 31-byte parent hash as a malformed block', () => {
    assertMalformedBlock(
      verify(withHeader('parentHash', new Uint8Array(31)), base.commit),
      /parentHash must be 32 bytes/,
    );
  });

  it('reports a fractional height as a malformed block, with no height', () => {
    const verdict = verify(withHeader('height', 2.5), base.commit);
    assertMalformedBlock(verdict, /height must be a positive integer/);
    assert.equal(verdict.height, null);
  });

  it('keeps the height of a block malformed elsewhere', () => {
    const verdict = verify(withHeader('consensusProof', 'not bytes'), base.commit);
    assertMalformedBlock(verdict, /consensus proof must be bytes/);
    assert.equal(verdict.height, 2);
  });

  it('reports a commit whose precommits are null as a malformed commit', () => {
    assertMalformedCommit(
      verify(base.block, withCommit('precommits', null)),
      /precommits are not a list/,
    );
  });

  for (const field of Object.keys({
    chainId: 0,
    height: 0,
    time: 0,
    parentHash: 0,
    transactionsRoot: 0,
    evidenceRoot: 0,
    lastCommitHash: 0,
    appStateRoot: 0,
    validatorsHash: 0,
    proposer: 0,
    consensusProof: 0,
  })) {
    it(`reports a header without ${field} as a malformed block`, () => {
      assertMalformedBlock(
        verify(withoutHeaderField(field), base.commit),
        new RegExp(field === 'consensusProof' ? 'consensus proof' : field),
      );
    });
  }

  it('reports hashes that are not Uint8Arrays as a malformed block', () => {
    const hash = base.block.header.appStateRoot;
    for (const value of [Array.from(hash), Buffer.from(hash).toString('hex'), hash.buffer]) {
      assertMalformedBlock(verify(withHeader('appStateRoot', value), base.commit), /appStateRoot/);
    }
  });

  it('reports a block or header that is no record, and a body of the wrong types', () => {
    assertMalformedBlock(verify(null, base.commit), /not a record/);
    assertMalformedBlock(verify({ ...base.block, header: null }, base.commit), /no header/);
    assertMalformedBlock(
      verify({ ...base.block, transactions: ['tx'] }, base.commit),
      /transactions must be byte strings/,
    );
    assertMalformedBlock(verify({ ...base.block, evidence: {} }, base.commit), /evidence/);
    assertMalformedBlock(verify({ ...base.block, lastCommit: 7 }, base.commit), /last commit/);
  });

  /** Strings with a lone UTF-16 surrogate: no UTF-8 form, so nothing holding one can be hashed. */
  const LONE_SURROGATES = ['\uD800', '\uDC00', 'node\uDBFF', 'hypermesh-pos-test\uD800'];

  it('reports a chain id or proposer with a lone surrogate as a malformed block', () => {
    for (const text of LONE_SURROGATES) {
      assertMalformedBlock(verify(withHeader('chainId', text), base.commit), /chainId/);
      assertMalformedBlock(verify(withHeader('proposer', text), base.commit), /proposer/);
    }
  });

  it('reports a precommit signed by a lone surrogate as a malformed commit, or a bad last commit', () => {
    const [first, ...rest] = base.commit.precommits;
    const lastCommit = base.block.lastCommit as QuorumCertificate;
    const [lastFirst, ...lastRest] = lastCommit.precommits;
    for (const text of LONE_SURROGATES) {
      assertMalformedCommit(
        verify(base.block, withCommit('precommits', [{ ...first, validator: text }, ...rest])),
        /precommit 0/,
      );
      const block = {
        ...base.block,
        lastCommit: { ...lastCommit, precommits: [{ ...lastFirst, validator: text }, ...lastRest] },
      };
      const verdict = verify(block, base.commit);
      assert.equal(verdict.ok, false);
      assert.equal(reasons(verdict).time, TimeFailure.INVALID_LAST_COMMIT);
    }
  });

  it('reports commits of the wrong shape as malformed, whatever else is wrong with them', () => {
    const vote = base.commit.precommits[0];
    const cases: [unknown, RegExp][] = [
      [null, /not a record/],
      [withCommit('height', 2.5), /height/],
      [withCommit('round', '0'), /round/],
      [withCommit('blockHash', Array.from(base.commit.blockHash)), /block hash/],
      [withCommit('precommits', [null]), /precommit 0/],
      [withCommit('precommits', [{ ...vote, signature: 'signed' }]), /precommit 0/],
      // A commit for another height whose precommits cannot be hashed.
      [
        { ...base.commit, height: 3, precommits: [{ ...vote, pqSignature: [1, 2] }] },
        /precommit 0/,
      ],
    ];
    for (const [commit, error] of cases) assertMalformedCommit(verify(base.block, commit), error);
  });

  it('recomputes the whole chain when a sampled check has no commit hash to sample from', () => {
    const sampled = { sequentialWork: { mode: 'sampled', segments: 2 } } as const;
    const verdict = verify(base.block, withCommit('precommits', null), sampled);
    assertMalformedCommit(verdict, /precommits/);
    assert.deepEqual(verdict.parts[3], { ok: true, part: 'time', coverage: 'full' });
    const honest = verify(base.block, base.commit, sampled);
    assert.deepEqual(honest.parts[3], { ok: true, part: 'time', coverage: 'sampled' });
  });

  it('reports evidence whose votes carry a block hash that is not bytes as a broken rule', () => {
    // The evidence root matches, so the block reaches the evidence check itself.
    const vote = base.commit.precommits[0]!;
    const evidence = [
      { voteA: { ...vote, blockHash: 'a' }, voteB: { ...vote, blockHash: 'b' } },
    ] as unknown as DuplicateVoteEvidence[];
    const block = {
      ...base.block,
      evidence,
      header: { ...base.block.header, evidenceRoot: evidenceRoot(evidence) },
    };
    const verdict = verify(block, base.commit);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.block.ok, false);
    if (!verdict.block.ok) assert.match(verdict.block.message, /evidence 0: .*not well formed/);
  });

  it('never throws and never accepts a block, commit or precommit with a field replaced', () => {
    const garbage = fc.oneof(
      fc.anything(),
      fc.uint8Array({ maxLength: 40 }),
      fc.double(),
      fc.bigInt(),
      fc.constantFrom(null, undefined, -1, 0, 2 ** 53, Number.NaN),
      // Lone surrogates: strings that canonical CBOR cannot encode, so nothing holding one hashes.
      fc.constantFrom('\uD800', '\uDC00', 'a\uDBFFb'),
    );
    const target = fc.oneof(
      fc.record({
        where: fc.constant('header' as const),
        key: fc.constantFrom(...Object.keys(base.block.header)),
      }),
      fc.record({
        where: fc.constant('block' as const),
        key: fc.constantFrom('header', 'transactions', 'evidence', 'lastCommit'),
      }),
      fc.record({
        where: fc.constant('commit' as const),
        key: fc.constantFrom(...Object.keys(base.commit)),
      }),
      fc.record({
        where: fc.constant('precommit' as const),
        key: fc.constantFrom(...Object.keys(base.commit.precommits[0] as object)),
      }),
    );
    fc.assert(
      fc.property(target, garbage, ({ where, key }, value) => {
        let block: unknown = base.block;
        let commit: unknown = base.commit;
        let original: unknown;
        if (where === 'header') {
          original = (base.block.header as unknown as Record<string, unknown>)[key];
          block = withHeader(key, value);
        } else if (where === 'block') {
          original = (base.block as unknown as Record<string, unknown>)[key];
          block = { ...base.block, [key]: value };
        } else if (where === 'commit') {
          original = (base.commit as unknown as Record<string, unknown>)[key];
          commit = withCommit(key, value);
        } else {
          const [first, ...rest] = base.commit.precommits;
          original = (first as unknown as Record<string, unknown>)[key];
          commit = withCommit('precommits', [{ ...first, [key]: value }, ...rest]);
        }
        // Not the same value: isDeepStrictEqual tells -0 from 0 (Object.is), the verifier does
        // not (a round of -0 is round 0), so a 0 replaced by -0 is no change.
        fc.pre(!isDeepStrictEqual(original, value) && !(value === 0 && original === 0));
        const verdict = verify(block, commit);
        assert.equal(verdict.ok, false, `${where}.${key} replaced, the block still verified`);
        assert.deepEqual(
          verdict.parts.map((part) => part.part),
          ['space', 'stake', 'work', 'time'],
        );
      }),
      { numRuns: 300 },
    );
  });
});
