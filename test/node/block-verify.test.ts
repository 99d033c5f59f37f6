import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { genesisHash, genesisHeightContext } from '../../src/consensus/genesis.js';
import { nextHeightSchedules } from '../../src/consensus/height-context.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import type { Block, QuorumCertificate } from '../../src/consensus/types.js';
import type { ValidatorSetUpdate } from '../../src/consensus/validator-set.js';
import { encodeValidatorUpdates } from '../../src/consensus/validator-updates.js';
import { encodeBlock, encodeQuorumCertificate } from '../../src/consensus/wire.js';
import {
  BLOCK_VERIFY_EXIT_CODES,
  blockVerifyJson,
  formatBlockVerify,
  verifyBlockFromNode,
} from '../../src/node/block-verify.js';
import { CliError } from '../../src/node/cli-error.js';
import { highestPossibleHeight } from '../../src/node/validator-set-trail.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
import {
  makeTestChain,
  proposeBlock,
  signCommit,
  type TestChain,
} from '../consensus/pos-fixture.js';

/**
 * `hypermesh block verify` against a node that refuses the state witness: the node being checked
 * must not be able to switch off the re-execution and still get a valid report (docs/node.md).
 * The node is a fake client serving an honest block 1 (no transactions) of a test chain. Then:
 * a validator set the verifier cannot trust, and a genesis that does not require FALCON.
 */

let chain: TestChain;
let block: Block;
let commit: QuorumCertificate;

before(async () => {
  chain = await makeTestChain(4);
  block = proposeBlock(chain, genesisHeightContext(chain.genesis), [], new Uint8Array(32));
  commit = await signCommit(chain, block);
});

interface FakeNode {
  readonly client: NodeRpcClient;
  readonly witnessCalls: () => number;
}

/**
 * A node serving `served` as block 1 (with `servedCommit`) whose `blockWitness` throws
 * `refusal`, or answers with those bytes.
 */
function fakeNode(
  refusal: Error | Uint8Array,
  served: Block = block,
  servedCommit: QuorumCertificate = commit,
): FakeNode {
  return chainNode(refusal, new Map([[1, { block: served, commit: servedCommit }]]), []);
}

/**
 * A node serving `blocks` by height, the validator updates `updates` (encoded, by the height of
 * the block that returned them), and `refusal` as its witness answer.
 */
function chainNode(
  refusal: Error | Uint8Array,
  blocks: ReadonlyMap<number, { block: Block; commit: QuorumCertificate }>,
  updates: readonly { height: number; bytes: Uint8Array }[],
): FakeNode {
  let calls = 0;
  const client = {
    getBlock: async (height: number) => {
      const served = blocks.get(height);
      if (served === undefined) throw new StoqError(StoqErrorCode.NOT_FOUND, 'no such block');
      return {
        height,
        block: encodeBlock(served.block),
        commit: encodeQuorumCertificate(served.commit),
      };
    },
    validatorUpdates: async (from: number, to: number) =>
      updates.filter((entry) => entry.height >= from && entry.height <= to),
    blockWitness: async () => {
      calls++;
      if (refusal instanceof Uint8Array) return refusal;
      throw refusal;
    },
  } as unknown as NodeRpcClient;
  return { client, witnessCalls: () => calls };
}

const refusals = {
  'a node out of resources': new StoqError(StoqErrorCode.RESOURCE_EXHAUSTED, 'too large', {}),
  'a node without the method': new StoqError(StoqErrorCode.UNAVAILABLE, 'unknown method', {}),
};

