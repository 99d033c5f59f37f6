import assert from 'node:assert/strict';
import { MempoolRejectionCode } from '../../src/consensus/mempool.js';
import { after, before, describe, it } from 'node:test';
import { caesarBalanceQuery, hybridAddress, verifyCaesarBalance } from '../../src/caesar/index.js';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import {
  createNodeRpcClient,
  registerNodeRpc,
  type NodeRpcClient,
} from '../../src/consensus/net/index.js';
import { fromHex } from '../../src/crypto/bytes.js';
import { defaultFalcon, type FalconKeyPair } from '../../src/crypto/falcon.js';
import { admissionLine, reportSubmission } from '../../src/node/commands/wallet.js';
import type { CliIo } from '../../src/node/io.js';
import type { Admission } from '../../src/node/tx-submit.js';
import { pendingSequenceOf, transactionStatus } from '../../src/node/tx-status.js';
import { withCommittedRoots } from '../../src/node/verified-root.js';
import { sendTransfer } from '../../src/node/wallet-ledger.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
import { CHAIN_ID, DIFFICULTY, makeSender, type Sender } from '../consensus/application/fixture.js';
import { Cluster } from '../consensus/net/net-fixture.js';
import { addressOf, transfer } from '../caesar/caesar-fixture.js';
import { makeValidator, stakingGenesis } from '../caesar/staking-fixture.js';
import { openCaesarRpcFixture, type CaesarRpcFixture } from '../faces/caesar-rpc-fixture.js';
import { CommittedBlocks } from './committed-roots-fixture.js';

/**
 * Ledger commands sent back to back, before the next block, over the real node API (in-memory
 * STOQ, schema-checked both ways) served from a real Caesar application and mempool with the
 * node's own status handlers (tx-status.ts): each takes the sequence after the sender's pending
 * transactions, so the same transfer sent twice is two transfers and a different one is not
 * refused MEMPOOL_SEQUENCE_TAKEN; a resubmission of the very same bytes says it was not sent
 * again; `--wait` stops when the mempool evicts the transaction and says why.
 */
const alice = makeSender();
const bob = makeSender();
const owner = makeSender();
let falcon: FalconKeyPair;
let hybrid: Uint8Array;
let fx: CaesarRpcFixture;
let blocks: CommittedBlocks;
let cluster: Cluster;
let client: NodeRpcClient;
const genesis = {
  chainId: CHAIN_ID,
  proof: { work: { stampDifficulty: DIFFICULTY } },
} as unknown as GenesisDocument;

const balanceOf = (address: Uint8Array): bigint =>
  verifyCaesarBalance(address, fx.app.app.query(caesarBalanceQuery(address)));

/** Commits a block with `txs` and a committed header over its state root. */
async function commit(txs: readonly Uint8Array[]): Promise<void> {
  fx.commitBlock(txs);
  const answer = fx.app.app.query(caesarBalanceQuery(addressOf(alice)));
  await blocks.commit(answer.height!, answer.stateRoot);
}

const pendingTxs = (): Uint8Array[] => [...fx.mempool.candidates()];

before(async () => {
  falcon = await defaultFalcon().generateKeyPair();
  hybrid = hybridAddress(owner.publicKey, falcon.publicKey);
  fx = await openCaesarRpcFixture(
    stakingGenesis({
      validators: [{ validator: makeValidator(), selfBond: 10_000n }],
      balances: [
        { address: addressOf(alice), amount: 5_000n },
        { address: hybrid, amount: 5_000n },
      ],
    }),
  );
  blocks = await CommittedBlocks.create(4);
  const first = fx.app.app.query(caesarBalanceQuery(addressOf(alice)));
  await blocks.commit(first.height!, first.stateRoot);
  const refuse = (): never => {
    throw new StoqError(StoqErrorCode.UNAVAILABLE, 'not served by this test node');
  };
  const source = { mempool: fx.mempool, app: fx.app.app, store: fx.app.store };
  cluster = await Cluster.create('memory', ['n1', { name: 'carol', role: 'client' }]);
  const server = await cluster.endpoint('n1');
  registerNodeRpc(server.endpoint, {
    submitTx: (tx) => fx.mempool.add(tx),
    submitTxs: refuse,
    txStatus: (txHash) => transactionStatus(source, txHash),
    pendingSequence: (sequenceOwner) => pendingSequenceOf(source, sequenceOwner),
    query: (request) => fx.app.app.query(request),
    status: refuse,
    receipt: refuse,
    accountHistory: refuse,
    blockWitness: refuse,
    getBlock: (height) => blocks.getBlock(height).catch(() => null),
    validatorUpdates: (from, to) => blocks.validatorUpdates(from, to),
  });
  const caller = await cluster.endpoint('carol', undefined, { n1: [server.address] });
  client = withCommittedRoots(
    createNodeRpcClient({ endpoint: caller.endpoint, peer: 'n1' }),
    blocks.chain.genesis,
  );
});

