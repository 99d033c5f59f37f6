import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { genesisHeightContext } from '../../src/consensus/genesis.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import type { Block, QuorumCertificate } from '../../src/consensus/types.js';
import { encodeBlock, encodeQuorumCertificate } from '../../src/consensus/wire.js';
import {
  BLOCK_VERIFY_EXIT_CODES,
  blockVerifyJson,
  formatBlockVerify,
  verifyBlockFromNode,
} from '../../src/node/block-verify.js';
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
 * The node is a fake client serving an honest block 1 (no transactions) of a test chain.
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
 * A node serving `served` as block 1 whose `blockWitness` throws `refusal`, or answers with
 * those bytes.
 */
function fakeNode(refusal: Error | Uint8Array, served: Block = block): FakeNode {
  let calls = 0;
  const client = {
    getBlock: async (height: number) => {
      if (height !== 1) throw new StoqError(StoqErrorCode.NOT_FOUND, 'no such block');
      return { height, block: encodeBlock(served), commit: encodeQuorumCertificate(commit) };
    },
    validatorUpdates: async () => [],
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
      assert.equal(report.verdict.ok, true, JSON.stringify(report.verdict.parts));
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
    assert.equal(report.verdict.ok, false);
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