describe('block verify when the node gives no state witness', () => {
  for (const [name, refusal] of Object.entries(refusals)) {
    it(`is incomplete, not valid, with ${name} (exit code 3)`, async () => {
      const node = fakeNode(refusal);
      const report = await verifyBlockFromNode(node.client, chain.genesis, 1);
      // Every check that ran holds: only the re-execution is missing.
      assert.equal(report.verdict?.ok, true, JSON.stringify(report.verdict?.parts));
      assert.equal(report.reexecution.ran, false);
      assert.equal(report.status, 'incomplete');
      assert.equal(report.ok, false);
      assert.equal(BLOCK_VERIFY_EXIT_CODES[report.status], 3);
      assert.equal(node.witnessCalls(), 1);
      const text = formatBlockVerify(report, 'node-1');
      assert.match(text.join('\n'), /work +ok +stamps-only .*not re-executed/);
      assert.match(
        text.at(-1) as string,
        new RegExp(
          `^INCOMPLETE: the state root was not re-executed: the node gave no state witness: ${refusal.code}: .*--node.*--no-reexecute`,
        ),
      );
      const json = blockVerifyJson(report, 'node-1') as Record<string, unknown>;
      assert.equal(json.status, 'incomplete');
      assert.equal(json.ok, false);
    });
  }

  it('is valid (exit code 0) when the caller asked for no re-execution', async () => {
    const node = fakeNode(refusals['a node out of resources']);
    const report = await verifyBlockFromNode(node.client, chain.genesis, 1, { reexecute: false });
    assert.equal(report.status, 'valid');
    assert.equal(report.ok, true);
    assert.equal(BLOCK_VERIFY_EXIT_CODES[report.status], 0);
    assert.equal(node.witnessCalls(), 0);
    assert.equal(formatBlockVerify(report, 'node-1').at(-1), 'valid');
  });

  it('is invalid (exit code 1), not incomplete, when a check fails', async () => {
    const proof = block.header.consensusProof.slice();
    proof[proof.length - 1] = (proof[proof.length - 1] as number) ^ 1;
    const forged = { ...block, header: { ...block.header, consensusProof: proof } };
    const node = fakeNode(refusals['a node out of resources'], forged);
    const report = await verifyBlockFromNode(node.client, chain.genesis, 1);
    assert.equal(report.verdict?.ok, false);
    assert.equal(report.status, 'invalid');
    assert.equal(BLOCK_VERIFY_EXIT_CODES[report.status], 1);
    assert.equal(formatBlockVerify(report, 'node-1').at(-1), 'INVALID');
  });

  it('is incomplete, not invalid, when the node sends a witness that does not check out', async () => {
    // Not CBOR at all: the node's fault, and it says nothing about the block.
    const node = fakeNode(Uint8Array.of(0xff, 0x00, 0x01));
    const report = await verifyBlockFromNode(node.client, chain.genesis, 1);
    assert.equal(report.reexecution.ran, true);
    assert.ok(
      report.reexecution.ran &&
        /malformed state witness/.test(report.reexecution.witnessFault ?? ''),
    );
    assert.equal(report.status, 'incomplete');
    assert.equal(BLOCK_VERIFY_EXIT_CODES[report.status], 3);
    assert.match(
      formatBlockVerify(report, 'node-1').at(-1) as string,
      /^INCOMPLETE: the state root was not re-executed: the node's state witness did not check out: malformed state witness/,
    );
    // The same bad witness with a forged proof: the block's own failure makes it invalid.
    const proof = block.header.consensusProof.slice();
    proof[proof.length - 1] = (proof[proof.length - 1] as number) ^ 1;
    const forged = { ...block, header: { ...block.header, consensusProof: proof } };
    const both = await verifyBlockFromNode(
      fakeNode(Uint8Array.of(0xff), forged).client,
      chain.genesis,
      1,
    );
    assert.equal(both.status, 'invalid');
  });
});

