import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { encodeSequence, sequenceKey } from '../../src/consensus/application/accounts.js';
import { decodeTransaction } from '../../src/consensus/application/envelope.js';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { CliError } from '../../src/node/cli-error.js';
import { submitTransaction } from '../../src/node/tx-submit.js';
import {
  CommittedRootError,
  CommittedRootErrorCode,
  withCommittedRoots,
} from '../../src/node/verified-root.js';
import {
  encodeStateProof,
  stateKeyHash,
  stateLeafHash,
  stateValueHash,
} from '../../src/storage/state-proof.js';
import { CommittedBlocks } from './committed-roots-fixture.js';

/**
 * `submitTransaction` signs with the sender's next sequence only once the node's answer is
 * proven: its Merkle proof against the root it names, and that root against the committed
 * header of its height. A node that reports N+1 (to have the wallet sign a transaction that
 * executes later, once N is used) or proves it against a root of its own making is refused
 * before anything is signed or sent.
 */

const { privateKey } = generateEd25519KeyPair();
const sender = ed25519RawPublicKey(privateKey);

/** The one-key state holding the sender's next sequence `next`: its root and proof. */
function sequenceState(next: number) {
  const value = encodeSequence(next);
  const leaf = { keyHash: stateKeyHash(sequenceKey(sender)), valueHash: stateValueHash(value) };
  return {
    value,
    root: stateLeafHash(leaf.keyHash, leaf.valueHash),
    proof: encodeStateProof({ siblings: [], leaf }),
  };
}

describe('submitTransaction proves the sequence before signing', () => {
  let node: CommittedBlocks;
  const honest = sequenceState(5);
  before(async () => {
    node = await CommittedBlocks.create(4);
    await node.commit(10, honest.root);
  });

  /** A checking client of `node` whose sequence answer `answer` makes up; records what it is sent. */
  function clientOf(answer: () => QueryResponse) {
    const sent: Uint8Array[] = [];
    const bodies: number[] = [];
    const plain = {
      getBlock: (height: number) => node.getBlock(height),
      validatorUpdates: (from: number, to: number) => node.validatorUpdates(from, to),
      query: (_request: QueryRequest) => Promise.resolve(answer()),
      submitTx: (tx: Uint8Array) => {
        sent.push(tx);
        return Promise.resolve({ ok: true as const, txHash: new Uint8Array(32), duplicate: false });
      },
      txStatus: () => Promise.resolve({ status: 'pending' as const }),
    } as unknown as NodeRpcClient;
    const client = withCommittedRoots(plain, node.chain.genesis);
    const submit = () =>
      submitTransaction({
        client,
        genesis: node.chain.genesis,
        privateKey,
        module: 'kv',
        body: (sequence) => {
          bodies.push(sequence);
          return Promise.resolve(new Uint8Array([1, 2, 3]));
        },
        wait: false,
        timeoutMs: 1_000,
      });
    return { plain, client, sent, bodies, submit };
  }

  it('signs and sends with the proven sequence', async () => {
    const { sent, bodies, submit } = clientOf(() => ({
      height: 10,
      value: honest.value,
      stateRoot: honest.root,
      proof: honest.proof,
    }));
    const outcome = await submit();
    assert.equal(outcome.sequence, 5);
    assert.deepEqual(bodies, [5]);
    assert.equal(sent.length, 1);
    const envelope = decodeTransaction(sent[0]!);
    assert.equal(envelope.sequence, 5);
    assert.deepEqual(envelope.sender, sender);
  });

  it('refuses N+1 proven against a root no committed header carries', async () => {
    const forged = sequenceState(6);
    const { sent, bodies, submit } = clientOf(() => ({
      height: 10,
      value: forged.value,
      stateRoot: forged.root,
      proof: forged.proof,
    }));
    await assert.rejects(submit(), (error: unknown) => {
      assert.ok(error instanceof CommittedRootError, String(error));
      assert.equal(error.code, CommittedRootErrorCode.ROOT_MISMATCH);
      assert.equal(error.height, 10);
      return true;
    });
    assert.deepEqual(bodies, []);
    assert.equal(sent.length, 0);
  });

  it('refuses N+1 with the committed root but a proof of N', async () => {
    const { sent, bodies, submit } = clientOf(() => ({
      height: 10,
      value: encodeSequence(6),
      stateRoot: honest.root,
      proof: honest.proof,
    }));
    await assert.rejects(submit(), (error: unknown) => {
      assert.ok(error instanceof CliError, String(error));
      assert.match(error.message, /sequence of [0-9a-f]{64} does not verify: its proof/);
      return true;
    });
    assert.deepEqual(bodies, []);
    assert.equal(sent.length, 0);
  });

  it('refuses an answer without a proof', async () => {
    const { sent, submit } = clientOf(() => ({
      height: 10,
      value: encodeSequence(6),
      stateRoot: honest.root,
    }));
    await assert.rejects(submit(), /does not verify: it carries no proof/);
    assert.equal(sent.length, 0);
  });

  it('refuses an answer that names no committed height', async () => {
    const { sent, submit } = clientOf(() => ({
      height: null,
      value: honest.value,
      stateRoot: honest.root,
      proof: honest.proof,
    }));
    await assert.rejects(
      submit(),
      (error: unknown) =>
        error instanceof CommittedRootError && error.code === CommittedRootErrorCode.NO_HEIGHT,
    );
    assert.equal(sent.length, 0);
  });

  it('refuses a client that does not check roots', async () => {
    const { plain, sent } = clientOf(() => ({
      height: 10,
      value: honest.value,
      stateRoot: honest.root,
      proof: honest.proof,
    }));
    await assert.rejects(
      submitTransaction({
        client: plain,
        genesis: node.chain.genesis,
        privateKey,
        module: 'kv',
        body: new Uint8Array([1]),
        wait: false,
        timeoutMs: 1_000,
      }),
      (error: unknown) => error instanceof CliError && /withCommittedRoots/.test(error.message),
    );
    assert.equal(sent.length, 0);
  });
});
