import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { encodeSequence, sequenceKey } from '../../src/consensus/application/accounts.js';
import { decodeTransaction } from '../../src/consensus/application/envelope.js';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import { DEFAULT_MAX_SEQUENCE_LEAD } from '../../src/consensus/application/index.js';
import { MempoolRejectionCode } from '../../src/consensus/mempool.js';
import type { NodeRpcClient, TxStatus, TxSubmitResult } from '../../src/consensus/net/index.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { CliError } from '../../src/node/cli-error.js';
import { submitTransaction, type Admission } from '../../src/node/tx-submit.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
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
const nothing = (): Promise<number | null> => Promise.resolve(null);
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
  function clientOf(answer: () => QueryResponse, pending: () => Promise<number | null> = nothing) {
    const sent: Uint8Array[] = [];
    const bodies: number[] = [];
    const plain = {
      getBlock: (height: number) => node.getBlock(height),
      validatorUpdates: (from: number, to: number) => node.validatorUpdates(from, to),
      query: (_request: QueryRequest) => Promise.resolve(answer()),
      pendingSequence: pending,
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

describe('submitTransaction with transactions of the sender pending', () => {
  let node: CommittedBlocks;
  const honest = sequenceState(5);
  before(async () => {
    node = await CommittedBlocks.create(4);
    await node.commit(10, honest.root);
  });

  interface Script {
    /** The node's `pendingSequence` answer (or failure). */
    readonly pending?: () => Promise<number | null>;
    /** The admission answer for the n-th submission (0-based); undefined: admitted. */
    readonly admit?: (n: number) => TxSubmitResult | undefined;
    /** The n-th status answer while waiting (1-based), or a failure. */
    readonly status?: (n: number) => Promise<TxStatus>;
    readonly wait?: boolean;
    readonly onAdmitted?: (admission: Admission) => void;
  }

  /** `submitTransaction` against a node of proven next sequence 5 scripted by `script`. */
  function run(script: Script) {
    const sent: number[] = [];
    const bodies: number[] = [];
    let statuses = 0;
    const plain = {
      getBlock: (height: number) => node.getBlock(height),
      validatorUpdates: (from: number, to: number) => node.validatorUpdates(from, to),
      query: () =>
        Promise.resolve({
          height: 10,
          value: honest.value,
          stateRoot: honest.root,
          proof: honest.proof,
        }),
      pendingSequence: script.pending ?? nothing,
      submitTx: (tx: Uint8Array) => {
        const envelope = decodeTransaction(tx);
        sent.push(envelope.sequence);
        const admitted: TxSubmitResult = { ok: true, txHash: envelope.txHash, duplicate: false };
        return Promise.resolve(script.admit?.(sent.length - 1) ?? admitted);
      },
      txStatus: () => {
        statuses++;
        return script.status?.(statuses) ?? Promise.resolve({ status: 'pending' as const });
      },
    } as unknown as NodeRpcClient;
    const outcome = submitTransaction({
      client: withCommittedRoots(plain, node.chain.genesis),
      genesis: node.chain.genesis,
      privateKey,
      module: 'kv',
      body: (sequence) => {
        bodies.push(sequence);
        return Promise.resolve(new Uint8Array([sequence]));
      },
      wait: script.wait ?? false,
      timeoutMs: 60_000,
      onAdmitted: script.onAdmitted,
    });
    return { outcome, sent, bodies, statuses: () => statuses };
  }

  const taken = (n: number): TxSubmitResult => ({
    ok: false,
    code: MempoolRejectionCode.SEQUENCE_TAKEN,
    message: `sender already has a pending transaction with sequence ${5 + n}`,
  });

  it('signs with the proven committed sequence whatever the node says is pending', async () => {
    for (const pending of [7, 3, 5 + DEFAULT_MAX_SEQUENCE_LEAD + 1]) {
      const { outcome, sent, bodies } = run({ pending: () => Promise.resolve(pending) });
      assert.equal((await outcome).sequence, 5);
      assert.deepEqual([sent, bodies], [[5], [5]]);
    }
  });

  it('sends once on a taken sequence: no re-signed transaction for a node to keep', async () => {
    const always = run({ admit: taken, pending: () => Promise.resolve(7) });
    const refused = await always.outcome;
    assert.deepEqual([always.sent, always.bodies], [[5], [5]]);
    assert.equal(refused.admitted, false);
    assert.equal(!refused.admitted && refused.code, MempoolRejectionCode.SEQUENCE_TAKEN);
    assert.match(
      !refused.admitted ? refused.message : '',
      /2 transaction\(s\) of the sender are pending from sequence 5 on; wait for the pending transaction to commit/,
    );
    // A node without `pendingSequence` (or one that fails it): the advice alone.
    const old = run({
      admit: taken,
      pending: () =>
        Promise.reject(
          new StoqError(StoqErrorCode.NOT_FOUND, 'no method pendingSequence', {
            method: 'hypermesh.node.api.v1/pendingSequence',
          }),
        ),
    });
    const plain = await old.outcome;
    assert.deepEqual(old.sent, [5]);
    assert.match(!plain.admitted ? plain.message : '', /\(wait for the pending transaction/);
  });

  it("passes the node's duplicate flag through", async () => {
    const { outcome } = run({
      admit: () => ({ ok: true, txHash: new Uint8Array(32), duplicate: true }),
    });
    const done = await outcome;
    assert.equal(done.admitted && done.duplicate, true);
  });

  it('tells the admission before waiting, so a failure while waiting still names the transaction', async () => {
    const told: Admission[] = [];
    const { outcome, sent } = run({
      wait: true,
      onAdmitted: (admission) => told.push(admission),
      status: () => Promise.reject(new StoqError(StoqErrorCode.UNAVAILABLE, 'the node went away')),
    });
    await assert.rejects(outcome, (error: unknown) => error instanceof StoqError);
    assert.equal(told.length, 1);
    assert.deepEqual([told[0]!.sequence, told[0]!.duplicate, sent], [5, false, [5]]);
    assert.match(told[0]!.txHash, /^[0-9a-f]{64}$/);
  });

  it('stops waiting once the pending transaction is dropped, with the eviction', async () => {
    const evicted = { code: 'TX_SEQUENCE_USED', message: 'sequence 5 is already used' };
    const { outcome, statuses } = run({
      wait: true,
      status: (n) =>
        Promise.resolve(
          n === 1 ? { status: 'pending' as const } : { status: 'unknown' as const, evicted },
        ),
    });
    const done = await outcome;
    assert.deepEqual(done.admitted && done.status, { status: 'unknown', evicted });
    assert.equal(statuses(), 2, 'no polling after it turned unknown (the timeout is a minute)');
  });
});