describe('block verify when the validator set of the height cannot be trusted', () => {
  // A legitimate rotation: block 1 returns updates that replace 3 of the 4 genesis validators
  // (power 10 each) by 3 new ones, so the set changes at height 3 (updates take effect two
  // heights later). Of the old set only the validator that stays signs block 3: 10 of 40, not
  // more than 1/3, so the change cannot be checked without application state — which says
  // nothing against block 3 or any later block.
  let rotation: ValidatorSetUpdate[];
  let rotated: { block: Block; commit: QuorumCertificate }[];
  let tooFewSigners: QuorumCertificate;

  before(async () => {
    const incoming = (await makeTestChain(3)).validators;
    const stays = chain.validators[0] as (typeof chain.validators)[number];
    rotation = [
      ...chain.validators
        .slice(1)
        .map((validator) => ({ publicKey: validator.publicKey, power: 0 })),
      ...incoming.map((validator) => ({
        publicKey: validator.publicKey,
        power: 10,
        pqPublicKey: validator.pq.publicKey,
        storageRoot: validator.plot.root,
      })),
    ];
    const rotatedSet = nextHeightSchedules(
      nextHeightSchedules(genesisHeightContext(chain.genesis), rotation),
      [],
    ).schedule.validators;
    assert.equal(rotatedSet.totalPower, 40);
    rotated = [];
    for (const height of [2, 3, 4]) {
      const header = {
        ...block.header,
        height,
        validatorsHash: height >= 3 ? rotatedSet.hash : block.header.validatorsHash,
      };
      const at = { ...block, header };
      const signers = height >= 3 ? [stays, ...incoming] : chain.validators;
      rotated.push({ block: at, commit: await signCommit(chain, at, { signers }) });
    }
    const third = rotated[1] as (typeof rotated)[number];
    // 20 of the new set's 40: not a commit.
    tooFewSigners = await signCommit(chain, third.block, {
      signers: [stays, incoming[0] as (typeof incoming)[number]],
    });
  });

  const servedChain = (third?: QuorumCertificate) =>
    new Map(
      rotated.map((entry) => [
        entry.block.header.height,
        third !== undefined && entry.block.header.height === 3
          ? { ...entry, commit: third }
          : entry,
      ]),
    );

  for (const height of [3, 4]) {
    it(`is incomplete (exit code 3), not invalid, for block ${height} after a rotation the old set vouched too little for`, async () => {
      const node = chainNode(new Uint8Array(0), servedChain(), [
        { height: 1, bytes: encodeValidatorUpdates(rotation) },
      ]);
      const report = await verifyBlockFromNode(node.client, chain.genesis, height);
      assert.ok(!report.validatorSet.ok);
      assert.equal(report.validatorSet.reason, 'trusted-power-too-low');
      assert.equal(report.validatorSet.height, 3);
      assert.equal(report.status, 'incomplete');
      assert.equal(report.ok, false);
      assert.equal(BLOCK_VERIFY_EXIT_CODES[report.status], 3);
      // Nothing was checked against another height's set, nor re-executed on it.
      assert.equal(report.verdict, null);
      assert.equal(node.witnessCalls(), 0);
      const text = formatBlockVerify(report, 'node-1');
      assert.deepEqual(
        text.filter((line) => /^ {2}(rules|space|stake|work|time) /.test(line)),
        [],
      );
      assert.match(
        text.join('\n'),
        /\n {2}set +UNTRUSTED +trusted-power-too-low +block 3 was signed by 10 of the 40 voting power of the previous set; more than 1\/3 \(at least 14\) is needed: the change cannot be verified without application state\n/,
      );
      assert.match(
        text.at(-1) as string,
        new RegExp(
          `^INCOMPLETE: the validator set of height ${height} cannot be trusted \\(trusted-power-too-low at height 3, see "set"\\), so the block's rules and proof parts were not checked`,
        ),
      );
      const json = blockVerifyJson(report, 'node-1') as Record<string, unknown>;
      assert.equal(json.status, 'incomplete');
      assert.equal(json.verdict, null);
    });
  }

  it('is incomplete (exit code 3) when the node reports updates that cannot apply', async () => {
    const unknown = (await makeTestChain(1)).validators[0] as (typeof chain.validators)[number];
    const removesUnknown = encodeValidatorUpdates([{ publicKey: unknown.publicKey, power: 0 }]);
    const node = chainNode(new Uint8Array(0), servedChain(), [
      { height: 1, bytes: removesUnknown },
    ]);
    const report = await verifyBlockFromNode(node.client, chain.genesis, 4);
    assert.ok(!report.validatorSet.ok);
    assert.equal(report.validatorSet.reason, 'updates-refused');
    assert.equal(report.validatorSet.height, 1);
    assert.equal(report.status, 'incomplete');
    assert.equal(BLOCK_VERIFY_EXIT_CODES[report.status], 3);
    assert.equal(report.verdict, null);
    const text = formatBlockVerify(report, 'node-1');
    assert.ok(
      !text.some((line) => /^ {2}(rules|space|stake|work|time) /.test(line)),
      text.join('\n'),
    );
    assert.match(
      text.join('\n'),
      /set +UNTRUSTED +updates-refused +the validator updates the node reported for block 1 cannot apply: .*not a validator/,
    );
    assert.match(
      text.at(-1) as string,
      /^INCOMPLETE: the validator set of height 4 cannot be trusted \(updates-refused at height 1, see "set"\).*Ask another node \(--node\)$/,
    );
  });

  it('is invalid (exit code 1) when the block starting the set has no commit of the set it names', async () => {
    // Whatever the true set of height 3 is, this block and commit are bad: the header names the
    // derived set, which the commit does not reach.
    const node = chainNode(new Uint8Array(0), servedChain(tooFewSigners), [
      { height: 1, bytes: encodeValidatorUpdates(rotation) },
    ]);
    const report = await verifyBlockFromNode(node.client, chain.genesis, 3);
    assert.ok(!report.validatorSet.ok);
    assert.equal(report.validatorSet.reason, 'commit-invalid');
    assert.equal(report.status, 'invalid');
    assert.equal(BLOCK_VERIFY_EXIT_CODES[report.status], 1);
    assert.equal(report.verdict, null);
    const text = formatBlockVerify(report, 'node-1');
    assert.match(text.join('\n'), /set +INVALID +commit-invalid +the commit of block 3: /);
    assert.match(text.at(-1) as string, /^INVALID: block 3 starts a new validator set/);
    // Asked about block 4, the same refusal of block 3's commit says nothing against block 4.
    const later = await verifyBlockFromNode(node.client, chain.genesis, 4);
    assert.equal(later.status, 'incomplete');
  });
});