after(async () => {
  await cluster?.close();
  await fx?.close();
});

function send(
  from: Sender,
  amount: bigint,
  options: {
    wait?: boolean;
    hybrid?: boolean;
    onAdmitted?: (admission: Admission) => void;
  } = {},
) {
  return sendTransfer({
    client,
    genesis,
    privateKey: from.privateKey,
    ...(options.hybrid === true ? { falcon } : {}),
    to: addressOf(bob),
    amount,
    fee: 0n,
    wait: options.wait ?? false,
    timeoutMs: 10_000,
    onAdmitted: options.onAdmitted,
  });
}

function capture(): CliIo & { text: () => string } {
  let text = '';
  return {
    out: (chunk) => {
      text += chunk;
    },
    err: (chunk) => {
      text += chunk;
    },
    text: () => text,
  };
}

describe('ledger transactions sent back to back', () => {
  it('sends the same transfer again as the same bytes: a duplicate, applied once', async () => {
    const first = await send(alice, 100n);
    const second = await send(alice, 100n);
    assert.equal(first.admitted && second.admitted, true);
    assert.deepEqual([first.sequence, second.sequence], [0, 0]);
    assert.equal(first.txHash, second.txHash);
    assert.equal(first.admitted && !first.duplicate && second.admitted && second.duplicate, true);
    await commit(pendingTxs());
    assert.equal(balanceOf(addressOf(bob)), 100n, 'one transfer of 100');
  });

  it('refuses a different transaction while one is pending, with the advice to wait', async () => {
    const first = await send(alice, 10n);
    const second = await send(alice, 20n);
    assert.equal(first.admitted, true, JSON.stringify(first));
    assert.equal(second.admitted, false, JSON.stringify(second));
    assert.equal(!second.admitted && second.code, MempoolRejectionCode.SEQUENCE_TAKEN);
    assert.match(
      !second.admitted ? second.message : '',
      /1 transaction\(s\) of the sender are pending from sequence 1 on; wait for the pending transaction to commit/,
    );
    assert.equal(pendingTxs().length, 1, 'nothing but the first was signed and sent');
    await commit(pendingTxs());
    const third = await send(alice, 20n);
    assert.equal(third.admitted && third.sequence, 2);
    await commit(pendingTxs());
    assert.equal(balanceOf(addressOf(bob)), 130n);
  });

  it('refuses a second hybrid transaction while one is pending (FALCON signing is randomized)', async () => {
    const first = await send(owner, 5n, { hybrid: true });
    const second = await send(owner, 5n, { hybrid: true });
    assert.equal(first.admitted && first.sequence, 0, JSON.stringify(first));
    assert.equal(!second.admitted && second.code, MempoolRejectionCode.SEQUENCE_TAKEN);
    await commit(pendingTxs());
    assert.equal(balanceOf(hybrid), 4_995n);
  });

  it('says a resubmission of the very same bytes was not sent again', async () => {
    const sent = await send(alice, 1n);
    assert.equal(sent.admitted, true);
    const [pending] = pendingTxs();
    const again = await client.submitTx(pending!);
    assert.deepEqual(again, { ok: true, txHash: fromHex(sent.txHash), duplicate: true });
    const io = capture();
    const line = admissionLine(
      { txHash: sent.txHash, sequence: sent.sequence, duplicate: true },
      'n1',
    );
    assert.equal(
      line,
      `tx ${sent.txHash} (sequence ${sent.sequence}) already pending at n1, not sent again\n`,
    );
    assert.equal(
      reportSubmission(
        { ...sent, admitted: true, duplicate: true, status: { status: 'pending' } },
        'transfer',
        'n1',
        io,
        false,
        1_000,
      ),
      0,
    );
    assert.equal(io.text(), line);
    await commit(pendingTxs());
  });

  it('stops waiting when the mempool evicts the transaction, and says why', async () => {
    const told: Admission[] = [];
    const outcome = await send(alice, 1n, {
      wait: true,
      // Another transaction of alice's with the same sequence commits first (as when another
      // process sent it through another node): the re-check evicts this one.
      onAdmitted: (admission) => {
        told.push(admission);
        fx.commitBlock([transfer(alice, { to: addressOf(bob), amount: 2n }, admission.sequence)]);
      },
    });
    assert.equal(told.length, 1, 'the admission was told before waiting');
    assert.equal(pendingTxs().length, 0);
    assert.ok(outcome.admitted);
    const { status } = outcome;
    assert.equal(status.status, 'unknown');
    assert.equal(status.status === 'unknown' && status.evicted?.code, 'TX_SEQUENCE_USED');
    const io = capture();
    assert.equal(reportSubmission(outcome, 'transfer', 'n1', io, true, 10_000, true), 1);
    assert.match(
      io.text(),
      /^evicted from n1's mempool without being committed: TX_SEQUENCE_USED: sequence \d+ is already used/,
    );
  });
});