describe('block verify when the genesis does not require FALCON-1024', () => {
  let laxGenesis: typeof chain.genesis;
  let laxBlock: Block;
  let laxCommit: QuorumCertificate;

  before(async () => {
    laxGenesis = { ...chain.genesis, consensus: { ...chain.genesis.consensus, requirePq: false } };
    const lax = { ...chain, genesis: laxGenesis, genesisHash: genesisHash(laxGenesis) };
    laxBlock = proposeBlock(lax, genesisHeightContext(laxGenesis), [], new Uint8Array(32));
    laxCommit = await signCommit(lax, laxBlock);
  });

  /** The commit with the FALCON signatures of all but the first `keep` precommits removed. */
  const keepingFalcon = (keep: number): QuorumCertificate => ({
    ...laxCommit,
    precommits: laxCommit.precommits.map((vote, position) => {
      if (position < keep) return vote;
      const { pqSignature: _removed, ...ed25519Only } = vote;
      return ed25519Only;
    }),
  });

  const cases = [
    {
      keep: 0,
      stake:
        /stake +ok +full +PoStake: .*, Ed25519 only \(FALCON-1024 not required by the genesis \(requirePq false\)\)$/,
    },
    {
      keep: 2,
      stake:
        /stake +ok +full +PoStake: .*, Ed25519, and FALCON-1024 on 2 of 4 \(FALCON-1024 not required/,
    },
  ];
  for (const { keep, stake } of cases) {
    it(`reports the signatures it checked, with FALCON on ${keep} of 4 precommits`, async () => {
      const node = fakeNode(new Uint8Array(0), laxBlock, keepingFalcon(keep));
      const report = await verifyBlockFromNode(node.client, laxGenesis, 1, { reexecute: false });
      assert.equal(report.status, 'valid', JSON.stringify(report.verdict?.parts));
      assert.deepEqual(report.commitSignatures, { precommits: 4, falcon: keep, requirePq: false });
      const text = formatBlockVerify(report, 'node-1');
      const line = text.find((entry) => entry.startsWith('  stake '));
      assert.match(line ?? '', stake);
      assert.doesNotMatch(line ?? '', /Ed25519 \+ FALCON-1024/);
    });
  }

  it('says Ed25519 + FALCON-1024 when the genesis requires both', async () => {
    const report = await verifyBlockFromNode(fakeNode(new Uint8Array(0)).client, chain.genesis, 1, {
      reexecute: false,
    });
    assert.equal(report.status, 'valid');
    assert.deepEqual(report.commitSignatures, { precommits: 4, falcon: 4, requirePq: true });
    const line = formatBlockVerify(report, 'node-1').find((entry) => entry.startsWith('  stake '));
    assert.match(line ?? '', /stake +ok +full +PoStake: .*, Ed25519 \+ FALCON-1024$/);
  });
});

describe('block verify of a far height', () => {
  it('refuses a height the chain cannot have reached yet, asking the node nothing', async () => {
    const possible = highestPossibleHeight(chain.genesis, Date.now());
    let asked = 0;
    const client = {
      getBlock: async () => {
        asked++;
        throw new StoqError(StoqErrorCode.NOT_FOUND, 'no such block');
      },
      validatorUpdates: async () => {
        asked++;
        return [];
      },
    } as unknown as NodeRpcClient;
    for (const height of [Number.MAX_SAFE_INTEGER, possible + 1_000_000]) {
      await assert.rejects(
        verifyBlockFromNode(client, chain.genesis, height),
        (error: unknown) =>
          error instanceof CliError &&
          new RegExp(`^block ${height} cannot exist yet: blocks are at least 1 ms apart`).test(
            error.message,
          ),
      );
    }
    assert.equal(asked, 0);
  });

  it('replays the proposer order of the heights below with the event loop turning', async () => {
    // Any block of height 30,001 (and its parent): the order of 30,000 heights is replayed
    // before the block is checked against it.
    const height = 30_001;
    const at = (h: number) => ({
      block: { ...block, header: { ...block.header, height: h } },
      commit,
    });
    const node = chainNode(
      new Uint8Array(0),
      new Map([
        [height - 1, at(height - 1)],
        [height, at(height)],
      ]),
      [],
    );
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    let report: Awaited<ReturnType<typeof verifyBlockFromNode>>;
    try {
      report = await verifyBlockFromNode(node.client, chain.genesis, height, { reexecute: false });
    } finally {
      spinning = false;
    }
    assert.equal(report.status, 'invalid');
    // One turn per 10,000 heights replayed (and one per window of updates asked for).
    assert.ok(turns >= 3, `the event loop turned ${turns} times`);
  });
});
